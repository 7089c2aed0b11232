"""Service recovery on a ledger: compensate a customer whose ticket breached SLA targets,
directly (:func:`compensate`) or from an escalation level (the handler of
:class:`~csmcore.escalation.PointsGrantRequest`, the request of the
:class:`~csmcore.escalation.GrantPoints` action)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from csmcore._time import require_aware
from csmcore._values import as_utc
from csmcore.errors import UnsupportedRole, invalid_type
from csmcore.escalation import PointsGrantRequest
from csmcore.loyalty import (
    LedgerEntry,
    LedgerState,
    RecoveryGrant,
    RecoveryPolicy,
    recovery_grants,
)
from csmcore.services._ledger import Ledger
from csmcore.services._requests import request_handler
from csmcore.sla import SlaState, SlaStatus
from csmcore.storage import role_of
from csmcore.tickets import Ticket

__all__ = ["compensate", "grant_points"]


def compensate(
    ledger: Ledger,
    policy: RecoveryPolicy,
    ticket: Ticket,
    results: Iterable[SlaStatus],
    at: datetime,
) -> list[LedgerEntry]:
    """Grant the points ``policy`` owes for the breached target cycles in ``results``
    (``SlaBook.evaluate(ticket, at)``), as EARN entries at ``at``, each to the customer who was
    the ticket's requester when the cycle breached (after a change of requester, the one who
    waited through the breach; the escalation engine's ``GrantPoints`` pays the requester at
    its firing instant, the same customer when it fires at the breach); return the entries
    written by this call (empty when nothing is owed).

    Idempotent per (ticket, target, cycle): each grant's key is
    ``sla-recovery:<ticket id>:<target>:<cycle>`` and a key the member already has is not
    granted again, so running it twice (or from two escalation runs) grants once. The
    entries' ``reason`` is the policy's ``reason`` (what its cap counts) and their
    ``reference`` is ``<ticket id>:<target>:<cycle>``.

    Each cycle is granted in one ledger write, planned on the member's entries as that write
    finds them (the ledger's per-member version check), in the order the cycles breached: a
    concurrent grant to the same member (another ``compensate``, the escalation engine's
    ``GrantPoints``) is counted against the cap and its keys are not granted again.

    ``policy.per_target`` keys are target keys of the SLA book (``SlaStatus.target``: a
    target's name, or its metric value). ``compensate`` has no book, so a key no target has
    is not refused here: it is never used, and the target it meant earns ``policy.points``
    (the escalation engine refuses such a key in a ``GrantPoints`` policy, against its book).
    """
    if not isinstance(ticket, Ticket):
        raise invalid_type("ticket", ticket, "a Ticket")
    require_aware(at, "at")
    statuses = list(results)
    # the arguments checked before anything is written
    recovery_grants(
        policy, member_id=ticket.requester, ticket_id=ticket.id, results=statuses, at=at
    )
    breached = sorted(
        (s for s in statuses if s.state is SlaState.BREACHED and s.breached_at is not None),
        key=lambda s: (as_utc(s.breached_at or at), s.target, s.cycle),
    )
    written: list[LedgerEntry] = []
    for status in breached:
        member_id = _requester_at(ticket, status.breached_at or at)
        plan = _cycle_plan(policy, member_id, ticket.id, status, at, after_last=False)
        written.extend(ledger.repository.write((member_id,), plan))
    return written


def _requester_at(ticket: Ticket, at: datetime) -> str:
    """Who was ``ticket``'s requester at ``at``."""
    return ticket.requester if at >= ticket.updated_at else ticket.as_of(at).requester


def _earning(grant: RecoveryGrant, policy: RecoveryPolicy, at: datetime) -> dict[str, Any]:
    """The keyword arguments of the EARN a recovery grant makes (``Ledger.earn`` and
    ``LedgerState.plan_earn`` take the same ones)."""
    return {
        "at": at,
        "key": grant.key,
        "expires_at": grant.expires_at,
        "reference": f"{grant.ticket_id}:{grant.target}:{grant.cycle}",
        "reason": policy.reason,
    }


@request_handler(PointsGrantRequest)
def _grant_points_handler(uow: Any, request: PointsGrantRequest, now: datetime) -> None:
    """The engine's handler of :class:`~csmcore.escalation.PointsGrantRequest`."""
    grant_points(uow, request)


def grant_points(uow: Any, request: PointsGrantRequest) -> list[LedgerEntry]:
    """Write what a :class:`~csmcore.escalation.PointsGrantRequest` asks for through the
    ``ledger`` role of ``uow`` (the unit of work recording the firing), and return the entries
    written (empty when every breached cycle was already compensated or the cap is reached).

    One ledger write per breached cycle, planned on the member's state inside the unit of
    work: a cycle whose key ``sla-recovery:<ticket>:<target>:<cycle>`` the member already holds
    is skipped (so an engine running twice, two engines, or :func:`compensate` as well, grant
    once), and the policy's cap counts the entries of the period, this unit of work's included.
    The grant is dated at the firing instant, or at the member's last entry when that is later
    (a ledger never goes back in time), and the cap counts the period of that date, as
    :func:`compensate` does: an engine that catches up after the member's ledger moved on into
    a later period grants (and caps) the breach in that later period. By the date grants are
    posted, a member never receives more than the cap in a period.
    The escalation engine calls it for each such request of a firing (its declared
    :func:`~csmcore.services.request_handler`).

    Raises :class:`~csmcore.errors.UnsupportedRole` when ``uow`` does not offer the ``ledger``
    role (the engine then rolls the firing back: nothing is recorded).
    """
    if not isinstance(request, PointsGrantRequest):
        raise invalid_type("request", request, "a csmcore.escalation.PointsGrantRequest")
    try:
        ledger = role_of(uow, "ledger")
    except UnsupportedRole as err:
        raise UnsupportedRole(
            f"the escalation action GrantPoints ({request.actor}, ticket {request.ticket_id!r}) "
            "writes loyalty points in the unit of work that records its firing, so the store "
            f"must offer the 'ledger' role inside units of work: {err}"
        ) from err
    written: list[LedgerEntry] = []
    for status in request.breaches:
        written.extend(ledger.write((request.member_id,), _grant_plan(request, status)))
    return written


def _grant_plan(
    request: PointsGrantRequest, status: SlaStatus
) -> Callable[[Mapping[str, LedgerState]], list[LedgerEntry]]:
    """The ledger plan granting the breached cycle ``status`` of ``request`` (at most one
    EARN entry: none when its key is held, the cap is reached or the target is worth 0),
    dated at the request's instant or the member's last entry when that is later."""
    return _cycle_plan(
        request.policy,
        request.member_id,
        request.ticket_id,
        status,
        request.at,
        after_last=True,
    )


def _cycle_plan(
    policy: RecoveryPolicy,
    member: str,
    ticket_id: str,
    status: SlaStatus,
    at: datetime,
    *,
    after_last: bool,
) -> Callable[[Mapping[str, LedgerState]], list[LedgerEntry]]:
    """The ledger plan granting one breached cycle ``status`` at ``at`` (with ``after_last``:
    at the member's last entry when that is later), judged on the member's state the write
    finds: at most one EARN entry."""

    def plan(states: Mapping[str, LedgerState]) -> list[LedgerEntry]:
        state = states[member]
        when = at
        if after_last and state.entries and state.entries[-1].at > when:
            when = state.entries[-1].at
        grants = recovery_grants(
            policy,
            member_id=member,
            ticket_id=ticket_id,
            results=(status,),
            at=when,
            entries=state.entries,
        )
        return [state.plan_earn(grant.points, **_earning(grant, policy, when)) for grant in grants]

    return plan
