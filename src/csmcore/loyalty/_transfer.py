"""Transfers between members: :func:`plan_transfer` plans the pair of entries that moves
points with their lots' expiry from one member's :class:`~csmcore.loyalty.LedgerState` to
another's (pure, no I/O; the store writes both in one transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from csmcore.errors import IdempotencyConflict, ValidationError
from csmcore.loyalty._entries import (
    EntryKind,
    LedgerEntry,
    LotDraw,
    RedemptionOrder,
    check_instant,
    check_points,
    entry_id_of,
    split_entry_id,
)
from csmcore.loyalty._plans import _order

if TYPE_CHECKING:
    from csmcore.loyalty._replay import LedgerState

__all__ = ["plan_transfer"]


def plan_transfer(
    source: LedgerState,
    target: LedgerState,
    points: int,
    *,
    at: datetime,
    key: str,
    order: RedemptionOrder | str = RedemptionOrder.SOONEST_EXPIRY,
) -> tuple[LedgerEntry, LedgerEntry]:
    """The TRANSFER_OUT of ``source`` and the TRANSFER_IN of ``target`` moving ``points``
    with their lots' expiry (both written with ``key``), or the pair already written."""
    check_points(points, "points")
    order = _order(order)
    t = check_instant(at, "at")
    if source.member_id == target.member_id:
        raise ValidationError(
            f"a transfer from member {source.member_id!r} to itself moves nothing",
            field="to_member",
            value=target.member_id,
        )
    found = source._known(key, EntryKind.TRANSFER_OUT, points=-points, at=at)
    if found is not None:
        member, seq = split_entry_id(found.related)
        if member != target.member_id:
            raise IdempotencyConflict(
                f"key={key!r} was already used for a transfer to {member!r}, not to "
                f"{target.member_id!r}",
                field="key",
                value=key,
            )
        return found, target.entry(seq)
    if target._known(key, EntryKind.TRANSFER_IN, points=points, at=at) is not None:
        raise IdempotencyConflict(
            f"key={key!r} was already used by member {target.member_id!r} for another write",
            field="key",
            value=key,
        )
    source._check_time(t, at)
    target._check_time(t, at)
    draws = source._draw(points, t, order, what="a transfer")
    out_id = entry_id_of(source.member_id, source.version + 1)
    in_id = entry_id_of(target.member_id, target.version + 1)
    created = tuple(
        LotDraw(lot_id=f"{in_id}.{i}", points=d.points, expires_at=d.expires_at)
        for i, d in enumerate(draws, 1)
    )
    out = source._new(EntryKind.TRANSFER_OUT, at, -points, key, draws=draws, related=in_id)
    into = target._new(EntryKind.TRANSFER_IN, at, points, key, draws=created, related=out_id)
    return out, into
