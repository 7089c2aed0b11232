"""The planner's walk over one ticket's timeline (private; see :mod:`._plan`).

The walk visits a ticket's *breakpoints* in time order: the instants of its events, the
instants at which its SLA results change state (a running cycle's breach), and the instants at
which a level's threshold or a comparison on a moving SLA number is reached (computed exactly
from the target's clock). Between two breakpoints nothing a rule reads changes, so evaluating
at the breakpoints alone is exact. At each breakpoint ``t`` the ticket is taken as it stood at
``t`` (all events at or before ``t``) with its SLA results at ``t``.

What makes it cheap:

- what depends only on the book and the rules (clocks, exact ratios, the moving comparisons)
  is computed once per (book, rules) and shared by every ticket (:func:`static_for`);
- the SLA results come from one :class:`~csmcore.sla.TicketEvaluator`, which replays the
  history once per stretch between two events, not once per breakpoint;
- the walk can be resumed: after an action appends events at the breakpoint just visited,
  :meth:`Walk.rewind` undoes that visit (an undo log of what it changed) and the walk visits
  the instant again with the new ticket, instead of starting over from the creation.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from operator import is_
from typing import Any

from csmcore._time import US, to_datetime, to_us
from csmcore.calendars import BusinessCalendar
from csmcore.escalation._rules import (
    ConditionHeld,
    DueOffset,
    EscalationRule,
    PercentUsed,
    clock_of,
)
from csmcore.escalation._subject import (
    EscalationView,
    crossing_elapsed,
    reads_member,
    time_varying_leaves,
)
from csmcore.loyalty import MemberTimeline
from csmcore.sla import (
    SlaBook,
    SlaResults,
    SlaState,
    SlaStatus,
    SlaTarget,
    StatusMicroseconds,
    TicketEvaluator,
)
from csmcore.tickets import Ticket, TicketEvent

__all__ = ["Found", "PlanState", "Static", "Walk", "static_for"]

_ACTIVE = SlaState.ACTIVE
_BREACHED = SlaState.BREACHED

Found = tuple[EscalationRule, int, "str | None", int]
"""A firing found at a breakpoint: (rule, level index, target or None, cycle or episode)."""


def _add(clock: BusinessCalendar | None, start: int, amount: int) -> int:
    """The instant (µs) at which ``amount`` µs of the clock have passed from ``start``."""
    if clock is None:
        return start + amount
    return to_us(clock.add(to_datetime(start, timezone.utc), amount * US))


class _Clocks:
    """The clock of each SLA status (the target's calendar, or wall time), cached."""

    def __init__(self, book: SlaBook) -> None:
        self.book = book
        self.cache: dict[tuple[str, int, str, timedelta, object], BusinessCalendar | None] = {}
        # The targets of a key whose choice depends on a condition of their own, by (policy,
        # version, key): for those the ticket decides, so nothing is cached.
        self.conditional: dict[tuple[str, int, str], tuple[SlaTarget, ...]] = {}
        for policy in book.policies:
            for target in policy.targets:
                if target.condition is not None:
                    self.conditional[(policy.name, policy.version, target.key)] = tuple(
                        t for t in policy.targets if t.key == target.key
                    )

    def _clock(self, target: SlaTarget) -> BusinessCalendar | None:
        return None if not target.business_hours else self.book.calendar_named(target.calendar)

    def of(self, status: SlaStatus, ticket: Ticket) -> BusinessCalendar | None:
        key = (status.policy, status.policy_version, status.target, status.within, ticket.priority)
        if key in self.cache:
            return self.cache[key]
        choices = self.conditional.get(key[:3])
        if choices is not None:
            # The SLA applies the first target of the key in force for the ticket as it
            # stands (its priority and the target's own condition), as SlaPolicy lists them.
            for target in choices:
                if target.priority is not None and target.priority is not ticket.priority:
                    continue
                if target.condition is not None and not target.condition.matches(ticket):
                    continue
                if target.within == status.within:
                    return self._clock(target)
                break
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
        if choices is None:
            self.cache[key] = clock
        return clock


_PERCENT, _OFFSET, _HELD = 0, 1, 2
"""The kinds of level trigger (:class:`PercentUsed`, :class:`DueOffset`, :class:`ConditionHeld`)."""

_NOTHING_FIRED: frozenset[tuple[str | None, int]] = frozenset()
"""A level's ``fired`` until it first fires (shared; replaced by a set of its own then)."""


class _LevelSpec:
    """What a level's walk needs that no ticket changes."""

    __slots__ = ("clock", "index", "kind", "ratio", "target", "trigger")

    def __init__(self, index: int, trigger: Any, book: SlaBook) -> None:
        self.index = index
        self.trigger = trigger
        self.kind = (
            _PERCENT
            if isinstance(trigger, PercentUsed)
            else _HELD
            if isinstance(trigger, ConditionHeld)
            else _OFFSET
        )
        self.target: str | None = None if self.kind == _HELD else trigger.target
        self.clock = (
            None
            if isinstance(trigger, PercentUsed)
            else clock_of(book, trigger.business_hours, trigger.calendar)
        )
        # percent: the exact fraction of the target as (numerator, denominator)
        self.ratio = (
            trigger.percent.as_integer_ratio() if isinstance(trigger, PercentUsed) else (0, 1)
        )


class Static:
    """What walking any ticket under (book, rules) needs, computed once."""

    def __init__(self, book: SlaBook, rules: tuple[EscalationRule, ...]) -> None:
        self.book = book
        self.rules = rules
        self.clocks = _Clocks(book)
        self.levels = [
            [_LevelSpec(i, level.trigger, book) for i, level in enumerate(rule.levels)]
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
        # whether some condition reads the requester's loyalty member: the walk then visits
        # the instants at which the member can change
        self.reads_member = rules_read_member(rules)


_statics: dict[tuple[int, tuple[int, ...]], Static] = {}
_statics_lock = threading.Lock()
_STATICS_KEPT = 64


def static_for(book: SlaBook, rules: tuple[EscalationRule, ...]) -> Static:
    """The shared :class:`Static` of (book, rules), by identity (both are immutable)."""
    key = (id(book), tuple(map(id, rules)))
    found = _statics.get(key)
    if (
        found is not None
        and found.book is book
        and len(found.rules) == len(rules)
        and all(map(is_, found.rules, rules))
    ):
        return found
    made = Static(book, rules)
    with _statics_lock:
        while len(_statics) >= _STATICS_KEPT:  # forget the oldest: states of it stop applying
            del _statics[next(iter(_statics))]
        _statics[key] = made
    return made


class _Level:
    """The walking state of one level of one rule for one ticket."""

    __slots__ = ("done", "episode", "fired", "spec", "start")

    def __init__(self, spec: _LevelSpec) -> None:
        self.spec = spec
        self.fired: set[tuple[str | None, int]] | frozenset[tuple[str | None, int]] = _NOTHING_FIRED
        self.episode = 0
        self.start: int | None = None  # held: the instant the current episode began
        self.done = False  # held: the current episode has fired


def rules_read_member(rules: Iterable[EscalationRule]) -> bool:
    """Whether a condition of ``rules`` (a rule's, or a held level's own) reads the
    requester's loyalty member (``member.*`` fields)."""
    return any(
        reads_member(rule.condition)
        or any(
            isinstance(level.trigger, ConditionHeld)
            and level.trigger.condition is not None
            and reads_member(level.trigger.condition)
            for level in rule.levels
        )
        for rule in rules
    )


def members_token(members: Mapping[str, MemberTimeline]) -> object:
    """What tells two snapshots of the members a walk reads apart (None: it reads none); the
    engine compares it too, to tell whether a firing changed the members a walk read."""
    if not members:
        return None
    return tuple(sorted((member_id, m.token) for member_id, m in members.items()))


def _us_of(value: datetime) -> int:
    return to_us(value)


_LevelStates = tuple[object, ...]
"""The walking state of the levels that have one, flat (a state is kept per ticket, so it is
kept small): for each, rule index, level index, episode, start, done, the number of (target,
cycle) pairs it fired for, then those pairs' targets and cycles in turn."""


def _mark(event: TicketEvent) -> tuple[type, int]:
    """What a state remembers of the last event it saw: tickets only grow at their end (no
    store rewrites or deletes a history), so the number of events and the last one's kind and
    instant tell the same history from one that went on."""
    return (type(event), _us_of(event.at))


class PlanState:
    """Where the planner's walk over one ticket stopped, to go on from there later.

    :func:`~csmcore.escalation.run_ticket` returns one (:attr:`TicketRun.state`) and takes one
    back (``resume=``): the next run of the same book and rules on the same ticket then starts
    at the instant the last one stopped instead of walking the history from its creation. It
    is opaque and immutable, and it only ever shortens the walk: a state of another ticket,
    book or rule set, of a run whose window started later than the new one's, or of a history
    that went on with events at or before the last instant it visited, is ignored and the walk
    starts from the creation. Histories only grow at their end (no store rewrites one), so the
    number of events and the last one's kind and instant tell the history the state saw.
    """

    __slots__ = (
        "_last",
        "_levels",
        "_member",
        "_next_at",
        "_seen",
        "_start",
        "_static",
        "_ticket_id",
        "_visited",
    )

    def __init__(
        self,
        static: Static,
        ticket_id: str,
        start: int,
        visited: int,
        seen: int,
        last: tuple[type, int],
        next_at: int | None,
        levels: _LevelStates,
        member: object = None,
    ) -> None:
        self._member = member
        self._static = static
        self._ticket_id = ticket_id
        self._start = start
        self._visited = visited
        self._seen = seen
        self._last = last
        self._next_at = next_at
        self._levels = levels

    def __repr__(self) -> str:
        return f"PlanState(visited={to_datetime(self._visited, timezone.utc).isoformat()})"


class Walk:
    """One ticket's timeline walked over its breakpoints (see the module docstring).

    :attr:`t` is the breakpoint to visit next; :meth:`step` visits it and returns the firings
    found there (in rule order, level order, then the order of the SLA results);
    :meth:`advance` moves to the next breakpoint (:attr:`finished` when there is none).
    """

    def __init__(
        self,
        static: Static,
        ticket: Ticket,
        members: Mapping[str, MemberTimeline] | None = None,
    ) -> None:
        self.static = static
        # the requesters' members by id, read only when some condition reads them: each
        # instant reads the one who was the requester then
        self.members: Mapping[str, MemberTimeline] = (
            members if members and static.reads_member else {}
        )
        self.book = static.book
        self.clocks = static.clocks
        self.levels = [[_Level(spec) for spec in specs] for specs in static.levels]
        self.undo: list[tuple[_Level, bool, Any]] = []
        self.breaks: list[int] = []
        self.visited: int | None = None  # the last instant visited
        self.before: int | None = None  # the one visited before it (for rewind)
        self.finished = False
        self._take(ticket)
        self.t = self.times[0]

    @classmethod
    def resume(
        cls,
        state: PlanState,
        static: Static,
        ticket: Ticket,
        start: int,
        members: Mapping[str, MemberTimeline] | None = None,
    ) -> Walk | None:
        """The walk ``state`` saved, on ``ticket`` (the saved ticket with events appended
        after the last instant visited) for a run whose window starts after ``start`` (µs);
        None when ``state`` does not apply (also when the conditions read loyalty members
        whose entries changed since, or other members: the walk then starts again from the
        creation)."""
        if state._static is not static or state._ticket_id != ticket.id:
            return None
        if static.reads_member and state._member != members_token(members or {}):
            return None
        events = ticket.events
        if start < state._start and state._start >= _us_of(events[0].at):
            # The saved run looked only at firings after its own start: the earlier ones it
            # passed over were not applied, so this run, starting before, walks them itself.
            return None
        seen = state._seen
        if len(events) < seen:
            return None
        if _mark(events[seen - 1]) != state._last:
            return None
        first_new = _us_of(events[seen].at) if len(events) > seen else None
        if first_new is not None and first_new <= state._visited:
            return None  # an event at an instant already visited: the walk is stale
        walk = cls(static, ticket, members)
        flat: Any = state._levels
        k = 0
        while k < len(flat):
            level = walk.levels[flat[k]][flat[k + 1]]
            level.episode, level.start, level.done, count = flat[k + 2 : k + 6]
            k += 6
            level.fired = {(flat[k + 2 * j], flat[k + 2 * j + 1]) for j in range(count)}
            k += 2 * count
        walk.visited = state._visited
        following = [x for x in (state._next_at, first_new) if x is not None]
        if following:
            walk.t = min(following)
        else:
            walk.finished = True
        return walk

    def state(self, start: int) -> PlanState | None:
        """Where this walk stands, at rest before visiting :attr:`t`, for a run whose window
        started after ``start`` (µs); None before any visit: nothing to save."""
        if self.visited is None:
            return None
        flat: list[object] = []
        for r, row in enumerate(self.levels):
            for i, level in enumerate(row):
                if level.fired or level.episode or level.start is not None or level.done:
                    flat += (r, i, level.episode, level.start, level.done, len(level.fired))
                    for target, cycle in level.fired:
                        flat += (target, cycle)
        levels = tuple(flat)
        events = self.ticket.events
        return PlanState(
            self.static,
            self.ticket.id,
            start,
            self.visited,
            len(events),
            _mark(events[-1]),
            None if self.finished else self.t,
            levels,
            members_token(self.members),
        )

    def _take(self, ticket: Ticket) -> None:
        self.ticket = ticket
        self.times = [_us_of(e.at) for e in ticket.events]
        self.judge: TicketEvaluator = self.book.evaluator(ticket)
        self.prober: TicketEvaluator | None = None
        self.seen = -1  # how many events the cached view ticket has
        self.as_of = ticket

    def retake(self, ticket: Ticket) -> None:
        """``ticket`` is this walk's ticket with events appended later than :attr:`t`."""
        self._take(ticket)

    def rewind(self, ticket: Ticket | None = None) -> None:
        """Undo the visit of :attr:`t`, so that :meth:`step` visits it again: with
        ``ticket`` (this walk's ticket with events appended at :attr:`t`) when given."""
        for level, held, state in reversed(self.undo):
            if held:
                level.start, level.episode, level.done = state
            else:
                level.fired.discard(state)
        self.undo = []
        self.visited = self.before
        if ticket is not None:
            self._take(ticket)

    def advance(self) -> bool:
        """Move :attr:`t` to the next breakpoint; False when there is none."""
        t = self.t
        times = self.times
        k = bisect_right(times, t)
        best = times[k] if k < len(times) else None
        for moment in self.breaks:
            if moment > t and (best is None or moment < best):
                best = moment
        if best is None:
            self.finished = True
            return False
        self.t = best
        return True

    def view(self, t: int) -> EscalationView:
        at = to_datetime(t, timezone.utc)
        count = bisect_right(self.times, t)
        if count != self.seen:
            self.as_of = self.ticket if count == len(self.times) else self.ticket.as_of(at)
            self.seen = count
        # the member read is the one who was the requester at that instant (None: a requester
        # whose timeline was not given)
        members = self.members
        member = members.get(self.as_of.requester) if members else None
        return EscalationView(self.as_of, self.judge.at(at), at, member)

    # -- one breakpoint -----------------------------------------------------------------------

    def step(self) -> list[Found]:
        """Visit :attr:`t`: the firings found there."""
        t = self.t
        self.undo = []
        self.before = self.visited
        self.visited = t
        view = self.view(t)
        found: list[Found] = []
        breaks: list[int] = []
        # Breakpoints a clock's amount after t: only the nearest one per clock can be the next
        # breakpoint, so each clock adds once per visit however many levels wait on it.
        waits: dict[int, tuple[BusinessCalendar | None, int]] = {}  # by id (hashing is slow)
        statuses: SlaResults = view.sla
        ticket = view.ticket
        rows = [(status, status.microseconds()) for status in statuses]
        known: dict[int, bool] = {}
        clocks = self.clocks
        clock_of: dict[int, BusinessCalendar | None] = {}

        def running(status: SlaStatus, m: StatusMicroseconds) -> bool:
            result = known.get(id(status))
            if result is None:
                result = known[id(status)] = m.stopped is None and self._running(
                    status, m, t, ticket
                )
            return result

        def wait(status: SlaStatus, amount: int) -> None:
            ident = id(status)
            if ident in clock_of:
                clock = clock_of[ident]
            else:
                clock = clock_of[ident] = clocks.of(status, ticket)
            key = id(clock)
            held = waits.get(key)
            if held is None or amount < held[1]:
                waits[key] = (clock, amount)

        for leaf in self.static.leaves:
            for status, m in rows:
                if running(status, m):
                    e0 = m.elapsed
                    for edge in crossing_elapsed(leaf, status):
                        if edge > e0:
                            wait(status, edge - e0)
        undo = self.undo
        # The open cycles of each target (a level reads only its target's).
        open_rows: dict[str, list[tuple[SlaStatus, StatusMicroseconds]]] = {}
        for row in rows:
            if row[1].stopped is None:
                target = row[0].target
                if target in open_rows:
                    open_rows[target].append(row)
                else:
                    open_rows[target] = [row]
        for rule, levels in zip(self.static.rules, self.levels, strict=True):
            # The rule's condition is matched when a level needs it (a level reached, or a
            # held condition), once per visit.
            matched: bool | None = None
            for level in levels:
                spec = level.spec
                kind = spec.kind
                if kind == _HELD:
                    if matched is None:
                        matched = rule.condition.matches(view)
                    self._held(rule, level, t, view, matched, found, breaks)
                    continue
                candidates = open_rows.get(spec.target)  # type: ignore[arg-type]
                if candidates is None:
                    continue
                for status, m in candidates:
                    ident = (spec.target, status.cycle)
                    if ident in level.fired:
                        continue
                    if kind == _PERCENT:
                        numerator, denominator = spec.ratio
                        need = -((-numerator * m.within) // (100 * denominator))  # ceiling
                        due = m.elapsed >= need
                        if not due and running(status, m):
                            wait(status, need - m.elapsed)
                    else:
                        due = self._offset(spec.trigger, level, status, m, t, breaks)
                    if not due:
                        continue
                    if matched is None:
                        matched = rule.condition.matches(view)
                    if matched:
                        if level.fired is _NOTHING_FIRED:
                            level.fired = set()
                        level.fired.add(ident)  # type: ignore[union-attr]  # a set now
                        undo.append((level, False, ident))
                        found.append((rule, spec.index, status.target, status.cycle))
        # Between events, the only SLA changes are breaches of running cycles, one
        # microsecond after their due instant (what SlaBook.next_change also finds, without
        # replaying the history again).
        for status, m in rows:
            if status.state is _ACTIVE:
                breaks.append(m.due + 1)
        if self.members:  # the next instant the requester's member can change (a change of
            # requester is an event: a breakpoint of its own)
            member = self.members.get(ticket.requester)
            change = None if member is None else member.next_change_us(t)
            if change is not None:
                breaks.append(change)
        for clock, amount in waits.values():
            breaks.append(_add(clock, t, amount))
        self.breaks = breaks
        return found

    def _running(self, status: SlaStatus, m: StatusMicroseconds, t: int, ticket: Ticket) -> bool:
        """Whether an open cycle's clock runs at ``t`` (ACTIVE, or breached and not paused)."""
        if status.state is _ACTIVE:
            return True
        if status.state is not _BREACHED:
            return False
        # A breached cycle does not say whether it is paused: look one microsecond of its
        # clock ahead. If the state changes before then, the next breakpoint comes first.
        clock = self.clocks.of(status, ticket)
        probe = _add(clock, t, 1)
        if self.prober is None:
            self.prober = self.book.evaluator(self.ticket)
        later = self.prober.at(to_datetime(probe, timezone.utc))
        again = later.get(status.target, status.cycle)
        return again is not None and again.microseconds().elapsed > m.elapsed

    def _offset(
        self,
        trigger: DueOffset,
        level: _Level,
        status: SlaStatus,
        m: StatusMicroseconds,
        t: int,
        breaks: list[int],
    ) -> bool:
        """Whether a :class:`DueOffset` level is reached for ``status`` at ``t`` (else its
        instant goes to ``breaks``)."""
        offset = trigger.offset // US
        if offset < 0:
            if status.state is _BREACHED:
                return True
            if status.state is not _ACTIVE:
                return False
            moment = _add(level.spec.clock, m.due, offset)
        else:
            if m.breached is None:
                return False
            moment = _add(level.spec.clock, m.breached, offset)
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
        found: list[Found],
        breaks: list[int],
    ) -> None:
        trigger = level.spec.trigger
        holds = matched and (trigger.condition is None or trigger.condition.matches(view))
        before = (level.start, level.episode, level.done)
        if not holds:
            if level.start is not None:
                self.undo.append((level, True, before))
                level.start = None
            return
        if level.start is None:
            self.undo.append((level, True, before))
            level.start = t
            level.episode += 1
            level.done = False
        if level.done:
            return
        moment = _add(level.spec.clock, level.start, trigger.duration // US)
        if moment <= t:
            self.undo.append((level, True, (level.start, level.episode, level.done)))
            level.done = True
            found.append((rule, level.spec.index, None, level.episode))
        else:
            breaks.append(moment)
