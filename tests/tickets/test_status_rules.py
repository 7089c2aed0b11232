"""Issue 10: repeating a status is a no-op for every status; leaving solved or closed is the
same whichever method the caller uses; reopen can name a custom status."""

from __future__ import annotations

import json

import pytest

from csmcore.errors import ErrorCode, InvalidTransition, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.tickets import (
    Reopened,
    Status,
    StatusChanged,
    StatusMap,
    Ticket,
    event_from_data,
    event_to_data,
)
from tests.tickets.support import MIN, T0, new_ticket

MAP = StatusMap(
    custom={
        "Awaiting Vendor": Status.ON_HOLD,
        "Reopened by customer": Status.OPEN,
        "Resolved": Status.SOLVED,
        "Closed - duplicate": Status.CLOSED,
    }
)


@pytest.mark.parametrize("status", list(Status))
def test_repeating_the_current_status_is_accepted_and_changes_nothing(status: Status) -> None:
    ticket = new_ticket()
    if status is not Status.NEW:
        ticket, _ = ticket.set_status(T0 + MIN, status)
    again, event = ticket.set_status(T0 + 2 * MIN, status)
    assert type(event) is StatusChanged
    assert again.version == ticket.version + 1
    assert again._state == ticket._state  # the same status, name, solved_at and reopens
    assert (again.status, again.solved_at, again.reopens) == (
        ticket.status,
        ticket.solved_at,
        ticket.reopens,
    )
    assert Ticket.from_events(again.events) == again


@pytest.mark.parametrize("name", ["Resolved", "Closed - duplicate", "Awaiting Vendor"])
def test_repeating_a_custom_status_is_accepted_too(name: str) -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, name, MAP)
    again, _ = ticket.set_status(T0 + 2 * MIN, name, MAP)
    assert (again.status_name, again.solved_at, again.reopens) == (
        name,
        ticket.solved_at,
        0,
    )


def test_a_closed_ticket_still_refuses_another_closed_name_and_merged_refuses_all() -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, Status.CLOSED)
    with pytest.raises(InvalidTransition) as raised:
        ticket.set_status(T0 + 2 * MIN, "Closed - duplicate", MAP)
    assert raised.value.code == ErrorCode.TICKET_CLOSED
    merged, _ = new_ticket().merge_into(T0 + MIN, "T-2")
    with pytest.raises(InvalidTransition) as raised:
        merged.set_status(T0 + 2 * MIN, Status.CLOSED)
    assert raised.value.code == ErrorCode.AFTER_MERGE


@pytest.mark.parametrize("left", [Status.SOLVED, Status.CLOSED])
@pytest.mark.parametrize("target", [Status.OPEN, Status.PENDING, Status.ON_HOLD])
def test_leaving_solved_or_closed_is_the_same_with_set_status_and_reopen(
    left: Status, target: Status
) -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, left)
    by_status, via_status = ticket.set_status(T0 + 2 * MIN, target)
    by_reopen, via_reopen = ticket.reopen(T0 + 2 * MIN, target)
    assert via_status == via_reopen == Reopened(at=T0 + 2 * MIN, status=target)
    assert by_status == by_reopen
    assert by_status._state == by_reopen._state
    assert (by_status.status, by_status.reopens) == (target, 1)
    # a raw StatusChanged out of solved folds the same as the Reopened
    if left is Status.SOLVED:
        raw = ticket.apply(StatusChanged(at=T0 + 2 * MIN, status=target))
        assert raw._state == by_reopen._state


def test_set_status_within_solved_and_closed_is_no_reopen() -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, Status.SOLVED)
    closed, event = ticket.set_status(T0 + 2 * MIN, Status.CLOSED)
    assert type(event) is StatusChanged
    assert (closed.reopens, closed.solved_at) == (0, T0 + MIN)
    with pytest.raises(InvalidTransition) as raised:
        ticket.set_status(T0 + 2 * MIN, Status.NEW)
    assert raised.value.code == ErrorCode.BACK_TO_NEW


@pytest.mark.parametrize("left", [Status.SOLVED, Status.CLOSED])
def test_reopen_and_set_status_can_name_a_custom_status(left: Status) -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, left)
    by_reopen, event = ticket.reopen(T0 + 2 * MIN, "Reopened by customer", MAP)
    assert (event.status, event.status_name) == (Status.OPEN, "Reopened by customer")
    assert (by_reopen.status, by_reopen.status_name, by_reopen.reopens) == (
        Status.OPEN,
        "Reopened by customer",
        1,
    )
    by_status, same = ticket.set_status(T0 + 2 * MIN, "Reopened by customer", MAP)
    assert same == event
    assert by_status == by_reopen
    on_hold, _ = ticket.reopen(T0 + 2 * MIN, "Awaiting Vendor", MAP)
    assert (on_hold.status, on_hold.status_name) == (Status.ON_HOLD, "Awaiting Vendor")
    with pytest.raises(ValidationError) as refused:
        ticket.reopen(T0 + 2 * MIN, "Resolved", MAP)  # a solved category: no reopen target
    assert refused.value.code == ErrorCode.INVALID_VALUE
    with pytest.raises(ValidationError) as unknown:
        ticket.reopen(T0 + 2 * MIN, "Nope", MAP)
    assert unknown.value.code == ErrorCode.UNKNOWN_NAME


def test_reopened_with_a_name_round_trips_and_old_data_reads() -> None:
    event = Reopened(at=T0, status=Status.PENDING, status_name="Waiting on customer")
    data = event_to_data(event)
    assert data["schema"] == 2
    assert data["status_name"] == "Waiting on customer"
    assert event_from_data(json.loads(json.dumps(data))) == event
    assert from_data(json.loads(json.dumps(to_data(event))), Reopened) == event
    old = {"type": "reopened", "at": T0.isoformat(), "status": "pending"}  # 0.1.0.dev0
    assert event_from_data(old) == Reopened(at=T0, status=Status.PENDING)
    v1 = {"type": "ticket.reopened", "at": T0.isoformat(), "status": "open", "schema": 1}
    assert event_from_data(v1) == Reopened(at=T0)
    with pytest.raises(ValidationError):
        Reopened(at=T0, status=Status.OPEN, status_name="pending")  # another category's name
