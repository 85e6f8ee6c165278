"""FastIndex.add_codes / code_of: palms added by precomputed codes are found as if added by template."""

from __future__ import annotations

import numpy as np
import pytest

from palmid.errors import ConflictError, ValidationFailed
from palmid.features.registry import DEFAULT_EXTRACTOR, get_extractor
from palmid.index.engine import CODE_BYTES, EngineMatcher
from palmid.index.fast import FastIndex
from palmid.templates.template import Template

ENGINE = get_extractor(DEFAULT_EXTRACTOR)


def _template(seed: int) -> Template:
    bits = np.random.default_rng(seed).integers(0, 256, size=ENGINE.layout.sample_bytes, dtype=np.uint8).tobytes()
    return Template(extractor_id=ENGINE.extractor_id, version=ENGINE.version, samples=(bits,) * 3)


def test_palms_added_by_code_are_found_like_palms_added_by_template() -> None:
    templates = {f"palm-{n}": _template(n) for n in range(40)}
    by_template: FastIndex[Template] = FastIndex(matcher=EngineMatcher())
    by_template.add_many(templates.items())
    by_code: FastIndex[Template] = FastIndex(matcher=EngineMatcher(), templates=by_template.templates)
    ids = list(templates)
    codes = np.stack([by_code.code_of(templates[subject_id]) for subject_id in ids])
    assert codes.shape == (40, CODE_BYTES) == (40, by_code.code_bytes)

    by_code.add_codes(ids, codes)

    assert len(by_code) == 40
    for subject_id in ("palm-3", "palm-27"):
        probe = Template(
            extractor_id=ENGINE.extractor_id, version=ENGINE.version, samples=templates[subject_id].samples[:1]
        )
        assert by_code.search(probe, k=1) == by_template.search(probe, k=1)
        assert by_code.search(probe, k=1)[0].subject_id == subject_id


def test_add_codes_validates_width_type_and_duplicates() -> None:
    index: FastIndex[Template] = FastIndex(matcher=EngineMatcher())
    code = index.code_of(_template(1))[None, :]
    with pytest.raises(ValidationFailed):
        index.add_codes(["a"], code[:, :-1])
    with pytest.raises(ValidationFailed):
        index.add_codes(["a"], code.astype(np.int16))
    with pytest.raises(ValidationFailed):
        index.add_codes(["a", "b"], code)
    with pytest.raises(ConflictError):
        index.add_codes(["a", "a"], np.vstack([code, code]))
    assert len(index) == 0  # all or none
    index.add_codes(["a"], code)
    with pytest.raises(ConflictError):
        index.add_codes(["b", "a"], np.vstack([code, code]))
    assert len(index) == 1 and "b" not in index
