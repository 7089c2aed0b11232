"""Use cases that wire the domain to storage (the layer above :mod:`csmcore.storage`).

- :class:`EscalationEngine`: escalation rules run against a store, each firing exactly once
  across crashes and concurrent engines: it is applied in the unit of work that records it
  (see ``docs/escalation.md``, "The engine").
- :class:`Dispatcher`: the notifications the engine put in the ``outbox`` role, delivered at
  least once through a :class:`Notifier` (built in: :class:`CallableNotifier`,
  :class:`LoggingNotifier`, :class:`SmtpNotifier`), with retries (:class:`Backoff`), dead
  letters and business hours (see ``docs/escalation.md``, "Delivering notifications").
- :mod:`csmcore.services.kpi`: KPIs over a store's tickets, streamed with the condition pushed
  down (:func:`~csmcore.services.kpi.summarize`).
"""

from __future__ import annotations

from csmcore.services._delivery import (
    Backoff,
    Dispatcher,
    DispatchRun,
    Notifier,
    PermanentDeliveryError,
)
from csmcore.services._escalation import (
    EngineRun,
    EscalationEngine,
    RequestHandler,
    request_handler,
    request_handlers,
)
from csmcore.services._notifiers import (
    CallableNotifier,
    EmailTemplate,
    LoggingNotifier,
    SmtpNotifier,
    TemplateError,
    render,
)

__all__ = [
    "Backoff",
    "CallableNotifier",
    "DispatchRun",
    "Dispatcher",
    "EmailTemplate",
    "EngineRun",
    "EscalationEngine",
    "LoggingNotifier",
    "Notifier",
    "PermanentDeliveryError",
    "RequestHandler",
    "SmtpNotifier",
    "TemplateError",
    "render",
    "request_handler",
    "request_handlers",
]

for _public in (
    Backoff,
    CallableNotifier,
    DispatchRun,
    Dispatcher,
    EmailTemplate,
    EngineRun,
    EscalationEngine,
    LoggingNotifier,
    Notifier,
    PermanentDeliveryError,
    SmtpNotifier,
    TemplateError,
):
    _public.__module__ = __name__
del _public
