"""csmcore.testing.strategies: every strategy draws valid, serialisable domain values, and the
types are registered for st.from_type through Hypothesis's entry point."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore import conditions as cd
from csmcore.calendars import BusinessCalendar
from csmcore.serialization import from_data, to_data
from csmcore.sla import SlaPolicy, SlaTarget
from csmcore.testing import strategies as cs
from csmcore.tickets import StatusMap, Ticket, TicketCreated


@given(cs.tickets(min_events=2, max_events=6))
def test_tickets_have_valid_ordered_histories(ticket: Ticket) -> None:
    assert Ticket.from_events(ticket.events) == ticket  # re-validates every transition
    assert ticket.version <= 6
    assert ticket.version >= 2
    assert all(a.at <= b.at for a, b in zip(ticket.events, ticket.events[1:], strict=False))
    assert from_data(to_data(ticket), Ticket) == ticket


@given(cs.tickets(ticket_id=st.just("fixed"), min_events=3, max_events=3))
def test_tickets_respect_the_id_and_event_bounds(ticket: Ticket) -> None:
    assert ticket.id == "fixed"
    assert ticket.version == 3 or ticket.merged_into is not None


@settings(max_examples=100)
@given(st.data())
def test_next_events_always_apply(data: st.DataObject) -> None:
    ticket = data.draw(cs.tickets(max_events=4))
    if ticket.merged_into is None:
        event = data.draw(cs.next_events(ticket, max_gap=timedelta(hours=1)))
        after = ticket.apply(event)
        assert after.version == ticket.version + 1
        assert event.at - ticket.updated_at <= timedelta(hours=1)


@settings(max_examples=80)
@given(cs.conditions(), cs.tickets(max_events=4))
def test_conditions_round_trip_and_evaluate(condition: cd.Condition, ticket: Ticket) -> None:
    assert from_data(to_data(condition), cd.Condition) == condition
    assert isinstance(condition.matches(ticket), bool)
    assert (~condition).matches(ticket) is not condition.matches(ticket)


@given(cs.calendars())
def test_calendars_are_valid_and_round_trip(calendar: BusinessCalendar) -> None:
    assert from_data(to_data(calendar), BusinessCalendar) == calendar
    assert any(calendar.hours.values())


@settings(max_examples=60)
@given(cs.sla_policies())
def test_sla_policies_round_trip(policy: SlaPolicy) -> None:
    assert from_data(to_data(policy), SlaPolicy) == policy
    assert policy.default or policy.condition is not None


@given(cs.instants())
def test_instants_are_aware(instant: object) -> None:
    from datetime import datetime

    assert isinstance(instant, datetime)
    assert instant.utcoffset() is not None


@pytest.mark.parametrize(
    "cls", [Ticket, TicketCreated, BusinessCalendar, StatusMap, cd.Condition, SlaTarget, SlaPolicy]
)
def test_every_domain_type_is_registered_for_from_type(cls: type) -> None:
    @settings(max_examples=20)
    @given(st.from_type(cls))
    def check(value: object) -> None:
        assert isinstance(value, cls)

    check()


def test_strategies_take_keyword_arguments_only() -> None:
    with pytest.raises(TypeError):
        cs.tickets(None)  # type: ignore[misc]
    with pytest.raises(TypeError):
        cs.calendars(("UTC",))  # type: ignore[misc]


def test_from_type_works_through_the_entry_point_alone() -> None:
    # a fresh interpreter that never imports csmcore.testing itself
    code = (
        "from hypothesis import given, settings, strategies as st\n"
        "from csmcore.tickets import Ticket\n"
        "seen = []\n"
        "@settings(max_examples=5, database=None)\n"
        "@given(st.from_type(Ticket))\n"
        "def t(ticket): seen.append(ticket.version)\n"
        "t()\n"
        "print(len(seen) > 0 and min(seen) >= 1)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
