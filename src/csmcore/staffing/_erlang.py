"""Erlang B and Erlang C: blocking, waiting, service level and the agents a target needs.

The model (Erlang C, M/M/N): calls arrive as a Poisson stream, handle times are exponential,
callers wait as long as it takes (no abandonment; see :mod:`csmcore.staffing._erlang_a` for the
model with patience). Offered traffic ``A = arrivals * handle_time / interval`` in erlangs.

Formulas (Erlang 1917; in this form in Cooper, *Introduction to Queueing Theory*, 2nd ed.,
1981, sections 3.3-3.4, and Gans, Koole & Mandelbaum, "Telephone call centers: tutorial,
review, and research prospects", MSOM 5(2), 2003, section 4.1):

- Erlang B, ``B(N, A) = (A^N / N!) / sum_{k=0..N} A^k / k!``, by the recurrence
  ``1/B(n) = 1 + (n / A) / B(n-1)``, ``B(0) = 1`` (no factorial, no power: stable), or, for
  large ``N`` near ``A``, by the equivalent sum ``1/B(N) = sum_{j=0..N} N!/((N-j)! A^j)``, whose
  terms fall off like a Gaussian of width ``sqrt(A)`` and are cut once they no longer change the
  sum: ``O(sqrt(A))`` work instead of ``O(N)``.
- Erlang C, ``C(N, A) = N B / (N - A + A B)`` for ``N > A`` (1 when ``N <= A``): the
  probability that a caller waits.
- Service level ``P(wait <= t) = 1 - C exp(-(N - A) t / h)``; average speed of answer
  ``C h / (N - A)``; occupancy ``A / N``.
"""

from __future__ import annotations

import math
import sys
from datetime import timedelta
from typing import Final

import attrs

from csmcore.errors import ValidationError
from csmcore.staffing._check import (
    builder,
    count,
    fraction,
    non_negative,
    seconds,
    v_count,
    v_duration,
    v_non_negative,
    v_probability,
)

__all__ = [
    "StaffingPlan",
    "average_speed_of_answer",
    "erlang_b",
    "erlang_c",
    "occupancy",
    "required_agents",
    "service_level",
    "traffic",
]

_TOLERANCE: Final = 1e-9
"""A quotient within this of a whole number counts as that number when rounding agents up
(so ``14 / (1 - 0.3)`` is 20, not the 21 that float rounding of 20.000000000000004 would give)."""
_SERIES_FROM: Final = 64
_INF: Final = math.inf
_MAX_FLOAT: Final = sys.float_info.max
_ZERO: Final = timedelta(0)
_SECOND: Final = timedelta(seconds=1)
_CUT: Final = 2.0**-60
_LONGEST: Final = timedelta.max.total_seconds()  # the longest wait a timedelta holds


def _inv_b(n: int, a: float) -> float:
    """``1 / B(n, a)`` for ``a > 0`` (``inf`` when ``B`` underflows)."""
    if n > _SERIES_FROM:
        root = math.sqrt(a)
        excess = n - a
        if excess < 30.0 * root and (max(excess, 0.0) + 12.0 * root + 16.0) * 2.0 < n:
            # sum_{j} N!/((N-j)! A^j): grows while N - j > A (at most exp(450) here), then
            # falls like exp(-x^2 / 2A); stop once the terms no longer change the sum
            total = term = 1.0
            k = n
            while k > 0:
                term = term * k / a
                total += term
                if k < a and term < total * _CUT:
                    break
                k -= 1
            return total
        start = math.floor(a)
        if excess > 0.0 and start > _SERIES_FROM and (12.0 * root + 16.0) * 2.0 < start:
            # far above the traffic: the sum at floor(A) (just below A: O(sqrt(A)) terms),
            # then the recurrence up from there, which overflows within ~38 sqrt(A) steps,
            # instead of the O(N) recurrence from 0
            inv = _inv_b(start, a)
            for k in range(start + 1, n + 1):
                inv = 1.0 + inv * k / a
                if inv == _INF:  # B underflowed and stays 0
                    break
            return inv
    inv = 1.0
    for k in range(1, n + 1):
        inv = 1.0 + inv * k / a
        if inv == _INF:  # B underflowed and stays 0: the other N - k steps change nothing
            break
    return inv


MAX_TRAFFIC: Final = 1e9
"""The most erlangs the functions take: a billion simultaneous calls. The searches take
``O(sqrt(A))`` steps (seconds from about 1e10 erlangs on), and from 2**53 erlangs on the
difference ``N - A`` is lost to float rounding."""


def _traffic_of(a: object) -> float:
    load = non_negative(a, "traffic")
    if load > MAX_TRAFFIC:
        raise ValidationError(
            f"traffic={a!r} is above {MAX_TRAFFIC:g} erlangs, the most these functions take",
            field="traffic",
            value=a,
        )
    return load


def erlang_b(agents: int, traffic: float) -> float:
    """Erlang B: the probability that a call finds all ``agents`` busy and is lost, offered
    ``traffic`` erlangs (lost-calls-cleared, M/M/N/N).

    Computed by the stable recurrence (no factorials), exact to a few ulps and finite for
    traffic in the tens of thousands of erlangs.

    >>> round(erlang_b(agents=10, traffic=5.0), 5)   # Erlang B tables: 10 lines, 5 E
    0.01838
    >>> erlang_b(agents=1, traffic=1.0)
    0.5
    """
    n = count(agents, "agents")
    a = _traffic_of(traffic)
    if a == 0.0:
        return 0.0 if n > 0 else 1.0
    return 1.0 / _inv_b(n, a)


def erlang_c(agents: int, traffic: float) -> float:
    """Erlang C: the probability that a call has to wait (M/M/N, callers wait indefinitely);
    1.0 when ``agents <= traffic`` (the queue grows without bound).

    >>> round(erlang_c(agents=14, traffic=10.0), 4)
    0.1741
    >>> erlang_c(agents=10, traffic=10.0)
    1.0
    """
    n = count(agents, "agents")
    a = _traffic_of(traffic)
    if n <= a:
        return 1.0
    if a == 0.0:
        return 0.0
    # n B / (n - a (1 - B)) = n / ((n - a) / B + a), divided through by n - a (> 0 here) so
    # that a tiny B whose inverse is finite does not overflow (n - a) / B to inf and give 0
    ratio = n / (n - a)
    return ratio / (_inv_b(n, a) + (ratio - 1.0))


def traffic(*, arrivals: float, interval: timedelta, handle_time: timedelta) -> float:
    """Offered traffic in erlangs: ``arrivals * handle_time / interval``.

    >>> traffic(arrivals=100, interval=timedelta(minutes=30), handle_time=timedelta(minutes=3))
    10.0
    """
    calls = non_negative(arrivals, "arrivals")
    length = seconds(interval, "interval", positive=True)
    handle = seconds(handle_time, "handle_time", positive=True)
    load = calls * handle / length
    if load == _INF:
        raise ValidationError(
            f"arrivals={arrivals!r} of handle_time={handle_time!r} per interval={interval!r} "
            "is more traffic than a float holds; expected a finite number of erlangs",
            field="arrivals",
            value=arrivals,
        )
    if load > MAX_TRAFFIC:
        raise ValidationError(
            f"arrivals={arrivals!r} of handle_time={handle_time!r} per interval={interval!r} "
            f"is a traffic of {load:g} erlangs, above {MAX_TRAFFIC:g}, the most these "
            "functions take",
            field="arrivals",
            value=arrivals,
        )
    return load


def _stable(n: int, a: float, argument: str = "agents") -> None:
    if n <= a:
        raise ValidationError(
            f"{argument}={n!r} is not above the traffic of {a!r} erlangs; Erlang C needs more "
            f"agents than erlangs (at least {math.floor(a) + 1}), else the queue grows without "
            "bound",
            field=argument,
            value=n,
        )


def service_level(
    *,
    agents: int,
    arrivals: float,
    interval: timedelta,
    handle_time: timedelta,
    answer_within: timedelta,
) -> float:
    """The share of calls answered within ``answer_within`` with ``agents`` on the phones
    (Erlang C): ``1 - C(N, A) exp(-(N - A) t / h)``.

    Raises :class:`~csmcore.errors.ValidationError` when ``agents`` is not above the traffic.

    >>> from datetime import timedelta as td
    >>> round(service_level(agents=14, arrivals=100, interval=td(minutes=30),
    ...                     handle_time=td(minutes=3), answer_within=td(seconds=20)), 4)
    0.8884
    """
    n = count(agents, "agents")
    a = traffic(arrivals=arrivals, interval=interval, handle_time=handle_time)
    t = seconds(answer_within, "answer_within", positive=False)
    h = handle_time / timedelta(seconds=1)
    _stable(n, a)
    if a == 0.0:
        return 1.0
    c = n / ((n - a) * _inv_b(n, a) + a)
    return 1.0 - c * math.exp(-(n - a) * t / h)


def average_speed_of_answer(
    *, agents: int, arrivals: float, interval: timedelta, handle_time: timedelta
) -> timedelta:
    """The mean wait before an agent answers, over all calls (those answered at once count
    as zero): ``C(N, A) h / (N - A)``.

    >>> from datetime import timedelta as td
    >>> average_speed_of_answer(agents=14, arrivals=100, interval=td(minutes=30),
    ...                         handle_time=td(minutes=3))
    datetime.timedelta(seconds=7, microseconds=835937)
    """
    n = count(agents, "agents")
    a = traffic(arrivals=arrivals, interval=interval, handle_time=handle_time)
    h = handle_time / timedelta(seconds=1)
    _stable(n, a)
    if a == 0.0:
        return timedelta(0)
    c = n / ((n - a) * _inv_b(n, a) + a)
    wait = c * h / (n - a)
    if wait > _LONGEST:
        raise ValidationError(
            f"agents={n!r} for a traffic of {a!r} erlangs wait {wait:.3g} s on average, beyond "
            "a timedelta (999999999 days): the agents are barely above the traffic",
            field="agents",
            value=n,
        )
    return timedelta(seconds=wait)


def occupancy(
    *, agents: int, arrivals: float, interval: timedelta, handle_time: timedelta
) -> float:
    """The share of their time the ``agents`` spend handling calls: ``A / N``.

    >>> from datetime import timedelta as td
    >>> occupancy(agents=20, arrivals=100, interval=td(minutes=30), handle_time=td(minutes=3))
    0.5
    """
    n = count(agents, "agents")
    a = traffic(arrivals=arrivals, interval=interval, handle_time=handle_time)
    _stable(n, a)
    return a / n


@attrs.frozen(kw_only=True)
class StaffingPlan:
    """What :func:`required_agents` found.

    ``raw_agents`` agents on the phones meet the target; ``agents`` is the number to schedule,
    ``ceil(raw_agents / (1 - shrinkage))``. ``service_level``, ``occupancy``,
    ``wait_probability`` and ``average_speed_of_answer`` are those of ``raw_agents``.
    ``traffic`` is the offered load in erlangs.
    """

    traffic: float = attrs.field(validator=v_non_negative)
    raw_agents: int = attrs.field(validator=v_count)
    agents: int = attrs.field(validator=v_count)
    service_level: float = attrs.field(validator=v_probability)
    occupancy: float = attrs.field(validator=v_probability)
    wait_probability: float = attrs.field(validator=v_probability)
    average_speed_of_answer: timedelta = attrs.field(validator=v_duration)


_new_plan = builder(StaffingPlan)


def _ceil(value: float) -> int:
    """``ceil`` that takes a value within :data:`_TOLERANCE` above a whole number as it."""
    whole = math.ceil(value)
    if whole - value > 1.0 - _TOLERANCE:
        whole -= 1
    return whole


def occupancy_floor(a: float, max_occupancy: float) -> int:
    """The fewest agents whose occupancy ``a / N`` is at most ``max_occupancy`` (>= 1)."""
    if a / max_occupancy == _INF:
        raise ValidationError(
            f"max_occupancy={max_occupancy!r} is too small for a traffic of {a!r} erlangs: no "
            "finite number of agents is that idle; expected a larger fraction in (0, 1]",
            field="max_occupancy",
            value=max_occupancy,
        )
    n = max(1, _ceil(a / max_occupancy))
    while n > 1 and a / (n - 1) <= max_occupancy + _TOLERANCE * max_occupancy:
        n -= 1
    while a / n > max_occupancy + _TOLERANCE * max_occupancy:
        n += 1
    return n


def scheduled(raw: int, shrinkage: float) -> int:
    """Agents to schedule so that ``raw`` remain after ``shrinkage``."""
    if shrinkage == 0.0:
        return raw
    return _ceil(raw / (1.0 - shrinkage))


def required_agents(
    *,
    arrivals: float,
    interval: timedelta,
    handle_time: timedelta,
    answer_within: timedelta,
    service_level: float,
    max_occupancy: float = 1.0,
    shrinkage: float = 0.0,
) -> StaffingPlan:
    """The agents needed so that ``service_level`` of the calls are answered within
    ``answer_within`` (Erlang C).

    ``raw_agents`` is the smallest ``N > A`` meeting the target, raised to the fewest agents
    whose occupancy ``A / N`` is at most ``max_occupancy`` (``ceil(A / max_occupancy)``) when
    the target alone would load them more; ``agents = ceil(raw_agents / (1 - shrinkage))``.
    The figures reported are those of ``raw_agents``. No arrivals need no agents (a plan of
    zeros, service level 1).

    The search starts at the first whole number above the traffic and walks up, each step
    one application of the Erlang B recurrence: ``O(sqrt(A))`` steps.

    >>> from datetime import timedelta as td
    >>> plan = required_agents(arrivals=100, interval=td(minutes=30), handle_time=td(minutes=3),
    ...                        answer_within=td(seconds=20), service_level=0.8,
    ...                        max_occupancy=0.85, shrinkage=0.3)
    >>> plan.raw_agents, plan.agents, round(plan.service_level, 4), round(plan.occupancy, 4)
    (14, 20, 0.8884, 0.7143)
    """
    kind = type(arrivals)
    if (
        (kind is int or kind is float)
        and 0.0 <= arrivals <= _MAX_FLOAT  # an int beyond the floats takes the slow path
        and type(interval) is timedelta
        and type(handle_time) is timedelta
        and type(answer_within) is timedelta
        and interval > _ZERO
        and handle_time > _ZERO
        and answer_within >= _ZERO
        and type(service_level) is float
        and 0.0 < service_level < 1.0
        and type(max_occupancy) is float
        and 0.0 < max_occupancy <= 1.0
        and type(shrinkage) is float
        and 0.0 <= shrinkage < 1.0
    ):  # the common case, checked inline: the checks below cost as much as small traffic
        h = handle_time / _SECOND
        a = arrivals * h / (interval / _SECOND)
        if a > MAX_TRAFFIC:  # traffic() raises the error that says so
            traffic(arrivals=arrivals, interval=interval, handle_time=handle_time)
        t = answer_within / _SECOND
        target, cap, shrink = service_level, max_occupancy, shrinkage
    else:  # the same checks, one by one, raising the error that names the value
        a = traffic(arrivals=arrivals, interval=interval, handle_time=handle_time)
        h = handle_time / _SECOND
        t = seconds(answer_within, "answer_within", positive=False)
        target = fraction(service_level, "service_level", low_closed=False, high_closed=False)
        cap = fraction(max_occupancy, "max_occupancy", low_closed=False, high_closed=True)
        shrink = fraction(shrinkage, "shrinkage", low_closed=True, high_closed=False)
    if a == 0.0:
        return _new_plan(
            0.0,  # traffic
            0,  # raw_agents
            0,  # agents
            1.0,  # service_level
            0.0,  # occupancy
            0.0,  # wait_probability
            timedelta(0),  # average_speed_of_answer
        )
    rate = t / h
    n = math.floor(a) + 1
    inv = _inv_b(n, a)
    exp = math.exp
    while True:
        c = n / ((n - a) * inv + a)
        level = 1.0 - c * exp(-(n - a) * rate)
        if level >= target:
            break
        n += 1
        inv = 1.0 + inv * n / a
    if a / n > cap + _TOLERANCE * cap:
        n = occupancy_floor(a, cap)
        inv = _inv_b(n, a)
        c = n / ((n - a) * inv + a)
        level = 1.0 - c * exp(-(n - a) * rate)
    wait = c * h / (n - a)
    if wait > _LONGEST:
        raise ValidationError(
            f"service_level={service_level!r} is met by {n} agents for a traffic of {a!r} "
            f"erlangs, whose average speed of answer ({wait:.3g} s) is beyond a timedelta "
            "(999999999 days); expected a higher service level",
            field="service_level",
            value=service_level,
        )
    return _new_plan(
        a,  # traffic
        n,  # raw_agents
        scheduled(n, shrink),  # agents
        level,  # service_level
        a / n,  # occupancy
        c,  # wait_probability
        timedelta(seconds=wait),  # average_speed_of_answer
    )
