"""Issue 11: SlaBook.evaluate refuses instants outside the supported range up front."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from csmcore.calendars import BusinessCalendar
from csmcore.errors import InvalidType, ValidationError
from csmcore.sla import SlaBook, SlaMetric, SlaPolicy, SlaTarget
from tests.guard import hang_guard
from tests.sla.support import CAL, H, at, book, new

BOOK = book(SlaTarget(metric=SlaMetric.NEXT_REPLY, within=2 * H))


@pytest.mark.parametrize(
    "when",
    [
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
        datetime.max.replace(tzinfo=timezone.utc),
    ],
)
def test_evaluate_out_of_range_is_refused(when: datetime) -> None:
    with pytest.raises(ValidationError, match=r"^at=.*supported range") as info:
        BOOK.evaluate(new(at(6, 9)), when)
    assert not isinstance(info.value, OverflowError)


def test_book_calendar_of_the_wrong_type_is_invalid_type() -> None:
    with pytest.raises(InvalidType, match=r"^calendar=0 is a int; expected a csmcore") as info:
        SlaBook(policies=BOOK.policies, calendar=0)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    assert info.value.field == "calendar"


@pytest.mark.parametrize("value", ["x", b"x", 0, ["x"], [("a", CAL, 1)]])
def test_book_calendars_of_the_wrong_type_is_invalid_type(value: object) -> None:
    with pytest.raises(InvalidType, match=r"^calendars(\[0\])?=.*expected a") as info:
        SlaBook(policies=BOOK.policies, calendar=CAL, calendars=value)
    assert isinstance(info.value, TypeError)


def test_policy_default_must_be_a_bool() -> None:
    target = SlaTarget(metric=SlaMetric.NEXT_REPLY, within=2 * H)
    with pytest.raises(InvalidType, match=r"^default=0 is a int; expected True or False"):
        SlaPolicy(name="p", position=1, targets=[target], default=0)  # type: ignore[arg-type]


def test_evaluate_two_thousand_years_after_creation_sums_years() -> None:
    """Issue 11: this used to build every year of the calendar in between (a hang)."""
    cal = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
    sla = book(SlaTarget(metric=SlaMetric.FIRST_REPLY, within=2 * H), calendar=cal)
    ticket = new(at(6, 9))
    later = at(6, 9).replace(year=4025)
    with hang_guard():
        status = sla.evaluate(ticket, later)[0]
        change = sla.next_change(ticket, later)
    assert status.breached_at == at(6, 11)  # created 10:00 Berlin time, due 12:00
    assert change is None  # breached: nothing changes any more
    assert cal.timeline._work[0] <= 8  # years built: the creation's and the instant's
