"""Spans and days of business time (private): the limits of an addition, the days a recurring
rule falls on, and interval arithmetic on UTC microseconds; :mod:`._timeline` builds on them."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone, tzinfo

from dateutil.rrule import DAILY, MONTHLY, WEEKLY, rrule, rruleset, weekday

from csmcore._time import EPOCH, US
from csmcore.errors import NoBusinessTimeError

__all__ = [
    "DAY_US",
    "EARLIEST_US",
    "LATEST_US",
    "MAX_REACH",
    "MAX_REACH_US",
    "RuleDays",
    "check_reach",
    "iso",
    "shift",
    "shift_set",
    "subtract",
    "union",
    "us_of",
]


EARLIEST_US = (datetime(2, 1, 2, tzinfo=timezone.utc) - EPOCH) // US
LATEST_US = (datetime(9998, 12, 31, tzinfo=timezone.utc) - EPOCH) // US


MAX_REACH_US = 400 * 366 * 86_400 * 1_000_000
"""``add`` refuses a delta of more than about 400 years (146,400 days), whatever is cached."""
MAX_REACH = timedelta(microseconds=MAX_REACH_US)


def check_reach(t: int, d: int, start: datetime, delta: timedelta) -> None:
    """Fail fast when ``add(start, delta)`` cannot be answered within the calendar's reach.

    Business time never runs faster than real time, so the result is at least ``|delta|`` of
    real time away from ``start``. A result outside the years 2 to 9998, or more than 400 years
    away, would need the timeline grown year by year over centuries (slow, and about 80 KiB a
    year): refuse at once instead.
    """
    if abs(d) > MAX_REACH_US or not EARLIEST_US <= t + d < LATEST_US:
        raise NoBusinessTimeError(
            f"add(start={start.isoformat()}, delta={delta!r}): csmcore adds at most "
            f"{MAX_REACH.days} days of business time, and its results stay within the years "
            "2 to 9998"
        )


DAY_US = 86_400_000_000


class RuleDays:
    """The dates on which one recurring rule occurs, read from the rule in order and kept for
    the span last asked about (a rule's ``between`` walks from its DTSTART on every call).

    A query far from what was read restarts the rule near it: each rule without COUNT is
    rebuilt with a DTSTART a whole number of its periods (``INTERVAL`` days, weeks, months or
    years) later, at the start of a period, with every BY part it derived from its DTSTART
    given explicitly, so it yields the same occurrences from there on. A rule with COUNT is
    read from its DTSTART (at most ``MAX_RULE_COUNT`` occurrences)."""

    __slots__ = ("_days", "_from", "_left", "_rule", "_shiftable", "_to", "_tz")

    def __init__(self, rule: rruleset, tz: tzinfo) -> None:
        self._rule = rule
        self._tz = tz
        subs = [*rule._rrule, *rule._exrule]  # type: ignore[attr-defined]
        self._shiftable = all(sub._count is None for sub in subs)
        self._restart(None)

    def _restart(self, near: date | None) -> None:
        rule = self._rule
        start = date.min
        if near is not None and self._shiftable:
            start = near - timedelta(days=7)  # margin: aware rules are read in another zone
            rule = shift_set(rule, start)
        self._left: Iterator[datetime] | None = iter(rule)
        self._days: list[date] = []
        self._from = start  # occurrences on the dates [_from, _to) are all in _days
        self._to = start

    def between(self, first: date, last: date) -> list[date]:
        """The dates of occurrences from ``first`` to ``last``, both included."""
        if first < self._from or (self._shiftable and (first - self._to).days > 800):
            self._restart(first)
        days = self._days
        left = self._left
        while left is not None and self._to <= last:
            moment = next(left, None)
            if moment is None:
                self._left = left = None
                self._to = date.max
                break
            day = moment.date() if moment.tzinfo is None else moment.astimezone(self._tz).date()
            days.append(day)
            self._to = day
        return days[bisect_left(days, first) : bisect_right(days, last)]


def shift_set(rules: rruleset, start: date) -> rruleset:
    """``rules`` with each rule restarted at its last period start on or before ``start``."""
    shifted = rruleset()
    for sub in rules._rrule:  # type: ignore[attr-defined]
        shifted.rrule(shift(sub, start))
    for sub in rules._exrule:  # type: ignore[attr-defined]
        shifted.exrule(shift(sub, start))
    for moment in rules._rdate:  # type: ignore[attr-defined]
        shifted.rdate(moment)
    for moment in rules._exdate:  # type: ignore[attr-defined]
        shifted.exdate(moment)
    return shifted


def shift(rule: rrule, start: date) -> rrule:
    """``rule`` (without COUNT) from its last period start on or before ``start``."""
    dtstart: datetime = rule._dtstart  # type: ignore[attr-defined]
    first = dtstart.date()
    if start <= first:
        return rule
    freq, n = rule._freq, rule._interval  # type: ignore[attr-defined]
    if freq == DAILY:
        begin = first + timedelta(days=(start - first).days // n * n)
    elif freq == WEEKLY:
        week = first - timedelta(days=(first.weekday() - rule._wkst) % 7)  # type: ignore[attr-defined]
        begin = week + timedelta(weeks=(start - week).days // 7 // n * n)
    elif freq == MONTHLY:
        months = ((start.year - first.year) * 12 + start.month - first.month) // n * n
        index = first.year * 12 + first.month - 1 + months
        begin = date(index // 12, index % 12 + 1, 1)
    else:  # YEARLY (the calendar refuses anything finer than daily)
        begin = date(first.year + (start.year - first.year) // n * n, 1, 1)
    if begin <= first:
        return rule
    weekdays = [weekday(day) for day in rule._byweekday or ()]  # type: ignore[attr-defined]
    weekdays += [weekday(day, nth) for day, nth in rule._bynweekday or ()]  # type: ignore[attr-defined]
    monthdays = [*(rule._bymonthday or ()), *(rule._bynmonthday or ())]  # type: ignore[attr-defined]
    return rrule(
        freq,
        dtstart=datetime(begin.year, begin.month, begin.day, tzinfo=dtstart.tzinfo),
        interval=n,
        wkst=rule._wkst,  # type: ignore[attr-defined]
        until=rule._until,  # type: ignore[attr-defined]
        bysetpos=rule._bysetpos or None,  # type: ignore[attr-defined]
        bymonth=rule._bymonth or None,  # type: ignore[attr-defined]
        bymonthday=monthdays or None,
        byyearday=rule._byyearday or None,  # type: ignore[attr-defined]
        byeaster=rule._byeaster or None,  # type: ignore[attr-defined]
        byweekno=rule._byweekno or None,  # type: ignore[attr-defined]
        byweekday=weekdays or None,
        byhour=rule._byhour,  # type: ignore[attr-defined]
        byminute=rule._byminute,  # type: ignore[attr-defined]
        bysecond=rule._bysecond,  # type: ignore[attr-defined]
        cache=False,
    )


def us_of(moment: datetime) -> int:
    return (moment - EPOCH) // US


def iso(tz: tzinfo, us: int) -> str:
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz).isoformat()


def union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, disjoint spans covering the same time as ``spans`` (closures may overlap)."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def subtract(
    intervals: list[tuple[int, int]], holes: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    starts = [lo for lo, _ in holes]
    out: list[tuple[int, int]] = []
    for lo, hi in intervals:
        index = max(bisect_right(starts, lo) - 1, 0)
        pieces = [(lo, hi)]
        while index < len(holes) and holes[index][0] < hi:
            h_lo, h_hi = holes[index]
            next_pieces = []
            for p_lo, p_hi in pieces:
                if h_hi <= p_lo or h_lo >= p_hi:
                    next_pieces.append((p_lo, p_hi))
                    continue
                if p_lo < h_lo:
                    next_pieces.append((p_lo, h_lo))
                if h_hi < p_hi:
                    next_pieces.append((h_hi, p_hi))
            pieces = next_pieces
            index += 1
        out.extend(pieces)
    return out
