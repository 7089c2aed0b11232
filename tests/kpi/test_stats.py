"""Duration statistics: exact order statistics by selection equal those of a full sort, and the
aggregator's fast path (plain dimensions) equals its general path."""

from __future__ import annotations

import random
import statistics
from datetime import timedelta
from operator import attrgetter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.kpi import KpiAggregator, TicketMetrics, _aggregate
from csmcore.kpi._stats import DurationStats, order_statistics, quantile
from tests.kpi.support import metric_records

_SHAPES = ("random", "few distinct", "sorted", "reversed", "organ pipe", "constant")


def _values(seed: int, n: int, shape: str) -> list[timedelta]:
    rnd = random.Random(seed)
    if shape == "few distinct":
        raw = [rnd.randrange(5) for _ in range(n)]
    elif shape == "constant":
        raw = [7] * n
    else:
        raw = [rnd.randrange(10**9) for _ in range(n)]
    if shape == "sorted":
        raw.sort()
    elif shape == "reversed":
        raw.sort(reverse=True)
    elif shape == "organ pipe":
        raw.sort()
        raw = raw[::2] + raw[1::2][::-1]
    return [timedelta(microseconds=v) for v in raw]


@settings(max_examples=80, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(1, 6000),
    st.sampled_from(_SHAPES),
    st.lists(st.floats(0, 1), min_size=1, max_size=4),
)
def test_order_statistics_equal_a_full_sort(
    seed: int, n: int, shape: str, where: list[float]
) -> None:
    values = _values(seed, n, shape)
    before = list(values)
    ranks = [min(int(w * n), n - 1) for w in where]
    ordered = sorted(values)
    assert order_statistics(values, ranks) == {r: ordered[r] for r in ranks}
    assert values == before  # the kept values are not reordered


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32),
    st.integers(1, 6000),
    st.sampled_from(_SHAPES),
    st.lists(st.floats(0, 100), max_size=3),
)
def test_summary_matches_a_sorted_reference(
    seed: int, n: int, shape: str, percentiles: list[float]
) -> None:
    values = _values(seed, n, shape)
    stats = DurationStats()
    stats.add_many(values, 3)
    summary = stats.summary(percentiles)
    ordered = sorted(values)
    assert summary.median == statistics.median(values)  # type: ignore[type-var]
    assert summary.percentiles == {float(p): quantile(ordered, p) for p in percentiles}
    assert (summary.count, summary.excluded) == (n, 3)


_durations = st.one_of(
    st.none(),
    st.just(timedelta()),  # the one false duration: add_columns' sum skips it, adding nothing
    st.integers(0, 10**12).map(lambda us: timedelta(microseconds=us)),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(_durations, max_size=30), max_size=5), st.booleans())
def test_add_columns_equals_adding_one_by_one(
    columns: list[list[timedelta | None]], keep: bool
) -> None:
    one_by_one, at_once = DurationStats(keep_values=keep), DurationStats(keep_values=keep)
    for column in columns:
        for value in column:
            one_by_one.add(value)
    at_once.add_columns(columns)
    for stats in (one_by_one, at_once):
        assert stats.count + stats.excluded == sum(map(len, columns))
    assert at_once.summary((90,)) == one_by_one.summary((90,))
    assert at_once.values == one_by_one.values


_records = st.lists(metric_records(), max_size=60)


@settings(max_examples=60, deadline=None)
@given(_records, st.sampled_from([True, False, ("first_reply",)]))
def test_fast_path_equals_the_general_path(
    records: list[TicketMetrics], exact: bool | tuple[str, ...]
) -> None:
    # plain dimension names take the generated fast path; the same dimensions given as
    # functions take the general path
    for names in (["priority"], ["priority", "channel"], ["channel", "status", "group"]):
        fast = KpiAggregator(by=names, exact=exact).update(records).results()
        general = KpiAggregator(by=[attrgetter(n) for n in names], exact=exact)
        assert fast == general.update(records).results()
    # a subset of the metrics and figures (fewer columns read)
    narrow = {"metrics": ("first_reply",), "figures": ("csat",), "percentiles": ()}
    fast = KpiAggregator(by=["priority"], **narrow).update(records).results()  # type: ignore[arg-type]
    general = KpiAggregator(by=[attrgetter("priority")], **narrow)  # type: ignore[arg-type]
    assert fast == general.update(records).results()


@settings(max_examples=60, deadline=None)
@given(_records, st.sampled_from([1, 3, 10**9]), st.integers(1, 8), st.booleans())
def test_sorting_batches_by_parts_or_by_groups_gives_the_same_figures(
    records: list[TicketMetrics], part_records: int, batch: int, stream: bool
) -> None:
    # tiny batches, and a threshold that sorts every batch after the first by parts (1), none
    # (10**9), or some (3): the fast path's figures stay those of the general path
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_aggregate, "_FIRST_BATCH", batch)
        patch.setattr(_aggregate, "_BATCH", 3 * batch)
        patch.setattr(_aggregate, "_PART_RECORDS", part_records)
        for names in (["priority"], ["priority", "channel"], []):
            fast = KpiAggregator(by=names, percentiles=(25, 90))
            fast.update(iter(records) if stream else records)
            general = KpiAggregator(by=[attrgetter(n) for n in names], percentiles=(25, 90))
            assert fast.results() == general.update(records).results()
