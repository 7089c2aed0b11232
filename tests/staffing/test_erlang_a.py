"""Erlang A: published figures, a brute-force birth-death chain, exact special cases, limits."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore import staffing
from csmcore.staffing import _erlang_a

SECOND = timedelta(seconds=1)
HOUR = timedelta(hours=1)


def brute_force(
    n: int, a: float, h: float, p: float, t: float, size: int = 400
) -> tuple[float, float, float]:
    """``(P(W > 0), P(Ab), service level)`` of M/M/N+M from first principles.

    The stationary distribution of the birth-death chain (births lambda, deaths
    ``min(s, N) mu + max(s - N, 0) theta``) truncated at ``size`` states; a caller who finds
    ``k`` waiting ahead moves up at rate ``N mu + i theta`` (``i`` still ahead), abandons at rate
    theta and is answered with probability ``N mu / (N mu + (k + 1) theta)``; the law of its wait
    (a sum of exponentials) by uniformization. Nothing here uses the closed forms under test.
    """
    lam, mu, theta = a / h, 1 / h, 1 / p
    logs = [0.0]
    for s in range(1, size):
        logs.append(logs[-1] + math.log(lam / (min(s, n) * mu + max(s - n, 0) * theta)))
    top = max(logs)
    weights = [math.exp(x - top) for x in logs]
    total = sum(weights)
    pi = [w / total for w in weights]
    wait = sum(pi[n:])
    abandon = theta * sum((s - n) * pi[s] for s in range(n, size)) / lam
    level = sum(pi[:n])
    c = n * mu
    for k in range(size - n):
        if pi[n + k] < 1e-18:
            continue
        rates = [c + i * theta for i in range(1, k + 2)]
        fastest = max(rates)
        q = fastest * t
        dist = [1.0] + [0.0] * (k + 1)
        weight = math.exp(-q)
        done = weight * dist[-1]
        jumps, mass = 0, weight
        while mass < 1 - 1e-14:
            nxt = [0.0] * (k + 2)
            for j in range(k + 1):
                r = rates[j] / fastest
                nxt[j] += dist[j] * (1 - r)
                nxt[j + 1] += dist[j] * r
            nxt[-1] += dist[-1]
            dist = nxt
            jumps += 1
            weight *= q / jumps
            mass += weight
            done += weight * dist[-1]
        level += pi[n + k] * c / (c + (k + 1) * theta) * done
    return wait, abandon, level


# --------------------------------------------------------------------------------------------
# Published figures
# --------------------------------------------------------------------------------------------


def test_mandelbaum_zeltyn_erlang_c_versus_erlang_a_example() -> None:
    """The Erlang-C versus Erlang-A comparison of A. Mandelbaum and S. Zeltyn, "The Palm/Erlang-A
    Queue, with Applications to Call Centers" (Technion lecture notes, 2005,
    ie.technion.ac.il/serveng/References/Erlang_A.pdf; in print as "Service Engineering in
    Action: The Palm/Erlang-A Queue, with Applications to Call Centers", Advances in Services
    Innovations, Springer 2007, pp. 17-45, doi:10.1007/978-3-540-29860-1_2): 50 agents,
    48 calls per minute, 1 minute mean service, 2 minutes mean patience. Erlang A gives 3.1% of
    callers abandoning, an average wait of 3.7 s and agents' occupancy of 93%.

    Provenance: the notes themselves could not be opened when this test was written, so the
    page or table is not given here. The three figures are as quoted from the notes by the
    open-source project shiftmesh (github.com/mathieutellene/shiftmesh, tests/test_channels.py,
    ``test_erlang_a_reproduces_the_published_comparison``); the same setup ("50 Agents, 2880
    calls per hour, 1 min. average service time, 2 min. average patience") is restated at
    zinnov.com/blog/introduction-to-erlang/. Compared at the printed precision: half a unit
    of the last digit (0.05 percentage points, 0.05 s, 0.5 percentage points).

    The figures also pin two conventions. The 3.7 s is the mean wait of ALL callers, those who
    hang up included (``average_wait``); the mean wait of the callers who are served alone is
    3.6 s here (worked out from the birth-death chain for this note, not published). The 93%
    is the carried load per agent, ``A (1 - P(Ab)) / N``; the offered load per agent, 48 / 50,
    would be 96%.
    """
    r = staffing.erlang_a(
        agents=50,
        arrivals=48,
        interval=timedelta(minutes=1),
        handle_time=timedelta(minutes=1),
        patience=timedelta(minutes=2),
        answer_within=0 * SECOND,
    )
    assert r.traffic == 48.0
    assert r.abandon_probability == pytest.approx(0.031, abs=0.0005)
    assert r.average_wait.total_seconds() == pytest.approx(3.7, abs=0.05)
    assert r.occupancy == pytest.approx(0.93, abs=0.005)


# --------------------------------------------------------------------------------------------
# Against first principles
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agents", "traffic", "handle", "patience", "within"),
    [
        (14, 10.0, 180, 180, 20),  # the classic example with 3 minutes of patience
        (5, 6.0, 60, 30, 10),  # overloaded: fewer agents than erlangs, stable thanks to abandons
        (3, 1.5, 100, 1000, 50),  # patient callers
        (8, 8.0, 120, 60, 30),
        (1, 0.7, 300, 120, 0),  # answer_within 0: service level = 1 - P(wait)
        (5, 60.0, 60, 120, 30),  # 110 callers queue on average: the sums start at their peak
    ],
)
def test_erlang_a_agrees_with_the_brute_force_chain(
    agents: int, traffic: float, handle: int, patience: int, within: int
) -> None:
    result = staffing.erlang_a(
        agents=agents,
        arrivals=traffic,
        interval=handle * SECOND,
        handle_time=handle * SECOND,
        patience=patience * SECOND,
        answer_within=within * SECOND,
    )
    wait, abandon, level = brute_force(agents, traffic, handle, patience, within)
    assert result.traffic == pytest.approx(traffic)
    assert result.wait_probability == pytest.approx(wait, rel=1e-9)
    assert result.abandon_probability == pytest.approx(abandon, rel=1e-9)
    assert result.service_level == pytest.approx(level, rel=1e-9)
    assert result.average_wait.total_seconds() == pytest.approx(abandon * patience, rel=1e-6)
    assert result.occupancy == pytest.approx(traffic * (1 - abandon) / agents)


def test_patience_equal_to_handle_time_is_the_infinite_server_queue() -> None:
    # With theta = mu every caller in the system leaves at the same rate whether waiting or
    # served, so the number in the system is Poisson(A) (M/M/infinity): P(W > 0) = P(X >= N)
    # and P(Ab) = E[(X - N)+] / A.
    n, a = 10, 9.0
    r = staffing.erlang_a(
        agents=n,
        arrivals=a,
        interval=HOUR,
        handle_time=HOUR,
        patience=HOUR,
        answer_within=0 * SECOND,
    )
    pmf = [math.exp(-a) * a**k / math.factorial(k) for k in range(120)]
    assert r.wait_probability == pytest.approx(sum(pmf[n:]), rel=1e-12)
    excess = sum((k - n) * pmf[k] for k in range(n, 120))
    assert r.abandon_probability == pytest.approx(excess / a, rel=1e-12)


def test_endless_patience_is_erlang_c() -> None:
    common: dict[str, Any] = {
        "arrivals": 100,
        "interval": 30 * 60 * SECOND,
        "handle_time": 180 * SECOND,
    }
    r = staffing.erlang_a(
        agents=12, patience=timedelta(days=3650), answer_within=20 * SECOND, **common
    )
    assert r.wait_probability == pytest.approx(staffing.erlang_c(12, 10.0), rel=1e-5)
    level = staffing.service_level(agents=12, answer_within=20 * SECOND, **common)
    assert r.service_level == pytest.approx(level, rel=1e-5)
    assert r.abandon_probability < 1e-6


@given(
    n=st.integers(0, 60),
    a=st.floats(min_value=0.1, max_value=60.0),
    patience=st.integers(5, 3600),
    within=st.integers(0, 300),
)
def test_more_agents_never_hurt(n: int, a: float, patience: int, within: int) -> None:
    def at(agents: int) -> staffing.ErlangA:
        return staffing.erlang_a(
            agents=agents,
            arrivals=a,
            interval=HOUR,
            handle_time=HOUR / 20,
            patience=patience * SECOND,
            answer_within=within * SECOND,
        )

    low, high = at(n), at(n + 1)
    for r in (low, high):
        assert 0.0 <= r.abandon_probability <= r.wait_probability <= 1.0
        assert 0.0 <= r.service_level <= 1.0
    assert high.wait_probability <= low.wait_probability + 1e-12
    assert high.abandon_probability <= low.abandon_probability + 1e-12
    assert high.service_level >= low.service_level - 1e-12


@given(
    arrivals=st.integers(1, 800),
    patience=st.integers(10, 1200),
    target=st.floats(min_value=0.1, max_value=0.99),
    max_abandonment=st.none() | st.floats(min_value=0.005, max_value=0.5),
)
def test_erlang_a_required_agents_is_the_fewest(
    arrivals: int, patience: int, target: float, max_abandonment: float | None
) -> None:
    common: dict[str, Any] = {
        "arrivals": arrivals,
        "interval": HOUR,
        "handle_time": 240 * SECOND,
        "patience": patience * SECOND,
        "answer_within": 20 * SECOND,
    }
    plan = staffing.erlang_a_required_agents(
        service_level=target, max_abandonment=max_abandonment, shrinkage=0.2, **common
    )
    cap = 1.0 if max_abandonment is None else max_abandonment
    n = plan.raw_agents
    assert plan.service_level >= target
    assert plan.abandon_probability <= cap
    fewer = staffing.erlang_a(agents=n - 1, **common)
    assert fewer.service_level < target or fewer.abandon_probability > cap
    assert plan.agents == math.ceil(n / 0.8 - 1e-9)


@given(
    # x = N * patience / handle: 0 without agents, else far above the subnormal floats
    x=st.just(0.0) | st.floats(min_value=1e-6, max_value=3000.0),
    gap=st.floats(min_value=66.0, max_value=4000.0),
)
def test_summing_from_the_peak_agrees_with_summing_from_zero(x: float, gap: float) -> None:
    y = x + gap
    from_peak = _erlang_a._sums(x, y)
    from_zero = _erlang_a._sums_from_zero(x, y)
    for fast, slow in zip(from_peak, from_zero, strict=True):
        assert fast == pytest.approx(slow, rel=1e-11, abs=1e-9)


def test_very_patient_callers_and_huge_traffic_are_quick_to_staff() -> None:
    # the queue of an under-staffed candidate holds millions of callers: the sums start at
    # their peak instead of walking up to it
    plan = staffing.erlang_a_required_agents(
        arrivals=50_000,
        interval=HOUR,
        handle_time=HOUR,
        patience=timedelta(days=1),
        answer_within=20 * SECOND,
        service_level=0.8,
    )
    assert 50_000 < plan.raw_agents < 50_500
    assert 0.8 <= plan.service_level < 0.81


def test_thousands_of_erlangs_stay_finite() -> None:
    for a, n, patience in (
        (20_000.0, 20_000, 180),
        (51_000.0, 50_000, 60),
        (30_000.0, 31_000, 600),
    ):
        r = staffing.erlang_a(
            agents=n,
            arrivals=a,
            interval=HOUR,
            handle_time=HOUR,
            patience=patience * SECOND,
            answer_within=20 * SECOND,
        )
        values = (r.wait_probability, r.abandon_probability, r.service_level, r.occupancy)
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)
    # heavily overloaded: about (A - N) / A of the callers must leave
    assert r.abandon_probability == pytest.approx(0.0, abs=1e-3)
    over = staffing.erlang_a(
        agents=50_000,
        arrivals=51_000.0,
        interval=HOUR,
        handle_time=HOUR,
        patience=60 * SECOND,
        answer_within=20 * SECOND,
    )
    assert over.abandon_probability == pytest.approx(1_000 / 51_000, rel=0.05)
