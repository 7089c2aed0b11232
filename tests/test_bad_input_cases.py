"""Defects the bad-input audit found, one case each (tests/test_bad_input_audit.py sweeps)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from csmcore import staffing
from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Always, Never
from csmcore.errors import CsmError, InternalError, UnsupportedRole, ValidationError
from csmcore.escalation import (
    AddTags,
    EscalationLevel,
    EscalationRule,
    Notify,
    PercentUsed,
    RemoveTags,
    dry_run,
    due_firings,
    next_due,
    run_ticket,
)
from csmcore.kpi import KpiAggregator
from csmcore.loyalty import (
    Cap,
    EntryKind,
    LedgerEntry,
    Multiplier,
    Period,
    SpendRule,
    Tier,
    TierPolicy,
    period_bounds,
    tier_status,
    verify_entries,
)
from csmcore.services import EscalationEngine, Ledger, render
from csmcore.services import kpi as kpi_services
from csmcore.sla import (
    CustomTimer,
    SlaBook,
    SlaMetric,
    SlaPolicy,
    SlaTarget,
    backtest,
    rebuild,
)
from csmcore.storage import open_store
from csmcore.testing.builders import make_ticket
from csmcore.tickets import TagsChanged
from csmcore.tickets.importing import (
    SERVICENOW,
    ImportReport,
    SnapshotFormat,
    Timestamps,
    import_snapshots,
)

UTC = timezone.utc
T0 = datetime(2025, 3, 3, 10, tzinfo=UTC)


def _refusal(call: Callable[[], Any]) -> CsmError:
    with pytest.raises(CsmError) as caught:
        call()
    assert not isinstance(caught.value, InternalError)
    return caught.value


# -- an unhashable item in a collection that becomes a set --------------------------------------

UNHASHABLE: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "Ticket.create tags": (
        "tags",
        lambda v: make_ticket("T-1", tags=v),
    ),
    "TagsChanged added": ("added", lambda v: TagsChanged(at=T0, actor="a", added=v)),
    "AddTags": ("tags", lambda v: AddTags(tags=v)),
    "RemoveTags": ("tags", lambda v: RemoveTags(tags=v)),
    "BusinessCalendar holidays": (
        "holidays",
        lambda v: BusinessCalendar.always(timezone="UTC", holidays=v),
    ),
    "Multiplier tiers": ("tiers", lambda v: Multiplier(name="m", factor=2, tiers=v)),
    "SpendRule categories": (
        "categories",
        lambda v: SpendRule(name="s", points=Decimal(1), categories=v),
    ),
    "Cap events": (
        "events",
        lambda v: Cap(name="c", points=10, period=Period.MONTH, events=v),
    ),
    "TierPolicy non_qualifying": (
        "non_qualifying",
        lambda v: TierPolicy(tiers=[Tier(name="gold", threshold=10)], non_qualifying=v),
    ),
}


@pytest.mark.parametrize("name", sorted(UNHASHABLE))
def test_an_unhashable_item_is_refused_naming_the_argument_and_the_item(name: str) -> None:
    argument, build = UNHASHABLE[name]
    err = _refusal(lambda: build(["ok", ["not", "hashable"]]))
    assert isinstance(err, ValidationError)
    assert argument in str(err)
    assert "['not', 'hashable']" in str(err)
    assert "unhashable type" not in str(err)


def test_a_set_of_dates_still_makes_holidays() -> None:
    cal = BusinessCalendar.always(timezone="UTC", holidays=[date(2025, 1, 1)])
    assert not cal.is_open(datetime(2025, 1, 1, 12, tzinfo=UTC))
    assert make_ticket("T-1").tags == frozenset()


# -- a wrong type where a collection, a ticket or a number is expected ---------------------------

_BOOK = SlaBook(
    policies=[
        SlaPolicy(
            name="std",
            position=1,
            default=True,
            targets=[SlaTarget(metric=SlaMetric.FIRST_REPLY, within=timedelta(hours=1))],
        )
    ],
    calendar=BusinessCalendar.always(timezone="UTC"),
)
_H = timedelta(hours=1)

WRONG: dict[str, tuple[str, Callable[[], Any]]] = {
    "arrival_forecast instants=None": (
        "instants=None",
        lambda: staffing.arrival_forecast(None, timezone="UTC"),  # type: ignore[arg-type]
    ),
    "arrival_forecast instants=[]": (
        "instants is empty: no arrivals and no observed period",
        lambda: staffing.arrival_forecast([], timezone="UTC"),
    ),
    "rebuild tickets=None": (
        "tickets=None",
        lambda: rebuild(None, old=_BOOK, new=_BOOK, at=T0),  # type: ignore[arg-type]
    ),
    "backtest tickets=5": (
        "tickets=5",
        lambda: backtest(5, baseline=_BOOK, candidate=_BOOK, at=T0),  # type: ignore[arg-type]
    ),
    "SlaBook.evaluate ticket=None": (
        "ticket=None",
        lambda: _BOOK.evaluate(None, T0),  # type: ignore[arg-type]
    ),
    "SlaBook.next_change ticket='T-1'": (
        "ticket='T-1'",
        lambda: _BOOK.next_change("T-1", T0),  # type: ignore[arg-type]
    ),
    "erlang_b agents=10**400": (
        "agents=1000000",
        lambda: staffing.erlang_b(10**400, 2.0),
    ),
    "erlang_c traffic=10**400": (
        "traffic=1000000",
        lambda: staffing.erlang_c(5, 10**400),
    ),
    "traffic arrivals=10**400": (
        "arrivals=1000000",
        lambda: staffing.traffic(arrivals=10**400, interval=_H, handle_time=_H),
    ),
    "period_bounds period=None": (
        "period=None",
        lambda: period_bounds(T0, None),  # type: ignore[arg-type]
    ),
    "period_bounds period=[]": (
        "period=[]",
        lambda: period_bounds(T0, []),  # type: ignore[arg-type]
    ),
    "LedgerEntry draws=5": (
        "draws=5",
        lambda: LedgerEntry(
            entry_id="m#1",
            member_id="m",
            seq=1,
            kind=EntryKind.EARN,
            points=5,
            at=T0,
            key="k",
            draws=5,
        ),
    ),
}


_RULE = EscalationRule(
    name="r",
    condition=Always(),
    levels=[
        EscalationLevel(
            trigger=PercentUsed(target="first_reply", percent=50), actions=[AddTags(tags="a")]
        )
    ],
)
_T1 = make_ticket("T-1")
_LATER = T0 + 3 * _H
_CAL = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
_TIERS = TierPolicy(tiers=[Tier(name="gold", threshold=10)])

WRONG.update(
    {
        "due_firings ticket=None": (
            "ticket=None",
            lambda: due_firings(None, _BOOK, [_RULE], T0, _LATER),  # type: ignore[arg-type]
        ),
        "next_due ticket=None": (
            "ticket=None",
            lambda: next_due(None, _BOOK, [_RULE], T0),  # type: ignore[arg-type]
        ),
        "run_ticket ticket=5": (
            "ticket=5",
            lambda: run_ticket(5, _BOOK, [_RULE], T0, _LATER),  # type: ignore[arg-type]
        ),
        "dry_run tickets=None": (
            "tickets=None",
            lambda: dry_run(None, _BOOK, [_RULE], T0, _LATER),  # type: ignore[arg-type]
        ),
        "backtest baseline=None": (
            "baseline=None",
            lambda: backtest([_T1], baseline=None, candidate=_BOOK, at=T0),  # type: ignore[arg-type]
        ),
        "rebuild old=None": (
            "old=None",
            lambda: rebuild([_T1], old=None, new=_BOOK, at=T0),  # type: ignore[arg-type]
        ),
        "rebuild new='x'": (
            "new='x'",
            lambda: rebuild([_T1], old=_BOOK, new="x", at=T0),  # type: ignore[arg-type]
        ),
        "tickets.add_many None": (
            "tickets=None",
            lambda: open_store("memory://").tickets.add_many(None),  # type: ignore[arg-type]
        ),
        "tier_status policy=None": (
            "policy=None",
            lambda: tier_status(None, [], T0),  # type: ignore[arg-type]
        ),
        "verify_entries entries=None": (
            "entries=None",
            lambda: verify_entries("ann", None),  # type: ignore[arg-type]
        ),
        "period_bounds timezone={}": (
            "timezone={'a': [1]}",
            lambda: period_bounds(T0, Period.MONTH, {"a": [1]}),  # type: ignore[arg-type]
        ),
        "due_firings book=None": (
            "book=None",
            lambda: due_firings(_T1, None, [_RULE], T0, _LATER),  # type: ignore[arg-type]
        ),
        "next_due book='x'": (
            "book='x'",
            lambda: next_due(_T1, "x", [_RULE], T0),  # type: ignore[arg-type]
        ),
        "run_ticket book=None": (
            "book=None",
            lambda: run_ticket(_T1, None, [_RULE], T0, _LATER),  # type: ignore[arg-type]
        ),
        "dry_run book=None": (
            "book=None",
            lambda: dry_run([_T1], None, [_RULE], T0, _LATER),  # type: ignore[arg-type]
        ),
        "tier_status entries=[5]": (
            "entries holds 5",
            lambda: tier_status(_TIERS, [5], T0),  # type: ignore[list-item]
        ),
        "verify_entries entries=[5]": (
            "entries holds 5",
            lambda: verify_entries("ann", [5]),  # type: ignore[list-item]
        ),
        "BusinessCalendar.weekly days=[]": (
            "days=[] names no weekday",
            lambda: BusinessCalendar.weekly("09:00", "17:00", days=[]),
        ),
        "required_agents arrivals=10**5000": (
            "arrivals=<an integer of 5001 digits>",
            lambda: staffing.required_agents(
                arrivals=10**5000,
                interval=_H,
                handle_time=_H / 12,
                answer_within=_H / 12,
                service_level=0.8,
            ),
        ),
        "BusinessCalendar.add delta=10**5000": (
            "delta=<an integer of 5001 digits> is a int",
            lambda: _CAL.add(T0, 10**5000),  # type: ignore[arg-type]
        ),
        "BusinessCalendar.add start=[huge]": (
            "start=<list> is a list",
            lambda: _CAL.add([10**5000], _H),  # type: ignore[arg-type]
        ),
    }
)


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_wrong_type_or_size_is_refused_naming_the_argument_and_value(name: str) -> None:
    shown, call = WRONG[name]
    err = _refusal(call)
    assert isinstance(err, ValidationError)
    assert str(err).startswith(shown), str(err)


# -- a custom timer's triggers and transitions name their argument ---------------------------------


@pytest.mark.parametrize(
    ("arguments", "shown"),
    [
        ({"reset_on_change": {"a": 1}}, "reset_on_change[0]='a' is not a Transition"),
        ({"stop_on_change": 5}, "stop_on_change=5 is not a collection of Transition values"),
        ({"start_on": "created"}, "start_on='created' is not a collection of SlaTrigger values"),
    ],
    ids=["item", "transitions", "triggers"],
)
def test_a_custom_timer_names_the_argument_at_fault(arguments: dict[str, Any], shown: str) -> None:
    err = _refusal(lambda: CustomTimer(start=Always(), stop=Never(), **arguments))
    assert str(err).startswith(shown), str(err)


def test_an_argument_refused_for_its_combination_with_another_names_its_value() -> None:
    err = _refusal(
        lambda: SlaTarget(
            metric=SlaMetric.FIRST_REPLY,
            within=timedelta(hours=1),
            timer="junk",  # type: ignore[arg-type]
        )
    )
    assert str(err).startswith("timer='junk' applies to SlaMetric.CUSTOM targets only"), err
    err = _refusal(lambda: Notify(channel="sms", recipient="ops", template="t", calendar="support"))
    assert str(err).startswith("calendar='support' applies with business_hours=True only"), err
    assert (err.field, err.value) == ("calendar", "support")


# -- points beyond the integers csmcore keeps ------------------------------------------------------


@pytest.mark.parametrize("points", [10**700, 10**5000], ids=["701 digits", "5001 digits"])
@pytest.mark.parametrize("write", ["earn", "redeem", "adjust"])
def test_points_beyond_640_digits_are_refused_by_every_ledger(points: int, write: str) -> None:
    """The memory store kept them (and failed to print them when redeeming); the SQL stores
    kept 701 digits and refused 5001 only when encoding the entry."""
    ledger = Ledger(open_store("memory://"))
    ledger.earn("ann", 10, at=T0, key="seed")
    calls: dict[str, Callable[[], Any]] = {
        "earn": lambda: ledger.earn("ann", points, at=T0, key="k"),
        "redeem": lambda: ledger.redeem("ann", points, at=T0, key="k"),
        "adjust": lambda: ledger.adjust("ann", points, at=T0, key="k", reason="r"),
    }
    err = _refusal(calls[write])
    assert str(err).startswith("points=<an integer of"), str(err)
    assert "at most 640 digits" in str(err)
    assert [e.key for e in ledger.entries("ann")] == ["seed"]


# -- the importers of csmcore.tickets.importing, called by an application -------------------------


def _snow() -> tuple[list[str], list[list[str]]]:
    header = ["number", "incident_state", "sys_updated_at", "sys_mod_count", "caller_id"]
    rows = [
        ["INC1", "New", "1/2/2016 09:00", "0", "ann"],
        ["INC1", "Active", "1/2/2016 10:00", "1", "ann"],
        ["INC2", "New", "1/2/2016 11:00", "0", "bob"],
    ]
    return header, rows


def _import(rows: Any, **changes: Any) -> tuple[list[str], ImportReport]:
    header, _ = _snow()
    fmt = SnapshotFormat(
        case="number",
        at="sys_updated_at",
        order="sys_mod_count",
        state="incident_state",
        requester="caller_id",
        statuses=SERVICENOW.statuses,
    )
    report = ImportReport()
    arguments: dict[str, Any] = {
        "header": header,
        "format": fmt,
        "timestamps": Timestamps(zone="UTC", day_first=True),
        "report": report,
    }
    arguments.update(changes)
    ids = [t.ticket.id for t in import_snapshots(rows, **arguments)]
    return ids, report


@pytest.mark.parametrize(
    ("row", "cell", "value", "shown", "imported"),
    [
        (1, 2, math.nan, "timestamp nan is not a date and time", ["INC2"]),
        (1, 2, ["1/2/2016"], "cell 3 is ['1/2/2016'], a list", ["INC2"]),
        (1, 4, None, "requester=None is a NoneType", ["INC2"]),
        (0, 0, 45, "cell 1 is 45, a int", ["INC1", "INC2"]),
        (0, 0, None, "cell 1 is None, a NoneType", ["INC1", "INC2"]),
    ],
    ids=["float time", "list time", "None requester", "int case", "None case"],
)
def test_an_imported_cell_that_is_not_text_rejects_its_ticket_naming_row_and_value(
    row: int, cell: int, value: Any, shown: str, imported: list[str]
) -> None:
    _, rows = _snow()
    rows[row][cell] = value
    ids, report = _import(rows)
    assert ids == imported  # the other tickets are imported; nothing is silently lost
    assert report.rows == 3
    (rejected,) = report.rejected
    assert f"row {row + 1}" in rejected.message
    assert shown in rejected.message, rejected.message


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"rows": None}, "rows=None is a NoneType"),
        ({"format": "servicenow"}, "format='servicenow' is a str"),
        ({"timestamps": "UTC"}, "timestamps='UTC' is a str"),
        ({"header": None}, "header=None is a NoneType"),
    ],
)
def test_an_importer_given_a_wrong_argument_names_it(changes: dict[str, Any], shown: str) -> None:
    _, rows = _snow()
    rows = changes.pop("rows", rows)
    err = _refusal(lambda: _import(rows, **changes))
    assert str(err).startswith(shown), str(err)


def test_a_row_that_is_not_a_sequence_of_cells_rejects_naming_it() -> None:
    _, rows = _snow()
    ids, report = _import([*rows[:2], None, rows[2]])
    assert ids == ["INC1", "INC2"]
    (rejected,) = report.rejected
    assert rejected.message.startswith("row 3 is None, a NoneType; expected a sequence"), rejected


# -- csmcore.services.kpi checks its arguments at the call, whatever the store holds --------------


@pytest.mark.parametrize(
    ("arguments", "shown"),
    [
        ({"store": None}, "store=None is a NoneType; expected a Store"),
        ({"calendar": "x"}, "calendar='x' is a str; expected a BusinessCalendar"),
        ({"book": 5}, "book=5 is a int; expected an SlaBook"),
        ({"at": datetime(2025, 1, 1)}, "at=datetime.datetime(2025, 1, 1, 0, 0) is a naive"),
    ],
    ids=["store", "calendar", "book", "naive at"],
)
@pytest.mark.parametrize("entry", ["stream_metrics", "summarize"])
def test_the_kpi_services_refuse_a_bad_argument_at_the_call(
    entry: str, arguments: dict[str, Any], shown: str
) -> None:
    # an empty store: the arguments were only looked at once a ticket was judged (and
    # stream_metrics, a generator, looked at none before its first item)
    call: dict[str, Any] = {"store": open_store("memory://"), "at": T0}
    call.update(arguments)
    fn = getattr(kpi_services, entry)
    err = _refusal(lambda: fn(call.pop("store"), **call))
    assert str(err).startswith(shown), str(err)


# -- services: constructors and helpers check their arguments up front -------------------------


def test_services_name_a_bad_argument() -> None:
    store = open_store("memory://")
    err = _refusal(lambda: Ledger(store, clock=1.5))  # type: ignore[arg-type]
    assert str(err).startswith("clock=1.5 has no now()"), str(err)
    err = _refusal(lambda: EscalationEngine(store, _BOOK, 5))  # type: ignore[arg-type]
    assert str(err).startswith("rules=5 is a int; expected an iterable of EscalationRule"), err
    err = _refusal(lambda: render(None, {}))  # type: ignore[arg-type]
    assert str(err).startswith("template=None is a NoneType; expected a str"), str(err)
    err = _refusal(lambda: render("hello {name}", None))  # type: ignore[arg-type]
    assert str(err).startswith("values=None is a NoneType; expected a mapping"), str(err)


def test_a_store_argument_that_is_no_store_is_named_as_such() -> None:
    err = _refusal(lambda: Ledger(5))
    assert str(err).startswith("store=5 is a int; expected a store"), str(err)
    assert not isinstance(err, UnsupportedRole)


def test_a_kpi_aggregator_names_a_by_that_is_not_a_collection() -> None:
    err = _refusal(lambda: KpiAggregator(by=-1))  # type: ignore[arg-type]
    assert str(err).startswith("by=-1 is a int; expected a dimension name"), str(err)


@pytest.mark.parametrize(
    "at",
    [datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)],
    ids=["max", "min"],
)
def test_loyalty_periods_refuse_an_instant_outside_the_supported_range(at: datetime) -> None:
    for call in (
        lambda: period_bounds(at, Period.MONTH),
        lambda: tier_status(_TIERS, [], at),
        lambda: _TIERS.window(at),
    ):
        err = _refusal(call)
        assert str(err).startswith("at="), str(err)
        assert "supported range" in str(err), str(err)


def test_the_serialization_helpers_name_a_bad_argument() -> None:
    from csmcore import serialization
    from csmcore.conditions import unstructure_condition

    err = _refusal(lambda: serialization.schema_of({"a": 1}))  # type: ignore[arg-type]
    assert "{'a': 1}" in str(err), str(err)
    assert "unhashable" not in str(err)
    err = _refusal(lambda: serialization.upcast(None, {}, 1))  # type: ignore[arg-type]
    assert str(err).startswith("info=None is a NoneType; expected a TypeInfo"), str(err)
    err = _refusal(lambda: unstructure_condition(10**5000))  # type: ignore[arg-type]
    assert "cannot serialise <an integer of 5001 digits>" in str(err), str(err)
