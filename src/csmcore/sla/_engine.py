"""The SLA engine: one pass over a ticket's events, then one replay per target key (private).

Internally every instant is an integer count of UTC microseconds and every time line (a
business calendar's, or wall time for calendar-time targets) maps instants to a monotone
*position* in microseconds of counted time. Elapsed time is a difference of positions and a due
time is the earliest instant at a position, so each event costs a couple of bisections, not
calendar walks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, Final

from csmcore._time import FAST_LIMIT_US
from csmcore.sla._compile import (
    F_AGENT,
    F_ANY,
    F_ASSIGNED,
    F_AWAITING,
    F_DONE,
    F_FIRST,
    F_REOPENED,
    F_REQUESTER,
    F_SELECT,
    F_SOLVED,
    F_STATUS,
    K_CUSTOM,
    K_FIRST,
    K_NEXT,
    K_UPDATE,
    Spec,
)
from csmcore.sla._cycles import Cycle, Memos, Track
from csmcore.sla._enums import OnReopen, OnReset, SlaMetric, SlaState
from csmcore.sla._status import SlaResults, convert_all, new_status
from csmcore.sla._transition import Transition
from csmcore.tickets import (
    Assigned,
    Commented,
    FieldsChanged,
    Merged,
    PriorityChanged,
    Reopened,
    Role,
    Status,
    StatusChanged,
    TagsChanged,
    Ticket,
    TicketCreated,
)

if TYPE_CHECKING:
    from csmcore.sla._book import SlaBook

__all__ = ["EVENT_KINDS", "Run"]

_SOLVED = frozenset({Status.SOLVED, Status.CLOSED})
# Enum members as module constants: reading ``Role.AGENT`` goes through the enum class's
# attribute lookup (about 150 ns on CPython 3.11), a module global about 20 ns; the engine
# reads them per event and per status.
_AGENT: Final = Role.AGENT
_REQUESTER: Final = Role.REQUESTER
_CLOSED: Final = Status.CLOSED
_PENDING: Final = Status.PENDING
_PAUSE: Final = OnReopen.PAUSE
_CANCEL: Final = OnReset.CANCEL
_BREACHED: Final = SlaState.BREACHED
_ACTIVE: Final = SlaState.ACTIVE
_PAUSED: Final = SlaState.PAUSED
_ACHIEVED: Final = SlaState.ACHIEVED


# What each ticket event class means to the engine, looked up by exact class: one pass over the
# events reads the kind of each from this table instead of testing its class against each one.
# Kinds are compared with ``==`` (specialised for small ints, unlike ``&``): an event has one.
E_OTHER = 0
"""Some event: it changes no status, priority or reply phase (tags, fields, unknown types)."""
E_COMMENT = 1
"""A comment: whether it is public and who wrote it decide between a reply and a requester
comment (see F_AGENT, F_REQUESTER)."""
E_STATUS = 2
"""Sets the status to the event's ``status`` (a status change, a reopen)."""
E_PRIORITY = 3
"""Sets the priority to the event's ``priority``; the targets in force are selected again."""
E_CLOSES = 4
"""Closes the ticket (a merge)."""
E_ASSIGNED = 5
"""An assignment (a trigger of custom timers)."""

EVENT_KINDS: dict[type, int] = {
    Commented: E_COMMENT,
    StatusChanged: E_STATUS,
    Reopened: E_STATUS,
    PriorityChanged: E_PRIORITY,
    Merged: E_CLOSES,
    Assigned: E_ASSIGNED,
    TagsChanged: E_OTHER,
    FieldsChanged: E_OTHER,
}
"""Event class to its E_* kind. A class not in the table (an event type a user registered, or a
subclass of a built-in one) is E_OTHER, "some event": conditions are matched again after it, as
after any event but a comment."""


class Run:
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
        self.memos: Memos = {}
        self.results: list[tuple[str, SlaMetric, list[Cycle]]] = []
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
        rows: list[tuple[int, int, Status, dict[str, Spec]]] = []
        snapshots: list[Ticket | None] = []
        t = created._at_us
        if t <= until:
            # The creation event: it starts the first-reply phase and selects the targets.
            code = F_ANY | F_FIRST | F_SELECT
            if awaiting_first:
                code |= F_AWAITING
            if status in _SOLVED:
                code |= F_SOLVED
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
            kinds = EVENT_KINDS
            comment = E_COMMENT
            # Typed Any: the loop dispatches on the event's class itself (isinstance asserts for
            # the type checker would cost a call per event).
            following: Iterator[Any] = iter(events)
            next(following)
            for event in following:
                t = event._at_us
                if t > until:
                    break
                code = F_ANY | F_AWAITING if awaiting_first else F_ANY
                try:
                    what = kinds[type(event)]
                except KeyError:
                    what = E_OTHER  # an event type the engine does not know
                if what == comment:
                    if event.public:
                        if event.author_role is _REQUESTER or event.on_behalf_of_requester:
                            code |= F_REQUESTER
                        elif event.author_role is _AGENT:
                            code |= F_AGENT
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
                    if what == E_STATUS:
                        status = event.status
                    elif what == E_PRIORITY:
                        priority = event.priority
                    elif what == E_CLOSES:
                        status = _CLOSED
                    elif what == E_ASSIGNED:
                        code |= F_ASSIGNED
                    if status is not before:
                        code |= F_STATUS
                        if status in _SOLVED:
                            if before not in _SOLVED:
                                code |= F_SOLVED
                                awaiting_first = False
                        elif before in _SOLVED:
                            code |= F_REOPENED
                    if tracking:
                        assert snapshot is not None
                        snapshot = snapshot.apply(event)
                    reselect = reselect_always or what == E_PRIORITY
                if not single:
                    epoch = book._in_force(t)
                    if epoch is not last_epoch:
                        reselect = True
                if reselect:
                    chosen = book._select(epoch, snapshot, priority)
                    last_epoch = epoch
                    if chosen is not specs and chosen != specs:
                        specs = chosen
                        code |= F_SELECT
                rows.append((t, code, status, specs))
                if keep:
                    snapshots.append(snapshot)
        memos = self.memos
        results = self.results
        for plan in book._plans:
            key = plan.key
            cycles: list[Cycle] = []
            results.append((key, plan.metric, cycles))
            kind_of_key = plan.kind
            if kind_of_key == K_CUSTOM:
                track = Track(plan, cycles, memos)
                previous: Ticket | None = None
                for (t, code, status, specs), snapshot in zip(rows, snapshots, strict=True):
                    opened = track.open
                    if opened is not None:
                        opened.check(t)
                    self._custom(track, specs.get(key), t, snapshot, previous, code, status)
                    previous = snapshot
                continue
            # One built-in key: these loops are the engine's hot path, one per kind of key.
            # Targets in force change only at F_SELECT events, so ``spec`` is re-read only
            # there; ``cycle`` is the open cycle, if any. Before a new target applies, the
            # open cycle is checked for a breach under the old one.
            relevant = plan.relevant
            mixed = plan.mixed
            spec: Spec | None = None
            cycle: Cycle | None = None
            if kind_of_key == K_FIRST:
                # One cycle at most, from creation (by anyone but an agent, unless created
                # solved) to the first public agent reply or solve; nothing later matters.
                if not rows or by_agent:
                    continue
                t, code, status, specs = rows[0]
                if code & F_SOLVED:
                    continue
                spec = specs.get(key)
                if plan.pausable:
                    cycles.append(_pausable_first(rows, key, memos, mixed))
                    continue
                # _pausable_first without pauses, inline: sharing one was 3 % slower (bench_sla)
                cycle = Cycle(1, t, spec, memos, True, mixed)
                cycles.append(cycle)
                later = iter(rows)
                next(later)
                for t, code, _, specs in later:
                    if code & F_SELECT:
                        spec = specs.get(key)
                        if spec is not cycle.spec:
                            cycle.check(t)
                            cycle.respec(spec, t)
                    if code & F_DONE:
                        cycle.end(t)
                        break
                continue
            if kind_of_key == K_NEXT:
                # A cycle from each public requester comment after the first reply, to the
                # next public agent reply or solve; its clock never pauses. A comment on a
                # solved ticket waits: its cycle starts if the ticket is reopened before an
                # agent answers (see docs/sla-concepts.md, "Comments on a solved ticket").
                waiting = False
                for t, code, status, specs in rows:
                    if not code & relevant:
                        continue
                    if code & F_SELECT:
                        spec = specs.get(key)
                        if cycle is not None and spec is not cycle.spec:
                            cycle.check(t)
                            cycle.respec(spec, t)
                    if code & F_DONE:
                        if cycle is not None:
                            cycle.end(t)
                            cycle = None
                        if code & F_AGENT:
                            waiting = False
                    elif code & F_REQUESTER and cycle is None and not code & F_AWAITING:
                        if status in _SOLVED:
                            waiting = True
                        else:
                            cycle = Cycle(len(cycles) + 1, t, spec, memos, True, mixed)
                            cycles.append(cycle)
                    elif code & F_REOPENED and waiting:
                        waiting = False
                        cycle = Cycle(len(cycles) + 1, t, spec, memos, True, mixed)
                        cycles.append(cycle)
                continue
            runs = plan.runs
            for t, code, status, specs in rows:
                if not code & relevant:
                    continue
                if code & F_SELECT:
                    spec = specs.get(key)
                    if cycle is not None and spec is not cycle.spec:
                        cycle.check(t)
                        cycle.respec(spec, t)
                running = runs is None or status in runs
                if kind_of_key == K_UPDATE:
                    if code & F_DONE and cycle is not None:
                        cycle.end(t)
                        cycle = None
                    if (code & F_AGENT or (by_agent and code & F_FIRST)) and (
                        status not in _SOLVED
                    ):
                        cycle = Cycle(len(cycles) + 1, t, spec, memos, running, mixed)
                        cycles.append(cycle)
                elif code & F_FIRST:
                    cycle = Cycle(1, t, spec, memos, running, mixed)
                    cycles.append(cycle)
                    if code & F_SOLVED:
                        cycle.end(t)
                        cycle = None
                elif code & F_SOLVED:
                    if cycle is not None:
                        cycle.end(t)
                        cycle = None
                elif code & F_REOPENED and cycles:
                    rule = spec.target.on_reopen if spec is not None else _PAUSE
                    if rule is _PAUSE:
                        cycle = cycles[-1]
                        cycle.stop = None
                        cycle.respec(spec, t)
                    else:
                        cycle = Cycle(len(cycles) + 1, t, spec, memos, running, mixed)
                        cycles.append(cycle)
                if cycle is not None and (cycle.run_us is None) is running:
                    if not running:
                        cycle.check(t)
                    cycle.run(running, t)

    def _custom(
        self,
        track: Track,
        spec: Spec | None,
        t: int,
        snapshot: Ticket | None,
        previous: Ticket | None,
        code: int,
        status: Status,
    ) -> None:
        plan = track.plan
        rules = plan.timer
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
        # Transitions fire only at an event that changed the ticket (a comment changes no
        # field: its snapshot is the previous one).
        resets = rules.reset is not None and rules.reset.matches(snapshot)
        if plan.transitions and previous is not None and previous is not snapshot:
            if not edge:
                edge = _any_fires(rules.start_on_change, previous, snapshot)
            if not stops:
                stops = _any_fires(rules.stop_on_change, previous, snapshot)
            if not resets and _any_fires(rules.reset_on_change, previous, snapshot):
                # A reset written as a change restarts the clock: at once when the timer has
                # no start condition (it is started by triggers), else if ``start`` holds.
                resets = True
                if rules.start is None:
                    starts = True
        if cycle is not None:
            if stops:
                track.end(t, bool(code & F_SOLVED))
                if not (edge and rules.restart):
                    return
                cycle = None  # restarts below, at the same event
            elif resets:
                track.end(t)
                if cycle.breach is None and (
                    cycle.spec is None or cycle.spec.target.on_reset is _CANCEL
                ):
                    track.cycles.pop()
                if starts:
                    track.begin(t, spec, True)
                    cycle = track.open
                else:
                    return
        elif (
            code & F_REOPENED
            and track.by_solve
            and spec is not None
            and spec.target.on_reopen is _PAUSE
            and not stops
        ):
            last = track.cycles[-1]
            track.resume(last)
            last.respec(spec, t)
            cycle = last
        if cycle is None and edge and (not stops or rules.restart):
            track.begin(t, spec, True)
            cycle = track.open
        if cycle is not None:
            paused = rules.pause is not None and rules.pause.matches(snapshot)
            if paused:
                cycle.check(t)
            cycle.run(not paused, t)

    # -- results --------------------------------------------------------------------------------

    def _visible(self) -> Iterable[tuple[str, Cycle]]:
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
            moments = []
            if cycle.breach is None:
                # Breached one microsecond after the due time (due_at itself is on time).
                need = cycle.run_pos + spec.d - cycle.used
                moments.append(cycle.clock.at(need, cycle.run_us, cycle.run_pos) + 1)
            for _, need in spec.thresholds:
                moments.append(
                    cycle.clock.at(cycle.run_pos + need - cycle.used, cycle.run_us, cycle.run_pos)
                )
            for moment in moments:
                if moment > after and (best is None or moment < best):
                    best = moment
        return best

    def report(self, tz: tzinfo | None, at: datetime) -> SlaResults:
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
                            moment = clock.at(need, run_us, cycle.run_pos)
                            if moment < until:
                                cycle.breach = moment
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
                status = new_status(
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
                    convert_all(status)
                out.append(status)
        return SlaResults(out)


def _any_fires(transitions: tuple[Transition, ...], before: Ticket, after: Ticket) -> bool:
    return any(transition.fires(before, after) for transition in transitions)


def _pausable_first(
    rows: list[tuple[int, int, Status, dict[str, Spec]]], key: str, memos: Memos, mixed: bool
) -> Cycle:
    """The first-reply cycle of a key with a ``pausable`` target: like the plain one, paused
    while the ticket is pending under a pausable target (the first row opens it)."""
    t, _, status, specs = rows[0]
    spec = specs.get(key)
    cycle = Cycle(1, t, spec, memos, not _paused_first(spec, status), mixed)
    later = iter(rows)
    next(later)
    for t, code, status, specs in later:
        if code & F_SELECT:
            spec = specs.get(key)
            if spec is not cycle.spec:
                cycle.check(t)
                cycle.respec(spec, t)
        if code & F_DONE:
            cycle.end(t)
            break
        running = not _paused_first(cycle.spec, status)
        if (cycle.run_us is None) is running:
            if not running:
                cycle.check(t)
            cycle.run(running, t)
    return cycle


def _paused_first(spec: Spec | None, status: Status) -> bool:
    return status is _PENDING and spec is not None and spec.target.pausable


def _state(cycle: Cycle) -> SlaState:
    if cycle.breach is not None:
        return _BREACHED
    if cycle.stop is not None:
        return _ACHIEVED
    return _ACTIVE if cycle.run_us is not None else _PAUSED


def _warning(cycle: Cycle, until: int) -> float | None:
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
