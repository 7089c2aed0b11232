"""Service recovery: points for a customer whose ticket breached an SLA target (pure part).

:func:`recovery_grants` says what to grant for one ticket's SLA results at an instant; the
service :func:`csmcore.services.compensate` posts it to a ledger. Each breached cycle of a
target is compensated at most once: the grant's idempotency key is
``sla-recovery:<ticket id>:<target>:<cycle>``, and a key the member's entries already hold
is not granted again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from csmcore._time import require_aware
from csmcore._values import as_utc, check_identifier, coerce_enum
from csmcore.errors import ValidationError, invalid_type
from csmcore.loyalty._earn import kind_name
from csmcore.loyalty._expiry import (
    EXPIRY_TYPES,
    ExpiryPolicy,
    NeverExpires,
    Period,
    check_zone,
    period_bounds,
)
from csmcore.serialization import serializable
from csmcore.sla import SlaState, SlaStatus

__all__ = ["RecoveryGrant", "RecoveryPolicy", "recovery_grants", "recovery_key"]


def _points(argument: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(argument, value, "a whole number of points (an int)")
    if value < 0:
        raise ValidationError(
            f"{argument}={value!r} must be zero or more points", field=argument, value=value
        )
    return value


def _per_target(value: object) -> Mapping[str, int]:
    if not isinstance(value, Mapping):
        raise invalid_type("per_target", value, "a mapping of target key to points")
    out = {}
    for key in sorted(value, key=str):
        if not isinstance(key, str) or not key:
            raise invalid_type("per_target", key, "target keys (non-empty strings)")
        check_identifier(key, "per_target")
        out[key] = _points(f"per_target[{key!r}]", value[key])
    return MappingProxyType(out)


def _cap(value: object) -> int | None:
    return None if value is None else _points("cap", value)


def _expiry(value: object) -> ExpiryPolicy:
    if not isinstance(value, EXPIRY_TYPES):
        raise invalid_type("expiry", value, "NeverExpires, RollingExpiry or EndOfPeriodExpiry")
    return value


def _policy_points(value: Any) -> int:
    return _points("points", value)


def _recovery_period(value: Any) -> Period:
    return coerce_enum(Period, value, "period")


@serializable("loyalty.recovery_policy", aliases=("csmcore.loyalty:RecoveryPolicy",))
@attrs.frozen(kw_only=True)
class RecoveryPolicy:
    """How a breached SLA target is made good.

    ``points`` per breached cycle of any target, unless ``per_target`` gives the points of a
    target key (``SlaStatus.target``: the target's name or its metric value; 0 leaves that
    target out). The keys are not checked against a book here (a policy knows none): the
    escalation engine refuses a key no target of its book has in a ``GrantPoints`` policy;
    :func:`csmcore.services.compensate` does not. ``cap`` limits what one member receives
    per calendar ``period`` (in ``timezone``) for breaches; None: no cap. ``reason`` is
    written on the ledger entries (what the cap counts), ``expiry`` applies to the points
    granted.
    """

    points: int = attrs.field(converter=_policy_points)
    per_target: Mapping[str, int] = attrs.field(factory=dict, converter=_per_target, hash=False)
    cap: int | None = attrs.field(default=None, converter=_cap)
    period: Period = attrs.field(default=Period.MONTH, converter=_recovery_period)
    timezone: str = attrs.field(default="UTC", validator=check_zone)
    reason: str = attrs.field(default="sla_breach")
    expiry: ExpiryPolicy = attrs.field(factory=NeverExpires, converter=_expiry)

    @reason.validator
    def _check_reason(self, _: Any, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise invalid_type("reason", value, "a non-empty string")
        check_identifier(value, "reason")

    def points_for(self, target: str) -> int:
        """The points a breached cycle of ``target`` earns (before the cap)."""
        return self.per_target.get(target, self.points)


@serializable("loyalty.recovery_grant", aliases=("csmcore.loyalty:RecoveryGrant",))
@attrs.frozen(kw_only=True)
class RecoveryGrant:
    """Points to grant ``member_id`` for one breached target cycle of ``ticket_id``: ``key``
    is the idempotency key, ``breached_at`` when the target breached, ``points`` after the
    cap (``capped`` says the cap cut it), ``expires_at`` per the policy's expiry."""

    member_id: str
    ticket_id: str
    target: str
    cycle: int
    key: str
    breached_at: datetime
    points: int
    capped: bool = False
    expires_at: datetime | None = None


def recovery_key(ticket_id: str, target: str, cycle: int) -> str:
    """The idempotency key of the compensation of one breached target cycle.

    >>> recovery_key("T-7", "first_reply", 1)
    'sla-recovery:T-7:first_reply:1'
    """
    return f"sla-recovery:{ticket_id}:{target}:{cycle}"


def recovery_grants(
    policy: RecoveryPolicy,
    *,
    member_id: str,
    ticket_id: str,
    results: Iterable[SlaStatus],
    at: datetime,
    entries: Iterable[Any] = (),
) -> list[RecoveryGrant]:
    """The grants owed at ``at`` for the breached cycles in ``results`` (the statuses of
    :meth:`csmcore.sla.SlaBook.evaluate` for ``ticket_id``), not yet granted: the keys present
    in ``entries`` (the member's ledger entries) are skipped. Grants are posted at ``at``; the
    cap counts the EARN entries with the policy's ``reason`` in the period of ``at``, so what
    the member is granted in a period (by the date grants are posted) never exceeds it.
    Grants of 0 points (a cap reached, a target worth 0) are left out. Pure.
    """
    require_aware(at, "at")
    at = as_utc(at)
    held = list(entries)
    keys = {entry.key for entry in held}
    room: int | None = None
    if policy.cap is not None:
        start, end = period_bounds(at, policy.period, policy.timezone)
        used = sum(
            e.points
            for e in held
            if kind_name(e) == "earn" and e.reason == policy.reason and start <= e.at < end
        )
        room = max(0, policy.cap - used)
    breached = [
        status
        for status in results
        if status.state is SlaState.BREACHED
        and status.breached_at is not None
        and status.breached_at <= at
    ]
    breached.sort(key=lambda s: (as_utc(s.breached_at or at), s.target, s.cycle))
    grants = []
    expires_at = policy.expiry.expires_at(at)
    for status in breached:
        key = recovery_key(ticket_id, status.target, status.cycle)
        if key in keys:
            continue
        keys.add(key)  # a cycle listed twice in ``results`` is still owed once
        points = wanted = policy.points_for(status.target)
        if room is not None:
            points = min(points, room)
            room -= points
        if points <= 0:
            continue
        assert status.breached_at is not None
        grants.append(
            RecoveryGrant(
                member_id=member_id,
                ticket_id=ticket_id,
                target=status.target,
                cycle=status.cycle,
                key=key,
                breached_at=as_utc(status.breached_at),
                points=points,
                capped=points < wanted,
                expires_at=expires_at,
            )
        )
    return grants
