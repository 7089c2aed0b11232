"""Business-time arithmetic has a reach: beyond it, a quick, typed refusal, never a hang.

Business time never runs faster than real time, so ``add(start, d)`` lies at least ``|d|`` of
real time from ``start``. csmcore refuses deltas over 400 years (146,400 days) and results
outside the years 2 to 9998 at once, whatever the calendar has already computed.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from csmcore import BusinessCalendar, NoBusinessTimeError

BERLIN = ZoneInfo("Europe/Berlin")
HUGE = [
    timedelta(days=10**6),
    -timedelta(days=10**6),
    timedelta.max,
    timedelta.min,
    timedelta(days=3_000_000),
    timedelta(days=146_401),
]


@pytest.mark.parametrize("delta", HUGE, ids=str)
@pytest.mark.parametrize("zone", [timezone.utc, BERLIN], ids=["utc-input", "calendar-zone-input"])
@pytest.mark.parametrize("kind", ["weekly", "always"])
def test_huge_deltas_are_refused_quickly_with_a_csm_error(
    delta: timedelta, zone: object, kind: str
) -> None:
    cal = (
        BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
        if kind == "weekly"
        else BusinessCalendar.always(timezone="Europe/Berlin")
    )
    start = datetime(2025, 1, 6, 10, tzinfo=zone)  # type: ignore[arg-type]
    with pytest.raises(NoBusinessTimeError, match="146400 days"):
        cal.add(start, delta)
    built, totalled, _ = cal.timeline._work
    assert built <= 2  # only the start's years (the start is placed before the check)
    assert totalled == 0  # refused before any arithmetic over the years between


def test_results_near_the_end_of_the_supported_years_are_refused() -> None:
    cal = BusinessCalendar.always()
    start = datetime(9998, 6, 1, tzinfo=timezone.utc)
    with pytest.raises(NoBusinessTimeError, match="9998"):
        cal.add(start, timedelta(days=365))
    assert cal.add(start, timedelta(days=30)) == start + timedelta(days=30)


def test_the_limit_does_not_depend_on_what_was_computed_before() -> None:
    fresh = BusinessCalendar.always()
    warmed = BusinessCalendar.always()
    start = datetime(2000, 1, 1, tzinfo=timezone.utc)
    # Make ``warmed`` compute five centuries; the answers must not change.
    assert warmed.elapsed(start, start + timedelta(days=500 * 365)) == timedelta(days=500 * 365)
    just_inside = timedelta(days=146_400)
    for cal in (fresh, warmed):
        assert cal.add(start, just_inside) == start + just_inside
        with pytest.raises(NoBusinessTimeError):
            cal.add(start, just_inside + timedelta(microseconds=1))
