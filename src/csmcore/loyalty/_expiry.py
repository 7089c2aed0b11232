"""Calendar periods, rounding, pending and expiry policies of a loyalty program (pure).

A period (month, quarter, half-year, year) is read in the policy's own ``timezone`` (a program
has none of its own): the month of ``2026-01-31T23:30-05:00`` in ``America/New_York`` is
January even though it is February in UTC. Period ends are exclusive instants (the start of
the next period).
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any, Final

import attrs
from dateutil.relativedelta import relativedelta

from csmcore._time import in_range_us, require_aware, zone_from_name
from csmcore._values import as_utc, coerce_enum, is_bool
from csmcore.errors import ValidationError
from csmcore.serialization import serializable

__all__ = [
    "EndOfPeriodExpiry",
    "ExpiryPolicy",
    "NeverExpires",
    "PendingPolicy",
    "Period",
    "RollingExpiry",
    "Rounding",
    "check_delta",
    "check_zone",
    "period_bounds",
]


class Period(enum.StrEnum):
    """A calendar period in a time zone: caps, end-of-period expiry and tier reviews use it."""

    MONTH = "month"
    QUARTER = "quarter"
    HALF_YEAR = "half_year"
    YEAR = "year"

    @property
    def months(self) -> int:
        """The length of the period in months (1, 3, 6 or 12)."""
        return _MONTHS[self]


_MONTHS: Final = {Period.MONTH: 1, Period.QUARTER: 3, Period.HALF_YEAR: 6, Period.YEAR: 12}


def period_bounds(at: datetime, period: Period, timezone: str = "UTC") -> tuple[datetime, datetime]:
    """The period containing ``at`` as ``(start, end)`` in UTC, ``end`` excluded; the period is
    read in ``timezone``.

    >>> from datetime import datetime, timezone
    >>> start, end = period_bounds(datetime(2026, 5, 10, tzinfo=timezone.utc), Period.QUARTER)
    >>> start.isoformat(), end.isoformat()
    ('2026-04-01T00:00:00+00:00', '2026-07-01T00:00:00+00:00')
    """
    in_range_us(require_aware(at, "at"), "at")
    zone = zone_from_name(timezone)
    local = at.astimezone(zone)
    size = _MONTHS[coerce_enum(Period, period, "period")]
    first = (local.month - 1) // size * size  # months since January, 0-based
    start = datetime(local.year, first + 1, 1, tzinfo=zone)
    year, month = divmod(first + size, 12)
    end = datetime(local.year + year, month + 1, 1, tzinfo=zone)
    return as_utc(start), as_utc(end)


def first_of_month(local: datetime, months: int) -> datetime:
    """The first day (00:00) of the month ``months`` after the month of ``local``, in its
    time zone (plain arithmetic: cheaper than a relativedelta)."""
    year, month = divmod(local.month - 1 + months, 12)
    return datetime(local.year + year, month + 1, 1, tzinfo=local.tzinfo)


def check_zone(_: object, attribute: Any, value: Any) -> None:
    """An attrs validator: ``value`` is a time zone name :func:`zone_from_name` knows."""
    if not isinstance(value, str):
        raise ValidationError(
            f"{attribute.name}={value!r} is not a time zone name; expected e.g. 'UTC' or "
            "'Europe/Berlin'",
            field=attribute.name,
            value=value,
        )
    zone_from_name(value)


_RELATIVE: Final = ("years", "months", "days", "hours", "minutes", "seconds", "microseconds")


def check_delta(value: object, argument: str, *, positive: bool = True) -> relativedelta:
    """``value`` as a :class:`relativedelta` with relative fields only (years, months, weeks,
    days, hours, minutes, seconds, microseconds), none negative, and (when ``positive``) not
    zero. A :class:`timedelta` is accepted and converted. ValidationError naming ``argument``
    otherwise."""
    if isinstance(value, timedelta) and not isinstance(value, bool):
        value = relativedelta(
            days=value.days, seconds=value.seconds, microseconds=value.microseconds
        )
    if not isinstance(value, relativedelta):
        raise ValidationError(
            f"{argument}={value!r} is not a period of time; expected a dateutil relativedelta "
            "such as relativedelta(months=12) (or a timedelta)",
            field=argument,
            value=value,
        )
    absolute = [
        name
        for name in ("year", "month", "day", "weekday", "hour", "minute", "second", "microsecond")
        if getattr(value, name) is not None
    ]
    if absolute or value.leapdays:
        raise ValidationError(
            f"{argument}={value!r} sets absolute fields {absolute or ['leapdays']}; only relative "
            f"fields are accepted: {', '.join(_RELATIVE)} (and weeks)",
            field=argument,
            value=value,
        )
    parts = [getattr(value, name) for name in _RELATIVE]
    if any(part < 0 for part in parts):
        raise ValidationError(
            f"{argument}={value!r} is negative; a period of time must be positive",
            field=argument,
            value=value,
        )
    if positive and not any(parts):
        raise ValidationError(
            f"{argument}={value!r} is zero; expected a positive period such as "
            "relativedelta(months=1)",
            field=argument,
            value=value,
        )
    return value


def _period(value: object) -> Period:
    return coerce_enum(Period, value, "period")


class Rounding(enum.StrEnum):
    """How fractional points are rounded to whole points (points are integers).

    ``DOWN`` truncates toward zero (the usual "1 point per full euro"), ``HALF_UP`` rounds
    0.5 up, ``HALF_EVEN`` rounds 0.5 to the even neighbour, ``UP`` rounds any fraction up.
    """

    DOWN = "down"
    HALF_UP = "half_up"
    HALF_EVEN = "half_even"
    UP = "up"

    def apply(self, value: Decimal) -> int:
        """``value`` rounded to a whole number of points.

        >>> Rounding.DOWN.apply(Decimal("268.28000000000003"))
        268
        >>> Rounding.HALF_UP.apply(Decimal("2.5")), Rounding.HALF_EVEN.apply(Decimal("2.5"))
        (3, 2)
        """
        return int(value.to_integral_value(rounding=_DECIMAL_MODES[self]))


# quotes are never negative, so ROUND_CEILING is "up" on them
_DECIMAL_MODES: Final = {
    Rounding.DOWN: ROUND_DOWN,
    Rounding.HALF_UP: ROUND_HALF_UP,
    Rounding.HALF_EVEN: ROUND_HALF_EVEN,
    Rounding.UP: ROUND_CEILING,
}


# -- pending ------------------------------------------------------------------------------


def _pending_after(value: Any) -> relativedelta | None:
    return None if value is None else check_delta(value, "after")


@serializable("loyalty.pending_policy", aliases=("csmcore.loyalty:PendingPolicy",))
@attrs.frozen(kw_only=True)
class PendingPolicy:
    """Whether earned points wait before they can be spent.

    ``after``: points activate by themselves this long after they were earned (a returns
    window: ``relativedelta(days=30)``), computed in ``timezone`` like the expiry policies (30
    days after 20 March 11:00 in Berlin is 19 April 11:00 there, across the clock change).
    ``explicit=True``: they wait until an explicit activation (``Ledger.activate``), e.g.
    when the order is delivered. Neither: points are active at once (the default).

    >>> from datetime import datetime, timezone
    >>> window = PendingPolicy(after=relativedelta(days=30), timezone="Europe/Berlin")
    >>> window.pending_until(datetime(2026, 3, 20, 10, tzinfo=timezone.utc)).isoformat()
    '2026-04-19T09:00:00+00:00'
    """

    after: relativedelta | None = attrs.field(default=None, converter=_pending_after)
    explicit: bool = attrs.field(default=False, validator=is_bool)
    timezone: str = attrs.field(default="UTC", validator=check_zone)

    def __attrs_post_init__(self) -> None:
        if self.explicit and self.after is not None:
            raise ValidationError(
                f"after={self.after!r} with explicit=True: pending points activate either after "
                "a period or by explicit activation, not both",
                field="after",
                value=self.after,
            )

    @property
    def is_pending(self) -> bool:
        """True when earned points start pending."""
        return self.explicit or self.after is not None

    def pending_until(self, earned_at: datetime) -> datetime | None:
        """When points earned at ``earned_at`` activate by themselves (UTC); None when they are
        active at once or wait for an explicit activation."""
        if self.after is None:
            return None
        local = require_aware(earned_at, "earned_at").astimezone(zone_from_name(self.timezone))
        return as_utc(local + self.after)


# -- expiry -------------------------------------------------------------------------------


@serializable("loyalty.never_expires", aliases=("csmcore.loyalty:NeverExpires",))
@attrs.frozen(kw_only=True)
class NeverExpires:
    """Points never expire."""

    def expires_at(self, available_at: datetime) -> datetime | None:
        """Always None."""
        require_aware(available_at, "available_at")
        return None


def _rolling_after(value: Any) -> relativedelta:
    return check_delta(value, "after")


@serializable("loyalty.rolling_expiry", aliases=("csmcore.loyalty:RollingExpiry",))
@attrs.frozen(kw_only=True)
class RollingExpiry:
    """Points expire a fixed period (``after``, a relativedelta) after they became available
    (earned, or activated at the end of a pending period), computed in ``timezone`` (so
    ``months=12`` after 31 March is 31 March, local time).

    >>> from datetime import datetime, timezone
    >>> RollingExpiry(after=relativedelta(months=12)).expires_at(
    ...     datetime(2026, 2, 28, 15, 0, tzinfo=timezone.utc)).isoformat()
    '2027-02-28T15:00:00+00:00'
    """

    after: relativedelta = attrs.field(converter=_rolling_after)
    timezone: str = attrs.field(default="UTC", validator=check_zone)

    def expires_at(self, available_at: datetime) -> datetime | None:
        """The expiry instant (UTC) of points available from ``available_at``."""
        local = require_aware(available_at, "available_at").astimezone(
            zone_from_name(self.timezone)
        )
        return as_utc(local + self.after)


def _min_age(value: Any) -> relativedelta:
    return check_delta(value, "min_age", positive=False)


@serializable("loyalty.end_of_period_expiry", aliases=("csmcore.loyalty:EndOfPeriodExpiry",))
@attrs.frozen(kw_only=True)
class EndOfPeriodExpiry:
    """Points expire at the end of a calendar period (month, quarter, half-year, year, in
    ``timezone``), once they are at least ``min_age`` old: the end of the period that contains
    ``available_at + min_age``.

    Points earned on 10 February 2026 with quarter-end expiry and a minimum age of 3 months:
    10 February + 3 months is 10 May, in Q2, so they expire on 1 July 2026 at 00:00 (usable
    through 30 June):

    >>> from datetime import datetime, timezone
    >>> rule = EndOfPeriodExpiry(period=Period.QUARTER, min_age=relativedelta(months=3))
    >>> rule.expires_at(datetime(2026, 2, 10, 12, 0, tzinfo=timezone.utc)).isoformat()
    '2026-07-01T00:00:00+00:00'
    """

    period: Period = attrs.field(converter=_period)
    min_age: relativedelta = attrs.field(factory=relativedelta, converter=_min_age)
    timezone: str = attrs.field(default="UTC", validator=check_zone)

    def expires_at(self, available_at: datetime) -> datetime | None:
        """The expiry instant (UTC) of points available from ``available_at``."""
        zone = zone_from_name(self.timezone)
        oldest = require_aware(available_at, "available_at").astimezone(zone) + self.min_age
        return period_bounds(oldest, self.period, self.timezone)[1]


ExpiryPolicy = NeverExpires | RollingExpiry | EndOfPeriodExpiry
"""One of the expiry policies."""

EXPIRY_TYPES: Final = (NeverExpires, RollingExpiry, EndOfPeriodExpiry)
