"""Streaming, mergeable statistics of durations: the building blocks of the KPIs.

Durations stay ``timedelta`` (whole microseconds): sums are exact, a mean is the sum divided by
the count rounded half to even (``timedelta`` division), and the median of an even count is the
mean of the two middle values, exactly as :func:`statistics.median` computes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Final

import attrs

from csmcore.errors import InvalidType, ValidationError

__all__ = [
    "DurationStats",
    "DurationSummary",
    "check_percentiles",
    "order_statistics",
    "quantile",
]


def check_percentiles(value: Iterable[float]) -> tuple[float, ...]:
    """``value`` as a sorted tuple of distinct percentiles in 0..100; ValidationError else."""
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidType(
            f"percentiles={value!r} is not a collection of numbers in 0..100",
            field="percentiles",
            value=value,
        )
    out = set()
    for p in value:
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
            raise ValidationError(
                f"percentile {p!r} is not a number in 0..100", field="percentiles", value=p
            )
        out.add(float(p))
    return tuple(sorted(out))


def quantile(ordered: Sequence[timedelta], percentile: float) -> timedelta:
    """The ``percentile`` (0..100) of ``ordered`` (sorted, not empty) by linear interpolation
    between closest ranks (numpy's and pandas' default, Hyndman & Fan type 7), rounded to the
    microsecond; the 50th percentile is :func:`statistics.median` exactly."""
    return _interpolate(ordered.__getitem__, len(ordered), percentile)


def _ranks(n: int, percentile: float) -> tuple[int, int]:
    """The two ranks (0-based, in sorted order) the ``percentile`` of ``n`` values reads."""
    if percentile == 50.0:
        return (n - 1) // 2, n // 2
    low = math.floor((n - 1) * percentile / 100.0)
    return low, min(low + 1, n - 1)


def _interpolate(at: Callable[[int], timedelta], n: int, percentile: float) -> timedelta:
    """:func:`quantile` of ``n`` values given the value of each rank by ``at``."""
    if percentile == 50.0:
        mid = n // 2
        if n % 2:
            return at(mid)
        return (at(mid - 1) + at(mid)) / 2
    position = (n - 1) * percentile / 100.0
    low = math.floor(position)
    high = min(low + 1, n - 1)
    fraction = position - low
    return at(low) + (at(high) - at(low)) * fraction


_SELECT_FROM: Final = 2048  # below this many values a sort is as fast as a selection
_SAMPLE: Final = 1024  # values sampled to choose the selection window
_MARGIN: Final = 48  # sample places either side of the window (about 6 standard deviations)


def order_statistics(values: list[timedelta], ranks: Iterable[int]) -> dict[int, timedelta]:
    """The value of each of ``ranks`` (0-based positions in sorted order) among ``values``
    (not empty), exactly, without sorting them all when the ranks are close together.

    A sorted sample of the values brackets the ranks in a window ``[low, high]``; two passes
    (list comprehensions: faster than ``filter`` with a ``partial`` comparison) count the values
    under ``low`` and keep those in the window, and only the window
    is sorted (or, when still large, searched the same way). When the sample misjudged (the
    ranks fall outside the window) or the window is large, all values are sorted instead: the
    answer is the same either way.

    >>> vals = [timedelta(seconds=s) for s in (5, 1, 4, 2, 3)]
    >>> order_statistics(vals, [0, 2, 4]) == {
    ...     0: timedelta(seconds=1), 2: timedelta(seconds=3), 4: timedelta(seconds=5)}
    True
    """
    wanted = sorted(set(ranks))
    n = len(values)
    if n >= _SELECT_FROM:
        step = n // _SAMPLE
        sample = sorted(values[::step])
        m = len(sample)
        i = wanted[0] * m // n - _MARGIN
        j = wanted[-1] * m // n + _MARGIN
        if j - i < m // 2:
            window = values
            below = 0
            if i > 0:
                low = sample[i]
                window = [v for v in window if low <= v]
                below = n - len(window)
            if j < m - 1:
                high = sample[j]
                window = [v for v in window if v <= high]
            if below <= wanted[0] and wanted[-1] < below + len(window):
                if 4 * len(window) <= n:  # still large: select within the window again
                    inner = order_statistics(window, [r - below for r in wanted])
                    return {r: inner[r - below] for r in wanted}
                window.sort()
                return {r: window[r - below] for r in wanted}
    ordered = sorted(values)
    return {r: ordered[r] for r in wanted}


@attrs.frozen(kw_only=True)
class DurationSummary:
    """Figures of one duration metric over a set of tickets.

    ``count`` tickets had the metric defined, ``excluded`` did not (their events had not
    happened yet); ``mean`` and ``median`` are None when ``count`` is 0 (``median`` also when
    values were not kept); ``percentiles`` maps each asked percentile to its value.
    """

    count: int
    excluded: int
    total: timedelta
    mean: timedelta | None
    median: timedelta | None
    percentiles: dict[float, timedelta] = attrs.field(factory=dict)


class DurationStats:
    """Accumulates one duration metric: count, exact sum, the values when a median or
    percentiles are wanted (``keep_values``), and how many tickets had it undefined (None).
    Mergeable: ``a.merge(b)`` equals having added both inputs to one accumulator.

    >>> s = DurationStats()
    >>> for v in (timedelta(minutes=10), None, timedelta(minutes=30), timedelta(minutes=20)):
    ...     s.add(v)
    >>> r = s.summary((90,))
    >>> r.count, r.excluded, str(r.mean), str(r.median), str(r.percentiles[90.0])
    (3, 1, '0:20:00', '0:20:00', '0:28:00')
    """

    __slots__ = ("count", "excluded", "keep_values", "total", "values")

    def __init__(self, *, keep_values: bool = True) -> None:
        self.count = 0
        self.excluded = 0
        self.total = timedelta()
        self.keep_values = keep_values
        self.values: list[timedelta] = []

    def add(self, value: timedelta | None) -> None:
        """Count ``value`` (None: one more excluded ticket); InvalidType for another type."""
        if value is None:
            self.excluded += 1
            return
        if not isinstance(value, timedelta):
            raise InvalidType(
                f"duration {value!r} ({type(value).__name__}) is not a timedelta or None",
                field="value",
                value=value,
            )
        self.count += 1
        self.total += value
        if self.keep_values:
            self.values.append(value)

    def add_many(self, values: list[timedelta], excluded: int) -> None:
        """Count a batch of (defined) ``values`` and ``excluded`` undefined ones."""
        self.count += len(values)
        self.excluded += excluded
        self.total = sum(values, self.total)
        if self.keep_values:
            self.values += values

    def add_columns(self, columns: Sequence[Sequence[timedelta | None]]) -> None:
        """Count every value of ``columns`` (lists of trusted values: a ``timedelta``, or
        None for an undefined one), as :meth:`add` would one by one."""
        n = sum(map(len, columns))
        # one list comprehension keeps the defined values: an identity test per value, where
        # ``list.count(None)`` compares each timedelta with None through its rich comparison
        # (measured 25 ms against 32 ms for 1,000,000 values, benchmarks/bench_kpi.py)
        defined = [v for column in columns for v in column if v is not None]
        if self.keep_values:
            self.add_many(defined, n - len(defined))
            return
        self.count += len(defined)
        self.excluded += n - len(defined)
        self.total = sum(defined, self.total)

    def merge(self, other: DurationStats) -> None:
        """Add everything ``other`` counted into this accumulator."""
        if self.keep_values and not other.keep_values and other.count:
            raise ValidationError(
                "cannot merge an accumulator that kept no values into one that keeps them "
                "(its median would be wrong); build both with the same settings"
            )
        self.count += other.count
        self.excluded += other.excluded
        self.total += other.total
        if self.keep_values:
            self.values += other.values

    def summary(self, percentiles: Iterable[float] = ()) -> DurationSummary:
        """The figures so far (the kept values are not reordered)."""
        asked = check_percentiles(percentiles)
        mean = median = None
        found: dict[float, timedelta] = {}
        if self.count:
            mean = self.total / self.count
            if self.keep_values:
                n = len(self.values)
                ranks = [r for p in (50.0, *asked) for r in _ranks(n, p)]
                at = order_statistics(self.values, ranks).__getitem__
                median = _interpolate(at, n, 50.0)
                found = {p: _interpolate(at, n, p) for p in asked}
        return DurationSummary(
            count=self.count,
            excluded=self.excluded,
            total=self.total,
            mean=mean,
            median=median,
            percentiles=found,
        )
