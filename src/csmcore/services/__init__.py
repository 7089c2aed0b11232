"""Use cases that wire the domain to storage (the layer above :mod:`csmcore.storage`).

- :class:`EscalationEngine`: escalation rules run against a store, each firing exactly once
  across crashes and concurrent engines: it is applied in the unit of work that records it
  (see ``docs/escalation.md``, "The engine").
- :mod:`csmcore.services.kpi`: KPIs over a store's tickets, streamed with the condition pushed
  down (:func:`~csmcore.services.kpi.summarize`).
"""

from __future__ import annotations

from csmcore.services._escalation import (
    EngineRun,
    EscalationEngine,
    RequestHandler,
    request_handler,
    request_handlers,
)

__all__ = [
    "EngineRun",
    "EscalationEngine",
    "RequestHandler",
    "request_handler",
    "request_handlers",
]

for _public in (EngineRun, EscalationEngine):
    _public.__module__ = __name__
del _public
