"""Custom field integers have at most 640 digits (issue 11): larger ones are refused when a
ticket is built or changed and when it is read from data, with the value's size and the accepted
range; wrongly typed ids are refused as InvalidType."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore.errors import InvalidType, SerializationError, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.testing.builders import make_ticket
from csmcore.tickets import Ticket

AT = datetime(2025, 3, 3, 9, tzinfo=timezone.utc)
RANGE = "int of at most 640 digits"
LARGEST = 10**640 - 1


@pytest.mark.parametrize(
    "number", [10**5000, LARGEST + 1, -LARGEST - 1], ids=["10**5000", "10**640", "-10**640"]
)
def test_huge_integers_are_refused_in_custom_fields(number: int) -> None:
    with pytest.raises(ValidationError, match=r"fields\['n'\]=.* is outside the integers") as info:
        make_ticket("T-1", fields={"n": number})
    assert RANGE in str(info.value)
    ticket = make_ticket("T-1")
    with pytest.raises(ValidationError, match=r"changes\['n'\]=.*at most 640 digits"):
        ticket.set_fields(AT, {"n": number})
    with pytest.raises(ValidationError, match=r"at most 640 digits"):
        ticket.set_fields(AT, n=number)


def test_a_huge_integer_is_named_by_its_size() -> None:
    with pytest.raises(ValidationError, match=r"=<an integer of 5001 digits> is outside"):
        make_ticket("T-1", fields={"n": 10**5000})


@pytest.mark.parametrize("number", [LARGEST + 1, 10**4000], ids=["10**640", "10**4000"])
def test_huge_integers_are_refused_when_read(number: int) -> None:
    data: Any = to_data(make_ticket("T-1", fields={"n": 1}))
    data["events"][0]["fields"]["n"] = number
    with pytest.raises(SerializationError, match=r"at most 640 digits"):
        from_data(data, Ticket)


@given(st.integers(-LARGEST, LARGEST) | st.sampled_from([LARGEST, -LARGEST, 2**64 + 1]))
def test_every_integer_of_at_most_640_digits_is_kept_exactly(number: int) -> None:
    ticket = make_ticket("T-1", fields={"n": number})
    assert from_data(to_data(ticket), Ticket).fields["n"] == number


@pytest.mark.parametrize("bad", [10**5000, 7, b"T-1"], ids=["10**5000", "7", "bytes"])
def test_a_ticket_id_of_the_wrong_type_is_invalid_type(bad: object) -> None:
    with pytest.raises(InvalidType, match=r"ticket_id=.* is a (int|bytes); expected"):
        make_ticket(bad)  # type: ignore[arg-type]


def test_policy_positions_and_versions_of_more_than_640_digits_are_refused() -> None:
    from csmcore.sla import SlaError
    from csmcore.testing.builders import make_policy

    policy = make_policy("p")
    with pytest.raises(SlaError, match=r"position=<an integer of 5001 digits> is outside"):
        attrs.evolve(policy, position=10**5000)
    with pytest.raises(SlaError, match=r"version=-?<an integer of 641 digits>"):
        attrs.evolve(policy, version=LARGEST + 1)
    assert attrs.evolve(policy, position=-LARGEST, version=LARGEST).version == LARGEST
