"""Private helpers shared by the adapters: argument checks and the document codec."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.tickets import Ticket, TicketEvent

KINDS = ("calendars", "policies", "rules")
"""The versioned document roles every store has."""


def check_ticket(ticket: object) -> Ticket:
    if not isinstance(ticket, Ticket):
        raise ValidationError(f"ticket={ticket!r} is a {type(ticket).__name__}; expected a Ticket")
    return ticket


def check_id(value: object, argument: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{argument}={value!r} is not a non-empty string")
    return value


def check_version(value: object, argument: str = "expected_version") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{argument}={value!r} is not a whole number >= 0")
    return value


def check_positive(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{argument}={value!r} is not a whole number >= 1")
    return value


def check_limit(value: object) -> int | None:
    if value is None:
        return None
    return check_version(value, "limit")


def check_events(events: object) -> tuple[TicketEvent, ...]:
    if isinstance(events, str | bytes) or not isinstance(events, Sequence):
        raise ValidationError(f"events={events!r} is not a sequence of ticket events")
    if not events:
        raise ValidationError("events=[] is empty; append at least one ticket event")
    return tuple(events)


def check_expected(ticket_id: str, stored: int, expected: int) -> None:
    from csmcore.errors import ConcurrencyError

    if stored != expected:
        raise ConcurrencyError(
            f"ticket {ticket_id!r} is at version {stored}, not the expected_version={expected}; "
            "reload it and apply your change again"
        )


def apply_all(ticket: Ticket, events: Sequence[TicketEvent]) -> Ticket:
    for event in events:
        ticket = ticket.apply(event)
    return ticket


def type_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def encode_document(value: object) -> dict[str, Any]:
    """``{"type": "module:Class", "data": ...}``: JSON-safe, rebuilt by :func:`decode_document`."""
    cls = type(value)
    if not cls.__module__.startswith("csmcore."):
        raise ValidationError(
            f"value={value!r} is a {type_name(cls)}; stores keep csmcore domain objects "
            "(BusinessCalendar, SLA policies, escalation rules)"
        )
    return {"type": type_name(cls), "data": to_data(value)}


def decode_document(doc: Any) -> Any:
    if not isinstance(doc, dict) or set(doc) != {"type", "data"}:
        raise SerializationError(f"stored document {doc!r} is not {{'type': ..., 'data': ...}}")
    name = doc["type"]
    module_name, _, qualname = str(name).partition(":")
    if not module_name.startswith("csmcore.") or not qualname:
        raise SerializationError(f"stored document type {name!r} is not a csmcore type")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise SerializationError(
            f"stored document type {name!r} does not exist in this csmcore"
        ) from err
    return from_data(doc["data"], obj)
