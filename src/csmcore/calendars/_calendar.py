"""The :class:`BusinessCalendar` value and its business-time arithmetic."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Container, Iterable, Iterator
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import ClassVar

import attrs

from csmcore._boundary import PASS, guard_iter, inline, translate
from csmcore._time import (
    EPOCH,
    FAST_LIMIT_US,
    MAX_US,
    MIN_US,
    US,
    out_of_range,
    resolve_zone,
    to_datetime,
    zone_name,
)
from csmcore._values import show
from csmcore.calendars._spec import (
    WEEKDAYS,
    TimeSpec,
    Week,
    fmt_window,
    normalise_closures,
    normalise_holidays,
    normalise_rules,
    parse_days,
    parse_hours,
)
from csmcore.calendars._timeline import MAX_REACH, BusinessTimeline, check_reach
from csmcore.errors import CalendarError, NaiveDatetimeError, NoBusinessTimeError, ValidationError
from csmcore.serialization import serializable

__all__ = ["BusinessCalendar"]

_DAY = 86_400
_ZERO = timedelta(0)
_fromtimestamp = datetime.fromtimestamp


def _bad_instant(value: object, argument: str) -> ValidationError:
    if isinstance(value, datetime):
        return NaiveDatetimeError(argument, value)
    return ValidationError(
        f"{argument}={show(value)} is a {type(value).__name__}; expected an aware datetime",
        field=argument,
        value=value,
    )


def _instant_us(moment: datetime, argument: str, *, upto: bool = False) -> int:
    """``moment`` in UTC microseconds since the epoch, within the supported range (its end
    included when ``upto``); ValidationError naming ``argument`` for a non-datetime, a naive
    one, or one outside the range."""
    try:
        t: int = (moment - EPOCH) // US
    except TypeError:
        raise _bad_instant(moment, argument) from None
    except OverflowError:
        raise out_of_range(moment, argument) from None
    if not MIN_US <= t < MAX_US + upto:
        raise out_of_range(moment, argument)
    return t


def _bad_duration(value: object, argument: str) -> ValidationError:
    return ValidationError(
        f"{argument}={show(value)} is a {type(value).__name__}; expected a datetime.timedelta "
        "of business time",
        field=argument,
        value=value,
    )


def _in_utc(closures: tuple[tuple[datetime, datetime], ...]) -> tuple[tuple[datetime, ...], ...]:
    """What closures are compared and hashed by: their instants in UTC. Python never finds an
    ambiguous local time (a fall-back hour) equal to a time in another zone, not even the same
    instant (PEP 495), and a closure read back from data has a fixed offset where the one built
    had the zone."""
    return tuple(tuple(moment.astimezone(timezone.utc) for moment in pair) for pair in closures)


@serializable("business_calendar", aliases=("csmcore.calendars:BusinessCalendar",))
@attrs.frozen(kw_only=True, repr=False)
class BusinessCalendar:
    """When a team is open, and business-time arithmetic over it.

    Parameters (all keyword-only):

    ``timezone``
        IANA zone name (``"Europe/Berlin"``), ``"UTC"``, a fixed offset (``"+05:30"``) or a
        ``tzinfo``. Windows are wall-clock times in this zone.
    ``hours``
        weekday (``0``-``6`` or ``"mon"``-``"sun"``) to a list of ``(open, close)`` pairs of
        ``"HH:MM"`` strings. ``"24:00"`` is accepted as a close. A window whose close is not after
        its open runs past midnight and belongs to the day it opens on.
    ``holidays``
        dates closed all day: any collection of ``date`` (a list, a set, a ``holidays`` package
        calendar such as ``holidays.country_holidays("US")``, or :class:`CountryHolidays`). A
        holiday closes every window that opens on it, including the part past midnight.
    ``recurring_holidays``
        a dateutil ``rrule`` / ``rruleset`` / RFC 5545 string (or a list of them): every date on
        which it occurs is closed all day. A rule must repeat at most daily (``FREQ=YEARLY``,
        ``MONTHLY``, ``WEEKLY`` or ``DAILY``), keep ``BYEASTER`` offsets within -80 to 250 days
        and run through at most 600,000 periods up to the year 9998 or its ``UNTIL`` /
        ``COUNT`` (a weekly rule may run for ever, a daily one for about 1,600 years); other
        rules raise CalendarError naming the rule. ``holidays`` given as text or bytes does too.
    ``closures``
        ``(start, end)`` pairs of aware datetimes: partial closures (e.g. a half-day on
        Christmas Eve), removed from the open time.

    Raises :class:`~csmcore.errors.CalendarError` (a ``ValueError``) for malformed times,
    unknown weekdays, overlapping windows or a week with no open window, and
    :class:`~csmcore.errors.UnknownTimezoneError` for an unknown zone.

    Every method that takes an instant raises :class:`~csmcore.errors.NaiveDatetimeError` for a
    naive datetime, and :class:`~csmcore.errors.ValidationError` for an instant outside the
    supported range (from 2 January of the year 3 up to 30 December 9998, UTC, the timeline's
    ``MIN_US`` / ``MAX_US``), naming the argument. Results are in the time zone of the
    instant given.
    """

    timezone: tzinfo = attrs.field(converter=resolve_zone)
    _week: Week = attrs.field(alias="hours", converter=parse_hours)
    holidays: Container[date] = attrs.field(factory=frozenset, converter=normalise_holidays)
    recurring_holidays: tuple[str, ...] = attrs.field(default=(), converter=normalise_rules)
    closures: tuple[tuple[datetime, datetime], ...] = attrs.field(
        default=(), converter=normalise_closures, eq=_in_utc
    )
    _timeline: BusinessTimeline = attrs.field(init=False, eq=False, hash=False)

    search_horizon_days: ClassVar[int] = 3660
    """How far ``add`` and ``next_open`` look for open time before raising NoBusinessTimeError."""

    def __attrs_post_init__(self) -> None:
        if not any(self._week):
            raise CalendarError(
                "hours: the calendar has no open window on any weekday; give at least one, "
                "e.g. hours={'mon': [('09:00', '17:00')]}, or use BusinessCalendar.always()"
            )
        object.__setattr__(self, "_timeline", BusinessTimeline(self))

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def weekly(
        cls,
        open: TimeSpec,
        close: TimeSpec,
        *,
        days: str | Iterable[int | str] = "mon-fri",
        timezone: str | tzinfo = "UTC",
        holidays: object = (),
        recurring_holidays: object = (),
        closures: object = (),
    ) -> BusinessCalendar:
        """The same ``open``-``close`` window on each of ``days`` (``"mon-fri"``, ``"sat-mon"``,
        ``"mon,wed,fri"`` or a list of weekdays).

        >>> BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC").hours["mon"]
        (('09:00', '17:00'),)
        """
        return cls(
            timezone=timezone,
            hours={day: [(open, close)] for day in parse_days(days)},
            holidays=holidays,
            recurring_holidays=recurring_holidays,
            closures=closures,
        )

    @classmethod
    def always(
        cls,
        *,
        timezone: str | tzinfo = "UTC",
        holidays: object = (),
        recurring_holidays: object = (),
        closures: object = (),
    ) -> BusinessCalendar:
        """Open around the clock (24/7), less any holidays or closures given.

        >>> from datetime import datetime, timedelta, timezone
        >>> start = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
        >>> BusinessCalendar.always().add(start, timedelta(hours=30)) == start + timedelta(hours=30)
        True
        """
        return cls(
            timezone=timezone,
            hours={day: [("00:00", "24:00")] for day in range(7)},
            holidays=holidays,
            recurring_holidays=recurring_holidays,
            closures=closures,
        )

    # -- views ----------------------------------------------------------------------------------

    @property
    def timeline(self) -> BusinessTimeline:
        """This calendar's business-time line: positions for engines (see
        :class:`BusinessTimeline`). The same object for the calendar's lifetime."""
        return self._timeline

    @property
    def hours(self) -> dict[str, tuple[tuple[str, str], ...]]:
        """The weekly windows as ``{"mon": (("09:00", "17:00"),), ...}`` (open days only)."""
        return {
            WEEKDAYS[index]: tuple(fmt_window(w) for w in windows)
            for index, windows in enumerate(self._week)
            if windows
        }

    @property
    def timezone_name(self) -> str | None:
        """The zone's IANA name or ``"+HH:MM"`` offset; None for a tzinfo with no name."""
        return zone_name(self.timezone)

    def __repr__(self) -> str:
        zone = self.timezone_name or repr(self.timezone)
        parts = [f"timezone={zone!r}", f"hours={self.hours!r}"]
        if isinstance(self.holidays, frozenset):
            if self.holidays:
                parts.append(f"holidays=<{len(self.holidays)} dates>")
        else:
            parts.append(f"holidays={type(self.holidays).__name__}")
        if self.recurring_holidays:
            parts.append(f"recurring_holidays={self.recurring_holidays!r}")
        if self.closures:
            parts.append(f"closures=<{len(self.closures)} ranges>")
        return f"BusinessCalendar({', '.join(parts)})"

    # -- arithmetic -----------------------------------------------------------------------------

    @inline("BusinessCalendar.add")
    def add(self, start: datetime, delta: timedelta) -> datetime:
        """The instant ``delta`` of business time after ``start`` (before it when negative).

        For ``delta >= 0`` this is the earliest instant ``u >= start`` with
        ``elapsed(start, u) == delta``: a budget used up exactly at closing time gives the
        closing instant. For ``delta < 0`` it is the latest ``u <= start`` with
        ``elapsed(u, start) == -delta``. The result is in ``start``'s time zone.

        Raises NaiveDatetimeError for a naive ``start``, ValidationError when ``delta`` is not a
        timedelta, and NoBusinessTimeError when no open time lies within
        :attr:`search_horizon_days` in the direction of travel.
        """
        try:
            tl = self._timeline
            fast = tl._fast
            if fast is not None and type(start) is datetime and type(delta) is timedelta:
                tz, lo, hi, local, position = fast
                if start.tzinfo is tz and lo <= start < hi:
                    k = bisect_right(local, start)
                    here = position[k >> 1] + (start - local[k - 1]) if k & 1 else position[k >> 1]
                    try:
                        goal = here + delta
                    except OverflowError:  # a huge delta: the exact path says why it cannot be
                        goal = here
                    else:
                        if delta > _ZERO:
                            if goal <= position[-1] and delta <= MAX_REACH:
                                m = bisect_left(position, goal) - 1
                                return local[m << 1] + (goal - position[m])
                        elif delta < _ZERO:
                            if goal >= position[0] and -delta <= MAX_REACH:
                                m = bisect_right(position, goal) - 1
                                return local[m << 1] + (goal - position[m])
                        else:
                            return start
            t = _instant_us(start, "start")
            try:
                d = delta // US
            except TypeError:
                raise _bad_duration(delta, "delta") from None
            if tl._safe_lo <= t < tl._safe_hi:
                bounds, cum = tl._data
            else:
                bounds, cum = tl._lines(t)[:2]
            k = bisect_right(bounds, t)
            base = cum[k >> 1] + t - bounds[k - 1] if k & 1 else cum[k >> 1]
            check_reach(t, d, start, delta)
            if d > 0:
                target = base + d
                if target > cum[-1]:
                    bounds, cum = tl._seek_forward(target, t)
                m = bisect_left(cum, target) - 1
                u = bounds[m << 1] + target - cum[m]
            elif d < 0:
                target = base + d
                if target < cum[0]:
                    bounds, cum = tl._seek_backward(target, t)
                m = bisect_right(cum, target) - 1
                u = bounds[m << 1] + target - cum[m]
            else:
                return start
            if 0 <= u < FAST_LIMIT_US:
                return _fromtimestamp(u / 1e6, start.tzinfo)
            return (EPOCH + timedelta(microseconds=u)).astimezone(start.tzinfo)
        except PASS:
            raise
        except Exception as err:  # the public boundary, inline: a try costs nothing here
            raise translate(err, "BusinessCalendar.add") from err

    @inline("BusinessCalendar.elapsed")
    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Business time between ``start`` and ``end``; negative when ``end`` is before ``start``.

        Additive: ``elapsed(a, c) == elapsed(a, b) + elapsed(b, c)`` for any a, b, c.
        Raises NaiveDatetimeError naming ``start`` or ``end`` when one is naive.
        """
        try:
            tl = self._timeline
            fast = tl._fast
            if fast is not None and type(start) is datetime and type(end) is datetime:
                tz, lo, hi, local, position = fast
                if start.tzinfo is tz and end.tzinfo is tz and lo <= start < hi and lo <= end < hi:
                    k = bisect_right(local, start)
                    from_a = (
                        position[k >> 1] + (start - local[k - 1]) if k & 1 else position[k >> 1]
                    )
                    k = bisect_right(local, end)
                    from_b = position[k >> 1] + (end - local[k - 1]) if k & 1 else position[k >> 1]
                    return from_b - from_a
            a = _instant_us(start, "start")
            b = _instant_us(end, "end")
            if tl._safe_lo <= a < tl._safe_hi and tl._safe_lo <= b < tl._safe_hi:
                bounds, cum = tl._data
                k = bisect_right(bounds, a)
                base_a = cum[k >> 1] + a - bounds[k - 1] if k & 1 else cum[k >> 1]
                k = bisect_right(bounds, b)
                base_b = cum[k >> 1] + b - bounds[k - 1] if k & 1 else cum[k >> 1]
                return timedelta(0, 0, base_b - base_a)
            return timedelta(0, 0, tl.position(b) - tl.position(a))
        except PASS:
            raise
        except Exception as err:  # the public boundary, inline: a try costs nothing here
            raise translate(err, "BusinessCalendar.elapsed") from err

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` lies inside an open window (windows are half-open: open at the
        opening instant, closed at the closing instant)."""
        t = _instant_us(at, "at")
        tl = self._timeline
        bounds = tl._data[0] if tl._safe_lo <= t < tl._safe_hi else tl._lines(t)[0]
        return bool(bisect_right(bounds, t) & 1)

    def next_open(self, at: datetime) -> datetime:
        """``at`` itself when the calendar is open then, else the next opening instant.

        Raises NoBusinessTimeError when nothing opens within :attr:`search_horizon_days`.
        """
        t = _instant_us(at, "at")
        tl = self._timeline
        if tl._safe_lo <= t < tl._safe_hi:
            bounds, cum = tl._data
        else:
            bounds, cum = tl._lines(t)[:2]
        k = bisect_right(bounds, t)
        if k & 1:
            return at
        if k == len(bounds):
            # Nothing opens in these lists: the next window is the one holding the first
            # microsecond of business time after ``t`` (whose position is their total).
            goal = cum[-1] + 1
            bounds, cum = tl._seek_forward(goal, t)
            k = (bisect_left(cum, goal) - 1) << 1
        return to_datetime(bounds[k], at.tzinfo)

    def next_close(self, at: datetime) -> datetime:
        """The instant the window open at ``at`` (or the next one to open) closes.

        Windows that touch (``mon 00:00-24:00`` then ``tue 00:00-...``) count as one: the
        result is the first instant at which the calendar is closed. Raises
        NoBusinessTimeError when nothing opens, or nothing closes, within
        :attr:`search_horizon_days` (so a 24/7 calendar without holidays raises).
        """
        opened = self.next_open(at)
        t = (opened - EPOCH) // US
        tl = self._timeline
        bounds = tl._data[0] if tl._safe_lo <= t < tl._safe_hi else tl._lines(t)[0]
        # The timeline keeps windows that touch across a year boundary as separate entries
        # (e.g. a 24/7 calendar closes "on" Jan 1 00:00 and reopens at once): skip those.
        limit = t + BusinessCalendar.search_horizon_days * _DAY * 1_000_000
        close = t
        while True:
            k = bisect_right(bounds, close)
            if not k & 1:  # after growing: nothing reopens at ``close``
                return to_datetime(close, at.tzinfo)
            while k + 1 < len(bounds) and bounds[k + 1] == bounds[k]:
                k += 2
            close = bounds[k]
            if k + 1 < len(bounds):
                return to_datetime(close, at.tzinfo)
            if close >= limit:
                raise NoBusinessTimeError(
                    f"{self!r} stays open for more than {self.search_horizon_days} days "
                    f"after {opened.isoformat()}; it has no closing instant to give"
                )
            bounds = tl._lines(close)[0]  # the lists that hold what follows ``close``

    def open_intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open intervals between ``start`` and ``end``, clipped to them, in order.

        Adjacent windows (e.g. 24/7 days) come out as one interval. Results are in ``start``'s
        time zone. Nothing is yielded when ``end <= start``.

        >>> from datetime import datetime, timezone
        >>> cal = BusinessCalendar.weekly("09:00", "17:00", timezone="UTC")
        >>> [(a.hour, b.hour) for a, b in cal.open_intervals(
        ...     datetime(2025, 1, 3, 12, tzinfo=timezone.utc),
        ...     datetime(2025, 1, 6, 10, tzinfo=timezone.utc))]
        [(12, 17), (9, 10)]
        """
        a = _instant_us(start, "start")
        b = _instant_us(end, "end", upto=True)
        return guard_iter(self._iter_intervals(a, b, start.tzinfo), "open_intervals")

    def _iter_intervals(
        self, a: int, b: int, tz: tzinfo | None
    ) -> Iterator[tuple[datetime, datetime]]:
        if b <= a:
            return
        tl = self._timeline
        pending: tuple[int, int] | None = None
        cursor = a  # everything before cursor is done; re-bisect each turn, the lists may grow
        while cursor < b:
            safe_hi = tl._safe_hi  # before the lists: they cover at least that far
            if tl._safe_lo <= cursor < safe_hi:
                bounds = tl._data[0]
            else:
                segment = tl._lines(cursor)
                bounds, safe_hi = segment[0], segment[3]
            k = bisect_right(bounds, cursor)
            if k & 1:
                lo, hi = cursor, bounds[k]
            elif k < len(bounds):
                lo, hi = bounds[k], bounds[k + 1]
            elif safe_hi > b:
                break  # nothing else opens before b
            else:
                cursor = safe_hi  # nothing opens before the end of these lists either
                continue
            if lo >= b:
                break
            hi = min(hi, b)
            if pending is not None and lo <= pending[1]:
                pending = (pending[0], hi)
            else:
                if pending is not None:
                    yield _pair(pending, tz)
                pending = (lo, hi)
            cursor = hi
        if pending is not None:
            yield _pair(pending, tz)


def _pair(span: tuple[int, int], tz: tzinfo | None) -> tuple[datetime, datetime]:
    return to_datetime(span[0], tz), to_datetime(span[1], tz)


# --------------------------------------------------------------------------------------------
# Serialization


# The package re-exports the class under its public module name (``csmcore.calendars``), which
# is where type hints would then be looked up: resolve them here, where they are defined.
attrs.resolve_types(BusinessCalendar)

# Doctest looks for examples in the methods of a class whose __module__ is this module; the
# package renames it (see above), so name the class here for the examples of its methods.
__test__ = {"BusinessCalendar": BusinessCalendar}
