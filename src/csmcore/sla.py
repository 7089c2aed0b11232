"""SLA policies and the engine that judges tickets against them.

An :class:`SlaPolicy` holds :class:`SlaTarget` values (a metric, a duration, business or calendar
time, which calendar). An :class:`SlaBook` is the ordered set of policies plus the calendars they
name; :meth:`SlaBook.evaluate` replays a ticket's events up to an instant and returns one
:class:`SlaStatus` per target and cycle, and :meth:`SlaBook.next_change` returns the exact next
instant at which any of them changes state, so callers can schedule instead of polling.

Evaluation is a pure function of (book, ticket history, instant). The semantics (which events
start, pause and stop each metric, reopen and priority-change rules, breach stickiness) are
described in ``docs/sla-concepts.md``; each has tests in ``tests/sla/``.

Internally every instant is an integer count of UTC microseconds and every clock (a business
calendar, or wall time for calendar-time targets) maps instants to a monotone *position* in
microseconds of counted time. Elapsed time is a difference of positions and a due time is the
earliest instant at a position, so each event costs a couple of bisections, not calendar walks.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Final

import attrs

from csmcore._time import FAST_LIMIT_US, US, require_aware, to_datetime, to_us
from csmcore._values import coerce_enum
from csmcore.calendars import BusinessCalendar
from csmcore.conditions import All, Always, AnyOf, Compare, Condition, Eq, In, Never, Not
from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import converter, serializable
from csmcore.tickets import (
    Assigned,
    Commented,
    Merged,
    Priority,
    PriorityChanged,
    Reopened,
    Role,
    Status,
    StatusChanged,
    Ticket,
    TicketCreated,
)

__all__ = [
    "Backtest",
    "BacktestRow",
    "CustomClock",
    "Metric",
    "OnChange",
    "OnReopen",
    "SlaBook",
    "SlaChange",
    "SlaError",
    "SlaPolicy",
    "SlaState",
    "SlaStatus",
    "SlaTarget",
    "SlaTrigger",
    "backtest",
    "rebuild",
]


class SlaError(ValidationError):
    """An SLA policy, target or book is not acceptable; the message names the value."""


class Metric(enum.StrEnum):
    """What a target measures (see ``docs/sla-concepts.md`` for the exact rules)."""

    FIRST_REPLY = "first_reply"
    """Creation until the first public agent reply (not for agent-created tickets)."""
    NEXT_REPLY = "next_reply"
    """A cycle per unanswered public requester comment, until the next public agent reply."""
    PERIODIC_UPDATE = "periodic_update"
    """Between consecutive public agent replies, whatever the status."""
    PAUSABLE_UPDATE = "pausable_update"
    """Between consecutive public agent replies, paused while the ticket is pending."""
    REQUESTER_WAIT = "requester_wait"
    """Time in new, open and on-hold until solved (paused while pending)."""
    AGENT_WORK = "agent_work"
    """Time in new and open until solved (paused while pending or on hold)."""
    TOTAL_RESOLUTION = "total_resolution"
    """Creation until solved, in every unsolved status."""
    CUSTOM = "custom"
    """Start / pause / stop / reset conditions given by a :class:`CustomClock`."""


class SlaState(enum.StrEnum):
    """The state of one target cycle. ``BREACHED`` is final for that cycle."""

    ACTIVE = "active"
    PAUSED = "paused"
    ACHIEVED = "achieved"
    BREACHED = "breached"


class OnReopen(enum.StrEnum):
    """What a reopened ticket does to a status-based target that was achieved on solve."""

    PAUSE = "pause"
    """Resume the same cycle; the time spent solved counts as paused."""
    NEW_CYCLE = "new_cycle"
    """Keep the achieved cycle and start a new one, with the full duration, at the reopen."""


class OnChange(enum.StrEnum):
    """What a change of the target in force (priority, policy, version) does to an open cycle."""

    KEEP_ELAPSED = "keep_elapsed"
    """Apply the new duration from the cycle's original start, keeping the elapsed time."""
    RESTART = "restart"
    """Restart the cycle at the change with zero elapsed time (a breached cycle stays breached)."""


class SlaTrigger(enum.StrEnum):
    """Events a :class:`CustomClock` can start or stop on (Jira Service Management style)."""

    CREATED = "created"
    REQUESTER_COMMENT = "requester_comment"
    """A public comment by the requester, or one an agent logged on the requester's behalf."""
    AGENT_REPLY = "agent_reply"
    """A public comment by an agent (internal notes and bot replies are not replies)."""
    SOLVED = "solved"
    """The ticket entered the solved or closed category (including by merging)."""
    REOPENED = "reopened"
    """The ticket left the solved or closed category."""
    ASSIGNED = "assigned"


# --------------------------------------------------------------------------------------------
# Policies and targets
# --------------------------------------------------------------------------------------------


def _check_condition(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Condition):
        raise SlaError(
            f"{attribute.name}={value!r} is not a condition; build one with csmcore.conditions "
            "(e.g. Field('priority') == 'high') or leave it None"
        )


def _enum_converter(cls: type[enum.Enum], name: str) -> Any:
    def convert(value: Any) -> Any:
        return coerce_enum(cls, value, name, error=SlaError)

    return convert


def _triggers(value: Any) -> frozenset[SlaTrigger]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SlaError(f"{value!r} is not a collection of SlaTrigger values")
    convert = _enum_converter(SlaTrigger, "trigger")
    return frozenset(convert(item) for item in value)


@serializable("sla_custom_timer", aliases=("csmcore.sla:CustomClock",))
@attrs.frozen(kw_only=True)
class CustomClock:
    """Start / pause / stop / reset rules of a custom target (ServiceNow and Jira style).

    Conditions are matched against the ticket after each event. A cycle starts when ``start``
    becomes true (it was false before the event) or on one of ``start_on``; an open cycle is
    paused while ``pause`` holds; it stops (achieved, unless already breached) when ``stop``
    holds or on one of ``stop_on``. When ``reset`` holds, the open cycle is cancelled (dropped
    from the results unless it had breached) and a new one starts if ``start`` holds.

    Raises :class:`SlaError` when there is no way to start or no way to stop.
    """

    start: Condition | None = attrs.field(default=None, validator=_check_condition)
    pause: Condition | None = attrs.field(default=None, validator=_check_condition)
    stop: Condition | None = attrs.field(default=None, validator=_check_condition)
    reset: Condition | None = attrs.field(default=None, validator=_check_condition)
    start_on: frozenset[SlaTrigger] = attrs.field(default=frozenset(), converter=_triggers)
    stop_on: frozenset[SlaTrigger] = attrs.field(default=frozenset(), converter=_triggers)

    def __attrs_post_init__(self) -> None:
        if self.start is None and not self.start_on:
            raise SlaError("CustomClock needs a start condition or start_on triggers")
        if self.stop is None and not self.stop_on:
            raise SlaError("CustomClock needs a stop condition or stop_on triggers")


def _positive_duration(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, timedelta):
        raise SlaError(f"{attribute.name}={value!r} is not a datetime.timedelta")
    if value <= timedelta(0):
        raise SlaError(f"{attribute.name}={value!r} must be a positive duration")


def _warn_at(value: Any) -> tuple[float, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SlaError(f"warn_at={value!r} is not a collection of fractions")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not 0 < item < 1:
            raise SlaError(
                f"warn_at: {item!r} is not a fraction strictly between 0 and 1 (0.75 = 75 %)"
            )
        out.append(float(item))
    return tuple(sorted(set(out)))


def _optional_name(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise SlaError(f"{attribute.name}={value!r} must be a non-empty string or None")


def _to_metric(value: Any) -> Metric:
    return _enum_converter(Metric, "metric")(value)  # type: ignore[no-any-return]


def _to_on_reopen(value: Any) -> OnReopen:
    return _enum_converter(OnReopen, "on_reopen")(value)  # type: ignore[no-any-return]


def _to_on_change(value: Any) -> OnChange:
    return _enum_converter(OnChange, "on_change")(value)  # type: ignore[no-any-return]


def _optional_priority(value: Any) -> Priority | None:
    if value is None:
        return None
    return _enum_converter(Priority, "priority")(value)  # type: ignore[no-any-return]


@serializable("sla_target", aliases=("csmcore.sla:SlaTarget",))
@attrs.frozen(kw_only=True)
class SlaTarget:
    """One target of a policy: ``metric`` must be met ``within`` a duration.

    ``priority`` limits the target to tickets of that priority (one target per priority, as in
    Zendesk); ``condition`` limits it to tickets matching a condition. Within a policy the first
    target of a given :attr:`key` whose priority and condition match is the one in force.

    ``business_hours`` counts only open time of ``calendar`` (a name from
    :attr:`SlaBook.calendars`; None means the book's default calendar); ``False`` counts wall
    time. ``warn_at`` lists fractions of the duration (``0.75``) at which
    :meth:`SlaBook.next_change` reports a warning. ``on_reopen`` and ``on_change`` choose the
    reopen and change rules. ``name`` is required for :attr:`Metric.CUSTOM` targets, which also
    need a ``clock``.

    Raises :class:`SlaError` for a non-positive duration, an unknown metric, a custom target
    without a clock or name, or a clock on a built-in metric.
    """

    metric: Metric = attrs.field(converter=_to_metric)
    within: timedelta = attrs.field(validator=_positive_duration)
    priority: Priority | None = attrs.field(default=None, converter=_optional_priority)
    condition: Condition | None = attrs.field(default=None, validator=_check_condition)
    business_hours: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    calendar: str | None = attrs.field(default=None, validator=_optional_name)
    name: str | None = attrs.field(default=None, validator=_optional_name)
    warn_at: tuple[float, ...] = attrs.field(default=(), converter=_warn_at)
    on_reopen: OnReopen = attrs.field(default=OnReopen.PAUSE, converter=_to_on_reopen)
    on_change: OnChange = attrs.field(default=OnChange.KEEP_ELAPSED, converter=_to_on_change)
    clock: CustomClock | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.metric is Metric.CUSTOM:
            if self.clock is None or self.name is None:
                raise SlaError("a custom target needs both a name and a clock=CustomClock(...)")
        elif self.clock is not None:
            raise SlaError(
                f"clock= applies to Metric.CUSTOM targets only, not to {self.metric.value!r}"
            )
        if self.clock is not None and not isinstance(self.clock, CustomClock):
            raise SlaError(f"clock={self.clock!r} is not a CustomClock")

    @property
    def key(self) -> str:
        """The target's identity across policies and versions: ``name`` or the metric value."""
        return self.name if self.name is not None else self.metric.value


def _check_position(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SlaError(f"position={value!r} must be an integer")


def _check_version(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SlaError(f"version={value!r} must be an integer >= 1")


def _targets(value: Any) -> tuple[SlaTarget, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SlaError(f"targets={value!r} is not a collection of SlaTarget")
    out = tuple(value)
    for index, item in enumerate(out):
        if not isinstance(item, SlaTarget):
            raise SlaError(f"targets[{index}]={item!r} is not an SlaTarget")
    return out


def _optional_instant(value: Any) -> datetime | None:
    return None if value is None else require_aware(value, "effective_from")


@serializable("sla_policy", aliases=("csmcore.sla:SlaPolicy",))
@attrs.frozen(kw_only=True)
class SlaPolicy:
    """A named, ordered, versioned set of targets and the tickets they apply to.

    Policies are tried by ascending ``position``; the first whose ``condition`` matches the
    ticket applies. A policy with ``default=True`` applies when no other one matches (its
    condition, if any, must match too). A policy with neither a condition nor ``default=True``
    is rejected, so an empty condition never matches by accident.

    ``version`` numbers edits of the policy with the same ``name``; a version applies from
    ``effective_from`` (an aware instant; None means from the beginning of time) to the next
    version's. As in Zendesk, a ticket picks up a new version at its next event; re-judging
    history under a new version is explicit: see :func:`rebuild`.

    Raises :class:`SlaError` for a bad name, position or version, no targets, two targets with
    the same key and priority that can never both apply, or a missing condition.
    """

    name: str = attrs.field(validator=_optional_name)
    position: int = attrs.field(validator=_check_position)
    targets: tuple[SlaTarget, ...] = attrs.field(converter=_targets)
    condition: Condition | None = attrs.field(default=None, validator=_check_condition)
    default: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    version: int = attrs.field(default=1, validator=_check_version)
    effective_from: datetime | None = attrs.field(default=None, converter=_optional_instant)

    def __attrs_post_init__(self) -> None:
        if not self.targets:
            raise SlaError(f"policy {self.name!r} has no targets")
        if self.condition is None and not self.default:
            raise SlaError(
                f"policy {self.name!r} has no condition; give condition=... or mark it "
                "default=True to make it the fallback for tickets no other policy matches"
            )
        metrics: dict[str, Metric] = {}
        for index, target in enumerate(self.targets):
            known = metrics.setdefault(target.key, target.metric)
            if known is not target.metric:
                raise SlaError(
                    f"policy {self.name!r}: targets[{index}] uses key {target.key!r} for "
                    f"{target.metric.value!r}, already used for {known.value!r}"
                )


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


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
    metric: Metric
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
``_Run.report`` sets, plus ``_raw``."""


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
        _convert_all(instance)
        return state[self.name]


def _convert_all(status: SlaStatus) -> None:
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


@serializable("sla_change", aliases=("csmcore.sla:SlaChange",))
@attrs.frozen(kw_only=True)
class SlaChange:
    """A target cycle whose judgement differs between two evaluations (see :func:`rebuild`)."""

    ticket_id: str
    target: str
    cycle: int
    before: SlaStatus | None
    after: SlaStatus | None


# --------------------------------------------------------------------------------------------
# Clocks: instants (UTC microseconds) to positions of counted time
# --------------------------------------------------------------------------------------------


class _Wall:
    __slots__ = ()

    def pos(self, t: int) -> int:
        return t

    def at(self, p: int, floor: int, here: int) -> int:
        return p if p > floor else floor


class _Business:
    """Positions on a business calendar: ``elapsed(a, b) == pos(b) - pos(a)``.

    Both methods are the calendar timeline's own (bound once here, so a query is one call).
    ``at(p, floor, here)`` is the earliest instant at or after ``floor`` whose position is at
    least ``p``, given ``here``, the position of ``floor``.
    """

    __slots__ = ("at", "pos")

    def __init__(self, cal: BusinessCalendar) -> None:
        timeline = cal.timeline
        self.pos: Callable[[int], int] = timeline.position
        self.at: Callable[[int, int, int], int] = timeline.instant_from


_WALL = _Wall()
_Clock = _Wall | _Business


# --------------------------------------------------------------------------------------------
# The book
# --------------------------------------------------------------------------------------------


class _Spec:
    """A target in force, compiled: the duration and thresholds in microseconds, its clock."""

    __slots__ = ("clock", "d", "policy", "policy_name", "target", "thresholds", "version", "within")

    def __init__(self, policy: SlaPolicy, target: SlaTarget, clock: _Clock) -> None:
        self.policy = policy
        self.target = target
        self.clock = clock
        self.policy_name = policy.name
        self.version = policy.version
        self.within = target.within
        self.d = target.within // US
        self.thresholds = tuple(
            (w, -(-round(w * 1_000_000) * self.d // 1_000_000)) for w in target.warn_at
        )


class _Compiled:
    """A policy's targets grouped by key (in order); ``by_priority`` holds the targets in force
    per priority when no target has a condition of its own (the usual case), else None."""

    __slots__ = ("by_priority", "condition", "groups", "policy", "trivial")

    def __init__(self, policy: SlaPolicy, groups: list[tuple[str, list[_Spec]]]) -> None:
        self.policy = policy
        self.condition = policy.condition
        self.groups = groups
        self.trivial = all(spec.target.condition is None for _, specs in groups for spec in specs)
        self.by_priority: dict[Priority, dict[str, _Spec]] | None = (
            {priority: self.in_force(None, priority) for priority in Priority}
            if self.trivial
            else None
        )

    def in_force(self, snapshot: Ticket | None, priority: Priority) -> dict[str, _Spec]:
        """The first matching target of each key (the caller must not change the dict)."""
        out: dict[str, _Spec] = {}
        for key, specs in self.groups:
            for spec in specs:
                target = spec.target
                if target.priority is not None and target.priority is not priority:
                    continue
                if target.condition is not None and (
                    snapshot is None or not target.condition.matches(snapshot)
                ):
                    continue
                out[key] = spec
                break
        return out


def _calendars(value: Any) -> tuple[tuple[str, BusinessCalendar], ...]:
    if isinstance(value, Mapping):
        value = value.items()
    out = []
    for item in value:
        name, cal = item
        if not isinstance(name, str) or not name:
            raise SlaError(f"calendars: {name!r} is not a calendar name (a non-empty string)")
        if not isinstance(cal, BusinessCalendar):
            raise SlaError(f"calendars[{name!r}]={cal!r} is not a BusinessCalendar")
        out.append((name, cal))
    return tuple(sorted(out, key=lambda pair: pair[0]))


def _policies(value: Any) -> tuple[SlaPolicy, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SlaError(f"policies={value!r} is not a collection of SlaPolicy")
    out = tuple(value)
    for index, item in enumerate(out):
        if not isinstance(item, SlaPolicy):
            raise SlaError(f"policies[{index}]={item!r} is not an SlaPolicy")
    return tuple(sorted(out, key=lambda p: (p.position, p.name, p.version)))


def _us(value: datetime, argument: str) -> int:
    if type(value) is datetime and value.tzinfo is timezone.utc:  # the usual case, checked
        return to_us(value)
    return to_us(require_aware(value, argument))


_NEVER = -(2**62)
_NOTHING_IN_FORCE: dict[str, _Spec] = {}  # shared: never changed

# Ticket fields fixed by TicketCreated that no later event changes.
_CONSTANT_FIELDS = frozenset({"channel", "created_by", "requester", "subject"})


def _reads_constant_only(condition: Condition) -> bool:
    """Whether ``condition`` reads only :data:`_CONSTANT_FIELDS` (unknown kinds: False).

    Such a condition has the same outcome on every snapshot of a ticket, so the engine can
    match it once on the creation snapshot instead of folding a snapshot per event.
    """
    kind = type(condition)
    if kind is All or kind is AnyOf:
        return all(_reads_constant_only(c) for c in condition.conditions)  # type: ignore[attr-defined]
    if kind is Not:
        return _reads_constant_only(condition.condition)  # type: ignore[attr-defined]
    if kind is Always or kind is Never:
        return True
    if kind is Eq or kind is In or kind is Compare:
        return condition.field in _CONSTANT_FIELDS  # type: ignore[attr-defined]
    return False


@serializable("sla_book", aliases=("csmcore.sla:SlaBook",))
@attrs.frozen(kw_only=True)
class SlaBook:
    """The ordered, versioned set of SLA policies and the calendars their targets use.

    ``calendar`` is the default business calendar; ``calendars`` maps names used by
    :attr:`SlaTarget.calendar` to calendars. At any instant, the versions in force (the latest
    ``effective_from`` not after it, per policy name) must have distinct positions and at most
    one default.

    Raises :class:`SlaError` for duplicate positions, two defaults, a duplicated
    ``(name, version)``, versions whose ``effective_from`` does not increase with the version,
    a target naming an unknown calendar, or a key used for two different metrics.
    """

    policies: tuple[SlaPolicy, ...] = attrs.field(converter=_policies)
    calendar: BusinessCalendar = attrs.field(
        validator=attrs.validators.instance_of(BusinessCalendar)
    )
    calendars: tuple[tuple[str, BusinessCalendar], ...] = attrs.field(
        default=(), converter=_calendars
    )
    _compiled: dict[int, _Compiled] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _breaks: list[int] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _epochs: list[list[_Compiled]] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _plans: list[_KeyPlan] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _snapshots: bool = attrs.field(init=False, eq=False, repr=False, hash=False)
    _constant: bool = attrs.field(init=False, eq=False, repr=False, hash=False)
    _custom: bool = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        clocks: dict[str | None, _Clock] = {None: _Business(self.calendar)}
        for name, cal in self.calendars:
            clocks[name] = _Business(cal)
        seen: dict[tuple[str, int], SlaPolicy] = {}
        metrics: dict[str, tuple[Metric, CustomClock | None]] = {}
        compiled: dict[int, _Compiled] = {}
        clocks_of: dict[str, set[_Clock]] = {}
        for policy in self.policies:
            ident = (policy.name, policy.version)
            if ident in seen:
                raise SlaError(f"policy {policy.name!r} version {policy.version} is given twice")
            seen[ident] = policy
            groups: dict[str, list[_Spec]] = {}
            for index, target in enumerate(policy.targets):
                if target.business_hours:
                    if target.calendar not in clocks:
                        raise SlaError(
                            f"policy {policy.name!r} targets[{index}] names calendar "
                            f"{target.calendar!r}; known calendars: "
                            f"{sorted(n for n in clocks if n is not None)}"
                        )
                    clock = clocks[target.calendar]
                else:
                    clock = _WALL
                known = metrics.setdefault(target.key, (target.metric, target.clock))
                if known[0] is not target.metric:
                    raise SlaError(
                        f"target key {target.key!r} is used for {known[0].value!r} and for "
                        f"{target.metric.value!r}; give the targets different names"
                    )
                if target.metric is Metric.CUSTOM and known[1] != target.clock:
                    raise SlaError(
                        f"custom target {target.key!r} has different clocks in different "
                        "policies; one key must always measure the same thing"
                    )
                groups.setdefault(target.key, []).append(_Spec(policy, target, clock))
                clocks_of.setdefault(target.key, set()).add(clock)
            compiled[id(policy)] = _Compiled(policy, list(groups.items()))
        # Versions per name must be ordered in time.
        by_name: dict[str, list[SlaPolicy]] = {}
        for policy in self.policies:
            by_name.setdefault(policy.name, []).append(policy)
        breaks = {_NEVER}
        for name, versions in by_name.items():
            versions.sort(key=lambda p: p.version)
            last = _NEVER - 1
            for policy in versions:
                start = (
                    _NEVER
                    if policy.effective_from is None
                    else _us(policy.effective_from, "effective_from")
                )
                if start <= last:
                    raise SlaError(
                        f"policy {name!r} version {policy.version} must take effect after "
                        "the previous version (effective_from must increase with the version; "
                        "only the first version may have effective_from=None)"
                    )
                last = start
                breaks.add(start)
        ordered = sorted(breaks)
        epochs: list[list[_Compiled]] = []
        for start in ordered:
            in_force = []
            for versions in by_name.values():
                current = None
                for policy in versions:
                    eff = (
                        _NEVER
                        if policy.effective_from is None
                        else _us(policy.effective_from, "effective_from")
                    )
                    if eff <= start:
                        current = policy
                if current is not None:
                    in_force.append(current)
            in_force.sort(key=lambda p: p.position)
            positions: dict[int, str] = {}
            defaults = []
            for policy in in_force:
                if policy.position in positions:
                    raise SlaError(
                        f"policies {positions[policy.position]!r} and {policy.name!r} share "
                        f"position {policy.position}; positions must be distinct"
                    )
                positions[policy.position] = policy.name
                if policy.default:
                    defaults.append(policy.name)
            if len(defaults) > 1:
                raise SlaError(
                    f"policies {defaults!r} are all default=True; at most one policy may be "
                    "the fallback"
                )
            plain = [compiled[id(p)] for p in in_force if not p.default]
            plain += [compiled[id(p)] for p in in_force if p.default]
            epochs.append(plain)
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_breaks", ordered)
        object.__setattr__(self, "_epochs", epochs)
        object.__setattr__(
            self,
            "_plans",
            [
                _KeyPlan(key, metric, clock, len(clocks_of[key]) > 1)
                for key, (metric, clock) in metrics.items()
            ],
        )
        needs = any(
            p.condition is not None or not c.trivial
            for p, c in ((c.policy, c) for c in compiled.values())
        ) or any(metric is Metric.CUSTOM for metric, _ in metrics.values())
        object.__setattr__(self, "_snapshots", needs)
        custom = any(metric is Metric.CUSTOM for metric, _ in metrics.values())
        conditions = [p.condition for p in self.policies] + [
            t.condition for p in self.policies for t in p.targets
        ]
        object.__setattr__(self, "_custom", custom)
        object.__setattr__(
            self,
            "_constant",
            not custom and all(c is None or _reads_constant_only(c) for c in conditions),
        )

    # -- public API -----------------------------------------------------------------------------

    def calendar_named(self, name: str | None) -> BusinessCalendar:
        """The calendar a target's ``calendar`` name refers to (None: the default one).

        Raises :class:`~csmcore.errors.NotFound` for an unknown name.
        """
        if name is None:
            return self.calendar
        for known, cal in self.calendars:
            if known == name:
                return cal
        from csmcore.errors import NotFound

        raise NotFound(
            f"calendar {name!r} is not in this book; known: {[n for n, _ in self.calendars]}"
        )

    def evaluate(self, ticket: Ticket, at: datetime) -> tuple[SlaStatus, ...]:
        """Judge ``ticket`` at instant ``at`` using only its events at or before ``at``.

        Returns one :class:`SlaStatus` per target cycle, ordered by target key (in the order
        the keys first appear in the book) and cycle number. Instants in the results are in
        ``at``'s time zone. Raises NaiveDatetimeError for a naive ``at``.
        """
        until = _us(at, "at")
        run = _Run(self, ticket, until)
        return run.report(at.tzinfo, at)

    def next_change(self, ticket: Ticket, after: datetime) -> datetime | None:
        """The earliest instant strictly after ``after`` at which any target changes state.

        A change is a cycle appearing or disappearing, a state change (a breach, a pause, an
        achievement) or a ``warn_at`` threshold being reached. Time-driven changes are found
        from the events up to ``after``; events of ``ticket`` later than ``after`` are taken
        into account too, so the answer is exact for the whole history given: evaluating one
        microsecond before the returned instant and at it differ, and nothing changes in
        between. None when nothing will ever change (every cycle stopped or paused, and no
        later event changes anything). The result is in ``after``'s time zone.
        """
        cursor = _us(after, "after")
        tz = after.tzinfo
        events = ticket.events
        times = [e._at_us for e in events]
        while True:
            run = _Run(self, ticket, cursor)
            timed = run.next_timed(cursor)
            k = bisect_right(times, cursor)
            following = times[k] if k < len(times) else None
            if following is None or (timed is not None and timed < following):
                # Nothing happens between cursor and the timed change: it is exact.
                return None if timed is None else to_datetime(timed, tz)
            before = (
                run.signature()
                if following - 1 == cursor
                else _Run(self, ticket, following - 1).signature()
            )
            if _Run(self, ticket, following).signature() != before:
                return to_datetime(following, tz)
            cursor = following

    # -- selection --------------------------------------------------------------------------------

    def _in_force(self, t: int) -> list[_Compiled]:
        return self._epochs[bisect_right(self._breaks, t) - 1]

    def _select(
        self, epoch: list[_Compiled], snapshot: Ticket | None, priority: Priority
    ) -> dict[str, _Spec]:
        chosen: _Compiled | None = None
        for compiled in epoch:
            cond = compiled.condition
            if cond is None or (snapshot is not None and cond.matches(snapshot)):
                chosen = compiled
                break
        if chosen is None:
            return _NOTHING_IN_FORCE
        cached = chosen.by_priority
        return cached[priority] if cached is not None else chosen.in_force(snapshot, priority)


# --------------------------------------------------------------------------------------------
# The engine: one pass over the events
# --------------------------------------------------------------------------------------------

_SOLVED = frozenset({Status.SOLVED, Status.CLOSED})
# Enum members as module constants: reading ``Role.AGENT`` goes through the enum class's
# attribute lookup (about 150 ns on CPython 3.11), a module global about 20 ns; the engine
# reads them per event and per status.
_AGENT: Final = Role.AGENT
_REQUESTER: Final = Role.REQUESTER
_CLOSED: Final = Status.CLOSED
_PAUSE: Final = OnReopen.PAUSE
_RESTART: Final = OnChange.RESTART
_BREACHED: Final = SlaState.BREACHED
_ACTIVE: Final = SlaState.ACTIVE
_PAUSED: Final = SlaState.PAUSED
_ACHIEVED: Final = SlaState.ACHIEVED
_RUNS: dict[Metric, frozenset[Status] | None] = {
    Metric.FIRST_REPLY: None,
    Metric.NEXT_REPLY: None,
    Metric.PERIODIC_UPDATE: None,
    Metric.PAUSABLE_UPDATE: frozenset(Status) - {Status.PENDING},
    Metric.REQUESTER_WAIT: frozenset({Status.NEW, Status.OPEN, Status.ON_HOLD}),
    Metric.AGENT_WORK: frozenset({Status.NEW, Status.OPEN}),
    Metric.TOTAL_RESOLUTION: None,
    Metric.CUSTOM: None,
}


_Memos = dict[_Clock, dict[int, int]]
"""The positions one run has computed, per clock (every target of a ticket shares them).

A plain dict (its lookups are the interpreter's fast path); :func:`_memo` adds a clock's."""


def _memo(memos: _Memos, clock: _Clock) -> dict[int, int]:
    memo = memos.get(clock)
    if memo is None:
        memo = memos[clock] = {}
    return memo


class _Cycle:
    """One cycle of a target key: counted time ``used`` so far plus the running segment.

    ``run_us`` / ``run_pos`` are the instant and position where the running segment began
    (None while paused or stopped); ``segs`` the finished running segments, kept only when a
    later target may measure on another clock (else None); ``base`` the
    position of ``start`` when known. A breach is recorded by :meth:`check`, which the engine
    calls before anything that changes how the clock runs (a pause, a stop, a new target) and
    at the judging instant: while nothing changes, the breach instant is the same whenever it
    is found.
    """

    __slots__ = (
        "base",
        "breach",
        "clock",
        "memo",
        "memos",
        "number",
        "run_pos",
        "run_us",
        "segs",
        "spec",
        "start",
        "stop",
        "used",
    )

    def __init__(
        self,
        number: int,
        start: int,
        spec: _Spec | None,
        memos: _Memos,
        running: bool,
        mixed: bool,
    ) -> None:
        if spec is not None:
            clock = spec.clock
            # The running segments are kept only when a later target may measure on another
            # clock (respec then recounts them); most keys use one clock throughout.
            self.segs: list[tuple[int, int]] | None = [] if mixed else None
        else:
            clock = _WALL
            self.segs = []
        self.number = number
        self.start = start
        self.spec = spec
        self.clock: _Clock = clock
        self.memos = memos
        memo = memos.get(clock)
        if memo is None:  # _memo(memos, clock), inlined
            memo = memos[clock] = {}
        self.memo = memo
        self.used = 0
        self.stop: int | None = None
        self.breach: int | None = None
        if running:  # self.run(True, start), inlined
            p = memo.get(start)
            if p is None:
                p = memo[start] = clock.pos(start)
            self.run_us: int | None = start
            self.run_pos = p
            self.base: int | None = p
        else:
            self.run_us = None
            self.run_pos = 0
            self.base = None

    def pos(self, t: int) -> int:
        """``self.clock.pos(t)``, computed once per run and clock."""
        memo = self.memo
        p = memo.get(t)
        if p is None:
            p = memo[t] = self.clock.pos(t)
        return p

    def run(self, flag: bool, t: int) -> None:
        if flag:
            if self.run_us is None:
                self.run_us = t
                p = self.run_pos = self.pos(t)
                if t == self.start:
                    self.base = p
        elif self.run_us is not None:
            self.used += self.pos(t) - self.run_pos
            if self.segs is not None:
                self.segs.append((self.run_us, t))
            self.run_us = None

    def end(self, t: int) -> None:
        """Stop the cycle at ``t``, recording a breach up to then (``check`` + ``run(False)``)."""
        run_us = self.run_us
        if run_us is not None:
            memo = self.memo
            p = memo.get(t)
            if p is None:
                p = memo[t] = self.clock.pos(t)
            spec = self.spec
            if spec is not None and self.breach is None:
                need = self.run_pos + spec.d - self.used
                if p >= need:
                    self.breach = self.clock.at(need, run_us, self.run_pos)
            self.used += p - self.run_pos
            if self.segs is not None:
                self.segs.append((run_us, t))
            self.run_us = None
        self.stop = t

    def used_at(self, t: int) -> int:
        if self.run_us is None:
            return self.used
        return self.used + self.pos(t) - self.run_pos

    def check(self, t: int) -> None:
        """Record a breach that happened at or before ``t`` while running."""
        spec = self.spec
        if spec is None or self.breach is not None or self.run_us is None:
            return
        need = self.run_pos + spec.d - self.used
        if self.pos(t) >= need:
            self.breach = self.clock.at(need, self.run_us, self.run_pos)

    def respec(self, spec: _Spec | None, t: int) -> None:
        """Apply the target now in force (call :meth:`check` at ``t`` first)."""
        old = self.spec
        if spec is old:
            return
        if spec is None:
            if self.breach is None:
                self.spec = None
            return
        if spec.clock is not self.clock:
            segs = self.segs
            assert segs is not None  # kept whenever the clock can change
            self.clock = spec.clock
            self.memo = _memo(self.memos, spec.clock)
            self.used = sum(self.pos(b) - self.pos(a) for a, b in segs)
            if self.run_us is not None:
                self.run_pos = self.pos(self.run_us)
            self.base = None
        if old is not None and self.breach is None and spec.target.on_change is _RESTART:
            self.start = t
            self.used = 0
            if self.segs is not None:
                self.segs = []
            self.base = None
            if self.run_us is not None:
                self.run_us = t
                self.run_pos = self.base = self.pos(t)
        self.spec = spec
        if self.breach is None and self.used_at(t) >= spec.d:
            self.breach = t


# How a built-in key's cycles start and stop (see _Run._replay).
_K_FIRST, _K_NEXT, _K_UPDATE, _K_STATUS, _K_CUSTOM = range(5)
_KIND: dict[Metric, int] = {
    Metric.FIRST_REPLY: _K_FIRST,
    Metric.NEXT_REPLY: _K_NEXT,
    Metric.PERIODIC_UPDATE: _K_UPDATE,
    Metric.PAUSABLE_UPDATE: _K_UPDATE,
    Metric.REQUESTER_WAIT: _K_STATUS,
    Metric.AGENT_WORK: _K_STATUS,
    Metric.TOTAL_RESOLUTION: _K_STATUS,
    Metric.CUSTOM: _K_CUSTOM,
}


class _KeyPlan:
    """What the engine needs of one target key, worked out once per book."""

    __slots__ = (
        "clock_rules",
        "key",
        "kind",
        "metric",
        "mixed",
        "relevant",
        "runs",
        "start_flags",
        "stop_flags",
    )

    def __init__(
        self, key: str, metric: Metric, clock_rules: CustomClock | None, mixed: bool
    ) -> None:
        self.key = key
        self.mixed = mixed
        """Whether the key's targets measure on more than one clock."""
        self.metric = metric
        self.kind = _KIND[metric]
        self.clock_rules = clock_rules
        self.start_flags = 0 if clock_rules is None else _trigger_flags(clock_rules.start_on)
        self.stop_flags = 0 if clock_rules is None else _trigger_flags(clock_rules.stop_on)
        self.runs = _RUNS[metric]
        self.relevant = _RELEVANT[metric]


class _Track:
    """The cycles of one custom key while its start / pause / stop / reset rules replay."""

    __slots__ = ("cycles", "memos", "open", "plan", "start_matched")

    def __init__(self, plan: _KeyPlan, cycles: list[_Cycle], memos: _Memos) -> None:
        self.plan = plan
        self.cycles = cycles
        self.memos = memos
        self.start_matched = False
        self.open: _Cycle | None = None
        """The last cycle when it has not stopped (kept in step by begin / end / resume)."""

    def resume(self, cycle: _Cycle) -> None:
        cycle.stop = None
        self.open = cycle

    def begin(self, t: int, spec: _Spec | None, running: bool) -> None:
        cycle = _Cycle(len(self.cycles) + 1, t, spec, self.memos, running, self.plan.mixed)
        self.cycles.append(cycle)
        self.open = cycle

    def end(self, t: int) -> None:
        cycle = self.open
        if cycle is not None:
            cycle.end(t)
            self.open = None


# Event flags, computed once per event and shared by every target key.
_F_FIRST = 1  # the creation event
_F_AGENT = 2  # a public agent reply
_F_REQUESTER = 4  # a public requester comment (or one logged on the requester's behalf)
_F_SOLVED = 8  # entered the solved / closed category
_F_REOPENED = 16  # left it
_F_ASSIGNED = 32
_F_SELECT = 64  # the targets in force changed
_F_STATUS = 128  # the status category changed
_F_AWAITING = 256  # still in the first-reply phase before this event
_F_ANY = 512  # every event
_F_DONE = _F_AGENT | _F_SOLVED  # ends a reply or update cycle

_TRIGGER_FLAGS = {
    SlaTrigger.CREATED: _F_FIRST,
    SlaTrigger.REQUESTER_COMMENT: _F_REQUESTER,
    SlaTrigger.AGENT_REPLY: _F_AGENT,
    SlaTrigger.SOLVED: _F_SOLVED,
    SlaTrigger.REOPENED: _F_REOPENED,
    SlaTrigger.ASSIGNED: _F_ASSIGNED,
}

# The events that can change a target key's cycles, by metric. At any other event the key's
# step does nothing (its cycle keeps running or stays paused, with the same target), so it is
# skipped; a breach found at the next relevant event is the same instant (see _Cycle.check).
_REPLY_FLAGS = _F_AGENT | _F_SOLVED | _F_SELECT
_STATUS_FLAGS = _F_FIRST | _F_SOLVED | _F_REOPENED | _F_SELECT | _F_STATUS
_RELEVANT: dict[Metric, int] = {
    Metric.FIRST_REPLY: _REPLY_FLAGS | _F_FIRST,
    Metric.NEXT_REPLY: _REPLY_FLAGS | _F_REQUESTER,
    Metric.PERIODIC_UPDATE: _REPLY_FLAGS | _F_FIRST,
    Metric.PAUSABLE_UPDATE: _REPLY_FLAGS | _F_FIRST | _F_STATUS,
    Metric.REQUESTER_WAIT: _STATUS_FLAGS,
    Metric.AGENT_WORK: _STATUS_FLAGS,
    Metric.TOTAL_RESOLUTION: _STATUS_FLAGS,
    Metric.CUSTOM: _F_ANY,
}


def _trigger_flags(triggers: frozenset[SlaTrigger]) -> int:
    out = 0
    for trigger in triggers:
        out |= _TRIGGER_FLAGS[trigger]
    return out


class _Run:
    """Replays events up to ``until`` (UTC microseconds, inclusive).

    First one pass over the events classifies each (flags, status, targets in force, ticket
    snapshot when conditions need one); then each target key replays only the events that can
    change it. Keys are independent of each other, so the order of the two loops is free.
    ``results`` holds, per key in book order, the key, its metric and its cycles.
    """

    __slots__ = ("book", "memos", "results", "until")

    def __init__(self, book: SlaBook, ticket: Ticket, until: int) -> None:
        self.book = book
        self.until = until
        self.memos: _Memos = {}
        self.results: list[tuple[str, Metric, list[_Cycle]]] = []
        self._replay(ticket)

    def _replay(self, ticket: Ticket) -> None:
        book = self.book
        events = ticket.events
        until = self.until
        created = events[0]
        assert isinstance(created, TicketCreated)
        status = created.status
        priority = created.priority
        by_agent = created.created_by is _AGENT
        awaiting_first = not by_agent
        use_snapshots = book._snapshots
        constant = book._constant
        # Conditions that read only fields fixed at creation see the same values in the
        # ticket itself as in every snapshot of it; otherwise a snapshot is kept in step.
        tracking = use_snapshots and not constant
        keep = book._custom
        single = len(book._breaks) == 1
        # One row per event: (instant, flags, status after it, targets in force after it).
        rows: list[tuple[int, int, Status, dict[str, _Spec]]] = []
        snapshots: list[Ticket | None] = []
        t = created._at_us
        if t <= until:
            # The creation event: it starts the first-reply phase and selects the targets.
            code = _F_ANY | _F_FIRST | _F_SELECT
            if awaiting_first:
                code |= _F_AWAITING
            if status in _SOLVED:
                code |= _F_SOLVED
                awaiting_first = False
            snapshot: Ticket | None = None
            if tracking:
                snapshot = Ticket.from_events(events[:1])
            elif use_snapshots:
                snapshot = ticket
            epoch = book._epochs[0] if single else book._in_force(t)
            last_epoch = epoch
            specs = book._select(epoch, snapshot, priority)
            rows.append((t, code, status, specs))
            if keep:
                snapshots.append(snapshot)
            reselect_always = not constant
            # Typed Any: the loop dispatches on type(event) itself (isinstance asserts for the
            # type checker would cost a call per event).
            following: Iterator[Any] = iter(events)
            next(following)
            for event in following:
                t = event._at_us
                if t > until:
                    break
                code = _F_ANY | _F_AWAITING if awaiting_first else _F_ANY
                kind = type(event)
                if kind is Commented:
                    if event.public:
                        if event.author_role is _REQUESTER or event.on_behalf_of_requester:
                            code |= _F_REQUESTER
                        elif event.author_role is _AGENT:
                            code |= _F_AGENT
                            awaiting_first = False
                    if single:
                        # A comment changes no status and no field a condition reads.
                        rows.append((t, code, status, specs))
                        if keep:
                            snapshots.append(snapshot)
                        continue
                    reselect = False
                else:
                    before = status
                    if kind is StatusChanged:
                        status = event.status
                    elif kind is PriorityChanged:
                        priority = event.priority
                    elif kind is Reopened:
                        status = event.status
                    elif kind is Merged:
                        status = _CLOSED
                    elif kind is Assigned:
                        code |= _F_ASSIGNED
                    if status is not before:
                        code |= _F_STATUS
                        if status in _SOLVED:
                            if before not in _SOLVED:
                                code |= _F_SOLVED
                                awaiting_first = False
                        elif before in _SOLVED:
                            code |= _F_REOPENED
                    if tracking:
                        assert snapshot is not None
                        snapshot = snapshot.apply(event)
                    reselect = reselect_always or kind is PriorityChanged
                if not single:
                    epoch = book._in_force(t)
                    if epoch is not last_epoch:
                        reselect = True
                if reselect:
                    chosen = book._select(epoch, snapshot, priority)
                    last_epoch = epoch
                    if chosen is not specs and chosen != specs:
                        specs = chosen
                        code |= _F_SELECT
                rows.append((t, code, status, specs))
                if keep:
                    snapshots.append(snapshot)
        memos = self.memos
        results = self.results
        for plan in book._plans:
            key = plan.key
            cycles: list[_Cycle] = []
            results.append((key, plan.metric, cycles))
            kind_of_key = plan.kind
            if kind_of_key == _K_CUSTOM:
                track = _Track(plan, cycles, memos)
                for (t, code, status, specs), snapshot in zip(rows, snapshots, strict=True):
                    opened = track.open
                    if opened is not None:
                        opened.check(t)
                    self._custom(track, specs.get(key), t, snapshot, code, status)
                continue
            # One built-in key: these loops are the engine's hot path, one per kind of key.
            # Targets in force change only at _F_SELECT events, so ``spec`` is re-read only
            # there; ``cycle`` is the open cycle, if any. Before a new target applies, the
            # open cycle is checked for a breach under the old one.
            relevant = plan.relevant
            mixed = plan.mixed
            spec: _Spec | None = None
            cycle: _Cycle | None = None
            if kind_of_key == _K_FIRST:
                # One cycle at most, from creation (by anyone but an agent, unless created
                # solved) to the first public agent reply or solve; nothing later matters.
                if not rows or by_agent:
                    continue
                t, code, _, specs = rows[0]
                if code & _F_SOLVED:
                    continue
                cycle = _Cycle(1, t, specs.get(key), memos, True, mixed)
                cycles.append(cycle)
                later = iter(rows)
                next(later)
                for t, code, _, specs in later:
                    if code & _F_SELECT:
                        spec = specs.get(key)
                        if spec is not cycle.spec:
                            cycle.check(t)
                            cycle.respec(spec, t)
                    if code & _F_DONE:
                        cycle.end(t)
                        break
                continue
            if kind_of_key == _K_NEXT:
                # A cycle from each public requester comment after the first reply, to the
                # next public agent reply or solve; its clock never pauses.
                for t, code, _, specs in rows:
                    if not code & relevant:
                        continue
                    if code & _F_SELECT:
                        spec = specs.get(key)
                        if cycle is not None and spec is not cycle.spec:
                            cycle.check(t)
                            cycle.respec(spec, t)
                    if code & _F_DONE:
                        if cycle is not None:
                            cycle.end(t)
                            cycle = None
                    elif code & _F_REQUESTER and cycle is None and not code & _F_AWAITING:
                        cycle = _Cycle(len(cycles) + 1, t, spec, memos, True, mixed)
                        cycles.append(cycle)
                continue
            runs = plan.runs
            for t, code, status, specs in rows:
                if not code & relevant:
                    continue
                if code & _F_SELECT:
                    spec = specs.get(key)
                    if cycle is not None and spec is not cycle.spec:
                        cycle.check(t)
                        cycle.respec(spec, t)
                running = runs is None or status in runs
                if kind_of_key == _K_UPDATE:
                    if code & _F_DONE and cycle is not None:
                        cycle.end(t)
                        cycle = None
                    if (code & _F_AGENT or (by_agent and code & _F_FIRST)) and (
                        status not in _SOLVED
                    ):
                        cycle = _Cycle(len(cycles) + 1, t, spec, memos, running, mixed)
                        cycles.append(cycle)
                elif code & _F_FIRST:
                    cycle = _Cycle(1, t, spec, memos, running, mixed)
                    cycles.append(cycle)
                    if code & _F_SOLVED:
                        cycle.end(t)
                        cycle = None
                elif code & _F_SOLVED:
                    if cycle is not None:
                        cycle.end(t)
                        cycle = None
                elif code & _F_REOPENED and cycles:
                    rule = spec.target.on_reopen if spec is not None else _PAUSE
                    if rule is _PAUSE:
                        cycle = cycles[-1]
                        cycle.stop = None
                        cycle.respec(spec, t)
                    else:
                        cycle = _Cycle(len(cycles) + 1, t, spec, memos, running, mixed)
                        cycles.append(cycle)
                if cycle is not None and (cycle.run_us is None) is running:
                    if not running:
                        cycle.check(t)
                    cycle.run(running, t)

    def _custom(
        self,
        track: _Track,
        spec: _Spec | None,
        t: int,
        snapshot: Ticket | None,
        code: int,
        status: Status,
    ) -> None:
        plan = track.plan
        rules = plan.clock_rules
        assert rules is not None
        assert snapshot is not None
        cycle = track.open
        if cycle is not None:
            cycle.respec(spec, t)
        starts = rules.start is not None and rules.start.matches(snapshot)
        edge = (starts and not track.start_matched) or bool(plan.start_flags & code)
        track.start_matched = starts
        stops = (rules.stop is not None and rules.stop.matches(snapshot)) or bool(
            plan.stop_flags & code
        )
        if cycle is not None:
            if stops:
                track.end(t)
                return
            if rules.reset is not None and rules.reset.matches(snapshot):
                track.end(t)
                if cycle.breach is None:
                    track.cycles.pop()
                if starts:
                    track.begin(t, spec, True)
                    cycle = track.open
                else:
                    return
        elif (
            code & _F_REOPENED
            and track.cycles
            and spec is not None
            and spec.target.on_reopen is _PAUSE
            and not stops
        ):
            last = track.cycles[-1]
            track.resume(last)
            last.respec(spec, t)
            cycle = last
        if cycle is None and edge and not stops:
            track.begin(t, spec, True)
            cycle = track.open
        if cycle is not None:
            paused = rules.pause is not None and rules.pause.matches(snapshot)
            if paused:
                cycle.check(t)
            cycle.run(not paused, t)

    # -- results --------------------------------------------------------------------------------

    def _visible(self) -> Iterable[tuple[str, _Cycle]]:
        for key, _, cycles in self.results:
            for cycle in cycles:
                if cycle.spec is not None:
                    yield key, cycle

    def finish(self) -> None:
        """Record breaches up to ``until`` (only the last cycle of a key can be open)."""
        for _, _, cycles in self.results:
            if cycles and cycles[-1].stop is None:
                cycles[-1].check(self.until)

    def signature(self) -> list[tuple[str, int, SlaState, float | None]]:
        self.finish()
        out = []
        for key, cycle in self._visible():
            out.append((key, cycle.number, _state(cycle), _warning(cycle, self.until)))
        return out

    def next_timed(self, after: int) -> int | None:
        self.finish()
        best: int | None = None
        for _, cycle in self._visible():
            spec = cycle.spec
            assert spec is not None
            if cycle.stop is not None or cycle.run_us is None:
                continue
            candidates = []
            if cycle.breach is None:
                candidates.append(cycle.run_pos + spec.d - cycle.used)
            for _, need in spec.thresholds:
                candidates.append(cycle.run_pos + need - cycle.used)
            for need in candidates:
                moment = cycle.clock.at(need, cycle.run_us, cycle.run_pos)
                if moment > after and (best is None or moment < best):
                    best = moment
        return best

    def report(self, tz: tzinfo | None, at: datetime) -> tuple[SlaStatus, ...]:
        """The statuses at ``until``; ``at`` is that instant as the caller gave it.

        Does what :meth:`finish` followed by the plain per-cycle formulas (``used_at``, the due
        instant, :func:`_state`, :func:`_warning`) would, computing each position once.
        """
        until = self.until
        far = until >= FAST_LIMIT_US
        out = []
        for key, metric, cycles in self.results:
            for cycle in cycles:
                spec = cycle.spec
                if spec is None:
                    continue
                clock = cycle.clock
                stop = cycle.stop
                run_us = cycle.run_us
                used = cycle.used
                memo = cycle.memo
                if stop is None:
                    end = until
                    p_end = memo.get(until)
                    if p_end is None:
                        p_end = memo[until] = clock.pos(until)
                    if run_us is not None and cycle.breach is None:
                        # cycle.check(until), as finish() does for the open cycle.
                        need = cycle.run_pos + spec.d - used
                        if p_end >= need:
                            cycle.breach = clock.at(need, run_us, cycle.run_pos)
                else:
                    end = stop
                    p_end = memo.get(stop)
                    if p_end is None:
                        p_end = memo[stop] = clock.pos(stop)
                breach = cycle.breach
                elapsed = used if run_us is None else used + p_end - cycle.run_pos
                p_start = cycle.base
                if p_start is None:
                    p_start = cycle.pos(cycle.start)
                if breach is not None:
                    state = _BREACHED
                    due = breach
                else:
                    left = spec.d - used
                    if run_us is not None:
                        state = _ACTIVE
                        due = clock.at(cycle.run_pos + left, run_us, cycle.run_pos)
                    else:
                        state = _PAUSED if stop is None else _ACHIEVED
                        due = clock.at(p_end + left, end, p_end)
                warning = None
                for fraction, need in spec.thresholds:
                    if elapsed >= need:
                        warning = fraction
                status = _status(
                    {
                        "policy": spec.policy_name,
                        "policy_version": spec.version,
                        "target": key,
                        "metric": metric,
                        "cycle": cycle.number,
                        "state": state,
                        "at": at,
                        "within": spec.within,
                        "warning": warning,
                        "_raw": (
                            tz,
                            cycle.start,
                            due,
                            breach,
                            stop,
                            elapsed,
                            p_end - p_start - elapsed,
                        ),
                    }
                )
                if far or cycle.start < 0 or due >= FAST_LIMIT_US:
                    # An instant that may not convert (before 1970, after 2106): convert them
                    # all now so that an out-of-range one raises here, as it always did.
                    _convert_all(status)
                out.append(status)
        return tuple(out)


_new_object = object.__new__
_set_attribute = object.__setattr__


def _status(fields: dict[str, Any]) -> SlaStatus:
    """An SlaStatus from its field dict, without the generated ``__init__``.

    SlaStatus is a dict-based attrs class (``slots=False``) for exactly this: one attribute
    store instead of sixteen. ``fields`` holds every field except those in :data:`_CONVERT`,
    which ``fields["_raw"]`` gives as integers (see :class:`_RawField`).
    """
    status: SlaStatus = _new_object(SlaStatus)
    _set_attribute(status, "__dict__", fields)
    return status


def _state(cycle: _Cycle) -> SlaState:
    if cycle.breach is not None:
        return _BREACHED
    if cycle.stop is not None:
        return _ACHIEVED
    return _ACTIVE if cycle.run_us is not None else _PAUSED


def _warning(cycle: _Cycle, until: int) -> float | None:
    spec = cycle.spec
    assert spec is not None
    if not spec.thresholds:
        return None
    used = cycle.used_at(until if cycle.stop is None else cycle.stop)
    level = None
    for fraction, need in spec.thresholds:
        if used >= need:
            level = fraction
    return level


# --------------------------------------------------------------------------------------------
# Rebuild and backtest
# --------------------------------------------------------------------------------------------


def _index(statuses: Iterable[SlaStatus]) -> dict[tuple[str, int], SlaStatus]:
    return {(s.target, s.cycle): s for s in statuses}


def _same_judgement(a: SlaStatus, b: SlaStatus) -> bool:
    return attrs.evolve(a, at=b.at) == b


def rebuild(
    book: SlaBook,
    tickets: Iterable[Ticket],
    previous: SlaBook | Mapping[str, Sequence[SlaStatus]],
    at: datetime,
) -> tuple[SlaChange, ...]:
    """Re-judge ``tickets`` at ``at`` under ``book`` and return every cycle whose judgement changed.

    ``previous`` is either the stored judgements (ticket id to the statuses stored for it) or
    the book they were made with. Nothing is written anywhere: the caller stores the new
    judgements if it accepts the changes. To re-judge history under a new policy version from
    the start, pass a book in which that version has ``effective_from=None``. A cycle present in
    only one of the two judgements has None on the other side. Raises NaiveDatetimeError for a
    naive ``at``.
    """
    require_aware(at, "at")
    changes: list[SlaChange] = []
    for ticket in tickets:
        after = _index(book.evaluate(ticket, at))
        if isinstance(previous, SlaBook):
            before = _index(previous.evaluate(ticket, at))
        else:
            before = _index(previous.get(ticket.id, ()))
        for key in sorted(before.keys() | after.keys()):
            old, new = before.get(key), after.get(key)
            if old is not None and new is not None and _same_judgement(old, new):
                continue
            changes.append(
                SlaChange(ticket_id=ticket.id, target=key[0], cycle=key[1], before=old, after=new)
            )
    return tuple(changes)


@serializable("sla_backtest_row", aliases=("csmcore.sla:BacktestRow",))
@attrs.frozen(kw_only=True)
class BacktestRow:
    """Outcomes of one target key under one book: cycles achieved, breached and still open."""

    target: str
    achieved: int
    breached: int
    open: int

    @property
    def judged(self) -> int:
        """Cycles with a final outcome (achieved or breached)."""
        return self.achieved + self.breached

    @property
    def achievement_rate(self) -> float | None:
        """``achieved / judged`` in 0..1, or None when no cycle has a final outcome.

        A cycle breached but still open counts as breached: a breach is final.
        """
        return None if self.judged == 0 else self.achieved / self.judged


@serializable("sla_backtest", aliases=("csmcore.sla:Backtest",))
@attrs.frozen(kw_only=True)
class Backtest:
    """A candidate book against the book in force, per target key, over the same tickets."""

    at: datetime
    tickets: int
    baseline: tuple[BacktestRow, ...]
    candidate: tuple[BacktestRow, ...]

    def row(self, target: str, *, candidate: bool = True) -> BacktestRow:
        """The row of ``target`` (candidate side by default); NotFound if the book has none."""
        for row in self.candidate if candidate else self.baseline:
            if row.target == target:
                return row
        from csmcore.errors import NotFound

        raise NotFound(f"no backtest row for target {target!r}")


def _tally(statuses: Iterable[SlaStatus], order: list[str]) -> tuple[BacktestRow, ...]:
    counts: dict[str, list[int]] = {key: [0, 0, 0] for key in order}
    for status in statuses:
        row = counts.setdefault(status.target, [0, 0, 0])
        if status.state is SlaState.ACHIEVED:
            row[0] += 1
        elif status.state is SlaState.BREACHED:
            row[1] += 1
        else:
            row[2] += 1
    return tuple(
        BacktestRow(target=key, achieved=a, breached=b, open=o) for key, (a, b, o) in counts.items()
    )


def backtest(
    candidate: SlaBook, tickets: Iterable[Ticket], baseline: SlaBook, at: datetime
) -> Backtest:
    """Judge every ticket at ``at`` under ``candidate`` and under ``baseline`` (the book in
    force) and count achieved, breached and open cycles per target key.

    Raises NaiveDatetimeError for a naive ``at``.
    """
    require_aware(at, "at")
    base: list[SlaStatus] = []
    cand: list[SlaStatus] = []
    count = 0
    for ticket in tickets:
        count += 1
        base.extend(baseline.evaluate(ticket, at))
        cand.extend(candidate.evaluate(ticket, at))
    return Backtest(
        at=at,
        tickets=count,
        baseline=_tally(base, [plan.key for plan in baseline._plans]),
        candidate=_tally(cand, [plan.key for plan in candidate._plans]),
    )


# --------------------------------------------------------------------------------------------
# Serialization
# --------------------------------------------------------------------------------------------


def _unstructure_book(book: SlaBook) -> dict[str, Any]:
    return {
        "policies": [converter.unstructure(p, SlaPolicy) for p in book.policies],
        "calendar": converter.unstructure(book.calendar, BusinessCalendar),
        "calendars": {
            name: converter.unstructure(cal, BusinessCalendar) for name, cal in book.calendars
        },
    }


_BOOK_KEYS = frozenset({"policies", "calendar", "calendars"})


def _structure_book(data: Any, _: type) -> SlaBook:
    if not isinstance(data, Mapping):
        raise SerializationError(f"$: {data!r} is not a mapping of book fields")
    extra = set(data) - _BOOK_KEYS
    if extra:
        raise SerializationError(f"$: unknown keys {sorted(extra)}; accepted: {sorted(_BOOK_KEYS)}")
    for key in ("policies", "calendar"):
        if key not in data:
            raise SerializationError(f"$.{key}: required field missing")
    if not isinstance(data["policies"], list):
        raise SerializationError(f"$.policies: {data['policies']!r} is not a list")
    policies = []
    for index, item in enumerate(data["policies"]):
        try:
            policies.append(converter.structure(item, SlaPolicy))
        except Exception as err:  # cattrs groups; re-raised naming the path
            from csmcore.serialization import describe_error as _describe

            raise SerializationError(f"$.policies[{index}]: {_describe(err)}") from err
    calendars = {}
    raw = data.get("calendars", {})
    if not isinstance(raw, Mapping):
        raise SerializationError(f"$.calendars: {raw!r} is not a mapping of name to calendar")
    for name, item in raw.items():
        try:
            calendars[name] = converter.structure(item, BusinessCalendar)
        except Exception as err:
            raise SerializationError(f"$.calendars.{name}: {err}") from err
    try:
        calendar = converter.structure(data["calendar"], BusinessCalendar)
    except Exception as err:
        raise SerializationError(f"$.calendar: {err}") from err
    try:
        return SlaBook(policies=policies, calendar=calendar, calendars=calendars)
    except ValidationError as err:
        raise SerializationError(f"$: {err}") from err


converter.register_unstructure_hook(SlaBook, _unstructure_book)
converter.register_structure_hook(SlaBook, _structure_book)
converter.register_unstructure_hook_func(
    lambda cls: cls == frozenset[SlaTrigger],
    lambda value: sorted(item.value for item in value),
)
