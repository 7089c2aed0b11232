"""Pending and expiry policies and calendar periods, worked by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta

from csmcore.errors import ValidationError
from csmcore.loyalty import (
    EndOfPeriodExpiry,
    NeverExpires,
    PendingPolicy,
    Period,
    RollingExpiry,
    period_bounds,
)
from csmcore.serialization import from_data, to_data
from tests.loyalty.program_support import utc


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        (Period.MONTH, utc(2026, 5, 1), utc(2026, 6, 1)),
        (Period.QUARTER, utc(2026, 4, 1), utc(2026, 7, 1)),
        (Period.HALF_YEAR, utc(2026, 1, 1), utc(2026, 7, 1)),
        (Period.YEAR, utc(2026, 1, 1), utc(2027, 1, 1)),
    ],
)
def test_periods_of_10_may_2026(period: Period, start: object, end: object) -> None:
    assert period_bounds(utc(2026, 5, 10, 8), period) == (start, end)


def test_a_period_is_read_in_its_time_zone() -> None:
    # 31 Dec 2026 23:30 UTC is 1 Jan 2027 00:30 in Berlin (UTC+1 in winter)
    start, end = period_bounds(utc(2026, 12, 31, 23, 30), Period.YEAR, "Europe/Berlin")
    assert start == utc(2026, 12, 31, 23)  # 1 Jan 2027 00:00 Berlin
    assert end == utc(2027, 12, 31, 23)


@pytest.mark.parametrize(
    ("earned", "expires"),
    [
        # + 3 months = 10 May (Q2) -> 1 July
        (utc(2026, 2, 10, 12), utc(2026, 7, 1)),
        # 31 March 23:00 + 3 months = 30 June 23:00 (month ends clip), Q2 -> 1 July
        (utc(2026, 3, 31, 23), utc(2026, 7, 1)),
        # 1 April 00:00 + 3 months = 1 July 00:00, the first instant of Q3 -> 1 October
        (utc(2026, 4, 1), utc(2026, 10, 1)),
        # 30 November + 3 months = 28 February 2027 (no 30 Feb), Q1 2027 -> 1 April 2027
        (utc(2026, 11, 30, 9), utc(2027, 4, 1)),
    ],
)
def test_end_of_quarter_expiry_after_a_minimum_age_of_three_months(
    earned: object, expires: object
) -> None:
    rule = EndOfPeriodExpiry(period=Period.QUARTER, min_age=relativedelta(months=3))
    assert rule.expires_at(earned) == expires  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("min_age", "earned", "expires"),
    [
        # no minimum age: the end of the month earned in
        (None, utc(2026, 2, 10, 12), utc(2026, 3, 1)),
        (None, utc(2026, 2, 28, 23, 59), utc(2026, 3, 1)),
        (None, utc(2026, 3, 1), utc(2026, 4, 1)),  # the first instant of March is March
        # 31 January 10:00 + 30 days = 2 March 10:00 -> the end of March
        (relativedelta(days=30), utc(2026, 1, 31, 10), utc(2026, 4, 1)),
        # 31 January 10:00 + 1 month = 28 February 10:00 (month ends clip) -> 1 March
        (relativedelta(months=1), utc(2026, 1, 31, 10), utc(2026, 3, 1)),
    ],
)
def test_end_of_month_expiry_after_a_minimum_age(
    min_age: relativedelta | None, earned: object, expires: object
) -> None:
    rule = (
        EndOfPeriodExpiry(period=Period.MONTH)
        if min_age is None
        else EndOfPeriodExpiry(period=Period.MONTH, min_age=min_age)
    )
    assert rule.expires_at(earned) == expires  # type: ignore[arg-type]


def test_end_of_year_expiry_without_minimum_age_is_the_next_new_year() -> None:
    rule = EndOfPeriodExpiry(period="year")
    assert rule.expires_at(utc(2026, 12, 31, 23, 59)) == utc(2027, 1, 1)
    assert rule.expires_at(utc(2026, 1, 1)) == utc(2027, 1, 1)


def test_end_of_year_in_berlin_is_an_hour_before_utc_new_year() -> None:
    rule = EndOfPeriodExpiry(period="year", timezone="Europe/Berlin")
    # 31 Dec 2026 23:30 UTC is already 2027 in Berlin: expires at the end of 2027, Berlin time
    assert rule.expires_at(utc(2026, 12, 31, 23, 30)) == utc(2027, 12, 31, 23)
    assert rule.expires_at(utc(2026, 12, 31, 22, 30)) == utc(2026, 12, 31, 23)


def test_half_year_expiry_after_six_months() -> None:
    rule = EndOfPeriodExpiry(period=Period.HALF_YEAR, min_age=relativedelta(months=6))
    # 15 Jan + 6 months = 15 Jul (H2) -> 1 Jan next year
    assert rule.expires_at(utc(2026, 1, 15)) == utc(2027, 1, 1)


def test_rolling_expiry_clips_to_the_month_end_and_keeps_local_time() -> None:
    rule = RollingExpiry(after=relativedelta(months=1))
    assert rule.expires_at(utc(2026, 1, 31, 10)) == utc(2026, 2, 28, 10)
    local = RollingExpiry(after=relativedelta(months=6), timezone="Europe/Berlin")
    # 10:00 Berlin in January (09:00 UTC) + 6 months = 10:00 Berlin in July (08:00 UTC)
    assert local.expires_at(utc(2026, 1, 15, 9)) == utc(2026, 7, 15, 8)


def test_never_expires() -> None:
    assert NeverExpires().expires_at(utc(2026, 1, 1)) is None


def test_pending_policies() -> None:
    assert not PendingPolicy().is_pending
    assert PendingPolicy().pending_until(utc(2026, 1, 1)) is None
    window = PendingPolicy(after=timedelta(days=14))
    assert window.is_pending
    assert window.pending_until(utc(2026, 2, 20)) == utc(2026, 3, 6)
    assert PendingPolicy(explicit=True).pending_until(utc(2026, 2, 20)) is None


def test_a_returns_window_is_counted_in_the_policys_time_zone() -> None:
    # 20 March 2026, 11:00 in Berlin (10:00 UTC); Europe's clocks go forward on 29 March.
    # Thirty days later in Berlin is 19 April, 11:00 there (09:00 UTC); counted in UTC it
    # would be 10:00 UTC, an hour off the shop's own wall clock.
    earned = utc(2026, 3, 20, 10)
    berlin = PendingPolicy(after=relativedelta(days=30), timezone="Europe/Berlin")
    assert berlin.pending_until(earned) == utc(2026, 4, 19, 9)
    assert PendingPolicy(after=relativedelta(days=30)).pending_until(earned) == utc(2026, 4, 19, 10)
    # a policy stored before the time zone existed reads as UTC, as it was computed then
    data = to_data(PendingPolicy(after=relativedelta(days=30)))
    del data["timezone"]
    assert from_data(data, PendingPolicy).timezone == "UTC"
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        PendingPolicy(after=relativedelta(days=30), timezone="Mars/Olympus")
