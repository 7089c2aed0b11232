"""Use cases that wire the domain to storage (the layer above :mod:`csmcore.storage`).

- :class:`EscalationEngine`: escalation rules run against a store, each firing exactly once
  across crashes and concurrent engines: it is applied in the unit of work that records it
  (see ``docs/escalation.md``, "The engine").
- :class:`Ledger`: the loyalty ledger service (earn, redeem, refund, return, expire, adjust,
  transfer, balances, ``verify``) over any store offering the ``ledger`` role.
- :mod:`csmcore.services.kpi`: KPIs over a store's tickets, streamed with the condition pushed
  down (:func:`~csmcore.services.kpi.summarize`).
- The loyalty program on a ledger: :func:`earn_points` (a purchase or event, quoted with the
  member's tier and cap usage, posted once per key), :func:`quote_points`, :func:`tier_of`,
  :func:`loyalty_member`, :func:`review_member_tiers`; service recovery: :func:`compensate`.
"""

from __future__ import annotations

from csmcore._boundary import guard_exports
from csmcore.services._escalation import (
    EngineRun,
    EscalationEngine,
    RequestHandler,
    request_handler,
    request_handlers,
)
from csmcore.services._ledger import Ledger

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
    "EngineRun",
    "EscalationEngine",
    "Ledger",
    "RequestHandler",
    "compensate",
    "earn_points",
    "loyalty_member",
    "quote_points",
    "request_handler",
    "request_handlers",
    "review_member_tiers",
    "tier_of",
]

for _public in (EngineRun, EscalationEngine):
    _public.__module__ = __name__
del _public
guard_exports(__name__)  # every export behind the public boundary (csmcore._boundary)
