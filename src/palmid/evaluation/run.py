"""``palmid eval`` as a library call: manifest -> templates -> protocol scores -> metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from palmid.evaluation.acquire import Acquisition, DetectorChoice, acquire_templates
from palmid.evaluation.metrics import equal_error_rate, rank1_rate, tar_at_fars
from palmid.evaluation.protocol import Manifest, ProtocolName, load_manifest, plan_protocol
from palmid.evaluation.scores import ProtocolScores, score_plan

__all__ = ["EvaluationMetrics", "EvaluationRun", "evaluate_dataset", "metrics_from_scores"]


@dataclass(frozen=True)
class EvaluationMetrics:
    """The numbers of ``metrics.json`` (rates are fractions)."""

    eer: float
    tar_at_far: dict[str, float | None]
    fta: float
    rank1: float | None
    n_genuine: int
    n_impostor: int
    templates_per_s: float


@dataclass(frozen=True)
class EvaluationRun:
    dataset: Path
    protocol: ProtocolName
    detector: DetectorChoice
    extractor: str
    manifest: Manifest
    acquisition: Acquisition
    scores: ProtocolScores
    metrics: EvaluationMetrics

    @property
    def failure_counts(self) -> dict[str, int]:
        return dict(Counter(code for code in self.acquisition.failure_codes if code is not None))

    @property
    def method_counts(self) -> dict[str, int]:
        return dict(Counter(method for method in self.acquisition.methods if method is not None))


def metrics_from_scores(scores: ProtocolScores, *, manifest: Manifest, acquisition: Acquisition) -> EvaluationMetrics:
    genuine, impostor = scores.genuine_scores, scores.impostor_scores
    palms = [entry.palm_id for entry in manifest.entries]
    rank_probes = [palms[int(row)] for row in scores.rank_probe_rows]
    rank_gallery = [palms[int(row)] for row in scores.rank_gallery_rows]
    return EvaluationMetrics(
        eer=equal_error_rate(genuine, impostor),
        tar_at_far=tar_at_fars(genuine, impostor),
        fta=acquisition.fta,
        rank1=rank1_rate(scores.rank_similarity, rank_probes, rank_gallery),
        n_genuine=int(genuine.size),
        n_impostor=int(impostor.size),
        templates_per_s=acquisition.templates_per_s,
    )


def evaluate_dataset(
    dataset_dir: Path,
    *,
    protocol: ProtocolName,
    detector: DetectorChoice,
    extractor: str,
    workers: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> EvaluationRun:
    """Run the whole evaluation; raises ``ValidationFailed(bad_manifest)`` for unusable manifests."""
    manifest = load_manifest(dataset_dir)
    plan = plan_protocol(manifest, protocol)
    if on_start:
        on_start(len(manifest.entries))
    acquisition = acquire_templates(
        [entry.path for entry in manifest.entries],
        detector=detector,
        extractor=extractor,
        workers=workers,
        on_progress=on_progress,
    )
    scores = score_plan(acquisition.templates, plan)
    metrics = metrics_from_scores(scores, manifest=manifest, acquisition=acquisition)
    return EvaluationRun(
        dataset=dataset_dir,
        protocol=protocol,
        detector=detector,
        extractor=extractor,
        manifest=manifest,
        acquisition=acquisition,
        scores=scores,
        metrics=metrics,
    )
