"""Clocks: the only way csmcore learns what time it is.

The domain never calls ``datetime.now()``; services take a :class:`Clock`. Use
:class:`SystemClock` in production and :class:`FixedClock` in tests.

>>> from datetime import datetime, timedelta, timezone
>>> clock = FixedClock(datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc))
>>> clock.now()
datetime.datetime(2025, 1, 6, 9, 0, tzinfo=datetime.timezone.utc)
>>> clock.advance(timedelta(minutes=5)).now()
datetime.datetime(2025, 1, 6, 9, 5, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

from csmcore._boundary import guard_class
from csmcore._time import MAX_INSTANT, MIN_INSTANT, in_range_us, out_of_range, require_aware
from csmcore.errors import ValidationError

__all__ = ["Clock", "FixedClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Anything with a ``now()`` that returns an aware ``datetime``."""

    def now(self) -> datetime:
        """Return the current instant as a timezone-aware datetime."""
        ...


class SystemClock:
    """The real clock, in UTC."""

    __slots__ = ()

    def now(self) -> datetime:
        """Return ``datetime.now(timezone.utc)``."""
        return datetime.now(timezone.utc)

    def __repr__(self) -> str:
        return "SystemClock()"


def _in_range(now: datetime) -> datetime:
    """``now`` when it is an aware datetime in the supported range, else the CsmError."""
    in_range_us(require_aware(now, "now"), "now")
    return now


@guard_class
class FixedClock:
    """A clock that stands still until told to move; for tests and replays.

    Raises :class:`~csmcore.errors.NaiveDatetimeError` for a naive start or ``set`` value, and
    :class:`~csmcore.errors.ValidationError` for one outside the supported range of instants
    (2 January of the year 3 up to, excluded, 30 December 9998, UTC), as :meth:`advance` does.

    >>> from datetime import datetime, timezone
    >>> FixedClock(datetime(9999, 1, 1, tzinfo=timezone.utc))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.ValidationError: now=datetime.datetime(9999, 1, 1, ...) is outside the ...
    """

    __slots__ = ("_now",)

    def __init__(self, now: datetime) -> None:
        self._now = _in_range(now)

    def now(self) -> datetime:
        """Return the instant the clock is set to."""
        return self._now

    def set(self, now: datetime) -> FixedClock:
        """Move the clock to ``now`` (any direction) and return the clock.

        Raises as the constructor does; the clock is then unchanged.
        """
        self._now = _in_range(now)
        return self

    def advance(self, delta: timedelta) -> FixedClock:
        """Move the clock by ``delta`` of real (elapsed) time and return the clock.

        The clock stays in its time zone; across a DST change the wall clock moves by more or
        less than ``delta`` (plain ``datetime + timedelta`` would move the wall clock instead).
        Raises :class:`~csmcore.errors.ValidationError` when ``delta`` is not a ``timedelta``,
        or when the clock would leave the supported range of instants (2 January of the year 3
        up to 30 December 9998, UTC); the clock is then unchanged.
        """
        if not isinstance(delta, timedelta):
            raise ValidationError(
                f"delta={delta!r} is a {type(delta).__name__}; expected a datetime.timedelta"
            )
        zone = self._now.tzinfo
        try:
            moved = self._now.astimezone(timezone.utc) + delta
        except OverflowError:
            raise out_of_range(f"{self._now.isoformat()} + {delta!r}", "now + delta") from None
        if not MIN_INSTANT <= moved < MAX_INSTANT:
            raise out_of_range(moved, "now + delta")
        self._now = moved.astimezone(zone)
        return self

    def __repr__(self) -> str:
        return f"FixedClock({self._now!r})"
