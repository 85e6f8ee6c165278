"""Prometheus text output."""

from __future__ import annotations

from palmid.service.metrics import Metrics


def test_render_counters_histogram_and_gauges() -> None:
    metrics = Metrics()
    metrics.observe_request(route="/v1/subjects/{subject_ref}", method="DELETE", status=200, duration_s=0.02)
    metrics.observe_request(route="/v1/subjects/{subject_ref}", method="DELETE", status=200, duration_s=3.0)
    metrics.count_decision(operation="identify", outcome="matched")
    metrics.register_gauge("palmid_enrolled_palms", help_text="Palms.", read=lambda: 7)
    text = metrics.render()
    assert text.endswith("\n")
    assert "# TYPE palmid_http_requests_total counter" in text
    assert 'palmid_http_requests_total{route="/v1/subjects/{subject_ref}",method="DELETE",status="200"} 2' in text
    assert 'palmid_http_request_duration_seconds_bucket{route="/v1/subjects/{subject_ref}",le="0.025"} 1' in text
    assert 'palmid_http_request_duration_seconds_bucket{route="/v1/subjects/{subject_ref}",le="+Inf"} 2' in text
    assert 'palmid_http_request_duration_seconds_count{route="/v1/subjects/{subject_ref}"} 2' in text
    assert 'palmid_decisions_total{operation="identify",outcome="matched"} 1' in text
    assert "palmid_enrolled_palms 7" in text


def test_label_values_are_escaped() -> None:
    metrics = Metrics()
    metrics.count_decision(operation='a"b', outcome="x\\y\nz")
    assert 'operation="a\\"b",outcome="x\\\\y\\nz"' in metrics.render()
