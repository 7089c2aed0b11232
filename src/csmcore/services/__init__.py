"""Use cases that wire the domain to storage (the layer above :mod:`csmcore.storage`).

- :mod:`csmcore.services.kpi`: KPIs over a store's tickets, streamed with the condition pushed
  down (:func:`~csmcore.services.kpi.summarize`).
"""

from __future__ import annotations
