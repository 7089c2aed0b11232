"""The shared converter: datetime / date / timedelta / Decimal hooks, paths in errors."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore import BusinessCalendar, NaiveDatetimeError, SerializationError, from_data, to_data
from csmcore.serialization import from_document
from csmcore.sla import SlaBook
from csmcore.tickets import Ticket

UTC = timezone.utc


def json_round_trip(value: object, cls: type) -> object:
    return from_data(json.loads(json.dumps(to_data(value))), cls)


# ------------------------------------------------------------------------------------------------
# datetime
# ------------------------------------------------------------------------------------------------

AWARE_DATETIMES = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kathmandu"), timezone(-timedelta(hours=3))]
    ),
)


@given(AWARE_DATETIMES)
def test_datetimes_round_trip_to_the_same_instant_and_offset(moment: datetime) -> None:
    data = to_data(moment)
    assert data == moment.isoformat()
    back = json_round_trip(moment, datetime)
    assert isinstance(back, datetime)
    assert back.astimezone(UTC) == moment.astimezone(UTC)  # same instant (folds included)
    assert back.utcoffset() == moment.utcoffset()  # and the same local offset


def test_datetime_examples() -> None:
    assert to_data(datetime(2025, 1, 6, 9, 30, tzinfo=UTC)) == "2025-01-06T09:30:00+00:00"
    back = from_data("2025-01-06T09:30:00.000001+05:45", datetime)
    assert back == datetime(2025, 1, 6, 3, 45, 0, 1, tzinfo=UTC)
    aware = datetime(2025, 1, 6, tzinfo=UTC)
    assert from_data(aware, datetime) is aware  # already a datetime: accepted as is


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("2025-01-06T09:30:00", "naive"),
        (datetime(2025, 1, 6), "naive"),
        ("next tuesday", "'next tuesday' is not an ISO 8601 datetime"),
        (1736155800, "1736155800 is not an ISO 8601 datetime"),
        (None, "None is not an ISO 8601 datetime"),
    ],
)
def test_bad_datetimes(data: object, fragment: str) -> None:
    with pytest.raises(SerializationError) as info:
        from_data(data, datetime)
    assert fragment in str(info.value)
    if fragment == "naive":
        assert isinstance(info.value.__cause__, NaiveDatetimeError)


# ------------------------------------------------------------------------------------------------
# date
# ------------------------------------------------------------------------------------------------


@given(st.dates())
def test_dates_round_trip(day: date) -> None:
    assert to_data(day) == day.isoformat()
    assert json_round_trip(day, date) == day


@pytest.mark.parametrize(
    "data", ["2025-13-01", "25/12/2025", "", 20251225, None, datetime(2025, 12, 25)]
)
def test_bad_dates(data: object) -> None:
    with pytest.raises(SerializationError, match="is not an ISO 8601 date") as info:
        from_data(data, date)
    assert repr(data) in str(info.value)


# ------------------------------------------------------------------------------------------------
# timedelta: exact decimal text of seconds (numbers of seconds, as older releases wrote, still read)
# ------------------------------------------------------------------------------------------------


@given(st.timedeltas())
def test_every_timedelta_round_trips_exactly(span: timedelta) -> None:
    data = to_data(span)
    assert isinstance(data, str)
    assert json_round_trip(span, timedelta) == span
    assert to_data(from_data(data, timedelta)) == data  # one text per duration


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta.max, "86399999999999.999999"),
        (timedelta.min, "-86399999913600"),
        (timedelta(days=100_000, microseconds=1), "8640000000.000001"),
        (timedelta(microseconds=-1), "-0.000001"),
        (timedelta(0), "0"),
    ],
)
def test_durations_at_the_edges_are_exact(span: timedelta, text: str) -> None:
    assert to_data(span) == text
    assert from_data(text, timedelta) == span
    assert json_round_trip(span, timedelta) == span


def test_timedelta_examples() -> None:
    assert to_data(timedelta(hours=4)) == "14400"
    assert to_data(timedelta(milliseconds=1500)) == "1.5"
    assert to_data(-timedelta(seconds=90)) == "-90"
    assert from_data("14400", timedelta) == timedelta(hours=4)
    assert from_data("0.25", timedelta) == timedelta(milliseconds=250)
    assert from_data(timedelta(minutes=3), timedelta) == timedelta(minutes=3)


def test_numbers_of_seconds_written_by_older_releases_still_read() -> None:
    assert from_data(14400, timedelta) == timedelta(hours=4)
    assert from_data(0.25, timedelta) == timedelta(milliseconds=250)
    assert from_data(-90, timedelta) == -timedelta(seconds=90)


@pytest.mark.parametrize(
    "data", ["4h", "1e3", "1.", ".5", "1.0000001", " 1", "+1", "--1", "", True, None, [1]]
)
def test_bad_timedeltas(data: object) -> None:
    with pytest.raises(SerializationError, match="is not a duration in seconds") as info:
        from_data(data, timedelta)
    assert repr(data) in str(info.value)


@pytest.mark.parametrize("text", ["86400000000000", "-86399999913600.000001", "999999999999999"])
def test_duration_text_outside_the_timedelta_range_is_refused(text: str) -> None:
    with pytest.raises(SerializationError, match=r"86399999999999\.999999"):
        from_data(text, timedelta)


# ------------------------------------------------------------------------------------------------
# Decimal: a string, exponent kept
# ------------------------------------------------------------------------------------------------


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimals_round_trip_with_their_exponent(amount: Decimal) -> None:
    data = to_data(amount)
    assert isinstance(data, str)
    back = json_round_trip(amount, Decimal)
    assert isinstance(back, Decimal)
    assert back == amount
    assert str(back) == str(amount)  # "12.50" stays "12.50", not "12.5"


def test_decimal_examples() -> None:
    assert to_data(Decimal("12.50")) == "12.50"
    assert str(from_data("12.50", Decimal)) == "12.50"
    assert from_data(12, Decimal) == Decimal(12)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (12.5, "is not a decimal string"),  # floats would smuggle binary rounding into money
        (True, "is not a decimal string"),
        (None, "is not a decimal string"),
        ("twelve", "is not a decimal string"),
        ("NaN", "is not a finite decimal"),
        ("Infinity", "is not a finite decimal"),
        ("-inf", "is not a finite decimal"),
    ],
)
def test_bad_decimals(data: object, fragment: str) -> None:
    with pytest.raises(SerializationError, match=fragment) as info:
        from_data(data, Decimal)
    assert repr(data) in str(info.value)


# ------------------------------------------------------------------------------------------------
# Nested structures: errors name the path
# ------------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Target:
    within: timedelta


@attrs.frozen(kw_only=True)
class Policy:
    name: str
    since: datetime
    targets: list[Target]
    fee: Decimal


POLICY = Policy(
    name="gold",
    since=datetime(2025, 1, 1, tzinfo=UTC),
    targets=[Target(within=timedelta(hours=1)), Target(within=timedelta(minutes=90))],
    fee=Decimal("9.90"),
)


def test_attrs_classes_round_trip_through_json() -> None:
    data = to_data(POLICY)
    assert data == {
        "name": "gold",
        "since": "2025-01-01T00:00:00+00:00",
        "targets": [{"within": "3600"}, {"within": "5400"}],
        "fee": "9.90",
    }
    assert json_round_trip(POLICY, Policy) == POLICY


def _policy_data(**changes: object) -> dict[str, object]:
    data: dict[str, object] = to_data(POLICY)
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (
            _policy_data(targets=[{"within": 60}, {"within": 60}, {"within": "1h"}]),
            ["$.targets[2].within", "'1h' is not a duration"],
        ),
        (_policy_data(since="2025-01-01T00:00:00"), ["$.since", "naive"]),
        (_policy_data(fee=9.9), ["$.fee", "9.9 is not a decimal string"]),
        (_policy_data(colour="red"), ["unknown keys ['colour']"]),
        ({"since": "2025-01-01T00:00:00+00:00", "targets": [], "fee": "1"}, ["$.name", "missing"]),
        (_policy_data(targets=[{"within": 60, "extra": 1}]), ["$.targets[0]", "'extra'"]),
    ],
)
def test_errors_name_the_path(data: object, fragments: list[str]) -> None:
    with pytest.raises(SerializationError) as info:
        from_data(data, Policy)
    message = str(info.value)
    assert message.startswith("cannot build Policy from data: ")
    for fragment in fragments:
        assert fragment in message


def test_two_bad_values_are_both_reported() -> None:
    with pytest.raises(SerializationError) as info:
        from_data(_policy_data(fee="x", since="y"), Policy)
    assert "$.fee" in str(info.value)
    assert "$.since" in str(info.value)


@attrs.frozen(kw_only=True)
class Flagged:
    on: bool


@pytest.mark.parametrize("data", ["false", "no", "", 0, 1, None, [], 1.0])
def test_a_boolean_is_read_only_from_a_boolean(data: object) -> None:
    # cattrs' default read "false" as True (bool("false")).
    with pytest.raises(SerializationError, match=r"is not a boolean; accepted: true, false"):
        from_data({"on": data}, Flagged)
    assert from_data({"on": False}, Flagged) == Flagged(on=False)


def _calendar_data(**changes: object) -> dict[object, object]:
    data: dict[object, object] = to_data(BusinessCalendar.always())
    data.update(changes)
    return data


def _read_as(kind: str, data: object) -> object:
    if kind == "document":
        return from_document(data)
    return from_data(data, {"calendar": BusinessCalendar, "book": SlaBook, "ticket": Ticket}[kind])


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (
            "calendar",
            {**_calendar_data(colour="blue"), 7: 1},
            "$: unknown calendar keys ['colour', 7]; accepted: ['closures', 'holidays', 'hours', "
            "'recurring_holidays', 'timezone']",
        ),
        (
            "calendar",
            {k: v for k, v in _calendar_data().items() if k != "hours"},
            "$.hours: required field missing",
        ),
        (
            "book",
            {"policies": [], "calendar": _calendar_data(), "colour": 1},
            "$: unknown keys ['colour']; accepted: ['calendar', 'calendars', 'policies']",
        ),
        ("book", {"calendar": _calendar_data()}, "$.policies: required field missing"),
        (
            "ticket",
            {"id": "T-1", "events": [], "owner": "x"},
            "$: unknown keys ['owner']; accepted: ['events', 'id']",
        ),
        ("ticket", {"events": []}, "$.id: required field missing"),
        (
            "document",
            {"type": "business_calendar", "data": _calendar_data(), "extra": 1},
            "$: unknown keys ['extra'] in a document; accepted: ['data', 'schema', 'type']",
        ),
        ("document", {"type": "business_calendar"}, "$.data: required field missing"),
    ],
)
def test_unknown_and_missing_keys_are_named_with_what_is_accepted(
    kind: str, data: object, message: str
) -> None:
    with pytest.raises(SerializationError) as info:
        _read_as(kind, data)
    assert str(info.value) == message
