"""Properties of the engine on the memory store, over random timelines:

- running it every few minutes of a timeline (the host appending its events as they happen and
  telling the engine) or once at the end gives the same firings, in the same order, and the
  ones the pure planner lists;
- no firing is recorded before its instant, none twice;
- a run that dies at any firing (its unit of work rolled back) and is run again leaves exactly
  what an undisturbed run leaves: no lost and no doubled notification, record or event.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.errors import InternalError
from csmcore.escalation import Firing, due_firings
from csmcore.services import EscalationEngine
from csmcore.storage import Store, open_store, role_of
from csmcore.testing._engine_workers import BOOK as SCENARIO_BOOK
from csmcore.testing._engine_workers import RULES as SCENARIO_RULES
from csmcore.testing._engine_workers import T0, scenario_tickets
from csmcore.tickets import Ticket
from tests.escalation.support import at
from tests.escalation.test_properties import BOOK, RULES, START, TIMELINES

END = at(8, 12)


def _fired(store: Store) -> list[tuple[object, datetime]]:
    return [(r.key, r.firing.at) for r in role_of(store, "firings").list()]


def _stepwise(ticket: Ticket, step: timedelta, engines: int = 1) -> tuple[list[Firing], Store]:
    """The host adds the ticket when it is created and each event when it happens, telling the
    engine each time; the engine runs every ``step`` from the creation to END. With several
    ``engines`` (each remembering where its walks stopped) they take turns."""
    store = open_store("memory://")
    turns = [EscalationEngine(store, BOOK, RULES) for _ in range(engines)]
    engine = turns[0]
    created = Ticket.from_events(ticket.events[:1])
    store.tickets.add(created)
    engine.ticket_changed(ticket.id)
    pending = list(ticket.events[1:])
    fired: list[Firing] = []
    now = ticket.created_at
    turn = 0
    while True:
        turn += 1
        engine = turns[turn % engines]
        now = min(now + step, END)
        due = [e for e in pending if e.at <= now]
        if due:
            pending = pending[len(due) :]
            for event in due:
                version = store.tickets.get(ticket.id).version
                store.tickets.append(ticket.id, [event], expected_version=version)
            engine.ticket_changed(ticket.id)
        run = engine.run(now)
        assert all(p.firing.at <= now for p in run.firings)  # none before its instant
        fired.extend(p.firing for p in run.firings)
        if now == END:
            return fired, store


def _once(ticket: Ticket) -> tuple[list[Firing], Store]:
    store = open_store("memory://")
    store.tickets.add(ticket)
    engine = EscalationEngine(store, BOOK, RULES)
    engine.ticket_changed(ticket.id)
    return [p.firing for p in engine.run(END).firings], store


@settings(max_examples=25)
@given(TIMELINES, st.integers(10, 240))
def test_stepwise_runs_equal_one_late_run_and_the_planner(ticket: Ticket, minutes: int) -> None:
    if ticket.events[-1].at > END:
        return
    stepwise, step_store = _stepwise(ticket, timedelta(minutes=minutes))
    once, once_store = _once(ticket)
    planned = due_firings(ticket, BOOK, RULES, START, END)
    assert [(f.key, f.at) for f in stepwise] == [(f.key, f.at) for f in once]
    assert [(f.key, f.at) for f in once] == [(f.key, f.at) for f in planned]
    assert _fired(step_store) == _fired(once_store)
    keys = [key for key, _ in _fired(once_store)]
    assert len(keys) == len(set(keys))  # never twice
    records = role_of(step_store, "firings").list()
    assert all(r.recorded_at >= r.firing.at for r in records)


@settings(max_examples=25)
@given(TIMELINES, st.integers(10, 240))
def test_engines_taking_turns_equal_one_late_run(ticket: Ticket, minutes: int) -> None:
    # Each engine remembers where its walks stopped; the other one changes the ticket and
    # records firings meanwhile, so what one remembers is often out of date: it must notice.
    if ticket.events[-1].at > END:
        return
    stepwise, step_store = _stepwise(ticket, timedelta(minutes=minutes), engines=2)
    once, once_store = _once(ticket)
    assert [(f.key, f.at) for f in stepwise] == [(f.key, f.at) for f in once]
    assert _fired(step_store) == _fired(once_store)


def test_every_minute_of_a_busy_morning_equals_one_run() -> None:
    ticket = scenario_tickets(1)[0]
    store = open_store("memory://")
    store.tickets.add(ticket)
    engine = EscalationEngine(store, SCENARIO_BOOK, SCENARIO_RULES)
    engine.ticket_changed(ticket.id)
    fired = []
    for minute in range(6 * 60 + 1):
        fired += [p.firing for p in engine.run(T0 + timedelta(minutes=minute)).firings]
    late_store = open_store("memory://")
    late_store.tickets.add(ticket)
    late = EscalationEngine(late_store, SCENARIO_BOOK, SCENARIO_RULES)
    late.ticket_changed(ticket.id)
    assert fired == [p.firing for p in late.run(T0 + 6 * timedelta(hours=1)).firings]
    assert [f.at - T0 for f in fired] == [timedelta(minutes=m) for m in (30, 120, 240)]
    assert store.tickets.get(ticket.id) == late_store.tickets.get(ticket.id)


class _Crash(Exception):
    pass


def _state(store: Store) -> tuple[object, ...]:
    return (
        Counter(r.key for r in role_of(store, "firings").list()),
        sorted(((m.key, m.request) for m in role_of(store, "outbox").list()), key=str),
        [store.tickets.get(t.id) for t in scenario_tickets(5)],
    )


@settings(max_examples=30)
@given(
    st.integers(1, 15),
    st.integers(1, 4),
    st.lists(st.integers(0, 8 * 60), min_size=1, max_size=3),
)
def test_a_run_that_dies_at_any_firing_loses_and_doubles_nothing(
    kill_at: int, batch_size: int, run_minutes: list[int]
) -> None:
    """The crash is an exception from the hook after the ``kill_at``-th firing's writes: the
    unit of work rolls back, as a killed process's would. Then the host goes on running the
    engine at the given minutes, and at the end."""
    tickets = scenario_tickets(5)
    clean = open_store("memory://")
    clean.tickets.add_many(tickets)
    reference = EscalationEngine(clean, SCENARIO_BOOK, SCENARIO_RULES)
    reference.plan_all()
    end = T0 + 10 * timedelta(hours=1)
    reference.run(end)

    store = open_store("memory://")
    store.tickets.add_many(tickets)
    count = 0

    def hook(_: object) -> None:
        nonlocal count
        count += 1
        if count == kill_at:
            raise _Crash

    crashing = EscalationEngine(
        store, SCENARIO_BOOK, SCENARIO_RULES, batch_size=batch_size, on_applied=hook
    )
    crashing.plan_all()
    cause: BaseException | None = None
    try:
        crashing.run(end)
    except InternalError as err:  # the public boundary wraps what is not a CsmError
        cause = err.__cause__
    crashed = isinstance(cause, _Crash)
    assert crashed == (kill_at <= 15)  # five tickets, three firings each
    if crashed:
        assert count == kill_at  # nothing after the crash ran
    engine = EscalationEngine(store, SCENARIO_BOOK, SCENARIO_RULES, batch_size=batch_size)
    for minute in sorted(run_minutes):
        engine.run(T0 + timedelta(minutes=minute))
    engine.run(end)
    assert _state(store) == _state(clean)
    assert engine.next_due() is None
