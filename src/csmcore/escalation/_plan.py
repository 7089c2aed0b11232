"""Planning: the exact instants at which rules fire for a ticket, and the pure run loop.

The planner walks a ticket's timeline from its creation over *breakpoints*: the instants of its
events, the instants at which its SLA results change state (:meth:`SlaBook.next_change`), and
the instants at which a level's threshold or a comparison on a moving SLA number is reached
(computed exactly from the target's clock). Between two breakpoints nothing a rule reads
changes, so evaluating at the breakpoints alone is exact. At each breakpoint ``t`` the ticket is
taken as it stood at ``t`` (all events at or before ``t``) with its SLA results at ``t``.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Container, Iterable, Iterator
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

import attrs

from csmcore._time import US, require_aware, to_datetime, to_us
from csmcore.calendars import BusinessCalendar
from csmcore.errors import CsmError, invalid_type
from csmcore.escalation._actions import ActionContext, ActionResult
from csmcore.escalation._rules import (
    ConditionHeld,
    DueOffset,
    EscalationRule,
    PercentUsed,
    clock_of,
)
from csmcore.escalation._subject import EscalationView, crossing_elapsed, time_varying_leaves
from csmcore.serialization import serializable
from csmcore.sla import SlaBook, SlaResults, SlaState, SlaStatus
from csmcore.tickets import Ticket, TicketEvent

__all__ = [
    "EscalationLoop",
    "Firing",
    "FiringKey",
    "PlannedFiring",
    "TicketRun",
    "apply_firing",
    "dry_run",
    "due_firings",
    "next_due",
    "run_ticket",
]

FiringKey = tuple[str, int, int, str, "str | None", int]
"""``(rule, rule_version, level, ticket_id, target, cycle)``: what a firing is recorded by."""


@serializable("escalation.firing", aliases=("csmcore.escalation:Firing",))
@attrs.frozen(kw_only=True)
class Firing:
    """One level of one rule firing for one ticket.

    ``level`` is the level's index in the rule (from 0). For a level on a target, ``target``
    and ``cycle`` name the target cycle; for a :class:`ConditionHeld` level ``target`` is None
    and ``cycle`` is the episode number (from 1). ``at`` is the exact instant it is due.
    """

    rule: str
    rule_version: int
    level: int
    ticket_id: str
    target: str | None
    cycle: int
    at: datetime

    @property
    def key(self) -> FiringKey:
        """The identity an engine records so each firing happens once (without ``at``)."""
        return (self.rule, self.rule_version, self.level, self.ticket_id, self.target, self.cycle)

    @property
    def key_text(self) -> str:
        """:attr:`key` as compact JSON text (unambiguous; a stable idempotency key)."""
        return json.dumps(list(self.key), separators=(",", ":"), ensure_ascii=False)


class EscalationLoop(CsmError, RuntimeError):
    """Applying firings kept producing new firings beyond a bound (rules that feed each
    other at one instant)."""


def _rules(value: object) -> tuple[EscalationRule, ...]:
    if isinstance(value, EscalationRule):
        return (value,)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise invalid_type("rules", value, "an EscalationRule or a collection of them")
    out = tuple(value)
    names: set[str] = set()
    for index, rule in enumerate(out):
        if not isinstance(rule, EscalationRule):
            raise invalid_type(f"rules[{index}]", rule, "an EscalationRule")
        if rule.name in names:
            from csmcore.errors import ValidationError

            raise ValidationError(
                f"rules[{index}]: rule name {rule.name!r} is given twice", field=f"rules[{index}]"
            )
        names.add(rule.name)
    return out


def _add(clock: BusinessCalendar | None, start: int, amount: int) -> int:
    """The instant (µs) at which ``amount`` µs of the clock have passed from ``start``."""
    if clock is None:
        return start + amount
    return to_us(clock.add(to_datetime(start, timezone.utc), amount * US))


class _Clocks:
    """The clock of each SLA status (the target's calendar, or wall time), cached."""

    def __init__(self, book: SlaBook) -> None:
        self.book = book
        self.cache: dict[tuple[str, int, str, timedelta], BusinessCalendar | None] = {}

    def of(self, status: SlaStatus, ticket: Ticket) -> BusinessCalendar | None:
        key = (status.policy, status.policy_version, status.target, status.within)
        if key in self.cache:
            return self.cache[key]
        found = None
        for policy in self.book.policies:
            if (policy.name, policy.version) != (status.policy, status.policy_version):
                continue
            matching = [t for t in policy.targets if t.key == status.target]
            exact = [t for t in matching if t.within == status.within] or matching
            for target in exact:
                if target.priority in (None, ticket.priority):
                    found = target
                    break
            else:
                found = exact[0] if exact else None
        clock = (
            None
            if found is None or not found.business_hours
            else self.book.calendar_named(found.calendar)
        )
        self.cache[key] = clock
        return clock


class _Level:
    """The walking state of one level of one rule."""

    __slots__ = ("clock", "done", "episode", "fired", "index", "ratio", "start", "trigger")

    def __init__(self, index: int, trigger: Any, book: SlaBook) -> None:
        self.index = index
        self.trigger = trigger
        self.clock = (
            None
            if isinstance(trigger, PercentUsed)
            else clock_of(book, trigger.business_hours, trigger.calendar)
        )
        self.fired: set[tuple[str | None, int]] = set()
        self.episode = 0
        self.start: int | None = None  # held: the instant the current episode began
        self.done = False  # held: the current episode has fired
        # percent: the exact fraction of the target as (numerator, denominator)
        self.ratio = (
            trigger.percent.as_integer_ratio() if isinstance(trigger, PercentUsed) else (0, 1)
        )


def _us_of(value: datetime) -> int:
    return to_us(value)


class _Walk:
    """One ticket's timeline walked over its breakpoints (see the module docstring)."""

    def __init__(self, ticket: Ticket, book: SlaBook, rules: tuple[EscalationRule, ...]) -> None:
        self.ticket = ticket
        self.book = book
        self.rules = rules
        self.clocks = _Clocks(book)
        self.levels = [
            [_Level(i, level.trigger, book) for i, level in enumerate(rule.levels)]
            for rule in rules
        ]
        self.leaves = [
            leaf
            for rule in rules
            for leaf in time_varying_leaves(rule.condition, "condition")
            + [
                held
                for level in rule.levels
                if isinstance(level.trigger, ConditionHeld) and level.trigger.condition
                for held in time_varying_leaves(level.trigger.condition, "condition")
            ]
        ]
        self.times = [_us_of(e.at) for e in ticket.events]

    def firings(self, until: int) -> Iterator[Firing]:
        """The firings in time order, up to and including ``until`` (µs); unbounded when
        ``until`` is None."""
        t = self.times[0]
        while True:
            if until is not None and t > until:
                return
            at = to_datetime(t, timezone.utc)
            view = EscalationView(self.ticket.as_of(at), self.book.evaluate(self.ticket, at), at)
            found, breaks = self._step(t, view)
            yield from found
            k = bisect_right(self.times, t)
            if k < len(self.times):
                breaks.append(self.times[k])
            # Between events, the only SLA changes are breaches of running cycles, one
            # microsecond after their due instant (what SlaBook.next_change also finds,
            # without replaying the history again).
            for status in view.sla:
                if status.state is SlaState.ACTIVE:
                    breaks.append(_us_of(status.due_at) + 1)
            later = [b for b in breaks if b > t]
            if not later:
                return
            t = min(later)

    # -- one breakpoint -----------------------------------------------------------------------

    def _step(self, t: int, view: EscalationView) -> tuple[list[Firing], list[int]]:
        found: list[Firing] = []
        breaks: list[int] = []
        statuses: SlaResults = view.sla
        ticket = view.ticket
        known: dict[int, bool] = {}

        def running(status: SlaStatus) -> bool:
            found = known.get(id(status))
            if found is None:
                found = known[id(status)] = status.stopped_at is None and self._running(
                    status, t, ticket
                )
            return found

        for leaf in self.leaves:
            for status in statuses:
                if running(status):
                    e0 = status.elapsed // US
                    clock = self.clocks.of(status, ticket)
                    for edge in crossing_elapsed(leaf, status):
                        if edge > e0:
                            breaks.append(_add(clock, t, edge - e0))
        for rule, levels in zip(self.rules, self.levels, strict=True):
            matched = rule.condition.matches(view)
            for level in levels:
                trigger = level.trigger
                if isinstance(trigger, ConditionHeld):
                    self._held(rule, level, t, view, matched, found, breaks)
                    continue
                for status in statuses:
                    if status.target != trigger.target or status.stopped_at is not None:
                        continue
                    ident = (status.target, status.cycle)
                    if ident in level.fired:
                        continue
                    due = self._reached(trigger, level, status, t, running, ticket, breaks)
                    if due and matched:
                        level.fired.add(ident)
                        found.append(
                            self._firing(rule, level, ticket, status.target, status.cycle, t)
                        )
        return found, breaks

    def _running(self, status: SlaStatus, t: int, ticket: Ticket) -> bool:
        """Whether an open cycle's clock runs at ``t`` (ACTIVE, or breached and not paused)."""
        if status.state is SlaState.ACTIVE:
            return True
        if status.state is not SlaState.BREACHED:
            return False
        # A breached cycle does not say whether it is paused: look one microsecond of its
        # clock ahead. If the state changes before then, the next breakpoint comes first.
        clock = self.clocks.of(status, ticket)
        probe = _add(clock, t, 1)
        later = self.book.evaluate(self.ticket, to_datetime(probe, timezone.utc))
        again = later.get(status.target, status.cycle)
        return again is not None and again.elapsed > status.elapsed

    def _reached(
        self,
        trigger: PercentUsed | DueOffset,
        level: _Level,
        status: SlaStatus,
        t: int,
        running: Callable[[SlaStatus], bool],
        ticket: Ticket,
        breaks: list[int],
    ) -> bool:
        if isinstance(trigger, PercentUsed):
            numerator, denominator = level.ratio
            need = -((-numerator * (status.within // US)) // (100 * denominator))  # ceiling
            e0 = status.elapsed // US
            if e0 >= need:
                return True
            if running(status):
                breaks.append(_add(self.clocks.of(status, ticket), t, need - e0))
            return False
        offset = trigger.offset // US
        if offset < 0:
            if status.state is SlaState.BREACHED:
                return True
            if status.state is not SlaState.ACTIVE:
                return False
            moment = _add(level.clock, _us_of(status.due_at), offset)
        else:
            if status.breached_at is None:
                return False
            moment = _add(level.clock, _us_of(status.breached_at), offset)
        if moment <= t:
            return True
        breaks.append(moment)
        return False

    def _held(
        self,
        rule: EscalationRule,
        level: _Level,
        t: int,
        view: EscalationView,
        matched: bool,
        found: list[Firing],
        breaks: list[int],
    ) -> None:
        trigger = level.trigger
        holds = matched and (trigger.condition is None or trigger.condition.matches(view))
        if not holds:
            level.start = None
            return
        if level.start is None:
            level.start = t
            level.episode += 1
            level.done = False
        if level.done:
            return
        moment = _add(level.clock, level.start, trigger.duration // US)
        if moment <= t:
            level.done = True
            found.append(self._firing(rule, level, view.ticket, None, level.episode, t))
        else:
            breaks.append(moment)

    def _firing(
        self,
        rule: EscalationRule,
        level: _Level,
        ticket: Ticket,
        target: str | None,
        cycle: int,
        t: int,
    ) -> Firing:
        return Firing(
            rule=rule.name,
            rule_version=rule.version,
            level=level.index,
            ticket_id=ticket.id,
            target=target,
            cycle=cycle,
            at=to_datetime(t, timezone.utc),
        )


def _zone(value: datetime) -> tzinfo | None:
    return value.tzinfo


def _in_zone(firing: Firing, tz: tzinfo | None) -> Firing:
    return attrs.evolve(firing, at=firing.at.astimezone(tz))


def due_firings(
    ticket: Ticket,
    book: SlaBook,
    rules: EscalationRule | Iterable[EscalationRule],
    start: datetime,
    end: datetime,
    *,
    fired: Container[FiringKey] = (),
) -> list[Firing]:
    """The firings due for ``ticket`` at instants ``start < at <= end``, in order (by
    instant, then rule order, level, target and cycle), leaving out those whose key is in
    ``fired``. Instants are in ``end``'s time zone.

    Only events at or before each instant count at that instant, so the answer for a window
    does not depend on when it is asked: the union over consecutive windows equals the answer
    for their union (catch-up is exact). Raises NaiveDatetimeError for a naive instant.
    """
    require_aware(start, "start")
    require_aware(end, "end")
    chosen = _rules(rules)
    low, high = to_us(start), to_us(end)
    out = []
    for firing in _Walk(ticket, book, chosen).firings(high):
        if to_us(firing.at) > low and firing.key not in fired:
            out.append(_in_zone(firing, _zone(end)))
    return out


def next_due(
    ticket: Ticket,
    book: SlaBook,
    rules: EscalationRule | Iterable[EscalationRule],
    after: datetime,
    *,
    fired: Container[FiringKey] = (),
) -> datetime | None:
    """The exact next instant strictly after ``after`` at which any of ``rules`` fires for
    ``ticket`` as its history stands (None when none ever will), in ``after``'s time zone.
    A new event on the ticket can change the answer: plan again after each change."""
    require_aware(after, "after")
    low = to_us(after)
    for firing in _Walk(ticket, book, _rules(rules)).firings(None):  # type: ignore[arg-type]
        if to_us(firing.at) > low and firing.key not in fired:
            return firing.at.astimezone(after.tzinfo)
    return None


# --------------------------------------------------------------------------------------------
# Applying firings (pure) and the run loop the engine and the dry run share
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PlannedFiring:
    """A firing with what applying its level did: the ticket events (stamped ``at``, the
    firing instant or the ticket's last event if later) and the outside requests."""

    firing: Firing
    at: datetime
    events: tuple[TicketEvent, ...]
    requests: tuple[Any, ...]


@attrs.frozen(kw_only=True)
class TicketRun:
    """The outcome of :func:`run_ticket`: the ticket after every applied firing, and the
    firings in the order applied."""

    ticket: Ticket
    firings: tuple[PlannedFiring, ...]


def apply_firing(
    ticket: Ticket, firing: Firing, rule: EscalationRule, book: SlaBook
) -> tuple[Ticket, PlannedFiring]:
    """Apply the actions of ``firing``'s level of ``rule`` to ``ticket``, in order.

    Events are stamped at the firing instant, or at the ticket's last event when that is later
    (a history only grows at its end), with ``rule.actor`` as actor. Raises ValidationError
    when ``firing`` is not of ``rule``, and whatever an action raises (InvalidTransition for
    a change the ticket's history forbids).
    """
    if (firing.rule, firing.rule_version) != (rule.name, rule.version) or not (
        0 <= firing.level < len(rule.levels)
    ):
        from csmcore.errors import ValidationError

        raise ValidationError(
            f"firing {firing.key_text} is not of rule {rule.name!r} version {rule.version}",
            field="firing",
        )
    at = max(firing.at, ticket.events[-1].at)
    events: list[TicketEvent] = []
    requests: list[Any] = []
    for index, action in enumerate(rule.levels[firing.level].actions):
        context = ActionContext(at=at, actor=rule.actor, firing=firing, book=book, index=index)
        result: ActionResult = action.apply(ticket, context)
        ticket = result.ticket
        events.extend(result.events)
        requests.extend(result.requests)
    return ticket, PlannedFiring(
        firing=firing, at=at, events=tuple(events), requests=tuple(requests)
    )


def run_ticket(
    ticket: Ticket,
    book: SlaBook,
    rules: EscalationRule | Iterable[EscalationRule],
    start: datetime,
    end: datetime,
    *,
    fired: Container[FiringKey] = (),
    max_firings: int = 1000,
) -> TicketRun:
    """Fire, in order, every firing due in ``start < at <= end`` and apply its actions,
    planning again after each one that changed the ticket (an action's event at the firing
    instant can move or create later firings, exactly as it would for an engine running at
    that instant). Pure: returns the new ticket and what was done.

    Raises EscalationLoop after ``max_firings`` firings.
    """
    chosen = _rules(rules)
    by_name = {rule.name: rule for rule in chosen}
    done: set[FiringKey] = set()

    class _Seen:
        def __contains__(self, key: object) -> bool:
            return key in done or key in fired

    seen = _Seen()
    applied: list[PlannedFiring] = []
    pending = due_firings(ticket, book, chosen, start, end, fired=seen)
    while pending:
        if len(applied) >= max_firings:
            raise EscalationLoop(
                f"ticket {ticket.id!r}: more than max_firings={max_firings} firings between "
                f"{start.isoformat()} and {end.isoformat()}; do rules feed each other?"
            )
        firing = pending.pop(0)
        ticket, planned = apply_firing(ticket, firing, by_name[firing.rule], book)
        done.add(firing.key)
        applied.append(planned)
        if planned.events:
            pending = due_firings(ticket, book, chosen, start, end, fired=seen)
    return TicketRun(ticket=ticket, firings=tuple(applied))


def dry_run(
    tickets: Iterable[Ticket],
    book: SlaBook,
    rules: EscalationRule | Iterable[EscalationRule],
    start: datetime,
    end: datetime,
    *,
    fired: Container[FiringKey] = (),
) -> list[PlannedFiring]:
    """What would fire for ``tickets`` in ``start < at <= end`` and what it would do, in
    order of instant (then ticket id, rule order, level): :func:`run_ticket` for each ticket,
    changing nothing (every value here is immutable; nothing is stored or sent)."""
    chosen = _rules(rules)
    order = {rule.name: i for i, rule in enumerate(chosen)}
    out: list[PlannedFiring] = []
    for ticket in tickets:
        out.extend(run_ticket(ticket, book, chosen, start, end, fired=fired).firings)
    out.sort(key=lambda p: (p.firing.at, p.firing.ticket_id, order[p.firing.rule], p.firing.level))
    return out


# Resolved here, where the names exist: the package presents these classes as its own.
for _cls in (Firing, PlannedFiring, TicketRun):
    attrs.resolve_types(_cls)
del _cls
