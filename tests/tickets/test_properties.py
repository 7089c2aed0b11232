"""Hypothesis properties of the ticket model, checked against a plain reference fold.

``tickets()`` builds tickets from random *valid* histories: at every step it only draws events
that are legal for the ticket as it stands, so every history it makes must be accepted.
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore._values import check_text, text_problem
from csmcore.errors import InvalidTransition, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.tickets import (
    Assigned,
    FieldsChanged,
    Merged,
    Priority,
    PriorityChanged,
    Reopened,
    Status,
    StatusChanged,
    TagsChanged,
    Ticket,
    TicketCreated,
    TicketEvent,
)
from tests.tickets.support import ZONES, gaps, next_event, tickets


def reference(events: tuple[TicketEvent, ...]) -> dict[str, Any]:
    """The derived state, by a deliberately simple replay written independently of tickets.py."""
    created = events[0]
    assert isinstance(created, TicketCreated)
    state: dict[str, Any] = {
        "status": created.status,
        "status_name": created.status_name or created.status.value,
        "priority": created.priority,
        "group": created.group,
        "assignee": created.assignee,
        "tags": set(created.tags),
        "fields": {k: v for k, v in created.fields.items() if v is not None},
        "merged_into": None,
        "solved_at": created.at if created.status in (Status.SOLVED, Status.CLOSED) else None,
        "reopens": 0,
    }
    unsolved = (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD)
    for event in events[1:]:
        before = state["status"]
        if isinstance(event, StatusChanged):
            state["status"] = event.status
            state["status_name"] = event.status_name or event.status.value
            if before in unsolved and event.status in (Status.SOLVED, Status.CLOSED):
                state["solved_at"] = event.at
            if before is Status.SOLVED and event.status in unsolved:
                state["reopens"] += 1
        elif isinstance(event, Reopened):
            state["status"] = event.status
            state["status_name"] = event.status.value
            state["reopens"] += 1
        elif isinstance(event, PriorityChanged):
            state["priority"] = event.priority
        elif isinstance(event, Assigned):
            state["assignee"], state["group"] = event.assignee, event.group
        elif isinstance(event, TagsChanged):
            state["tags"] = (state["tags"] | set(event.added)) - set(event.removed)
        elif isinstance(event, FieldsChanged):
            for name, value in event.changes.items():
                if value is None:
                    state["fields"].pop(name, None)
                else:
                    state["fields"][name] = value
        elif isinstance(event, Merged):
            state["merged_into"] = event.into
            if before in unsolved:  # a merge closes the ticket, as a change to closed does
                state["solved_at"] = event.at
            state["status"] = Status.CLOSED
            state["status_name"] = "closed"
    state["tags"] = frozenset(state["tags"])
    state["updated_at"] = events[-1].at
    state["version"] = len(events)
    state["created_at"] = created.at
    state["channel"] = created.channel
    state["created_by"] = created.created_by
    state["requester"] = created.requester
    state["subject"] = created.subject
    return state


def snapshot(ticket: Ticket) -> dict[str, Any]:
    return {name: getattr(ticket, name) for name in reference(ticket.events)}


@given(tickets())
def test_incremental_state_matches_the_reference_replay(ticket: Ticket) -> None:
    assert snapshot(ticket) == reference(ticket.events)
    assert all(e.at.tzinfo is timezone.utc for e in ticket.events)
    assert all(a.at <= b.at for a, b in zip(ticket.events, ticket.events[1:], strict=False))


@given(tickets())
def test_from_events_rebuilds_the_same_ticket(ticket: Ticket) -> None:
    rebuilt = Ticket.from_events(ticket.events)
    assert rebuilt == ticket
    assert hash(rebuilt) == hash(ticket)
    assert snapshot(rebuilt) == snapshot(ticket)
    assert snapshot(Ticket(id=ticket.id, events=list(ticket.events))) == snapshot(ticket)


@given(tickets())
def test_as_of_the_last_update_is_the_ticket(ticket: Ticket) -> None:
    assert ticket.as_of(ticket.updated_at) == ticket
    assert snapshot(ticket.as_of(ticket.updated_at)) == snapshot(ticket)


@given(tickets(), st.data())
def test_as_of_includes_exactly_the_events_up_to_the_instant(
    ticket: Ticket, data: st.DataObject
) -> None:
    event = data.draw(st.sampled_from(ticket.events))
    span = ticket.updated_at - ticket.created_at
    offset = data.draw(st.integers(0, span // timedelta(microseconds=1)))
    for instant in (event.at, ticket.created_at + timedelta(microseconds=offset)):
        past = ticket.as_of(instant.astimezone(data.draw(st.sampled_from(ZONES))))
        expected = tuple(e for e in ticket.events if e.at <= instant)
        assert past.events == expected
        assert snapshot(past) == reference(expected)


@given(tickets())
def test_ticket_round_trips_through_json(ticket: Ticket) -> None:
    data = json.loads(json.dumps(to_data(ticket), allow_nan=False))
    back = from_data(data, Ticket)
    assert back == ticket
    assert snapshot(back) == snapshot(ticket)
    for event in ticket.events:
        assert from_data(json.loads(json.dumps(to_data(event))), TicketEvent) == event  # type: ignore[arg-type]
        assert from_data(to_data(event), type(event)) == event


@given(tickets(), st.integers(1, 10**9))
def test_an_event_before_the_last_update_is_refused(ticket: Ticket, back_us: int) -> None:
    at = ticket.updated_at - timedelta(microseconds=back_us)
    with pytest.raises(InvalidTransition, match=r"time order|merged"):
        ticket.apply(PriorityChanged(at=at, priority=Priority.LOW))


@given(tickets(), st.data())
def test_nothing_is_accepted_after_a_merge(ticket: Ticket, data: st.DataObject) -> None:
    merged = ticket
    if merged.merged_into is None:
        if merged.status is Status.CLOSED:
            merged, _ = merged.reopen(merged.updated_at)
        merged, _ = merged.merge_into(merged.updated_at, "other")
    unmerged = Ticket.from_events(ticket.events[:1])
    candidate = data.draw(next_event(unmerged, merged.updated_at + data.draw(gaps)))
    with pytest.raises(InvalidTransition, match="nothing may follow"):
        merged.apply(candidate)


@given(tickets())
def test_a_failed_apply_leaves_the_ticket_as_it_was(ticket: Ticket) -> None:
    before = snapshot(ticket)
    with pytest.raises(InvalidTransition):
        ticket.apply(ticket.events[0])
    assert snapshot(ticket) == before


@given(st.text())
def test_text_is_accepted_exactly_when_every_store_can_keep_it(text: str) -> None:
    """Any str without NUL that encodes as UTF-8 is accepted; anything else is refused."""
    storable = "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    assert (text_problem(text) is None) is storable
    if storable:
        assert check_text(text, "subject") is text
    else:
        with pytest.raises(ValidationError, match=r"subject=.*cannot be stored"):
            check_text(text, "subject")
