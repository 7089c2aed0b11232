"""The :class:`Ticket`: an id and its event history, with the state folded from it."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import datetime
from operator import attrgetter
from typing import Any, Final

import attrs

from csmcore._time import require_aware
from csmcore.errors import ErrorCode, InvalidTransition, ValidationError, invalid_type
from csmcore.serialization import serializable
from csmcore.tickets._declare import (
    ASSIGNEE,
    GROUP,
    MERGED,
    PRIORITY_NAME,
    REQUESTER,
    STATUS,
    TicketEventBase,
    event_types,
)
from csmcore.tickets._enums import Channel, Priority, Role, Status
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
    TicketEvent,
)
from csmcore.tickets._fast import REOPEN_TARGETS
from csmcore.tickets._priority_map import PriorityMap
from csmcore.tickets._status_map import DEFAULT_STATUS_MAP, StatusMap
from csmcore.tickets._values import EMPTY_FIELDS, FieldValue, FrozenMap, identifier

__all__ = ["Ticket"]

_ST_CLOSED: Final = Status.CLOSED
_ST_SOLVED: Final = Status.SOLVED


def _refuse(
    ticket_id: str, index: int, event: object, why: str, code: str | None = None
) -> InvalidTransition:
    """The error refusing the event at ``index`` of ticket ``ticket_id``'s history; its code is
    ``code``, else the one ``why`` carries (a Refusal), else ``"invalid_transition"``."""
    return InvalidTransition(
        f"ticket {ticket_id!r}: cannot apply {event!r}: {why}",
        code=code or getattr(why, "code", None),
        ticket_id=ticket_id,
        event_index=index,
        value=event,
    )


def _check(state: list[Any], ticket_id: str, last_at: datetime, event: object, index: int) -> None:
    """Raise InvalidTransition if ``event``, at ``index`` of the history, may not follow a ticket
    in ``state``."""
    if not isinstance(event, TicketEventBase):
        raise ValidationError(
            f"ticket {ticket_id!r}: {event!r} is not a ticket event; accepted: "
            + ", ".join(t.__name__ for t in event_types()),
            code=ErrorCode.NOT_AN_EVENT,
            ticket_id=ticket_id,
            event_index=index,
            value=event,
        )
    if event.at < last_at:
        raise _refuse(
            ticket_id,
            index,
            event,
            f"it happens at {event.at.isoformat()}, before the ticket's last update at "
            f"{last_at.isoformat()}; events must be in time order",
            ErrorCode.OUT_OF_ORDER,
        )
    if state[MERGED] is not None:
        raise _refuse(
            ticket_id,
            index,
            event,
            f"the ticket was merged into {state[MERGED]!r}; nothing may follow",
            ErrorCode.AFTER_MERGE,
        )
    why = event._refusal(state, ticket_id)
    if why is not None:
        raise _refuse(ticket_id, index, event, why)


_BASE_FOLD: Final = TicketEventBase.fold
"""The fold of events that do not declare one of their own (every built-in event's)."""

_SETS_REQUESTER: Final = 1
_MAY_SET_REQUESTER: Final = 2
_REQUESTER_ROLE: dict[type, int] = {}
"""By event type, what it does to the requester (:attr:`Ticket.requesters`, once per type):
0 nothing, 1 sets it (TicketCreated, RequesterChanged), 2 may (a declared ``fold``)."""


def _requester_role(cls: type) -> int:
    if issubclass(cls, TicketCreated | RequesterChanged):
        role = _SETS_REQUESTER
    elif getattr(cls, "fold", _BASE_FOLD) is not _BASE_FOLD:
        role = _MAY_SET_REQUESTER
    else:
        role = 0
    _REQUESTER_ROLE[cls] = role
    return role


def may_set_requester(event: object) -> bool:
    """Whether ``event`` sets the requester or may (a declared event with a ``fold``): the
    events after which :attr:`Ticket.requesters` can have grown (for the stores' index)."""
    cls = type(event)
    role = _REQUESTER_ROLE.get(cls)
    if role is None:
        role = _requester_role(cls)
    return role != 0


def _fold(ticket_id: str, events: tuple[Any, ...]) -> list[Any]:
    if not events:
        raise ValidationError(
            f"ticket {ticket_id!r} has no events; a history starts with TicketCreated",
            code=ErrorCode.EMPTY_HISTORY,
            ticket_id=ticket_id,
        )
    created = events[0]
    if type(created) is not TicketCreated:
        raise InvalidTransition(
            f"ticket {ticket_id!r}: the first event is {created!r}; a history starts with "
            "TicketCreated",
            code=ErrorCode.NOT_CREATED_FIRST,
            ticket_id=ticket_id,
            event_index=0,
            value=created,
        )
    if created.ticket_id != ticket_id:
        raise ValidationError(
            f"ticket id {ticket_id!r} does not match its TicketCreated.ticket_id "
            f"{created.ticket_id!r}",
            code=ErrorCode.TICKET_ID_MISMATCH,
            ticket_id=ticket_id,
            event_index=0,
            value=created.ticket_id,
        )
    state = created._initial_values()
    last = created
    for index, event in enumerate(events[1:], 1):
        # The rules every event shares, on the cheap path; _check raises the right error.
        if (
            not isinstance(event, TicketEventBase)
            or event._at_us < last._at_us
            or state[MERGED] is not None
        ):
            _check(state, ticket_id, last.at, event, index)
        why = event._refusal(state, ticket_id)
        if why is not None:
            raise _refuse(ticket_id, index, event, why)
        state = event._advance(state)
        last = event
    return state


def _events_tuple(value: object) -> tuple[TicketEvent, ...]:
    if type(value) is tuple:
        return value
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(
            f"events={value!r} is not a sequence of ticket events", field="events", value=value
        )
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
    category), ``status_name``, ``priority`` (the category), ``priority_name``, ``group``,
    ``assignee``, ``tags``, ``fields``,
    ``merged_into``, ``solved_at``, ``reopens``, ``updated_at`` and ``version``; ``requester``
    is the current one.
    """

    id: str = attrs.field(validator=identifier("id"))
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
        priority_name: str | None = None,
        priority_map: PriorityMap | None = None,
    ) -> tuple[Ticket, TicketCreated]:
        """A new ticket and its :class:`TicketCreated` event.

        ``status`` may be a custom status name when ``status_map`` knows it (it then becomes
        the ``status_name``); ``priority`` likewise with ``priority_map`` (the
        ``priority_name``). Raises ValidationError on a bad value, NaiveDatetimeError on a
        naive ``at``.
        """
        if isinstance(status, str) and not isinstance(status, Status):
            category, name = (status_map or DEFAULT_STATUS_MAP).resolve(status)
            status, status_name = category, status_name if name is None else name
        if priority_map is not None and not isinstance(priority, Priority):
            rank, pname = priority_map.resolve(priority)
            priority, priority_name = rank, priority_name if pname is None else pname
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
            fields=EMPTY_FIELDS if fields is None else fields,
            priority_name=priority_name,
        )
        return cls._make(ticket_id, (event,), event._initial_values()), event

    open = create

    @classmethod
    def from_events(cls, events: Iterable[TicketEvent]) -> Ticket:
        """Rebuild a ticket from its history, validating every transition.

        Raises ValidationError for an empty history, InvalidTransition for an illegal one.
        """
        history = _events_tuple(events)
        if not history:
            raise ValidationError(
                "events=() is empty; a history starts with TicketCreated",
                code=ErrorCode.EMPTY_HISTORY,
                field="events",
            )
        first = history[0]
        if not isinstance(first, TicketCreated):
            raise InvalidTransition(
                f"the first event is {first!r}; a history starts with TicketCreated",
                code=ErrorCode.NOT_CREATED_FIRST,
                event_index=0,
                value=first,
            )
        return cls._make(first.ticket_id, history, _fold(first.ticket_id, history))

    def apply(self, event: TicketEventBase) -> Ticket:
        """The ticket after ``event``.

        Raises InvalidTransition when the event may not follow (out of time order, after a
        merge, a comment or status change on a closed ticket, a reopen of a ticket that is not
        solved or closed, a second TicketCreated, a return to 'new').
        """
        state = self._state
        events = self.events
        _check(state, self.id, events[-1].at, event, len(events))
        history: tuple[Any, ...] = (*events, event)
        return Ticket._make(self.id, history, event._advance(state))

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
    ) -> tuple[Ticket, StatusChanged | Reopened]:
        """Move to a status category or a custom status name known to ``status_map``.

        Leaving solved or closed for open, pending or on-hold is a reopen: the event is then a
        :class:`Reopened`, exactly what :meth:`reopen` gives. Repeating the current status is
        accepted and changes nothing.
        """
        status, name = (status_map or DEFAULT_STATUS_MAP).resolve(status_or_name)
        current = self._state[STATUS]
        if (current is _ST_SOLVED or current is _ST_CLOSED) and status in REOPEN_TARGETS:
            return self._change(Reopened(at=at, actor=actor, status=status, status_name=name))
        return self._change(StatusChanged(at=at, actor=actor, status=status, status_name=name))

    def set_priority(
        self,
        at: datetime,
        priority: Priority | str,
        priority_map: PriorityMap | None = None,
        *,
        actor: str | None = None,
    ) -> tuple[Ticket, PriorityChanged]:
        """Change the priority to a category or a custom priority name known to
        ``priority_map``."""
        if priority_map is None:  # a category or its value (the event names a wrong one)
            return self._change(PriorityChanged(at=at, actor=actor, priority=priority))
        category, name = priority_map.resolve(priority)
        return self._change(
            PriorityChanged(at=at, actor=actor, priority=category, priority_name=name)
        )

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
                assignee=state[ASSIGNEE] if assignee is _KEEP else assignee,
                group=state[GROUP] if group is _KEEP else group,
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
        """Set custom fields from a mapping and/or keywords; a None value removes the field.

        Raises :class:`~csmcore.errors.InvalidType` when ``changes`` is not a mapping.
        """
        if changes is not None and not isinstance(changes, Mapping):
            raise invalid_type("changes", changes, "a mapping of field names to values, or None")
        merged: dict[str, FieldValue] = dict(changes or {})
        merged.update(more)
        return self._change(FieldsChanged(at=at, actor=actor, changes=merged))

    def change_requester(
        self, at: datetime, requester: str, *, actor: str | None = None
    ) -> tuple[Ticket, RequesterChanged]:
        """Make ``requester`` the ticket's requester (not on a merged ticket)."""
        return self._change(RequesterChanged(at=at, actor=actor, requester=requester))

    def merge_into(
        self, at: datetime, other_id: str, *, actor: str | None = None
    ) -> tuple[Ticket, Merged]:
        """Merge this ticket into ``other_id``; it is closed and takes no further events."""
        return self._change(Merged(at=at, actor=actor, into=other_id))

    def reopen(
        self,
        at: datetime,
        status: Status | str = Status.OPEN,
        status_map: StatusMap | None = None,
        *,
        actor: str | None = None,
    ) -> tuple[Ticket, Reopened]:
        """Reopen a solved or closed ticket (not a merged one) into open, pending or on-hold,
        or into a custom status name of one of those categories known to ``status_map``."""
        category, name = (status_map or DEFAULT_STATUS_MAP).resolve(status)
        return self._change(Reopened(at=at, actor=actor, status=category, status_name=name))

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
                f"{events[0].at.isoformat()}",
                ticket_id=self.id,
                field="instant",
                value=instant,
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
        """Who asked: the current requester (the creation's until a :class:`RequesterChanged`;
        ``ticket.created.requester`` is the original one)."""
        value: str = self._state[REQUESTER]
        return value

    @property
    def requesters(self) -> tuple[str, ...]:
        """Everyone who was the requester at some instant, in the order they first became it
        (the creation's first, then each :class:`RequesterChanged`, or a declared event whose
        ``fold`` sets the requester; one who comes back is listed once).
        ``ticket.as_of(at).requester`` is the one at an instant.

        >>> from datetime import datetime, timedelta, timezone
        >>> t0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
        >>> ticket, _ = Ticket.create(at=t0, ticket_id="T-1", created_by="agent",
        ...     channel="phone", priority="normal", requester="ann")
        >>> ticket, _ = ticket.change_requester(t0 + timedelta(hours=1), "bob")
        >>> ticket.requesters, ticket.requester
        (('ann', 'bob'), 'bob')
        """
        seen: dict[str, None] = {}
        events = self.events
        roles = _REQUESTER_ROLE
        for event in events:
            cls = type(event)
            role = roles.get(cls)
            if role is None:
                role = _requester_role(cls)
            if role == _SETS_REQUESTER:
                seen[event.requester] = None  # type: ignore[union-attr]
            elif role == _MAY_SET_REQUESTER:
                break  # a declared event's fold may set the requester: fold the history
        else:
            return tuple(seen)
        values = events[0]._initial_values()  # type: ignore[union-attr]
        seen = {values[REQUESTER]: None}
        for event in events[1:]:
            values = event._advance(values)
            seen[values[REQUESTER]] = None
        return tuple(seen)

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
    def priority_name(self) -> str:
        """The current custom priority name, or the category's value when there is none."""
        name: str | None = self._state[PRIORITY_NAME]
        return self._state[2].value if name is None else name

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

        None if it never was. A merge closes the ticket: it sets this as a change to closed
        does. A reopen does not clear it; check :attr:`status` for the present.
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
