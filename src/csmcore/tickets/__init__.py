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

from csmcore.tickets._codec import event_from_data, event_to_data
from csmcore.tickets._declare import (
    EventSpec,
    Refusal,
    TicketEventBase,
    TicketState,
    event_spec,
    event_type,
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
from csmcore.tickets._priority_map import PriorityMap
from csmcore.tickets._status_map import StatusMap
from csmcore.tickets._subject import TICKET_SUBJECT
from csmcore.tickets._ticket import Ticket
from csmcore.tickets._values import FieldValue, FrozenMap

__all__ = [
    "TICKET_SUBJECT",
    "Assigned",
    "Channel",
    "Commented",
    "EventSpec",
    "FieldValue",
    "FieldsChanged",
    "FrozenMap",
    "Merged",
    "Priority",
    "PriorityChanged",
    "PriorityMap",
    "Refusal",
    "Reopened",
    "RequesterChanged",
    "Role",
    "Status",
    "StatusChanged",
    "StatusMap",
    "TagsChanged",
    "Ticket",
    "TicketCreated",
    "TicketEvent",
    "TicketEventBase",
    "TicketState",
    "event_from_data",
    "event_spec",
    "event_to_data",
    "event_type",
    "event_types",
]
