"""The escalation engine treats a gold member differently (issue 13: conditions read "the
requester's loyalty member (tier) where a ledger is configured"; issue 12: "escalation rules can
treat a gold member differently"), on every built-in store: the tier comes from the program's
tiers over the requester's ledger entries in the store, as they stood at each instant.

Calendar: Monday-Friday 09:00-17:00 UTC; 2025-01-06 is a Monday. First reply within 2 business
hours: tickets created Monday 10:00 are 50 % used at 11:00."""

from __future__ import annotations

from decimal import Decimal

from csmcore.conditions import Field
from csmcore.escalation import AddTags, EscalationLevel, EscalationRule, PercentUsed
from csmcore.loyalty import Program, Purchase, SpendRule, Tier, TierPolicy
from csmcore.services import EscalationEngine, Ledger, earn_points
from csmcore.sla import SlaTarget
from csmcore.storage import Store
from csmcore.tickets import Role, Status, Ticket
from tests.escalation.support import H, at, book

BOOK = book(SlaTarget(metric="first_reply", within=2 * H))
PROGRAM = Program(
    name="shop",
    rules=[SpendRule(name="base", points=Decimal(1))],
    tiers=TierPolicy(tiers=[Tier(name="silver", threshold=100), Tier(name="gold", threshold=500)]),
)
GOLD = EscalationRule(
    name="gold",
    condition=Field("member.tier") == "gold",
    levels=[
        EscalationLevel(
            trigger=PercentUsed(target="first_reply", percent=50),
            actions=[AddTags(tags={"gold-late"})],
        )
    ],
)


def ticket(ticket_id: str, requester: str) -> Ticket:
    created, _ = Ticket.create(
        at=at(6, 10),
        ticket_id=ticket_id,
        created_by=Role.REQUESTER,
        channel="email",
        priority="normal",
        requester=requester,
        status=Status.NEW,
    )
    return created


def test_a_gold_member_is_escalated_and_a_silver_one_is_not(store: Store) -> None:
    store.tickets.add(ticket("T-ann", "ann"))
    store.tickets.add(ticket("T-bob", "bob"))
    engine = EscalationEngine(store, BOOK, [GOLD], loyalty=PROGRAM)
    assert engine.plan_all() == 2
    assert engine.next_due() is None  # no member is gold yet: nothing to plan
    # purchases at 10:30: ann 600.00 (gold from then on), bob 200.00 (silver)
    ledger = Ledger(store)
    for member, amount in (("ann", "600.00"), ("bob", "200.00")):
        earn_points(
            ledger, PROGRAM, member, Purchase.of(Decimal(amount)), at=at(6, 10, 30), key="o-1"
        )
        assert engine.member_changed(member) == 1
    assert engine.next_due() == at(6, 11)
    run = engine.run(at(6, 12))
    assert [(p.firing.ticket_id, p.firing.at) for p in run.firings] == [("T-ann", at(6, 11))]
    assert "gold-late" in store.tickets.get("T-ann").tags
    assert "gold-late" not in store.tickets.get("T-bob").tags
    assert engine.run(at(6, 17)).firings == ()  # fired once
