"""The built-in ticket events, each declared once with ``@event_type``: its tag (and the names
older releases wrote), fields, validation, transition rule, fold and fast codec."""

from __future__ import annotations

from typing import Any, Final, TypeAlias

import attrs

from csmcore.errors import ErrorCode, ValidationError
from csmcore.tickets import _fast as fast
from csmcore.tickets._declare import (
    ASSIGNEE,
    FIELDS,
    GROUP,
    MERGED,
    PRIORITY,
    PRIORITY_NAME,
    REOPENS,
    REQUESTER,
    SOLVED,
    STATUS,
    STATUS_NAME,
    TAGS,
    Refusal,
    TicketEventBase,
    event_type,
)
from csmcore.tickets._enums import (
    Channel,
    Priority,
    Role,
    Status,
    to_author_role,
    to_channel,
    to_created_by,
    to_priority,
    to_status,
)
from csmcore.tickets._values import (
    EMPTY_FIELDS,
    FieldValue,
    FrozenMap,
    boolean,
    check_priority_name,
    check_status_name,
    identifier,
    optional_text,
    string,
    text,
    to_added,
    to_changes,
    to_fields,
    to_removed,
    to_tags,
)

__all__ = [
    "BUILT_IN_EVENTS",
    "Assigned",
    "Commented",
    "FieldsChanged",
    "Merged",
    "PriorityChanged",
    "Reopened",
    "RequesterChanged",
    "StatusChanged",
    "TagsChanged",
    "TicketCreated",
    "TicketEvent",
]

# Enum members read per event, as module constants: a module global is several times cheaper
# to read than an enum class attribute on CPython 3.11.
_ST_NEW: Final = Status.NEW
_ST_SOLVED: Final = Status.SOLVED
_ST_CLOSED: Final = Status.CLOSED

_CLOSED_WHY: Final = Refusal(
    "the ticket is closed; reopen it first (Reopened / ticket.reopen)",
    code=ErrorCode.TICKET_CLOSED,
)
_CREATED_WHY: Final = Refusal("the ticket was already created", code=ErrorCode.ALREADY_CREATED)
_SELF_WHY: Final = Refusal("a ticket cannot be merged into itself", code=ErrorCode.MERGE_INTO_SELF)


def _add_priority_name(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 of ``ticket.created`` and ``ticket.priority_changed`` had no
    ``priority_name``; a payload that already has one keeps it."""
    return {**data, "priority_name": data.get("priority_name")}


@event_type(
    "ticket.created",
    aliases=(
        "csmcore.tickets:TicketCreated",
        "created",
    ),
    version=2,
    upcasters={1: _add_priority_name},
    encode=fast.created_to_data,
    decode=fast.created_from_data,
)
@attrs.frozen(kw_only=True)
class TicketCreated(TicketEventBase):
    """The first event of every ticket.

    ``fields`` maps custom field names to values; a None value leaves that field unset.
    ``status_name`` is a custom status name whose category is ``status`` (None: the category's
    own name); ``priority_name`` likewise for ``priority`` (see
    :class:`~csmcore.tickets.PriorityMap`).
    """

    ticket_id: str = attrs.field(validator=identifier("ticket_id"))
    created_by: Role = attrs.field(converter=to_created_by)
    channel: Channel = attrs.field(converter=to_channel)
    priority: Priority = attrs.field(converter=to_priority)
    requester: str = attrs.field(validator=text("requester"))
    subject: str = attrs.field(default="", validator=string("subject"))
    group: str | None = attrs.field(default=None, validator=optional_text("group"))
    assignee: str | None = attrs.field(default=None, validator=optional_text("assignee"))
    status: Status = attrs.field(default=Status.NEW, converter=to_status)
    status_name: str | None = attrs.field(default=None, validator=check_status_name)
    tags: frozenset[str] = attrs.field(default=frozenset(), converter=to_tags)
    fields: FrozenMap[str, FieldValue] = attrs.field(default=EMPTY_FIELDS, converter=to_fields)
    priority_name: str | None = attrs.field(default=None, validator=check_priority_name)

    def _refusal(self, state: list[Any], ticket_id: str) -> str | None:
        """A history has one TicketCreated, its first event."""
        return _CREATED_WHY

    def _initial_values(self) -> list[Any]:
        """The state of the ticket this event creates (the list inside a TicketState)."""
        fields = self.fields
        if None in fields.values():
            fields = FrozenMap((k, v) for k, v in fields.items() if v is not None)
        solved = self.at if self.status in (_ST_SOLVED, _ST_CLOSED) else None
        return [
            self.status,
            self.status_name,
            self.priority,
            self.group,
            self.assignee,
            self.tags,
            fields,
            None,
            solved,
            0,
            self.requester,
            self.priority_name,
        ]


@event_type(
    "ticket.status_changed",
    aliases=(
        "csmcore.tickets:StatusChanged",
        "status_changed",
    ),
    encode=fast.status_changed_to_data,
    decode=fast.status_changed_from_data,
)
@attrs.frozen(kw_only=True)
class StatusChanged(TicketEventBase):
    """The status moved to category ``status``, optionally under a custom ``status_name``.

    Repeating the ticket's current status (same category and name) is accepted and changes
    nothing, whatever the status (closed included). Out of solved into open, pending or on-hold
    it counts as a reopen, exactly like :class:`Reopened`.
    """

    status: Status = attrs.field(converter=to_status)
    status_name: str | None = attrs.field(default=None, validator=check_status_name)

    def _refusal(self, state: list[Any], ticket_id: str) -> str | None:
        """Not on a closed ticket (but repeating its closed status is accepted, like repeating
        any status); never back to 'new'."""
        status = state[STATUS]
        if status is _ST_CLOSED:
            if self.status is _ST_CLOSED and self.status_name == state[STATUS_NAME]:
                return None
            return _CLOSED_WHY
        if self.status is _ST_NEW and status is not _ST_NEW:
            return Refusal(
                f"the ticket is {status.value!r} and cannot go back to 'new'",
                code=ErrorCode.BACK_TO_NEW,
            )
        return None

    def _advance(self, state: list[Any]) -> list[Any]:
        """The new status; a move out of solved counts as a reopen, into solved sets solved_at.

        Repeating the current status (same category, same name) changes nothing.
        """
        old = state[STATUS]
        status = self.status
        if status is old and self.status_name == state[STATUS_NAME]:
            return state
        new = state.copy()
        new[STATUS] = status
        new[STATUS_NAME] = self.status_name
        if old is _ST_SOLVED:
            if status is not _ST_SOLVED and status is not _ST_CLOSED:
                new[REOPENS] = state[REOPENS] + 1
        elif status is _ST_SOLVED or status is _ST_CLOSED:
            new[SOLVED] = self.at
        return new


@event_type(
    "ticket.priority_changed",
    aliases=(
        "csmcore.tickets:PriorityChanged",
        "priority_changed",
    ),
    version=2,
    upcasters={1: _add_priority_name},
    encode=fast.priority_changed_to_data,
    decode=fast.priority_changed_from_data,
)
@attrs.frozen(kw_only=True)
class PriorityChanged(TicketEventBase):
    """The priority became ``priority``, optionally under a custom ``priority_name``."""

    priority: Priority = attrs.field(converter=to_priority)
    priority_name: str | None = attrs.field(default=None, validator=check_priority_name)

    def _advance(self, state: list[Any]) -> list[Any]:
        """The new priority."""
        new = state.copy()
        new[PRIORITY] = self.priority
        new[PRIORITY_NAME] = self.priority_name
        return new


@event_type(
    "ticket.assigned",
    aliases=(
        "csmcore.tickets:Assigned",
        "assigned",
    ),
    encode=fast.assigned_to_data,
    decode=fast.assigned_from_data,
)
@attrs.frozen(kw_only=True)
class Assigned(TicketEventBase):
    """The ticket's assignment became exactly (``assignee``, ``group``); None means nobody."""

    assignee: str | None = attrs.field(validator=optional_text("assignee"))
    group: str | None = attrs.field(validator=optional_text("group"))

    def _advance(self, state: list[Any]) -> list[Any]:
        """The new assignment."""
        new = state.copy()
        new[ASSIGNEE] = self.assignee
        new[GROUP] = self.group
        return new


def _check_on_behalf(instance: Commented, _: object, value: bool) -> None:
    boolean("on_behalf_of_requester")(instance, _, value)
    if value and instance.author_role is Role.REQUESTER:
        raise ValidationError(
            "on_behalf_of_requester=True needs author_role agent, bot or system; a requester "
            "comment is already the requester's"
        )


@event_type(
    "ticket.commented",
    aliases=(
        "csmcore.tickets:Commented",
        "commented",
    ),
    encode=fast.commented_to_data,
    decode=fast.commented_from_data,
)
@attrs.frozen(kw_only=True)
class Commented(TicketEventBase):
    """Someone wrote on the ticket.

    ``public=False`` is an internal note. ``on_behalf_of_requester=True`` marks a comment an
    agent (or bot, or the system) logged for the requester, e.g. a phone call: it counts as a
    requester comment (see :attr:`counts_as_requester`). A requester cannot comment on their own
    behalf.
    """

    author_role: Role = attrs.field(converter=to_author_role)
    public: bool = attrs.field(default=True, validator=boolean("public"))
    author: str | None = attrs.field(default=None, validator=optional_text("author"))
    on_behalf_of_requester: bool = attrs.field(default=False, validator=_check_on_behalf)

    @property
    def counts_as_requester(self) -> bool:
        """True for a requester's comment or one logged on the requester's behalf."""
        return self.author_role is Role.REQUESTER or self.on_behalf_of_requester

    @property
    def is_agent_reply(self) -> bool:
        """True for a public comment by an agent in their own name (what first-reply SLAs count)."""
        return self.author_role is Role.AGENT and self.public and not self.on_behalf_of_requester

    def _refusal(self, state: list[Any], ticket_id: str) -> str | None:
        """Not on a closed ticket."""
        return _CLOSED_WHY if state[STATUS] is _ST_CLOSED else None


def _check_disjoint(instance: TagsChanged, _: object, removed: frozenset[str]) -> None:
    both = instance.added & removed
    if both:
        raise ValidationError(
            f"tags {sorted(both)} are both added and removed; a tag change says one or the other"
        )


@event_type(
    "ticket.tags_changed",
    aliases=(
        "csmcore.tickets:TagsChanged",
        "tags_changed",
    ),
    encode=fast.tags_changed_to_data,
    decode=fast.tags_changed_from_data,
)
@attrs.frozen(kw_only=True)
class TagsChanged(TicketEventBase):
    """Tags ``added`` to and ``removed`` from the ticket (disjoint sets)."""

    added: frozenset[str] = attrs.field(default=frozenset(), converter=to_added)
    removed: frozenset[str] = attrs.field(
        default=frozenset(), converter=to_removed, validator=_check_disjoint
    )

    def _advance(self, state: list[Any]) -> list[Any]:
        """The tags with ``added`` added and ``removed`` removed."""
        new = state.copy()
        new[TAGS] = (state[TAGS] | self.added) - self.removed
        return new


@event_type(
    "ticket.fields_changed",
    aliases=(
        "csmcore.tickets:FieldsChanged",
        "fields_changed",
    ),
    encode=fast.fields_changed_to_data,
    decode=fast.fields_changed_from_data,
)
@attrs.frozen(kw_only=True)
class FieldsChanged(TicketEventBase):
    """Custom fields set to new values; a None value removes the field."""

    changes: FrozenMap[str, FieldValue] = attrs.field(converter=to_changes)

    def _advance(self, state: list[Any]) -> list[Any]:
        """The custom fields with the changes applied."""
        new = state.copy()
        fields = state[FIELDS].to_dict()
        for name, value in self.changes.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        new[FIELDS] = FrozenMap(sorted(fields.items())) if fields else EMPTY_FIELDS
        return new


@event_type(
    "ticket.merged",
    aliases=(
        "csmcore.tickets:Merged",
        "merged",
    ),
    encode=fast.merged_to_data,
    decode=fast.merged_from_data,
)
@attrs.frozen(kw_only=True)
class Merged(TicketEventBase):
    """The ticket was merged into ticket ``into`` and closed; no event may follow.

    Like a change to closed, it sets ``solved_at`` to the merge instant, unless the ticket is
    solved (then ``solved_at`` stays the instant of that solve).
    """

    into: str = attrs.field(validator=identifier("into"))

    def _refusal(self, state: list[Any], ticket_id: str) -> str | None:
        """Not on a closed ticket; never into itself."""
        if state[STATUS] is _ST_CLOSED:
            return _CLOSED_WHY
        if self.into == ticket_id:
            return _SELF_WHY
        return None

    def _advance(self, state: list[Any]) -> list[Any]:
        """Closed, and merged into ``into``; solved_at as a change to closed sets it (the merge
        instant, unless the ticket is solved: then it keeps the solve's)."""
        new = state.copy()
        new[MERGED] = self.into
        new[STATUS] = _ST_CLOSED
        new[STATUS_NAME] = None
        if state[STATUS] is not _ST_SOLVED:  # never closed here: _refusal turns that away
            new[SOLVED] = self.at
        return new


def _check_reopen_status(_: object, __: object, value: Status) -> None:
    if value not in fast.REOPEN_TARGETS:
        raise ValidationError(
            f"status={value.value!r} is not a status a ticket can be reopened to; accepted: "
            "'open', 'pending', 'on-hold'"
        )


def _reopened_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 of ``ticket.reopened`` had no ``status_name`` (always the category's own);
    a payload that already has one (labelled version 1 by mistake) keeps it."""
    return {"status_name": None, **data}


@event_type(
    "ticket.reopened",
    aliases=(
        "csmcore.tickets:Reopened",
        "reopened",
    ),
    version=2,
    upcasters={1: _reopened_1_to_2},
    encode=fast.reopened_to_data,
    decode=fast.reopened_from_data,
)
@attrs.frozen(kw_only=True)
class Reopened(TicketEventBase):
    """A solved or closed ticket was reopened into ``status`` (open, pending or on-hold),
    optionally under a custom ``status_name`` of that category."""

    status: Status = attrs.field(
        default=Status.OPEN,
        converter=to_status,
        validator=_check_reopen_status,
    )
    status_name: str | None = attrs.field(default=None, validator=check_status_name)

    def _refusal(self, state: list[Any], ticket_id: str) -> str | None:
        """Only a solved or closed ticket can be reopened."""
        status = state[STATUS]
        if status is not _ST_SOLVED and status is not _ST_CLOSED:
            return Refusal(
                f"only a solved or closed ticket can be reopened; this one is {status.value!r}",
                code=ErrorCode.NOT_REOPENABLE,
            )
        return None

    def _advance(self, state: list[Any]) -> list[Any]:
        """The new status, one more reopen."""
        new = state.copy()
        new[STATUS] = self.status
        new[STATUS_NAME] = self.status_name
        new[REOPENS] = state[REOPENS] + 1
        return new


@event_type(
    "ticket.requester_changed",
    aliases=("csmcore.tickets:RequesterChanged",),
    encode=fast.requester_changed_to_data,
    decode=fast.requester_changed_from_data,
)
@attrs.frozen(kw_only=True)
class RequesterChanged(TicketEventBase):
    """The ticket's requester became ``requester`` (ServiceNow's caller, Zendesk's requester
    can change). Accepted on any ticket that is not merged, closed included, like the other
    changes of a ticket's people; conditions on ``requester`` read the current one."""

    requester: str = attrs.field(validator=text("requester"))

    def _advance(self, state: list[Any]) -> list[Any]:
        """The new requester."""
        if state[REQUESTER] == self.requester:
            return state
        new = state.copy()
        new[REQUESTER] = self.requester
        return new


TicketEvent: TypeAlias = (
    TicketCreated
    | StatusChanged
    | PriorityChanged
    | Assigned
    | Commented
    | TagsChanged
    | FieldsChanged
    | Merged
    | Reopened
    | RequesterChanged
)
"""Any built-in event of a ticket's history."""

BUILT_IN_EVENTS: Final[tuple[type[TicketEventBase], ...]] = (
    TicketCreated,
    StatusChanged,
    PriorityChanged,
    Assigned,
    Commented,
    TagsChanged,
    FieldsChanged,
    Merged,
    Reopened,
    RequesterChanged,
)
"""The event classes csmcore itself declares."""
