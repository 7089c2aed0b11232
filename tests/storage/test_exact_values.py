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
from csmcore.errors import CsmError, ValidationError
from csmcore.storage import Store, open_store
from csmcore.testing.builders import make_policy
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
