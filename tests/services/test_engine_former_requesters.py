"""``EscalationEngine.member_changed`` plans again the tickets of which the member was the
requester at *any* instant, not only those they request now (issue 13, "a ticket change
re-plans it"): conditions read the member who was the requester at each instant
(``Ticket.requesters``), so an entry dated back into a former requester's time can move a
firing of a ticket that person no longer requests. After the hook, every ticket's plan equals
what a fresh engine plans from the store.

Calendar: Monday-Friday 09:00-17:00 UTC; 2025-01-06 is a Monday. First reply within 2 business
hours: a ticket created Monday 10:00 is 50 % used at 11:00."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from csmcore.services import EscalationEngine, Ledger
from csmcore.storage import Store, role_of
from csmcore.tickets import Ticket
from tests.escalation.support import GOLD, MEMBER_BOOK, SHOP, M, at, requested

BOOK = MEMBER_BOOK
PROGRAM = SHOP


def _plans(store: Store, ids: list[str]) -> dict[str, datetime | None]:
    firings = role_of(store, "firings")
    out: dict[str, datetime | None] = {}
    for ticket_id in ids:
        plan = firings.planned(ticket_id)
        out[ticket_id] = None if plan is None else plan.next_due
    return out


def _fresh(store: Store, ids: list[str]) -> dict[str, datetime | None]:
    """What a new engine (remembering nothing) plans from the store as it stands."""
    EscalationEngine(store, BOOK, [GOLD], loyalty=PROGRAM, remember=0).plan_all()
    return _plans(store, ids)


def test_an_entry_dated_back_to_a_former_requester_re_plans_their_oldrequested(
    store: Store,
) -> None:
    # ann asked T-1 at 10:00; bob became its requester at 11:30. At the 50 % instant (11:00)
    # ann was the requester. An order of 600 dated back to 10:30 makes ann gold from then: the
    # level is due at 11:00, which member_changed(ann) must plan although ann no longer
    # requests T-1.
    ticket, _ = requested("T-1", "ann", at(6, 10)).change_requester(at(6, 11, 30), "bob")
    store.tickets.add(ticket)
    engine = EscalationEngine(store, BOOK, [GOLD], loyalty=PROGRAM)
    assert engine.ticket_changed("T-1") is None  # nobody is gold
    Ledger(store).earn("ann", 600, at=at(6, 10, 30), key="order-1")
    assert engine.member_changed("ann") == 1
    assert engine.next_due() == at(6, 11)
    assert _plans(store, ["T-1"]) == {"T-1": at(6, 11)}
    assert _fresh(store, ["T-1"]) == {"T-1": at(6, 11)}
    run = engine.run(at(6, 12))
    assert [(p.firing.ticket_id, p.firing.at) for p in run.firings] == [("T-1", at(6, 11))]
    # bob's own tickets are still found by their current requester
    assert engine.member_changed("bob") == 1


def test_an_entry_dated_ahead_for_the_current_requester_is_planned_for(store: Store) -> None:
    # ann's order is dated Monday 15:00, after the 50 % instant (11:00): the level, due since
    # 11:00, fires the moment ann becomes gold, and the plan says so before that moment comes
    store.tickets.add(requested("T-1", "ann", at(6, 10)))
    engine = EscalationEngine(store, BOOK, [GOLD], loyalty=PROGRAM)
    assert engine.ticket_changed("T-1") is None
    Ledger(store).earn("ann", 600, at=at(6, 15), key="order-1")
    assert engine.member_changed("ann") == 1
    assert engine.next_due() == at(6, 15)
    assert _fresh(store, ["T-1"]) == {"T-1": at(6, 15)}
    assert engine.run(at(6, 14, 59)).firings == ()
    assert [p.firing.at for p in engine.run(at(6, 15)).firings] == [at(6, 15)]


_MEMBERS = ("ann", "bob", "carl")
_TICKETS = st.lists(
    st.tuples(
        st.integers(0, 90),  # created, minutes after Monday 09:30
        st.sampled_from(_MEMBERS),  # the first requester
        st.lists(st.tuples(st.integers(1, 240), st.sampled_from(_MEMBERS)), max_size=3),
    ),
    min_size=1,
    max_size=4,
)
_ENTRIES = st.lists(
    # whose, minutes after Monday 08:00 (back-dated before, inside or after the tickets' times
    # of each requester, or days ahead), points
    st.tuples(st.sampled_from(_MEMBERS), st.integers(0, 3 * 24 * 60), st.integers(1, 700)),
    min_size=1,
    max_size=5,
)


def _built(created: int, first: str, changes: list[tuple[int, str]], n: int) -> Ticket:
    when = at(6, 9, 30) + created * M
    ticket = requested(f"T-{n}", first, when)
    for minutes, requester in sorted(changes):
        ticket, _ = ticket.change_requester(when + minutes * M, requester)
    return ticket


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tickets=_TICKETS, entries=_ENTRIES)
@example(  # ann asked T-0, then bob; ann's order dated back to her time makes her gold
    tickets=[(30, "ann", [(120, "bob")])], entries=[("ann", 120, 600)]
)
def test_after_member_changed_every_plan_is_a_fresh_plan(
    make_store: Callable[[], Store],
    tickets: list[tuple[int, str, list[tuple[int, str]]]],
    entries: list[tuple[str, int, int]],
) -> None:
    """For any changes of requester and any ledger entries (dated back or ahead), after each
    entry and ``member_changed`` of its member, every ticket's plan is what a new engine plans
    from the store as it stands."""
    store = make_store()
    try:
        built = [_built(*spec, n) for n, spec in enumerate(tickets)]
        store.tickets.add_many(built)
        ids = [t.id for t in built]
        engine = EscalationEngine(store, BOOK, [GOLD], loyalty=PROGRAM)
        engine.plan_all()
        ledger = Ledger(store)
        # a member's ledger never goes back in time: entries in order of instant (each may be
        # dated back into a ticket's past, before the instants the plans wait for)
        for n, (member, minutes, points) in enumerate(sorted(entries, key=lambda e: e[1])):
            ledger.earn(member, points, at=at(6, 8) + minutes * M, key=f"order-{n}")
            expected_count = sum(1 for t in built if member in t.requesters)
            assert engine.member_changed(member) == expected_count
            planned = _plans(store, ids)
            next_due = engine.next_due()
            assert planned == _fresh(store, ids), (member, minutes, points)
            dues = [d for d in planned.values() if d is not None]
            assert next_due == (min(dues) if dues else None)
    finally:
        store.close()
