"""Use cases that wire the domain and storage together.

- :class:`Ledger`: the loyalty ledger service (earn, redeem, refund, return, expire, adjust,
  transfer, balances, ``verify``) over any store offering the ``ledger`` role.
"""

from __future__ import annotations

from csmcore.services._ledger import Ledger

__all__ = ["Ledger"]
