"""Loyalty points: an append-only ledger of entries, lots with their own expiry, balances
derived at any instant, and ``verify`` proving the invariants (pure: no I/O, no clock).

The service that writes a ledger through a store is :class:`csmcore.services.Ledger`; this
package holds the values and rules it applies. Points are ``int``, money is ``Decimal``.

>>> from datetime import datetime, timedelta, timezone
>>> state = LedgerState("ann")
>>> jan = datetime(2025, 1, 10, tzinfo=timezone.utc)
>>> earn = state.plan_earn(100, at=jan, key="order-1", expires_at=jan + timedelta(days=365))
>>> state.apply(earn)
>>> redeem = state.plan_redeem(30, at=jan + timedelta(days=1), key="basket-7")
>>> state.apply(redeem)
>>> [(d.lot_id, d.points) for d in redeem.draws]
[('ann#1', 30)]
>>> state.balance()
Balance(active=70, pending=0, expired=0, spent=30, negative=0, lifetime=100)
>>> verify_entries("ann", state.entries).ok
True
"""

from __future__ import annotations

from csmcore.loyalty._entries import (
    EntryKind,
    LedgerEntry,
    LotDraw,
    RedemptionOrder,
    ReturnsPolicy,
    check_points,
    entry_id_of,
    split_entry_id,
)
from csmcore.loyalty._lots import Balance, Lot, LotStatus
from csmcore.loyalty._replay import LedgerState, check_instant, plan_transfer
from csmcore.loyalty._verify import VerifyReport, verify_entries

__all__ = [
    "Balance",
    "EntryKind",
    "LedgerEntry",
    "LedgerState",
    "Lot",
    "LotDraw",
    "LotStatus",
    "RedemptionOrder",
    "ReturnsPolicy",
    "VerifyReport",
    "check_instant",
    "check_points",
    "entry_id_of",
    "plan_transfer",
    "split_entry_id",
    "verify_entries",
]

# --- loyalty-program exports (added by the program helper below this line) -----------------
