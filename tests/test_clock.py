"""Clocks: FixedClock for tests and replays, SystemClock for production."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore import Clock, FixedClock, NaiveDatetimeError, SystemClock, ValidationError

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def test_fixed_clock_stands_still_until_moved() -> None:
    start = datetime(2025, 1, 6, 9, tzinfo=UTC)
    clock = FixedClock(start)
    assert clock.now() == start
    assert clock.now() == start  # asking twice does not move it
    assert clock.advance(timedelta(minutes=5)) is clock
    assert clock.now() == datetime(2025, 1, 6, 9, 5, tzinfo=UTC)
    assert clock.set(datetime(2024, 12, 31, tzinfo=UTC)) is clock  # any direction
    assert clock.now() == datetime(2024, 12, 31, tzinfo=UTC)
    assert clock.advance(-timedelta(days=1)).now() == datetime(2024, 12, 30, tzinfo=UTC)
    assert repr(clock) == f"FixedClock({clock.now()!r})"


def test_fixed_clock_advances_real_time_across_dst() -> None:
    # 2025-10-26 02:30 CEST (fold=0) is 00:30 UTC; one real hour later is 01:30 UTC, which Berlin
    # shows as 02:30 CET (the repeated hour), not 03:30 as wall-clock arithmetic would give.
    clock = FixedClock(datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN))
    moved = clock.advance(timedelta(hours=1)).now()
    assert moved.astimezone(UTC) == datetime(2025, 10, 26, 1, 30, tzinfo=UTC)
    assert moved.tzinfo is BERLIN
    assert moved.isoformat() == "2025-10-26T02:30:00+01:00"
    # Spring forward: 01:30 CET (00:30 UTC) + 1 h = 01:30 UTC = 03:30 CEST.
    spring = FixedClock(datetime(2025, 3, 30, 1, 30, tzinfo=BERLIN)).advance(timedelta(hours=1))
    assert spring.now().isoformat() == "2025-03-30T03:30:00+02:00"


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2050, 1, 1),
        timezones=st.sampled_from([UTC, BERLIN, ZoneInfo("America/Sao_Paulo")]),
    ),
    st.lists(st.timedeltas(min_value=-timedelta(days=400), max_value=timedelta(days=400))),
)
def test_advancing_in_steps_moves_by_their_sum(start: datetime, steps: list[timedelta]) -> None:
    clock = FixedClock(start)
    for step in steps:
        clock.advance(step)
    total = sum(steps, timedelta(0))
    assert clock.now().astimezone(UTC) == start.astimezone(UTC) + total
    assert clock.now().tzinfo is start.tzinfo


@pytest.mark.parametrize("bad", [datetime(2025, 1, 6, 9), "2025-01-06T09:00Z", None, 0])
def test_fixed_clock_rejects_naive_or_non_datetimes(bad: object) -> None:
    expected = NaiveDatetimeError if isinstance(bad, datetime) else ValidationError
    with pytest.raises(expected, match=r"^now="):
        FixedClock(bad)  # type: ignore[arg-type]
    clock = FixedClock(datetime(2025, 1, 6, tzinfo=UTC))
    with pytest.raises(expected, match=r"^now="):
        clock.set(bad)  # type: ignore[arg-type]
    assert clock.now() == datetime(2025, 1, 6, tzinfo=UTC)  # unchanged by the failed set


@pytest.mark.parametrize("bad", [5, 1.5, "1h", None])
def test_fixed_clock_advance_needs_a_timedelta(bad: object) -> None:
    clock = FixedClock(datetime(2025, 1, 6, tzinfo=UTC))
    with pytest.raises(ValidationError, match=r"^delta=.*expected a datetime\.timedelta"):
        clock.advance(bad)  # type: ignore[arg-type]
    assert clock.now() == datetime(2025, 1, 6, tzinfo=UTC)


def test_system_clock_reads_the_real_time_in_utc() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)
    assert now.tzinfo is UTC
    assert before <= now <= after
    assert repr(SystemClock()) == "SystemClock()"


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(FixedClock(datetime(2025, 1, 1, tzinfo=UTC)), Clock)
    assert not isinstance(object(), Clock)

    class Custom:
        def now(self) -> datetime:
            return datetime(2025, 1, 1, tzinfo=UTC)

    assert isinstance(Custom(), Clock)


@pytest.mark.parametrize(
    ("start", "delta"),
    [
        (datetime(9998, 12, 29, tzinfo=UTC), timedelta(days=5)),
        (datetime(2025, 1, 1, tzinfo=UTC), timedelta.max),
        (datetime(2025, 1, 1, tzinfo=UTC), timedelta.min),
    ],
)
def test_advance_out_of_range_is_refused_and_leaves_the_clock(
    start: datetime, delta: timedelta
) -> None:
    # issue 11: advance raised OverflowError near the ends of the datetime range
    clock = FixedClock(start)
    with pytest.raises(ValidationError, match=r"now \+ delta=.*supported range") as info:
        clock.advance(delta)
    assert not isinstance(info.value, OverflowError)
    assert clock.now() == start


OUT_OF_RANGE = [
    datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),  # its UTC form overflows
    datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
    datetime(9998, 12, 30, tzinfo=UTC),  # the end of the range is excluded
    datetime(3, 1, 1, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(9999, 1, 1, tzinfo=ZoneInfo("Europe/Berlin")),
]


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
def test_a_clock_cannot_start_outside_the_supported_range(moment: datetime) -> None:
    # issue 11: FixedClock(now=...) accepted what advance() refuses
    with pytest.raises(ValidationError, match=r"now=.*outside the supported range") as info:
        FixedClock(moment)
    assert info.value.field == "now"


@pytest.mark.parametrize("moment", OUT_OF_RANGE)
def test_a_clock_cannot_be_set_outside_the_supported_range(moment: datetime) -> None:
    start = datetime(2025, 1, 6, tzinfo=UTC)
    clock = FixedClock(start)
    with pytest.raises(ValidationError, match=r"now=.*outside the supported range"):
        clock.set(moment)
    assert clock.now() == start


def test_the_ends_of_the_supported_range_are_accepted() -> None:
    first = datetime(3, 1, 2, tzinfo=UTC)
    last = datetime(9998, 12, 29, 23, 59, 59, 999999, tzinfo=UTC)
    assert FixedClock(first).now() == first
    assert FixedClock(first).set(last).now() == last
