"""Derived values: a lot and a member's balance at an instant (never stored, always replayed)."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

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
