"""Bad input raises ValidationError (InvalidType for a wrong type) naming value and range."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from csmcore import staffing
from csmcore.errors import InvalidType, ValidationError

MIN = timedelta(minutes=1)
GOOD: dict[str, Any] = {
    "arrivals": 100,
    "interval": 30 * MIN,
    "handle_time": 3 * MIN,
    "answer_within": timedelta(seconds=20),
    "service_level": 0.8,
    "max_occupancy": 0.85,
    "shrinkage": 0.3,
}


@pytest.mark.parametrize(
    ("argument", "value", "error", "message"),
    [
        (
            "handle_time",
            timedelta(0),
            ValidationError,
            r"handle_time=.* expected a positive duration",
        ),
        ("handle_time", -MIN, ValidationError, "handle_time="),
        (
            "handle_time",
            180,
            InvalidType,
            "handle_time=180 is a int; expected a datetime.timedelta",
        ),
        ("interval", timedelta(0), ValidationError, "interval="),
        ("answer_within", -MIN, ValidationError, r"answer_within=.* expected a duration >= 0"),
        ("arrivals", -1, ValidationError, r"arrivals=-1 is negative; expected a number >= 0"),
        ("arrivals", float("nan"), ValidationError, "arrivals=nan is not finite"),
        ("arrivals", "100", InvalidType, "arrivals='100' is a str"),
        ("arrivals", True, InvalidType, "arrivals=True is a bool"),
        ("service_level", 1.0, ValidationError, r"service_level=1.0 is outside \(0, 1\)"),
        ("service_level", 0, ValidationError, r"service_level=0 is outside \(0, 1\)"),
        ("service_level", 80, ValidationError, r"service_level=80 .* \(0.8 for 80%\)"),
        ("max_occupancy", 0.0, ValidationError, r"max_occupancy=0.0 is outside \(0, 1\]"),
        ("max_occupancy", 1.01, ValidationError, r"max_occupancy=1.01 is outside \(0, 1\]"),
        ("shrinkage", 1.0, ValidationError, r"shrinkage=1.0 is outside \[0, 1\)"),
        ("shrinkage", -0.1, ValidationError, r"shrinkage=-0.1 is outside \[0, 1\)"),
        ("shrinkage", None, InvalidType, "shrinkage=None is a NoneType"),
    ],
)
def test_required_agents_refuses(
    argument: str, value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        staffing.required_agents(**{**GOOD, argument: value})
    assert isinstance(caught.value, ValidationError)
    assert caught.value.field == argument


def test_agents_not_above_traffic_are_refused_where_erlang_c_needs_them() -> None:
    common: dict[str, Any] = {
        "arrivals": 100,
        "interval": 30 * MIN,
        "handle_time": 3 * MIN,
    }  # 10 erlangs
    for call in (
        lambda: staffing.service_level(agents=10, answer_within=MIN, **common),
        lambda: staffing.average_speed_of_answer(agents=9, **common),
        lambda: staffing.occupancy(agents=10, **common),
    ):
        with pytest.raises(
            ValidationError,
            match=r"agents=\d+ is not above the traffic of 10.0 erlangs.*at least 11",
        ):
            call()
    assert staffing.erlang_c(10, 10.0) == 1.0  # the probability itself is defined: 1


@pytest.mark.parametrize(
    ("agents", "traffic", "error", "message"),
    [
        (-1, 1.0, ValidationError, "agents=-1 is negative"),
        (2.5, 1.0, InvalidType, "agents=2.5 is a float; expected an int"),
        (True, 1.0, InvalidType, "agents=True is a bool"),
        (3, -0.5, ValidationError, "traffic=-0.5 is negative"),
        (3, float("inf"), ValidationError, "traffic=inf is not finite"),
        (3, "1", InvalidType, "traffic='1' is a str"),
    ],
)
def test_erlang_b_and_c_refuse(
    agents: object, traffic: object, error: type[Exception], message: str
) -> None:
    for function in (staffing.erlang_b, staffing.erlang_c):
        with pytest.raises(error, match=message):
            function(agents, traffic)  # type: ignore[arg-type]


def test_erlang_a_refuses() -> None:
    common: dict[str, Any] = {
        "arrivals": 100,
        "interval": 30 * MIN,
        "handle_time": 3 * MIN,
        "answer_within": timedelta(seconds=20),
    }
    with pytest.raises(ValidationError, match=r"patience=.* expected a positive duration"):
        staffing.erlang_a(agents=3, patience=timedelta(0), **common)
    with pytest.raises(InvalidType, match=r"patience=60 is a int"):
        staffing.erlang_a(agents=3, patience=60, **common)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"max_abandonment=0 is outside \(0, 1\)"):
        staffing.erlang_a_required_agents(
            patience=MIN, service_level=0.8, max_abandonment=0, **common
        )
    with pytest.raises(ValidationError, match=r"service_level=1.5 is outside"):
        staffing.erlang_a_required_agents(patience=MIN, service_level=1.5, **common)


def test_result_values_built_by_hand_are_checked() -> None:
    plan = staffing.required_agents(**GOOD)
    with pytest.raises(ValidationError, match=r"service_level=1.5 is outside \[0, 1\]"):
        attrs.evolve(plan, service_level=1.5)
    with pytest.raises(ValidationError, match="raw_agents=-1 is negative"):
        attrs.evolve(plan, raw_agents=-1)
    with pytest.raises(ValidationError, match="average_speed_of_answer="):
        attrs.evolve(plan, average_speed_of_answer=-MIN)
    forecast = staffing.arrival_forecast(
        [datetime(2024, 1, 1, 9, tzinfo=timezone.utc)], timezone="UTC"
    )
    with pytest.raises(ValidationError, match="seven rows"):
        attrs.evolve(forecast, arrivals=forecast.arrivals[:6])
    with pytest.raises(ValidationError, match="seven counts"):
        attrs.evolve(forecast, days_observed=(1, 0, 0))
    with pytest.raises(ValidationError, match=r"arrivals=-1.0 is negative"):
        attrs.evolve(forecast, arrivals=[[-1.0] * 24] * 7)
    assert attrs.evolve(forecast, arrivals=forecast.arrivals) == forecast


def test_traffic_beyond_a_float_is_refused_naming_the_arrivals() -> None:
    # 1e308 calls of a day each per microsecond: the product overflows to inf. It used to come
    # out of traffic() as inf and make the others fail on math.floor(inf) (an OverflowError).
    huge: dict[str, Any] = {
        "arrivals": 1e308,
        "interval": timedelta(microseconds=1),
        "handle_time": timedelta(days=1),
    }
    message = r"arrivals=1e\+308 of handle_time=.* is more traffic than a float holds"
    for call in (
        lambda: staffing.traffic(**huge),
        lambda: staffing.required_agents(
            **{**huge, "answer_within": MIN, "service_level": 0.8}  # the fast path
        ),
        lambda: staffing.required_agents(
            **{**huge, "answer_within": MIN, "service_level": 8e-1, "shrinkage": 0}
        ),  # the checked path (an int shrinkage)
        lambda: staffing.service_level(agents=5, answer_within=MIN, **huge),
        lambda: staffing.average_speed_of_answer(agents=5, **huge),
        lambda: staffing.erlang_a(agents=5, patience=MIN, answer_within=MIN, **huge),
    ):
        with pytest.raises(ValidationError, match=message) as caught:
            call()
        assert caught.value.field == "arrivals"


def test_an_occupancy_cap_no_finite_staff_meets_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"max_occupancy=1e-300 is too small") as caught:
        staffing.required_agents(**{**GOOD, "arrivals": 1e10, "max_occupancy": 1e-300})
    assert caught.value.field == "max_occupancy"


def test_traffic_above_a_billion_erlangs_is_refused_naming_it() -> None:
    # 10^14 erlangs ran for minutes (O(sqrt(A)) steps of each search), and from 2^53 on the
    # agents minus the traffic is lost to float rounding: wrong answers
    with pytest.raises(ValidationError, match=r"traffic=100000000000000.0 is above 1e\+09"):
        staffing.erlang_c(10**14 + 10, 1e14)
    with pytest.raises(ValidationError, match=r"traffic=2000000000.0 is above 1e\+09"):
        staffing.erlang_b(10, 2e9)
    much: dict[str, Any] = {"arrivals": 1e10, "interval": 3 * MIN, "handle_time": 3 * MIN}
    message = r"arrivals=10000000000.0 .* is a traffic of 1e\+10 erlangs, above 1e\+09"
    for call in (
        lambda: staffing.traffic(**much),
        lambda: staffing.required_agents(**much, answer_within=MIN, service_level=0.8),
        lambda: staffing.service_level(agents=5, answer_within=MIN, **much),
        lambda: staffing.erlang_a(agents=5, patience=MIN, answer_within=MIN, **much),
        lambda: staffing.erlang_a_required_agents(
            patience=MIN, answer_within=MIN, service_level=0.8, **much
        ),
    ):
        with pytest.raises(ValidationError, match=message) as caught:
            call()
        assert caught.value.field == "arrivals"
    assert staffing.traffic(arrivals=1e9, interval=3 * MIN, handle_time=3 * MIN) == 1e9


def test_an_average_wait_beyond_a_timedelta_is_refused_naming_the_cause() -> None:
    # 10 agents for 9.999999999999998 erlangs wait 1.8e17 s on average, beyond timedelta.max:
    # an OverflowError ("Python int too large to convert to C int") naming nothing
    almost: dict[str, Any] = {
        "arrivals": 99.99999999999999,
        "interval": 30 * MIN,
        "handle_time": 3 * MIN,
    }
    with pytest.raises(
        ValidationError, match=r"agents=10 .* 9.999999999999998 erlangs .* beyond a timedelta"
    ) as caught:
        staffing.average_speed_of_answer(agents=10, **almost)
    assert caught.value.field == "agents"
    with pytest.raises(
        ValidationError, match=r"service_level=1e-300 is met by 10 agents .* beyond a timedelta"
    ) as caught:
        staffing.required_agents(answer_within=MIN, service_level=1e-300, **almost)
    assert caught.value.field == "service_level"
    # the probabilities themselves are defined
    assert 0.0 < staffing.service_level(agents=10, answer_within=MIN, **almost) < 1e-12
