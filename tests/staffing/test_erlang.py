"""Erlang B and C: published figures, exact small cases, properties and very large traffic."""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from csmcore import staffing
from csmcore.staffing._erlang import _inv_b

MINUTE = timedelta(minutes=1)
SECOND = timedelta(seconds=1)


class _Interval(timedelta):
    """A timedelta subclass: takes required_agents off its inline fast path."""


def exact_b(n: int, a: Fraction) -> Fraction:
    """Erlang B from its definition, in exact rational arithmetic."""
    terms = [a**k / math.factorial(k) for k in range(n + 1)]
    return terms[-1] / sum(terms)


def recurrence_b(n: int, a: float) -> float:
    """Erlang B by the textbook recurrence from 0 (the reference for the fast paths)."""
    inv = 1.0
    for k in range(1, n + 1):
        inv = 1.0 + inv * k / a
    return 1.0 / inv


# --------------------------------------------------------------------------------------------
# Published figures
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agents", "traffic", "blocking"),
    [
        # The classic Erlang B traffic table (reprinted in telephony texts and by every
        # online Erlang B calculator): the traffic that N lines carry at 1% / 2% blocking,
        # given to three decimals (so the blocking matches to the table's rounding).
        (1, 0.0101, 0.01),
        (2, 0.153, 0.01),
        (5, 1.361, 0.01),
        (10, 4.461, 0.01),
        (20, 12.031, 0.01),
        (50, 37.901, 0.01),
        (100, 84.064, 0.01),
        (10, 5.084, 0.02),
    ],
)
def test_erlang_b_matches_the_published_table(agents: int, traffic: float, blocking: float) -> None:
    assert staffing.erlang_b(agents, traffic) == pytest.approx(blocking, rel=6e-3)


def test_classic_worked_example_100_calls_in_30_minutes() -> None:
    # Call Centre Helper, "Erlang C Formula - Made Simple With an Easy Worked Example"
    # (callcentrehelper.com): 100 calls per 30 minutes, 180 s handle time, 80% answered in
    # 20 s -> 10 erlangs; 13 agents reach only 79.6%, 14 agents: waiting probability 0.1741,
    # service level 88.8%, occupancy 71.4%, ASA 7.8 s; with 30% shrinkage 20 agents. (The
    # same figures are what pyworkforce 0.5.1's README example prints.)
    common: dict[str, Any] = {"arrivals": 100, "interval": 30 * MINUTE, "handle_time": 180 * SECOND}
    assert staffing.traffic(**common) == 10.0
    assert staffing.erlang_c(14, 10.0) == pytest.approx(0.1741, abs=5e-5)
    assert staffing.service_level(agents=13, answer_within=20 * SECOND, **common) == (
        pytest.approx(0.7956, abs=5e-5)
    )
    plan = staffing.required_agents(
        answer_within=20 * SECOND, service_level=0.8, max_occupancy=0.85, shrinkage=0.3, **common
    )
    assert (plan.raw_agents, plan.agents) == (14, 20)
    assert plan.service_level == pytest.approx(0.8884, abs=5e-5)
    assert plan.occupancy == pytest.approx(10 / 14)
    assert plan.wait_probability == pytest.approx(0.1741, abs=5e-5)
    assert plan.average_speed_of_answer == timedelta(seconds=7, microseconds=835937)


def test_erlang_c_by_its_definition_on_a_hand_worked_case() -> None:
    # C(2, 1) = (A^2/2! * 2/(2-1)) / (1 + A + A^2/2! * 2/(2-1)) = 1 / (1 + 1 + 1) = 1/3
    assert staffing.erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-15)
    assert staffing.erlang_b(2, 1.0) == pytest.approx(0.2, rel=1e-15)


@given(n=st.integers(0, 60), a=st.fractions(min_value=Fraction(1, 100), max_value=80))
def test_erlang_b_equals_the_exact_definition(n: int, a: Fraction) -> None:
    assert staffing.erlang_b(n, float(a)) == pytest.approx(
        float(exact_b(n, Fraction(float(a)))), rel=1e-12
    )


@given(n=st.integers(1, 60), a=st.fractions(min_value=Fraction(1, 100), max_value=59))
def test_erlang_c_equals_the_exact_definition(n: int, a: Fraction) -> None:
    a = Fraction(float(a))
    assume(n > a)
    terms = [a**k / math.factorial(k) for k in range(n)]
    top = a**n / math.factorial(n) * n / (n - a)
    assert staffing.erlang_c(n, float(a)) == pytest.approx(
        float(top / (sum(terms) + top)), rel=1e-12
    )


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

traffics = st.floats(min_value=0.0, max_value=3000.0, allow_nan=False)


@given(n=st.integers(0, 4000), a=traffics)
def test_probabilities_are_in_0_1(n: int, a: float) -> None:
    assert 0.0 <= staffing.erlang_b(n, a) <= 1.0
    assert 0.0 <= staffing.erlang_c(n, a) <= 1.0
    assert staffing.erlang_c(n, a) >= staffing.erlang_b(n, a)


def test_erlang_c_keeps_a_tiny_probability_that_erlang_b_keeps() -> None:
    # Found by test_probabilities_are_in_0_1 in CI: 1 / B(129, 0.203125) is about 1.2e307,
    # finite, but (n - a) / B overflowed to inf and C came out 0.0, below B = 8.25e-308.
    b = staffing.erlang_b(129, 0.203125)
    c = staffing.erlang_c(129, 0.203125)
    assert 0.0 < b <= c
    assert c == pytest.approx(b * 129 / (129 - 0.203125 * (1 - b)), rel=1e-12)


@given(n=st.integers(0, 3000), a=st.floats(min_value=0.01, max_value=3000.0))
def test_erlang_b_and_c_fall_as_agents_are_added(n: int, a: float) -> None:
    assert staffing.erlang_b(n + 1, a) <= staffing.erlang_b(n, a)
    assert staffing.erlang_c(n + 1, a) <= staffing.erlang_c(n, a)


@given(
    arrivals=st.integers(1, 3000),
    handle=st.integers(10, 1200),
    within=st.integers(0, 120),
    extra=st.integers(0, 60),
)
def test_service_level_rises_as_agents_are_added(
    arrivals: int, handle: int, within: int, extra: int
) -> None:
    common: dict[str, Any] = {
        "arrivals": arrivals,
        "interval": 30 * MINUTE,
        "handle_time": handle * SECOND,
    }
    n = math.floor(staffing.traffic(**common)) + 1 + extra
    lower = staffing.service_level(agents=n, answer_within=within * SECOND, **common)
    upper = staffing.service_level(agents=n + 1, answer_within=within * SECOND, **common)
    assert 0.0 <= lower <= upper <= 1.0


@given(
    arrivals=st.floats(min_value=0.5, max_value=5000.0),
    handle=st.integers(5, 1800),
    within=st.integers(0, 300),
    target=st.floats(min_value=0.05, max_value=0.999),
    cap=st.floats(min_value=0.3, max_value=1.0),
    shrinkage=st.floats(min_value=0.0, max_value=0.9),
)
def test_required_agents_is_the_fewest_meeting_the_targets(
    arrivals: float, handle: int, within: int, target: float, cap: float, shrinkage: float
) -> None:
    common: dict[str, Any] = {
        "arrivals": arrivals,
        "interval": 60 * MINUTE,
        "handle_time": handle * SECOND,
    }
    plan = staffing.required_agents(
        answer_within=within * SECOND,
        service_level=target,
        max_occupancy=cap,
        shrinkage=shrinkage,
        **common,
    )
    a = plan.traffic
    n = plan.raw_agents
    assert n > a
    level = staffing.service_level(agents=n, answer_within=within * SECOND, **common)
    assert plan.service_level == pytest.approx(level, rel=1e-12, abs=1e-12)
    assert level >= target
    assert a / n <= cap * (1 + 1e-9)
    # one agent fewer misses a target (or is not above the traffic)
    fewer = n - 1
    if fewer > a and a / fewer <= cap:
        assert (
            staffing.service_level(agents=fewer, answer_within=within * SECOND, **common) < target
        )
    assert plan.agents >= n
    assert plan.agents * (1 - shrinkage) >= n * (1 - 1e-9)
    assert (plan.agents - 1) * (1 - shrinkage) < n
    assert plan.occupancy == a / n
    assert plan.wait_probability == pytest.approx(staffing.erlang_c(n, a), rel=1e-12)


# --------------------------------------------------------------------------------------------
# Large traffic: exact and finite
# --------------------------------------------------------------------------------------------


@given(a=st.floats(min_value=65.0, max_value=20000.0), offset=st.integers(-200, 600))
def test_the_near_traffic_series_agrees_with_the_recurrence(a: float, offset: int) -> None:
    n = max(1, math.floor(a) + offset)
    assert 1.0 / _inv_b(n, a) == pytest.approx(recurrence_b(n, a), rel=1e-11, abs=1e-300)


@pytest.mark.parametrize("a", [500.0, 10_000.0, 25_000.5, 60_000.0])
def test_tens_of_thousands_of_erlangs_stay_finite_and_exact(a: float) -> None:
    for n in (math.floor(a) + 1, math.floor(a) + 100, round(a * 1.5), 10 * round(a)):
        b = staffing.erlang_b(n, a)
        c = staffing.erlang_c(n, a)
        assert math.isfinite(b)
        assert math.isfinite(c)
        assert 0.0 <= b <= c <= 1.0
        assert b == pytest.approx(recurrence_b(n, a), rel=1e-11, abs=1e-300)
    plan = staffing.required_agents(
        arrivals=a,
        interval=60 * MINUTE,
        handle_time=60 * MINUTE,
        answer_within=20 * SECOND,
        service_level=0.9,
        max_occupancy=1.0,
    )
    assert a < plan.raw_agents < a + 10 * math.sqrt(a)
    assert 0.9 <= plan.service_level < 1.0
    assert math.isfinite(plan.average_speed_of_answer.total_seconds())


def test_no_arrivals_need_no_agents() -> None:
    plan = staffing.required_agents(
        arrivals=0,
        interval=30 * MINUTE,
        handle_time=3 * MINUTE,
        answer_within=20 * SECOND,
        service_level=0.8,
        shrinkage=0.3,
    )
    assert (plan.raw_agents, plan.agents, plan.service_level, plan.occupancy) == (0, 0, 1.0, 0.0)
    assert staffing.erlang_b(0, 0.0) == 1.0
    assert staffing.erlang_b(3, 0.0) == 0.0
    assert staffing.erlang_c(3, 0.0) == 0.0


def test_the_occupancy_cap_raises_the_agents_and_reports_their_figures() -> None:
    common: dict[str, Any] = {
        "arrivals": 170,
        "interval": 60 * MINUTE,
        "handle_time": 3 * MINUTE,
    }  # 8.5 E
    plan = staffing.required_agents(
        answer_within=60 * SECOND, service_level=0.5, max_occupancy=0.85, **common
    )
    # 8.5 / 0.85 is 10 exactly: 10 agents, not 11 from float rounding of the quotient
    assert plan.raw_agents == 10
    assert plan.occupancy == 0.85
    assert plan.service_level == staffing.service_level(
        agents=10, answer_within=60 * SECOND, **common
    )


def test_shrinkage_rounds_up_but_not_on_float_noise() -> None:
    common: dict[str, Any] = {
        "arrivals": 100,
        "interval": 30 * MINUTE,
        "handle_time": 3 * MINUTE,
        "answer_within": 20 * SECOND,
        "service_level": 0.8,
    }
    assert staffing.required_agents(shrinkage=0.3, **common).agents == 20  # 14 / 0.7
    assert staffing.required_agents(shrinkage=0.25, **common).agents == 19  # 18.67
    assert staffing.required_agents(shrinkage=0.0, **common).agents == 14


def test_agents_far_above_the_traffic_answer_at_once() -> None:
    # The recurrence ran all N steps after 1/B overflowed (a billion steps here: it hung);
    # B is 0 from the overflow on, C too, and the occupancy cap's many agents likewise.
    assert staffing.erlang_b(10**9, 1.0) == 0.0
    assert staffing.erlang_c(10**9, 1.0) == 0.0
    r = staffing.erlang_a(
        agents=10**9,
        arrivals=100,
        interval=timedelta(minutes=30),
        handle_time=timedelta(minutes=3),
        patience=timedelta(minutes=3),
        answer_within=timedelta(seconds=20),
    )
    assert (r.wait_probability, r.abandon_probability, r.service_level) == (0.0, 0.0, 1.0)
    plan = staffing.required_agents(
        arrivals=100,
        interval=timedelta(minutes=30),
        handle_time=timedelta(minutes=3),
        answer_within=timedelta(seconds=20),
        service_level=0.8,
        max_occupancy=1e-6,
    )  # 10 erlangs at most 1e-6 busy: 10^7 agents
    assert plan.raw_agents == 10**7
    assert (plan.wait_probability, plan.service_level) == (0.0, 1.0)


def test_agents_far_above_a_large_traffic_answer_at_once() -> None:
    # 10^12 agents for 10^9 erlangs: the recurrence ran from 0 until 1/B overflowed, past
    # k = A: a billion steps. It now starts from the sum at floor(A).
    assert staffing.erlang_b(10**12, 1e9) == 0.0
    assert staffing.erlang_c(10**12, 1e9) == 0.0
    assert 0.0 < staffing.erlang_c(10**9 + 10**6, 1e9) < 1e-200  # 31.6 standard deviations


@pytest.mark.parametrize("sigmas", [31, 35, 37, 40])
def test_far_above_the_traffic_agrees_with_the_plain_recurrence(sigmas: int) -> None:
    a = 250_000.5
    n = int(a + sigmas * math.sqrt(a))
    plain = 1.0
    for k in range(1, n + 1):
        plain = 1.0 + plain * k / a
    assert _inv_b(n, a) == pytest.approx(plain, rel=1e-11)
