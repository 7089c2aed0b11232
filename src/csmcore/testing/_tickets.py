"""Hypothesis strategies for tickets and their events (private; :mod:`csmcore.testing.strategies`
presents them)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from csmcore.errors import InvalidTransition
from csmcore.testing import _derive as check
from csmcore.testing._basics import (
    CUSTOM_STATUSES,
    field_names,
    field_values,
    instants,
    names,
    priority_pairs,
    tags,
    text,
    ticket_ids,
)
from csmcore.tickets import (
    Assigned,
    Channel,
    Commented,
    FieldsChanged,
    Merged,
    Priority,
    PriorityChanged,
    Reopened,
    RequesterChanged,
    Role,
    Status,
    StatusChanged,
    TagsChanged,
    Ticket,
    TicketCreated,
    TicketEvent,
    TicketEventBase,
    event_types,
)
from csmcore.tickets._events import BUILT_IN_EVENTS

__all__ = [
    "next_events",
    "register_event_strategy",
    "ticket_created",
    "ticket_events",
    "tickets",
]

# --------------------------------------------------------------------------------------------
# Tickets and their events
# --------------------------------------------------------------------------------------------


def ticket_created(
    *,
    ticket_id: st.SearchStrategy[str] | None = None,
    at: st.SearchStrategy[datetime] | None = None,
) -> st.SearchStrategy[TicketCreated]:
    """A valid first event of a ticket."""
    check.check_strategy("ticket_id", ticket_id)
    check.check_strategy("at", at)
    return st.builds(
        TicketCreated,
        at=at if at is not None else instants(),
        ticket_id=ticket_id if ticket_id is not None else ticket_ids(),
        created_by=st.sampled_from(list(Role)),
        channel=st.sampled_from(list(Channel)),
        priority=st.sampled_from(list(Priority)),
        requester=names(),
        subject=st.one_of(st.just(""), names(max_size=20), text(max_size=300)),
        group=st.none() | names(),
        assignee=st.none() | names(),
        status=st.sampled_from(list(Status)),
        tags=st.frozensets(tags(), max_size=3),
        fields=st.dictionaries(field_names(), field_values(), max_size=3),
        actor=st.none() | names(),
    ).flatmap(
        lambda event: priority_pairs().map(
            lambda pair: attrs.evolve(event, priority=pair[0], priority_name=pair[1])
        )
    )


@st.composite
def _status_changed(draw: st.DrawFn, at: st.SearchStrategy[datetime]) -> StatusChanged:
    name = draw(st.none() | st.sampled_from(sorted(CUSTOM_STATUSES)))
    status = CUSTOM_STATUSES[name] if name else draw(st.sampled_from(list(Status)))
    actor = draw(st.none() | names())
    return StatusChanged(at=draw(at), actor=actor, status=status, status_name=name)


@st.composite
def _reopened(draw: st.DrawFn, at: st.SearchStrategy[datetime]) -> Reopened:
    name = draw(st.none() | st.sampled_from(sorted(CUSTOM_STATUSES)))
    status = (
        CUSTOM_STATUSES[name]
        if name
        else draw(st.sampled_from([Status.OPEN, Status.PENDING, Status.ON_HOLD]))
    )
    actor = draw(st.none() | names())
    return Reopened(at=draw(at), actor=actor, status=status, status_name=name)


@st.composite
def _commented(draw: st.DrawFn, at: st.SearchStrategy[datetime]) -> Commented:
    role = draw(st.sampled_from(list(Role)))
    return Commented(
        at=draw(at),
        actor=draw(st.none() | names()),
        author_role=role,
        public=draw(st.booleans()),
        author=draw(st.none() | names()),
        on_behalf_of_requester=role is not Role.REQUESTER and draw(st.booleans()),
    )


@st.composite
def _tags_changed(draw: st.DrawFn, at: st.SearchStrategy[datetime]) -> TagsChanged:
    added = draw(st.frozensets(tags(), max_size=3))
    removed = draw(st.frozensets(tags(), max_size=3))
    actor = draw(st.none() | names())
    return TagsChanged(at=draw(at), actor=actor, added=added, removed=removed - added)


def _event_strategies(
    at: st.SearchStrategy[datetime],
) -> dict[type[TicketEventBase], st.SearchStrategy[Any]]:
    actor = st.none() | names()
    return {
        TicketCreated: ticket_created(at=at),
        StatusChanged: _status_changed(at),
        PriorityChanged: st.builds(
            lambda at, actor, pair: PriorityChanged(
                at=at, actor=actor, priority=pair[0], priority_name=pair[1]
            ),
            at,
            actor,
            priority_pairs(),
        ),
        Assigned: st.builds(
            Assigned, at=at, actor=actor, assignee=st.none() | names(), group=st.none() | names()
        ),
        Commented: _commented(at),
        TagsChanged: _tags_changed(at),
        FieldsChanged: st.builds(
            FieldsChanged,
            at=at,
            actor=actor,
            changes=st.dictionaries(
                field_names(), st.none() | field_values(), min_size=1, max_size=3
            ),
        ),
        Merged: st.builds(Merged, at=at, actor=actor, into=ticket_ids()),
        Reopened: _reopened(at),
        RequesterChanged: st.builds(RequesterChanged, at=at, actor=actor, requester=names()),
    }


_BUILT_IN = frozenset(BUILT_IN_EVENTS)
"""The event types of :mod:`csmcore.tickets`, which :func:`next_events` draws itself."""

_TAILORED: dict[type, Callable[[st.SearchStrategy[datetime]], st.SearchStrategy[Any]]] = {}


def register_event_strategy(
    *,
    event_type: type[TicketEventBase],
    strategy: Callable[[st.SearchStrategy[datetime]], st.SearchStrategy[Any]],
) -> None:
    """Give the declared event type ``event_type`` a tailored strategy: ``strategy(at)``
    returns a strategy of valid events at instants drawn from ``at``. Without one, events
    are drawn from a strategy derived from the type's attrs fields."""
    if not (isinstance(event_type, type) and issubclass(event_type, TicketEventBase)):
        raise InvalidArgument(f"event_type={event_type!r} is not a ticket event class")
    if not callable(strategy):
        raise InvalidArgument(f"strategy={strategy!r} is not callable (at -> strategy)")
    _TAILORED[event_type] = strategy


_STATUS_NAMES = st.sampled_from((*(s.value for s in Status), *sorted(CUSTOM_STATUSES)))

_PARTS: dict[str, Callable[[], st.SearchStrategy[Any]]] = {
    "names": lambda: names(),
    "tags": lambda: tags(),
    "instants": lambda: instants(),
    "field_names": lambda: field_names(),
    "field_values": lambda: field_values(),
    "status_names": lambda: _STATUS_NAMES,
}


def _event_table(
    at: st.SearchStrategy[datetime],
) -> dict[type[TicketEventBase], st.SearchStrategy[Any]]:
    built_in = _event_strategies(at)
    table: dict[type[TicketEventBase], st.SearchStrategy[Any]] = {}
    for cls in event_types():
        tailored = _TAILORED.get(cls)
        if tailored is not None:
            table[cls] = tailored(at)
        elif cls in built_in:
            table[cls] = built_in[cls]
        else:
            table[cls] = check.derived_event_strategy(cls, at, _PARTS)
    return table


def ticket_events(
    *,
    types: Collection[type[TicketEventBase]] | None = None,
    at: st.SearchStrategy[datetime] | None = None,
) -> st.SearchStrategy[TicketEvent]:
    """Single ticket events of the given ``types`` (every declared event type by default),
    each valid on its own, at an instant drawn from ``at``. :func:`next_events` draws events
    valid for a given ticket instead."""
    check.check_strategy("at", at)
    table = _event_table(at if at is not None else instants())
    chosen = (
        list(table)
        if types is None
        else check.check_classes("types", types, list(table), "ticket event classes")
    )
    return st.one_of([table[t] for t in chosen])


@st.composite
def _next_event(draw: st.DrawFn, ticket: Ticket, max_gap: timedelta) -> TicketEvent:
    gap = draw(st.integers(0, int(max_gap.total_seconds())))
    at = ticket.updated_at + timedelta(seconds=gap)
    status = ticket.status
    # a change of requester is accepted on any ticket that is not merged, closed included
    kinds = ["priority", "assign", "tags", "fields", "requester"]
    if status is not Status.CLOSED:
        kinds += ["comment", "comment", "status", "merge"]
    if status in (Status.SOLVED, Status.CLOSED):
        kinds.append("reopen")
    # event types declared outside csmcore.tickets: csmcore's own (SatisfactionRated, ...) and
    # those a tester gave a strategy (register_event_strategy). Others a process happens to
    # have declared (a documentation example, another test module) are left out: a history
    # drawn for one property should not depend on what else ran in the process.
    declared = [
        cls
        for cls in event_types()
        if cls not in _BUILT_IN and (cls in _TAILORED or cls.__module__.startswith("csmcore."))
    ]
    if declared:
        kinds.append("declared")
    kind = draw(st.sampled_from(kinds))
    actor = draw(st.none() | names())
    if kind == "declared":
        event = draw(ticket_events(types=declared, at=st.just(at)))
        try:
            ticket.apply(event)
        except InvalidTransition:  # not valid for this ticket: a comment instead
            return draw(_commented(st.just(at)))
        return event
    if kind == "priority":
        priority, priority_name = draw(priority_pairs())
        return PriorityChanged(at=at, actor=actor, priority=priority, priority_name=priority_name)
    if kind == "requester":
        return RequesterChanged(at=at, actor=actor, requester=draw(names()))
    if kind == "assign":
        return Assigned(
            at=at, actor=actor, assignee=draw(st.none() | names()), group=draw(st.none() | names())
        )
    if kind == "tags":
        added = draw(st.frozensets(tags(), max_size=2))
        removed = draw(
            st.frozensets(st.sampled_from(sorted(ticket.tags)), max_size=2)
            if ticket.tags
            else st.just(frozenset[str]())
        )
        return TagsChanged(at=at, actor=actor, added=added - removed, removed=removed)
    if kind == "fields":
        changes = draw(
            st.dictionaries(field_names(), st.none() | field_values(), min_size=1, max_size=2)
        )
        return FieldsChanged(at=at, actor=actor, changes=changes)
    if kind == "comment":
        return draw(_commented(st.just(at)))
    if kind == "status":
        name = draw(st.none() | st.sampled_from(sorted(CUSTOM_STATUSES)))
        if name is not None:  # a custom status name (none of them is a kind of NEW)
            return StatusChanged(at=at, actor=actor, status=CUSTOM_STATUSES[name], status_name=name)
        choices = [s for s in Status if s is not Status.NEW or status is Status.NEW]
        return StatusChanged(at=at, actor=actor, status=draw(st.sampled_from(choices)))
    if kind == "merge":
        into = draw(ticket_ids().filter(lambda i: i != ticket.id))
        return Merged(at=at, actor=actor, into=into)
    return draw(_reopened(st.just(at)))


def next_events(
    *, ticket: Ticket, max_gap: timedelta = timedelta(days=3)
) -> st.SearchStrategy[TicketEvent]:
    """An event that may follow ``ticket`` (valid for ``ticket.apply``), at most ``max_gap``
    after its last update: any of :mod:`csmcore.tickets`'s change events, or one of a type
    declared elsewhere in csmcore (``SatisfactionRated``) or given a strategy with
    :func:`register_event_strategy` (an application's own types), when it is valid there.
    ``ticket`` must not be merged.

    Draw it for a ticket drawn first: ``data.draw(next_events(ticket=ticket))``.
    """
    if not isinstance(ticket, Ticket):
        raise InvalidArgument(f"ticket={ticket!r} is not a Ticket")
    if ticket.merged_into is not None:
        raise InvalidArgument(f"ticket={ticket.id!r} is merged; no event may follow it")
    check.check_timedelta("max_gap", max_gap)
    return _next_event(ticket, max_gap)


@st.composite
def _tickets(
    draw: st.DrawFn,
    ticket_id: st.SearchStrategy[str] | None,
    min_events: int,
    max_events: int,
    start: st.SearchStrategy[datetime] | None,
) -> Ticket:
    created = draw(ticket_created(ticket_id=ticket_id, at=start))
    ticket = Ticket.from_events([created])
    wanted = draw(st.integers(min_events, max_events))
    while ticket.version < wanted and ticket.merged_into is None:
        event = draw(next_events(ticket=ticket))
        try:
            ticket = ticket.apply(event)
        except InvalidTransition:  # pragma: no cover - next_events only draws valid events
            continue
    return ticket


def tickets(
    *,
    ticket_id: st.SearchStrategy[str] | None = None,
    min_events: int = 1,
    max_events: int = 8,
    start: st.SearchStrategy[datetime] | None = None,
) -> st.SearchStrategy[Ticket]:
    """Tickets with a valid history of ``min_events``..``max_events`` events (fewer when the
    history ends in a merge), created at an instant drawn from ``start``."""
    check.check_strategy("ticket_id", ticket_id)
    check.check_strategy("start", start)
    check.check_size("min_events", min_events, "max_events", max_events, minimum=1)
    return _tickets(ticket_id, min_events, max_events, start)
