"""The private instant helpers every engine relies on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from csmcore._time import EPOCH, US, from_us, to_us

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
