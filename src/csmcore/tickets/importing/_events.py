"""The importers' fast path for building ticket events.

An import builds a handful of events per ticket from cell texts that repeat across rows (actors,
groups, state names, field values), and each event's constructor checks each of them again.
:class:`EventMaker` builds exactly the events the constructors build (equal, with the same
cached ``_at_us`` instant and the same "plain fields" flag, which only speeds up encoding), by
the same rules, but remembers the texts it has already found storable. A value outside the plain
case (anything but an aware datetime in ``timezone.utc``, enum members, non-empty storable text,
``str``/``bool``/``None`` field values) is handed to the event's public constructor, which checks
it fully and raises the error it always raises. ``tests/tickets/test_import_fast.py`` compares
both for random values.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Final

from csmcore._values import MAX_IDENTIFIER_LENGTH, text_problem
from csmcore.tickets import (
    Assigned,
    Channel,
    FieldsChanged,
    FrozenMap,
    Priority,
    PriorityChanged,
    RequesterChanged,
    Role,
    Status,
    StatusChanged,
    TicketCreated,
)

__all__ = ["PRIORITY_VALUES", "STATUS_VALUES", "EventMaker"]

_UTC: Final = timezone.utc
_new = object.__new__
_set = object.__setattr__
STATUS_VALUES: Final = frozenset(member.value for member in Status)
"""The category values a custom status name may not take unless it is its own category's."""
PRIORITY_VALUES: Final = frozenset(member.value for member in Priority)
"""Likewise for custom priority names."""
_MAX_TEXTS: Final = 65_536
_PLAIN_FIELD_KINDS: Final = frozenset({str, bool, type(None)})


class EventMaker:
    """Builds events through the constructors' rules, checking each distinct text once.

    Memory: at most 65,536 remembered texts (the set is emptied when full). One maker per import
    run; it holds no state about tickets.
    """

    __slots__ = ("_texts", "_values")

    def __init__(self) -> None:
        self._texts: set[str] = set()
        # Plain field values known good: text (empty included), True, False, None.
        self._values: set[str | bool | None] = {True, False, None}

    def _known(self, value: object) -> bool:
        """True when ``value`` is non-empty text that every store can keep (``check_text``'s
        rule), remembering it; False for anything else (the constructor then decides)."""
        if type(value) is not str or not value:
            return False
        texts = self._texts
        if value in texts:
            return True
        if value.isascii():
            if "\x00" in value:
                return False
        elif text_problem(value) is not None:
            return False
        if len(texts) >= _MAX_TEXTS:
            texts.clear()
        texts.add(value)
        return True

    def _optional(self, value: object) -> bool:
        return value is None or self._known(value)

    def _name_ok(self, name: str | None, category: str, values: frozenset[str]) -> bool:
        """A custom status or priority name as its validator accepts it (None, or storable
        text that is not the value of another category)."""
        if name is None:
            return True
        return self._known(name) and (name not in values or name == category)

    def _fields(self, value: Mapping[str, Any]) -> FrozenMap[str, Any] | None:
        """The checked, name-sorted map of plain field values (text, bool, None), or None when
        something else is there."""
        texts, good = self._texts, self._values
        try:
            names = sorted(value)
            values = [value[name] for name in names]
            # Names and values seen before are checked in C; only new ones one by one.
            if not texts.issuperset(names) and not all(map(self._known, names)):
                return None
            if not set(map(type, values)) <= _PLAIN_FIELD_KINDS:
                return None
            if not good.issuperset(values):
                for item in values:
                    # Field values may be empty text (unlike names), as check_field_value says.
                    if type(item) is str and item and not self._known(item):
                        return None
                    if len(good) >= _MAX_TEXTS:
                        good.clear()
                        good.update((True, False, None))
                    good.add(item)
        except TypeError:  # names of mixed types, or unhashable: the constructor decides
            return None
        fields: FrozenMap[str, Any] = FrozenMap(zip(names, values, strict=True))
        fields._plain = True  # no datetime or Decimal: as field_map marks it
        return fields

    def _base(self, cls: type[Any], at: object, actor: object) -> Any:
        """A new event of ``cls`` with ``at`` and ``actor`` set, or None outside the plain case."""
        if type(at) is not datetime or at.tzinfo is not _UTC:
            return None
        if (
            actor is not None
            and not (type(actor) is str and actor in self._texts)
            and not self._known(actor)
        ):
            return None
        event = _new(cls)
        _set(event, "at", at)
        _set(event, "actor", actor)
        return event

    def created(
        self,
        *,
        at: datetime,
        actor: str | None,
        ticket_id: str,
        created_by: Role,
        channel: Channel,
        priority: Priority,
        priority_name: str | None,
        requester: str,
        group: str | None,
        assignee: str | None,
        status: Status,
        status_name: str | None,
        fields: Mapping[str, Any],
    ) -> TicketCreated:
        """``TicketCreated(...)`` with these arguments (no subject, no tags)."""
        event = self._base(TicketCreated, at, actor)
        checked = None
        if (
            event is not None
            and type(ticket_id) is str
            and 0 < len(ticket_id) <= MAX_IDENTIFIER_LENGTH
            and (ticket_id.isascii() and "\x00" not in ticket_id)
            and type(created_by) is Role
            and type(channel) is Channel
            and type(priority) is Priority
            and type(status) is Status
            and self._known(requester)
            and self._optional(group)
            and self._optional(assignee)
            and self._name_ok(status_name, status.value, STATUS_VALUES)
            and self._name_ok(priority_name, priority.value, PRIORITY_VALUES)
            and type(fields) is dict
        ):
            checked = self._fields(fields)
        if checked is None:
            return TicketCreated(
                at=at,
                actor=actor,
                ticket_id=ticket_id,
                created_by=created_by,
                channel=channel,
                priority=priority,
                priority_name=priority_name,
                requester=requester,
                group=group,
                assignee=assignee,
                status=status,
                status_name=status_name,
                fields=fields,
            )
        _set(event, "ticket_id", ticket_id)
        _set(event, "created_by", created_by)
        _set(event, "channel", channel)
        _set(event, "priority", priority)
        _set(event, "priority_name", priority_name)
        _set(event, "requester", requester)
        _set(event, "subject", "")
        _set(event, "group", group)
        _set(event, "assignee", assignee)
        _set(event, "status", status)
        _set(event, "status_name", status_name)
        _set(event, "tags", frozenset())
        _set(event, "fields", checked)
        event.__attrs_post_init__()
        return event  # type: ignore[no-any-return]

    def status_changed(
        self, at: datetime, actor: str | None, status: Status, status_name: str | None
    ) -> StatusChanged:
        """``StatusChanged(at=, actor=, status=, status_name=)``."""
        event = self._base(StatusChanged, at, actor)
        if (
            event is None
            or type(status) is not Status
            or not self._name_ok(status_name, status.value, STATUS_VALUES)
        ):
            return StatusChanged(at=at, actor=actor, status=status, status_name=status_name)
        _set(event, "status", status)
        _set(event, "status_name", status_name)
        event.__attrs_post_init__()
        return event  # type: ignore[no-any-return]

    def priority_changed(
        self, at: datetime, actor: str | None, priority: Priority, priority_name: str | None
    ) -> PriorityChanged:
        """``PriorityChanged(at=, actor=, priority=, priority_name=)``."""
        event = self._base(PriorityChanged, at, actor)
        if (
            event is None
            or type(priority) is not Priority
            or not self._name_ok(priority_name, priority.value, PRIORITY_VALUES)
        ):
            return PriorityChanged(
                at=at, actor=actor, priority=priority, priority_name=priority_name
            )
        _set(event, "priority", priority)
        _set(event, "priority_name", priority_name)
        event.__attrs_post_init__()
        return event  # type: ignore[no-any-return]

    def assigned(
        self, at: datetime, actor: str | None, group: str | None, assignee: str | None
    ) -> Assigned:
        """``Assigned(at=, actor=, group=, assignee=)``."""
        event = self._base(Assigned, at, actor)
        if event is None or not self._optional(group) or not self._optional(assignee):
            return Assigned(at=at, actor=actor, group=group, assignee=assignee)
        _set(event, "group", group)
        _set(event, "assignee", assignee)
        event.__attrs_post_init__()
        return event  # type: ignore[no-any-return]

    def requester_changed(
        self, at: datetime, actor: str | None, requester: str
    ) -> RequesterChanged:
        """``RequesterChanged(at=, actor=, requester=)``."""
        event = self._base(RequesterChanged, at, actor)
        if event is None or not self._known(requester):
            return RequesterChanged(at=at, actor=actor, requester=requester)
        _set(event, "requester", requester)
        event.__attrs_post_init__()
        return event  # type: ignore[no-any-return]

    def fields_changed(
        self, at: datetime, actor: str | None, changes: Mapping[str, Any]
    ) -> FieldsChanged:
        """``FieldsChanged(at=, actor=, changes=)``."""
        event = self._base(FieldsChanged, at, actor)
        checked = None if event is None or type(changes) is not dict else self._fields(changes)
        if checked is None:
            return FieldsChanged(at=at, actor=actor, changes=changes)
        _set(event, "changes", checked)
        event.__attrs_post_init__()
        return event  # type: ignore[no-any-return]
