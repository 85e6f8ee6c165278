"""Dataset manifests and comparison protocols (which pairs are scored, which are genuine).

``cross-session``: every image of the second session (probe) against every image of the first (gallery).
``all-pairs``: every unordered pair of images. Rank-1 uses gallery = session 1 (cross-session) or the first
image of each palm (all-pairs), probes = the rest.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from palmid.errors import ValidationFailed

__all__ = ["Manifest", "ManifestEntry", "ProtocolName", "ScoringPlan", "load_manifest", "plan_protocol"]

ProtocolName = Literal["cross-session", "all-pairs"]
_REQUIRED = ("path", "palm_id", "session")


@dataclass(frozen=True)
class ManifestEntry:
    path: Path
    name: str
    palm_id: str
    session: str


@dataclass(frozen=True)
class Manifest:
    root: Path
    entries: tuple[ManifestEntry, ...]


def load_manifest(dataset_dir: Path) -> Manifest:
    """Read ``dataset_dir/manifest.csv`` (columns ``path,palm_id,session`` at least; extra columns ignored).

    Raises ``ValidationFailed(bad_manifest)`` naming the problem (missing file/column/image, empty fields).
    """
    manifest_path = dataset_dir / "manifest.csv"
    if not manifest_path.is_file():
        raise ValidationFailed(f"no manifest.csv in {dataset_dir}", code="bad_manifest")
    try:
        with manifest_path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in _REQUIRED if column not in (reader.fieldnames or [])]
            if missing:
                raise ValidationFailed(f"{manifest_path} lacks column(s): {', '.join(missing)}", code="bad_manifest")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationFailed(f"{manifest_path} is not a readable CSV file: {exc}", code="bad_manifest") from exc
    entries: list[ManifestEntry] = []
    for line, row in enumerate(rows, start=2):
        values = [(row.get(column) or "").strip() for column in _REQUIRED]
        if not all(values):
            raise ValidationFailed(f"{manifest_path} line {line}: empty path, palm_id or session", code="bad_manifest")
        path = (dataset_dir / values[0]).resolve()
        if not path.is_file():
            raise ValidationFailed(f"{manifest_path} line {line}: image {values[0]} not found", code="bad_manifest")
        entries.append(ManifestEntry(path=path, name=values[0], palm_id=values[1], session=values[2]))
    if len(entries) < 2:
        raise ValidationFailed(f"{manifest_path} lists fewer than two images", code="bad_manifest")
    return Manifest(root=dataset_dir, entries=tuple(entries))


@dataclass(frozen=True)
class ScoringPlan:
    """Which similarity-matrix cells count: ``matrix[probe_rows] x [gallery_rows]`` restricted to ``pair_mask``."""

    probe_rows: NDArray[np.intp]
    gallery_rows: NDArray[np.intp]
    pair_mask: NDArray[np.bool_]
    genuine_mask: NDArray[np.bool_]
    rank_probe_rows: NDArray[np.intp]
    rank_gallery_rows: NDArray[np.intp]


def _session_order(sessions: list[str]) -> list[str]:
    unique = set(sessions)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)


def plan_protocol(manifest: Manifest, protocol: ProtocolName) -> ScoringPlan:
    """The pairs scored under ``protocol``; raises ``ValidationFailed`` when the manifest cannot support it."""
    palms = np.asarray([entry.palm_id for entry in manifest.entries], dtype=object)
    sessions = [entry.session for entry in manifest.entries]
    if protocol == "cross-session":
        order = _session_order(sessions)
        if len(order) < 2:
            raise ValidationFailed("cross-session needs at least two sessions in the manifest", code="bad_manifest")
        session_array = np.asarray(sessions, dtype=object)
        gallery = np.flatnonzero(session_array == order[0])
        probes = np.flatnonzero(session_array == order[1])
        mask = np.ones((probes.size, gallery.size), dtype=np.bool_)
        genuine = palms[probes][:, None] == palms[gallery][None, :]
        return ScoringPlan(probes, gallery, mask, genuine, probes, gallery)
    if protocol == "all-pairs":
        rows = np.arange(len(manifest.entries), dtype=np.intp)
        mask = np.triu(np.ones((rows.size, rows.size), dtype=np.bool_), k=1)
        genuine = palms[:, None] == palms[None, :]
        _, first = np.unique(palms.astype(str), return_index=True)
        first_rows = np.sort(first).astype(np.intp)
        rest = np.setdiff1d(rows, first_rows).astype(np.intp)
        return ScoringPlan(rows, rows, mask, genuine, rest, first_rows)
    raise ValidationFailed(f"unknown protocol {protocol!r}", code="invalid_protocol")
