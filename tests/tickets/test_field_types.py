"""Issue 10: custom fields hold aware datetimes and finite Decimals, round-trip exactly through
the converter and JSON, and compare in conditions."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore.conditions import Compare, Eq, In, structure_condition, unstructure_condition
from csmcore.errors import ErrorCode, SerializationError, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.testing.strategies import field_values
from csmcore.tickets import FieldsChanged, Ticket, event_from_data, event_to_data

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
BERLIN = ZoneInfo("Europe/Berlin")


def ticket_with(**fields: Any) -> Ticket:
    ticket, _ = Ticket.create(
        at=T0,
        ticket_id="T-1",
        created_by="requester",
        channel="email",
        priority="normal",
        requester="ada",
        fields=fields,
    )
    return ticket


def test_datetimes_are_kept_in_utc_and_decimals_exactly() -> None:
    local = datetime(2025, 3, 3, 10, 30, tzinfo=BERLIN)
    ticket = ticket_with(due=local, amount=Decimal("10.50"), big=Decimal("1E+3"))
    assert ticket.fields["due"] == local
    due = ticket.fields["due"]
    assert isinstance(due, datetime)
    assert due.tzinfo is timezone.utc
    assert str(ticket.fields["amount"]) == "10.50"
    assert str(ticket.fields["big"]) == "1E+3"


def test_the_json_form_is_tagged_and_round_trips_exactly() -> None:
    ticket = ticket_with(due=T0, amount=Decimal("10.50"), name="x", n=1, f=0.5, b=True)
    created = ticket.created
    data = event_to_data(created)
    assert data["fields"] == {
        "amount": {"$decimal": "10.50"},
        "b": True,
        "due": {"$datetime": "2025-03-03T09:00:00+00:00"},
        "f": 0.5,
        "n": 1,
        "name": "x",
    }
    again = event_from_data(json.loads(json.dumps(data)))
    assert again == created
    assert str(again.fields["amount"]) == "10.50"
    whole = from_data(json.loads(json.dumps(to_data(ticket))), Ticket)
    assert whole == ticket
    due = whole.fields["due"]
    assert isinstance(due, datetime)
    assert due.tzinfo is timezone.utc


@pytest.mark.parametrize(
    "bad",
    [
        {"$decimal": "NaN"},
        {"$decimal": "x"},
        {"$decimal": 1},
        {"$datetime": "2025-03-03T09:00:00"},  # naive
        {"$datetime": "yesterday"},
        {"$datetime": "2025-03-03T09:00:00+00:00", "extra": 1},
        {"other": 1},
    ],
)
def test_malformed_tagged_values_are_refused_on_every_path(bad: dict[str, Any]) -> None:
    data = {"type": "ticket.fields_changed", "at": T0.isoformat(), "changes": {"x": bad}}
    with pytest.raises(SerializationError) as raised:
        event_from_data(data)
    assert raised.value.value == bad


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (Decimal("NaN"), "not a finite number"),
        (Decimal("Infinity"), "not a finite number"),
        (datetime(2025, 1, 1), "naive datetime"),
        ({"$decimal": "1"}, "is a dict"),  # the JSON form is no Python value
    ],
)
def test_bad_values_are_refused(value: object, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as raised:
        FieldsChanged(at=T0, changes={"x": value})
    assert (raised.value.code, raised.value.field) == (ErrorCode.INVALID_FIELD_VALUE, "x")


def test_conditions_compare_datetimes_and_decimals() -> None:
    ticket = ticket_with(due=T0, amount=Decimal("10.50"))
    assert Compare("fields.due", ">", T0 - timedelta(hours=1)).matches(ticket)
    assert Compare("fields.due", "<=", datetime(2025, 3, 3, 10, 0, tzinfo=BERLIN)).matches(ticket)
    assert not Compare("fields.due", ">", T0).matches(ticket)
    assert Compare("fields.amount", ">", 10).matches(ticket)
    assert Compare("fields.amount", "<", Decimal("10.51")).matches(ticket)
    assert Compare("fields.amount", "<", 10.6).matches(ticket)
    assert Eq("fields.amount", Decimal("10.5")).matches(ticket)
    assert Eq("fields.amount", 10.5).matches(ticket)
    assert Eq("fields.due", datetime(2025, 3, 3, 10, 0, tzinfo=BERLIN)).matches(ticket)
    assert In("fields.amount", [Decimal("10.50"), 3]).matches(ticket)
    # a datetime never compares with a number or a string, and the other way round
    assert not Compare("fields.due", ">", 0).matches(ticket)
    assert not Compare("fields.amount", "<", T0).matches(ticket)
    assert not Eq("fields.amount", T0).matches(ticket)
    with pytest.raises(ValidationError):
        Compare("fields.due", ">", datetime(2025, 1, 1))
    with pytest.raises(ValidationError):
        Compare("fields.amount", ">", Decimal("NaN"))


@pytest.mark.parametrize(
    "condition",
    [
        Compare("fields.due", ">", T0),
        Compare("fields.amount", "<=", Decimal("10.50")),
        Eq("fields.amount", Decimal("1E+3")),
        In("fields.due", [T0, T0 + timedelta(days=1)]),
    ],
    ids=repr,
)
def test_conditions_with_datetimes_and_decimals_round_trip(condition: Any) -> None:
    data = json.loads(json.dumps(unstructure_condition(condition)))
    again = structure_condition(data)
    assert again == condition
    assert unstructure_condition(again) == unstructure_condition(condition)


@given(st.dictionaries(st.sampled_from(["a", "b", "c"]), field_values(), max_size=3))
def test_every_field_value_round_trips_through_json(fields: dict[str, Any]) -> None:
    event = FieldsChanged(at=T0, changes=fields)
    again = event_from_data(json.loads(json.dumps(event_to_data(event))))
    assert again == event
    for name, value in event.changes.items():
        assert type(again.changes[name]) is type(value)
        assert str(again.changes[name]) == str(value)


def test_frozen_map_views_are_the_inner_dict_s_read_only_views() -> None:
    from collections.abc import ItemsView, KeysView, ValuesView

    from csmcore.tickets import FrozenMap

    fields = FrozenMap([("a", 1), ("b", None)])
    assert isinstance(fields.keys(), KeysView)
    assert list(fields.keys()) == ["a", "b"]
    assert isinstance(fields.values(), ValuesView)
    assert None in fields.values()
    assert isinstance(fields.items(), ItemsView)
    assert ("a", 1) in fields.items()
    assert dict(fields.items()) == {"a": 1, "b": None}
    assert not hasattr(fields.values(), "__setitem__")
    with pytest.raises(TypeError):
        fields.items().mapping["a"] = 2  # type: ignore[attr-defined]
    assert fields == {"a": 1, "b": None}
