"""EscalationEngine on memory, SQLite and PostgreSQL: exact instants, each firing once, events
and outbox messages written with their records, scheduling (next_due, ticket_changed), dry
runs, conflicts with the host, and bad arguments."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import attrs
import pytest

from csmcore.conditions import Always, Eq, HasTags
from csmcore.errors import (
    InvalidTransition,
    NaiveDatetimeError,
    UnsupportedRole,
    ValidationError,
)
from csmcore.escalation import (
    NOTE_CHANNEL,
    ActionContext,
    ActionResult,
    AddTags,
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    NotificationRequest,
    Notify,
    PercentUsed,
    PlannedFiring,
    PointsGrantRequest,
    SetPriority,
    action,
    dry_run,
)
from csmcore.services import (
    EscalationEngine,
    request_handler,
    request_handlers,
    unregister_request_handler,
)
from csmcore.storage import OutboxState, Store, open_store, role_of
from csmcore.testing._engine_workers import BOOK, RULES, T0, scenario_tickets
from csmcore.testing.builders import make_ticket
from csmcore.tickets import Commented, PriorityChanged, Role, TagsChanged, Ticket

H = timedelta(hours=1)
M = timedelta(minutes=1)


def _loaded(store: Store, count: int) -> EscalationEngine:
    store.tickets.add_many(scenario_tickets(count))
    engine = EscalationEngine(store, BOOK, RULES, batch_size=3)
    assert engine.plan_all() == count
    return engine


def _expected(count: int, end: datetime) -> list[PlannedFiring]:
    return dry_run(scenario_tickets(count), BOOK, RULES, T0 - M, end)


def test_the_scenario_fires_each_level_once_at_its_instant(store: Store) -> None:
    engine = _loaded(store, 4)
    assert engine.next_due() == T0 + 30 * M  # E-0000 unassigned for 30 minutes
    first = engine.run(T0 + 30 * M)
    assert [(p.firing.ticket_id, p.firing.rule, p.firing.at) for p in first.firings] == [
        ("E-0000", "unassigned", T0 + 30 * M)
    ]
    assert engine.next_due() == T0 + 31 * M
    later = engine.run(T0 + 6 * H)
    expected = _expected(4, T0 + 6 * H)
    got = [*first.firings, *later.firings]
    assert [p.firing for p in got] == [p.firing for p in expected]
    assert len(got) == 12
    assert engine.run(T0 + 6 * H).firings == ()
    assert engine.next_due() is None
    # records: one per firing, recorded no earlier than due
    records = role_of(store, "firings").list()
    assert sorted(r.key for r in records) == sorted(p.firing.key for p in expected)
    assert all(r.recorded_at >= r.firing.at for r in records)
    # ticket events: one of each per ticket, by the rule, at the firing instant
    for ticket in scenario_tickets(4):
        stored = store.tickets.get(ticket.id)
        made = Counter(type(e) for e in stored.events[1:])
        assert made == {TagsChanged: 1, PriorityChanged: 1, Commented: 1}
        assert stored.priority == "urgent"
        assert "half" in stored.tags
        assert {e.at for e in stored.events[1:]} == {
            ticket.created_at + 2 * H,
            ticket.created_at + 4 * H,
        }
    # outbox: every request once, pending, not before its instant
    messages = role_of(store, "outbox").list()
    wanted = sorted(
        r.idempotency_key
        for p in expected
        for r in p.requests
        if isinstance(r, NotificationRequest)
    )
    assert sorted(m.key for m in messages) == wanted
    assert len(wanted) == 16
    assert all(m.state is OutboxState.PENDING for m in messages)
    notes = [m for m in messages if m.request.channel == NOTE_CHANNEL]
    assert len(notes) == 4


def test_a_ticket_change_plans_it_again(store: Store) -> None:
    engine = _loaded(store, 1)
    assert engine.next_due() == T0 + 30 * M
    ticket = store.tickets.get("E-0000")
    ticket = store.tickets.append(
        "E-0000", [ticket.assign(T0 + 10 * M, "bob")[1]], expected_version=ticket.version
    )
    assert engine.next_due() == T0 + 30 * M  # the host has not told the engine yet
    assert engine.ticket_changed("E-0000") == T0 + 2 * H  # the held level no longer fires
    assert engine.next_due() == T0 + 2 * H
    replied = store.tickets.append(
        "E-0000",
        [ticket.comment(T0 + H, Role.AGENT)[1]],
        expected_version=ticket.version,
    )
    assert replied.version == 3
    assert engine.ticket_changed("E-0000") is None  # first reply met: nothing left
    assert engine.run(T0 + 10 * H).firings == ()
    assert role_of(store, "firings").planned("E-0000").version == 3


def test_a_stale_schedule_only_wakes_the_engine_early(store: Store) -> None:
    """A schedule older than the ticket (the host did not say it changed) makes the engine
    look at it too early, never fire wrongly: it plans from the stored ticket."""
    engine = _loaded(store, 1)
    ticket = store.tickets.get("E-0000")
    store.tickets.append("E-0000", [ticket.assign(T0 + 10 * M, "bob")[1]], expected_version=1)
    run = engine.run(T0 + 30 * M)
    assert run.firings == ()
    assert run.tickets == 1
    assert engine.next_due() == T0 + 2 * H


def test_catch_up_after_a_long_pause_fires_in_order(store: Store) -> None:
    engine = _loaded(store, 3)
    late = engine.run(T0 + 3 * 24 * H)
    assert [p.firing for p in late.firings] == [p.firing for p in _expected(3, T0 + 3 * 24 * H)]
    instants = [p.firing.at for p in late.firings]
    assert instants == sorted(instants)


def test_dry_run_changes_nothing(store: Store) -> None:
    engine = _loaded(store, 3)
    listed = engine.dry_run(T0, T0 + 5 * H)
    assert [p.firing for p in listed] == [p.firing for p in _expected(3, T0 + 5 * H)]
    assert role_of(store, "firings").list() == []
    assert role_of(store, "outbox").list() == []
    assert all(store.tickets.get(t.id).version == 1 for t in scenario_tickets(3))
    assert engine.next_due() == T0 + 30 * M
    # a window: only what is due in it
    window = engine.dry_run(T0 + H, T0 + 2 * H + M)
    assert {(p.firing.ticket_id, p.firing.level) for p in window} == {
        ("E-0000", 0),
        ("E-0001", 0),
    }


def test_rules_come_from_the_store_when_not_given(store: Store) -> None:
    for rule in RULES:
        store.rules.put(rule.name, rule, expected_version=0)
    store.tickets.add_many(scenario_tickets(2))
    engine = EscalationEngine(store, BOOK)
    assert engine.rules() == tuple(sorted(RULES, key=lambda r: r.name))
    engine.plan_all()
    fired = engine.run(T0 + 6 * H).firings
    assert len(fired) == 6
    # The same stored versions read again are the same rule objects (what the engine
    # remembers of each ticket is kept per rule set); a new version is read as new.
    first = engine.rules()
    assert engine.rules() is first
    changed = attrs.evolve(RULES[0], description="changed")
    store.rules.put(RULES[0].name, changed, expected_version=1)
    again = engine.rules()
    assert again is not first
    assert changed in again
    assert RULES[0] not in again


def test_closed_tickets_are_not_planned_by_plan_all(store: Store) -> None:
    store.tickets.add_many(scenario_tickets(2))
    ticket = store.tickets.get("E-0001")
    closed, event = ticket.set_status(T0 + 5 * M, "closed")
    store.tickets.append("E-0001", [event], expected_version=1)
    engine = EscalationEngine(store, BOOK, RULES)
    assert engine.plan_all() == 1
    assert role_of(store, "firings").planned("E-0001") is None
    assert closed.status == "closed"


def test_a_ticket_merged_while_planned_does_not_stop_the_engine(store: Store) -> None:
    # Merged away while unassigned, the ticket stays unassigned: the held level fires and its
    # tag (which a merged ticket cannot take) is left out, and the other ticket of the run
    # still fires.
    rule = EscalationRule(
        name="unassigned",
        condition=Eq("assignee", None),
        levels=[EscalationLevel(trigger=ConditionHeld(duration=H), actions=[AddTags(tags="x")])],
    )
    store.tickets.add_many([make_ticket("A", at=T0), make_ticket("B", at=T0)])
    engine = EscalationEngine(store, BOOK, [rule], batch_size=1)
    engine.plan_all()
    ticket = store.tickets.get("A")
    _, event = ticket.merge_into(T0 + 10 * M, "B")
    store.tickets.append("A", [event], expected_version=ticket.version)
    run = engine.run(T0 + 2 * H)
    assert [(p.firing.ticket_id, p.firing.at, len(p.events)) for p in run.firings] == [
        ("A", T0 + H, 0),
        ("B", T0 + H, 1),
    ]
    assert "x" in store.tickets.get("B").tags
    assert engine.next_due() is None


def test_a_level_due_at_the_creation_instant_fires(store: Store) -> None:
    # Five hours before a 4-hour target's due time is before its creation: the level is due
    # at the creation instant itself, which the engine's window (from just before it) holds.
    rule = EscalationRule(
        name="early",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=DueOffset.before("first_reply", 5 * H), actions=[AddTags(tags="x")]
            )
        ],
    )
    store.tickets.add(make_ticket("A", at=T0))
    engine = EscalationEngine(store, BOOK, [rule])
    assert engine.ticket_changed("A") == T0
    assert [p.firing.at for p in engine.run(T0).firings] == [T0]


def test_bad_arguments_are_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="book="):
        EscalationEngine(store, "book", RULES)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="batch_size=0"):
        EscalationEngine(store, BOOK, RULES, batch_size=0)
    with pytest.raises(ValidationError, match=r"rules\[0\]"):
        EscalationEngine(store, BOOK, ["rule"])  # type: ignore[list-item]
    engine = EscalationEngine(store, BOOK, RULES)
    with pytest.raises(NaiveDatetimeError, match="now"):
        engine.run(datetime(2025, 1, 6, 9))
    with pytest.raises(NaiveDatetimeError, match="end"):
        engine.dry_run(T0, datetime(2025, 1, 6, 9))
    with pytest.raises(ValidationError, match="ticket_id"):
        engine.ticket_changed("")


def test_a_trigger_on_a_target_the_book_lacks_is_refused(store: Store) -> None:
    # A typo ("resolution" for "total_resolution") would make the level never fire, silently:
    # the engine knows the book, so it names the target, the rule and level, and the book's.
    typo = EscalationRule(
        name="page-manager",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=50),
                actions=[AddTags(tags={"half"})],
            ),
            EscalationLevel(
                trigger=DueOffset.after("resolution", H),
                actions=[AddTags(tags={"late"})],
            ),
        ],
    )
    with pytest.raises(ValidationError) as caught:
        EscalationEngine(store, BOOK, [*RULES, typo])
    assert str(caught.value) == (
        f"rules[{len(RULES)}] ('page-manager') levels[1]: target 'resolution' is no target of "
        "the book, so the level would never fire; the book's targets: first_reply"
    )
    assert (caught.value.field, caught.value.value) == ("target", "resolution")
    # a held condition names no target; the book's own targets are accepted
    held = EscalationRule(
        name="held",
        condition=Always(),
        levels=[EscalationLevel(trigger=ConditionHeld(duration=H), actions=[AddTags(tags={"x"})])],
    )
    assert EscalationEngine(store, BOOK, [*RULES, held]).rules()[-1] is held


def test_a_store_without_the_roles_is_refused() -> None:
    class Bare:
        roles = frozenset({"tickets", "calendars", "policies", "rules"})
        url = "bare://"

    with pytest.raises(UnsupportedRole, match="'firings'"):
        EscalationEngine(Bare(), BOOK, RULES)  # type: ignore[arg-type]


class OddRequest:
    """A request type no handler is declared for."""


@action("test_odd_request")
@attrs.frozen(kw_only=True)
class OddAction:
    """Asks for an :class:`OddRequest`."""

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        return ActionResult(ticket=ticket, requests=(OddRequest(),))


def test_an_unhandled_request_type_is_named_and_nothing_is_written() -> None:
    store = open_store("memory://")
    odd_rule = EscalationRule(
        name="odd",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=50), actions=[OddAction()]
            )
        ],
    )
    store.tickets.add_many(scenario_tickets(1))
    engine = EscalationEngine(store, BOOK, [odd_rule])
    engine.plan_all()
    with pytest.raises(ValidationError, match="no request handler for OddRequest"):
        engine.run(T0 + 3 * H)
    assert role_of(store, "firings").list() == []
    assert OddRequest not in request_handlers()


@action("test_refuse_one_ticket")
@attrs.frozen(kw_only=True)
class RefuseOne:
    """Refuses ticket ``ticket_id`` (as an action refuses a change its history forbids) and
    tags every other one."""

    ticket_id: str

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        if ticket.id == self.ticket_id:
            raise InvalidTransition(f"ticket {ticket.id!r} cannot take this change")
        ticket, event = ticket.tag(context.at, add={"seen"}, actor=context.actor)
        return ActionResult(ticket=ticket, events=(event,))


@pytest.mark.parametrize("batch_size", [1, 100])
def test_a_ticket_whose_rule_raises_does_not_stop_the_others(batch_size: int) -> None:
    store = open_store("memory://")
    store.tickets.add_many(scenario_tickets(3))
    refusing = EscalationRule(
        name="refusing",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=50),
                actions=[RefuseOne(ticket_id="E-0001")],
            )
        ],
    )
    engine = EscalationEngine(
        store, BOOK, [refusing], batch_size=batch_size, retry_failed=timedelta(minutes=30)
    )
    engine.plan_all()
    now = T0 + 3 * H
    run = engine.run(now)
    assert sorted(p.firing.ticket_id for p in run.firings) == ["E-0000", "E-0002"]
    (failure,) = run.failed
    assert failure.ticket_id == "E-0001"
    assert failure.error == "InvalidTransition: ticket 'E-0001' cannot take this change"
    assert failure.retry_at == now + timedelta(minutes=30)
    # nothing of the failed ticket was written; the others were
    assert "seen" not in store.tickets.get("E-0001").tags
    assert {"seen"} <= store.tickets.get("E-0002").tags
    assert {f.firing.ticket_id for f in role_of(store, "firings").list()} == {"E-0000", "E-0002"}
    # its plan moved on: the host is not woken at once, and it is tried again then
    assert engine.next_due() == now + timedelta(minutes=30)
    assert engine.run(now).failed == ()
    again = engine.run(now + timedelta(minutes=30))
    assert [f.ticket_id for f in again.failed] == ["E-0001"]


def test_a_failing_ticket_the_host_changed_meanwhile_keeps_the_hosts_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # E-0001's rule raises; before the engine puts its plan off, the host changes the ticket
    # (a reply) and plans it again: the host's plan (from the newer version) stands, not
    # "now + retry_failed" written over it from that newer version
    store = open_store("memory://")
    store.tickets.add_many(scenario_tickets(2))
    refusing = EscalationRule(
        name="refusing",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=50),
                actions=[RefuseOne(ticket_id="E-0001")],
            ),
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=100),
                actions=[AddTags(tags={"late"})],
            ),
        ],
    )
    engine = EscalationEngine(store, BOOK, [refusing], retry_failed=timedelta(hours=5))
    engine.plan_all()
    now = T0 + 3 * H
    put_off = engine._put_off
    host_plan: list[datetime | None] = []

    def host_changes_first(*args: object) -> object:
        ticket = store.tickets.get("E-0001")
        ticket, event = ticket.tag(now, add={"host"}, actor="agent")
        store.tickets.append("E-0001", [event], expected_version=ticket.version - 1)
        host_plan.append(engine.ticket_changed("E-0001"))
        return put_off(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "_put_off", host_changes_first)
    (failure,) = engine.run(now).failed
    assert failure.ticket_id == "E-0001"
    planned = role_of(store, "firings").planned("E-0001")
    assert planned is not None
    assert planned.version == store.tickets.get("E-0001").version
    assert planned.next_due == host_plan[0] != now + timedelta(hours=5)


def test_a_bad_retry_delay_is_refused() -> None:
    for bad in (timedelta(0), timedelta(minutes=-1), 60):
        with pytest.raises(ValidationError, match="retry_failed="):
            EscalationEngine(open_store("memory://"), BOOK, RULES, retry_failed=bad)  # type: ignore[arg-type]


def test_request_handlers_are_declared_once() -> None:

    assert {NotificationRequest, PointsGrantRequest} <= set(request_handlers())
    with pytest.raises(ValidationError, match="already has the handler"):
        request_handler(NotificationRequest)(lambda uow, request, now: None)


def test_a_request_handler_can_be_unregistered_but_not_a_built_in_one() -> None:
    def handle(uow: object, request: OddRequest, now: datetime) -> None:
        return None

    request_handler(OddRequest)(handle)
    assert request_handlers()[OddRequest] is handle
    assert unregister_request_handler(OddRequest) is handle
    assert OddRequest not in request_handlers()
    request_handler(OddRequest)(lambda uow, request, now: None)  # the type is free again
    unregister_request_handler(OddRequest)
    with pytest.raises(ValidationError, match=r"OddRequest has no request handler; declared: .*"):
        unregister_request_handler(OddRequest)
    with pytest.raises(ValidationError, match="NotificationRequest is built in and cannot"):
        unregister_request_handler(NotificationRequest)
    with pytest.raises(ValidationError, match="PointsGrantRequest is built in and cannot"):
        unregister_request_handler(PointsGrantRequest)
    with pytest.raises(ValidationError, match="request_type=5 is not a class"):
        unregister_request_handler(5)  # type: ignore[arg-type]
    assert {NotificationRequest, PointsGrantRequest} <= set(request_handlers())


def test_a_host_change_during_a_run_is_planned_again_never_fired_twice(
    postgres_factory: object,
) -> None:
    """PostgreSQL: the host appends to a ticket while the engine's unit of work is open
    (after a notify-only firing, before the one that changes the ticket): the engine's append
    conflicts, its unit of work rolls back, and it plans again from the new history."""
    assert callable(postgres_factory)
    store: Store = postgres_factory()
    host: Store = open_store(store.url)
    try:
        rule = EscalationRule(
            name="two",
            condition=Always(),
            levels=[
                EscalationLevel(
                    trigger=PercentUsed(target="first_reply", percent=25),
                    actions=[Notify(channel="email", recipient="lead", template="quarter")],
                ),
                EscalationLevel(
                    trigger=PercentUsed(target="first_reply", percent=50),
                    actions=[SetPriority(priority="high")],
                ),
            ],
        )
        store.tickets.add_many(scenario_tickets(1))
        paused = threading.Event()
        resume = threading.Event()

        def hook(planned: PlannedFiring) -> None:
            if planned.firing.level == 0 and not paused.is_set():
                paused.set()
                assert resume.wait(30)

        engine = EscalationEngine(store, BOOK, [rule], on_applied=hook)
        engine.plan_all()
        outcome: list[object] = []
        worker = threading.Thread(target=lambda: outcome.append(engine.run(T0 + 3 * H)))
        worker.start()
        assert paused.wait(30)
        ticket = host.tickets.get("E-0000")
        host.tickets.append(
            "E-0000", [ticket.set_priority(T0 + 90 * M, "low")[1]], expected_version=1
        )
        resume.set()
        worker.join(60)
        (run,) = outcome
        assert run.retries >= 1  # type: ignore[attr-defined]
        assert [p.firing.level for p in run.firings] == [0, 1]  # type: ignore[attr-defined]
        stored = store.tickets.get("E-0000")
        assert [type(e).__name__ for e in stored.events] == [
            "TicketCreated",
            "PriorityChanged",
            "PriorityChanged",
        ]
        assert stored.priority == "high"
        assert len(role_of(store, "firings").list()) == 2
        assert len(role_of(store, "outbox").list()) == 1
    finally:
        host.close()


def test_a_plan_of_an_older_version_does_not_replace_a_newer_one(
    postgres_factory: object,
) -> None:
    """PostgreSQL: while an engine's unit of work is open (after a notify-only firing, so it
    appends nothing and meets no conflict), the host tags the ticket and another engine plans
    it from that new version: the new tag makes a level due that the running engine, which
    read the older version, does not see. Its commit must not put back the older plan (no
    wake-up: the level would never fire until the ticket changed again)."""
    assert callable(postgres_factory)
    store: Store = postgres_factory()
    host: Store = open_store(store.url)
    try:
        rules = [
            EscalationRule(
                name="quarter",
                condition=Always(),
                levels=[
                    EscalationLevel(
                        trigger=PercentUsed(target="first_reply", percent=25),
                        actions=[Notify(channel="email", recipient="lead", template="quarter")],
                    )
                ],
            ),
            EscalationRule(
                name="vip",
                condition=HasTags("vip"),
                levels=[
                    EscalationLevel(
                        trigger=ConditionHeld(duration=10 * M),
                        actions=[Notify(channel="email", recipient="lead", template="vip")],
                    )
                ],
            ),
        ]
        store.tickets.add_many(scenario_tickets(1))
        paused = threading.Event()
        resume = threading.Event()

        def hook(planned: PlannedFiring) -> None:
            if not paused.is_set():
                paused.set()
                assert resume.wait(30)

        engine = EscalationEngine(store, BOOK, rules, on_applied=hook)
        engine.plan_all()
        outcome: list[object] = []
        worker = threading.Thread(target=lambda: outcome.append(engine.run(T0 + 75 * M)))
        worker.start()
        assert paused.wait(30)
        ticket = host.tickets.get("E-0000")
        host.tickets.append("E-0000", [ticket.tag(T0 + 70 * M, add={"vip"})[1]], expected_version=1)
        assert EscalationEngine(host, BOOK, rules).ticket_changed("E-0000") == T0 + H
        resume.set()
        worker.join(60)
        (run,) = outcome
        assert [p.firing.rule for p in run.firings] == ["quarter"]  # type: ignore[attr-defined]
        # The newer plan stays: it still names the quarter level (not recorded when it was
        # made), so the engine wakes at once, and that run finds the vip level.
        assert role_of(store, "firings").planned("E-0000").version == 2
        assert engine.next_due() == T0 + H
        assert [p.firing.rule for p in engine.run(T0 + 2 * H).firings] == ["vip"]
    finally:
        host.close()


def test_instants_come_back_in_utc_and_the_zone_of_now_does_not_matter(store: Store) -> None:
    engine = _loaded(store, 1)
    tokyo = timezone(timedelta(hours=9))
    run = engine.run((T0 + 6 * H).astimezone(tokyo))
    assert [p.firing.at for p in run.firings] == [T0 + 30 * M, T0 + 2 * H, T0 + 4 * H]
    assert make_ticket("X").id == "X"
