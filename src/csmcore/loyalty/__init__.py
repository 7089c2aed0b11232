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

The program (earn rules, pending and expiry policies, tiers, the loyalty member subject,
service recovery) is described in ``docs/loyalty-program.md``; the services applying it to a
ledger are :func:`csmcore.services.earn_points`, :func:`csmcore.services.compensate` and
their neighbours.
"""

from __future__ import annotations

from csmcore._boundary import guard_exports

# -- the program (loyalty-program helper) ---------------------------------------------------
from csmcore.loyalty._earn import (
    Activity,
    AppliedRule,
    Cap,
    EarnQuote,
    EarnRule,
    EventRule,
    LoyaltyEvent,
    Multiplier,
    Purchase,
    PurchaseLine,
    SpendRule,
    Stacking,
    Window,
    cap_usage,
)
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
from csmcore.loyalty._expiry import (
    EndOfPeriodExpiry,
    ExpiryPolicy,
    NeverExpires,
    PendingPolicy,
    Period,
    RollingExpiry,
    Rounding,
    period_bounds,
)
from csmcore.loyalty._lots import Balance, Lot, LotStatus
from csmcore.loyalty._program import Program
from csmcore.loyalty._recovery import RecoveryGrant, RecoveryPolicy, recovery_grants, recovery_key
from csmcore.loyalty._replay import LedgerState, check_instant, plan_transfer
from csmcore.loyalty._subject import MEMBER_SUBJECT, LoyaltyMember
from csmcore.loyalty._tiers import (
    Downgrade,
    QualifyWhen,
    Tier,
    TierBasis,
    TierChange,
    TierPolicy,
    TierStatus,
    review_tiers,
    tier_status,
)
from csmcore.loyalty._timeline import MemberTimeline
from csmcore.loyalty._verify import VerifyReport, verify_entries

__all__ = [
    "MEMBER_SUBJECT",
    "Activity",
    "AppliedRule",
    "Balance",
    "Cap",
    "Downgrade",
    "EarnQuote",
    "EarnRule",
    "EndOfPeriodExpiry",
    "EntryKind",
    "EventRule",
    "ExpiryPolicy",
    "LedgerEntry",
    "LedgerState",
    "Lot",
    "LotDraw",
    "LotStatus",
    "LoyaltyEvent",
    "LoyaltyMember",
    "MemberTimeline",
    "Multiplier",
    "NeverExpires",
    "PendingPolicy",
    "Period",
    "Program",
    "Purchase",
    "PurchaseLine",
    "QualifyWhen",
    "RecoveryGrant",
    "RecoveryPolicy",
    "RedemptionOrder",
    "ReturnsPolicy",
    "RollingExpiry",
    "Rounding",
    "SpendRule",
    "Stacking",
    "Tier",
    "TierBasis",
    "TierChange",
    "TierPolicy",
    "TierStatus",
    "VerifyReport",
    "Window",
    "cap_usage",
    "check_instant",
    "check_points",
    "entry_id_of",
    "period_bounds",
    "plan_transfer",
    "recovery_grants",
    "recovery_key",
    "review_tiers",
    "split_entry_id",
    "tier_status",
    "verify_entries",
]

guard_exports(__name__)  # every export behind the public boundary (csmcore._boundary)
