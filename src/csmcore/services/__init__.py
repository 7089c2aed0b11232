"""Use cases that wire the domain to storage (the layer above :mod:`csmcore.storage`).

- :class:`Ledger`: the loyalty ledger service (earn, redeem, refund, return, expire, adjust,
  transfer, balances, ``verify``) over any store offering the ``ledger`` role.
- :mod:`csmcore.services.kpi`: KPIs over a store's tickets, streamed with the condition pushed
  down (:func:`~csmcore.services.kpi.summarize`).
"""

from __future__ import annotations

from csmcore.services._ledger import Ledger

__all__ = ["Ledger"]
