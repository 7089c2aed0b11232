"""Issue 10: configurable priority names (PriorityMap), kept as ``priority_name`` besides the
``priority`` category that SLA targets and conditions compare."""

from __future__ import annotations

import json

import pytest

from csmcore.conditions import Compare, Eq
from csmcore.errors import ErrorCode, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.tickets import (
    Priority,
    PriorityChanged,
    PriorityMap,
    StatusMap,
    Ticket,
    TicketCreated,
    event_from_data,
    event_to_data,
)
from tests.tickets import support
from tests.tickets.support import MIN, T0

SNOW = PriorityMap(
    custom={
        "1 - Critical": Priority.URGENT,
        "2 - High": Priority.HIGH,
        "3 - Moderate": Priority.NORMAL,
        "4 - Low": Priority.LOW,
        "5 - Planning": Priority.LOW,
    }
)


def new_ticket(priority: str | Priority = "3 - Moderate") -> Ticket:
    return support.new_ticket(priority=priority, priority_map=SNOW)


def test_priority_map_resolves_names_to_categories_and_ranks() -> None:
    assert SNOW.category("1 - Critical") is Priority.URGENT
    assert SNOW.category("high") is Priority.HIGH
    assert SNOW.resolve("5 - Planning") == (Priority.LOW, "5 - Planning")
    assert SNOW.resolve(Priority.LOW) == (Priority.LOW, None)
    assert SNOW.resolve("low") == (Priority.LOW, None)
    assert SNOW.rank("1 - Critical") == 3
    assert SNOW.rank("5 - Planning") == SNOW.rank("4 - Low") == 0
    assert SNOW.names[:4] == ("low", "normal", "high", "urgent")
    assert "2 - High" in SNOW
    with pytest.raises(ValidationError) as raised:
        SNOW.category("P0")
    assert (raised.value.code, raised.value.value) == (ErrorCode.UNKNOWN_NAME, "P0")
    with pytest.raises(ValidationError):
        PriorityMap(custom={"high": Priority.LOW})  # a category's own name maps to itself
    assert from_data(json.loads(json.dumps(to_data(SNOW))), PriorityMap) == SNOW


def test_tickets_keep_the_name_and_the_category() -> None:
    ticket = new_ticket()
    assert (ticket.priority, ticket.priority_name) == (Priority.NORMAL, "3 - Moderate")
    ticket, event = ticket.set_priority(T0 + MIN, "1 - Critical", SNOW)
    assert event == PriorityChanged(
        at=T0 + MIN, priority=Priority.URGENT, priority_name="1 - Critical"
    )
    assert (ticket.priority, ticket.priority_name) == (Priority.URGENT, "1 - Critical")
    ticket, _ = ticket.set_priority(T0 + 2 * MIN, Priority.HIGH)
    assert (ticket.priority, ticket.priority_name) == (Priority.HIGH, "high")
    assert ticket.as_of(T0).priority_name == "3 - Moderate"
    plain = new_ticket(Priority.LOW)
    assert (plain.priority, plain.priority_name) == (Priority.LOW, "low")
    with pytest.raises(ValidationError):
        ticket.set_priority(T0 + 3 * MIN, "1 - Critical")  # no map: unknown name


def test_conditions_compare_the_category_and_match_the_name() -> None:
    ticket = new_ticket("2 - High")
    assert Compare("priority", ">=", Priority.HIGH).matches(ticket)
    assert Eq("priority_name", "2 - High").matches(ticket)
    assert not Eq("priority_name", "high").matches(ticket)


def test_a_name_must_not_be_another_categorys_value() -> None:
    with pytest.raises(ValidationError):
        PriorityChanged(at=T0, priority=Priority.LOW, priority_name="urgent")
    assert PriorityChanged(at=T0, priority=Priority.LOW, priority_name="low").priority_name == "low"


def test_priority_names_round_trip_and_old_data_reads() -> None:
    ticket = new_ticket("1 - Critical")
    ticket, _ = ticket.set_priority(T0 + MIN, "5 - Planning", SNOW)
    for event in ticket.events:
        data = event_to_data(event)
        assert data["schema"] == 2
        assert event_from_data(json.loads(json.dumps(data))) == event
    assert from_data(json.loads(json.dumps(to_data(ticket))), Ticket) == ticket
    old_created = {
        "type": "created",
        "at": T0.isoformat(),
        "ticket_id": "T-1",
        "created_by": "agent",
        "channel": "phone",
        "priority": "high",
        "requester": "ada",
    }
    created = event_from_data(old_created)
    assert isinstance(created, TicketCreated)
    assert created.priority_name is None
    old_change = {"type": "priority_changed", "at": T0.isoformat(), "priority": "low"}
    assert event_from_data(old_change) == PriorityChanged(at=T0, priority=Priority.LOW)


@pytest.mark.parametrize(
    ("make", "message", "field", "value"),
    [
        (
            lambda: PriorityMap(custom=5),
            "custom=5 is not a mapping of custom priority name to priority category",
            "custom",
            5,
        ),
        (
            lambda: PriorityMap(custom={"": "low"}),
            "custom priority name '' is not a non-empty string",
            "custom",
            "",
        ),
        (
            lambda: PriorityMap(custom={7: "low"}),
            "custom priority name 7 is not a non-empty string",
            "custom",
            7,
        ),
        (
            lambda: PriorityMap(custom={"high": "low"}),
            "custom['high']='low': 'high' is the name of the category 'high' itself and cannot "
            "map to another one",
            "custom",
            "high",
        ),
        # A status map's errors name the field and the bad value, as a priority map's do.
        (
            lambda: StatusMap(custom=5),
            "custom=5 is not a mapping of custom status name to status category",
            "custom",
            5,
        ),
        (
            lambda: StatusMap(custom={"": "open"}),
            "custom status name '' is not a non-empty string",
            "custom",
            "",
        ),
        (
            lambda: StatusMap(custom={7: "open"}),
            "custom status name 7 is not a non-empty string",
            "custom",
            7,
        ),
        (
            lambda: StatusMap(custom={"open": "new"}),
            "custom['open']='new': 'open' is the name of the category 'open' itself and cannot "
            "map to another one",
            "custom",
            "open",
        ),
    ],
)
def test_a_bad_custom_name_map_is_refused_naming_the_name(
    make: object, message: str, field: str | None, value: object
) -> None:
    with pytest.raises(ValidationError) as info:
        make()  # type: ignore[operator]
    assert (str(info.value), info.value.field, info.value.value) == (message, field, value)
