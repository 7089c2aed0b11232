"""Streaming, mergeable statistics of durations: the building blocks of the KPIs.

Durations stay ``timedelta`` (whole microseconds): sums are exact, a mean is the sum divided by
the count rounded half to even (``timedelta`` division), and the median of an even count is the
mean of the two middle values, exactly as :func:`statistics.median` computes it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import timedelta

import attrs

from csmcore.errors import InvalidType, ValidationError

__all__ = ["DurationStats", "DurationSummary", "check_percentiles", "quantile"]


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
    n = len(ordered)
    if percentile == 50.0:
        mid = n // 2
        if n % 2:
            return ordered[mid]
        return (ordered[mid - 1] + ordered[mid]) / 2
    position = (n - 1) * percentile / 100.0
    low = math.floor(position)
    high = min(low + 1, n - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


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
        """The figures so far (the values are sorted in place on the first call)."""
        asked = check_percentiles(percentiles)
        mean = median = None
        found: dict[float, timedelta] = {}
        if self.count:
            mean = self.total / self.count
            if self.keep_values:
                ordered = self.values
                ordered.sort()
                median = quantile(ordered, 50.0)
                found = {p: quantile(ordered, p) for p in asked}
        return DurationSummary(
            count=self.count,
            excluded=self.excluded,
            total=self.total,
            mean=mean,
            median=median,
            percentiles=found,
        )
