"""Builders and Hypothesis strategies the ticket and condition tests share: random valid
ticket histories over a small vocabulary (so that conditions hit), with instants in several
zones."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from csmcore.testing.builders import T0, make_ticket
from csmcore.tickets import (
    Assigned,
    Channel,
    Commented,
    FieldsChanged,
    Merged,
    Priority,
    PriorityChanged,
    Reopened,
    Role,
    Status,
    StatusChanged,
    TagsChanged,
    Ticket,
    TicketCreated,
    TicketEvent,
)

__all__ = [
    "FIELD_NAMES",
    "GROUPS",
    "MIN",
    "PEOPLE",
    "STATUS_NAMES",
    "T0",
    "TAGS",
    "ZONES",
    "actors",
    "created_events",
    "field_maps",
    "field_values",
    "gaps",
    "legal_kinds",
    "new_ticket",
    "next_event",
    "optional_groups",
    "optional_names",
    "status_names",
    "storable_text",
    "tag_sets",
    "tickets",
]

MIN = timedelta(minutes=1)


def new_ticket(**changes: Any) -> Ticket:
    """Ticket ``T-1``, created at :data:`T0` by its requester ``"ada"`` by email at normal
    priority; ``changes`` override any argument of ``Ticket.create``."""
    return make_ticket("T-1", requester="ada", **changes)


ZONES = [
    timezone.utc,
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Asia/Kolkata"),
]
PEOPLE = ["ada", "grace", "linus", "barbara"]
GROUPS = ["tier1", "tier2", "billing"]
TAGS = ["vip", "billing", "bug", "de", "en"]
FIELD_NAMES = ["plan", "seats", "score", "beta"]
STATUS_NAMES = [None, "Awaiting Vendor", "Escalated"]

# Text a store can keep: csmcore refuses NUL and lone surrogates (tested in test_tickets.py).
storable_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=10)

field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10_000, 10_000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6),
)
field_maps = st.dictionaries(st.sampled_from(FIELD_NAMES), field_values, max_size=3)
tag_sets = st.frozensets(st.sampled_from(TAGS), max_size=3)
optional_names = st.one_of(st.none(), st.sampled_from(PEOPLE))
optional_groups = st.one_of(st.none(), st.sampled_from(GROUPS))
actors = st.one_of(st.none(), st.sampled_from(PEOPLE))
gaps = st.one_of(
    st.just(timedelta(0)),
    st.integers(1, 3 * 86_400).map(lambda s: timedelta(seconds=s)),
    st.integers(1, 10**6).map(lambda us: timedelta(microseconds=us)),
)


def status_names(status: Status) -> st.SearchStrategy[str | None]:
    return st.sampled_from([*STATUS_NAMES, status.value])


@st.composite
def created_events(draw: st.DrawFn) -> TicketCreated:
    status = draw(st.sampled_from(list(Status)))
    moment = draw(
        st.datetimes(
            min_value=datetime(2020, 1, 1),
            max_value=datetime(2030, 1, 1),
            timezones=st.sampled_from(ZONES),
        )
    )
    return TicketCreated(
        at=moment,
        actor=draw(actors),
        ticket_id=draw(st.text("ABC-0123456789", min_size=1, max_size=6)),
        created_by=draw(st.sampled_from(list(Role))),
        channel=draw(st.sampled_from(list(Channel))),
        priority=draw(st.sampled_from(list(Priority))),
        requester=draw(st.sampled_from(PEOPLE)),
        subject=draw(storable_text),
        group=draw(optional_groups),
        assignee=draw(optional_names),
        status=status,
        status_name=draw(status_names(status)),
        tags=draw(tag_sets),
        fields=draw(field_maps),
    )


def legal_kinds(ticket: Ticket) -> list[str]:
    """Event kinds that may follow ``ticket`` (it is never merged here)."""
    kinds = ["priority", "assigned", "tags", "fields"]
    if ticket.status is Status.CLOSED:
        return [*kinds, "reopened"]
    kinds += ["status", "commented", "commented", "merged"]
    if ticket.status is Status.SOLVED:
        kinds.append("reopened")
    return kinds


@st.composite
def next_event(draw: st.DrawFn, ticket: Ticket, at: datetime) -> TicketEvent:
    kind = draw(st.sampled_from(legal_kinds(ticket)))
    at = at.astimezone(draw(st.sampled_from(ZONES)))
    actor = draw(actors)
    if kind == "status":
        choices = list(Status) if ticket.status is Status.NEW else list(Status)[1:]
        status = draw(st.sampled_from(choices))
        return StatusChanged(
            at=at, actor=actor, status=status, status_name=draw(status_names(status))
        )
    if kind == "priority":
        return PriorityChanged(at=at, actor=actor, priority=draw(st.sampled_from(list(Priority))))
    if kind == "assigned":
        return Assigned(
            at=at, actor=actor, assignee=draw(optional_names), group=draw(optional_groups)
        )
    if kind == "commented":
        role = draw(st.sampled_from(list(Role)))
        on_behalf = role is not Role.REQUESTER and draw(st.booleans())
        return Commented(
            at=at,
            actor=actor,
            author_role=role,
            public=draw(st.booleans()),
            author=draw(optional_names),
            on_behalf_of_requester=on_behalf,
        )
    if kind == "tags":
        added = draw(tag_sets)
        removed = draw(tag_sets) - added
        return TagsChanged(at=at, actor=actor, added=added, removed=removed)
    if kind == "fields":
        return FieldsChanged(at=at, actor=actor, changes=draw(field_maps))
    if kind == "merged":
        return Merged(at=at, actor=actor, into=ticket.id + "-main")
    return Reopened(
        at=at,
        actor=actor,
        status=draw(st.sampled_from([Status.OPEN, Status.PENDING, Status.ON_HOLD])),
    )


@st.composite
def tickets(draw: st.DrawFn, max_events: int = 12) -> Ticket:
    """A ticket built event by event from a random valid history."""
    ticket = Ticket.from_events([draw(created_events())])
    for _ in range(draw(st.integers(0, max_events))):
        if ticket.merged_into is not None:
            break
        at = ticket.updated_at + draw(gaps)
        ticket = ticket.apply(draw(next_event(ticket, at)))
    return ticket
