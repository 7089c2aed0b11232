"""Builders the escalation tests share: a Monday-Friday 09:00-17:00 UTC calendar, instants in
January 2025 (2025-01-06 is a Monday), books, tickets and rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from csmcore import BusinessCalendar
from csmcore.conditions import Always, Condition
from csmcore.escalation import AddTags, EscalationLevel, EscalationRule, Firing
from csmcore.sla import SlaBook, SlaPolicy, SlaTarget
from csmcore.tickets import Priority, Role, Status, Ticket

UTC = timezone.utc
CAL = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC")
H = timedelta(hours=1)
M = timedelta(minutes=1)
US = timedelta(microseconds=1)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """``day`` of January 2025 at ``hour:minute`` UTC."""
    return datetime(2025, 1, day, hour, minute, tzinfo=UTC)


def book(*targets: SlaTarget, calendar: BusinessCalendar = CAL) -> SlaBook:
    """A book with one default policy ``"std"`` holding ``targets``."""
    return SlaBook(
        policies=[SlaPolicy(name="std", position=1, default=True, targets=targets)],
        calendar=calendar,
    )


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
