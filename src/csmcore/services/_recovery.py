"""Service recovery on a ledger: compensate a customer whose ticket breached SLA targets."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from csmcore.errors import invalid_type
from csmcore.loyalty import LedgerEntry, RecoveryPolicy, recovery_grants
from csmcore.services._ledger import Ledger
from csmcore.sla import SlaStatus
from csmcore.tickets import Ticket

__all__ = ["compensate"]


def compensate(
    ledger: Ledger,
    policy: RecoveryPolicy,
    ticket: Ticket,
    results: Iterable[SlaStatus],
    at: datetime,
) -> list[LedgerEntry]:
    """Grant the ticket's requester the points ``policy`` owes for the breached target cycles
    in ``results`` (``SlaBook.evaluate(ticket, at)``), as EARN entries at ``at``; return the
    entries written by this call (empty when nothing is owed).

    Idempotent per (ticket, target, cycle): each grant's key is
    ``sla-recovery:<ticket id>:<target>:<cycle>`` and a key the member already has is not
    granted again, so running it twice (or from two escalation runs) grants once. The
    entries' ``reason`` is the policy's ``reason`` (what its cap counts) and their
    ``reference`` is ``<ticket id>:<target>:<cycle>``.
    """
    if not isinstance(ticket, Ticket):
        raise invalid_type("ticket", ticket, "a Ticket")
    member_id = ticket.requester
    grants = recovery_grants(
        policy,
        member_id=member_id,
        ticket_id=ticket.id,
        results=results,
        at=at,
        entries=ledger.entries(member_id),
    )
    return [
        ledger.earn(
            member_id,
            grant.points,
            at=at,
            key=grant.key,
            expires_at=grant.expires_at,
            reference=f"{grant.ticket_id}:{grant.target}:{grant.cycle}",
            reason=policy.reason,
        )
        for grant in grants
    ]
