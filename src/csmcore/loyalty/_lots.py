"""Derived values: a lot and a member's balance at an instant (never stored, always replayed)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Final

import attrs

from csmcore._time import to_us

__all__ = ["Balance", "Lot", "LotStatus"]


class LotStatus(enum.Enum):
    """Where a lot stands at an instant."""

    PENDING = "pending"
    """Earned but not yet usable (before ``pending_until`` and not activated)."""
    ACTIVE = "active"
    """Usable: points left, not pending, not expired."""
    EXPIRED = "expired"
    """Its ``expires_at`` has passed; what was left (``remaining``) expired."""
    USED = "used"
    """Nothing left (redeemed, transferred, clawed back)."""


@attrs.frozen(kw_only=True)
class Lot:
    """One credit of a member and what is left of it at an instant.

    ``points`` is what the credit gave; ``remaining`` what is still in it (for an expired lot:
    what expired). ``activated_at`` is the explicit activation of a pending lot, if any.
    """

    lot_id: str
    member_id: str
    earned_at: datetime
    points: int
    remaining: int
    expires_at: datetime | None
    pending_until: datetime | None
    activated_at: datetime | None
    status: LotStatus


@attrs.frozen(kw_only=True)
class Balance:
    """A member's points at an instant, all derived from the ledger.

    - ``active``: usable now (net of the negative balance, which is paid off first);
    - ``pending``: earned, not yet usable;
    - ``expired``: expired without being used;
    - ``spent``: redeemed, less what refunds gave back;
    - ``negative``: owed by the member (returns under ``ReturnsPolicy.UNLIMITED``);
    - ``lifetime``: earned (EARN and positive ADJUST), less what returns clawed back.
    """

    active: int = 0
    pending: int = 0
    expired: int = 0
    spent: int = 0
    negative: int = 0
    lifetime: int = 0


# --- the working state of a lot (LedgerState's, never stored) ---------------------------------

_NEVER: Final = 2**62
"""The expiry (microseconds) of a lot that never expires: after every supported instant."""


class _Lot:
    """The mutable working state of one lot."""

    __slots__ = (
        "activated_us",
        "earned_us",
        "entry",
        "expire_recorded",
        "expire_written",
        "expires_at",
        "expires_us",
        "lot_id",
        "pending_us",
        "points",
        "queued",
        "remaining",
        "reversed",
        "seq",
    )

    def __init__(
        self,
        lot_id: str,
        seq: int,
        earned_us: int,
        points: int,
        expires_at: datetime | None,
        pending_until: datetime | None,
        expires_us: int | None = None,
    ) -> None:
        self.lot_id = lot_id
        self.seq = seq
        self.earned_us = earned_us
        self.points = points
        self.remaining = points
        self.expires_at = expires_at
        if expires_us is None:
            expires_us = _NEVER if expires_at is None else to_us(expires_at)
        self.expires_us = expires_us
        self.pending_us = None if pending_until is None else to_us(pending_until)
        self.activated_us: int | None = None
        self.expire_recorded = 0
        """The points in the lot whose expiry an EXPIRE entry recorded (a return that takes
        the lot's expired points back takes these first)."""
        self.expire_written = 0
        """The points every EXPIRE entry of the lot recorded (never decreases: the key of
        the next one counts them)."""
        self.reversed = 0
        self.queued = False

    def pending(self, t: int) -> bool:
        p = self.pending_us
        if p is None or t >= p:
            return False
        a = self.activated_us
        return a is None or t < a

    def copy(self) -> _Lot:
        other = _Lot.__new__(_Lot)
        for name in _Lot.__slots__:
            setattr(other, name, getattr(self, name))
        return other


def _soonest(lot: _Lot) -> tuple[int, int]:
    return (lot.expires_us, lot.seq)


def _oldest(lot: _Lot) -> int:
    return lot.seq
