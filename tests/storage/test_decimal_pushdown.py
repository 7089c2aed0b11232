"""A custom field holding a ``Decimal`` against conditions whose value is an int or a float.

``matches`` compares a Decimal with numbers as Python does (``Decimal("1.00") == 1``,
``Decimal("0.01") > 0``, docs/tickets.md); the SQL stores used to leave such a field out of
every number comparison they pushed down, and found none of those tickets (the storage
conformance suite caught it with ``--hypothesis-seed=1``: ``Compare('fields.seats', '>', 0)``
and ``Compare('fields.seats', '<', 0)``). They now compare it exactly, in SQL, through the
bounds ``csm_tickets.fields`` keeps with it (``decimal_bounds``).
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csmcore import conditions as cd
from csmcore.storage import Store, open_store
from csmcore.storage._sql import fields_json
from csmcore.storage._sql_values import decimal_bounds
from csmcore.testing.builders import T0, make_ticket
from csmcore.tickets import Ticket

VALUES: list[Any] = [
    Decimal("0.01"),
    Decimal("-0.01"),
    Decimal("1.00"),
    Decimal("0.1"),
    Decimal("-0"),
    Decimal("2.5"),
    Decimal("9007199254740993"),
    Decimal("9007199254740992.5"),
    Decimal("1E+30"),
    True,
    1,
    0.5,
    "1",
]

FALSIFYING: list[cd.Condition] = [
    cd.Compare("fields.seats", ">", 0),  # the conformance suite's examples
    cd.Compare("fields.seats", "<", 0),
    cd.Compare("fields.seats", ">=", 0),
    cd.Compare("fields.seats", "<=", -0.0),
    cd.Eq("fields.seats", 1),
    cd.Eq("fields.seats", 0),
    cd.Eq("fields.seats", 2**53 + 1),
    cd.Eq("fields.seats", 0.1),  # Decimal("0.1") is not the float 0.1
    cd.In("fields.seats", [1, 2.5, None]),
    cd.Compare("fields.seats", "<", 0.1),
    cd.Compare("fields.seats", ">", 0.1),
    cd.Compare("fields.seats", ">", 2**53 + 1),
    cd.Compare("fields.seats", ">=", 1e30),
    cd.Not(cd.Compare("fields.seats", ">", 0)),
    cd.Not(cd.Eq("fields.seats", 1)),
]


def _tickets(values: list[Any]) -> list[Ticket]:
    out = []
    for n, value in enumerate(values):
        ticket = make_ticket(f"T-{n:03d}")
        if value is not None:
            ticket, _ = ticket.set_fields(T0 + timedelta(minutes=1), {"seats": value})
        out.append(ticket)
    return out


def _check(store: Store, values: list[Any], conditions: list[cd.Condition]) -> None:
    stored = _tickets(values)
    store.tickets.add_many(stored)
    for condition in conditions:
        expected = [t.id for t in stored if condition.matches(t)]
        assert [t.id for t in store.tickets.find(condition)] == expected, condition
        assert store.tickets.count(condition) == len(expected), condition


def test_matches_compares_a_decimal_with_numbers() -> None:
    found = {repr(c): [t.id for t in _tickets(VALUES) if c.matches(t)] for c in FALSIFYING[:2]}
    assert found == {
        "Compare('fields.seats', '>', 0)": [
            *("T-000", "T-002", "T-003", "T-005", "T-006"),
            *("T-007", "T-008", "T-010", "T-011"),
        ],
        "Compare('fields.seats', '<', 0)": ["T-001"],
    }


@pytest.fixture(params=["memory", "sqlite"])
def local_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path}/s.db"
    store = open_store(url)
    yield store
    store.close()


def test_memory_and_sqlite_compare_a_decimal_with_numbers(local_store: Store) -> None:
    _check(local_store, VALUES, FALSIFYING)


def test_postgres_compares_a_decimal_with_numbers(postgres_factory: Callable[[], Store]) -> None:
    store = postgres_factory()
    try:
        _check(store, VALUES, FALSIFYING)
    finally:
        store.close()


def test_number_conditions_stay_pushed_down(sqlite_factory: Any) -> None:
    store = sqlite_factory()
    try:
        for condition in FALSIFYING:  # a float of 2**63 or more is Python's on SQLite
            value = getattr(condition, "value", 0)
            exact = not (isinstance(value, float) and abs(value) >= 2.0**63)
            assert sqlite_factory.pushes_down(store, condition) == exact, condition
    finally:
        store.close()


def test_postgres_number_conditions_stay_pushed_down(postgres_factory: Any) -> None:
    store = postgres_factory()
    try:
        for condition in FALSIFYING:
            assert postgres_factory.pushes_down(store, condition), condition
    finally:
        store.close()


def test_an_older_store_gets_the_bounds_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    store = open_store(f"sqlite:///{path}")
    stored = _tickets(VALUES)
    store.tickets.add_many(stored)
    store.close()
    with sqlite3.connect(path) as conn:  # fields as the schema before wrote them: no bounds
        conn.execute(
            "UPDATE csm_tickets SET fields = json_remove(fields, '$.seats.lo', '$.seats.hi')"
        )
        # added by schema 7 and 9
        for table in ("csm_firings", "csm_ticket_plans", "csm_outbox", "csm_ticket_requesters"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute(  # schema 5: before step 5 -> 6 wrote the bounds
            "UPDATE csm_meta SET value = '5' WHERE name = 'schema_version'"
        )
    conn.close()
    store = open_store(f"sqlite:///{path}")
    try:
        condition = cd.Compare("fields.seats", ">", 0)
        expected = [t.id for t in stored if condition.matches(t)]
        assert [t.id for t in store.tickets.find(condition)] == expected
    finally:
        store.close()


# --- the bounds ---------------------------------------------------------------------------


def _numbers_near(value: Decimal) -> list[int | float]:
    near = float(value)
    floats = [near, math.nextafter(near, math.inf), math.nextafter(near, -math.inf)]
    ints = [math.floor(value) + d for d in (-1, 0, 1, 2)]
    return [*floats, *ints]


decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.floats(allow_nan=False, allow_infinity=False).map(Decimal),
    st.integers(-(2**70), 2**70).map(Decimal),
    st.builds(
        lambda whole, frac: Decimal(whole) + Decimal(frac),
        st.integers(-(2**60), 2**60),
        st.sampled_from(["0.5", "0.1", "-0.25", "1E-30"]),
    ),
)


@given(value=decimals)
def test_the_bounds_compare_as_the_decimal_does(value: Decimal) -> None:
    lo, hi = decimal_bounds(value)
    assert lo <= value <= hi
    assert (lo == hi) == any(x == value for x in (lo, hi))
    for x in [lo, hi, *_numbers_near(value)]:
        if isinstance(x, float) and not math.isfinite(x):
            continue
        assert (value == x) == (lo == x and hi == x), x
        assert (value < x) == (hi <= x and lo < x), x
        assert (value <= x) == (hi <= x), x
        assert (value > x) == (lo >= x and hi > x), x
        assert (value >= x) == (lo >= x), x


def test_fields_json_writes_a_decimal_with_its_bounds() -> None:
    assert fields_json({"a": Decimal("10.50")}) == '{"a":{"$decimal":"10.50","lo":10.5,"hi":10.5}}'


# --- a property over mixed values ---------------------------------------------------------

mixed_values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 0.1, 2.5, 2**53, 2**53 + 1, "1", "a"]),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False, width=32),
    decimals.filter(lambda d: abs(d) < 10**20),
    st.sampled_from([Decimal("0.1"), Decimal("-0.00"), Decimal("1.0"), Decimal("2.50")]),
)
numbers = st.one_of(
    st.sampled_from([0, 1, -1, 0.1, 2.5, -0.0, 2**53, 2**53 + 1]),
    st.integers(-5, 5),
    st.floats(-5, 5, allow_nan=False, width=32),
)
OPS = st.sampled_from(["<", "<=", ">", ">="])
leaves = st.one_of(
    st.builds(
        cd.Compare, st.just("fields.seats"), st.sampled_from(["<", "<=", ">", ">="]), numbers
    ),
    st.builds(cd.Eq, st.just("fields.seats"), numbers),
    st.builds(cd.In, st.just("fields.seats"), st.lists(st.none() | numbers, max_size=3)),
)
number_conditions = st.tuples(leaves, st.booleans()).map(lambda p: cd.Not(p[0]) if p[1] else p[0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(mixed_values, max_size=6), conditions=st.lists(number_conditions, max_size=4)
)
def test_sqlite_agrees_with_matches_on_mixed_values(
    values: list[Any], conditions: list[cd.Condition], tmp_path_factory: pytest.TempPathFactory
) -> None:
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('mixed')}/s.db")
    try:
        _check(store, values, conditions)
    finally:
        store.close()


def test_postgres_agrees_with_matches_on_mixed_values(
    postgres_factory: Callable[[], Store],
) -> None:
    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(values=st.lists(mixed_values, max_size=6), conditions=st.lists(number_conditions))
    def check(values: list[Any], conditions: list[cd.Condition]) -> None:
        store = postgres_factory()
        try:
            _check(store, values, conditions[:4])
        finally:
            store.close()

    check()
