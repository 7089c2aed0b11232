"""Fast codecs of the built-in ticket events, declared through their ``@event_type``.

Storage encodes and decodes every event it writes or reads, so these run for each row. The
encoders are dict literals per event class (no per-field type tests); ``event_to_data`` appends
``"schema"``. The decoders are only given data at the current schema version (``event_from_data``
upcasts older data first), which may hold ``"schema"``; they ignore it. The decoders check each
value with the same rules as the event's converters and validators, then fill the frozen
instance directly; anything they do not recognise at once (a missing or unknown key, a value of
an unexpected type, an instant not in UTC, a value a validator would refuse) raises
:class:`~csmcore.tickets._declare.Unusual` (or KeyError, TypeError, ValueError), and the whole
mapping goes to the reference decoder, which either builds the event the slow way or raises the
SerializationError naming the path. So the fast decoders never accept what the reference
decoder refuses; tests/tickets/test_codec.py checks both against each other.

The decoders take the event class as an argument, so this module does not import the events.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from csmcore._time import to_us
from csmcore._values import MAX_IDENTIFIER_LENGTH, text_problem
from csmcore.tickets._declare import TicketEventBase, Unusual, event_spec
from csmcore.tickets._enums import PRIORITY_VALUES, STATUS_VALUES, Channel, Priority, Role, Status
from csmcore.tickets._values import (
    EMPTY_FIELDS,
    UTC,
    FieldValue,
    FrozenMap,
    field_map,
    fields_from_data,
    fields_to_data,
    tag_set,
)

if TYPE_CHECKING:
    from csmcore.tickets._events import (
        Assigned,
        Commented,
        FieldsChanged,
        Merged,
        PriorityChanged,
        Reopened,
        RequesterChanged,
        StatusChanged,
        TagsChanged,
        TicketCreated,
    )

__all__ = [
    "REOPEN_TARGETS",
    "assigned_from_data",
    "assigned_to_data",
    "commented_from_data",
    "commented_to_data",
    "created_from_data",
    "created_to_data",
    "fields_changed_from_data",
    "fields_changed_to_data",
    "merged_from_data",
    "merged_to_data",
    "priority_changed_from_data",
    "priority_changed_to_data",
    "reopened_from_data",
    "reopened_to_data",
    "requester_changed_from_data",
    "requester_changed_to_data",
    "status_changed_from_data",
    "status_changed_to_data",
    "tags_changed_from_data",
    "tags_changed_to_data",
]

REOPEN_TARGETS: Final = frozenset({Status.OPEN, Status.PENDING, Status.ON_HOLD})
"""The statuses a ticket can be reopened to."""

_ST_NEW: Final = Status.NEW
_ST_OPEN: Final = Status.OPEN
_ROLE_REQUESTER: Final = Role.REQUESTER

# -- encoders --------------------------------------------------------------------------------


def created_to_data(e: TicketCreated) -> dict[str, Any]:
    return {
        "type": "ticket.created",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "ticket_id": e.ticket_id,
        "created_by": e.created_by._value_,
        "channel": e.channel._value_,
        "priority": e.priority._value_,
        "requester": e.requester,
        "subject": e.subject,
        "group": e.group,
        "assignee": e.assignee,
        "status": e.status._value_,
        "status_name": e.status_name,
        "tags": sorted(e.tags),
        "fields": fields_to_data(e.fields),
        "priority_name": e.priority_name,
    }


def status_changed_to_data(e: StatusChanged) -> dict[str, Any]:
    return {
        "type": "ticket.status_changed",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "status": e.status._value_,
        "status_name": e.status_name,
    }


def priority_changed_to_data(e: PriorityChanged) -> dict[str, Any]:
    return {
        "type": "ticket.priority_changed",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "priority": e.priority._value_,
        "priority_name": e.priority_name,
    }


def assigned_to_data(e: Assigned) -> dict[str, Any]:
    return {
        "type": "ticket.assigned",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "assignee": e.assignee,
        "group": e.group,
    }


def commented_to_data(e: Commented) -> dict[str, Any]:
    return {
        "type": "ticket.commented",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "author_role": e.author_role._value_,
        "public": e.public,
        "author": e.author,
        "on_behalf_of_requester": e.on_behalf_of_requester,
    }


def tags_changed_to_data(e: TagsChanged) -> dict[str, Any]:
    return {
        "type": "ticket.tags_changed",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "added": sorted(e.added),
        "removed": sorted(e.removed),
    }


def fields_changed_to_data(e: FieldsChanged) -> dict[str, Any]:
    return {
        "type": "ticket.fields_changed",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "changes": fields_to_data(e.changes),
    }


def merged_to_data(e: Merged) -> dict[str, Any]:
    return {"type": "ticket.merged", "at": e.at.isoformat(), "actor": e.actor, "into": e.into}


def reopened_to_data(e: Reopened) -> dict[str, Any]:
    return {
        "type": "ticket.reopened",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "status": e.status._value_,
        "status_name": e.status_name,
    }


def requester_changed_to_data(e: RequesterChanged) -> dict[str, Any]:
    return {
        "type": "ticket.requester_changed",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "requester": e.requester,
    }


# -- decoders --------------------------------------------------------------------------------

_ROLE_OF: Final[dict[str, Role]] = {m.value: m for m in Role}
_CHANNEL_OF: Final[dict[str, Channel]] = {m.value: m for m in Channel}
_PRIORITY_OF: Final[dict[str, Priority]] = {m.value: m for m in Priority}
_STATUS_OF: Final[dict[str, Status]] = {m.value: m for m in Status}
_Ev = TypeVar("_Ev", bound=TicketEventBase)
_new = object.__new__
_set = object.__setattr__
_KEYS: dict[type, frozenset[str]] = {}


def _keys_of(cls: type) -> frozenset[str]:
    keys = _KEYS.get(cls)
    if keys is None:
        keys = _KEYS[cls] = event_spec(cls).keys
    return keys


def _fast_at(data: dict[str, Any]) -> datetime:
    at = datetime.fromisoformat(data["at"])
    if at.tzinfo is not UTC:  # another offset (or none): the reference converts or refuses it
        raise Unusual
    return at


def _storable(value: str) -> bool:
    """``check_text`` would accept ``value`` (cheap for the usual ASCII text)."""
    if value.isascii():
        return "\x00" not in value
    return text_problem(value) is None


def _fast_opt_text(value: Any) -> Any:
    if value is None or (type(value) is str and value and _storable(value)):
        return value
    raise Unusual


def _fast_text(value: Any) -> Any:
    if type(value) is str and value and _storable(value):
        return value
    raise Unusual


def _fast_identifier(value: Any) -> Any:
    if type(value) is str and value and len(value) <= MAX_IDENTIFIER_LENGTH and _storable(value):
        return value
    raise Unusual


def _fast_status_name(value: Any, status: Status) -> Any:
    if value is None:
        return None
    if type(value) is not str or not value or not _storable(value):
        raise Unusual
    if value in STATUS_VALUES and value != status._value_:
        raise Unusual
    return value


def _fast_priority_name(value: Any, priority: Priority) -> Any:
    if value is None:
        return None
    if type(value) is not str or not value or not _storable(value):
        raise Unusual
    if value in PRIORITY_VALUES and value != priority._value_:
        raise Unusual
    return value


def _fast_tags(data: dict[str, Any], key: str) -> frozenset[str]:
    value = data.get(key)
    if value is None and key not in data:
        return frozenset()
    if type(value) is not list:
        raise Unusual
    return tag_set(value, key)


def _fast_fields(value: Any, argument: str) -> FrozenMap[str, FieldValue]:
    if type(value) is not dict:
        raise Unusual
    return field_map(fields_from_data(value, argument), argument)


def _base(cls: type[_Ev], data: dict[str, Any]) -> _Ev:
    if not data.keys() <= (_KEYS.get(cls) or _keys_of(cls)):
        raise Unusual
    event = _new(cls)
    at = _fast_at(data)
    _set(event, "at", at)
    _set(event, "_at_us", to_us(at))
    _set(event, "actor", _fast_opt_text(data.get("actor")))
    return event


def created_from_data(cls: type[TicketCreated], data: dict[str, Any]) -> TicketCreated:
    e = _base(cls, data)
    status = _STATUS_OF[data["status"]] if "status" in data else _ST_NEW
    _set(e, "ticket_id", _fast_identifier(data["ticket_id"]))
    _set(e, "created_by", _ROLE_OF[data["created_by"]])
    _set(e, "channel", _CHANNEL_OF[data["channel"]])
    priority = _PRIORITY_OF[data["priority"]]
    _set(e, "priority", priority)
    _set(e, "priority_name", _fast_priority_name(data.get("priority_name"), priority))
    _set(e, "requester", _fast_text(data["requester"]))
    subject = data.get("subject", "")
    if type(subject) is not str or not _storable(subject):
        raise Unusual
    _set(e, "subject", subject)
    _set(e, "group", _fast_opt_text(data.get("group")))
    _set(e, "assignee", _fast_opt_text(data.get("assignee")))
    _set(e, "status", status)
    _set(e, "status_name", _fast_status_name(data.get("status_name"), status))
    _set(e, "tags", _fast_tags(data, "tags"))
    fields = data.get("fields")
    if fields is None and "fields" not in data:
        _set(e, "fields", EMPTY_FIELDS)
    else:
        _set(e, "fields", _fast_fields(fields, "fields"))
    return e


def status_changed_from_data(cls: type[StatusChanged], data: dict[str, Any]) -> StatusChanged:
    e = _base(cls, data)
    status = _STATUS_OF[data["status"]]
    _set(e, "status", status)
    _set(e, "status_name", _fast_status_name(data.get("status_name"), status))
    return e


def priority_changed_from_data(cls: type[PriorityChanged], data: dict[str, Any]) -> PriorityChanged:
    e = _base(cls, data)
    priority = _PRIORITY_OF[data["priority"]]
    _set(e, "priority", priority)
    _set(e, "priority_name", _fast_priority_name(data.get("priority_name"), priority))
    return e


def assigned_from_data(cls: type[Assigned], data: dict[str, Any]) -> Assigned:
    e = _base(cls, data)
    _set(e, "assignee", _fast_opt_text(data["assignee"]))
    _set(e, "group", _fast_opt_text(data["group"]))
    return e


def commented_from_data(cls: type[Commented], data: dict[str, Any]) -> Commented:
    e = _base(cls, data)
    role = _ROLE_OF[data["author_role"]]
    public = data.get("public", True)
    on_behalf = data.get("on_behalf_of_requester", False)
    if type(public) is not bool or type(on_behalf) is not bool:
        raise Unusual
    if on_behalf and role is _ROLE_REQUESTER:
        raise Unusual
    _set(e, "author_role", role)
    _set(e, "public", public)
    _set(e, "author", _fast_opt_text(data.get("author")))
    _set(e, "on_behalf_of_requester", on_behalf)
    return e


def tags_changed_from_data(cls: type[TagsChanged], data: dict[str, Any]) -> TagsChanged:
    e = _base(cls, data)
    added = _fast_tags(data, "added")
    removed = _fast_tags(data, "removed")
    if added & removed:
        raise Unusual
    _set(e, "added", added)
    _set(e, "removed", removed)
    return e


def fields_changed_from_data(cls: type[FieldsChanged], data: dict[str, Any]) -> FieldsChanged:
    e = _base(cls, data)
    _set(e, "changes", _fast_fields(data["changes"], "changes"))
    return e


def merged_from_data(cls: type[Merged], data: dict[str, Any]) -> Merged:
    e = _base(cls, data)
    _set(e, "into", _fast_identifier(data["into"]))
    return e


def reopened_from_data(cls: type[Reopened], data: dict[str, Any]) -> Reopened:
    e = _base(cls, data)
    status = _STATUS_OF[data["status"]] if "status" in data else _ST_OPEN
    if status not in REOPEN_TARGETS:
        raise Unusual
    _set(e, "status", status)
    _set(e, "status_name", _fast_status_name(data.get("status_name"), status))
    return e


def requester_changed_from_data(
    cls: type[RequesterChanged], data: dict[str, Any]
) -> RequesterChanged:
    e = _base(cls, data)
    _set(e, "requester", _fast_text(data["requester"]))
    return e
