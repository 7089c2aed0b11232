"""Loyalty expiry, pending windows, caps and tier reviews in zones with daylight saving time.

Expected instants were worked out by hand first; comments give them in UTC and local time.
Europe/Berlin: 2025-03-30 01:00Z 02:00 CET -> 03:00 CEST; 2025-10-26 01:00Z 03:00 CEST ->
02:00 CET (02:00-03:00 twice). America/New_York: 2025-03-09 07:00Z 02:00 EST -> 03:00 EDT;
2025-11-02 06:00Z 02:00 EDT -> 01:00 EST.

Conventions (docs/loyalty-program.md): every part reading calendar periods or days takes its
own ``timezone`` (UTC by default); a rolling period is counted on the local calendar and wall
clock of that zone ("a month after 31 January is 28 February"); period ends are the local
midnight starting the next period; results are UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.errors import CsmError, NaiveDatetimeError
from csmcore.loyalty import (
    Cap,
    EndOfPeriodExpiry,
    MemberTimeline,
    PendingPolicy,
    Period,
    Program,
    Purchase,
    RollingExpiry,
    SpendRule,
    Tier,
    TierPolicy,
    cap_usage,
    period_bounds,
    review_tiers,
    tier_status,
)
from csmcore.services import Ledger, earn_points
from csmcore.storage import open_store

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
US = timedelta(microseconds=1)


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- Rolling expiry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "after", "available", "expires"),
    [
        # 2025-03-15 13:00 CET (12:00Z) + 1 month = 2025-04-15 13:00 CEST = 11:00Z: the same
        # wall reading, 23 real hours short of the UTC month.
        ("Europe/Berlin", relativedelta(months=1), z(2025, 3, 15, 12), z(2025, 4, 15, 11)),
        # 2025-10-15 13:00 CEST (11:00Z) + 1 month = 2025-11-15 13:00 CET = 12:00Z.
        ("Europe/Berlin", relativedelta(months=1), z(2025, 10, 15, 11), z(2025, 11, 15, 12)),
        # 2025-09-26 02:30 CEST (00:30Z) + 1 month = 2025-10-26 02:30, which happens twice:
        # the first, 02:30 CEST = 00:30Z.
        ("Europe/Berlin", relativedelta(months=1), z(2025, 9, 26, 0, 30), z(2025, 10, 26, 0, 30)),
        # 2025-01-30 02:30 CET (01:30Z) + 2 months = 2025-03-30 02:30, which never happens:
        # moved forward by the gap to 03:30 CEST = 01:30Z.
        ("Europe/Berlin", relativedelta(months=2), z(2025, 1, 30, 1, 30), z(2025, 3, 30, 1, 30)),
        # The second 02:30 of 2025-10-26 (CET, 01:30Z) + 1 month = 2025-11-26 02:30 CET =
        # 01:30Z.
        ("Europe/Berlin", relativedelta(months=1), z(2025, 10, 26, 1, 30), z(2025, 11, 26, 1, 30)),
        # New York: 2025-02-09 02:30 EST (07:30Z) + 1 month = 2025-03-09 02:30 (skipped): 03:30
        # EDT = 07:30Z.
        ("America/New_York", relativedelta(months=1), z(2025, 2, 9, 7, 30), z(2025, 3, 9, 7, 30)),
        # 2025-10-31 23:30 EDT (2025-11-01 03:30Z) + 1 month = 2025-11-30 23:30 EST = 2025-12-01
        # 04:30Z (the last day of November locally; in UTC it was already November 1st).
        ("America/New_York", relativedelta(months=1), z(2025, 11, 1, 3, 30), z(2025, 12, 1, 4, 30)),
        # 1 day from Saturday 2025-10-25 12:00 CEST (10:00Z) is Sunday 12:00 CET = 11:00Z
        # (25 real hours: days are local calendar days).
        ("Europe/Berlin", relativedelta(days=1), z(2025, 10, 25, 10), z(2025, 10, 26, 11)),
    ],
)
def test_rolling_expiry_counts_the_local_calendar(
    zone: str, after: relativedelta, available: datetime, expires: datetime
) -> None:
    policy = RollingExpiry(after=after, timezone=zone)
    assert policy.expires_at(available) == expires
    # the same instant given in any zone
    for tz in (BERLIN, NEW_YORK, timezone(timedelta(hours=5, minutes=45))):
        assert policy.expires_at(available.astimezone(tz)) == expires


def test_rolling_expiry_in_utc_is_utc_wall_time() -> None:
    # Without a timezone the month is UTC's: 2025-03-15 12:00Z + 1 month = 2025-04-15 12:00Z,
    # whatever zone the instant is given in.
    policy = RollingExpiry(after=relativedelta(months=1))
    assert policy.expires_at(datetime(2025, 3, 15, 13, tzinfo=BERLIN)) == z(2025, 4, 15, 12)


# --- End-of-period expiry --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "period", "available", "expires"),
    [
        # Berlin month: 2025-03-15 -> 2025-04-01 00:00 CEST = 2025-03-31 22:00Z.
        ("Europe/Berlin", Period.MONTH, z(2025, 3, 15, 12), z(2025, 3, 31, 22)),
        # 2025-03-31 22:30Z is 2025-04-01 00:30 CEST, April: -> 2025-05-01 00:00 CEST =
        # 2025-04-30 22:00Z.
        ("Europe/Berlin", Period.MONTH, z(2025, 3, 31, 22, 30), z(2025, 4, 30, 22)),
        # 2025-03-31 21:59Z is 23:59 CEST, still March: -> 2025-03-31 22:00Z, one minute on.
        ("Europe/Berlin", Period.MONTH, z(2025, 3, 31, 21, 59), z(2025, 3, 31, 22)),
        # October: 2025-10-10 -> 2025-11-01 00:00 CET = 2025-10-31 23:00Z.
        ("Europe/Berlin", Period.MONTH, z(2025, 10, 10, 12), z(2025, 10, 31, 23)),
        # 2025-10-31 23:30Z is 2025-11-01 00:30 CET: November -> 2025-12-01 00:00 CET =
        # 2025-11-30 23:00Z.
        ("Europe/Berlin", Period.MONTH, z(2025, 10, 31, 23, 30), z(2025, 11, 30, 23)),
        # Berlin year: 2025-06-01 -> 2026-01-01 00:00 CET = 2025-12-31 23:00Z.
        ("Europe/Berlin", Period.YEAR, z(2025, 6, 1), z(2025, 12, 31, 23)),
        # New York quarter: 2025-12-31 23:30 EST (2026-01-01 04:30Z) is still Q4 there: ->
        # 2026-01-01 00:00 EST = 05:00Z, 30 minutes later.
        ("America/New_York", Period.QUARTER, z(2026, 1, 1, 4, 30), z(2026, 1, 1, 5)),
        # New York quarter: 2025-03-05 (EST) -> 2025-04-01 00:00 EDT = 04:00Z.
        ("America/New_York", Period.QUARTER, z(2025, 3, 5, 12), z(2025, 4, 1, 4)),
        # New York half-year: 2025-08-01 -> 2026-01-01 00:00 EST = 05:00Z.
        ("America/New_York", Period.HALF_YEAR, z(2025, 8, 1), z(2026, 1, 1, 5)),
    ],
)
def test_end_of_period_expiry_at_local_midnight(
    zone: str, period: Period, available: datetime, expires: datetime
) -> None:
    policy = EndOfPeriodExpiry(period=period, timezone=zone)
    assert policy.expires_at(available) == expires
    assert policy.expires_at(available.astimezone(BERLIN)) == expires
    assert expires.astimezone(ZoneInfo(zone)).time() == datetime.min.time()


def test_end_of_period_expiry_with_a_minimum_age_across_dst() -> None:
    # Berlin, month, min_age 1 month: 2025-02-28 23:30 CET (22:30Z) + 1 month = 2025-03-28
    # 23:30 CET, March: -> 2025-04-01 00:00 CEST = 2025-03-31 22:00Z.
    policy = EndOfPeriodExpiry(
        period=Period.MONTH, min_age=relativedelta(months=1), timezone="Europe/Berlin"
    )
    assert policy.expires_at(z(2025, 2, 28, 22, 30)) == z(2025, 3, 31, 22)


def test_points_expire_at_the_local_midnight_in_a_ledger() -> None:
    # Earned 2025-10-10 12:00Z in a program with Berlin month-end expiry: usable until
    # 2025-10-31 23:00Z (2025-11-01 00:00 CET), gone from that instant.
    shop = Program(
        name="shop",
        rules=[SpendRule(name="base", points=Decimal(1))],
        expiry=EndOfPeriodExpiry(period=Period.MONTH, timezone="Europe/Berlin"),
    )
    ledger = Ledger(open_store("memory://"))
    entry = earn_points(
        ledger,
        shop,
        "ann",
        Purchase.of(Decimal("100.00")),
        at=datetime(2025, 10, 10, 14, tzinfo=BERLIN),
        key="o-1",
    )
    assert entry is not None
    assert entry.expires_at == z(2025, 10, 31, 23)
    end = datetime(2025, 11, 1, 0, tzinfo=BERLIN)
    assert ledger.balance("ann", end - timedelta(microseconds=1)).active == 100
    assert ledger.balance("ann", end).active == 0
    assert ledger.balance("ann", end.astimezone(NEW_YORK)).expired == 100


# --- Pending windows ----------------------------------------------------------------------


def test_pending_window_in_local_days_across_fall_back() -> None:
    # 30 days from 2025-10-20 10:00 CEST (08:00Z) is 2025-11-19 10:00 CET = 09:00Z.
    window = PendingPolicy(after=relativedelta(days=30), timezone="Europe/Berlin")
    assert window.pending_until(z(2025, 10, 20, 8)) == z(2025, 11, 19, 9)
    # A timedelta is read as local days and wall time: timedelta(hours=48) from Saturday
    # 2025-10-25 12:00 CEST (10:00Z) is Monday 12:00 CET (11:00Z), 49 real hours.
    hours = PendingPolicy(after=timedelta(hours=48), timezone="Europe/Berlin")
    assert hours.pending_until(z(2025, 10, 25, 10)) == z(2025, 10, 27, 11)


# --- Caps per local period -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "at", "bounds"),
    [
        # 2025-03-31 21:30Z = 23:30 CEST March 31: March, from 2025-03-01 00:00 CET (02-28
        # 23:00Z) to 2025-04-01 00:00 CEST (03-31 22:00Z).
        ("Europe/Berlin", z(2025, 3, 31, 21, 30), (z(2025, 2, 28, 23), z(2025, 3, 31, 22))),
        # 2025-10-31 23:30Z = 2025-11-01 00:30 CET: November, to 2025-12-01 00:00 CET.
        ("Europe/Berlin", z(2025, 10, 31, 23, 30), (z(2025, 10, 31, 23), z(2025, 11, 30, 23))),
        # New York, 2025-11-01 03:30Z = 2025-10-31 23:30 EDT: October, from 2025-10-01 00:00
        # EDT (04:00Z) to 2025-11-01 00:00 EDT (04:00Z).
        ("America/New_York", z(2025, 11, 1, 3, 30), (z(2025, 10, 1, 4), z(2025, 11, 1, 4))),
    ],
)
def test_cap_periods_are_local_months(
    zone: str, at: datetime, bounds: tuple[datetime, datetime]
) -> None:
    cap = Cap(name="monthly", points=100, period=Period.MONTH, timezone=zone)
    assert cap.bounds(at) == bounds
    assert period_bounds(at.astimezone(NEW_YORK), Period.MONTH, zone) == bounds


def test_cap_usage_counts_the_local_month_in_a_ledger() -> None:
    # Berlin monthly cap of 100: 100 points earned 2025-10-31 22:30Z (23:30 CET, October) fill
    # October; a purchase at 2025-10-31 22:59Z (23:59 CET) earns nothing; one at 23:00Z (00:00
    # CET, November 1st) earns in full.
    shop = Program(
        name="shop",
        rules=[SpendRule(name="base", points=Decimal(1))],
        caps=[Cap(name="monthly", points=100, period=Period.MONTH, timezone="Europe/Berlin")],
    )
    ledger = Ledger(open_store("memory://"))
    basket = Purchase.of(Decimal("100.00"))
    first = earn_points(ledger, shop, "ann", basket, at=z(2025, 10, 31, 22, 30), key="1")
    assert first is not None
    assert first.points == 100
    assert earn_points(ledger, shop, "ann", basket, at=z(2025, 10, 31, 22, 59), key="2") is None
    third = earn_points(
        ledger, shop, "ann", basket, at=datetime(2025, 11, 1, tzinfo=BERLIN), key="3"
    )
    assert third is not None
    assert third.points == 100
    entries = ledger.entries("ann")
    assert cap_usage(shop.caps, entries, datetime(2025, 10, 31, 23, 59, tzinfo=BERLIN)) == {
        "monthly": 100
    }
    # 2025-11-01 00:30 CET is November: 100 (the third) only.
    assert cap_usage(shop.caps, entries, z(2025, 10, 31, 23, 30)) == {"monthly": 100}


# --- Tier reviews at a local year end --------------------------------------------------------


SILVER = TierPolicy(tiers=[Tier(name="silver", threshold=100)], timezone="Europe/Berlin")


def test_tier_reached_on_new_years_eve_counts_in_the_local_year() -> None:
    ledger = Ledger(open_store("memory://"))
    # 2025-12-31 22:30Z = 23:30 CET: 2025 in Berlin. Valid through 2026: until 2027-01-01
    # 00:00 CET = 2026-12-31 23:00Z.
    ledger.earn("ann", 100, at=z(2025, 12, 31, 22, 30), key="a")
    # 2025-12-31 23:30Z = 2026-01-01 00:30 CET: 2026 in Berlin. Valid until 2027-12-31 23:00Z.
    ledger.earn("bob", 100, at=z(2025, 12, 31, 23, 30), key="b")
    ann = tier_status(SILVER, ledger.entries("ann"), z(2026, 1, 2))
    bob = tier_status(SILVER, ledger.entries("bob"), z(2026, 1, 2))
    assert (ann.tier, ann.valid_until) == ("silver", z(2026, 12, 31, 23))
    assert (bob.tier, bob.valid_until) == ("silver", z(2027, 12, 31, 23))
    # ann's tier lapses at 2026-12-31 23:00Z (one tier down: none), not at midnight UTC.
    review = datetime(2027, 1, 1, tzinfo=BERLIN)
    changes = review_tiers(SILVER, {"ann": ledger.entries("ann")}, review)
    assert [(c.member_id, c.before.tier, c.after.tier) for c in changes] == [
        ("ann", "silver", None)
    ]
    assert review_tiers(SILVER, {"ann": ledger.entries("ann")}, z(2027, 1, 1)) == []


def test_review_in_the_repeated_hour_compares_with_the_instant_just_before() -> None:
    # bob reaches silver at 2025-10-26 01:00Z (02:00 CET, the second 02:00). A review at the
    # second 02:30 (CET, 01:30Z) compares 01:29:59.999999Z with 01:30Z: silver both times, no
    # change. (One microsecond before the second 02:30 on the wall clock is the first 02:29,
    # CEST, an hour earlier, before bob was silver.)
    ledger = Ledger(open_store("memory://"))
    ledger.earn("bob", 100, at=z(2025, 10, 26, 1), key="b")
    at = datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN, fold=1)
    assert at.astimezone(UTC) == z(2025, 10, 26, 1, 30)
    assert review_tiers(SILVER, {"bob": ledger.entries("bob")}, at) == []
    (change,) = review_tiers(SILVER, {"bob": ledger.entries("bob")}, z(2025, 10, 26, 1))
    assert (change.before.tier, change.after.tier) == (None, "silver")


# --- Inputs ----------------------------------------------------------------------------------


def test_naive_instants_are_refused_naming_the_value() -> None:
    naive = datetime(2025, 10, 26, 2, 30)
    calls: list[Callable[[], object]] = [
        lambda: RollingExpiry(after=relativedelta(months=1)).expires_at(naive),
        lambda: EndOfPeriodExpiry(period=Period.MONTH).expires_at(naive),
        lambda: PendingPolicy(after=relativedelta(days=1)).pending_until(naive),
        lambda: period_bounds(naive, Period.MONTH, "Europe/Berlin"),
        lambda: tier_status(SILVER, [], naive),
        lambda: review_tiers(SILVER, {}, naive),
        lambda: cap_usage([], [], naive),
        lambda: SILVER.window(naive),
        lambda: TierPolicy(
            tiers=[Tier(name="silver", threshold=100)], rolling=relativedelta(months=12)
        ).window(naive),
    ]
    for call in calls:
        with pytest.raises(NaiveDatetimeError, match=r"2025, 10, 26, 2, 30"):
            call()
        with pytest.raises(CsmError):
            call()


ZONES: list[tzinfo] = [UTC, BERLIN, NEW_YORK, ZoneInfo("Australia/Lord_Howe")]


@settings(max_examples=200, deadline=None)
@given(
    minutes=st.integers(min_value=0, max_value=366 * 24 * 60),
    zone=st.sampled_from(ZONES),
    policy_zone=st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]),
    months=st.integers(min_value=1, max_value=13),
    period=st.sampled_from(list(Period)),
)
def test_the_zone_an_instant_is_given_in_changes_no_expiry(
    minutes: int, zone: tzinfo, policy_zone: str, months: int, period: Period
) -> None:
    at = z(2025, 1, 1) + timedelta(minutes=minutes)
    moved = at.astimezone(zone)
    rolling = RollingExpiry(after=relativedelta(months=months), timezone=policy_zone)
    ending = EndOfPeriodExpiry(period=period, timezone=policy_zone)
    pending = PendingPolicy(after=relativedelta(days=months), timezone=policy_zone)
    assert rolling.expires_at(moved) == rolling.expires_at(at)
    assert ending.expires_at(moved) == ending.expires_at(at)
    assert pending.pending_until(moved) == pending.pending_until(at)
    assert period_bounds(moved, period, policy_zone) == period_bounds(at, period, policy_zone)
    start, end = period_bounds(at, period, policy_zone)
    assert start <= at < end
    local = ZoneInfo(policy_zone) if policy_zone != "UTC" else UTC
    assert start.astimezone(local).time() == end.astimezone(local).time() == datetime.min.time()
    assert end.astimezone(local).day == 1


def test_member_timeline_reads_local_instants_and_refuses_naive_ones() -> None:
    # Points earned 2025-10-25 00:00Z expire at 01:30Z (the second 02:30, CET). The member has
    # them at the first 02:40 (CEST, 00:40Z) and at the second 02:20 (CET, 01:20Z), not at the
    # second 02:40 (01:40Z); the next change after the first 02:40 is 01:30Z, given in Berlin
    # time.
    ledger = Ledger(open_store("memory://"))
    ledger.earn("ann", 10, at=z(2025, 10, 25), key="k", expires_at=z(2025, 10, 26, 1, 30))
    ann = MemberTimeline("ann", ledger.entries("ann"))
    first = datetime(2025, 10, 26, 2, 40, tzinfo=BERLIN)
    assert ann.at(first).points == 10
    assert ann.at(datetime(2025, 10, 26, 2, 20, tzinfo=BERLIN, fold=1)).points == 10
    assert ann.at(datetime(2025, 10, 26, 2, 40, tzinfo=BERLIN, fold=1)).points == 0
    change = ann.next_change(first)
    assert change is not None
    assert (change.astimezone(UTC), change.tzinfo, change.fold) == (
        z(2025, 10, 26, 1, 30),
        BERLIN,
        1,
    )
    naive = datetime(2025, 10, 26, 2, 30)
    with pytest.raises(NaiveDatetimeError, match=r"2025, 10, 26, 2, 30"):
        ann.at(naive)
    with pytest.raises(NaiveDatetimeError, match=r"2025, 10, 26, 2, 30"):
        ann.next_change(naive)
