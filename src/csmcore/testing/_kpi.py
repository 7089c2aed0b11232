"""Strategies of the KPI and staffing values (:mod:`csmcore.kpi`, :mod:`csmcore.staffing`) that
Hypothesis cannot infer from their fields: requester answers and customer records (validated
fields), per-ticket metrics, arrival forecasts and staffing figures (computed by the functions
that make them). Private:
import them from :mod:`csmcore.testing.strategies`."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import strategies as st

from csmcore import kpi, staffing
from csmcore.kpi import CustomerRecord, NpsAnswer, TicketMetrics
from csmcore.staffing import ArrivalForecast, ErlangA, ErlangAPlan, SlotPlan, StaffingPlan
from csmcore.testing._basics import ZONES, instants, names

__all__ = [
    "arrival_forecasts",
    "customer_records",
    "erlang_a_figures",
    "erlang_a_plans",
    "nps_answers",
    "slot_plans",
    "staffing_plans",
    "ticket_metrics",
]


def nps_answers() -> st.SearchStrategy[NpsAnswer]:
    """Answers to the NPS question: a customer, a score of 0 to 10, an instant."""
    return st.builds(NpsAnswer, customer=names(), score=st.integers(0, 10), at=instants())


@st.composite
def _customer_records(draw: st.DrawFn) -> CustomerRecord:
    since = draw(instants())
    days = st.integers(1, 3 * 365)
    until = draw(st.none() | days.map(lambda d: since + timedelta(days=d)))
    steps = sorted(draw(st.sets(st.integers(0, 3 * 365), max_size=3)))
    amounts = st.decimals(min_value=0, max_value=10**5, places=2)
    revenue = [(since + timedelta(days=d), draw(amounts)) for d in steps]
    return CustomerRecord(customer=draw(names()), since=since, until=until, revenue=revenue)


def customer_records() -> st.SearchStrategy[CustomerRecord]:
    """Customers active from an instant, some churned up to three years later, with up to
    three revenue steps (whole cents, zero included)."""
    return _customer_records()


@st.composite
def _ticket_metrics(draw: st.DrawFn) -> TicketMetrics:
    from csmcore.testing.strategies import calendars, sla_books, tickets

    ticket = draw(tickets(max_events=6))
    at = ticket.updated_at + timedelta(minutes=draw(st.integers(0, 60 * 24 * 30)))
    calendar = draw(st.none() | calendars())
    book = draw(st.none() | sla_books(max_policies=1))
    return kpi.ticket_metrics(ticket, at, calendar=calendar, book=book)


def ticket_metrics() -> st.SearchStrategy[TicketMetrics]:
    """What :func:`csmcore.kpi.ticket_metrics` says of a random ticket at an instant after its
    last event, with or without a business calendar and an SLA book."""
    return _ticket_metrics()


_SLOTS = tuple(timedelta(minutes=m) for m in (15, 30, 60, 120, 24 * 60))


@st.composite
def _arrival_forecasts(draw: st.DrawFn) -> ArrivalForecast:
    arrivals: list[datetime] = draw(st.lists(instants(), min_size=1, max_size=30))
    return staffing.arrival_forecast(
        arrivals, timezone=draw(st.sampled_from(ZONES)), interval=draw(st.sampled_from(_SLOTS))
    )


def arrival_forecasts() -> st.SearchStrategy[ArrivalForecast]:
    """What :func:`csmcore.staffing.arrival_forecast` makes of one to thirty arrivals, in one
    of a few zones and slot lengths (15 minutes to a day)."""
    return _arrival_forecasts()


# Staffing: the figures are what the Erlang functions compute for drawn loads, from an idle
# slot to a few hundred calls, one to sixty minutes of handling each.

_MINUTES = st.integers(1, 60).map(lambda m: timedelta(minutes=m))
_ARRIVALS = st.floats(0, 300, allow_nan=False).map(lambda a: round(a, 2))
_TARGET = st.sampled_from((0.5, 0.8, 0.9, 0.95))
_ANSWER_WITHIN = st.integers(0, 600).map(lambda s: timedelta(seconds=s))


def staffing_plans() -> st.SearchStrategy[StaffingPlan]:
    """What :func:`csmcore.staffing.required_agents` finds for a drawn load and target."""
    return st.builds(
        lambda arrivals, interval, handle, within, target, occupancy, shrinkage: (
            staffing.required_agents(
                arrivals=arrivals,
                interval=interval,
                handle_time=handle,
                answer_within=within,
                service_level=target,
                max_occupancy=occupancy,
                shrinkage=shrinkage,
            )
        ),
        _ARRIVALS,
        st.sampled_from(_SLOTS[:3]),
        _MINUTES,
        _ANSWER_WITHIN,
        _TARGET,
        st.sampled_from((1.0, 0.9, 0.85)),
        st.sampled_from((0.0, 0.1, 0.3)),
    )


def erlang_a_figures() -> st.SearchStrategy[ErlangA]:
    """What :func:`csmcore.staffing.erlang_a` says of a drawn load and number of agents."""
    return st.builds(
        lambda agents, arrivals, interval, handle, patience, within: staffing.erlang_a(
            agents=agents,
            arrivals=arrivals,
            interval=interval,
            handle_time=handle,
            patience=patience,
            answer_within=within,
        ),
        st.integers(0, 200),
        _ARRIVALS,
        st.sampled_from(_SLOTS[:3]),
        _MINUTES,
        _MINUTES,
        _ANSWER_WITHIN,
    )


def erlang_a_plans() -> st.SearchStrategy[ErlangAPlan]:
    """What :func:`csmcore.staffing.erlang_a_required_agents` finds for a drawn load."""
    return st.builds(
        lambda arrivals, interval, handle, patience, within, target: (
            staffing.erlang_a_required_agents(
                arrivals=arrivals,
                interval=interval,
                handle_time=handle,
                patience=patience,
                answer_within=within,
                service_level=target,
            )
        ),
        _ARRIVALS,
        st.sampled_from(_SLOTS[:3]),
        _MINUTES,
        _MINUTES,
        _ANSWER_WITHIN,
        _TARGET,
    )


@st.composite
def _slot_plans(draw: st.DrawFn) -> SlotPlan:
    plans = staffing.staffing_plan(
        draw(arrival_forecasts()),
        handle_time=draw(_MINUTES),
        answer_within=draw(_ANSWER_WITHIN),
        service_level=draw(_TARGET),
    )
    return draw(st.sampled_from(plans))


def slot_plans() -> st.SearchStrategy[SlotPlan]:
    """One week slot of what :func:`csmcore.staffing.staffing_plan` makes of a drawn forecast."""
    return _slot_plans()
