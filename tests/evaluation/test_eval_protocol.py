"""Manifest loading, protocol planning and FTA handling in protocol scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from palmid.errors import ValidationFailed
from palmid.evaluation.protocol import load_manifest, plan_protocol
from palmid.evaluation.scores import LOWEST_SIMILARITY, score_plan
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
from palmid.templates.template import Template


def write_dataset(root: Path, rows: list[tuple[str, str, str]], *, header: str = "path,palm_id,session,extra") -> Path:
    lines = [header]
    for path, palm, session in rows:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(b"x")
        lines.append(f"{path},{palm},{session},ignored")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root


ROWS = [(f"img/{palm}_{session}_{k}.png", palm, session) for palm in "ab" for session in "12" for k in range(2)]


def test_manifest_reads_required_columns(tmp_path: Path) -> None:
    manifest = load_manifest(write_dataset(tmp_path, ROWS))
    assert len(manifest.entries) == 8
    assert manifest.entries[0].name == "img/a_1_0.png" and manifest.entries[0].path.is_file()


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        ("path,palm_id", ROWS, "lacks column"),
        ("path,palm_id,session,extra", [], "fewer than two"),
        ("path,palm_id,session,extra", [("img/x.png", "", "1"), ("img/y.png", "a", "1")], "empty"),
    ],
)
def test_bad_manifests_are_refused(tmp_path: Path, header: str, rows: list[tuple[str, str, str]], message: str) -> None:
    write_dataset(tmp_path, rows, header=header)
    with pytest.raises(ValidationFailed, match=message) as caught:
        load_manifest(tmp_path)
    assert caught.value.code == "bad_manifest"


def test_missing_manifest_or_image(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="no manifest"):
        load_manifest(tmp_path)
    write_dataset(tmp_path, ROWS)
    (tmp_path / ROWS[0][0]).unlink()
    with pytest.raises(ValidationFailed, match="not found"):
        load_manifest(tmp_path)


def test_cross_session_plan(tmp_path: Path) -> None:
    plan = plan_protocol(load_manifest(write_dataset(tmp_path, ROWS)), "cross-session")
    assert plan.pair_mask.sum() == 16  # 4 session-2 probes x 4 session-1 images
    assert plan.genuine_mask.sum() == 8
    with pytest.raises(ValidationFailed):
        plan_protocol(load_manifest(write_dataset(tmp_path, [r for r in ROWS if r[2] == "1"])), "cross-session")


def test_all_pairs_plan(tmp_path: Path) -> None:
    plan = plan_protocol(load_manifest(write_dataset(tmp_path, ROWS)), "all-pairs")
    assert plan.pair_mask.sum() == 8 * 7 // 2
    assert (plan.pair_mask & plan.genuine_mask).sum() == 2 * (4 * 3 // 2)
    assert plan.rank_gallery_rows.tolist() == [0, 4] and plan.rank_probe_rows.size == 6


def test_failures_to_acquire_stay_in_the_count(tmp_path: Path) -> None:
    plan = plan_protocol(load_manifest(write_dataset(tmp_path, ROWS)), "cross-session")
    extractor = get_extractor(DEFAULT_EXTRACTOR)
    blank = np.zeros((128, 128), dtype=np.uint8)
    from palmid.detect.palm import PalmROI

    one = extractor.extract(PalmROI(pixels=blank, method="roi"))
    templates: list[Template | None] = [one if i % 2 == 0 else None for i in range(8)]
    scores = score_plan(templates, plan)
    assert scores.similarity.size == 16 and scores.genuine.sum() == 8
    assert np.count_nonzero(scores.similarity == LOWEST_SIMILARITY) == 12
    nothing = score_plan([None] * 8, plan)
    assert np.all(nothing.similarity == LOWEST_SIMILARITY) and nothing.rank_similarity.shape == (4, 4)
