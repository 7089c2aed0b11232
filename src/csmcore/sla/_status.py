"""The judgements: :class:`SlaStatus` (one target cycle at an instant) and :class:`SlaChange`.

The engine builds statuses from integers and converts their instants and durations lazily, on
first read (see the note above :data:`_CONVERT`); :func:`new_status` and :func:`convert_all`
are its side of that.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any, NamedTuple

import attrs

from csmcore._boundary import guard_class
from csmcore._time import US, to_datetime, to_us
from csmcore.serialization import serializable
from csmcore.sla._enums import SlaMetric, SlaState

__all__ = [
    "SlaChange",
    "SlaResults",
    "SlaStatus",
    "StatusMicroseconds",
    "convert_all",
    "new_status",
]


class StatusMicroseconds(NamedTuple):
    """A status's instants (UTC microseconds since the epoch) and durations (microseconds of
    the target's clock) as integers: what :meth:`SlaStatus.microseconds` returns."""

    started: int
    due: int
    breached: int | None
    stopped: int | None
    elapsed: int
    paused: int
    within: int


def _us_or_none(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


@serializable("sla_status", aliases=("csmcore.sla:SlaStatus",))
@attrs.frozen(kw_only=True, slots=False)
class SlaStatus:
    """One target cycle of one ticket, as judged at :attr:`at`.

    Durations are in the target's clock: business time for business-hours targets, wall time
    otherwise. ``elapsed`` is the counted time, ``paused`` the time of that clock spent paused
    (including time solved before a reopen); ``elapsed + paused`` is the clock time from
    ``started_at`` to the stop or to :attr:`at`. ``due_at`` is when the target breaches if the
    clock keeps running (for a paused cycle: if it resumed at :attr:`at`; for a stopped cycle:
    as it stood when it stopped; for a breached cycle: the breach instant). ``warning`` is the
    highest ``warn_at`` fraction reached. Instants are in the time zone of :attr:`at`.
    """

    policy: str
    policy_version: int
    target: str
    metric: SlaMetric
    cycle: int
    state: SlaState
    at: datetime
    started_at: datetime
    due_at: datetime
    within: timedelta
    elapsed: timedelta
    paused: timedelta
    breached_at: datetime | None = None
    achieved_at: datetime | None = None
    stopped_at: datetime | None = None
    warning: float | None = None

    @property
    def remaining(self) -> timedelta:
        """``within - elapsed``; negative after a breach."""
        return self.within - self.elapsed

    @property
    def percent_used(self) -> float:
        """Elapsed as a percentage of the target duration (over 100 after a breach)."""
        return 100.0 * (self.elapsed / self.within)

    def microseconds(self) -> StatusMicroseconds:
        """The instants and durations as integer microseconds, without building a datetime
        or a timedelta: for code that computes with many statuses (a planner) and would
        convert them back to integers:
        ``status.microseconds().elapsed * timedelta(microseconds=1) == status.elapsed``, and
        likewise for every field (``due`` is ``due_at`` as microseconds since the epoch).
        """
        raw = self.__dict__.get("_raw")
        within = self.within // US
        if raw is not None:
            return StatusMicroseconds(raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], within)
        return StatusMicroseconds(
            to_us(self.started_at),
            to_us(self.due_at),
            _us_or_none(self.breached_at),
            _us_or_none(self.stopped_at),
            self.elapsed // US,
            self.paused // US,
            within,
        )


# The engine stores the instants and durations of a status as integers under "_raw":
# (tz, started, due, breached, stopped, elapsed, paused), in microseconds, None where absent.
# The first read of one of them converts that one only (callers that scan many statuses often
# read just ``due_at``); a read of a second one converts all the rest and drops "_raw". Each
# converted value is then a plain attribute. The conversion is a non-data descriptor per field,
# installed outside the class body (so attrs and type checkers see plain fields): an instance
# attribute of the same name, as __init__ or a conversion sets, always wins over it, and a read
# that finds none costs one call, with no AttributeError raised and caught on the way.


def _instant_or_none(us: int | None, tz: tzinfo | None) -> datetime | None:
    return None if us is None else to_datetime(us, tz)


_CONVERT: dict[str, Callable[[tuple[Any, ...]], Any]] = {
    "started_at": lambda raw: to_datetime(raw[1], raw[0]),
    "due_at": lambda raw: to_datetime(raw[2], raw[0]),
    "breached_at": lambda raw: _instant_or_none(raw[3], raw[0]),
    "achieved_at": lambda raw: None if raw[3] is not None else _instant_or_none(raw[4], raw[0]),
    "stopped_at": lambda raw: _instant_or_none(raw[4], raw[0]),
    "elapsed": lambda raw: US * raw[5],  # cheaper than timedelta(0, 0, n); the same value
    "paused": lambda raw: US * raw[6],
}


_FRESH = len(attrs.fields(SlaStatus)) - len(_CONVERT) + 1
"""How many entries a status's ``__dict__`` has before any conversion: the fields
``Run.report`` sets, plus ``_raw``."""


class _RawField:
    __slots__ = ("convert", "name")

    def __init__(self, name: str, convert: Callable[[tuple[Any, ...]], Any]) -> None:
        self.name = name
        self.convert = convert

    def __get__(self, instance: SlaStatus | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        state = instance.__dict__
        raw = state.get("_raw")
        if raw is None:
            if self.name in state:  # another thread converted it after this read began
                return state[self.name]
            raise AttributeError(
                f"{type(instance).__name__!r} object has no attribute {self.name!r}"
            )
        if len(state) == _FRESH:
            value = state[self.name] = self.convert(raw)
            return value
        convert_all(instance)
        return state[self.name]


def convert_all(status: SlaStatus) -> None:
    # "_raw" goes only once every field is there: a thread reading the status meanwhile finds
    # either the raw integers or the converted field (converting twice gives equal values).
    state = status.__dict__
    raw = state.get("_raw")
    if raw is not None:
        for field, convert in _CONVERT.items():
            if field not in state:
                state[field] = convert(raw)
        state.pop("_raw", None)


for _name, _convert in _CONVERT.items():
    setattr(SlaStatus, _name, _RawField(_name, _convert))


@guard_class
class SlaResults(tuple[SlaStatus, ...]):
    """What :meth:`SlaBook.evaluate` returns: its statuses, ordered by target key (in book
    order) and cycle number, with lookups by target and cycle.

    It is a tuple (it iterates, indexes, compares and pickles as one, so code written for the
    plain tuple keeps working); the lookups read the target key (:attr:`SlaStatus.target`, the
    target's ``name`` or its metric value) and the cycle number.
    """

    __slots__ = ()

    @property
    def targets(self) -> tuple[str, ...]:
        """The target keys that have at least one cycle, in result order."""
        return tuple(dict.fromkeys(status.target for status in self))

    def cycles(self, target: str) -> tuple[SlaStatus, ...]:
        """The statuses of ``target``'s cycles, by cycle number (empty when it has none)."""
        return tuple(status for status in self if status.target == target)

    def get(self, target: str, cycle: int | None = None) -> SlaStatus | None:
        """The status of ``target``'s cycle number ``cycle``, or of its latest cycle when
        ``cycle`` is None; None when there is no such cycle."""
        found = None
        for status in self:
            if status.target == target and (cycle is None or status.cycle == cycle):
                found = status
                if cycle is not None:
                    break
        return found

    def by_target(self) -> dict[str, tuple[SlaStatus, ...]]:
        """A new dict of target key to its statuses (by cycle number), in result order."""
        out: dict[str, list[SlaStatus]] = {}
        for status in self:
            out.setdefault(status.target, []).append(status)
        return {key: tuple(statuses) for key, statuses in out.items()}


@serializable("sla_change", aliases=("csmcore.sla:SlaChange",))
@attrs.frozen(kw_only=True)
class SlaChange:
    """A target cycle whose judgement differs between two evaluations (see :func:`rebuild`)."""

    ticket_id: str
    target: str
    cycle: int
    before: SlaStatus | None
    after: SlaStatus | None


_new_object = object.__new__
_set_attribute = object.__setattr__


def new_status(fields: dict[str, Any]) -> SlaStatus:
    """An SlaStatus from its field dict, without the generated ``__init__``.

    SlaStatus is a dict-based attrs class (``slots=False``) for exactly this: one attribute
    store instead of sixteen. ``fields`` holds every field except those in :data:`_CONVERT`,
    which ``fields["_raw"]`` gives as integers (see :class:`_RawField`).
    """
    status: SlaStatus = _new_object(SlaStatus)
    _set_attribute(status, "__dict__", fields)
    return status


# Resolved here, where the names exist: the package presents these classes as csmcore.sla's.
attrs.resolve_types(SlaStatus)
attrs.resolve_types(SlaChange)
