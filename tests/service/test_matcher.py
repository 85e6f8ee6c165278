"""The decision layer: thresholds from target error rates, decisions only, one palm per enrollment."""

from __future__ import annotations

import pytest
from service_doubles import DoubleRecognizer, photo

from palmid.index.exact import ExactIndex
from palmid.service.matcher import DecisionPolicy, Matcher
from palmid.templates.template import Template


class RecordingRecognizer(DoubleRecognizer):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[tuple[float, int]] = []

    def threshold_for_fmr(self, fmr: float, *, n_sample_pairs: int) -> float:
        self.asked.append((fmr, n_sample_pairs))
        return super().threshold_for_fmr(fmr, n_sample_pairs=n_sample_pairs)


@pytest.fixture
def recognizer() -> RecordingRecognizer:
    return RecordingRecognizer()


@pytest.fixture
def matcher(recognizer: RecordingRecognizer) -> Matcher:
    policy = DecisionPolicy(identification_fmr=1e-6, identification_fpir=1e-3, verification_fmr=1e-5)
    return Matcher(recognizer=recognizer, policy=policy, index=ExactIndex(matcher=recognizer.index_matcher()))


def _template(recognizer: DoubleRecognizer, palm: str, samples: int = 1) -> Template:
    return recognizer.merge([recognizer.template_from_bytes(photo(palm, n)) for n in range(samples)])


def test_identification_fmr_follows_the_gallery_size() -> None:
    policy = DecisionPolicy(identification_fmr=1e-6, identification_fpir=1e-3, verification_fmr=1e-6)
    assert policy.identification_fmr_for(0) == 1e-6
    assert policy.identification_fmr_for(10) == 1e-6  # never looser than the configured floor
    assert policy.identification_fmr_for(1_000_000) == pytest.approx(1e-9, rel=1e-3)  # FPIR / N at scale


def test_identify_uses_the_threshold_for_the_candidates_sample_count(
    matcher: Matcher, recognizer: RecordingRecognizer
) -> None:
    matcher.rebuild([("s1", _template(recognizer, "a", samples=3)), ("s2", _template(recognizer, "b", samples=2))])
    assert matcher.gallery_size == 2
    assert matcher.identify(_template(recognizer, "a")) == "s1"
    assert (1e-6, 3) in recognizer.asked
    assert matcher.identify(_template(recognizer, "nobody")) is None
    assert matcher.remove("s1") is True
    assert matcher.identify(_template(recognizer, "a")) is None
    assert "s1" not in matcher
    assert matcher.remove("s1") is False


def test_verify_at_the_verification_fmr(matcher: Matcher, recognizer: RecordingRecognizer) -> None:
    reference = _template(recognizer, "a", samples=3)
    assert matcher.verify(_template(recognizer, "a"), reference) is True
    assert matcher.verify(_template(recognizer, "b"), reference) is False
    assert recognizer.asked[-1] == (1e-5, 3)


@pytest.mark.parametrize(
    ("palms", "outliers"),
    [
        (["a", "a", "a"], []),
        (["a", "a", "a", "b"], [3]),
        (["b", "a", "a"], [0]),
        (["a", "a", "b", "b"], [2, 3]),  # tie: the group with the first photo is the enrolled palm
        (["a", "b", "c"], [1, 2]),
    ],
)
def test_inconsistent_samples(
    matcher: Matcher, recognizer: RecordingRecognizer, palms: list[str], outliers: list[int]
) -> None:
    templates = [_template(recognizer, palm) for palm in palms]
    assert matcher.inconsistent_samples(templates) == outliers


def test_a_failed_index_add_leaves_no_trace(matcher: Matcher, recognizer: RecordingRecognizer) -> None:
    from palmid.errors import ConflictError

    matcher.add("s1", _template(recognizer, "a", samples=2))
    with pytest.raises(ConflictError):
        matcher.add("s1", _template(recognizer, "b", samples=5))
    assert matcher.identify(_template(recognizer, "a")) == "s1"
    assert (1e-6, 2) in recognizer.asked
