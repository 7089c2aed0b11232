"""The business-time line of a calendar: its open intervals in UTC microseconds, with a running
total of business time, built one calendar year at a time for the years asked about.

:class:`BusinessTimeline` is public (positions for engines); the rest of this module serves the
calendar's own arithmetic.
"""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, ClassVar, TypeAlias
from zoneinfo import ZoneInfo

from csmcore._boundary import PASS, guard_class, inline, translate
from csmcore._time import EPOCH, MAX_US, MIN_US, US, require_aware, to_datetime
from csmcore.calendars._days import (
    DAY_US,
    LATEST_US,
    MAX_REACH,
    MAX_REACH_US,
    RuleDays,
    check_reach,
    iso,
    subtract,
    union,
    us_of,
)
from csmcore.calendars._spec import parse_rule
from csmcore.errors import NoBusinessTimeError

if TYPE_CHECKING:
    from csmcore.calendars._calendar import BusinessCalendar

__all__ = ["MAX_REACH", "MAX_REACH_US", "BusinessTimeline", "Fast", "check_reach"]

_ONE_DAY = timedelta(days=1)

Segment: TypeAlias = tuple[list[int], list[int], int, int, int, int]
"""``(bounds, cum, safe_lo, safe_hi, first_year, stop_year)``: open intervals and running totals
of the local years ``[first_year, stop_year)``, exact for instants in ``[safe_lo, safe_hi)``."""

Fast: TypeAlias = tuple[tzinfo, datetime, datetime, list[datetime], list[timedelta]]


def _offset_change(tz: tzinfo, low: int, high: int, before: timedelta | None) -> int:
    """The first second in ``(low, high]`` at which ``tz``'s UTC offset is no longer ``before``
    (it is ``before`` at ``low`` and another at ``high``), by bisection."""
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            low = mid
        else:
            high = mid
    return high


@guard_class
class BusinessTimeline:
    """Positions on the business-time line of one :class:`BusinessCalendar`.

    The *position* of an instant is the business time, in whole microseconds, from a fixed
    origin of the calendar to that instant: it grows only while the calendar is open, so
    ``elapsed(a, b)`` is ``position(b) - position(a)`` and a due time is the earliest instant at
    a given position. Engines that ask many questions of one calendar (the SLA engine does)
    work with positions and plain integers instead of datetimes and timedeltas.

    Instants are integer microseconds since the Unix epoch (UTC). Positions are exact
    integers; they are comparable only between instants of the same calendar object (the origin
    is private to it and is not stable across processes, or between equal calendars). Every
    instant in ``[MIN_US, MAX_US)`` (from 2 January of the year 3 to 30 December 9998, UTC) has
    a position, in every calendar; beyond them the methods may raise
    :class:`~csmcore.errors.NoBusinessTimeError` (calendars cover the years 2 to 9998, a year
    at a time, and a year is built with its neighbours). Get a calendar's timeline from
    :attr:`BusinessCalendar.timeline`; it is safe to use from several threads.

    >>> from datetime import datetime, timedelta, timezone
    >>> from csmcore.calendars import BusinessCalendar
    >>> cal = BusinessCalendar.weekly("09:00", "17:00", timezone="UTC")
    >>> line = cal.timeline
    >>> friday = line.position_of(datetime(2025, 1, 3, 16, 0, tzinfo=timezone.utc))
    >>> monday = line.position_of(datetime(2025, 1, 6, 10, 0, tzinfo=timezone.utc))
    >>> timedelta(microseconds=monday - friday)  # two business hours over the weekend
    datetime.timedelta(seconds=7200)
    >>> three_hours = 3 * 3_600_000_000
    >>> line.instant_of(friday + three_hours, datetime(2025, 1, 3, 16, 0, tzinfo=timezone.utc))
    datetime.datetime(2025, 1, 6, 11, 0, tzinfo=datetime.timezone.utc)

    How it works (internal): open intervals as a flat sorted list
    ``bounds = [o0, c0, o1, c1, ...]`` of UTC microseconds, and ``cum[i]`` = business
    microseconds before interval ``i`` (``cum[n]`` is the total). Covers intervals that open on
    local dates ``[day_lo, day_hi)``; instants in ``[safe_lo, safe_hi)`` can be placed exactly.
    Extends one calendar year at a time. The attributes and methods whose names start with
    ``_`` are the calendar's own, for its fast paths; they are not part of the public API.

    Thread safety: the lists are never changed once published. Growing builds new lists and
    publishes them as one tuple ``data = (bounds, cum)`` under a lock, then widens
    ``safe_lo`` / ``safe_hi``; readers check the safe range first and read ``data`` after it, so
    they always see a pair of lists that covers their instant.

    The wall-clock fast path: ``fast = (tz, lo, hi, local, position)`` holds the same bounds as
    aware datetimes in the calendar's own zone object and the running totals as timedeltas.
    Python compares and subtracts two datetimes that share a tzinfo object by their wall-clock
    fields, without asking the zone for offsets, which makes that form about twice as fast for
    inputs in the calendar's zone. It is exact only when no UTC offset change happens inside
    or at the edge of an open interval: then wall-clock differences inside an interval are
    real differences, and every wall time that is ambiguous or missing lies inside one closed
    gap, where any instant has the same business position. ``fast`` is None whenever some
    offset change in the covered years breaks that (a 24/7 calendar in a DST zone, a window
    holding the change); the exact integer path is then used for everything.
    """

    MIN_US: ClassVar[int] = MIN_US
    """The earliest instant (UTC microseconds) that has a position in every calendar."""
    MAX_US: ClassVar[int] = MAX_US
    """Instants before this one (UTC microseconds) have a position in every calendar."""

    __slots__ = (
        "_cal",
        "_data",
        "_day_hi",
        "_day_lo",
        "_dst",
        "_far",
        "_fast",
        "_fast_ok",
        "_local",
        "_lock",
        "_rule_days",
        "_rules",
        "_safe_hi",
        "_safe_lo",
        "_shut",
        "_totals",
        "_tz",
        "_work",
        "_year_holidays",
    )

    def __init__(self, cal: BusinessCalendar) -> None:
        self._cal = cal
        self._tz = cal.timezone
        self._data: tuple[list[int], list[int]] = ([], [0])
        self._local: tuple[list[datetime], list[timedelta]] = ([], [timedelta(0)])
        self._fast: Fast | None = None
        self._fast_ok = True
        self._lock = threading.RLock()
        self._day_lo = date.max
        self._day_hi = date.min
        self._safe_lo = 0
        self._safe_hi = 0  # empty: nothing is safe until the first cover()
        self._rules = [parse_rule(text) for text in cal.recurring_holidays]
        self._shut = union([(us_of(a), us_of(b)) for a, b in cal.closures])
        self._rule_days = [RuleDays(rule, self._tz) for rule in self._rules]
        self._totals: dict[int, int] = {}  # year -> business us of the windows opening in it
        self._dst: dict[int, list[tuple[date, int]]] = {}  # year -> its DST corrections
        self._far: dict[int, Segment] = {}  # year -> a segment built around it, away from data
        self._year_holidays: dict[int, list[date]] | None = None
        self._work = [0, 0, 0]  # years built, years totalled, probes made (tests count work)

    # -- conversions --------------------------------------------------------------------------

    def _local_us(self, day: date, seconds: int) -> int:
        """UTC microseconds of local wall time ``day + seconds`` (DST rules of the module doc)."""
        tz = self._tz
        naive = datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)
        if isinstance(tz, timezone):
            return us_of(naive.replace(tzinfo=tz))
        first = naive.replace(tzinfo=tz)  # fold=0: first occurrence when ambiguous
        us = us_of(first)
        if (EPOCH + timedelta(microseconds=us)).astimezone(tz).replace(tzinfo=None) == naive:
            return us
        # The wall time does not exist (a gap): move forward to the instant the gap ends, i.e.
        # the first second whose local wall time is at or after ``naive``. Bracket it with the
        # offsets in force a day either side; this asks nothing of how the tzinfo treats fold
        # in a gap (zoneinfo and dateutil.tz differ there).
        offsets = [
            (naive + shift).replace(tzinfo=tz).utcoffset() or timedelta(0)
            for shift in (-_ONE_DAY, timedelta(0), _ONE_DAY)
        ]
        wall_s = (naive - datetime(1970, 1, 1)) // timedelta(seconds=1)
        low_s = wall_s - max(offsets) // timedelta(seconds=1) - 1  # wall time before naive
        high_s = wall_s - min(offsets) // timedelta(seconds=1) + 1  # wall time after the gap
        while high_s - low_s > 1:
            mid = (low_s + high_s) // 2
            if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= naive:
                high_s = mid
            else:
                low_s = mid
        return high_s * 1_000_000

    def _midnight_us(self, day: date) -> int:
        return us_of(datetime(day.year, day.month, day.day, tzinfo=self._tz))

    # -- building -----------------------------------------------------------------------------

    def _closed_days(self, first: date, last: date) -> set[date]:
        days: set[date] = set()
        for rule_days in self._rule_days:
            days.update(rule_days.between(first, last))
        return days

    def _build(self, first: date, stop: date) -> list[tuple[int, int]]:
        """Open intervals of windows opening on local dates ``[first, stop)``, sorted, merged."""
        cal = self._cal
        week = cal._week
        holidays = cal.holidays
        self._work[0] += 1
        shut_days = self._closed_days(first, stop - _ONE_DAY) if self._rules else set()
        out: list[tuple[int, int]] = []
        day = first
        while day < stop:
            windows = week[day.weekday()]
            if windows and day not in shut_days and day not in holidays:
                for opening, closing in windows:
                    lo = self._local_us(day, opening)
                    hi = self._local_us(day, closing)
                    if hi > lo:
                        out.append((lo, hi))
            day += _ONE_DAY
        if self._shut and out:
            out = subtract(out, self._shut)
        out.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in out:
            if merged and lo <= merged[-1][1]:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def _year_span(self, year: int) -> tuple[date, date]:
        if not 1 < year < 9999:
            raise NoBusinessTimeError(
                f"business-time arithmetic reached year {year}; csmcore calendars work between "
                "the years 2 and 9998"
            )
        return date(year, 1, 1), date(year + 1, 1, 1)

    def _refresh_safe(self) -> None:
        self._safe_lo = self._midnight_us(self._day_lo + 2 * _ONE_DAY)
        self._safe_hi = self._midnight_us(self._day_hi - _ONE_DAY)

    def _extend_forward(self) -> None:
        """Add the intervals of the next calendar year at the end."""
        with self._lock:
            self._extend_forward_held()

    def _extend_forward_held(self) -> None:
        first, stop = self._year_span(self._day_hi.year)
        bounds, cum = (list(part) for part in self._data)
        total = cum[-1]
        for lo, hi in self._build(first, stop):
            if bounds and lo < bounds[-1]:  # defensive: never overlap the previous year
                lo = bounds[-1]
                if hi <= lo:
                    continue
            # Adjacent intervals stay separate entries: readers never see an entry change.
            bounds.append(lo)
            bounds.append(hi)
            total += hi - lo
            cum.append(total)
        old_bounds, old_cum = self._data
        self._data = (bounds, cum)
        self._day_hi = stop
        self._refresh_safe()
        local, position = self._local
        self._local = (
            local + [to_datetime(b, self._tz) for b in bounds[len(old_bounds) :]],
            position + [timedelta(0, 0, c) for c in cum[len(old_cum) :]],
        )
        self._refresh_fast(first, stop)

    def _extend_backward(self) -> None:
        """Add the intervals of the previous calendar year at the start."""
        with self._lock:
            self._extend_backward_held()

    def _extend_backward_held(self) -> None:
        first, stop = self._year_span(self._day_lo.year - 1)
        new = self._build(first, stop)
        bounds, cum = self._data
        if bounds and new:
            # An overnight window of the new year can run into the old first interval.
            head = bounds[0]
            trimmed: list[tuple[int, int]] = []
            for lo, hi in new:
                hi = min(hi, head)
                if hi > lo:
                    trimmed.append((lo, hi))
            new = trimmed
        start = cum[0] - sum(hi - lo for lo, hi in new)
        prefix_bounds: list[int] = []
        prefix_cum: list[int] = []
        running = start
        for lo, hi in new:
            prefix_bounds.append(lo)
            prefix_bounds.append(hi)
            prefix_cum.append(running)
            running += hi - lo
        self._data = (prefix_bounds + bounds, prefix_cum + cum)
        self._day_lo = first
        self._refresh_safe()
        local, position = self._local
        self._local = (
            [to_datetime(b, self._tz) for b in prefix_bounds] + local,
            [timedelta(0, 0, c) for c in prefix_cum] + position,
        )
        self._refresh_fast(first, stop)

    def _refresh_fast(self, first: date, stop: date) -> None:
        """Re-check the fast path's condition for the year just added, then publish it."""
        if self._fast_ok:
            self._fast_ok = self._offsets_clear(first - 2 * _ONE_DAY, stop + 2 * _ONE_DAY)
        if not self._fast_ok:
            self._fast = None
            return
        tz = self._tz
        # Inputs are compared with these by wall clock; two days of margin keep them inside
        # [safe_lo, safe_hi) whatever the offsets do at the edges.
        lo = to_datetime(self._safe_lo, tz) + 2 * _ONE_DAY
        hi = to_datetime(self._safe_hi, tz) - 2 * _ONE_DAY
        self._fast = (tz, lo, hi, *self._local)

    def _offsets_clear(self, first: date, stop: date) -> bool:
        """Whether every UTC offset change from ``first`` to ``stop`` lies strictly inside a
        closed gap, together with the wall times it makes ambiguous or missing."""
        tz = self._tz
        if isinstance(tz, timezone):
            return True
        bounds = self._data[0]
        second = self._midnight_us(first) // 1_000_000
        end = self._midnight_us(stop) // 1_000_000
        before = datetime.fromtimestamp(second, tz).utcoffset()
        while second < end:
            # Probing every 6 hours finds every change: tzdata zones change their offset
            # months apart, never twice within hours (which could cancel out between probes).
            probe = min(second + 6 * 3600, end)
            if datetime.fromtimestamp(probe, tz).utcoffset() == before:
                second = probe
                continue
            high = _offset_change(tz, second, probe, before)
            after = datetime.fromtimestamp(high, tz).utcoffset()
            if before is None or after is None:
                return False
            change = high * 1_000_000
            reach = abs(after - before) // US  # wall times within this are ambiguous/missing
            k = bisect_left(bounds, change - reach)
            if k != bisect_right(bounds, change + reach) or k & 1:
                return False
            before, second = after, high
        return True

    # -- long spans: whole years summed, segments built away from the data -------------------

    def _main(self) -> Segment:
        """The contiguous data as a segment (call with the lock held)."""
        bounds, cum = self._data
        return (bounds, cum, self._safe_lo, self._safe_hi, self._day_lo.year, self._day_hi.year)

    def _lines(self, us: int) -> Segment:
        """A segment whose safe range holds ``us``: the contiguous data, grown by a year or two
        when ``us`` is near it, else a segment built around the year of ``us`` alone, placed
        by summing the business time of the whole years in between (:meth:`_year_total`)."""
        with self._lock:
            if self._safe_lo <= us < self._safe_hi:
                return self._main()
            if self._day_hi != date.min:
                year = (EPOCH + timedelta(microseconds=us)).astimezone(self._tz).year
                if year >= self._day_hi.year + 2 or year <= self._day_lo.year - 3:
                    return self._far_segment(year)
            self._cover_held(us)
            return self._main()

    def _far_segment(self, year: int) -> Segment:
        """Intervals of the years ``year - 1`` to ``year + 1`` (within 2 to 9998), positioned
        from the contiguous data (which they must not overlap; call with the lock held)."""
        found = self._far.get(year)
        if found is not None:
            return found
        lo_year, hi_year = max(2, year - 1), min(9998, year + 1)
        base = self._start_position(lo_year)
        bounds: list[int] = []
        cum = [base]
        for each in range(lo_year, hi_year + 1):
            first, stop = self._year_span(each)
            before = cum[-1]
            for lo, hi in self._build(first, stop):
                if bounds and lo < bounds[-1]:  # defensive, as in _extend_forward_held
                    lo = bounds[-1]
                    if hi <= lo:
                        continue
                bounds.append(lo)
                bounds.append(hi)
                cum.append(cum[-1] + hi - lo)
            self._totals.setdefault(each, cum[-1] - before)
        day_lo, day_hi = date(lo_year, 1, 1), date(hi_year + 1, 1, 1)
        segment: Segment = (
            bounds,
            cum,
            self._midnight_us(day_lo + 2 * _ONE_DAY),
            self._midnight_us(day_hi - _ONE_DAY),
            lo_year,
            hi_year + 1,
        )
        if len(self._far) >= 16:
            self._far.clear()
        self._far[year] = segment
        return segment

    def _start_position(self, year: int) -> int:
        """The position where the intervals of ``year`` begin, for a year outside the
        contiguous data (call with the lock held)."""
        cum = self._data[1]
        if year >= self._day_hi.year:
            return cum[-1] + sum(self._year_total(y) for y in range(self._day_hi.year, year))
        assert year + 1 <= self._day_lo.year
        return cum[0] - sum(self._year_total(y) for y in range(year, self._day_lo.year))

    def _seek_forward(self, target: int, origin: int) -> tuple[list[int], list[int]]:
        """``(bounds, cum)`` with ``cum[0] < target <= cum[-1]``, walking whole years forward
        from the segment of ``origin``. Raises NoBusinessTimeError as ``add`` does."""
        from csmcore.calendars._calendar import BusinessCalendar  # a cycle otherwise

        horizon = BusinessCalendar.search_horizon_days
        with self._lock:
            segment = self._lines(origin)
            if target <= segment[1][-1]:
                return segment[0], segment[1]
            year = segment[5]
            here = segment[1][-1]
            limit = date(year, 1, 1).toordinal() + horizon
            while True:
                if date(year, 1, 1).toordinal() >= limit:
                    raise NoBusinessTimeError(
                        f"{self._cal!r} has no open time in the "
                        f"{BusinessCalendar.search_horizon_days} days after "
                        f"{iso(self._tz, origin)}; holidays or closures shut every window"
                    )
                total = self._year_total(year)
                if here + total >= target:
                    break
                here += total
                year += 1
                if total:
                    limit = date(year, 1, 1).toordinal() + horizon
            if self._day_lo.year - 1 <= year <= self._day_hi.year:
                return self._main_holding(target, origin, forward=True)
            far = self._far_segment(year)
            return far[0], far[1]

    def _seek_backward(self, target: int, origin: int) -> tuple[list[int], list[int]]:
        """``(bounds, cum)`` with ``cum[0] <= target < cum[-1]``, walking whole years back
        from the segment of ``origin``. Raises NoBusinessTimeError as ``add`` does."""
        from csmcore.calendars._calendar import BusinessCalendar  # a cycle otherwise

        horizon = BusinessCalendar.search_horizon_days
        with self._lock:
            segment = self._lines(origin)
            if target >= segment[1][0]:
                return segment[0], segment[1]
            year = segment[4]
            here = segment[1][0]
            limit = date(year, 1, 1).toordinal() - horizon
            while True:
                if date(year, 1, 1).toordinal() <= limit:
                    raise NoBusinessTimeError(
                        f"{self._cal!r} has no open time in the "
                        f"{BusinessCalendar.search_horizon_days} days before "
                        f"{iso(self._tz, origin)}; holidays or closures shut every window"
                    )
                year -= 1
                total = self._year_total(year)
                if here - total <= target:
                    break
                here -= total
                if total:
                    limit = date(year, 1, 1).toordinal() - horizon
            if self._day_lo.year - 1 <= year <= self._day_hi.year:
                return self._main_holding(target, origin, forward=False)
            far = self._far_segment(year)
            return far[0], far[1]

    def _main_holding(
        self, target: int, origin: int, *, forward: bool
    ) -> tuple[list[int], list[int]]:
        """The contiguous data, grown to hold ``target``: ``cum[0] < target <= cum[-1]``
        (``forward``) or ``cum[0] <= target < cum[-1]`` (call with the lock held)."""
        if target + (not forward) > self._data[1][-1]:
            self._grow_forward_until_held(target + (not forward), origin)
        if target - forward < self._data[1][0]:
            self._grow_backward_until_held(target - forward, origin)
        return self._data

    def _year_total(self, year: int) -> int:
        """Business microseconds of the windows that open on the local dates of ``year``:
        exactly what building the year would add, computed as whole weeks less closed days,
        corrected on the days near a UTC offset change; built in full only near a closure."""
        total = self._totals.get(year)
        if total is None:
            total = self._quick_total(year)
            self._totals[year] = total
        return total

    def _quick_total(self, year: int) -> int:
        first, stop = self._year_span(year)
        self._work[1] += 1
        lo_us = self._midnight_us(first) - 3 * DAY_US
        hi_us = self._midnight_us(stop) + 3 * DAY_US
        shut = self._shut
        if shut:
            k = bisect_right(shut, (lo_us, MAX_US))
            if (k and shut[k - 1][1] > lo_us) or (k < len(shut) and shut[k][0] < hi_us):
                return sum(hi - lo for lo, hi in self._build(first, stop))
        week = self._cal._week
        nominal = [sum(c - o for o, c in windows) * 1_000_000 for windows in week]
        days = (stop - first).days
        weekday = first.weekday()
        total = 0
        for index in range(7):
            count = days // 7 + ((index - weekday) % 7 < days % 7)
            total += count * nominal[index]
        closed = self._closed_days(first, stop - _ONE_DAY) if self._rules else set()
        holidays = self._cal.holidays
        if isinstance(holidays, frozenset):
            by_year = self._year_holidays
            if by_year is None:
                by_year = {}
                for day in holidays:
                    by_year.setdefault(day.year, []).append(day)
                self._year_holidays = by_year
            closed.update(by_year.get(year, ()))
        else:
            day = first
            while day < stop:
                if week[day.weekday()] and day not in closed and day in holidays:
                    closed.add(day)
                day += _ONE_DAY
        for day in closed:
            total -= nominal[day.weekday()]
        for day, delta in self._corrections(year):
            if day not in closed:
                total += delta
        return total

    def _corrections(self, year: int) -> list[tuple[date, int]]:
        """The open days of ``year`` whose windows last longer or shorter in real time than on
        the wall clock (a UTC offset change inside or near them), each with the difference.

        A ``zoneinfo`` zone follows one yearly rule after its table of changes (which ends
        well before 2500), and the Gregorian calendar repeats every 400 years (146,097 days,
        a whole number of weeks), so after 2500 a year's corrections are those of the year
        400 years before, on the same dates."""
        found = self._dst.get(year)
        if found is not None:
            return found
        if year > 2500 and isinstance(self._tz, ZoneInfo):
            found = [
                (day.replace(year=year), delta) for day, delta in self._corrections(year - 400)
            ]
        else:
            found = self._exact_corrections(year)
        self._dst[year] = found
        return found

    def _exact_corrections(self, year: int) -> list[tuple[date, int]]:
        """:meth:`_corrections` found by probing the zone over the year."""
        first, stop = self._year_span(year)
        week = self._cal._week
        lo_us = self._midnight_us(first) - 3 * DAY_US
        hi_us = self._midnight_us(stop) + 3 * DAY_US
        affected: set[date] = set()
        for change in self._offset_changes(lo_us, hi_us):
            local = (EPOCH + timedelta(microseconds=change)).astimezone(self._tz).date()
            affected.update(local + timedelta(days=shift) for shift in range(-3, 2))
        found: list[tuple[date, int]] = []
        for day in sorted(affected):
            windows = week[day.weekday()] if first <= day < stop else ()
            if windows:
                real = 0
                for opening, closing in windows:
                    real += max(0, self._local_us(day, closing) - self._local_us(day, opening))
                delta = real - sum(c - o for o, c in windows) * 1_000_000
                if delta:
                    found.append((day, delta))
        return found

    def _offset_changes(self, lo_us: int, hi_us: int) -> list[int]:
        """The instants (UTC microseconds) in ``[lo_us, hi_us)`` at which the zone's UTC offset
        changes. Probed daily where tzdata lists irregular changes (1850 to 2100) and weekly
        elsewhere (before, zones keep their first offset; after, a yearly rule changes it at
        most twice a year, months apart), with a binary search for each change."""
        tz = self._tz
        if isinstance(tz, timezone):
            return []
        second = lo_us // 1_000_000
        end = hi_us // 1_000_000
        year = (EPOCH + timedelta(seconds=second)).year
        step = 86_400 if 1850 <= year <= 2100 else 7 * 86_400
        work = self._work
        before = datetime.fromtimestamp(second, tz).utcoffset()
        changes: list[int] = []
        while second < end:
            probe = min(second + step, end)
            work[2] += 1
            if datetime.fromtimestamp(probe, tz).utcoffset() == before:
                second = probe
                continue
            high = _offset_change(tz, second, probe, before)
            changes.append(high * 1_000_000)
            before, second = datetime.fromtimestamp(high, tz).utcoffset(), high
        return changes

    # -- the public API: positions -----------------------------------------------------------

    @inline("BusinessTimeline.position")
    def position(self, us: int) -> int:
        """The position of the instant ``us`` (UTC microseconds since the epoch): business
        microseconds from the timeline's origin to it.

        ``elapsed(a, b) == position(b) - position(a)`` (in microseconds); positions turn
        business-time arithmetic into integer arithmetic for engines that make many queries.
        The position is constant while the calendar is closed. Raises NoBusinessTimeError for
        an instant outside the years the calendar can cover (see :attr:`MIN_US`).
        """
        try:
            if self._safe_lo <= us < self._safe_hi:
                bounds, cum = self._data
            else:
                bounds, cum = self._lines(us)[:2]
            k = bisect_right(bounds, us)
            return cum[k >> 1] + us - bounds[k - 1] if k & 1 else cum[k >> 1]
        except PASS:
            raise
        except Exception as err:  # the public boundary, inline: a try costs nothing here
            raise translate(err, "BusinessTimeline.position") from err

    def instant_at(self, position: int, floor: int) -> int:
        """The earliest instant ``u >= floor`` (UTC microseconds) with
        ``self.position(u) >= position``.

        This is ``add(floor, position - self.position(floor))`` in microseconds (``floor``
        itself when ``position`` is not ahead of it). Raises NoBusinessTimeError as ``add``
        does: no open time within :attr:`BusinessCalendar.search_horizon_days`, or a result
        beyond the year 9998 or more than about 400 years of business time away.
        """
        return self.instant_from(position, floor, self.position(floor))

    @inline("BusinessTimeline.instant_from")
    def instant_from(self, position: int, floor: int, here: int) -> int:
        """:meth:`instant_at` for a caller that knows ``here == self.position(floor)``: one
        binary search instead of two. Undefined (a wrong answer) for a wrong ``here``."""
        try:
            if position <= here:
                return floor
            if position - here > MAX_REACH_US or floor + (position - here) >= LATEST_US:
                raise NoBusinessTimeError(
                    f"{position - here} us of business time after {iso(self._tz, floor)}: csmcore "
                    f"adds at most {MAX_REACH.days} days, and stays within the years 2 to 9998"
                )
            bounds, cum = self._data
            if not cum[0] < position <= cum[-1]:
                bounds, cum = self._seek_forward(position, floor)
            m = bisect_left(cum, position) - 1
            return bounds[m << 1] + position - cum[m]
        except PASS:
            raise
        except Exception as err:  # the public boundary, inline: a try costs nothing here
            raise translate(err, "BusinessTimeline.instant_from") from err

    def position_of(self, moment: datetime) -> int:
        """:meth:`position` of an aware datetime (any zone).

        Raises NaiveDatetimeError for a naive ``moment``.
        """
        return self.position(us_of(require_aware(moment, "moment")))

    def instant_of(self, position: int, not_before: datetime) -> datetime:
        """:meth:`instant_at` for datetimes: the earliest instant at or after ``not_before``
        whose position is at least ``position``, in ``not_before``'s time zone.

        Raises NaiveDatetimeError for a naive ``not_before``, and NoBusinessTimeError as
        :meth:`instant_at` does.
        """
        floor = us_of(require_aware(not_before, "not_before"))
        return to_datetime(self.instant_at(position, floor), not_before.tzinfo)

    # -- growing ------------------------------------------------------------------------------

    def _cover(self, us: int) -> None:
        """Extend the timeline until ``us`` lies in ``[safe_lo, safe_hi)``."""
        with self._lock:
            self._cover_held(us)

    def _cover_held(self, us: int) -> None:
        if self._day_hi == date.min:
            moment = (EPOCH + timedelta(microseconds=us)).astimezone(self._tz)
            first, _ = self._year_span(moment.year)
            self._day_lo = self._day_hi = first
            self._extend_forward_held()
            self._extend_backward_held()  # so the first year's early days are safe too
        while us >= self._safe_hi:
            self._extend_forward_held()
        while us < self._safe_lo:
            self._extend_backward_held()

    def _grow_forward_until(self, target: int, origin: int) -> None:
        """Extend until the running total reaches ``target`` or the horizon runs out."""
        with self._lock:
            self._grow_forward_until_held(target, origin)

    def _grow_forward_until_held(self, target: int, origin: int) -> None:
        from csmcore.calendars._calendar import BusinessCalendar  # a cycle otherwise

        limit = self._day_hi + timedelta(days=BusinessCalendar.search_horizon_days)
        while self._data[1][-1] < target:
            before = self._data[1][-1]
            if self._day_hi >= limit:
                raise NoBusinessTimeError(
                    f"{self._cal!r} has no open time in the {BusinessCalendar.search_horizon_days} "
                    f"days after {iso(self._tz, origin)}; holidays or closures shut every window"
                )
            self._extend_forward_held()
            if self._data[1][-1] > before:
                limit = self._day_hi + timedelta(days=BusinessCalendar.search_horizon_days)

    def _grow_backward_until(self, target: int, origin: int) -> None:
        """Extend backwards until the running total reaches down to ``target``."""
        with self._lock:
            self._grow_backward_until_held(target, origin)

    def _grow_backward_until_held(self, target: int, origin: int) -> None:
        from csmcore.calendars._calendar import BusinessCalendar  # a cycle otherwise

        limit = self._day_lo - timedelta(days=BusinessCalendar.search_horizon_days)
        while self._data[1][0] > target:
            before = self._data[1][0]
            if self._day_lo <= limit:
                raise NoBusinessTimeError(
                    f"{self._cal!r} has no open time in the {BusinessCalendar.search_horizon_days} "
                    f"days before {iso(self._tz, origin)}; holidays or closures shut every window"
                )
            self._extend_backward_held()
            if self._data[1][0] < before:
                limit = self._day_lo - timedelta(days=BusinessCalendar.search_horizon_days)
