"""Escalation conditions on the requester's loyalty member (issue 13: "conditions read ... the
requester's loyalty member (tier) where a ledger is configured"): each instant reads the member
as they stood then, the walk visits the instants the member changes, resumed walks of another
snapshot are not reused, and the engine reads the member from the store's ledger.

Calendar: Monday-Friday 09:00-17:00 UTC; 2025-01-06 is a Monday. A 2 h business-time first
reply target; a ticket created Monday 10:00 is 50 % used at 11:00."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from csmcore.conditions import Always, Field
from csmcore.errors import InvalidType, ValidationError
from csmcore.escalation import (
    AddTags,
    ConditionHeld,
    EscalationLevel,
    EscalationRule,
    Firing,
    GrantPoints,
    PercentUsed,
    dry_run,
    due_firings,
    next_due,
    rules_read_member,
    run_ticket,
)
from csmcore.loyalty import (
    LedgerEntry,
    LedgerState,
    MemberTimeline,
    Program,
    RecoveryPolicy,
    SpendRule,
    Tier,
    TierPolicy,
)
from csmcore.services import UNTIL_ACTIVATED, EscalationEngine, Ledger
from csmcore.sla import SlaTarget
from csmcore.storage import memory, open_store
from csmcore.tickets import Ticket, TicketEventBase, TicketState, _declare, event_type
from tests.escalation.support import H, M, at, book, new, shown

BOOK = book(SlaTarget(metric="first_reply", within=2 * H))
ANN = "ann@example.com"
VIP = EscalationRule(
    name="vip",
    condition=Field("member.points") >= 500,
    levels=[
        EscalationLevel(
            trigger=PercentUsed(target="first_reply", percent=50),
            actions=[AddTags(tags={"vip-late"})],
        )
    ],
)
HELD = EscalationRule(
    name="gold-waiting",
    condition=Field("member.tier") == "gold",
    levels=[
        EscalationLevel(trigger=ConditionHeld(duration=30 * M), actions=[AddTags(tags={"gold"})])
    ],
)
TIERS = TierPolicy(tiers=[Tier(name="silver", threshold=100), Tier(name="gold", threshold=500)])
PROGRAM = Program(name="p", rules=[SpendRule(name="base", points=1)], tiers=TIERS)


def member(*earns: tuple[datetime, int, datetime | None]) -> MemberTimeline:
    """ann's timeline after earning (instant, points, expiry) in turn."""
    state = LedgerState(ANN)
    for i, (when, points, expires) in enumerate(earns):
        state.apply(state.plan_earn(points, at=when, key=f"e{i}", expires_at=expires))
    return MemberTimeline(ANN, state.entries, TIERS)


def test_a_rule_on_member_points_fires_when_both_hold() -> None:
    ticket = new(at(6, 10))
    window = (at(6, 9), at(7, 9))
    # rich before the 50 % instant: fires at it
    rich = member((at(6, 10, 30), 600, None))
    assert shown(due_firings(ticket, BOOK, [VIP], *window, member=rich)) == [
        (0, "first_reply", 1, at(6, 11))
    ]
    # rich only from 11:30: the level was due already, so it fires as the member changes
    later = member((at(6, 11, 30), 600, None))
    assert shown(due_firings(ticket, BOOK, [VIP], *window, member=later)) == [
        (0, "first_reply", 1, at(6, 11, 30))
    ]
    assert next_due(ticket, BOOK, [VIP], at(6, 9), member=later) == at(6, 11, 30)
    # the points expired at 10:45: not rich at 11:00, and never again
    expired = member((at(6, 9, 30), 600, at(6, 10, 45)))
    assert due_firings(ticket, BOOK, [VIP], *window, member=expired) == []
    # no member given: member fields read None, nothing fires (and nothing raises)
    assert due_firings(ticket, BOOK, [VIP], *window) == []


def test_a_held_condition_on_the_tier_starts_when_the_tier_is_reached() -> None:
    ticket = new(at(6, 10))
    # 300 points at 10:00 (silver), 300 more at 10:20 (gold from then): held 30 min -> 10:50
    gold = member((at(6, 10), 300, None), (at(6, 10, 20), 300, None))
    assert gold.at(at(6, 10, 19)).tier == "silver"
    assert gold.at(at(6, 10, 20)).tier == "gold"
    firings = due_firings(ticket, BOOK, [HELD], at(6, 9), at(7, 9), member=gold)
    assert [(f.rule, f.at) for f in firings] == [("gold-waiting", at(6, 10, 50))]


def test_a_member_who_is_not_the_requester_is_refused() -> None:
    ticket = new(at(6, 10))
    other = MemberTimeline("bob", [], TIERS)
    with pytest.raises(ValidationError, match="not ticket 'T-1''s requester"):
        run_ticket(ticket, BOOK, [VIP], at(6, 9), at(7, 9), member=other)
    with pytest.raises(ValidationError, match=r"member=.*MemberTimeline"):
        run_ticket(ticket, BOOK, [VIP], at(6, 9), at(7, 9), member="ann")  # type: ignore[arg-type]


def test_only_rules_reading_members_need_one() -> None:
    assert rules_read_member([VIP])
    assert rules_read_member([HELD])
    plain = EscalationRule(
        name="plain",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=ConditionHeld(duration=H, condition=Field("member.tier_rank") > 1),
                actions=[AddTags(tags={"x"})],
            )
        ],
    )
    assert rules_read_member([plain])  # a held level's own condition counts too
    assert not rules_read_member([EscalationRule(name="n", condition=Always(), levels=VIP.levels)])


_EARNS = st.lists(
    st.tuples(st.integers(0, 600), st.integers(50, 400), st.none() | st.integers(10, 300)),
    max_size=4,
)


def _entries(
    earns: list[tuple[int, int, int | None]], member_id: str = ANN
) -> tuple[LedgerEntry, ...]:
    state = LedgerState(member_id)
    when = at(6, 9)
    for i, (minutes, points, expires) in enumerate(earns):
        when = when + timedelta(minutes=minutes)
        expiry = None if expires is None else when + timedelta(minutes=expires)
        state.apply(state.plan_earn(points, at=when, key=f"e{i}", expires_at=expiry))
    return tuple(state.entries)


@settings(max_examples=60, deadline=None)
@given(_EARNS, st.lists(st.integers(10, 240), min_size=1, max_size=6))
def test_stepwise_resumed_runs_equal_one_late_run(
    earns: list[tuple[int, int, int | None]], steps: list[int]
) -> None:
    # the engine's shape: a run every few minutes going on from the last one's state, against
    # one run at the end; both with the member's whole ledger (a snapshot taken up front)
    rules = [VIP, HELD]
    timeline = MemberTimeline(ANN, _entries(earns), TIERS)
    start = at(6, 9)
    late = run_ticket(new(at(6, 10)), BOOK, rules, start, at(7, 17), member=timeline)
    ticket, state, when, fired = new(at(6, 10)), None, start, []
    for minutes in [*steps, 48 * 60]:
        end = min(when + timedelta(minutes=minutes), at(7, 17))
        run = run_ticket(ticket, BOOK, rules, start, end, plan=True, resume=state, member=timeline)
        ticket, state = run.ticket, run.state
        fired += [p.firing for p in run.firings]
        when = end
    assert fired == [p.firing for p in late.firings]
    assert ticket == late.ticket


def test_a_state_of_another_member_snapshot_is_not_reused() -> None:
    ticket = new(at(6, 10))
    poor = MemberTimeline(ANN, [], TIERS)
    first = run_ticket(ticket, BOOK, [VIP], at(6, 9), at(6, 12), plan=True, member=poor)
    assert first.firings == ()
    assert first.next_due is None
    # 600 points earned at 10:30 (written after that run): the state of the run that read no
    # entries is ignored, the walk starts again and fires at the 50 % instant
    rich = member((at(6, 10, 30), 600, None))
    again = run_ticket(
        ticket, BOOK, [VIP], at(6, 9), at(6, 12), plan=True, resume=first.state, member=rich
    )
    assert [p.firing.at for p in again.firings] == [at(6, 11)]


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:"])
def test_the_engine_reads_the_requester_from_the_ledger(url: str) -> None:
    store = open_store(url)
    store.tickets.add(new(at(6, 10)))
    engine = EscalationEngine(store, BOOK, [VIP], loyalty=PROGRAM)
    assert engine.ticket_changed("T-1") is None  # not a member with points: nothing planned
    Ledger(store).earn(ANN, 600, at=at(6, 10, 30), key="order-1")
    assert engine.member_changed(ANN) == 1
    assert engine.next_due() == at(6, 11)
    run = engine.run(at(6, 12))
    assert [(p.firing.rule, p.firing.at) for p in run.firings] == [("vip", at(6, 11))]
    assert "vip-late" in store.tickets.get("T-1").tags
    # without loyalty the same rule reads None: nothing fires
    other = open_store("memory://")
    other.tickets.add(new(at(6, 10)))
    Ledger(other).earn(ANN, 600, at=at(6, 10, 30), key="order-1")
    plain = EscalationEngine(other, BOOK, [VIP])
    plain.plan_all()
    assert plain.run(at(6, 12)).firings == ()
    assert plain.member_changed(ANN) == 0


def test_the_engine_refuses_a_bad_program_and_a_store_without_a_ledger() -> None:
    store = open_store("memory://")
    with pytest.raises(ValidationError, match="loyalty='gold' is a str"):
        EscalationEngine(store, BOOK, [VIP], loyalty="gold")  # type: ignore[arg-type]


def test_before_a_change_of_requester_the_new_requester_is_not_read() -> None:
    # ann asked until 12:00, then bob became the requester; bob is rich since 09:00. At the
    # 50 % instant (11:00) the requester was ann: the rule does not hold then. It holds from
    # 12:00, when bob becomes the requester (the level was due already: it fires then).
    ticket, _ = new(at(6, 10)).change_requester(at(6, 12), "bob")
    state = LedgerState("bob")
    state.apply(state.plan_earn(600, at=at(6, 9), key="o1"))
    bob = MemberTimeline("bob", state.entries, TIERS)
    firings = due_firings(ticket, BOOK, [VIP], at(6, 9), at(7, 9), member=bob)
    assert [(f.rule, f.at) for f in firings] == [("vip", at(6, 12))]
    assert next_due(ticket, BOOK, [VIP], at(6, 9), member=bob) == at(6, 12)


def test_the_engine_does_not_read_a_later_requester_at_earlier_instants() -> None:
    store = open_store("memory://")
    ticket, _ = new(at(6, 10)).change_requester(at(6, 12), "bob")
    store.tickets.add(ticket)
    Ledger(store).earn("bob", 600, at=at(6, 9), key="order-1")
    engine = EscalationEngine(store, BOOK, [VIP], loyalty=PROGRAM)
    assert engine.ticket_changed("T-1") == at(6, 12)
    run = engine.run(at(6, 12, 30))
    assert [(p.firing.rule, p.firing.at) for p in run.firings] == [("vip", at(6, 12))]


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:"])
def test_points_the_engine_grants_are_read_by_the_member_rules(url: str) -> None:
    # T-1 breaches at 12:00 (2 business hours from 10:00): GrantPoints gives ann 600 points
    # then. "vip" (points >= 500, 50 % used) was due at 11:00 on both of ann's tickets: it
    # fires at 12:00 on T-1 in the same run, and T-2 (created at 11:30, 50 % at 12:30) is
    # planned again with ann as the grant left her.
    store = open_store(url)
    store.tickets.add(new(at(6, 10)))
    store.tickets.add(new(at(6, 11, 30), ticket_id="T-2"))
    grant = EscalationRule(
        name="recovery",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=100),
                actions=[GrantPoints(policy=RecoveryPolicy(points=600))],
            )
        ],
    )
    engine = EscalationEngine(store, BOOK, [grant, VIP], loyalty=PROGRAM)
    engine.plan_all()
    assert engine.next_due() == at(6, 12)
    run = engine.run(at(6, 12, 5))
    assert [(p.firing.rule, p.firing.ticket_id, p.firing.at) for p in run.firings] == [
        ("recovery", "T-1", at(6, 12)),
        ("vip", "T-1", at(6, 12)),
    ]
    assert engine.next_due() == at(6, 12, 30)  # T-2's 50 %, ann being rich since 12:00
    run = engine.run(at(6, 12, 35))
    assert [(p.firing.rule, p.firing.ticket_id, p.firing.at) for p in run.firings] == [
        ("vip", "T-2", at(6, 12, 30)),
    ]


# -- former requesters: each instant reads the one who was the requester then ---------------

BOB = "bob"


def _rich(member_id: str) -> MemberTimeline:
    """600 points since Monday 09:00."""
    state = LedgerState(member_id)
    state.apply(state.plan_earn(600, at=at(6, 9), key="o1"))
    return MemberTimeline(member_id, state.entries, TIERS)


def test_a_former_requester_is_read_at_the_instants_they_were_the_requester() -> None:
    # ann (600 points since 09:00) asked at 10:00; bob (no points) became the requester at
    # 11:30. At the 50 % instant (11:00) ann was the requester and had 600 points: "vip" fires
    # then, however late the run. Given only the current requester (member=), ann's instants
    # read None (nothing fires): members= gives both.
    ticket, _ = new(at(6, 10)).change_requester(at(6, 11, 30), BOB)
    assert ticket.requesters == (ANN, BOB)
    both = {ANN: _rich(ANN), BOB: MemberTimeline(BOB, [], TIERS)}
    firings = due_firings(ticket, BOOK, [VIP], at(6, 9), at(7, 9), members=both)
    assert [(f.rule, f.at) for f in firings] == [("vip", at(6, 11))]
    assert next_due(ticket, BOOK, [VIP], at(6, 9), members=both) == at(6, 11)
    assert due_firings(ticket, BOOK, [VIP], at(6, 9), at(7, 9), member=both[BOB]) == []
    # a member who never was the requester is not read (and a missing one reads None)
    only_carl = {"carl": _rich("carl")}
    assert due_firings(ticket, BOOK, [VIP], at(6, 9), at(7, 9), members=only_carl) == []
    # dry_run reads each ticket's requesters from one mapping
    planned = dry_run([ticket], BOOK, [VIP], at(6, 9), at(7, 9), members=both)
    assert [(p.firing.rule, p.firing.at) for p in planned] == [("vip", at(6, 11))]


def test_members_are_checked() -> None:
    ticket = new(at(6, 10))
    ann = _rich(ANN)
    with pytest.raises(ValidationError, match="not both"):
        due_firings(ticket, BOOK, [VIP], at(6, 9), at(7, 9), member=ann, members={ANN: ann})
    with pytest.raises(ValidationError, match=r"members\['bob'\] is the timeline of"):
        run_ticket(ticket, BOOK, [VIP], at(6, 9), at(7, 9), members={BOB: ann})
    with pytest.raises(InvalidType, match="members="):
        next_due(ticket, BOOK, [VIP], at(6, 9), members=[ann])  # type: ignore[arg-type]
    with pytest.raises(InvalidType, match=r"members\['ann@example.com'\]='gold' is a str"):
        next_due(ticket, BOOK, [VIP], at(6, 9), members={ANN: "gold"})  # type: ignore[dict-item]
    # a former requester given as member=: the message says how to give them
    moved, _ = ticket.change_requester(at(6, 11, 30), BOB)
    with pytest.raises(ValidationError, match=r"was the requester before: give members=") as err:
        due_firings(moved, BOOK, [VIP], at(6, 9), at(7, 9), member=ann)
    assert err.value.field == "member"


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:"])
def test_a_late_engine_run_reads_the_former_requester(url: str) -> None:
    store = open_store(url)
    ticket, _ = new(at(6, 10)).change_requester(at(6, 11, 30), BOB)
    store.tickets.add(ticket)
    Ledger(store).earn(ANN, 600, at=at(6, 9), key="order-1")
    engine = EscalationEngine(store, BOOK, [VIP], loyalty=PROGRAM)
    assert engine.ticket_changed("T-1") == at(6, 11)
    run = engine.run(at(6, 12))
    assert [(p.firing.rule, p.firing.at) for p in run.firings] == [("vip", at(6, 11))]
    assert "vip-late" in store.tickets.get("T-1").tags
    assert engine.dry_run(at(6, 9), at(7, 9)) == []  # fired: nothing left


@settings(max_examples=60, deadline=None)
@given(_EARNS, _EARNS, st.integers(1, 6 * 60), st.integers(5, 60))
@example([(0, 600, None)], [], 120, 15)  # ann rich from the start: vip at 11:00, then bob
def test_runs_on_time_equal_one_late_run_across_a_change_of_requester(
    ann_earns: list[tuple[int, int, int | None]],
    bob_earns: list[tuple[int, int, int | None]],
    change_after: int,
    every: int,
) -> None:
    # the host changes the requester from ann to bob some minutes after the creation; a run
    # every few minutes (each with the ticket as it stands and its requesters' members, as
    # the engine reads them) fires what one run after everything fires, at the same instants
    rules = [VIP, HELD]
    ledgers = {
        ANN: MemberTimeline(ANN, _entries(ann_earns), TIERS),
        BOB: MemberTimeline(BOB, _entries(bob_earns, BOB), TIERS),
    }
    created, start, last = at(6, 10), at(6, 9), at(6, 18)
    change = created + timedelta(minutes=change_after)
    whole, _ = new(created).change_requester(change, BOB)
    late = run_ticket(whole, BOOK, rules, start, last, members=ledgers)
    fired = _runs_every(every, new(created), [(change, BOB)], rules, start, last, ledgers)
    assert fired == [(p.firing.rule, p.firing.at) for p in late.firings]


def _runs_every(
    every: int,
    ticket: Ticket,
    changes: list[tuple[datetime, str]],
    rules: list[EscalationRule],
    start: datetime,
    last: datetime,
    members: dict[str, MemberTimeline],
) -> list[tuple[str, datetime]]:
    """The firings (rule, instant) of runs made every ``every`` minutes from ``start`` to
    ``last``, each going on from the last one's state (as the engine does), the host making
    each change of requester in ``changes`` (instant, new requester) before the run whose
    window holds it."""
    pending, state, when = list(changes), None, start
    fired: list[Firing] = []
    while when < last:
        end = min(when + timedelta(minutes=every), last)
        while pending and pending[0][0] <= end:
            ticket, _ = ticket.change_requester(*pending.pop(0))
        run = run_ticket(
            ticket,
            BOOK,
            rules,
            start,
            end,
            plan=True,
            resume=state,
            fired={f.key for f in fired},
            members=members,
        )
        ticket, state = run.ticket, run.state
        fired += [p.firing for p in run.firings]
        when = end
    return [(f.rule, f.at) for f in fired]


class _Counting(dict[str, MemberTimeline]):
    """A members mapping that counts the timelines read from it."""

    reads = 0

    def items(self) -> Any:
        for key, value in super().items():
            type(self).reads += 1
            yield key, value

    def values(self) -> Any:
        for value in super().values():
            type(self).reads += 1
            yield value

    def __getitem__(self, key: str) -> MemberTimeline:
        type(self).reads += 1
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        type(self).reads += 1
        return super().get(key, default)


def test_dry_run_reads_the_members_mapping_once_not_once_per_ticket() -> None:
    # 40 tickets of 40 requesters, one mapping of their 40 members: dry_run checks the mapping
    # once and looks up each ticket's requesters (about 80 reads), where reading the whole
    # mapping for every ticket (1,600 reads) makes a dry run over a store quadratic.
    ids = [f"m{i}" for i in range(40)]
    members = _Counting({m: _rich(m) for m in ids})
    tickets = [
        new(at(6, 10), ticket_id=f"T-{i}").change_requester(at(6, 10, 30), m)[0]
        for i, m in enumerate(ids)
    ]
    _Counting.reads = 0
    planned = dry_run(tickets, BOOK, [VIP], at(6, 9), at(7, 9), members=members)
    assert [p.firing.at for p in planned] == [at(6, 11)] * len(ids)  # each read its member
    assert _Counting.reads <= 3 * len(ids)


@attrs.frozen(kw_only=True)
class _Transferred(TicketEventBase):
    """An application's own event that hands the ticket to another requester (its fold sets
    the requester, as ``TicketState.replace`` allows)."""

    to: str

    def fold(self, state: TicketState) -> TicketState:
        return state.replace(requester=self.to)


def test_a_requester_set_by_a_declared_event_is_a_requester() -> None:
    # Declared for this test only (and removed after it), so that the event strategies of
    # other tests do not draw it.
    cls = event_type("test.member_conditions.transferred")(_Transferred)
    try:
        ticket = new(at(6, 10)).apply(_Transferred(at=at(6, 10, 30), to=BOB))
        ticket, _ = ticket.change_requester(at(6, 11, 30), "carl")
        assert ticket.requesters == (ANN, BOB, "carl")
        # bob (600 points) was the requester at the 50 % instant: "vip" fires then
        both = {BOB: _rich(BOB), "carl": MemberTimeline("carl", [], TIERS)}
        firings = due_firings(ticket, BOOK, [VIP], at(6, 9), at(7, 9), members=both)
        assert [(f.rule, f.at) for f in firings] == [("vip", at(6, 11))]
    finally:
        _declare._SPECS.pop(cls, None)
        _declare._ENCODE.pop(cls, None)
        _declare._BY_NAME.pop("test.member_conditions.transferred", None)


def test_the_engine_reads_ledgers_only_for_rules_that_read_members(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every ledger read of the memory store counted, by member. Rules reading no member read
    # no ledger (planning, running, dry runs, member_changed); rules reading members read the
    # ledger of each of the ticket's requesters, former ones included.
    read: list[str] = []
    for cls in (memory._Ledger, memory._TxLedger):
        original = cls.read

        def counted(self: Any, member_id: str, view: Any, _original: Any = original) -> Any:
            read.append(member_id)
            return _original(self, member_id, view)

        monkeypatch.setattr(cls, "read", counted)
    plain = EscalationRule(name="plain", condition=Always(), levels=VIP.levels)
    for rules, expected in (([plain], []), ([VIP], [ANN, BOB])):
        store = open_store("memory://")
        ticket, _ = new(at(6, 10)).change_requester(at(6, 10, 30), BOB)
        store.tickets.add(ticket)
        engine = EscalationEngine(store, BOOK, rules, loyalty=PROGRAM)
        read.clear()
        engine.plan_all()
        assert sorted(read) == expected
        read.clear()
        engine.dry_run(at(6, 9), at(7, 9))
        engine.run(at(7, 9))
        engine.member_changed(BOB)
        assert sorted(set(read)) == expected


@settings(max_examples=60, deadline=None)
@given(
    _EARNS,
    _EARNS,
    st.integers(1, 200),
    st.integers(0, 200),
    st.sampled_from([(ANN, BOB), (ANN,), (BOB,), ()]),
    st.integers(5, 60),
)
@example([(0, 600, None)], [], 30, 60, (ANN, BOB), 15)  # ann again from 11:30: vip then
@example([], [(0, 600, None)], 50, 0, (ANN, BOB), 15)  # bob and back to ann at one instant
@example([], [(140, 600, None)], 30, 200, (ANN, BOB), 15)  # bob rich at 11:20, his turn
def test_a_requester_who_comes_back_is_read_again_and_members_left_out_read_none(
    ann_earns: list[tuple[int, int, int | None]],
    bob_earns: list[tuple[int, int, int | None]],
    first: int,
    second: int,
    given_ids: tuple[str, ...],
    every: int,
) -> None:
    # ann asks, bob from `first` minutes after the creation, ann again `second` minutes later;
    # the timelines of some of them are given. "vip" fires at the first minute from 11:00 (the
    # 50 % instant) at which whoever is the requester then has 500 points or more, as read
    # minute by minute (every entry, expiry and change falls on a whole minute); one missing
    # reads None. Runs every few minutes fire what one late run fires.
    created, start, last = at(6, 10), at(6, 9), at(6, 18)
    to_bob = created + timedelta(minutes=first)
    back = to_bob + timedelta(minutes=second)
    ledgers = {
        ANN: MemberTimeline(ANN, _entries(ann_earns), TIERS),
        BOB: MemberTimeline(BOB, _entries(bob_earns, BOB), TIERS),
    }
    members = {m: ledgers[m] for m in given_ids}
    whole, _ = new(created).change_requester(to_bob, BOB)
    whole, _ = whole.change_requester(back, ANN)
    assert whole.requesters == (ANN, BOB)
    expected: list[datetime] = []
    minute = at(6, 11)
    while minute <= last and not expected:
        timeline = members.get(whole.as_of(minute).requester)
        if timeline is not None and timeline.at(minute).points >= 500:
            expected = [minute]
        minute += M
    got = due_firings(whole, BOOK, [VIP], start, last, members=members)
    assert [f.at for f in got] == expected
    if expected:
        assert next_due(whole, BOOK, [VIP], start, members=members) == expected[0]
    rules = [VIP, HELD]
    late = run_ticket(whole, BOOK, rules, start, last, members=members)
    changes = [(to_bob, BOB), (back, ANN)]
    fired = _runs_every(every, new(created), changes, rules, start, last, members)
    assert fired == [(p.firing.rule, p.firing.at) for p in late.firings]


def test_a_change_of_requester_at_a_firing_instant_counts_at_that_instant() -> None:
    # bob becomes the requester at 11:00 sharp, the 50 % instant: events at an instant count
    # at it, so "vip" reads bob there (whatever run reads the history), and GrantPoints at
    # the breach (12:00) with the change at 12:00 grants bob.
    poor = {ANN: _rich(ANN), BOB: MemberTimeline(BOB, [], TIERS)}
    rich = {ANN: MemberTimeline(ANN, [], TIERS), BOB: _rich(BOB)}
    ticket, _ = new(at(6, 10)).change_requester(at(6, 11), BOB)
    assert due_firings(ticket, BOOK, [VIP], at(6, 9), at(7, 9), members=poor) == []
    firings = due_firings(ticket, BOOK, [VIP], at(6, 9), at(7, 9), members=rich)
    assert [(f.rule, f.at) for f in firings] == [("vip", at(6, 11))]
    grant = EscalationRule(
        name="recovery",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=100),
                actions=[GrantPoints(policy=RecoveryPolicy(points=600))],
            )
        ],
    )
    for change, granted in ((at(6, 12), BOB), (at(6, 12, 1), ANN)):
        moved, _ = new(at(6, 10)).change_requester(change, BOB)
        (done,) = run_ticket(moved, BOOK, [grant], at(6, 9), at(6, 13)).firings
        assert [r.member_id for r in done.requests] == [granted]


def test_a_tier_counting_active_points_is_reached_at_the_activation() -> None:
    # TierPolicy(qualify_when="active"): 600 points earned at 10:00 are gold from when they
    # become active, at their pending_until (10:20) or at an explicit activation (10:20):
    # held 30 min -> 10:50; counted when earned (the default) -> 10:30
    ticket = new(at(6, 10))
    active = TierPolicy(tiers=TIERS.tiers, qualify_when="active")
    timed, explicit = LedgerState(ANN), LedgerState(ANN)
    timed.apply(timed.plan_earn(600, at=at(6, 10), key="e", pending_until=at(6, 10, 20)))
    explicit.apply(explicit.plan_earn(600, at=at(6, 10), key="e", pending_until=UNTIL_ACTIVATED))
    explicit.apply(explicit.plan_activate(f"{ANN}#1", at=at(6, 10, 20), key="a"))
    for state in (timed, explicit):
        for policy, fires in ((active, at(6, 10, 50)), (TIERS, at(6, 10, 30))):
            gold = MemberTimeline(ANN, state.entries, policy)
            firings = due_firings(ticket, BOOK, [HELD], at(6, 9), at(7, 9), member=gold)
            assert [(f.rule, f.at) for f in firings] == [("gold-waiting", fires)]
