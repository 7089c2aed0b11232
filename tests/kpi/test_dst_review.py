"""KPI buckets, business-time metrics, backlog ages and arrival forecasts across DST changes.

Expected values were worked out by hand first; comments give instants in UTC and local time.
Europe/Berlin: 2025-03-30 01:00Z 02:00 CET -> 03:00 CEST; 2025-10-26 01:00Z 03:00 CEST ->
02:00 CET (02:00-03:00 twice). America/New_York: 2025-03-09 07:00Z 02:00 EST -> 03:00 EDT;
2025-11-02 06:00Z 02:00 EDT -> 01:00 EST.

Conventions (docs/kpi-reference.md, docs/staffing.md): buckets are the first local day of the
day, ISO week (from Monday), month or quarter in the chosen zone; durations are elapsed time
("calendar time"), business twins the calendar's open time between the same instants; backlog
ages run from creation to the metrics' instant in calendar time; arrival slots are wall-clock
(the skipped hour's slot gets nothing, the repeated hour's slot both hours).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore import BusinessCalendar, staffing
from csmcore.errors import CsmError, NaiveDatetimeError, ValidationError
from csmcore.kpi import (
    CustomerRecord,
    KpiAggregator,
    customer_figures,
    ticket_metrics,
    time_bucket,
)
from csmcore.testing.builders import make_ticket
from csmcore.tickets import Role

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- time_bucket ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "zone", "day", "week", "month", "quarter"),
    [
        # 00:30 CEST on the fall-back Sunday 2025-10-26 = 2025-10-25 22:30Z (a Saturday in UTC).
        (z(2025, 10, 25, 22, 30), BERLIN, date(2025, 10, 26), date(2025, 10, 20),
         date(2025, 10, 1), date(2025, 10, 1)),
        # The second 02:30 (CET) that Sunday = 01:30Z.
        (z(2025, 10, 26, 1, 30), BERLIN, date(2025, 10, 26), date(2025, 10, 20),
         date(2025, 10, 1), date(2025, 10, 1)),
        # 23:30 CEST on the spring-forward Sunday 2025-03-30 = 21:30Z.
        (z(2025, 3, 30, 21, 30), BERLIN, date(2025, 3, 30), date(2025, 3, 24),
         date(2025, 3, 1), date(2025, 1, 1)),
        # 2025-03-31 22:30Z = Tuesday 2025-04-01 00:30 CEST: April, Q2, week of Monday 31 March.
        (z(2025, 3, 31, 22, 30), BERLIN, date(2025, 4, 1), date(2025, 3, 31),
         date(2025, 4, 1), date(2025, 4, 1)),
        # New York: 00:30 EDT on the fall-back Sunday 2025-11-02 = 04:30Z; week of Monday 27 Oct.
        (z(2025, 11, 2, 4, 30), NEW_YORK, date(2025, 11, 2), date(2025, 10, 27),
         date(2025, 11, 1), date(2025, 10, 1)),
        # New York: Wednesday 2025-12-31 23:30 EST = 2026-01-01 04:30Z: still 2025 and Q4.
        (z(2026, 1, 1, 4, 30), NEW_YORK, date(2025, 12, 31), date(2025, 12, 29),
         date(2025, 12, 1), date(2025, 10, 1)),
        # New York: 23:30 EDT on the spring-forward Sunday 2025-03-09 = 03:30Z Monday 10 March.
        (z(2025, 3, 10, 3, 30), NEW_YORK, date(2025, 3, 9), date(2025, 3, 3),
         date(2025, 3, 1), date(2025, 1, 1)),
    ],
)  # fmt: skip
def test_time_bucket_reads_the_local_calendar(
    instant: datetime, zone: tzinfo, day: date, week: date, month: date, quarter: date
) -> None:
    for given_in in (UTC, BERLIN, NEW_YORK):
        moved = instant.astimezone(given_in)
        got = [time_bucket(moved, b, zone) for b in ("day", "week", "month", "quarter")]
        assert got == [day, week, month, quarter]


def test_time_bucket_refuses_naive_instants_and_unknown_buckets() -> None:
    naive = datetime(2025, 10, 26, 0, 30)
    with pytest.raises(NaiveDatetimeError, match=r"2025, 10, 26, 0, 30"):
        time_bucket(naive, "day", BERLIN)
    with pytest.raises(ValidationError, match=r"'year'.*day, week, month, quarter"):
        time_bucket(z(2025, 10, 26), "year", BERLIN)  # type: ignore[arg-type]
    # a zone name is read as the aggregator reads its timezone=
    assert time_bucket(z(2025, 10, 25, 22, 30), "day", "Europe/Berlin") == date(2025, 10, 26)


@settings(max_examples=200, deadline=None)
@given(
    minutes=st.integers(min_value=0, max_value=2 * 366 * 24 * 60),
    zone=st.sampled_from([UTC, BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe")]),
    given_in=st.sampled_from([UTC, BERLIN, NEW_YORK, timezone(timedelta(hours=-9))]),
    bucket=st.sampled_from(["day", "week", "month", "quarter"]),
)
def test_time_bucket_does_not_depend_on_the_zone_of_the_instant(
    minutes: int, zone: tzinfo, given_in: tzinfo, bucket: str
) -> None:
    at = z(2024, 6, 1) + timedelta(minutes=minutes)
    first = time_bucket(at, bucket, zone)  # type: ignore[arg-type]
    assert time_bucket(at.astimezone(given_in), bucket, zone) == first  # type: ignore[arg-type]
    assert first <= at.astimezone(zone).date()


# --- Aggregated buckets ----------------------------------------------------------------------


def test_aggregator_day_and_week_buckets_in_berlin_across_dst() -> None:
    # Tickets created at: 2025-10-25 22:30Z (Sun 26 Oct 00:30 CEST), 2025-10-26 01:30Z (Sun
    # 02:30 CET), 2025-10-26 22:30Z (Sun 23:30 CET), 2025-10-26 23:30Z (Mon 27 Oct 00:30 CET),
    # 2025-03-30 21:30Z (Sun 30 Mar 23:30 CEST).
    created = [
        z(2025, 10, 25, 22, 30),
        z(2025, 10, 26, 1, 30),
        z(2025, 10, 26, 22, 30),
        z(2025, 10, 26, 23, 30),
        z(2025, 3, 30, 21, 30),
    ]
    tickets = [make_ticket(f"T-{i}", at=at) for i, at in enumerate(created)]
    days = KpiAggregator(bucket="day", timezone="Europe/Berlin").update(tickets).results()
    assert {key: k.tickets for key, k in days.items()} == {
        (date(2025, 10, 26),): 3,
        (date(2025, 10, 27),): 1,
        (date(2025, 3, 30),): 1,
    }
    weeks = KpiAggregator(bucket="week", timezone=BERLIN).update(tickets).results()
    assert {key: k.tickets for key, k in weeks.items()} == {
        (date(2025, 10, 20),): 3,
        (date(2025, 10, 27),): 1,
        (date(2025, 3, 24),): 1,
    }


# --- Durations, business time and backlog ages -------------------------------------------------


def test_first_reply_in_calendar_and_business_time_across_spring_forward() -> None:
    # Berlin office Mon-Fri 09:00-17:00. Created Friday 2025-03-28 16:00 CET (15:00Z), the
    # agent replies Monday 2025-03-31 10:00 CEST (08:00Z): 65 real hours (the wall clock says
    # 66), 2 business hours (Friday 16-17, Monday 09-10).
    office = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone=BERLIN)
    ticket, _ = make_ticket("T", at=datetime(2025, 3, 28, 16, tzinfo=BERLIN)).comment(
        datetime(2025, 3, 31, 10, tzinfo=BERLIN), Role.AGENT
    )
    metrics = ticket_metrics(ticket, calendar=office)
    assert metrics.first_reply == 65 * H
    assert metrics.first_reply_business == 2 * H


def test_business_time_on_an_always_open_calendar_is_elapsed_time_across_fall_back() -> None:
    # Berlin 24x7: created Sun 2025-10-26 00:00 CEST (2025-10-25 22:00Z), replied Mon 00:00 CET
    # (2025-10-26 23:00Z): 25 hours, in both clocks.
    always = BusinessCalendar.always(timezone=BERLIN)
    ticket, _ = make_ticket("T", at=datetime(2025, 10, 26, tzinfo=BERLIN)).comment(
        datetime(2025, 10, 27, tzinfo=BERLIN), Role.AGENT
    )
    metrics = ticket_metrics(ticket, calendar=always)
    assert metrics.first_reply == metrics.first_reply_business == 25 * H


def test_backlog_age_at_an_instant_in_the_repeated_hour() -> None:
    # Created 2025-10-25 22:30Z (00:30 CEST). At the second 02:30 (CET, 01:30Z) the ticket is
    # 3 hours old; at 03:30 CET (02:30Z), 4 hours (the wall readings differ by 3).
    ticket = make_ticket("T", at=z(2025, 10, 25, 22, 30))
    second = datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN, fold=1)
    assert ticket_metrics(ticket, at=second).age == 3 * H
    later = datetime(2025, 10, 26, 3, 30, tzinfo=BERLIN)
    metrics = ticket_metrics(ticket, at=later)
    assert metrics.age == 4 * H
    backlog = KpiAggregator().update([metrics]).total().backlog
    assert (backlog.count, backlog.p50) == (1, 4 * H)


def test_ticket_metrics_refuses_a_naive_instant() -> None:
    ticket = make_ticket("T", at=z(2025, 10, 25, 22, 30))
    with pytest.raises(CsmError, match=r"2025, 10, 26, 2, 30"):
        ticket_metrics(ticket, at=datetime(2025, 10, 26, 2, 30))


# --- Arrival forecasts over a DST week ---------------------------------------------------------


def _every_half_hour(first: datetime, last: datetime) -> list[datetime]:
    out = []
    at = first
    while at <= last:
        out.append(at)
        at += timedelta(minutes=30)  # UTC: elapsed time
    return out


def test_arrivals_on_the_fall_back_sunday_fill_the_repeated_hour_twice() -> None:
    # One arrival every 30 real minutes from Sunday 2025-10-26 00:00 CEST (2025-10-25 22:00Z)
    # to 23:30 CET (22:30Z): 25 hours, 50 arrivals. Sunday (6): two per hour slot, four in the
    # 02:00 slot (02:00, 02:30 CEST and 02:00, 02:30 CET).
    arrivals = _every_half_hour(z(2025, 10, 25, 22), z(2025, 10, 26, 22, 30))
    assert len(arrivals) == 50
    forecast = staffing.arrival_forecast(arrivals, timezone="Europe/Berlin")
    assert (forecast.start, forecast.end) == (date(2025, 10, 26), date(2025, 10, 27))
    assert forecast.days_observed == (0, 0, 0, 0, 0, 0, 1)
    slots = [forecast.at(6, time(hour)) for hour in range(24)]
    assert slots == [4.0 if hour == 2 else 2.0 for hour in range(24)]
    # Half-hour slots: 02:00 and 02:30 each twice.
    halves = staffing.arrival_forecast(arrivals, timezone=BERLIN, interval=timedelta(minutes=30))
    assert [halves.at(6, time(2, m)) for m in (0, 30)] == [2.0, 2.0]
    assert halves.at(6, time(3)) == 1.0


def test_arrivals_on_the_spring_forward_sunday_leave_the_skipped_hour_empty() -> None:
    # New York, every 30 real minutes from Sunday 2025-03-09 00:00 EST (05:00Z) to 23:30 EDT
    # (2025-03-10 03:30Z): 23 hours, 46 arrivals; the 02:00 slot gets none.
    arrivals = _every_half_hour(z(2025, 3, 9, 5), z(2025, 3, 10, 3, 30))
    assert len(arrivals) == 46
    forecast = staffing.arrival_forecast(arrivals, timezone="America/New_York")
    slots = [forecast.at(6, time(hour)) for hour in range(24)]
    assert slots == [0.0 if hour == 2 else 2.0 for hour in range(24)]
    # A whole week from Monday 3 March: the Sunday is the only day observed with arrivals;
    # every weekday counted once.
    week = staffing.arrival_forecast(
        arrivals, timezone=NEW_YORK, start=date(2025, 3, 3), end=date(2025, 3, 10)
    )
    assert week.days_observed == (1, 1, 1, 1, 1, 1, 1)
    assert week.at(6, time(1)) == 2.0
    assert week.at(0, time(1)) == 0.0


def test_arrival_forecast_refuses_a_naive_instant() -> None:
    with pytest.raises(CsmError, match=r"2025, 10, 26, 2, 30"):
        staffing.arrival_forecast([datetime(2025, 10, 26, 2, 30)], timezone="Europe/Berlin")


# --- Customer records with local instants ------------------------------------------------------


def test_customer_records_compare_local_instants_as_instants() -> None:
    # A customer from 02:30 CEST (00:30Z) to the second 02:10 (CET, 01:10Z) on 2025-10-26: 40
    # minutes, not a record whose end comes before its start.
    since = datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN)
    until = datetime(2025, 10, 26, 2, 10, tzinfo=BERLIN, fold=1)
    record = CustomerRecord(
        customer="acme",
        since=since,
        until=until,
        # 10 from 02:30 CEST (00:30Z), 20 from 02:20 CET (01:20Z, after until), 15 from 02:50
        # CEST (00:50Z): given out of order.
        revenue=[
            (since, Decimal(10)),
            (datetime(2025, 10, 26, 2, 20, tzinfo=BERLIN, fold=1), Decimal(20)),
            (datetime(2025, 10, 26, 2, 50, tzinfo=BERLIN), Decimal(15)),
        ],
    )
    # 02:45 CEST (00:45Z) and the second 02:05 (01:05Z): active; revenue 10 then 15.
    assert record.active_at(datetime(2025, 10, 26, 2, 45, tzinfo=BERLIN))
    assert record.revenue_at(datetime(2025, 10, 26, 2, 45, tzinfo=BERLIN)) == Decimal(10)
    assert record.revenue_at(datetime(2025, 10, 26, 2, 5, tzinfo=BERLIN, fold=1)) == Decimal(15)
    # the second 02:15 (01:15Z) is after until
    assert not record.active_at(datetime(2025, 10, 26, 2, 15, tzinfo=BERLIN, fold=1))
    # Over [00:00Z, 02:00Z) the customer is new (since 00:30Z) and gone by the end.
    figures = customer_figures([record], z(2025, 10, 26), z(2025, 10, 26, 2))
    assert (figures.new, figures.customers_end, figures.customers_start) == (1, 0, 0)
    # Over [00:40Z, 02:00Z): active at the start, churned by the end.
    start = datetime(2025, 10, 26, 2, 40, tzinfo=BERLIN)
    figures = customer_figures([record], start, z(2025, 10, 26, 2))
    assert (figures.customers_start, figures.churned, figures.revenue_start) == (
        1,
        1,
        Decimal("10.00"),
    )
