"""Bad input, seen from an embedding application: a clear refusal, never a leaked builtin.

The public boundary (``csmcore._boundary``) already turns every stray ``TypeError`` into a
``CsmError``, so "only CsmError escapes" holds by construction. What it cannot do is say *which*
value was wrong and what is accepted: its fallback message is ``"<where>: TypeError: <text>"``.
These properties hold the stronger promise of the rules: a refusal is raised on purpose, is
not an ``InternalError`` and names the offending value (or, for a container, the argument).

Two sweeps: every registered type's constructor (a valid object drawn from
``csmcore.testing.strategies`` with one field replaced by junk) and a table of public
functions (valid arguments with one replaced by junk).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from csmcore import escalation, kpi, loyalty, services, sla, staffing
from csmcore._values import show
from csmcore.calendars import BusinessCalendar
from csmcore.clock import FixedClock
from csmcore.conditions import Always
from csmcore.errors import CsmError, InternalError
from csmcore.services import Ledger
from csmcore.services import kpi as kpi_services
from csmcore.storage import open_store
from csmcore.testing import _registered_types
from csmcore.testing.builders import make_ticket
from csmcore.tickets import Ticket, importing

UTC = timezone.utc
T0 = datetime(2025, 3, 3, 10, tzinfo=UTC)
HOUR = timedelta(hours=1)
FIVE_MIN = timedelta(minutes=5)

JUNK: tuple[Any, ...] = (
    None,
    "x",
    "",
    -1,
    0.5,
    math.nan,
    math.inf,
    Decimal("NaN"),
    10**400,
    10**5000,  # beyond Python's int-to-text limit: its repr raises
    True,
    datetime(2025, 1, 1),  # naive
    datetime.max.replace(tzinfo=UTC),  # past the supported range
    -timedelta(days=1),
    timedelta.max,
    [],
    [[1]],  # unhashable items
    {"a": [1]},
    [10**5000],  # a container whose repr raises
    object(),
)
"""Wrong types and out-of-range values, as the brief of the audit lists them."""

_JUNK = st.integers(0, len(JUNK) - 1).map(JUNK.__getitem__)
"""A value of JUNK, drawn by index: Hypothesis could not print the integers too long to print."""

_SETTINGS = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # a failure prints its example as drawn
)


def _fallback(err: CsmError) -> bool:
    """True for an error the boundary made out of a builtin it did not expect (its message
    is the builtin's, not one naming the value), or attrs' own validator message."""
    cause = err.__cause__
    text = str(err)
    if "Attribute(name=" in text:
        return True
    return (
        cause is not None
        and not isinstance(cause, CsmError)
        and re.match(rf"^[\w.<>]+: {type(cause).__name__}: ", text) is not None
    )


def _names_it(text: str, value: Any, argument: str) -> bool:
    if type(value) is object:
        return argument in text or "object" in text
    if isinstance(value, list | dict | tuple | set | frozenset):
        # the argument, the container or one of its items (a dict iterates over its keys)
        items: list[Any] = list(value)
        shown = [show(value, 20)] + [show(item, 20) for item in items]
        if any(type(item) is int and item.bit_length() > 2000 for item in items):
            shown.append("integer of")
        return argument in text or "object" in text or any(s in text for s in shown)
    if type(value) is int and value.bit_length() > 2000:
        return "integer of" in text
    if value is None and argument in text:  # "Assign needs an agent, a group or both"
        return True
    if isinstance(value, datetime) and value.tzinfo is None and "naive" in text:
        return True
    if isinstance(value, timedelta) and f"{argument}=relativedelta(" in text:
        return True  # shown as the relativedelta it became: relativedelta(days=-1)
    if value == "":
        return "''" in text or "empty" in text
    shown = [repr(value)[:15], str(value)[:15]]
    if isinstance(value, datetime):
        shown.append(value.isoformat()[:15])
    return any(s in text for s in shown)


def check_refusal(what: str, call: Callable[[], Any], value: Any, argument: str) -> None:
    """``call()`` answers, or refuses with a CsmError raised on purpose naming ``value``."""
    refusal: CsmError | None = None
    try:
        call()
    except CsmError as err:
        refusal = err
    except Exception as err:  # pragma: no cover - the boundary makes this unreachable
        raise AssertionError(f"{what} leaked {type(err).__name__}: {err}") from err
    if refusal is None:
        return
    assert not isinstance(refusal, InternalError), f"{what}: an InternalError (a bug): {refusal}"
    assert not _fallback(refusal), f"{what}: the message names no value: {refusal}"
    assert _names_it(str(refusal), value, argument), f"{what}: {show(value)} not named: {refusal}"


# -- constructors of every registered type ------------------------------------------------------


def _types() -> list[type]:
    found = []
    for cls in _registered_types():
        if not cls.__module__.startswith("csmcore."):
            continue  # a test module's own declarations (tests/tickets/test_registry.py)
        if attrs.has(cls) and any(f.init for f in attrs.fields(cls)):
            found.append(cls)
    return sorted(found, key=lambda c: c.__qualname__)


# Records of a store, which the strategies cannot draw standalone, and the condition nodes
# built from positional arguments (``All(*conditions)``), which ``attrs.evolve`` cannot
# rebuild; the fuzz entry point "conditions" covers those.
_SKIP = {"FiringRecord", "OutboxMessage", "TicketPlan", "All", "AnyOf", "Not"}


_VALID: dict[type, list[Any]] = {}


def _valid(cls: type) -> list[Any]:
    """Three valid objects of ``cls``, drawn once (drawing SLA statuses is slow)."""
    if cls not in _VALID:
        found: list[Any] = []

        @settings(_SETTINGS, max_examples=3)
        @given(st.from_type(cls))
        def collect(value: Any) -> None:
            found.append(value)

        collect()
        _VALID[cls] = found
    return _VALID[cls]


@pytest.mark.parametrize(
    "cls", [c for c in _types() if c.__name__ not in _SKIP], ids=lambda c: c.__qualname__
)
def test_a_constructor_names_a_bad_field_value(cls: type) -> None:
    @_SETTINGS
    @given(st.data())
    def run(data: st.DataObject) -> None:
        valid = data.draw(st.sampled_from(_valid(cls)), label="valid")
        fields = [f for f in attrs.fields(type(valid)) if f.init]
        field = data.draw(st.sampled_from(fields), label="field")
        value = data.draw(_JUNK, label="junk")
        check_refusal(
            f"{type(valid).__name__}({field.alias}=...)",
            lambda: attrs.evolve(valid, **{field.alias: value}),
            value,
            field.alias,
        )

    run()


# -- public functions ------------------------------------------------------------------------------

_FORECAST = staffing.arrival_forecast([T0, T0 + HOUR], timezone="UTC")
_BOOK = sla.SlaBook(
    policies=[
        sla.SlaPolicy(
            name="std",
            position=1,
            default=True,
            targets=[sla.SlaTarget(metric=sla.SlaMetric.FIRST_REPLY, within=HOUR)],
        )
    ],
    calendar=BusinessCalendar.always(timezone="UTC"),
)
_TICKET = make_ticket("T-1")
LATER = T0 + 3 * HOUR
_CAL = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
_RULE = escalation.EscalationRule(
    name="r",
    condition=Always(),
    levels=[
        escalation.EscalationLevel(
            trigger=escalation.PercentUsed(target="first_reply", percent=50),
            actions=[escalation.AddTags(tags="late")],
        )
    ],
)
_TIERS = loyalty.TierPolicy(tiers=[loyalty.Tier(name="gold", threshold=10)])
_STORE = open_store("memory://")
_STORE.tickets.add(_TICKET)


def _funded() -> Ledger:
    ledger = Ledger(open_store("memory://"))
    ledger.earn("ann", 10, at=T0, key="seed")
    return ledger


FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = {
    "arrival_forecast": (
        staffing.arrival_forecast,
        ([T0, T0 + HOUR],),
        {"timezone": "UTC", "interval": HOUR},
    ),
    "average_speed_of_answer": (
        staffing.average_speed_of_answer,
        (),
        {"agents": 5, "arrivals": 30.0, "interval": HOUR, "handle_time": FIVE_MIN},
    ),
    "erlang_a": (
        staffing.erlang_a,
        (),
        {
            "agents": 5,
            "arrivals": 30.0,
            "interval": HOUR,
            "handle_time": FIVE_MIN,
            "patience": FIVE_MIN,
            "answer_within": FIVE_MIN,
        },
    ),
    "erlang_a_required_agents": (
        staffing.erlang_a_required_agents,
        (),
        {
            "arrivals": 30.0,
            "interval": HOUR,
            "handle_time": FIVE_MIN,
            "patience": FIVE_MIN,
            "answer_within": FIVE_MIN,
            "service_level": 0.8,
            "max_abandonment": 0.1,
            "shrinkage": 0.1,
        },
    ),
    "erlang_b": (staffing.erlang_b, (5, 2.0), {}),
    "erlang_c": (staffing.erlang_c, (5, 2.0), {}),
    "occupancy": (
        staffing.occupancy,
        (),
        {"agents": 5, "arrivals": 30.0, "interval": HOUR, "handle_time": FIVE_MIN},
    ),
    "required_agents": (
        staffing.required_agents,
        (),
        {
            "arrivals": 30.0,
            "interval": HOUR,
            "handle_time": FIVE_MIN,
            "answer_within": FIVE_MIN,
            "service_level": 0.8,
            "max_occupancy": 0.9,
            "shrinkage": 0.1,
        },
    ),
    "service_level": (
        staffing.service_level,
        (),
        {
            "agents": 5,
            "arrivals": 30.0,
            "interval": HOUR,
            "handle_time": FIVE_MIN,
            "answer_within": FIVE_MIN,
        },
    ),
    "staffing_plan": (
        staffing.staffing_plan,
        (_FORECAST,),
        {
            "handle_time": FIVE_MIN,
            "answer_within": FIVE_MIN,
            "service_level": 0.8,
            "max_occupancy": 0.9,
            "shrinkage": 0.1,
        },
    ),
    "traffic": (
        staffing.traffic,
        (),
        {"arrivals": 30.0, "interval": HOUR, "handle_time": FIVE_MIN},
    ),
    "ces": (kpi.ces, ([1, 5, 7], 7), {"method": "agree", "agree_at": 5}),
    "csat": (kpi.csat, ([1, 5, 4], 5), {"top": 2}),
    "nps": (kpi.nps, ([0, 10, 9],), {}),
    "time_bucket": (kpi.time_bucket, (T0, "day", "UTC"), {}),
    "period_bounds": (loyalty.period_bounds, (T0, loyalty.Period.MONTH, "UTC"), {}),
    "check_points": (loyalty.check_points, (5, "points"), {}),
    "check_instant": (loyalty.check_instant, (T0, "at"), {}),
    "entry_id_of": (loyalty.entry_id_of, ("m1", 3), {}),
    "recovery_key": (loyalty.recovery_key, ("T-1", "first_reply", 0), {}),
    "rebuild": (sla.rebuild, ([_TICKET],), {"old": _BOOK, "new": _BOOK, "at": T0}),
    "backtest": (sla.backtest, ([_TICKET],), {"baseline": _BOOK, "candidate": _BOOK, "at": T0}),
    "SlaBook.next_change": (_BOOK.next_change, (_TICKET, T0), {}),
    "SlaBook.evaluate": (_BOOK.evaluate, (_TICKET, T0), {}),
    # tickets
    "Ticket.comment": (_TICKET.comment, (LATER, "agent"), {"public": True, "author": "bob"}),
    "Ticket.set_status": (_TICKET.set_status, (LATER, "open"), {"actor": "bob"}),
    "Ticket.set_priority": (_TICKET.set_priority, (LATER, "high"), {}),
    "Ticket.assign": (_TICKET.assign, (LATER, "bob", "L2"), {}),
    "Ticket.tag": (_TICKET.tag, (LATER, ["vip"], ["x"]), {}),
    "Ticket.set_fields": (_TICKET.set_fields, (LATER, {"plan": "gold"}), {}),
    "Ticket.change_requester": (_TICKET.change_requester, (LATER, "carl"), {}),
    "Ticket.merge_into": (_TICKET.merge_into, (LATER, "T-2"), {}),
    "Ticket.as_of": (_TICKET.as_of, (LATER,), {}),
    "Ticket.from_events": (Ticket.from_events, (_TICKET.events,), {}),
    # calendars
    "BusinessCalendar.weekly": (
        BusinessCalendar.weekly,
        ("09:00", "17:00"),
        {"days": "mon-fri", "timezone": "Europe/Berlin", "holidays": [date(2025, 1, 1)]},
    ),
    "BusinessCalendar.add": (_CAL.add, (T0, HOUR), {}),
    "BusinessCalendar.elapsed": (_CAL.elapsed, (T0, LATER), {}),
    "BusinessCalendar.is_open": (_CAL.is_open, (T0,), {}),
    "BusinessCalendar.next_open": (_CAL.next_open, (T0,), {}),
    "BusinessCalendar.open_intervals": (
        lambda start, end: list(_CAL.open_intervals(start, end)),
        (T0, LATER),
        {},
    ),
    # KPIs
    "ticket_metrics": (kpi.ticket_metrics, (_TICKET, LATER), {"calendar": _CAL, "book": _BOOK}),
    "KpiAggregator.add": (lambda item: kpi.KpiAggregator().add(item), (_TICKET,), {}),
    # escalation
    "due_firings": (escalation.due_firings, (_TICKET, _BOOK, [_RULE], T0, LATER), {}),
    "next_due": (escalation.next_due, (_TICKET, _BOOK, [_RULE], T0), {}),
    "run_ticket": (
        escalation.run_ticket,
        (_TICKET, _BOOK, [_RULE], T0, LATER),
        {"max_firings": 10},
    ),
    "dry_run": (escalation.dry_run, ([_TICKET], _BOOK, [_RULE], T0, LATER), {}),
    # loyalty, on a ledger in memory
    "Ledger.earn": (
        lambda *a, **k: Ledger(open_store("memory://")).earn(*a, **k),
        ("ann", 10),
        {"at": T0, "key": "k", "expires_at": LATER, "spend": Decimal("9.90"), "reason": "r"},
    ),
    "Ledger.redeem": (
        lambda *a, **k: _funded().redeem(*a, **k),
        ("ann", 5),
        {"at": LATER, "key": "r", "reference": "order"},
    ),
    "Ledger.transfer": (
        lambda *a, **k: _funded().transfer(*a, **k),
        ("ann", "bob", 5),
        {"at": LATER, "key": "t"},
    ),
    "Ledger.adjust": (
        lambda *a, **k: _funded().adjust(*a, **k),
        ("ann", 5),
        {"at": LATER, "key": "a", "reason": "goodwill"},
    ),
    "Ledger.balance": (lambda *a, **k: _funded().balance(*a, **k), ("ann", LATER), {}),
    "LedgerState.plan_purchase": (
        lambda spend, at, key, reference, reason: loyalty.LedgerState("ann").plan_purchase(
            spend, at=at, key=key, reference=reference, reason=reason
        ),
        (Decimal("9.90"), T0, "k", "order", "purchase"),
        {},
    ),
    "tier_status": (loyalty.tier_status, (_TIERS, [], T0), {}),
    "verify_entries": (loyalty.verify_entries, ("ann", []), {"allow_negative": False}),
    "Ledger": (
        lambda store, order, clock: Ledger(store, order=order, clock=clock),
        (open_store("memory://"), "soonest_expiry", FixedClock(T0)),
        {},
    ),
    # services
    "EscalationEngine": (
        lambda store, book, rules, batch_size: services.EscalationEngine(
            store, book, rules, batch_size=batch_size
        ),
        (open_store("memory://"), _BOOK, [_RULE], 10),
        {},
    ),
    "Dispatcher": (
        lambda store, notifiers, clock, max_attempts: services.Dispatcher(
            store, notifiers, clock=clock, max_attempts=max_attempts
        ),
        (open_store("memory://"), services.LoggingNotifier(), FixedClock(T0), 3),
        {},
    ),
    "Backoff": (services.Backoff, (), {"base": HOUR, "factor": 2.0, "jitter": 0.1, "seed": 1}),
    "render": (services.render, ("Ticket {ticket_id}", {"ticket_id": "T-1"}), {}),
    "stream_metrics": (
        lambda *a, **k: list(kpi_services.stream_metrics(*a, **k)),
        (_STORE, Always()),
        {"at": LATER, "calendar": _CAL, "book": _BOOK, "batch_size": 10},
    ),
    "summarize": (
        kpi_services.summarize,
        (_STORE, Always()),
        {"at": LATER, "calendar": _CAL, "book": _BOOK, "by": ["channel"], "bucket": "day"},
    ),
    # importing
    "import_snapshots": (
        lambda rows, header, format, timestamps: list(
            importing.import_snapshots(rows, header=header, format=format, timestamps=timestamps)
        ),
        (
            [["INC1", "New", "1/2/2016 09:00", "ann"], ["INC1", "Active", "1/2/2016 10:00", "ann"]],
            ["number", "incident_state", "sys_updated_at", "caller_id"],
            importing.SnapshotFormat(
                case="number",
                at="sys_updated_at",
                state="incident_state",
                requester="caller_id",
                statuses=importing.SERVICENOW.statuses,
            ),
            importing.Timestamps(zone="UTC", day_first=True),
        ),
        {},
    ),
    # storage
    "tickets.add_many": (
        lambda tickets: open_store("memory://").tickets.add_many(tickets),
        ([_TICKET],),
        {},
    ),
    "tickets.get": (lambda ticket_id: _STORE.tickets.get(ticket_id), ("T-1",), {}),
    "tickets.find": (
        lambda condition, limit: _STORE.tickets.find(condition, limit=limit),
        (Always(), 5),
        {},
    ),
    "policies.put": (
        lambda key, value, expected_version: open_store("memory://").policies.put(
            key, value, expected_version=expected_version
        ),
        ("std", _BOOK.policies[0], 0),
        {},
    ),
}
"""name -> (function, valid positional arguments, valid keyword arguments)."""


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_a_function_names_a_bad_argument(name: str) -> None:
    fn, args, kwargs = FUNCTIONS[name]
    fn(*args, **kwargs)  # the valid call answers
    names = [
        p.name for p in inspect.signature(fn).parameters.values() if p.kind != p.VAR_POSITIONAL
    ]
    slots: list[tuple[int | str, str]] = [
        (i, names[i] if i < len(names) else "") for i in range(len(args))
    ]
    slots += [(k, k) for k in kwargs]

    @_SETTINGS
    @given(st.sampled_from(slots), _JUNK)
    def run(slot: tuple[int | str, str], value: Any) -> None:
        key, argument = slot
        new_args, new_kwargs = list(args), dict(kwargs)
        if isinstance(key, int):
            new_args[key] = value
        else:
            new_kwargs[key] = value
        check_refusal(
            f"{name}({argument}={show(value, 40)})",
            lambda: fn(*new_args, **new_kwargs),
            value,
            argument,
        )

    run()
