"""Use cases that wire the domain to storage (the layer above :mod:`csmcore.storage`).

- :class:`EscalationEngine`: escalation rules run against a store, each firing exactly once
  across crashes and concurrent engines: it is applied in the unit of work that records it
  (see ``docs/escalation.md``, "The engine").
- :class:`Dispatcher`: the notifications the engine put in the ``outbox`` role, delivered at
  least once through a :class:`Notifier` (built in: :class:`CallableNotifier`,
  :class:`LoggingNotifier`, :class:`SmtpNotifier`), with retries (:class:`Backoff`), dead
  letters and business hours (see ``docs/escalation.md``, "Delivering notifications").
- :class:`Ledger`: the loyalty ledger service (earn, redeem, refund, return, expire, adjust,
  transfer, balances, ``verify``) over any store offering the ``ledger`` role.
- :mod:`csmcore.services.kpi`: KPIs over a store's tickets, streamed with the condition pushed
  down (:func:`~csmcore.services.kpi.summarize`).
- The loyalty program on a ledger: :func:`earn_points` (a purchase or event, quoted with the
  member's tier and cap usage, posted once per key), :func:`activate_points` (pending points
  made active, their expiry counted from then), :func:`return_points` (a return under the
  program's returns policy), :func:`quote_points`, :func:`tier_of`,
  :func:`loyalty_member`, :func:`review_member_tiers`; service recovery: :func:`compensate`,
  and :func:`grant_points` (what the escalation action
  :class:`~csmcore.escalation.GrantPoints` asks for, written in the engine's unit of work).
"""

from __future__ import annotations

from csmcore._boundary import guard_exports
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
    TicketFailure,
)
from csmcore.services._ledger import Ledger
from csmcore.services._notifiers import (
    CallableNotifier,
    EmailTemplate,
    LoggingNotifier,
    SmtpNotifier,
    TemplateError,
    render,
)
from csmcore.services._plan_basis import PLANNER_FORMAT
from csmcore.services._program import (
    UNTIL_ACTIVATED,
    activate_points,
    earn_points,
    loyalty_member,
    quote_points,
    return_points,
    review_member_tiers,
    tier_of,
)
from csmcore.services._recovery import compensate, grant_points
from csmcore.services._requests import (
    RequestHandler,
    request_handler,
    request_handlers,
    unregister_request_handler,
)

__all__ = [
    "PLANNER_FORMAT",
    "UNTIL_ACTIVATED",
    "Backoff",
    "CallableNotifier",
    "DispatchRun",
    "Dispatcher",
    "EmailTemplate",
    "EngineRun",
    "EscalationEngine",
    "Ledger",
    "LoggingNotifier",
    "Notifier",
    "PermanentDeliveryError",
    "RequestHandler",
    "SmtpNotifier",
    "TemplateError",
    "TicketFailure",
    "activate_points",
    "compensate",
    "earn_points",
    "grant_points",
    "loyalty_member",
    "quote_points",
    "render",
    "request_handler",
    "request_handlers",
    "return_points",
    "review_member_tiers",
    "tier_of",
    "unregister_request_handler",
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
    TicketFailure,
):
    _public.__module__ = __name__
del _public
guard_exports(__name__)  # every export behind the public boundary (csmcore._boundary)
