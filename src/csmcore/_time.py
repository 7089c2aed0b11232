"""Small private helpers for instants and time zones."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from csmcore.errors import NaiveDatetimeError, UnknownTimezoneError, ValidationError, show

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = timedelta(microseconds=1)

MIN_INSTANT = datetime(3, 1, 2, tzinfo=timezone.utc)
"""The earliest instant csmcore accepts (2 January of the year 3, UTC): calendars, tickets, SLA
books and clocks refuse earlier ones with a ValidationError naming the argument."""
MAX_INSTANT = datetime(9998, 12, 30, tzinfo=timezone.utc)
"""The end (excluded) of the instants csmcore accepts (30 December 9998, UTC)."""
MIN_US = (MIN_INSTANT - EPOCH) // US
"""``MIN_INSTANT`` in microseconds since the Unix epoch."""
MAX_US = (MAX_INSTANT - EPOCH) // US
"""``MAX_INSTANT`` in microseconds since the Unix epoch."""
RANGE_TEXT = "csmcore accepts instants from 0003-01-02T00:00Z up to (excluded) 9998-12-30T00:00Z"

_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{2}):?(\d{2})$")


def require_aware(value: datetime, argument: str) -> datetime:
    """Return ``value`` if it is an aware datetime, else raise a CsmError naming ``argument``."""
    if not isinstance(value, datetime):
        raise ValidationError(
            f"{argument}={show(value)} is a {type(value).__name__}; expected an aware datetime",
            field=argument,
            value=value,
        )
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(argument, value)
    return value


def shifted(value: datetime, delta: timedelta) -> datetime:
    """``value`` moved by ``delta`` of elapsed (real) time, in ``value``'s time zone.

    Plain ``value + delta`` moves the wall clock of a zone with daylight saving time, and drops
    ``fold``: 02:58 CEST plus 5 minutes would read 03:03 and mean 03:03 CET, an hour late, and
    the second 02:10 (CET) plus 5 minutes 02:15 CEST, an hour early. This goes through UTC.
    """
    if value.tzinfo is timezone.utc:
        return value + delta
    return (value.astimezone(timezone.utc) + delta).astimezone(value.tzinfo)


def out_of_range(value: object, argument: str) -> ValidationError:
    """The ValidationError for an instant outside ``[MIN_INSTANT, MAX_INSTANT)``."""
    return ValidationError(
        f"{argument}={value!r} is outside the supported range of instants; {RANGE_TEXT}",
        field=argument,
        value=value,
    )


def in_range_us(value: datetime, argument: str) -> int:
    """``to_us(value)`` of an aware datetime, or ValidationError naming ``argument`` when it is
    outside ``[MIN_INSTANT, MAX_INSTANT)`` (also when its UTC form is not a datetime)."""
    try:
        us = to_us(value)
    except OverflowError:
        raise out_of_range(value, argument) from None
    if not MIN_US <= us < MAX_US:
        raise out_of_range(value, argument)
    return us


def to_us(value: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact).

    Spelled out from the timedelta's parts: ``(value - EPOCH) // US`` gives the same integer
    but about twice as slowly (floor division of timedeltas goes through two conversions).
    """
    d = value - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def from_us(us: int, tz: tzinfo | None = None) -> datetime:
    """The instant ``us`` microseconds after the epoch, in ``tz`` (UTC when None)."""
    value = EPOCH + timedelta(microseconds=us)
    return value if tz is None else value.astimezone(tz)


def zone_from_name(name: str) -> tzinfo:
    """Resolve an IANA zone name, ``"UTC"`` or a fixed offset such as ``"+05:30"``."""
    if not isinstance(name, str) or not name:  # before the cache, which needs a hashable key
        raise UnknownTimezoneError(
            f"timezone={show(name)} is not a time zone; expected an IANA name such as "
            "'Europe/Berlin', 'UTC', or a fixed offset such as '+05:30'",
            field="timezone",
            value=name,
        )
    return _zone_from_name(name)


@lru_cache(maxsize=256)
def _zone_from_name(name: str) -> tzinfo:
    if name in ("UTC", "Z"):
        return timezone.utc
    match = _OFFSET.match(name)
    if match:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        if offset >= timedelta(hours=24):
            raise UnknownTimezoneError(f"timezone={name!r}: an offset must be under 24 hours")
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise UnknownTimezoneError(
            f"timezone={name!r} is not a known IANA time zone; expected a name such as "
            "'Europe/Berlin', 'America/New_York', 'UTC', or a fixed offset such as '+05:30'"
        ) from err


def zone_name(tz: tzinfo) -> str | None:
    """The serialisable name of ``tz``, or None when it has none."""
    if isinstance(tz, ZoneInfo):
        return tz.key
    if isinstance(tz, timezone):
        offset = tz.utcoffset(None)
        if offset == timedelta(0):
            return "UTC"
        sign = "-" if offset < timedelta(0) else "+"
        minutes = abs(offset) // timedelta(minutes=1)
        if abs(offset) % timedelta(minutes=1):
            return None
        return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return None


def resolve_zone(value: object, argument: str = "timezone") -> tzinfo:
    """Accept an IANA name, a fixed offset string or a tzinfo; return a tzinfo."""
    if isinstance(value, tzinfo):
        return value
    if isinstance(value, str):
        return zone_from_name(value)
    raise UnknownTimezoneError(
        f"{argument}={show(value)} is a {type(value).__name__}; expected an IANA zone name or a "
        "tzinfo"
    )


FAST_LIMIT_US = 2**32 * 1_000_000
"""Below this many microseconds after the epoch (year 2106), ``fromtimestamp(u / 1e6)`` is exact:
half an ulp of the float is under half a microsecond, so rounding recovers ``u``. It is three times
cheaper than ``EPOCH + timedelta(microseconds=u)`` followed by ``astimezone``."""
_fromtimestamp = datetime.fromtimestamp


def to_datetime(us: int, tz: tzinfo | None) -> datetime:
    """The instant ``us`` microseconds after the epoch, in ``tz``; exact.

    Equal to ``from_us(us, tz)`` for a tzinfo, by the cheapest path: integer arithmetic for
    ``timezone.utc``, ``fromtimestamp`` below :data:`FAST_LIMIT_US`, the epoch plus a timedelta
    elsewhere. The engines convert their integer instants back with it.
    """
    if tz is timezone.utc:
        return EPOCH + US * us  # integer arithmetic: exact, and the cheapest form for UTC
    if 0 <= us < FAST_LIMIT_US:
        return _fromtimestamp(us / 1e6, tz)
    return (EPOCH + timedelta(microseconds=us)).astimezone(tz)
