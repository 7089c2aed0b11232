"""The service-recovery action: :class:`GrantPoints` and the request it makes.

The action is pure like every action: it judges the ticket's SLA at the firing instant and,
when the firing's target cycle has breached, asks for loyalty points with a
:class:`PointsGrantRequest`. The engine hands the request to its handler
(``csmcore.services``), which writes the points to the ``ledger`` role of the unit of work that
records the firing, so the firing and the points commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, Final

import attrs

from csmcore._time import to_us
from csmcore._values import as_utc, check_text
from csmcore.errors import ValidationError, invalid_type
from csmcore.escalation._actions import ActionContext, ActionResult, action
from csmcore.loyalty import RecoveryPolicy, recovery_key
from csmcore.serialization import serializable
from csmcore.sla import SlaState, SlaStatus
from csmcore.tickets import Ticket

__all__ = ["REQUESTER", "GrantPoints", "PointsGrantRequest"]

_JUST_AFTER: Final = timedelta(microseconds=1)
"""The SLA is judged this long after the firing instant: a target breaches at its due
instant, which a level at 100 % of the target fires at, and a cycle is judged breached only
once its due instant has passed."""

REQUESTER: Final = "$requester"
"""The :attr:`GrantPoints.member` placeholder for the ticket's requester at the firing instant
(the default)."""


def _policy(_: object, __: object, value: Any) -> None:
    if not isinstance(value, RecoveryPolicy):
        raise invalid_type(
            "policy", value, "a csmcore.loyalty.RecoveryPolicy (points, per_target, cap, ...)"
        )


def _member(_: object, __: object, value: Any) -> None:
    if not isinstance(value, str) or not value or value != value.strip():
        raise invalid_type("member", value, f"a member id or {REQUESTER!r}")
    if value.startswith("$") and value != REQUESTER:
        raise ValidationError(
            f"member={value!r} is not a known placeholder; accepted: {REQUESTER!r} (the "
            "ticket's requester) or a member id",
            field="member",
            value=value,
        )
    check_text(value, "member")
    if len(value) > 255:
        raise ValidationError(
            f"member={value[:40]!r}... is {len(value)} characters long; a member id has at "
            "most 255",
            field="member",
        )


@serializable("escalation.points_grant_request", aliases=("csmcore.escalation:PointsGrantRequest",))
@attrs.frozen(kw_only=True)
class PointsGrantRequest:
    """Loyalty points to grant ``member_id`` for breached target cycles of ``ticket_id``, as
    service recovery under ``policy``; made by :class:`GrantPoints`.

    ``breaches`` are the breached cycles (their :class:`~csmcore.sla.SlaStatus` at the
    firing instant ``at``); each is granted at most once per member under its key
    ``sla-recovery:<ticket id>:<target>:<cycle>`` (:func:`csmcore.loyalty.recovery_key`, the
    key :func:`csmcore.services.compensate` uses too), within the policy's cap per period.
    ``actor`` names the rule, ``idempotency_key`` the firing and action (for tracing).
    """

    member_id: str
    ticket_id: str
    policy: RecoveryPolicy
    breaches: tuple[SlaStatus, ...]
    at: datetime
    actor: str
    idempotency_key: str

    @property
    def keys(self) -> tuple[str, ...]:
        """The ledger idempotency keys of the grants, one per breached cycle."""
        return tuple(recovery_key(self.ticket_id, s.target, s.cycle) for s in self.breaches)


@action("grant_points")
@attrs.frozen(kw_only=True)
class GrantPoints:
    """Grant loyalty points as service recovery when the firing's target cycle has breached.

    ``policy`` is the :class:`~csmcore.loyalty.RecoveryPolicy` that
    :func:`csmcore.services.compensate` applies too: points per breached cycle, per target,
    capped per period. ``member`` is the member the points go to: ``"$requester"`` (the
    default: the ticket's requester at the firing instant, so after a change of requester a
    late run grants whom a run on time granted) or a member id. On a level at the breach
    (``PercentUsed(target, percent=100)``) that is the customer who waited through it, whom
    :func:`~csmcore.services.compensate` pays too (it pays the requester at each breach
    instant), so the two grant a breach once between them; on a later level, a change of
    requester between the breach and the firing makes them pay different customers.

    Put it on a level of a target at or after its breach (``PercentUsed(target, percent=100)``
    or ``DueOffset.after(target)``). The action judges the ticket's SLA as the firing instant
    ends: if the firing's target cycle has breached by then (its due instant reached with the
    target not met), it asks for a :class:`PointsGrantRequest`, else it does nothing (a level
    before the breach grants nothing). On a level of a :class:`ConditionHeld` trigger (no
    target) it asks for every target cycle breached by the firing instant.

    The ticket is unchanged: the grant is a ledger entry (reason ``policy.reason``, reference
    ``<ticket id>:<target>:<cycle>``), written by the engine in the unit of work that records
    the firing (the store must offer the ``ledger`` role inside units of work; else the run
    raises :class:`~csmcore.errors.UnsupportedRole` and nothing is recorded).

    >>> from csmcore.loyalty import RecoveryPolicy
    >>> GrantPoints(policy=RecoveryPolicy(points=100, cap=300)).member
    '$requester'
    >>> GrantPoints(policy=RecoveryPolicy(points=100), member="$boss")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.ValidationError: member='$boss' is not a known placeholder; ...
    """

    name: ClassVar[str]
    policy: RecoveryPolicy = attrs.field(validator=_policy)
    member: str = attrs.field(default=REQUESTER, validator=_member)

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        """A :class:`PointsGrantRequest` for the breached cycles; the ticket is unchanged."""
        firing = context.firing
        # the requester at the firing instant (as the rule's conditions read them), not a later
        # one: a run made after a change of requester grants whom an on-time run granted
        member = ticket.as_of(firing.at).requester if self.member == REQUESTER else self.member
        # in UTC: a firing in the repeated hour (fold=1) plus a microsecond on its wall clock
        # would be read an hour earlier, and two datetimes of one zone compare by wall reading
        instant = as_utc(firing.at)
        breaches = tuple(
            status
            for status in context.book.evaluate(ticket, instant + _JUST_AFTER)
            if _breached(status, instant)
            and (
                firing.target is None
                or (status.target == firing.target and status.cycle == firing.cycle)
            )
        )
        if not member or not breaches:
            return ActionResult(ticket=ticket)
        request = PointsGrantRequest(
            member_id=member,
            ticket_id=ticket.id,
            policy=self.policy,
            breaches=breaches,
            at=firing.at,
            actor=context.actor,
            idempotency_key=context.idempotency_key,
        )
        return ActionResult(ticket=ticket, requests=(request,))


def _breached(status: SlaStatus, at: datetime) -> bool:
    return (
        status.state is SlaState.BREACHED
        and status.breached_at is not None
        and to_us(status.breached_at) <= to_us(at)
    )


# Resolved here, where the names exist: the package presents these classes as its own.
attrs.resolve_types(PointsGrantRequest)
