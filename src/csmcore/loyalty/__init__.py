"""Loyalty points: programs (earn rules, pending and expiry policies, tiers), the ledger, and
service recovery. Pure domain: no I/O, no clock; the services that post to a ledger live in
:mod:`csmcore.services`. See ``docs/loyalty-program.md``.
"""

from __future__ import annotations

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
from csmcore.loyalty._program import Program
from csmcore.loyalty._recovery import RecoveryGrant, RecoveryPolicy, recovery_grants, recovery_key
from csmcore.loyalty._subject import MEMBER_SUBJECT, LoyaltyMember
from csmcore.loyalty._tiers import (
    Downgrade,
    Tier,
    TierBasis,
    TierChange,
    TierPolicy,
    TierStatus,
    review_tiers,
    tier_status,
)

__all__ = [
    "MEMBER_SUBJECT",
    "Activity",
    "AppliedRule",
    "Cap",
    "Downgrade",
    "EarnQuote",
    "EarnRule",
    "EndOfPeriodExpiry",
    "EventRule",
    "ExpiryPolicy",
    "LoyaltyEvent",
    "LoyaltyMember",
    "Multiplier",
    "NeverExpires",
    "PendingPolicy",
    "Period",
    "Program",
    "Purchase",
    "PurchaseLine",
    "RecoveryGrant",
    "RecoveryPolicy",
    "RollingExpiry",
    "Rounding",
    "SpendRule",
    "Stacking",
    "Tier",
    "TierBasis",
    "TierChange",
    "TierPolicy",
    "TierStatus",
    "Window",
    "cap_usage",
    "period_bounds",
    "recovery_grants",
    "recovery_key",
    "review_tiers",
    "tier_status",
]
