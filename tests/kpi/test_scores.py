"""CSAT, NPS and CES: hand-worked values, properties, bad inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore.errors import InvalidType, ValidationError
from csmcore.kpi import KpiAggregator, ScoreTally, ces, csat, nps
from tests.kpi.support import metrics


def test_nps_by_hand() -> None:
    # 10 answers: promoters 9, 10, 10 (3); passives 7, 8 (2); detractors 0, 3, 5, 6, 6 (5)
    # NPS = 100 * (3 - 5) / 10 = -20
    assert nps([9, 10, 10, 7, 8, 0, 3, 5, 6, 6]) == -20.0
    assert nps([10]) == 100.0
    assert nps([6]) == -100.0
    assert nps([7, 8]) == 0.0


def test_csat_by_hand() -> None:
    # 1-5 scale, top two boxes (4, 5): 3 of 5 satisfied
    assert csat([5, 4, 4, 3, 1]) == 0.6
    # top box only: 1 of 5
    assert csat([5, 4, 4, 3, 1], top=1) == 0.2
    # Zendesk's good (2) / bad (1)
    assert csat([2, 1, 2, 2], scale=2, top=1) == 0.75
    # 1-10 scale, top two boxes = 9, 10
    assert csat([10, 9, 8], scale=10) == pytest.approx(2 / 3)


def test_ces_by_hand() -> None:
    # mean of 7, 5, 3, 1 = 4; agreeing (5-7 on 1-7) = 2 of 4
    assert ces([7, 5, 3, 1]) == 4.0
    assert ces([7, 5, 3, 1], method="agree") == 0.5
    assert ces([7, 5, 3, 1], method="agree", agree_at=3) == 0.75
    assert ces([5, 4], scale=5) == 4.5
    # by default, agreeing is scoring above the scale's midpoint: 4-5 on 1-5 (a neutral 3
    # does not agree), 3 on 1-3, 2 on a yes/no 1-2 scale (each agreed before: scale - 2)
    assert ces([5, 4, 3, 2], scale=5, method="agree") == 0.5
    assert ces([3, 2, 1], scale=3, method="agree") == pytest.approx(1 / 3)
    assert ces([2, 1, 1, 1], scale=2, method="agree") == 0.25
    assert ces([10, 6, 5], scale=10, method="agree") == pytest.approx(2 / 3)


@given(st.lists(st.integers(1, 10), min_size=1), st.integers(2, 10))
def test_ces_agreement_is_the_share_above_the_midpoint(scores: list[int], scale: int) -> None:
    scores = [min(s, scale) for s in scores]
    expected = sum(s > (scale + 1) / 2 for s in scores) / len(scores)
    assert ces(scores, scale=scale, method="agree") == pytest.approx(expected)
    # the aggregator agrees with ces()
    records = [metrics(f"T-{i}", ces_score=s, ces_scale=scale) for i, s in enumerate(scores)]
    total = KpiAggregator(ces_method="agree").update(records).total()
    assert total.ces == pytest.approx(expected)


@given(st.lists(st.integers(0, 10), min_size=1), st.randoms())
def test_nps_is_in_range_and_order_free(scores: list[int], rnd: object) -> None:
    value = nps(scores)
    assert -100.0 <= value <= 100.0
    shuffled = list(scores)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert nps(shuffled) == value


@given(st.lists(st.integers(1, 5), min_size=1), st.lists(st.integers(1, 5), min_size=1))
def test_tallies_merge_like_concatenation(a: list[int], b: list[int]) -> None:
    left, right, whole = ScoreTally(), ScoreTally(), ScoreTally()
    for s in a:
        left.add(s)
    for s in b:
        right.add(s)
    for s in a + b:
        whole.add(s)
    left.merge(right)
    assert left.counts == whole.counts
    assert left.top_box_share(5) == csat(a + b)
    assert left.mean() == pytest.approx(sum(a + b) / len(a + b))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: nps([]), ValidationError, "empty"),
        (lambda: nps([11]), ValidationError, r"score=11 is outside 0\.\.10"),
        (lambda: nps([-1]), ValidationError, r"score=-1 is outside 0\.\.10"),
        (lambda: nps([9.5]), InvalidType, "not a whole number"),  # type: ignore[list-item]
        (lambda: nps("910"), InvalidType, "not an iterable of scores"),  # type: ignore[arg-type]
        (lambda: csat([]), ValidationError, "empty"),
        (lambda: csat([0]), ValidationError, r"score=0 is outside 1\.\.5"),
        (lambda: csat([6]), ValidationError, r"score=6 is outside 1\.\.5"),
        (lambda: csat([1], scale=1), ValidationError, r"scale=1 is outside 2\.\.10"),
        (lambda: csat([1], top=5), ValidationError, r"top=5 is outside 1\.\.4"),
        (lambda: ces([8]), ValidationError, r"score=8 is outside 1\.\.7"),
        (lambda: ces([3], method="median"), ValidationError, "not a CES method"),  # type: ignore[arg-type]
        (lambda: ces([3], agree_at=9), ValidationError, r"agree_at=9 is outside 1\.\.7"),
        (lambda: ces([]), ValidationError, "empty"),
    ],
)
def test_bad_inputs(call: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()  # type: ignore[operator]
