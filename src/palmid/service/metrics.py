"""Prometheus metrics in the text exposition format (no external dependency).

Labels are coarse on purpose: route *templates* (never a subject ref), methods, status codes and decision
outcomes. There is no per-merchant or per-person label and never a score.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    counts: list[int]
    total: int = 0
    sum_s: float = 0.0


class Metrics:
    """Thread-safe counters, one latency histogram and gauges read at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[Labels, int] = {}
        self._decisions: dict[Labels, int] = {}
        self._latency: dict[Labels, _Histogram] = {}
        self._gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def observe_request(self, *, route: str, method: str, status: int, duration_s: float) -> None:
        labels: Labels = (("route", route), ("method", method), ("status", str(status)))
        with self._lock:
            self._requests[labels] = self._requests.get(labels, 0) + 1
            key: Labels = (("route", route),)
            histogram = self._latency.setdefault(key, _Histogram(counts=[0] * len(LATENCY_BUCKETS_S)))
            for i, bound in enumerate(LATENCY_BUCKETS_S):
                if duration_s <= bound:
                    histogram.counts[i] += 1
            histogram.total += 1
            histogram.sum_s += duration_s

    def count_decision(self, *, operation: str, outcome: str) -> None:
        """``operation``: enroll / identify / verify / erase; ``outcome``: matched, not_matched, enrolled, ..."""
        labels: Labels = (("operation", operation), ("outcome", outcome))
        with self._lock:
            self._decisions[labels] = self._decisions.get(labels, 0) + 1

    def register_gauge(self, name: str, *, help_text: str, read: Callable[[], float]) -> None:
        with self._lock:
            self._gauges[name] = (help_text, read)

    def render(self) -> str:
        """The whole registry in Prometheus text format."""
        with self._lock:
            requests = dict(self._requests)
            decisions = dict(self._decisions)
            latency = {key: _Histogram(list(h.counts), h.total, h.sum_s) for key, h in self._latency.items()}
            gauges = dict(self._gauges)
        lines: list[str] = []
        lines += _counter("palmid_http_requests_total", "HTTP requests by route template and status.", requests)
        lines += _counter("palmid_decisions_total", "Decisions by operation and outcome.", decisions)
        lines += [
            "# HELP palmid_http_request_duration_seconds Request latency by route template.",
            "# TYPE palmid_http_request_duration_seconds histogram",
        ]
        for key, histogram in sorted(latency.items()):
            for bound, count in zip(LATENCY_BUCKETS_S, histogram.counts, strict=True):
                lines.append(_sample("palmid_http_request_duration_seconds_bucket", (*key, ("le", repr(bound))), count))
            lines.append(
                _sample("palmid_http_request_duration_seconds_bucket", (*key, ("le", "+Inf")), histogram.total)
            )
            lines.append(_sample("palmid_http_request_duration_seconds_sum", key, histogram.sum_s))
            lines.append(_sample("palmid_http_request_duration_seconds_count", key, histogram.total))
        for name, (help_text, read) in sorted(gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", _sample(name, (), read())]
        return "\n".join(lines) + "\n"


def _counter(name: str, help_text: str, values: dict[Labels, int]) -> Iterable[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} counter"
    for labels, value in sorted(values.items()):
        yield _sample(name, labels, value)


def _sample(name: str, labels: Labels, value: float) -> str:
    if not labels:
        return f"{name} {_number(value)}"
    rendered = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
    return f"{name}{{{rendered}}} {_number(value)}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class MetricsMiddleware:
    """ASGI middleware that times every HTTP request and labels it with its route template."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start_s = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.observe_request(
                route=_route_template(scope),
                method=str(scope.get("method", "")),
                status=status,
                duration_s=time.perf_counter() - start_s,
            )


def _route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/subjects/{subject_ref}``, set by the router), or ``unmatched``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
