"""Index codes stored next to the templates, so the start-up rebuild needs neither the templates nor the engine.

At enrollment the service computes the palm's index code with the index's own matcher (:func:`search_code_for`)
and the store seals it with the subject's data key (``Store.enroll_subject(search_code=..., search_code_format=...)``).
The stored bytes are the template's sample count (one byte, for the identification threshold) and the code.

The format label names everything the code depends on: this module's packing, the engine's
:data:`~palmid.index.engine.CODE_FORMAT_VERSION`, the code width and the template's extractor id and version. At
the rebuild (:func:`rebuild_from_codes`) a code whose label is not the current one is never used: its template is
read, the code recomputed and the stored one replaced; palms enrolled before codes were stored get theirs the same
way (backfilled), so the next start reads only codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from palmid.errors import TemplateError
from palmid.features.registry import layout_for
from palmid.index.engine import CODE_FORMAT_VERSION
from palmid.service.matcher import Matcher
from palmid.storage.search_codes import SearchCodeUpdate, StoredSearchCode
from palmid.templates.template import Template

#: Label prefix of this module's packing (bump the suffix if the packing changes).
FORMAT_PREFIX = "palmid-index-code.1"
#: Templates read per batch when codes are recomputed.
RECOMPUTE_BATCH = 500


@dataclass(frozen=True, kw_only=True)
class SearchCode:
    """What the store keeps for a palm: opaque bytes and their format label."""

    code: bytes
    code_format: str


@dataclass(frozen=True, kw_only=True)
class CodeRebuildCounts:
    from_codes: int
    recomputed: int
    """Palms whose code was missing or stale: computed from the template and stored (backfilled)."""


class CodeStore(Protocol):
    """``Store.search_codes`` (:class:`palmid.storage.search_codes.SearchCodeStore`)."""

    def iter_batches(self) -> Iterator[list[StoredSearchCode]]: ...
    def iter_missing(self) -> Iterator[list[str]]: ...
    def save(self, codes: Sequence[SearchCodeUpdate]) -> int: ...


@runtime_checkable
class CodedTemplateStore(Protocol):
    """A store that keeps search codes (the real :class:`~palmid.storage.repository.Store`)."""

    @property
    def search_codes(self) -> CodeStore: ...

    def load_templates(self, *, subject_ids: Sequence[str]) -> dict[str, bytes]: ...


def code_format_for(template: Template, *, code_bytes: int) -> str:
    return f"{FORMAT_PREFIX}/{CODE_FORMAT_VERSION}/{code_bytes}/{template.extractor_id}/{template.version}"


def is_current_format(code_format: str, *, code_bytes: int) -> bool:
    """Whether a stored label is what :func:`code_format_for` gives today for a registered extractor version."""
    parts = code_format.split("/")
    if len(parts) != 5 or parts[:3] != [FORMAT_PREFIX, str(CODE_FORMAT_VERSION), str(code_bytes)]:
        return False
    if not parts[4].isdigit():
        return False
    try:
        layout_for(parts[3], int(parts[4]))
    except TemplateError:  # unknown extractor id or version
        return False
    return True


def search_code_for(matcher: Matcher, template: Template) -> SearchCode | None:
    """The code to store with a new template (``None`` when the index takes no precomputed codes)."""
    index = matcher.coded_index
    if index is None:
        return None
    return pack_search_code(template, index.code_of(template).tobytes())


def pack_search_code(template: Template, code: bytes) -> SearchCode:
    """What the store keeps for ``template`` whose index code is ``code``: its sample count, then the code."""
    if not 1 <= template.n_samples <= 255:
        raise TemplateError("template has too many samples for a search code", code="template_corrupt")
    return SearchCode(
        code=bytes([template.n_samples]) + code, code_format=code_format_for(template, code_bytes=len(code))
    )


def rebuild_from_codes(
    matcher: Matcher, store: CodedTemplateStore, *, progress: Callable[[int], None]
) -> CodeRebuildCounts:
    """Add every palm by its stored code; recompute (and store) the missing and stale ones from the templates."""
    index = matcher.coded_index
    if index is None:
        raise TemplateError("the index takes no precomputed codes", code="template_corrupt")
    width = index.code_bytes
    loaded = 0
    redo: list[str] = []
    for batch in store.search_codes.iter_batches():
        ids: list[str] = []
        counts: list[int] = []
        blobs: list[bytes] = []
        for stored in batch:
            if not is_current_format(stored.code_format, code_bytes=width):
                redo.append(stored.subject_id)
                continue
            if len(stored.code) != 1 + width or stored.code[0] == 0:
                raise TemplateError("a stored search code is malformed", code="template_corrupt")
            ids.append(stored.subject_id)
            counts.append(stored.code[0])
            blobs.append(stored.code[1:])
        if ids:
            codes = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(ids), width)
            matcher.add_codes(ids, codes, sample_counts=counts)
            loaded += len(ids)
            progress(loaded)
    recomputed = 0
    codes_in: list[NDArray[np.uint8]] = []
    for missing in _batches(redo, store.search_codes.iter_missing()):
        templates = store.load_templates(subject_ids=missing)
        updates: list[SearchCodeUpdate] = []
        for subject_id in missing:
            blob = templates.get(subject_id)
            if blob is None:
                continue  # erased meanwhile
            template = Template.from_bytes(blob)
            code = index.code_of(template)
            packed = pack_search_code(template, code.tobytes())
            updates.append(SearchCodeUpdate(subject_id=subject_id, code=packed.code, code_format=packed.code_format))
            codes_in.append(code)
        if updates:
            matcher.add_codes(
                [update.subject_id for update in updates],
                np.stack(codes_in),
                sample_counts=[update.code[0] for update in updates],
            )
            store.search_codes.save(updates)
        codes_in.clear()
        recomputed += len(updates)
        progress(loaded + recomputed)
    return CodeRebuildCounts(from_codes=loaded, recomputed=recomputed)


def _batches(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    for start in range(0, len(first), RECOMPUTE_BATCH):
        yield first[start : start + RECOMPUTE_BATCH]
    yield from rest
