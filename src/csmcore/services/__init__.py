"""Use cases that wire the pure domain to storage.

:class:`EscalationEngine` runs escalation rules against a store durably: each firing is
applied in the unit of work that records it, so it happens exactly once across crashes and
concurrent engines (see ``docs/escalation.md``, "The engine"). Its notifications wait in the
``outbox`` role; a :class:`Dispatcher` delivers them at least once through a
:class:`Notifier` (built in: :class:`CallableNotifier`, :class:`LoggingNotifier`,
:class:`SmtpNotifier`), with retries (:class:`Backoff`), dead letters and business hours
(see ``docs/escalation.md``, "Delivering notifications").
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
