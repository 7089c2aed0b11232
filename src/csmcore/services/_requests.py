"""The registry of action request handlers: what the escalation engine does, inside the unit of
work of a firing, with each request an action makes (a notification goes to the outbox; a
points grant to the ledger, declared in ``_recovery``). A new request type plugs in by
declaring its handler once (:func:`request_handler`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from csmcore.errors import ValidationError
from csmcore.escalation import NotificationRequest
from csmcore.storage import OutboxMessage, role_of

__all__ = [
    "NoHandler",
    "RequestHandler",
    "handle",
    "request_handler",
    "request_handlers",
    "unregister_request_handler",
]

RequestHandler = Callable[[Any, Any, datetime], None]
"""``handler(uow, request, now)``: write what an action's request asks for through the roles
of the unit of work ``uow`` that applies the firing (``now`` is the engine run's instant)."""

_handlers: dict[type, RequestHandler] = {}
_lock = threading.Lock()


def request_handler(request_type: type) -> Callable[[RequestHandler], RequestHandler]:
    """Declare the handler of an action request type (a decorator), once, next to the action
    that makes such requests. The engine calls it inside the unit of work of the firing, so
    what it writes commits with the firing record or not at all. A notification
    (:class:`~csmcore.escalation.NotificationRequest`) goes to the outbox; it is declared
    here.

    Declaring another handler for a type that has one raises
    :class:`~csmcore.errors.ValidationError`.
    """
    if not isinstance(request_type, type):
        raise ValidationError(f"request_type={request_type!r} is not a class")

    def register(handler: RequestHandler) -> RequestHandler:
        with _lock:
            found = _handlers.get(request_type)
            if found is not None and found is not handler:
                raise ValidationError(
                    f"the request type {request_type.__qualname__} already has the handler "
                    f"{found.__qualname__}"
                )
            _handlers[request_type] = handler
        return handler

    return register


def unregister_request_handler(request_type: type) -> RequestHandler:
    """Undo :func:`request_handler` for ``request_type`` and return the handler removed (an
    engine then refuses requests of that type until another handler is declared). Meant for
    tests and plugins that declare a handler for a while.

    Raises :class:`~csmcore.errors.ValidationError` for a type that is not a class, has no
    handler (the message names the types that have one) or is built in (csmcore's own
    handlers, of notifications and points grants, cannot be removed).
    """
    if not isinstance(request_type, type):
        raise ValidationError(f"request_type={request_type!r} is not a class")
    with _lock:
        found = _handlers.get(request_type)
        # csmcore's own handlers (notifications, points grants) stay
        if found is not None and not getattr(found, "__module__", "").startswith("csmcore."):
            return _handlers.pop(request_type)
        declared = sorted(t.__qualname__ for t in _handlers)
    if found is not None:
        raise ValidationError(
            f"the request type {request_type.__qualname__} is built in and cannot be "
            f"unregistered; declared: {declared}"
        )
    raise ValidationError(
        f"{request_type.__qualname__} has no request handler; declared: {declared}"
    )


def request_handlers() -> dict[type, RequestHandler]:
    """The declared handlers, by request type."""
    with _lock:
        return dict(_handlers)


@request_handler(NotificationRequest)
def _to_outbox(uow: Any, request: NotificationRequest, now: datetime) -> None:
    role_of(uow, "outbox").put([OutboxMessage.new(request, created_at=now)])


class NoHandler(ValidationError):
    """A request type without a handler: the engine's setup, not one ticket, is wrong."""


def handle(uow: Any, request: object, now: datetime) -> None:
    handler = _handlers.get(type(request))
    if handler is None:
        known = sorted(t.__qualname__ for t in _handlers)
        raise NoHandler(
            f"no request handler for {type(request).__qualname__}; declared: {known} "
            "(see csmcore.services.request_handler)"
        )
    handler(uow, request, now)
