"""Builders the escalation tests share: a Monday-Friday 09:00-17:00 UTC calendar, instants in
January 2025 (2025-01-06 is a Monday) and books (those of the SLA tests, tests/sla/support.py),
tickets and rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from csmcore.conditions import Always, Condition, Field
from csmcore.escalation import AddTags, EscalationLevel, EscalationRule, Firing, PercentUsed
from csmcore.loyalty import Program, SpendRule, Tier, TierPolicy
from csmcore.sla import SlaTarget
from csmcore.tickets import Priority, Role, Status, Ticket
from tests.sla.support import CAL, UTC, H, at, book

__all__ = ["CAL", "US", "UTC", "H", "M", "at", "book", "new", "rule", "shown"]

M = timedelta(minutes=1)
US = timedelta(microseconds=1)


def new(
    when: datetime,
    priority: Priority | str = Priority.NORMAL,
    assignee: str | None = None,
    ticket_id: str = "T-1",
) -> Ticket:
    """A ticket created by the requester by email at ``when``."""
    ticket, _ = Ticket.create(
        at=when,
        ticket_id=ticket_id,
        created_by=Role.REQUESTER,
        channel="email",
        priority=priority,
        requester="ann@example.com",
        assignee=assignee,
        status=Status.NEW,
    )
    return ticket


def rule(*triggers: Any, name: str = "r", condition: Condition | None = None) -> EscalationRule:
    """A rule with one level per trigger, each adding the tag ``level<i>``."""
    return EscalationRule(
        name=name,
        condition=Always() if condition is None else condition,
        levels=[
            EscalationLevel(trigger=trigger, actions=[AddTags(tags={f"level{i}"})])
            for i, trigger in enumerate(triggers)
        ],
    )


def shown(firings: list[Firing]) -> list[tuple[int, str | None, int, datetime]]:
    """(level, target, cycle, at) of each firing."""
    return [(f.level, f.target, f.cycle, f.at) for f in firings]


# The loyalty scene of the engine's member tests: a one-target book, a shop program with
# silver (100) and gold (500) tiers, and a rule tagging gold members' tickets at half time.
MEMBER_BOOK = book(SlaTarget(metric="first_reply", within=2 * H))
SHOP = Program(
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


def requested(ticket_id: str, requester: str, created: datetime | None = None) -> Ticket:
    """A new email ticket of ``requester`` at normal priority, created (by them) at
    ``created`` (default Monday 6 January 2025, 10:00 UTC)."""
    made, _ = Ticket.create(
        at=at(6, 10) if created is None else created,
        ticket_id=ticket_id,
        created_by=Role.REQUESTER,
        channel="email",
        priority="normal",
        requester=requester,
        status=Status.NEW,
    )
    return made
