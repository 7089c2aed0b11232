"""Call-centre staffing: Erlang B, Erlang C, Erlang A and arrival forecasts.

``from csmcore import staffing``; see ``docs/staffing.md`` for the formulas, conventions and
sources. Erlang C (:func:`erlang_c`, :func:`service_level`, :func:`average_speed_of_answer`,
:func:`occupancy`, :func:`required_agents`) assumes callers wait as long as it takes; Erlang A
(:func:`erlang_a`, :func:`erlang_a_required_agents`) lets them hang up. An arrival history
becomes mean arrivals per week slot with :func:`arrival_forecast`, and a plan per slot with
:func:`staffing_plan`.
"""

from __future__ import annotations

from csmcore.staffing._erlang import (
    StaffingPlan,
    average_speed_of_answer,
    erlang_b,
    erlang_c,
    occupancy,
    required_agents,
    service_level,
    traffic,
)
from csmcore.staffing._erlang_a import ErlangA, ErlangAPlan, erlang_a, erlang_a_required_agents
from csmcore.staffing._forecast import ArrivalForecast, SlotPlan, arrival_forecast, staffing_plan

__all__ = [
    "ArrivalForecast",
    "ErlangA",
    "ErlangAPlan",
    "SlotPlan",
    "StaffingPlan",
    "arrival_forecast",
    "average_speed_of_answer",
    "erlang_a",
    "erlang_a_required_agents",
    "erlang_b",
    "erlang_c",
    "occupancy",
    "required_agents",
    "service_level",
    "staffing_plan",
    "traffic",
]
