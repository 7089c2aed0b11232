"""Stored values read back exactly on every store, and what cannot be stored is refused before
anything is written (issue 11: durations as exact text, values of the wrong kind)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csmcore.clock import FixedClock
from csmcore.conditions import MAX_CONDITION_DEPTH, All, AnyOf, Compare, Condition, Eq, In, Not
from csmcore.errors import CsmError, InvalidType, ValidationError
from csmcore.storage import Store, open_store
from csmcore.testing.builders import make_comment, make_policy, make_ticket
from tests.storage.conftest import PostgresFactory

STORES = ["memory", "sqlite", "postgresql"]
_keys = itertools.count()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """One store of each kind (PostgreSQL in a schema of its own, dropped afterwards)."""
    if request.param == "postgresql":
        factory: PostgresFactory = request.getfixturevalue("postgres_factory")
        opened = factory()
    elif request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path}/exact.db")
    else:
        opened = open_store("memory://")
    try:
        yield opened
    finally:
        opened.close()


def _round_trip(store: Store, within: timedelta) -> timedelta:
    key = f"p{next(_keys)}"
    store.policies.put(key, make_policy(key, within=within), expected_version=0)
    return store.policies.get(key).value.targets[0].within


@pytest.mark.parametrize(
    "within",
    [timedelta.max, timedelta(days=100_000, microseconds=1), timedelta(microseconds=1)],
    ids=["max", "100000 days + 1us", "1us"],
)
def test_durations_read_back_exactly(store: Store, within: timedelta) -> None:
    assert _round_trip(store, within) == within


def test_a_negative_duration_is_refused_before_anything_is_written(store: Store) -> None:
    """``timedelta.min`` is no SLA target (targets are positive): refused when built."""
    with pytest.raises(CsmError):
        make_policy("p", within=timedelta.min)
    assert store.policies.keys() == []


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.timedeltas(min_value=timedelta(microseconds=1)))
def test_every_positive_duration_reads_back_exactly(store: Store, within: timedelta) -> None:
    assert _round_trip(store, within) == within


def test_a_value_of_the_wrong_kind_is_refused_alike_before_anything_is_written(
    store: Store,
) -> None:
    clock = FixedClock(datetime(2025, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(ValidationError) as info:
        store.policies.put("x", clock, expected_version=0)  # type: ignore[arg-type]
    assert str(info.value).startswith("the policies role holds csmcore.sla.SlaPolicy values;")
    assert str(info.value).endswith("is a csmcore.clock.FixedClock")
    with pytest.raises(ValidationError, match="the calendars role holds"):
        store.calendars.put("x", clock, expected_version=0)  # type: ignore[arg-type]
    assert store.policies.keys() == store.calendars.keys() == []


# -- integer size and id types (issue 11) -------------------------------------------------------

HUGE = 10**5000


def test_huge_or_wrongly_typed_ids_are_refused_alike(store: Store) -> None:
    for bad in (HUGE, 5, 2**70):
        with pytest.raises(InvalidType, match=r"ticket_id=.* is a int; expected a non-empty"):
            store.tickets.get(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidType, match=r"key=.* is a int"):
            store.policies.get(bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"version=<an integer of 5001 digits> is outside"):
        store.policies.get("k", version=HUGE)
    with pytest.raises(ValidationError, match=r"expected_version=<an integer of 641 digits>"):
        store.policies.put("k", make_policy("k"), expected_version=10**640)
    with pytest.raises(ValidationError, match=r"=-<an integer of 5001 digits> is not a whole"):
        store.tickets.append("T-1", [make_comment()], expected_version=-HUGE)
    with pytest.raises(ValidationError, match=r"limit=<an integer of 5001 digits>"):
        store.tickets.find(Eq("merged", False), limit=HUGE)
    assert store.policies.keys() == []


def test_integers_up_to_640_digits_are_stored_and_compared_exactly(store: Store) -> None:
    largest = 10**640 - 1
    values = [2**63 - 1, -(2**63), 2**53 + 1, 2**53, largest, -largest, 2**70]
    stored = [make_ticket(f"T-{i}", fields={"n": n}) for i, n in enumerate(values)]
    store.tickets.add_many(stored)
    assert [store.tickets.get(t.id).fields["n"] for t in stored] == values
    for condition in [
        Eq("fields.n", 2**63 - 1),
        Eq("fields.n", 2**53 + 1),
        In("fields.n", [-(2**63), 2**53]),
        Compare("fields.n", ">", 2**53),
        Compare("fields.n", "<=", -(2**63)),
        Eq("fields.n", largest),
        Compare("fields.n", ">", 10**639),
        Compare("fields.n", "<", -(2**63)),
    ]:
        expected = [t.id for t in stored if condition.matches(t)]
        assert [t.id for t in store.tickets.find(condition)] == expected, condition
        assert store.tickets.count(condition) == len(expected), condition


def test_the_deepest_conditions_are_answered_as_matches_answers(store: Store) -> None:
    stored = [make_ticket(f"T-{i}", group=f"g{i}") for i in range(3)]
    store.tickets.add_many(stored)
    for ops in (["not"] * 31, ["any", "all", "not"] * 10 + ["not"]):
        condition: Condition = Eq("group", "g1")
        for op in ops:
            if op == "not":
                condition = Not(condition)
            elif op == "all":
                condition = All(condition, Not(Eq("group", "g2")))
            else:
                condition = AnyOf(Eq("group", "g0"), condition)
        assert condition.depth == MAX_CONDITION_DEPTH
        expected = [t.id for t in stored if condition.matches(t)]
        assert [t.id for t in store.tickets.find(condition)] == expected
        assert store.tickets.count(condition) == len(expected)
