"""The private instant helpers every engine relies on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from csmcore._time import EPOCH, FAST_LIMIT_US, US, from_us, to_datetime, to_us

aware = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-11, minutes=-30))]),
)


@given(aware)
def test_to_us_is_the_exact_microsecond_count_and_from_us_inverts_it(moment: datetime) -> None:
    us = to_us(moment)
    assert us == (moment - EPOCH) // US
    assert from_us(us) == moment
    assert from_us(us, moment.tzinfo).utcoffset() == moment.utcoffset()


def test_to_us_before_the_epoch_counts_down() -> None:
    assert to_us(datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=timezone.utc)) == -1
    assert to_us(EPOCH) == 0


_ZONES: list[tzinfo] = [
    timezone.utc,
    ZoneInfo("UTC"),
    timezone(timedelta(hours=5, minutes=30)),
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("Australia/Lord_Howe"),
]


@given(
    st.one_of(
        st.integers(0, FAST_LIMIT_US - 1),  # the float fast path
        st.integers(to_us(datetime(1, 1, 2, tzinfo=timezone.utc)), -1),
        st.integers(FAST_LIMIT_US, to_us(datetime(9999, 12, 30, tzinfo=timezone.utc))),
    ),
    st.sampled_from(_ZONES),
)
def test_to_datetime_is_from_us_on_every_path(us: int, zone: tzinfo) -> None:
    # to_datetime takes shortcuts (integer arithmetic for timezone.utc, fromtimestamp below
    # 2106); from_us is the plain definition: the epoch plus a timedelta, then the zone.
    got = to_datetime(us, zone)
    want = from_us(us, zone)
    assert got == want
    assert got.utcoffset() == want.utcoffset()
    assert got.tzinfo is zone
    assert to_us(got) == us
