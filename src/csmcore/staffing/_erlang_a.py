"""Erlang A (Palm's M/M/N+M): Erlang C with callers who hang up when they lose patience.

Model: Poisson arrivals at rate ``lambda``, exponential handle times of mean ``h`` (``mu =
1/h``), ``N`` agents, first come first served, and each waiting caller abandons after an
exponential patience of mean ``p`` (``theta = 1/p``). Palm (1943, 1946) introduced it; the
formulas used here are those of Garnett, Mandelbaum & Reiman, "Designing a call center with
impatient customers", MSOM 4(3), 2002, section 3 and Mandelbaum & Zeltyn, "The Palm/Erlang-A
queue, with applications to call centers" (2007 lecture notes), written with
``x = N mu / theta``, ``y = lambda / theta`` and Erlang B ``B = B(N, lambda / mu)``:

- ``J = A(x, y) = sum_{k>=0} y^k / ((x+1)(x+2)...(x+k))`` (their ``A(x, y) = x e^y y^-x
  gamma(x, y)`` written as a series, which is summed directly, rescaled against overflow and
  cut once the terms no longer change the sum; from its largest term when that is far out);
- probability of waiting ``P(W > 0) = J / (1/B - 1 + J)`` (equivalently ``J B / (1 + (J - 1)
  B)``, Garnett et al. eq. 3.4);
- probability of abandoning ``P(Ab) = H / (1/B - 1 + J)`` with ``H = sum_k T_k (k+1)/(x+k+1)``,
  ``T_k`` the terms of ``J``: a caller who finds ``k`` ahead is answered with probability
  ``x / (x + k + 1)`` (the telescoped product of the chances to outlast each move up);
  ``P(Ab | W > 0) = H / J`` equals Garnett et al.'s ``1/(rho J) + 1 - 1/rho`` without its
  cancellation;
- mean wait of all callers ``E[W] = P(Ab) p`` (Little's law applied to the abandoning callers:
  ``theta E[queue] = lambda P(Ab)``);
- service level, the share of ALL callers answered within ``t``: ``1 - P(Ab) - F / (1/B - 1 +
  J)`` with ``F = u^(x+1) e^(y (1-u)) G(u y)``, ``u = exp(-theta t)`` and ``G(y) = sum_k T_k(y)
  x / (x+k+1)``: the callers answered after ``t``. (A caller who finds ``k`` ahead waits a sum
  of exponentials of rates ``N mu + i theta``; ``exp(-theta`` times that wait``)`` is Beta
  distributed, which sums over ``k`` to the closed form above; with patience going to infinity it
  becomes Erlang C's ``1 - C exp(-(N - A) t / h)``.)
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Final

import attrs

from csmcore.staffing._check import (
    builder,
    count,
    fraction,
    seconds,
    v_count,
    v_duration,
    v_non_negative,
    v_probability,
)
from csmcore.staffing._erlang import _inv_b, scheduled, traffic

__all__ = ["ErlangA", "ErlangAPlan", "erlang_a", "erlang_a_required_agents"]

_SCALE: Final = 1e200
_LOG_SCALE: Final = math.log(_SCALE)
_CUT: Final = 2.0**-60


def _log(value: float) -> float:
    return math.log(value) if value > 0.0 else -math.inf


_PEAK_FROM: Final = 64


def _sums(x: float, y: float) -> tuple[float, float, float]:
    """``(ln J, ln G, ln H)`` at ``(x, y)``: the series of the module documentation.

    The terms ``T_k`` rise while ``x + k < y`` and fall after: when the peak is far from
    ``k = 0`` the sums start at the peak (``ln T_peak`` by ``lgamma``) and walk both ways, so
    the work is ``O(sqrt(y))`` terms instead of ``O(y - x)``.
    """
    peak = math.floor(y - x - 1.0)
    if peak > _PEAK_FROM:
        return _sums_from_peak(x, y, peak)
    return _sums_from_zero(x, y)


def _sums_from_zero(x: float, y: float) -> tuple[float, float, float]:
    """:func:`_sums` term by term from ``k = 0`` (rescaled against overflow)."""
    term = 1.0
    j = 0.0
    g = 0.0
    h = 0.0
    scale = 0
    k = 0
    while True:
        denominator = x + k + 1.0
        j += term
        g += term * x / denominator
        h += term * (k + 1.0) / denominator
        k += 1
        ratio = y / (x + k)
        if ratio < 1.0 and term < j * _CUT:
            break
        term *= ratio
        if term > _SCALE:
            term /= _SCALE
            j /= _SCALE
            g /= _SCALE
            h /= _SCALE
            scale += 1
    shift = scale * _LOG_SCALE
    return _log(j) + shift, _log(g) + shift, _log(h) + shift


def _sums_from_peak(x: float, y: float, peak: int) -> tuple[float, float, float]:
    """:func:`_sums` relative to its largest term ``T_peak`` (all other terms are below 1)."""
    j = g = h = 0.0
    term = 1.0
    k = peak
    while True:  # the peak and above
        denominator = x + k + 1.0
        j += term
        g += term * x / denominator
        h += term * (k + 1.0) / denominator
        term *= y / denominator
        k += 1
        if term < j * _CUT:
            break
    term = 1.0
    k = peak
    while k > 0:  # below the peak
        term *= (x + k) / y
        k -= 1
        denominator = x + k + 1.0
        j += term
        g += term * x / denominator
        h += term * (k + 1.0) / denominator
        if term < j * _CUT:
            break
    shift = peak * math.log(y) + math.lgamma(x + 1.0) - math.lgamma(x + peak + 1.0)
    return _log(j) + shift, _log(g) + shift, _log(h) + shift


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    top = max(a, b)
    if top == math.inf:
        return math.inf
    return top + math.log1p(math.exp(-abs(a - b)))


@attrs.frozen(kw_only=True)
class ErlangA:
    """The figures of Erlang A for one number of agents (see :func:`erlang_a`)."""

    traffic: float = attrs.field(validator=v_non_negative)
    agents: int = attrs.field(validator=v_count)
    wait_probability: float = attrs.field(validator=v_probability)
    abandon_probability: float = attrs.field(validator=v_probability)
    service_level: float = attrs.field(validator=v_probability)
    average_wait: timedelta = attrs.field(validator=v_duration)
    occupancy: float = attrs.field(validator=v_probability)


_new_erlang_a = builder(ErlangA)


def _evaluate(n: int, a: float, h: float, p: float, t: float) -> tuple[float, float, float]:
    """``(P(W > 0), P(Ab), service level)`` with ``n`` agents, traffic ``a``, handle time
    ``h``, mean patience ``p`` and answer time ``t`` (seconds)."""
    if a == 0.0:
        return 0.0, 0.0, 1.0
    x = n * p / h
    y = a * p / h
    inv = _inv_b(n, a)
    ln_e = _log(inv - 1.0)
    ln_j, _, ln_h = _sums(x, y)
    ln_d = _logaddexp(ln_e, ln_j)
    if ln_d == math.inf:  # B underflowed: nobody waits
        return 0.0, 0.0, 1.0
    wait = math.exp(ln_j - ln_d)
    abandon = math.exp(ln_h - ln_d)
    theta_t = t / p
    if t == 0.0:
        level = 1.0 - wait
    else:
        _, ln_g_later, _ = _sums(x, y * math.exp(-theta_t))
        ln_f = -(x + 1.0) * theta_t + y * -math.expm1(-theta_t) + ln_g_later
        level = 1.0 - abandon - math.exp(ln_f - ln_d)
    return min(1.0, max(0.0, wait)), min(1.0, max(0.0, abandon)), min(1.0, max(0.0, level))


def erlang_a(
    *,
    agents: int,
    arrivals: float,
    interval: timedelta,
    handle_time: timedelta,
    patience: timedelta,
    answer_within: timedelta,
) -> ErlangA:
    """Erlang A (M/M/N+M): waiting, abandonment and service level when callers hang up after
    an exponential ``patience`` (its mean). Any number of agents is stable, also fewer than
    the traffic: impatient callers leave.

    ``service_level`` is the share of all callers answered within ``answer_within`` (callers
    who hang up count as not answered); ``average_wait`` is the mean time in queue of all
    callers, answered or not; ``occupancy`` is the carried load per agent, ``A (1 - P(Ab)) / N``.
    Sources: Palm (1943); Garnett, Mandelbaum & Reiman (2002) (see the module documentation).

    >>> from datetime import timedelta as td
    >>> r = erlang_a(agents=14, arrivals=100, interval=td(minutes=30),
    ...              handle_time=td(minutes=3), patience=td(minutes=3),
    ...              answer_within=td(seconds=20))
    >>> round(r.wait_probability, 4), round(r.abandon_probability, 4), round(r.service_level, 4)
    (0.1355, 0.0187, 0.9256)
    """
    n = count(agents, "agents")
    a = traffic(arrivals=arrivals, interval=interval, handle_time=handle_time)
    h = handle_time / timedelta(seconds=1)
    p = seconds(patience, "patience", positive=True)
    t = seconds(answer_within, "answer_within", positive=False)
    wait, abandon, level = _evaluate(n, a, h, p, t)
    return _new_erlang_a(
        a,  # traffic
        n,  # agents
        wait,  # wait_probability
        abandon,  # abandon_probability
        level,  # service_level
        timedelta(seconds=abandon * p),  # average_wait
        min(1.0, a * (1.0 - abandon) / n) if n else 0.0,  # occupancy
    )


@attrs.frozen(kw_only=True)
class ErlangAPlan:
    """What :func:`erlang_a_required_agents` found; the figures are those of ``raw_agents``;
    ``agents = ceil(raw_agents / (1 - shrinkage))``."""

    traffic: float = attrs.field(validator=v_non_negative)
    raw_agents: int = attrs.field(validator=v_count)
    agents: int = attrs.field(validator=v_count)
    service_level: float = attrs.field(validator=v_probability)
    abandon_probability: float = attrs.field(validator=v_probability)
    wait_probability: float = attrs.field(validator=v_probability)
    average_wait: timedelta = attrs.field(validator=v_duration)
    occupancy: float = attrs.field(validator=v_probability)


_new_erlang_a_plan = builder(ErlangAPlan)


def erlang_a_required_agents(
    *,
    arrivals: float,
    interval: timedelta,
    handle_time: timedelta,
    patience: timedelta,
    answer_within: timedelta,
    service_level: float,
    max_abandonment: float | None = None,
    shrinkage: float = 0.0,
) -> ErlangAPlan:
    """The fewest agents (Erlang A) answering ``service_level`` of all callers within
    ``answer_within`` and, when given, losing at most ``max_abandonment`` of them.

    Both the service level and the abandonment improve with every agent added, so the answer
    is bracketed (doubling steps up from the traffic) and then bisected.

    >>> from datetime import timedelta as td
    >>> plan = erlang_a_required_agents(arrivals=100, interval=td(minutes=30),
    ...     handle_time=td(minutes=3), patience=td(minutes=3), answer_within=td(seconds=20),
    ...     service_level=0.8, shrinkage=0.3)
    >>> plan.raw_agents, plan.agents
    (12, 18)
    """
    a = traffic(arrivals=arrivals, interval=interval, handle_time=handle_time)
    h = handle_time / timedelta(seconds=1)
    p = seconds(patience, "patience", positive=True)
    t = seconds(answer_within, "answer_within", positive=False)
    target = fraction(service_level, "service_level", low_closed=False, high_closed=False)
    cap = (
        1.0
        if max_abandonment is None
        else fraction(max_abandonment, "max_abandonment", low_closed=False, high_closed=False)
    )
    shrink = fraction(shrinkage, "shrinkage", low_closed=True, high_closed=False)

    def meets(n: int) -> bool:
        _, abandon, level = _evaluate(n, a, h, p, t)
        return level >= target and abandon <= cap

    if a == 0.0:
        n = 0
    else:
        # N agents answer at most N / A of the callers, so fewer than target * A fail
        low = max(0, math.ceil(target * a) - 1)
        high = max(low + 1, math.ceil(a))
        step = max(1, math.isqrt(high))
        while not meets(high):
            low = high
            high += step
            step *= 2
        while high - low > 1:
            middle = (low + high) // 2
            if meets(middle):
                high = middle
            else:
                low = middle
        n = high
    wait, abandon, level = _evaluate(n, a, h, p, t)
    return _new_erlang_a_plan(
        a,  # traffic
        n,  # raw_agents
        scheduled(n, shrink),  # agents
        level,  # service_level
        abandon,  # abandon_probability
        wait,  # wait_probability
        timedelta(seconds=abandon * p),  # average_wait
        min(1.0, a * (1.0 - abandon) / n) if n else 0.0,  # occupancy
    )
