"""Use cases that wire the pure domain to storage.

:class:`EscalationEngine` runs escalation rules against a store durably: each firing is
applied in the unit of work that records it, so it happens exactly once across crashes and
concurrent engines (see ``docs/escalation.md``, "The engine").
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
