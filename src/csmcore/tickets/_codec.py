"""The ticket codecs: tickets, status maps and the enums on the shared converter, and the public
event codec (:func:`event_to_data` / :func:`event_from_data`) that storage uses for each row.

Each event type's own hooks are registered by its ``@event_type`` declaration.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from operator import attrgetter
from typing import Any, TypeVar

from csmcore._values import check_keys
from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import converter
from csmcore.tickets._declare import (
    TicketEventBase,
    event_from_data,
    event_to_data,
    fast_event_from_data,
    reference_event_from_data,
    reference_event_to_data,
)
from csmcore.tickets._enums import Channel, Priority, Role, Status, coerce
from csmcore.tickets._events import TicketEvent
from csmcore.tickets._status_map import StatusMap
from csmcore.tickets._ticket import Ticket

__all__ = [
    "event_from_data",
    "event_to_data",
    "fast_event_from_data",
    "reference_event_from_data",
    "reference_event_to_data",
]

_E = TypeVar("_E", bound=enum.Enum)


def _unstructure_ticket(ticket: Ticket) -> dict[str, Any]:
    return {"id": ticket.id, "events": [event_to_data(e) for e in ticket.events]}


def _structure_ticket(data: Any, _: Any) -> Ticket:
    if not isinstance(data, Mapping):
        raise SerializationError(f"$: {data!r} is not a mapping with 'id' and 'events'")
    check_keys(data, ("id", "events"), ("id", "events"))
    raw = data["events"]
    if not isinstance(raw, list):
        raise SerializationError(f"$.events: {raw!r} is not a list of events")
    events = tuple(event_from_data(item, f"$.events[{i}]") for i, item in enumerate(raw))
    try:
        return Ticket(id=data["id"], events=events)
    except ValidationError as err:
        raise SerializationError(f"$: {err}") from err


def _unstructure_status_map(value: StatusMap) -> dict[str, str]:
    return {name: status.value for name, status in value.custom.items()}


def _structure_status_map(data: Any, _: Any) -> StatusMap:
    if not isinstance(data, Mapping):
        raise SerializationError(f"$: {data!r} is not a mapping of custom status name to category")
    try:
        return StatusMap(custom=data)
    except ValidationError as err:
        raise SerializationError(f"$: {err}") from err


def _is_event_type(cls: Any) -> bool:
    return cls is TicketEventBase or cls == TicketEvent


def _structure_any_event(data: Any, _: Any) -> TicketEventBase:
    return event_from_data(data, "$")


def _structure_enum(cls: type[_E]) -> Any:
    def structure(value: Any, _: Any) -> _E:
        try:
            return coerce(cls, value, cls.__name__.lower())
        except ValidationError as err:
            raise SerializationError(f"$: {err}") from err

    return structure


converter.register_unstructure_hook(TicketEventBase, event_to_data)
converter.register_structure_hook_func(_is_event_type, _structure_any_event)
converter.register_unstructure_hook(Ticket, _unstructure_ticket)
converter.register_structure_hook(Ticket, _structure_ticket)
converter.register_unstructure_hook(StatusMap, _unstructure_status_map)
converter.register_structure_hook(StatusMap, _structure_status_map)
for _enum_cls in (Status, Priority, Channel, Role):
    converter.register_unstructure_hook(_enum_cls, attrgetter("value"))
    converter.register_structure_hook(_enum_cls, _structure_enum(_enum_cls))
del _enum_cls
