"""Arrival forecasts per week slot and the staffing plan per slot."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore import Ticket, staffing
from csmcore.errors import InvalidType, NaiveDatetimeError, ValidationError

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def test_hand_worked_two_weeks_with_a_partial_week() -> None:
    # Observed Monday 1 Jan 2024 to Wednesday 10 Jan (end excluded 11 Jan): Monday to Wednesday
    # occur twice, Thursday to Sunday once.
    calls = [
        datetime(2024, 1, 1, 9, 5, tzinfo=UTC),  # Mon 09:00 slot
        datetime(2024, 1, 1, 9, 55, tzinfo=UTC),
        datetime(2024, 1, 8, 9, 30, tzinfo=UTC),  # Mon 09:00, second week
        datetime(2024, 1, 4, 14, 0, tzinfo=UTC),  # Thu 14:00
        datetime(2024, 1, 10, 23, 59, tzinfo=UTC),  # Wed 23:00, second week
    ]
    f = staffing.arrival_forecast(calls, timezone="UTC", end=date(2024, 1, 11))
    assert f.start == date(2024, 1, 1)
    assert f.end == date(2024, 1, 11)
    assert f.days_observed == (2, 2, 2, 1, 1, 1, 1)
    assert f.at(0, time(9, 0)) == 1.5  # 3 calls over 2 Mondays
    assert f.at(0, time(9, 59)) == 1.5
    assert f.at(3, time(14)) == 1.0  # 1 call over 1 Thursday
    assert f.at(2, time(23)) == 0.5
    assert f.at(6, time(12)) == 0.0
    assert sum(mean for _, _, mean in f.slots()) == 1.5 + 1.0 + 0.5
    assert len(list(f.slots())) == 7 * 24


def test_local_time_zone_and_shorter_slots() -> None:
    # 08:10 UTC on Monday 1 July 2024 is 10:10 in Berlin (UTC+2)
    calls = [datetime(2024, 7, 1, 8, 10, tzinfo=UTC), datetime(2024, 7, 1, 8, 20, tzinfo=UTC)]
    f = staffing.arrival_forecast(calls, timezone="Europe/Berlin", interval=timedelta(minutes=15))
    assert f.timezone == "Europe/Berlin"
    assert f.days_observed == (1, 0, 0, 0, 0, 0, 0)
    assert f.at(0, time(10, 0)) == 1.0
    assert f.at(0, time(10, 15)) == 1.0
    assert f.at(0, time(8, 0)) == 0.0


def test_tickets_count_by_their_creation_instant() -> None:
    ticket, _ = Ticket.create(
        at=datetime(2024, 1, 1, 9, tzinfo=UTC),
        ticket_id="T-1",
        created_by="requester",
        channel="email",
        priority="normal",
        requester="ann",
    )
    f = staffing.arrival_forecast([ticket, datetime(2024, 1, 1, 9, 30, tzinfo=UTC)], timezone="UTC")
    assert f.at(0, time(9)) == 2.0


def test_staffing_plan_per_slot() -> None:
    calls = [datetime(2024, 1, 1, 9, m, tzinfo=UTC) for m in range(0, 60, 3)] * 5  # 100 at 09:00
    forecast = staffing.arrival_forecast(calls, timezone="UTC", interval=timedelta(minutes=30))
    plans = staffing.staffing_plan(
        forecast,
        handle_time=timedelta(minutes=3),
        answer_within=timedelta(seconds=20),
        service_level=0.8,
        max_occupancy=0.85,
        shrinkage=0.3,
    )
    busy = [p for p in plans if p.arrivals]
    # 09:00-09:30 holds the calls at minutes 0..27: 50 calls in 30 minutes -> 5 erlangs
    assert [(p.weekday, p.start, p.arrivals) for p in busy] == [
        (0, time(9), 50.0),
        (0, time(9, 30), 50.0),
    ]
    assert busy[0].plan == staffing.required_agents(
        arrivals=50.0,
        interval=timedelta(minutes=30),
        handle_time=timedelta(minutes=3),
        answer_within=timedelta(seconds=20),
        service_level=0.8,
        max_occupancy=0.85,
        shrinkage=0.3,
    )
    quiet = [p for p in plans if not p.arrivals]
    assert len(quiet) == 7 * 48 - 2
    assert all(p.plan.agents == 0 for p in quiet)


@given(
    st.lists(
        st.datetimes(
            min_value=datetime(2024, 1, 1), max_value=datetime(2024, 3, 31), timezones=st.just(UTC)
        ),
        min_size=1,
        max_size=60,
    )
)
def test_every_arrival_is_counted_once(calls: list[datetime]) -> None:
    f = staffing.arrival_forecast(calls, timezone=BERLIN, interval=timedelta(minutes=30))
    total = sum(mean * f.days_observed[weekday] for weekday, _, mean in f.slots())
    assert total == pytest.approx(len(calls))
    assert (
        staffing.arrival_forecast(
            list(reversed(calls)), timezone=BERLIN, interval=timedelta(minutes=30)
        )
        == f
    )


def test_bad_forecast_inputs() -> None:
    at = datetime(2024, 1, 1, 9, tzinfo=UTC)
    with pytest.raises(NaiveDatetimeError, match=r"instants\[0\]"):
        staffing.arrival_forecast([datetime(2024, 1, 1)], timezone="UTC")
    with pytest.raises(InvalidType, match=r"instants\[1\]=.*'x'"):
        staffing.arrival_forecast([at, "x"], timezone="UTC")
    with pytest.raises(ValidationError, match=r"interval=.*whole minutes dividing 24 hours"):
        staffing.arrival_forecast([at], timezone="UTC", interval=timedelta(minutes=7))
    with pytest.raises(InvalidType, match=r"interval="):
        staffing.arrival_forecast([at], timezone="UTC", interval=60)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"no arrivals and no observed period"):
        staffing.arrival_forecast([], timezone="UTC")
    # arrivals given, the period backwards: the message is about the period, not the arrivals
    with pytest.raises(
        ValidationError,
        match=r"start=2024-01-09 to end=2024-01-02 \(end excluded\) is empty; start must come",
    ):
        staffing.arrival_forecast(
            [at], timezone="UTC", start=date(2024, 1, 9), end=date(2024, 1, 2)
        )
    with pytest.raises(ValidationError, match=r"2024-01-01 lies outside the observed period"):
        staffing.arrival_forecast(
            [at], timezone="UTC", start=date(2024, 1, 2), end=date(2024, 1, 9)
        )
    with pytest.raises(InvalidType, match=r"start="):
        staffing.arrival_forecast([at], timezone="UTC", start=at)
    with pytest.raises(ValidationError, match=r"timezone="):
        staffing.arrival_forecast([at], timezone="Mars/Olympus")
    f = staffing.arrival_forecast([at], timezone="UTC")
    with pytest.raises(ValidationError, match=r"weekday=7"):
        f.at(7, time(9))
    with pytest.raises(InvalidType, match=r"forecast="):
        staffing.staffing_plan(
            "f",  # type: ignore[arg-type]
            handle_time=timedelta(minutes=3),
            answer_within=timedelta(0),
            service_level=0.8,
        )
