"""Building blocks for storage adapters: the argument checks and messages every store shares,
and the codec for versioned documents.

Using them keeps a new adapter's errors identical to the built-in ones, which the conformance
suite (:mod:`csmcore.testing.storage_suite`) checks. Each ``check_*`` returns its argument when it
is acceptable and raises :class:`~csmcore.errors.ValidationError` naming it otherwise.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from csmcore.conditions import Condition
from csmcore.errors import ConcurrencyError, SerializationError, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.tickets import Ticket, TicketEvent

KINDS = ("calendars", "policies", "rules")
"""The versioned document roles every store has."""


__all__ = [
    "KINDS",
    "apply_all",
    "check_condition",
    "check_events",
    "check_expected",
    "check_id",
    "check_limit",
    "check_positive",
    "check_ticket",
    "check_version",
    "decode_document",
    "encode_document",
]


def check_ticket(ticket: object) -> Ticket:
    """A :class:`~csmcore.tickets.Ticket`, else ValidationError."""
    if not isinstance(ticket, Ticket):
        raise ValidationError(f"ticket={ticket!r} is a {type(ticket).__name__}; expected a Ticket")
    return ticket


def check_condition(condition: object) -> Condition:
    """A :class:`~csmcore.conditions.Condition`, else ValidationError naming what was given."""
    if not isinstance(condition, Condition):
        raise ValidationError(
            f"condition={condition!r} is a {type(condition).__name__}; expected a "
            "csmcore.conditions.Condition (e.g. Field('priority') == 'high', or Always())"
        )
    return condition


def check_id(value: object, argument: str) -> str:
    """A non-empty string (a ticket id or a document key), else ValidationError."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{argument}={value!r} is not a non-empty string")
    return value


def check_version(value: object, argument: str = "expected_version") -> int:
    """A whole number >= 0 (not a bool), else ValidationError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{argument}={value!r} is not a whole number >= 0")
    return value


def check_positive(value: object, argument: str) -> int:
    """A whole number >= 1 (not a bool), else ValidationError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{argument}={value!r} is not a whole number >= 1")
    return value


def check_limit(value: object) -> int | None:
    """None or a whole number >= 0, else ValidationError."""
    if value is None:
        return None
    return check_version(value, "limit")


def check_events(events: object) -> tuple[TicketEvent, ...]:
    """A non-empty sequence of events (not a string), as a tuple, else ValidationError."""
    if isinstance(events, str | bytes) or not isinstance(events, Sequence):
        raise ValidationError(f"events={events!r} is not a sequence of ticket events")
    if not events:
        raise ValidationError("events=[] is empty; append at least one ticket event")
    return tuple(events)


def check_expected(ticket_id: str, stored: int, expected: int) -> None:
    """Raise :class:`~csmcore.errors.ConcurrencyError` when ``stored != expected``."""
    if stored != expected:
        raise ConcurrencyError(
            f"ticket {ticket_id!r} is at version {stored}, not the expected_version={expected}; "
            "reload it and apply your change again"
        )


def apply_all(ticket: Ticket, events: Sequence[TicketEvent]) -> Ticket:
    """``ticket`` after every event; :class:`~csmcore.errors.InvalidTransition` if one may not
    follow."""
    for event in events:
        ticket = ticket.apply(event)
    return ticket


def _type_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def encode_document(value: object) -> dict[str, Any]:
    """``{"type": "module:Class", "data": ...}``: JSON-safe, rebuilt by :func:`decode_document`."""
    cls = type(value)
    if not cls.__module__.startswith("csmcore."):
        raise ValidationError(
            f"value={value!r} is a {_type_name(cls)}; stores keep csmcore domain objects "
            "(BusinessCalendar, SLA policies, escalation rules)"
        )
    return {"type": _type_name(cls), "data": to_data(value)}


def decode_document(doc: Any) -> Any:
    """The object :func:`encode_document` encoded; SerializationError for malformed data or a
    type that is not part of this csmcore."""
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
