"""Use cases that wire the domain to storage: post loyalty points, compensate SLA breaches.

The program services take a ``Ledger`` (see :mod:`csmcore.loyalty` and ``docs/loyalty.md``).
"""

from __future__ import annotations

# -- the loyalty program (loyalty-program helper) -------------------------------------------
from csmcore.services._program import (
    UNTIL_ACTIVATED,
    earn_points,
    loyalty_member,
    quote_points,
    review_member_tiers,
    tier_of,
)
from csmcore.services._recovery import compensate

__all__ = [
    "UNTIL_ACTIVATED",
    "compensate",
    "earn_points",
    "loyalty_member",
    "quote_points",
    "review_member_tiers",
    "tier_of",
]
