"""Tickets as immutable values folded from their event history.

A :class:`Ticket` is its history: a tuple of events whose first member is a
:class:`TicketCreated`. Everything else a ticket knows (status, priority, assignee, tags, custom
fields, when it was last solved...) is derived from that history once, when the ticket is built,
and read back as plain attributes. Changing a ticket never mutates it: each change returns the
new ticket and the event that describes the change, so callers can store the event and keep
the ticket.

>>> from datetime import datetime, timedelta, timezone
>>> t0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
>>> ticket, created = Ticket.create(
...     at=t0, ticket_id="T-1", created_by=Role.REQUESTER, channel=Channel.EMAIL,
...     priority=Priority.NORMAL, requester="ada@example.com", subject="Printer on fire")
>>> ticket, reply = ticket.comment(t0 + timedelta(minutes=20), Role.AGENT, author="grace")
>>> ticket, _ = ticket.set_status(t0 + timedelta(hours=1), Status.SOLVED)
>>> ticket.status, ticket.version, ticket.solved_at == t0 + timedelta(hours=1)
(<Status.SOLVED: 'solved'>, 3, True)
>>> ticket.as_of(t0 + timedelta(minutes=30)).status
<Status.NEW: 'new'>

Rules a history must follow (a violation raises :class:`~csmcore.errors.InvalidTransition`, a
:class:`~csmcore.errors.CsmError` and a ``ValueError``):

- events are in time order (an event may share the instant of the one before it);
- there is exactly one :class:`TicketCreated`, and it comes first;
- nothing follows a :class:`Merged` event (merging closes the ticket for good);
- a closed ticket takes no comments, no status change and no merge; :class:`Reopened` is the
  way back, and it is accepted only from ``SOLVED`` or ``CLOSED``;
- a ticket never goes back to ``NEW`` once it has left it.

All instants must be timezone-aware; events store them converted to UTC, so that ordering and
equality never depend on wall-clock zone rules.
"""

from __future__ import annotations

import enum
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from operator import attrgetter
from typing import Any, Final, Generic, TypeAlias, TypeVar

import attrs

from csmcore._time import require_aware, to_us
from csmcore._values import (
    MAX_IDENTIFIER_LENGTH,
    check_identifier,
    check_text,
    coerce_enum,
    text_problem,
)
from csmcore.errors import InvalidTransition, SerializationError, ValidationError
from csmcore.serialization import converter, serializable

__all__ = [
    "Assigned",
    "Channel",
    "Commented",
    "FieldValue",
    "FieldsChanged",
    "FrozenMap",
    "Merged",
    "Priority",
    "PriorityChanged",
    "Reopened",
    "Role",
    "Status",
    "StatusChanged",
    "StatusMap",
    "TagsChanged",
    "Ticket",
    "TicketCreated",
    "TicketEvent",
    "TicketEventBase",
]

_UTC = timezone.utc

# --------------------------------------------------------------------------------------------
# Enumerations
# --------------------------------------------------------------------------------------------


class Status(enum.StrEnum):
    """The status *category* of a ticket (custom status names map onto these; see StatusMap)."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on-hold"
    SOLVED = "solved"
    CLOSED = "closed"


class Priority(enum.StrEnum):
    """Ticket priority, ordered ``LOW < NORMAL < HIGH < URGENT``.

    Comparisons use :attr:`rank`, never the alphabetical order of the values; a plain string is
    compared as the priority it names (``Priority.HIGH > "low"``).
    """

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """0 for LOW up to 3 for URGENT."""
        return _PRIORITY_RANK[self]

    def _other_rank(self, other: object) -> int | None:
        if isinstance(other, Priority):
            return _PRIORITY_RANK[other]
        if isinstance(other, str):
            return _PRIORITY_RANK[_coerce_enum(Priority, other, "priority")]
        return None

    def __lt__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return _PRIORITY_RANK[self] < rank

    def __le__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return _PRIORITY_RANK[self] <= rank

    def __gt__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return _PRIORITY_RANK[self] > rank

    def __ge__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return _PRIORITY_RANK[self] >= rank


_PRIORITY_RANK: Final[dict[Priority, int]] = {p: i for i, p in enumerate(Priority)}


class Channel(enum.StrEnum):
    """Where a ticket came in."""

    EMAIL = "email"
    WEB = "web"
    PHONE = "phone"
    CHAT = "chat"
    API = "api"
    SOCIAL = "social"
    OTHER = "other"


class Role(enum.StrEnum):
    """Who did something: the requester, an agent, a bot, or the system itself."""

    REQUESTER = "requester"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


_E = TypeVar("_E", bound=enum.Enum)


def _coerce_enum(cls: type[_E], value: object, argument: str) -> _E:
    return coerce_enum(cls, value, argument)


def _to_created_by(value: object) -> Role:
    return value if type(value) is Role else _coerce_enum(Role, value, "created_by")


def _to_author_role(value: object) -> Role:
    return value if type(value) is Role else _coerce_enum(Role, value, "author_role")


def _to_channel(value: object) -> Channel:
    return value if type(value) is Channel else _coerce_enum(Channel, value, "channel")


def _to_priority(value: object) -> Priority:
    return value if type(value) is Priority else _coerce_enum(Priority, value, "priority")


def _to_status(value: object) -> Status:
    return value if type(value) is Status else _coerce_enum(Status, value, "status")


# --------------------------------------------------------------------------------------------
# Small immutable mapping for custom fields
# --------------------------------------------------------------------------------------------

FieldValue: TypeAlias = str | int | float | bool | None
"""A custom field value: a string, a number, a boolean, or None (unset)."""

_K = TypeVar("_K")
_V = TypeVar("_V")


class FrozenMap(Mapping[_K, _V], Generic[_K, _V]):
    """An immutable, hashable mapping; equal to any mapping with the same items.

    Keys keep the order given (csmcore sorts them when it builds one).
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[_K, _V] | Iterable[tuple[_K, _V]] = ()) -> None:
        self._data: dict[_K, _V] = dict(data)
        self._hash: int | None = None

    def __getitem__(self, key: _K) -> _V:
        return self._data[key]

    def __iter__(self) -> Iterator[_K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: _K, default: Any = None) -> Any:
        """The value for ``key``, or ``default`` when it is absent."""
        return self._data.get(key, default)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def to_dict(self) -> dict[_K, _V]:
        """A new plain ``dict`` with the same items."""
        return dict(self._data)


_EMPTY_FIELDS: Final[FrozenMap[str, FieldValue]] = FrozenMap()


def _check_field_value(name: str, value: object, argument: str) -> FieldValue:
    if isinstance(value, str):
        return check_text(value, f"{argument}[{name!r}]")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(
                f"{argument}[{name!r}]={value!r} is not a finite number; custom fields hold "
                "strings, finite numbers, booleans or None"
            )
        return value
    raise ValidationError(
        f"{argument}[{name!r}]={value!r} is a {type(value).__name__}; custom fields hold "
        "strings, finite numbers, booleans or None"
    )


def _field_map(value: object, argument: str) -> FrozenMap[str, FieldValue]:
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{argument}={value!r} is a {type(value).__name__}; expected a mapping of "
            "field name to value"
        )
    if not value:
        return _EMPTY_FIELDS
    items = []
    for name in sorted(value, key=_sort_key):
        if not isinstance(name, str) or not name:
            raise ValidationError(
                f"{argument} has the key {name!r}; custom field names are non-empty strings"
            )
        check_text(name, f"{argument} key")
        items.append((name, _check_field_value(name, value[name], argument)))
    return FrozenMap(items)


def _to_fields(value: object) -> FrozenMap[str, FieldValue]:
    return _field_map(value, "fields")


def _to_changes(value: object) -> FrozenMap[str, FieldValue]:
    return _field_map(value, "changes")


def _sort_key(value: object) -> tuple[str, str]:
    return (type(value).__name__, str(value))


def _tag_set(value: object, argument: str) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(
            f"{argument}={value!r} is not a collection of tags; pass e.g. "
            f"{{'vip', 'billing'}} (a bare string is not accepted)"
        )
    tags = frozenset(value)
    for tag in tags:
        if not isinstance(tag, str) or not tag or tag != tag.strip():
            raise ValidationError(
                f"{argument} holds {tag!r}; a tag is a non-empty string without leading or "
                "trailing whitespace"
            )
        check_identifier(tag, f"{argument} tag")
    return tags


def _to_tags(value: object) -> frozenset[str]:
    return _tag_set(value, "tags")


def _to_added(value: object) -> frozenset[str]:
    return _tag_set(value, "added")


def _to_removed(value: object) -> frozenset[str]:
    return _tag_set(value, "removed")


# --------------------------------------------------------------------------------------------
# Field validators
# --------------------------------------------------------------------------------------------


def _instant(value: object) -> datetime:
    if type(value) is datetime and value.tzinfo is _UTC:
        return value
    return require_aware(value, "at").astimezone(_UTC)  # type: ignore[arg-type]


def _text(argument: str, rule: Callable[[str, str], str] = check_text) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise ValidationError(f"{argument}={value!r} is not a non-empty string")
        rule(value, argument)

    return check


def _identifier(argument: str) -> Any:
    """A validator for a ticket id: non-empty, storable, at most 255 characters."""
    return _text(argument, check_identifier)


def _optional_text(argument: str) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if value is not None and (not isinstance(value, str) or not value):
            raise ValidationError(f"{argument}={value!r} is neither None nor a non-empty string")
        if value is not None:
            check_text(value, argument)

    return check


def _boolean(argument: str) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, bool):
            raise ValidationError(f"{argument}={value!r} is not a bool (True or False)")

    return check


def _string(argument: str) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, str):
            raise ValidationError(f"{argument}={value!r} is not a string")
        check_text(value, argument)

    return check


def _check_status_name(instance: Any, _: object, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise ValidationError(f"status_name={value!r} is neither None nor a non-empty string")
    check_text(value, "status_name")
    status = instance.status
    if value in _STATUS_VALUES and value != status.value:
        raise ValidationError(
            f"status_name={value!r} names the category {value!r} but status is "
            f"{status.value!r}; a custom name must not be another category's value"
        )


_STATUS_VALUES: Final = frozenset(s.value for s in Status)


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TicketEventBase:
    """Fields every ticket event has.

    ``at`` is the aware instant of the change (stored converted to UTC; a naive datetime raises
    :class:`~csmcore.errors.NaiveDatetimeError`); ``actor`` optionally names who made it.
    """

    at: datetime = attrs.field(converter=_instant)
    actor: str | None = attrs.field(default=None, validator=_optional_text("actor"))
    _at_us: int = attrs.field(
        init=False,
        default=attrs.Factory(lambda self: to_us(self.at), takes_self=True),
        eq=False,
        repr=False,
        hash=False,
    )
    """``at`` as microseconds since the Unix epoch, worked out once when the event is built:
    engines that order and measure many events (the SLA engine) read it instead of doing
    datetime arithmetic per event."""


@serializable(
    "ticket.created",
    aliases=(
        "csmcore.tickets:TicketCreated",
        "created",
    ),
)
@attrs.frozen(kw_only=True)
class TicketCreated(TicketEventBase):
    """The first event of every ticket.

    ``fields`` maps custom field names to values; a None value leaves that field unset.
    ``status_name`` is a custom status name whose category is ``status`` (None: the category's
    own name).
    """

    ticket_id: str = attrs.field(validator=_identifier("ticket_id"))
    created_by: Role = attrs.field(converter=_to_created_by)
    channel: Channel = attrs.field(converter=_to_channel)
    priority: Priority = attrs.field(converter=_to_priority)
    requester: str = attrs.field(validator=_text("requester"))
    subject: str = attrs.field(default="", validator=_string("subject"))
    group: str | None = attrs.field(default=None, validator=_optional_text("group"))
    assignee: str | None = attrs.field(default=None, validator=_optional_text("assignee"))
    status: Status = attrs.field(default=Status.NEW, converter=_to_status)
    status_name: str | None = attrs.field(default=None, validator=_check_status_name)
    tags: frozenset[str] = attrs.field(default=frozenset(), converter=_to_tags)
    fields: FrozenMap[str, FieldValue] = attrs.field(default=_EMPTY_FIELDS, converter=_to_fields)


@serializable(
    "ticket.status_changed",
    aliases=(
        "csmcore.tickets:StatusChanged",
        "status_changed",
    ),
)
@attrs.frozen(kw_only=True)
class StatusChanged(TicketEventBase):
    """The status moved to category ``status``, optionally under a custom ``status_name``."""

    status: Status = attrs.field(converter=_to_status)
    status_name: str | None = attrs.field(default=None, validator=_check_status_name)


@serializable(
    "ticket.priority_changed",
    aliases=(
        "csmcore.tickets:PriorityChanged",
        "priority_changed",
    ),
)
@attrs.frozen(kw_only=True)
class PriorityChanged(TicketEventBase):
    """The priority became ``priority``."""

    priority: Priority = attrs.field(converter=_to_priority)


@serializable(
    "ticket.assigned",
    aliases=(
        "csmcore.tickets:Assigned",
        "assigned",
    ),
)
@attrs.frozen(kw_only=True)
class Assigned(TicketEventBase):
    """The ticket's assignment became exactly (``assignee``, ``group``); None means nobody."""

    assignee: str | None = attrs.field(validator=_optional_text("assignee"))
    group: str | None = attrs.field(validator=_optional_text("group"))


@serializable(
    "ticket.commented",
    aliases=(
        "csmcore.tickets:Commented",
        "commented",
    ),
)
@attrs.frozen(kw_only=True)
class Commented(TicketEventBase):
    """Someone wrote on the ticket.

    ``public=False`` is an internal note. ``on_behalf_of_requester=True`` marks a comment an
    agent (or bot, or the system) logged for the requester, e.g. a phone call: it counts as a
    requester comment (see :attr:`counts_as_requester`). A requester cannot comment on their own
    behalf.
    """

    author_role: Role = attrs.field(converter=_to_author_role)
    public: bool = attrs.field(default=True, validator=_boolean("public"))
    author: str | None = attrs.field(default=None, validator=_optional_text("author"))
    on_behalf_of_requester: bool = attrs.field(
        default=False, validator=_boolean("on_behalf_of_requester")
    )

    def __attrs_post_init__(self) -> None:
        if self.on_behalf_of_requester and self.author_role is Role.REQUESTER:
            raise ValidationError(
                "on_behalf_of_requester=True needs author_role agent, bot or system; a requester "
                "comment is already the requester's"
            )

    @property
    def counts_as_requester(self) -> bool:
        """True for a requester's comment or one logged on the requester's behalf."""
        return self.author_role is Role.REQUESTER or self.on_behalf_of_requester

    @property
    def is_agent_reply(self) -> bool:
        """True for a public comment by an agent in their own name (what first-reply SLAs count)."""
        return self.author_role is Role.AGENT and self.public and not self.on_behalf_of_requester


def _check_disjoint(instance: TagsChanged, _: object, removed: frozenset[str]) -> None:
    both = instance.added & removed
    if both:
        raise ValidationError(
            f"tags {sorted(both)} are both added and removed; a tag change says one or the other"
        )


@serializable(
    "ticket.tags_changed",
    aliases=(
        "csmcore.tickets:TagsChanged",
        "tags_changed",
    ),
)
@attrs.frozen(kw_only=True)
class TagsChanged(TicketEventBase):
    """Tags ``added`` to and ``removed`` from the ticket (disjoint sets)."""

    added: frozenset[str] = attrs.field(default=frozenset(), converter=_to_added)
    removed: frozenset[str] = attrs.field(
        default=frozenset(), converter=_to_removed, validator=_check_disjoint
    )


@serializable(
    "ticket.fields_changed",
    aliases=(
        "csmcore.tickets:FieldsChanged",
        "fields_changed",
    ),
)
@attrs.frozen(kw_only=True)
class FieldsChanged(TicketEventBase):
    """Custom fields set to new values; a None value removes the field."""

    changes: FrozenMap[str, FieldValue] = attrs.field(converter=_to_changes)


@serializable(
    "ticket.merged",
    aliases=(
        "csmcore.tickets:Merged",
        "merged",
    ),
)
@attrs.frozen(kw_only=True)
class Merged(TicketEventBase):
    """The ticket was merged into ticket ``into`` and closed; no event may follow."""

    into: str = attrs.field(validator=_identifier("into"))


_REOPEN_TARGETS: Final = frozenset({Status.OPEN, Status.PENDING, Status.ON_HOLD})


def _check_reopen_status(_: object, __: object, value: Status) -> None:
    if value not in _REOPEN_TARGETS:
        raise ValidationError(
            f"status={value.value!r} is not a status a ticket can be reopened to; accepted: "
            "'open', 'pending', 'on-hold'"
        )


@serializable(
    "ticket.reopened",
    aliases=(
        "csmcore.tickets:Reopened",
        "reopened",
    ),
)
@attrs.frozen(kw_only=True)
class Reopened(TicketEventBase):
    """A solved or closed ticket was reopened into ``status`` (open, pending or on-hold)."""

    status: Status = attrs.field(
        default=Status.OPEN,
        converter=_to_status,
        validator=_check_reopen_status,
    )


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
)
"""Any event of a ticket's history."""

_EVENT_TYPES: Final[tuple[type[TicketEventBase], ...]] = (
    TicketCreated,
    StatusChanged,
    PriorityChanged,
    Assigned,
    Commented,
    TagsChanged,
    FieldsChanged,
    Merged,
    Reopened,
)


# --------------------------------------------------------------------------------------------
# Status names
# --------------------------------------------------------------------------------------------


def _status_names(value: object) -> FrozenMap[str, Status]:
    if isinstance(value, FrozenMap):
        value = value.to_dict()
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"custom={value!r} is not a mapping of custom status name to status category"
        )
    items = []
    for name in sorted(value, key=_sort_key):
        if not isinstance(name, str) or not name:
            raise ValidationError(f"custom status name {name!r} is not a non-empty string")
        check_text(name, "custom status name")
        category = _coerce_enum(Status, value[name], f"custom[{name!r}]")
        if name in _STATUS_BY_VALUE and _STATUS_BY_VALUE[name] is not category:
            raise ValidationError(
                f"custom[{name!r}]={category.value!r}: {name!r} is the name of the category "
                f"{name!r} itself and cannot map to another one"
            )
        items.append((name, category))
    return FrozenMap(items)


_STATUS_BY_VALUE: Final[dict[str, Status]] = {s.value: s for s in Status}


@serializable("status_map", aliases=("csmcore.tickets:StatusMap",))
@attrs.frozen(kw_only=True)
class StatusMap:
    """Custom status names mapped to their :class:`Status` categories.

    The six category values (``"new"``, ``"open"``, ...) always map to themselves.

    >>> sm = StatusMap(custom={"Awaiting Vendor": Status.ON_HOLD})
    >>> sm.category("Awaiting Vendor"), sm.category("open")
    (<Status.ON_HOLD: 'on-hold'>, <Status.OPEN: 'open'>)
    """

    custom: FrozenMap[str, Status] = attrs.field(factory=FrozenMap, converter=_status_names)

    def category(self, name: str | Status) -> Status:
        """The category of ``name``; raises ValidationError naming the known names."""
        if isinstance(name, Status):
            return name
        if isinstance(name, str):
            found = self.custom.get(name) or _STATUS_BY_VALUE.get(name)
            if found is not None:
                return found
        raise ValidationError(f"status {name!r} is not known; accepted: {list(self.names)}")

    def resolve(self, status_or_name: str | Status) -> tuple[Status, str | None]:
        """``(category, custom name or None)`` for a Status, a category value or a custom name."""
        category = self.category(status_or_name)
        if isinstance(status_or_name, Status) or status_or_name in _STATUS_BY_VALUE:
            return category, None
        return category, status_or_name

    @property
    def names(self) -> tuple[str, ...]:
        """Every accepted name: the six category values, then the custom names."""
        return (*_STATUS_BY_VALUE, *(n for n in self.custom if n not in _STATUS_BY_VALUE))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self.custom or name in _STATUS_BY_VALUE)


_DEFAULT_STATUS_MAP: Final = StatusMap()


# --------------------------------------------------------------------------------------------
# Folding events into state
# --------------------------------------------------------------------------------------------

# The derived, changeable state of a ticket is a short list indexed by these constants. It is
# built once per ticket and never mutated after the ticket is published, so tickets that differ
# only by a comment share it.
_STATUS, _STATUS_NAME, _PRIORITY, _GROUP, _ASSIGNEE, _TAGS, _FIELDS, _MERGED, _SOLVED, _REOPENS = (
    range(10)
)


# Enum members read per event, as module constants: a module global is several times cheaper
# to read than an enum class attribute on CPython 3.11.
_ST_NEW: Final = Status.NEW
_ST_OPEN: Final = Status.OPEN
_ST_SOLVED: Final = Status.SOLVED
_ST_CLOSED: Final = Status.CLOSED
_ROLE_REQUESTER: Final = Role.REQUESTER


def _initial_state(created: TicketCreated) -> list[Any]:
    fields = created.fields
    if None in fields.values():
        fields = FrozenMap((k, v) for k, v in fields.items() if v is not None)
    solved = created.at if created.status in (_ST_SOLVED, _ST_CLOSED) else None
    return [
        created.status,
        created.status_name,
        created.priority,
        created.group,
        created.assignee,
        created.tags,
        fields,
        None,
        solved,
        0,
    ]


def _refuse(ticket_id: str, event: object, why: str) -> InvalidTransition:
    return InvalidTransition(f"ticket {ticket_id!r}: cannot apply {event!r}: {why}")


def _check(state: list[Any], ticket_id: str, last_at: datetime, event: object) -> None:
    """Raise InvalidTransition if ``event`` may not follow a ticket in ``state``."""
    if not isinstance(event, TicketEventBase):
        raise ValidationError(
            f"ticket {ticket_id!r}: {event!r} is not a ticket event; accepted: "
            + ", ".join(t.__name__ for t in _EVENT_TYPES)
        )
    if event.at < last_at:
        raise _refuse(
            ticket_id,
            event,
            f"it happens at {event.at.isoformat()}, before the ticket's last update at "
            f"{last_at.isoformat()}; events must be in time order",
        )
    if state[_MERGED] is not None:
        raise _refuse(
            ticket_id, event, f"the ticket was merged into {state[_MERGED]!r}; nothing may follow"
        )
    kind = type(event)
    status = state[_STATUS]
    if kind is TicketCreated:
        raise _refuse(ticket_id, event, "the ticket was already created")
    if status is _ST_CLOSED and kind in (Commented, StatusChanged, Merged):
        raise _refuse(
            ticket_id, event, "the ticket is closed; reopen it first (Reopened / ticket.reopen)"
        )
    if kind is StatusChanged:
        if event.status is _ST_NEW and status is not _ST_NEW:  # type: ignore[attr-defined]
            raise _refuse(
                ticket_id, event, f"the ticket is {status.value!r} and cannot go back to 'new'"
            )
    elif kind is Reopened:
        if status not in (_ST_SOLVED, _ST_CLOSED):
            raise _refuse(
                ticket_id,
                event,
                f"only a solved or closed ticket can be reopened; this one is {status.value!r}",
            )
    elif kind is Merged and event.into == ticket_id:  # type: ignore[attr-defined]
        raise _refuse(ticket_id, event, "a ticket cannot be merged into itself")


def _advance(state: list[Any], event: Any) -> list[Any]:
    """The state after ``event`` (already checked); ``state`` itself if nothing changes."""
    kind = type(event)
    if kind is Commented:
        return state
    new = state.copy()
    if kind is StatusChanged:
        old = state[_STATUS]
        status = event.status
        new[_STATUS] = status
        new[_STATUS_NAME] = event.status_name
        if old is _ST_SOLVED:
            if status is not _ST_SOLVED and status is not _ST_CLOSED:
                new[_REOPENS] = state[_REOPENS] + 1
        elif status is _ST_SOLVED or status is _ST_CLOSED:
            new[_SOLVED] = event.at
    elif kind is PriorityChanged:
        new[_PRIORITY] = event.priority
    elif kind is Assigned:
        new[_ASSIGNEE] = event.assignee
        new[_GROUP] = event.group
    elif kind is TagsChanged:
        new[_TAGS] = (state[_TAGS] | event.added) - event.removed
    elif kind is FieldsChanged:
        fields = state[_FIELDS].to_dict()
        for name, value in event.changes.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        new[_FIELDS] = FrozenMap(sorted(fields.items())) if fields else _EMPTY_FIELDS
    elif kind is Merged:
        new[_MERGED] = event.into
        new[_STATUS] = _ST_CLOSED
        new[_STATUS_NAME] = None
    elif kind is Reopened:
        new[_STATUS] = event.status
        new[_STATUS_NAME] = None
        new[_REOPENS] = state[_REOPENS] + 1
    return new


def _fold(ticket_id: str, events: tuple[Any, ...]) -> list[Any]:
    if not events:
        raise ValidationError(
            f"ticket {ticket_id!r} has no events; a history starts with TicketCreated"
        )
    created = events[0]
    if type(created) is not TicketCreated:
        raise InvalidTransition(
            f"ticket {ticket_id!r}: the first event is {created!r}; a history starts with "
            "TicketCreated"
        )
    if created.ticket_id != ticket_id:
        raise ValidationError(
            f"ticket id {ticket_id!r} does not match its TicketCreated.ticket_id "
            f"{created.ticket_id!r}"
        )
    state = _initial_state(created)
    last_at = created.at
    for event in events[1:]:
        _check(state, ticket_id, last_at, event)
        state = _advance(state, event)
        last_at = event.at
    return state


def _events_tuple(value: object) -> tuple[TicketEvent, ...]:
    if type(value) is tuple:
        return value
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(f"events={value!r} is not a sequence of ticket events")
    return tuple(value)


_KEEP: Final[Any] = object()
_at_getter = attrgetter("at")


@serializable("ticket", aliases=("csmcore.tickets:Ticket",))
@attrs.frozen(kw_only=True)
class Ticket:
    """A ticket: its ``id`` and its event history, with the state derived from it.

    Build one with :meth:`create` (or :meth:`from_events` from a stored history); change it with
    :meth:`apply` or the convenience methods, each returning a new ticket. Constructing
    ``Ticket(id=..., events=...)`` directly validates the whole history and raises
    :class:`~csmcore.errors.InvalidTransition` for an illegal one.

    Derived attributes (computed once when the ticket is built, read as plain attributes):
    ``created_at``, ``created_by``, ``channel``, ``requester``, ``subject``, ``status`` (the
    category), ``status_name``, ``priority``, ``group``, ``assignee``, ``tags``, ``fields``,
    ``merged_into``, ``solved_at``, ``reopens``, ``updated_at`` and ``version``.
    """

    id: str = attrs.field(validator=_identifier("id"))
    events: tuple[TicketEvent, ...] = attrs.field(converter=_events_tuple)
    _state: list[Any] = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_state", _fold(self.id, self.events))

    @classmethod
    def _make(cls, ticket_id: str, events: tuple[TicketEvent, ...], state: list[Any]) -> Ticket:
        ticket = object.__new__(cls)
        object.__setattr__(ticket, "id", ticket_id)
        object.__setattr__(ticket, "events", events)
        object.__setattr__(ticket, "_state", state)
        return ticket

    # -- building -----------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        at: datetime,
        ticket_id: str,
        created_by: Role | str,
        channel: Channel | str,
        priority: Priority | str,
        requester: str,
        subject: str = "",
        group: str | None = None,
        assignee: str | None = None,
        status: Status | str = Status.NEW,
        status_name: str | None = None,
        tags: Iterable[str] = frozenset(),
        fields: Mapping[str, FieldValue] | None = None,
        actor: str | None = None,
        status_map: StatusMap | None = None,
    ) -> tuple[Ticket, TicketCreated]:
        """A new ticket and its :class:`TicketCreated` event.

        ``status`` may be a custom status name when ``status_map`` knows it (it then becomes
        the ``status_name``). Raises ValidationError on a bad value, NaiveDatetimeError on a
        naive ``at``.
        """
        if isinstance(status, str) and not isinstance(status, Status):
            category, name = (status_map or _DEFAULT_STATUS_MAP).resolve(status)
            status, status_name = category, status_name if name is None else name
        event = TicketCreated(
            at=at,
            actor=actor,
            ticket_id=ticket_id,
            created_by=created_by,
            channel=channel,
            priority=priority,
            requester=requester,
            subject=subject,
            group=group,
            assignee=assignee,
            status=status,
            status_name=status_name,
            tags=tags,
            fields=_EMPTY_FIELDS if fields is None else fields,
        )
        return cls._make(ticket_id, (event,), _initial_state(event)), event

    open = create

    @classmethod
    def from_events(cls, events: Iterable[TicketEvent]) -> Ticket:
        """Rebuild a ticket from its history, validating every transition.

        Raises ValidationError for an empty history, InvalidTransition for an illegal one.
        """
        history = _events_tuple(events)
        if not history:
            raise ValidationError("events=() is empty; a history starts with TicketCreated")
        first = history[0]
        if not isinstance(first, TicketCreated):
            raise InvalidTransition(
                f"the first event is {first!r}; a history starts with TicketCreated"
            )
        return cls._make(first.ticket_id, history, _fold(first.ticket_id, history))

    def apply(self, event: TicketEvent) -> Ticket:
        """The ticket after ``event``.

        Raises InvalidTransition when the event may not follow (out of time order, after a
        merge, a comment or status change on a closed ticket, a reopen of a ticket that is not
        solved or closed, a second TicketCreated, a return to 'new').
        """
        state = self._state
        events = self.events
        _check(state, self.id, events[-1].at, event)
        return Ticket._make(self.id, (*events, event), _advance(state, event))

    def _change(self, event: TicketEvent) -> tuple[Ticket, Any]:
        return self.apply(event), event

    # -- convenience changes ------------------------------------------------------------------

    def set_status(
        self,
        at: datetime,
        status_or_name: Status | str,
        status_map: StatusMap | None = None,
        *,
        actor: str | None = None,
    ) -> tuple[Ticket, StatusChanged]:
        """Move to a status category or a custom status name known to ``status_map``."""
        status, name = (status_map or _DEFAULT_STATUS_MAP).resolve(status_or_name)
        return self._change(StatusChanged(at=at, actor=actor, status=status, status_name=name))

    def set_priority(
        self, at: datetime, priority: Priority | str, *, actor: str | None = None
    ) -> tuple[Ticket, PriorityChanged]:
        """Change the priority."""
        return self._change(PriorityChanged(at=at, actor=actor, priority=priority))

    def assign(
        self,
        at: datetime,
        assignee: str | None = _KEEP,
        group: str | None = _KEEP,
        *,
        actor: str | None = None,
    ) -> tuple[Ticket, Assigned]:
        """Assign to an agent and/or a group.

        An argument left out keeps its current value; an explicit None clears it. The event
        records the full resulting assignment.
        """
        state = self._state
        return self._change(
            Assigned(
                at=at,
                actor=actor,
                assignee=state[_ASSIGNEE] if assignee is _KEEP else assignee,
                group=state[_GROUP] if group is _KEEP else group,
            )
        )

    def comment(
        self,
        at: datetime,
        author_role: Role | str,
        public: bool = True,
        *,
        author: str | None = None,
        on_behalf_of_requester: bool = False,
        actor: str | None = None,
    ) -> tuple[Ticket, Commented]:
        """Add a comment (``public=False``: an internal note). Not allowed on a closed ticket.

        A comment never changes the status by itself: a requester reply to a solved ticket is
        followed by an explicit status change or :meth:`reopen` if the help desk reopens it.
        """
        return self._change(
            Commented(
                at=at,
                actor=actor,
                author_role=author_role,
                public=public,
                author=author,
                on_behalf_of_requester=on_behalf_of_requester,
            )
        )

    def tag(
        self,
        at: datetime,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        *,
        actor: str | None = None,
    ) -> tuple[Ticket, TagsChanged]:
        """Add and/or remove tags."""
        return self._change(TagsChanged(at=at, actor=actor, added=add, removed=remove))

    def set_fields(
        self,
        at: datetime,
        changes: Mapping[str, FieldValue] | None = None,
        *,
        actor: str | None = None,
        **more: FieldValue,
    ) -> tuple[Ticket, FieldsChanged]:
        """Set custom fields from a mapping and/or keywords; a None value removes the field."""
        merged: dict[str, FieldValue] = dict(changes or {})
        merged.update(more)
        return self._change(FieldsChanged(at=at, actor=actor, changes=merged))

    def merge_into(
        self, at: datetime, other_id: str, *, actor: str | None = None
    ) -> tuple[Ticket, Merged]:
        """Merge this ticket into ``other_id``; it is closed and takes no further events."""
        return self._change(Merged(at=at, actor=actor, into=other_id))

    def reopen(
        self, at: datetime, status: Status | str = Status.OPEN, *, actor: str | None = None
    ) -> tuple[Ticket, Reopened]:
        """Reopen a solved or closed ticket (not a merged one) into open, pending or on-hold."""
        return self._change(Reopened(at=at, actor=actor, status=status))

    # -- history ------------------------------------------------------------------------------

    def as_of(self, instant: datetime) -> Ticket:
        """The ticket as it stood at ``instant``: only the events with ``at <= instant``.

        Raises NaiveDatetimeError for a naive instant and ValidationError for one before the
        ticket was created.
        """
        require_aware(instant, "instant")
        events = self.events
        if instant >= events[-1].at:
            return self
        if instant < events[0].at:
            raise ValidationError(
                f"instant={instant.isoformat()} is before ticket {self.id!r} was created at "
                f"{events[0].at.isoformat()}"
            )
        count = bisect_right(events, instant, key=_at_getter)
        prefix = events[:count]
        return Ticket._make(self.id, prefix, _fold(self.id, prefix))

    # -- derived state ------------------------------------------------------------------------

    @property
    def created(self) -> TicketCreated:
        """The first event."""
        return self.events[0]  # type: ignore[return-value]

    @property
    def created_at(self) -> datetime:
        """When the ticket was created (UTC)."""
        return self.events[0].at

    @property
    def created_by(self) -> Role:
        """Who opened the ticket."""
        return self.events[0].created_by  # type: ignore[union-attr]

    @property
    def channel(self) -> Channel:
        """Where the ticket came in."""
        return self.events[0].channel  # type: ignore[union-attr]

    @property
    def requester(self) -> str:
        """Who asked."""
        return self.events[0].requester  # type: ignore[union-attr]

    @property
    def subject(self) -> str:
        """The subject line given at creation."""
        return self.events[0].subject  # type: ignore[union-attr]

    @property
    def status(self) -> Status:
        """The current status category."""
        value: Status = self._state[0]
        return value

    @property
    def status_name(self) -> str:
        """The current custom status name, or the category's value when there is none."""
        name: str | None = self._state[1]
        return self._state[0].value if name is None else name

    @property
    def priority(self) -> Priority:
        """The current priority."""
        value: Priority = self._state[2]
        return value

    @property
    def group(self) -> str | None:
        """The group the ticket is assigned to, or None."""
        value: str | None = self._state[3]
        return value

    @property
    def assignee(self) -> str | None:
        """The agent the ticket is assigned to, or None."""
        value: str | None = self._state[4]
        return value

    @property
    def tags(self) -> frozenset[str]:
        """The current tags."""
        value: frozenset[str] = self._state[5]
        return value

    @property
    def fields(self) -> FrozenMap[str, FieldValue]:
        """The current custom fields (unset fields are absent)."""
        value: FrozenMap[str, FieldValue] = self._state[6]
        return value

    @property
    def merged_into(self) -> str | None:
        """The id of the ticket this one was merged into, or None."""
        value: str | None = self._state[7]
        return value

    @property
    def solved_at(self) -> datetime | None:
        """The latest instant the ticket became solved (or closed without being solved first).

        None if it never was. A reopen does not clear it; check :attr:`status` for the present.
        """
        value: datetime | None = self._state[8]
        return value

    @property
    def reopens(self) -> int:
        """How many times the ticket went from solved or closed back to an unsolved status."""
        value: int = self._state[9]
        return value

    @property
    def updated_at(self) -> datetime:
        """The instant of the last event (UTC)."""
        return self.events[-1].at

    @property
    def version(self) -> int:
        """The number of events; storage uses it for optimistic concurrency."""
        return len(self.events)

    @property
    def is_closed(self) -> bool:
        """True when the status category is CLOSED (merged tickets included)."""
        return self._state[0] is _ST_CLOSED


# --------------------------------------------------------------------------------------------
# Serialization
# --------------------------------------------------------------------------------------------

_TYPE_OF: Final[dict[type[TicketEventBase], str]] = {
    TicketCreated: "created",
    StatusChanged: "status_changed",
    PriorityChanged: "priority_changed",
    Assigned: "assigned",
    Commented: "commented",
    TagsChanged: "tags_changed",
    FieldsChanged: "fields_changed",
    Merged: "merged",
    Reopened: "reopened",
}
_CLASS_OF: Final[dict[str, type[TicketEventBase]]] = {v: k for k, v in _TYPE_OF.items()}
_FIELD_NAMES: Final[dict[type[TicketEventBase], tuple[str, ...]]] = {
    cls: tuple(a.name for a in attrs.fields(cls) if a.init) for cls in _TYPE_OF
}
_REQUIRED: Final[dict[type[TicketEventBase], frozenset[str]]] = {
    cls: frozenset(a.name for a in attrs.fields(cls) if a.init and a.default is attrs.NOTHING)
    for cls in _TYPE_OF
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, FrozenMap):
        return value.to_dict()
    return value


def _unstructure_event_reference(event: TicketEventBase) -> dict[str, Any]:
    """The generic, field-by-field event encoder (the fast ones below must equal it)."""
    cls = type(event)
    data: dict[str, Any] = {"type": _TYPE_OF[cls]}
    for name in _FIELD_NAMES[cls]:
        data[name] = _plain(getattr(event, name))
    return data


def _structure_event_at_reference(data: Any, path: str) -> TicketEventBase:
    """The generic event decoder: checks every key, builds through the validating __init__.

    The fast decoders below fall back to it for anything unusual, so its messages are the
    ones a caller sees.
    """
    if not isinstance(data, Mapping):
        raise SerializationError(f"{path}: {data!r} is not a mapping with a 'type' key")
    kind = data.get("type")
    cls = _CLASS_OF.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SerializationError(
            f"{path}.type: {kind!r} is not an event type; accepted: {sorted(_CLASS_OF)}"
        )
    names = _FIELD_NAMES[cls]
    extra = set(data) - set(names) - {"type"}
    if extra:
        raise SerializationError(
            f"{path}: unknown keys {sorted(extra)} for a {kind!r} event; accepted: {sorted(names)}"
        )
    missing = _REQUIRED[cls] - set(data)
    if missing:
        raise SerializationError(f"{path}.{sorted(missing)[0]}: required field missing")
    kwargs: dict[str, Any] = {}
    for name in names:
        if name not in data:
            continue
        value = data[name]
        if name == "at":
            if not isinstance(value, str):
                raise SerializationError(f"{path}.at: {value!r} is not an ISO 8601 datetime")
            try:
                value = datetime.fromisoformat(value)
            except ValueError as err:
                raise SerializationError(
                    f"{path}.at: {value!r} is not an ISO 8601 datetime"
                ) from err
        elif name in ("tags", "added", "removed") and not isinstance(value, list):
            raise SerializationError(f"{path}.{name}: {value!r} is not a list of tags")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (ValidationError, TypeError) as err:
        raise SerializationError(f"{path}: {err}") from err


# -- fast paths ------------------------------------------------------------------------------
#
# Storage encodes and decodes every event it writes or reads, so these run for each row. The
# encoders are dict literals per event class (no per-field type tests). The decoders check each
# value with the same rules as the event's converters and validators, then fill the frozen
# instance directly; anything they do not recognise at once (a missing or unknown key, a value of
# an unexpected type, an instant not in UTC, a value a validator would refuse) hands the whole
# mapping to the reference decoder, which either builds the event the slow way or raises the
# SerializationError naming the path. So the fast decoders never accept what the reference
# decoder refuses, and tests/tickets/test_codec.py checks both against each other.


def _created_to_data(e: TicketCreated) -> dict[str, Any]:
    return {
        "type": "created",
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
        "fields": e.fields.to_dict(),
    }


def _status_changed_to_data(e: StatusChanged) -> dict[str, Any]:
    return {
        "type": "status_changed",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "status": e.status._value_,
        "status_name": e.status_name,
    }


def _priority_changed_to_data(e: PriorityChanged) -> dict[str, Any]:
    return {
        "type": "priority_changed",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "priority": e.priority._value_,
    }


def _assigned_to_data(e: Assigned) -> dict[str, Any]:
    return {
        "type": "assigned",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "assignee": e.assignee,
        "group": e.group,
    }


def _commented_to_data(e: Commented) -> dict[str, Any]:
    return {
        "type": "commented",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "author_role": e.author_role._value_,
        "public": e.public,
        "author": e.author,
        "on_behalf_of_requester": e.on_behalf_of_requester,
    }


def _tags_changed_to_data(e: TagsChanged) -> dict[str, Any]:
    return {
        "type": "tags_changed",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "added": sorted(e.added),
        "removed": sorted(e.removed),
    }


def _fields_changed_to_data(e: FieldsChanged) -> dict[str, Any]:
    return {
        "type": "fields_changed",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "changes": e.changes.to_dict(),
    }


def _merged_to_data(e: Merged) -> dict[str, Any]:
    return {"type": "merged", "at": e.at.isoformat(), "actor": e.actor, "into": e.into}


def _reopened_to_data(e: Reopened) -> dict[str, Any]:
    return {
        "type": "reopened",
        "at": e.at.isoformat(),
        "actor": e.actor,
        "status": e.status._value_,
    }


_TO_DATA: Final[dict[type[TicketEventBase], Callable[[Any], dict[str, Any]]]] = {
    TicketCreated: _created_to_data,
    StatusChanged: _status_changed_to_data,
    PriorityChanged: _priority_changed_to_data,
    Assigned: _assigned_to_data,
    Commented: _commented_to_data,
    TagsChanged: _tags_changed_to_data,
    FieldsChanged: _fields_changed_to_data,
    Merged: _merged_to_data,
    Reopened: _reopened_to_data,
}


def _unstructure_event(event: TicketEventBase) -> dict[str, Any]:
    """JSON-safe data of ``event``: a ``"type"`` tag plus every field (equal to the reference)."""
    fast = _TO_DATA.get(type(event))
    return fast(event) if fast is not None else _unstructure_event_reference(event)


class _Unusual(Exception):
    """Raised inside a fast decoder: let the reference decoder handle this mapping."""


_ROLE_OF: Final[dict[str, Role]] = {m.value: m for m in Role}
_CHANNEL_OF: Final[dict[str, Channel]] = {m.value: m for m in Channel}
_PRIORITY_OF: Final[dict[str, Priority]] = {m.value: m for m in Priority}
_STATUS_OF: Final[dict[str, Status]] = {m.value: m for m in Status}
_KEYS: Final[dict[type[TicketEventBase], frozenset[str]]] = {
    cls: frozenset({"type", *names}) for cls, names in _FIELD_NAMES.items()
}
_Ev = TypeVar("_Ev", bound=TicketEventBase)
_new = object.__new__
_set = object.__setattr__


def _fast_at(data: dict[str, Any]) -> datetime:
    at = datetime.fromisoformat(data["at"])
    if at.tzinfo is not _UTC:  # another offset (or none): the reference converts or refuses it
        raise _Unusual
    return at


def _storable(value: str) -> bool:
    """``check_text`` would accept ``value`` (cheap for the usual ASCII text)."""
    if value.isascii():
        return "\x00" not in value
    return text_problem(value) is None


def _fast_opt_text(value: Any) -> Any:
    if value is None or (type(value) is str and value and _storable(value)):
        return value
    raise _Unusual


def _fast_text(value: Any) -> Any:
    if type(value) is str and value and _storable(value):
        return value
    raise _Unusual


def _fast_identifier(value: Any) -> Any:
    if type(value) is str and value and len(value) <= MAX_IDENTIFIER_LENGTH and _storable(value):
        return value
    raise _Unusual


def _fast_status_name(value: Any, status: Status) -> Any:
    if value is None:
        return None
    if type(value) is not str or not value or not _storable(value):
        raise _Unusual
    if value in _STATUS_VALUES and value != status._value_:
        raise _Unusual
    return value


def _fast_tags(data: dict[str, Any], key: str) -> frozenset[str]:
    value = data.get(key)
    if value is None and key not in data:
        return frozenset()
    if type(value) is not list:
        raise _Unusual
    return _tag_set(value, key)


def _fast_fields(value: Any, argument: str) -> FrozenMap[str, FieldValue]:
    if type(value) is not dict:
        raise _Unusual
    return _field_map(value, argument)


def _base(cls: type[_Ev], data: dict[str, Any]) -> _Ev:
    if not data.keys() <= _KEYS[cls]:
        raise _Unusual
    event = _new(cls)
    at = _fast_at(data)
    _set(event, "at", at)
    _set(event, "_at_us", to_us(at))
    _set(event, "actor", _fast_opt_text(data.get("actor")))
    return event


def _created_from(data: dict[str, Any]) -> TicketCreated:
    e = _base(TicketCreated, data)
    status = _STATUS_OF[data["status"]] if "status" in data else _ST_NEW
    _set(e, "ticket_id", _fast_identifier(data["ticket_id"]))
    _set(e, "created_by", _ROLE_OF[data["created_by"]])
    _set(e, "channel", _CHANNEL_OF[data["channel"]])
    _set(e, "priority", _PRIORITY_OF[data["priority"]])
    _set(e, "requester", _fast_text(data["requester"]))
    subject = data.get("subject", "")
    if type(subject) is not str or not _storable(subject):
        raise _Unusual
    _set(e, "subject", subject)
    _set(e, "group", _fast_opt_text(data.get("group")))
    _set(e, "assignee", _fast_opt_text(data.get("assignee")))
    _set(e, "status", status)
    _set(e, "status_name", _fast_status_name(data.get("status_name"), status))
    _set(e, "tags", _fast_tags(data, "tags"))
    fields = data.get("fields")
    if fields is None and "fields" not in data:
        _set(e, "fields", _EMPTY_FIELDS)
    else:
        _set(e, "fields", _fast_fields(fields, "fields"))
    return e


def _status_changed_from(data: dict[str, Any]) -> StatusChanged:
    e = _base(StatusChanged, data)
    status = _STATUS_OF[data["status"]]
    _set(e, "status", status)
    _set(e, "status_name", _fast_status_name(data.get("status_name"), status))
    return e


def _priority_changed_from(data: dict[str, Any]) -> PriorityChanged:
    e = _base(PriorityChanged, data)
    _set(e, "priority", _PRIORITY_OF[data["priority"]])
    return e


def _assigned_from(data: dict[str, Any]) -> Assigned:
    e = _base(Assigned, data)
    _set(e, "assignee", _fast_opt_text(data["assignee"]))
    _set(e, "group", _fast_opt_text(data["group"]))
    return e


def _commented_from(data: dict[str, Any]) -> Commented:
    e = _base(Commented, data)
    role = _ROLE_OF[data["author_role"]]
    public = data.get("public", True)
    on_behalf = data.get("on_behalf_of_requester", False)
    if type(public) is not bool or type(on_behalf) is not bool:
        raise _Unusual
    if on_behalf and role is _ROLE_REQUESTER:
        raise _Unusual
    _set(e, "author_role", role)
    _set(e, "public", public)
    _set(e, "author", _fast_opt_text(data.get("author")))
    _set(e, "on_behalf_of_requester", on_behalf)
    return e


def _tags_changed_from(data: dict[str, Any]) -> TagsChanged:
    e = _base(TagsChanged, data)
    added = _fast_tags(data, "added")
    removed = _fast_tags(data, "removed")
    if added & removed:
        raise _Unusual
    _set(e, "added", added)
    _set(e, "removed", removed)
    return e


def _fields_changed_from(data: dict[str, Any]) -> FieldsChanged:
    e = _base(FieldsChanged, data)
    _set(e, "changes", _fast_fields(data["changes"], "changes"))
    return e


def _merged_from(data: dict[str, Any]) -> Merged:
    e = _base(Merged, data)
    _set(e, "into", _fast_identifier(data["into"]))
    return e


def _reopened_from(data: dict[str, Any]) -> Reopened:
    e = _base(Reopened, data)
    status = _STATUS_OF[data["status"]] if "status" in data else _ST_OPEN
    if status not in _REOPEN_TARGETS:
        raise _Unusual
    _set(e, "status", status)
    return e


_FROM_DATA: Final[dict[str, Callable[[dict[str, Any]], TicketEventBase]]] = {
    "created": _created_from,
    "status_changed": _status_changed_from,
    "priority_changed": _priority_changed_from,
    "assigned": _assigned_from,
    "commented": _commented_from,
    "tags_changed": _tags_changed_from,
    "fields_changed": _fields_changed_from,
    "merged": _merged_from,
    "reopened": _reopened_from,
}


def _fast_event(data: Any) -> TicketEventBase | None:
    """The event ``data`` describes when the fast decoders accept it, else None."""
    if type(data) is not dict:
        return None
    kind = data.get("type")
    build = _FROM_DATA.get(kind) if type(kind) is str else None
    if build is None:
        return None
    try:
        return build(data)
    except (_Unusual, KeyError, TypeError, ValueError):
        return None  # unusual or malformed: the reference decoder decides (and names the path)


def _structure_event_at(data: Any, path: str) -> TicketEventBase:
    """The event ``data`` describes; SerializationError naming ``path`` when it is malformed."""
    event = _fast_event(data)
    return event if event is not None else _structure_event_at_reference(data, path)


def _structure_event(data: Any, cls: Any) -> TicketEventBase:
    event = _structure_event_at(data, "$")
    if cls in _TYPE_OF and type(event) is not cls:
        raise SerializationError(
            f"$.type: {data['type']!r} is not {_TYPE_OF[cls]!r} (expected a {cls.__name__})"
        )
    return event


def _unstructure_ticket(ticket: Ticket) -> dict[str, Any]:
    return {"id": ticket.id, "events": [_unstructure_event(e) for e in ticket.events]}


def _structure_ticket(data: Any, _: Any) -> Ticket:
    if not isinstance(data, Mapping):
        raise SerializationError(f"$: {data!r} is not a mapping with 'id' and 'events'")
    extra = set(data) - {"id", "events"}
    if extra:
        raise SerializationError(f"$: unknown keys {sorted(extra)}; accepted: ['events', 'id']")
    for key in ("id", "events"):
        if key not in data:
            raise SerializationError(f"$.{key}: required field missing")
    raw = data["events"]
    if not isinstance(raw, list):
        raise SerializationError(f"$.events: {raw!r} is not a list of events")
    events = tuple(_structure_event_at(item, f"$.events[{i}]") for i, item in enumerate(raw))
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


def _structure_enum(cls: type[_E]) -> Any:
    def structure(value: Any, _: Any) -> _E:
        try:
            return _coerce_enum(cls, value, cls.__name__.lower())
        except ValidationError as err:
            raise SerializationError(f"$: {err}") from err

    return structure


for _cls in _TYPE_OF:
    converter.register_unstructure_hook(_cls, _TO_DATA[_cls])
    converter.register_structure_hook(_cls, _structure_event)
converter.register_unstructure_hook(TicketEventBase, _unstructure_event)
converter.register_structure_hook_func(_is_event_type, _structure_event)
converter.register_unstructure_hook(Ticket, _unstructure_ticket)
converter.register_structure_hook(Ticket, _structure_ticket)
converter.register_unstructure_hook(StatusMap, _unstructure_status_map)
converter.register_structure_hook(StatusMap, _structure_status_map)
for _enum_cls in (Status, Priority, Channel, Role):
    converter.register_unstructure_hook(_enum_cls, attrgetter("value"))
    converter.register_structure_hook(_enum_cls, _structure_enum(_enum_cls))
del _cls, _enum_cls
