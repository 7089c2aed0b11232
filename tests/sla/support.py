"""Builders the SLA tests share: a Monday-Friday 09:00-17:00 UTC calendar, instants in
January 2025 (2025-01-06 is a Monday), one-policy books, new tickets and status lookups."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from csmcore import BusinessCalendar
from csmcore.sla import SlaBook, SlaPolicy, SlaStatus, SlaTarget
from csmcore.tickets import Priority, Role, Status, Ticket

UTC = timezone.utc
CAL = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC")
H = timedelta(hours=1)


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
    created_by: Role = Role.REQUESTER,
    priority: Priority = Priority.NORMAL,
    status: Status = Status.NEW,
) -> Ticket:
    """Ticket ``T-1``, created by email at ``when``."""
    ticket, _ = Ticket.create(
        at=when,
        ticket_id="T-1",
        created_by=created_by,
        channel="email",
        priority=priority,
        requester="ann@example.com",
        status=status,
    )
    return ticket


def one(statuses: tuple[SlaStatus, ...], target: str, cycle: int = 1) -> SlaStatus:
    """The one status of ``target``'s ``cycle`` among ``statuses``."""
    found = [s for s in statuses if s.target == target and s.cycle == cycle]
    assert len(found) == 1, statuses
    return found[0]
