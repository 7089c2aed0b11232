"""The GrantPoints escalation action: loyalty points as service recovery, granted by the
engine in the unit of work that records the firing (memory, SQLite and PostgreSQL)."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Always
from csmcore.errors import InternalError, UnsupportedRole, ValidationError
from csmcore.escalation import (
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    GrantPoints,
    PercentUsed,
    PlannedFiring,
    PointsGrantRequest,
    action_class,
)
from csmcore.loyalty import EntryKind, RecoveryPolicy, recovery_key
from csmcore.serialization import from_document, to_document
from csmcore.services import EscalationEngine, Ledger, compensate
from csmcore.sla import SlaBook, SlaPolicy, SlaTarget
from csmcore.storage import Store, open_store, role_of
from csmcore.storage.memory import MemoryStore
from csmcore.tickets import Channel, Priority, Role, Ticket

T0 = datetime(2025, 3, 3, 9, tzinfo=timezone.utc)  # a Monday
H = timedelta(hours=1)
M = timedelta(minutes=1)

BOOK = SlaBook(
    calendar=BusinessCalendar.always(timezone="UTC"),
    policies=[
        SlaPolicy(
            name="std",
            position=1,
            default=True,
            targets=[SlaTarget(metric="first_reply", within=4 * H)],
        )
    ],
)
"""First reply within four hours, around the clock."""


def _rule(policy: RecoveryPolicy, **fields: Any) -> EscalationRule:
    trigger = fields.pop("trigger", PercentUsed(target="first_reply", percent=100))
    return EscalationRule(
        name="recovery",
        condition=Always(),
        levels=[EscalationLevel(trigger=trigger, actions=[GrantPoints(policy=policy, **fields)])],
    )


def _ticket(ticket_id: str, at: datetime, requester: str = "ann") -> Ticket:
    ticket, _ = Ticket.create(
        at=at,
        ticket_id=ticket_id,
        created_by=Role.REQUESTER,
        channel=Channel.EMAIL,
        priority=Priority.NORMAL,
        requester=requester,
    )
    return ticket


def _reply(store: Store, ticket_id: str, at: datetime) -> None:
    ticket = store.tickets.get(ticket_id)
    _, event = ticket.comment(at, Role.AGENT, public=True, author="agent")
    store.tickets.append(ticket_id, [event], expected_version=ticket.version)


def _grants(store: Store, member: str = "ann") -> list[tuple[str, int]]:
    return [(e.key, e.points) for e in Ledger(store).entries(member)]


def _handle(store: Store) -> Store:
    """Another handle on ``store``'s data (the same object for memory://)."""
    return store if store.url == "memory://" else open_store(store.url)


POLICY = RecoveryPolicy(points=100)


# --- scenarios ---------------------------------------------------------------------------------


def test_a_breach_is_compensated_once_at_its_instant(store: Store) -> None:
    store.tickets.add(_ticket("T-1", T0))
    engine = EscalationEngine(store, BOOK, [_rule(POLICY)])
    assert engine.ticket_changed("T-1") == T0 + 4 * H
    assert engine.run(T0 + 3 * H).firings == ()
    assert _grants(store) == []
    (fired,) = engine.run(T0 + 5 * H).firings
    (request,) = fired.requests
    assert isinstance(request, PointsGrantRequest)
    assert request.keys == (recovery_key("T-1", "first_reply", 1),)
    (entry,) = Ledger(store).entries("ann")
    assert entry.kind is EntryKind.EARN
    assert (entry.key, entry.points) == ("sla-recovery:T-1:first_reply:1", 100)
    assert entry.at == T0 + 4 * H  # the breach (the firing instant), not the run's
    assert (entry.reason, entry.reference) == ("sla_breach", "T-1:first_reply:1")
    assert store.tickets.get("T-1").version == 1  # the ticket itself is unchanged
    # running again, later, grants nothing more
    assert engine.run(T0 + 9 * H).firings == ()
    assert EscalationEngine(store, BOOK, [_rule(POLICY)]).run(T0 + 30 * H).firings == ()
    assert _grants(store) == [("sla-recovery:T-1:first_reply:1", 100)]
    assert engine.next_due() is None
    assert Ledger(store).verify("ann").ok


def test_a_reply_in_time_grants_nothing(store: Store) -> None:
    store.tickets.add(_ticket("T-1", T0))
    engine = EscalationEngine(store, BOOK, [_rule(POLICY)])
    engine.ticket_changed("T-1")
    _reply(store, "T-1", T0 + 3 * H)
    assert engine.ticket_changed("T-1") is None
    assert engine.run(T0 + 9 * H).firings == ()
    assert Ledger(store).members() == []


def test_a_level_before_the_breach_grants_nothing(store: Store) -> None:
    store.tickets.add(_ticket("T-1", T0))
    rule = _rule(POLICY, trigger=PercentUsed(target="first_reply", percent=75))
    engine = EscalationEngine(store, BOOK, [rule])
    engine.plan_all()
    (fired,) = engine.run(T0 + 9 * H).firings  # fired at 3 hours: not breached yet
    assert fired.requests == ()
    assert Ledger(store).members() == []


def test_a_level_after_the_breach_grants_at_its_instant(store: Store) -> None:
    store.tickets.add(_ticket("T-1", T0))
    rule = _rule(POLICY, trigger=DueOffset.after("first_reply", 30 * M))
    engine = EscalationEngine(store, BOOK, [rule])
    engine.plan_all()
    engine.run(T0 + 9 * H)
    (entry,) = Ledger(store).entries("ann")
    assert entry.at == T0 + 4 * H + 30 * M


def test_a_level_without_a_target_grants_every_cycle_breached_by_then(store: Store) -> None:
    store.tickets.add(_ticket("T-1", T0))
    rule = _rule(POLICY, trigger=ConditionHeld(duration=6 * H))  # the rule's condition: always
    engine = EscalationEngine(store, BOOK, [rule])
    engine.plan_all()
    (fired,) = engine.run(T0 + 9 * H).firings
    assert (fired.firing.target, fired.firing.at) == (None, T0 + 6 * H)
    (entry,) = Ledger(store).entries("ann")
    assert (entry.key, entry.at) == ("sla-recovery:T-1:first_reply:1", T0 + 6 * H)


def test_the_cap_per_period_is_respected(store: Store) -> None:
    policy = RecoveryPolicy(points=100, cap=250, period="month")
    tickets = [_ticket(f"T-{n}", T0 + n * M) for n in range(4)]
    tickets.append(_ticket("T-bob", T0, requester="bob"))
    tickets.append(_ticket("T-april", datetime(2025, 4, 1, 8, tzinfo=timezone.utc)))
    store.tickets.add_many(tickets)
    engine = EscalationEngine(store, BOOK, [_rule(policy)])
    engine.plan_all()
    engine.run(T0 + 9 * H)
    march = Ledger(store).entries("ann")
    assert [(e.reference, e.points) for e in march] == [
        ("T-0:first_reply:1", 100),
        ("T-1:first_reply:1", 100),
        ("T-2:first_reply:1", 50),  # the cap cut it; T-3 gets nothing this month
    ]
    assert _grants(store, "bob") == [("sla-recovery:T-bob:first_reply:1", 100)]  # per member
    engine.run(datetime(2025, 4, 1, 13, tzinfo=timezone.utc))  # a new period
    assert Ledger(store).entries("ann")[-1].reference == "T-april:first_reply:1"
    assert Ledger(store).balance("ann").active == 350
    engine.run(datetime(2025, 4, 30, tzinfo=timezone.utc))
    assert Ledger(store).balance("ann").active == 350  # nothing twice


def test_a_late_grant_is_dated_and_capped_in_the_period_it_is_posted(store: Store) -> None:
    # Two breaches on 31 March (13:00, 15:00) under a cap of 100 a month. On time, the second
    # is capped to nothing; if the engine catches up only after Ann's purchase on 1 April was
    # posted, the ledger cannot go back to March: the second grant is posted on 1 April and
    # counts against April's cap. By posting date, no month ever holds more than the cap.
    policy = RecoveryPolicy(points=100, cap=100, period="month")
    day = datetime(2025, 3, 31, 9, tzinfo=timezone.utc)
    store.tickets.add_many([_ticket("T-0", day), _ticket("T-1", day + 2 * H)])
    engine = EscalationEngine(store, BOOK, [_rule(policy)])
    engine.plan_all()
    engine.run(day + 5 * H)  # T-0's breach, on time
    purchase = day + 26 * H
    Ledger(store).earn("ann", 5, at=purchase, key="purchase")
    engine.run(day + 30 * H)  # catches up with T-1's breach of 31 March
    entries = Ledger(store).entries("ann")
    assert [(e.reference, e.points, e.at) for e in entries] == [
        ("T-0:first_reply:1", 100, day + 4 * H),
        (None, 5, purchase),
        ("T-1:first_reply:1", 100, purchase),
    ]
    by_month: dict[int, int] = {}
    for entry in entries:
        if entry.reason == policy.reason:
            by_month[entry.at.month] = by_month.get(entry.at.month, 0) + entry.points
    assert by_month == {3: 100, 4: 100}


def test_the_requester_at_the_breach_is_granted_however_late_the_engine_runs(
    store: Store,
) -> None:
    # ann asked at 09:00 and the reply was due at 13:00; bob became the requester at 14:00.
    # An engine running on time grants ann at 13:00; one running only after the change must
    # grant ann too (the customer kept waiting then), not bob.
    ticket = _ticket("T-1", T0)
    ticket, _ = ticket.change_requester(T0 + 5 * H, "bob")
    store.tickets.add(ticket)
    engine = EscalationEngine(store, BOOK, [_rule(POLICY)])
    engine.plan_all()
    (fired,) = engine.run(T0 + 6 * H).firings
    (request,) = fired.requests
    assert isinstance(request, PointsGrantRequest)
    assert request.member_id == "ann"
    assert _grants(store, "ann") == [("sla-recovery:T-1:first_reply:1", 100)]
    assert _grants(store, "bob") == []


def test_compensate_after_a_change_of_requester_grants_who_waited_once_with_the_engine(
    store: Store,
) -> None:
    # as above: ann waited through the 13:00 breach, bob is the requester from 14:00.
    # compensate, called after the change, grants ann (not bob), and the engine's GrantPoints
    # then finds ann's key: the breach is granted once between them, to the same customer.
    ticket = _ticket("T-1", T0)
    ticket, _ = ticket.change_requester(T0 + 5 * H, "bob")
    store.tickets.add(ticket)
    at = T0 + 6 * H
    written = compensate(Ledger(store), POLICY, ticket, BOOK.evaluate(ticket, at), at)
    assert [(e.member_id, e.key) for e in written] == [("ann", "sla-recovery:T-1:first_reply:1")]
    engine = EscalationEngine(store, BOOK, [_rule(POLICY)])
    engine.plan_all()
    assert len(engine.run(at).firings) == 1  # fires; ann's points were already granted
    assert _grants(store, "ann") == [("sla-recovery:T-1:first_reply:1", 100)]
    assert _grants(store, "bob") == []
    assert compensate(Ledger(store), POLICY, ticket, BOOK.evaluate(ticket, at), at) == []


def test_points_per_target_and_a_fixed_member(store: Store) -> None:
    policy = RecoveryPolicy(points=100, per_target={"first_reply": 30}, reason="goodwill")
    store.tickets.add(_ticket("T-1", T0))
    engine = EscalationEngine(store, BOOK, [_rule(policy, member="vip-fund")])
    engine.plan_all()
    engine.run(T0 + 9 * H)
    assert Ledger(store).members() == ["vip-fund"]
    (entry,) = Ledger(store).entries("vip-fund")
    assert (entry.points, entry.reason) == (30, "goodwill")


def test_compensate_and_the_engine_grant_a_breach_once_between_them(store: Store) -> None:
    store.tickets.add_many([_ticket("T-1", T0), _ticket("T-2", T0)])
    ledger = Ledger(store)
    ticket = store.tickets.get("T-1")
    at = T0 + 5 * H
    assert len(compensate(ledger, POLICY, ticket, BOOK.evaluate(ticket, at), at)) == 1
    engine = EscalationEngine(store, BOOK, [_rule(POLICY)])
    engine.plan_all()
    assert len(engine.run(at).firings) == 2  # both fire; T-1's points were already granted
    assert sorted(_grants(store)) == [
        ("sla-recovery:T-1:first_reply:1", 100),
        ("sla-recovery:T-2:first_reply:1", 100),
    ]
    other = store.tickets.get("T-2")
    assert compensate(ledger, POLICY, other, BOOK.evaluate(other, at), at) == []


def test_two_engines_at_once_grant_once(store: Store) -> None:
    tickets = [_ticket(f"T-{n}", T0 + n * M, requester=f"m{n % 3}") for n in range(9)]
    store.tickets.add_many(tickets)
    EscalationEngine(store, BOOK, [_rule(POLICY)]).plan_all()
    handles = [_handle(store) for _ in range(2)]
    barrier = threading.Barrier(2, timeout=30)
    fired: list[int] = [0, 0]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            engine = EscalationEngine(handles[index], BOOK, [_rule(POLICY)], batch_size=2)
            barrier.wait()
            fired[index] = len(engine.run(T0 + 9 * H).firings)
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        for handle in handles:
            if handle is not store:
                handle.close()
    assert errors == []
    assert sum(fired) == 9  # each firing applied by one engine
    ledger = Ledger(store)
    for member in ("m0", "m1", "m2"):
        keys = [e.key for e in ledger.entries(member)]
        assert len(keys) == len(set(keys)) == 3
        assert ledger.balance(member).active == 300


class _Boom(Exception):
    pass


def test_a_failure_before_the_commit_grants_nothing_and_a_new_run_grants_once(
    store: Store,
) -> None:
    """The points are written in the firing's unit of work: a crash after the writes and
    before the commit (here an exception in the hook that runs right then) leaves nothing."""
    store.tickets.add(_ticket("T-1", T0))

    def crash(_: PlannedFiring) -> None:
        raise _Boom

    failing = EscalationEngine(store, BOOK, [_rule(POLICY)], on_applied=crash)
    failing.plan_all()
    with pytest.raises(InternalError) as caught:  # the public boundary wraps the hook's error
        failing.run(T0 + 5 * H)
    assert isinstance(caught.value.__cause__, _Boom)
    assert Ledger(store).members() == []
    assert role_of(store, "firings").list() == []
    engine = EscalationEngine(store, BOOK, [_rule(POLICY)])
    assert len(engine.run(T0 + 5 * H).firings) == 1
    assert engine.run(T0 + 6 * H).firings == ()
    assert _grants(store) == [("sla-recovery:T-1:first_reply:1", 100)]


class _NoLedgerInUnits(MemoryStore):
    """A store offering the ledger role outside units of work only (as before it existed)."""

    @contextmanager
    def unit_of_work(self) -> Iterator[Any]:
        with super().unit_of_work() as uow:
            yield _Without(uow)


class _Without:
    roles = MemoryStore.roles - {"ledger"}

    def __init__(self, uow: Any) -> None:
        self._uow = uow

    def __getattr__(self, name: str) -> Any:
        if name == "ledger":
            raise AttributeError(name)
        return getattr(self._uow, name)


def test_a_store_without_the_ledger_in_units_of_work_is_refused_and_nothing_recorded() -> None:
    store = _NoLedgerInUnits()
    store.tickets.add(_ticket("T-1", T0))
    engine = EscalationEngine(store, BOOK, [_rule(POLICY)])
    engine.plan_all()
    with pytest.raises(UnsupportedRole, match=r"GrantPoints .*'ledger' role inside units of work"):
        engine.run(T0 + 5 * H)
    assert role_of(store, "firings").list() == []  # the firing rolled back: run it again later
    assert engine.next_due() == T0 + 4 * H
    assert Ledger(store).members() == []


# --- values ------------------------------------------------------------------------------------


def test_the_action_is_registered_and_round_trips() -> None:
    assert action_class("grant_points") is GrantPoints
    policy = RecoveryPolicy(points=50, per_target={"first_reply": 80}, cap=200, period="quarter")
    rule = _rule(policy, member="fund")
    document = to_document(rule)
    action = document["data"]["levels"][0]["actions"][0]
    assert action["action"] == "grant_points"
    assert action["member"] == "fund"
    assert from_document(document, EscalationRule) == rule
    assert to_document(GrantPoints(policy=policy))["type"] == "escalation.action.grant_points"


def test_the_request_round_trips(store: Store) -> None:
    store.tickets.add(_ticket("T-1", T0))
    ticket = store.tickets.get("T-1")
    rule = _rule(POLICY)
    from csmcore.escalation import run_ticket

    run = run_ticket(ticket, BOOK, [rule], T0, T0 + 5 * H)
    (request,) = run.firings[0].requests
    document = to_document(request)
    assert document["type"] == "escalation.points_grant_request"
    assert from_document(document, PointsGrantRequest) == request


@pytest.mark.parametrize(
    ("build", "names"),
    [
        (lambda: GrantPoints(policy=RecoveryPolicy(points=-5)), "points=-5"),
        (lambda: GrantPoints(policy=cast(Any, 100)), "policy=100"),
        (lambda: GrantPoints(policy=POLICY, member="$boss"), "'$requester'"),
        (lambda: GrantPoints(policy=POLICY, member=""), "member"),
        (lambda: GrantPoints(policy=POLICY, member=" ann"), "member"),
        (lambda: GrantPoints(policy=POLICY, member="m" * 256), "at most 255"),
        (lambda: RecoveryPolicy(points=5, per_target={"": 3}), "per_target"),
        (lambda: RecoveryPolicy(points=5, per_target={"first_reply": -3}), "-3"),
        (lambda: RecoveryPolicy(points=5, cap=-1), "cap=-1"),
    ],
)
def test_bad_input_is_refused_naming_the_value(build: Any, names: str) -> None:
    with pytest.raises(ValidationError) as caught:
        build()
    assert names in str(caught.value)


def test_grant_points_refuses_what_is_not_a_request(store: Store) -> None:
    from csmcore.services import grant_points

    with store.unit_of_work() as uow, pytest.raises(ValidationError, match="PointsGrantRequest"):
        grant_points(uow, cast(Any, "100 points"))


def test_a_stored_action_with_bad_fields_is_refused_with_its_path() -> None:
    document = to_document(_rule(POLICY))
    action = document["data"]["levels"][0]["actions"][0]
    action["policy"]["points"] = -1
    with pytest.raises(ValidationError, match="points"):
        from_document(document, EscalationRule)
    action["policy"]["points"] = 1
    action["colour"] = "red"
    with pytest.raises(ValidationError, match="colour"):
        from_document(document, EscalationRule)


# --- a property --------------------------------------------------------------------------------

_TICKETS = st.lists(
    st.tuples(
        st.sampled_from(["ann", "bob"]),  # requester
        st.integers(0, 8 * 24 * 60),  # created, minutes after T0
        st.none() | st.integers(1, 8 * 60),  # replied, minutes after its creation
        st.none() | st.integers(1, 8 * 60),  # the other member asks from then (minutes after)
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tickets=_TICKETS, cap=st.sampled_from([None, 150, 250]))
def test_running_at_every_step_or_once_at_the_end_grants_the_same_points(
    tickets: list[tuple[str, int, int | None, int | None]], cap: int | None
) -> None:
    """Within one month: the engine run before every change of the timeline, or once at its
    end, grants each member the same points (with a cap, which breaches it cuts may differ
    by the order the engine meets them in; the total per member may not). A ticket whose
    requester changes grants the one who was the requester at the breach."""
    _check_same_points(lambda: open_store("memory://"), tickets, cap)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tickets=_TICKETS, cap=st.sampled_from([None, 150]))
def test_on_sqlite_running_at_every_step_or_once_grants_the_same_points(
    tickets: list[tuple[str, int, int | None, int | None]], cap: int | None
) -> None:
    """The same on SQLite files (fewer examples: each builds two databases)."""
    with tempfile.TemporaryDirectory() as folder:
        count = iter(range(2))
        _check_same_points(
            lambda: open_store(f"sqlite:///{Path(folder) / f'{next(count)}.db'}"), tickets, cap
        )


def _check_same_points(
    make: Callable[[], Store],
    tickets: list[tuple[str, int, int | None, int | None]],
    cap: int | None,
) -> None:
    policy = RecoveryPolicy(points=100, cap=cap)
    rules = [_rule(policy)]
    changes: list[tuple[datetime, int, str, str]] = []  # (at, order, kind, ticket id)
    for n, (_, created, replied, moved) in enumerate(tickets):
        changes.append((T0 + created * M, 0, "create", f"T-{n}"))
        if replied is not None:
            changes.append((T0 + (created + replied) * M, 1, "reply", f"T-{n}"))
        if moved is not None:
            changes.append((T0 + (created + moved) * M, 2, "move", f"T-{n}"))
    changes.sort()
    end = T0 + 20 * 24 * H  # still March
    requester = {f"T-{n}": who for n, (who, _, _, _) in enumerate(tickets)}

    def apply(store: Store, at: datetime, kind: str, ticket_id: str) -> None:
        if kind == "create":
            store.tickets.add(_ticket(ticket_id, at, requester[ticket_id]))
        elif kind == "reply":
            _reply(store, ticket_id, at)
        else:  # the other member asks from now on
            ticket = store.tickets.get(ticket_id)
            other = "bob" if ticket.requester == "ann" else "ann"
            _, event = ticket.change_requester(at, other)
            store.tickets.append(ticket_id, [event], expected_version=ticket.version)

    stepped, once = make(), make()
    try:
        engine = EscalationEngine(stepped, BOOK, rules)
        for at, _, kind, ticket_id in changes:
            engine.run(at - timedelta(microseconds=1))  # what was due before the change
            apply(stepped, at, kind, ticket_id)
            engine.ticket_changed(ticket_id)
        engine.run(end)

        for at, _, kind, ticket_id in changes:
            apply(once, at, kind, ticket_id)
        late = EscalationEngine(once, BOOK, rules)
        late.plan_all()
        late.run(end)

        for member in ("ann", "bob"):
            a, b = Ledger(stepped).balance(member, end), Ledger(once).balance(member, end)
            assert a.active == b.active
            if cap is None:
                assert sorted(_grants(stepped, member)) == sorted(_grants(once, member))
            else:
                assert a.active <= cap
        if cap is None:  # every breach, and only breaches, compensated
            owed = {
                f"T-{n}"
                for n, (_, _, replied, _) in enumerate(tickets)
                if replied is None or replied > 240
            }
            granted = {
                (e.reference or "").split(":")[0]
                for m in ("ann", "bob")
                for e in Ledger(once).entries(m)
            }
            assert granted == owed
    finally:
        stepped.close()
        once.close()
