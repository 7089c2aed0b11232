"""A refused write changes nothing stored (bad-input audit, on every built-in store).

A batch holding one bad item (``tickets.add_many``, ``tickets.append``), a ledger write with a
bad amount, a unit of work that fails halfway, by the caller's exception or by a refused
write: each leaves every role of the store as it was, on the memory, SQLite and PostgreSQL
stores (PostgreSQL when ``CSMCORE_TEST_POSTGRES_DSN`` is set).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csmcore.conditions import Always
from csmcore.errors import CsmError, InternalError
from csmcore.serialization import to_data
from csmcore.services import Ledger
from csmcore.storage import Store, open_store
from csmcore.testing.builders import make_comment, make_policy, make_ticket
from tests.storage.conftest import PostgresFactory

UTC = timezone.utc
T0 = datetime(2025, 3, 3, 10, tzinfo=UTC)
STORES = ["memory", "sqlite", "postgresql"]
_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_ids = itertools.count(100)

BAD_ITEMS: tuple[Any, ...] = (
    None,
    "T-9",
    5,
    math.nan,
    Decimal("NaN"),
    10**5000,
    [make_ticket("T-8")],
    {"id": "T-7"},
    object(),
)
"""What an importer's bug might put among the tickets of a batch."""

BAD_POINTS: tuple[Any, ...] = (
    0,
    -5,
    math.nan,
    math.inf,
    2.5,
    Decimal("NaN"),
    Decimal("5"),
    "5",
    True,
    None,
    10**5000,
)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store of each kind holding one ticket and one member's ledger."""
    if request.param == "postgresql":
        factory: PostgresFactory = request.getfixturevalue("postgres_factory")
        opened = factory()
    elif request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path}/atomic.db")
    else:
        opened = open_store("memory://")
    opened.tickets.add(make_ticket("T-0"))
    Ledger(opened).earn("ann", 10, at=T0, key="seed")
    opened.policies.put("std", make_policy("std"), expected_version=0)
    try:
        yield opened
    finally:
        opened.close()


def snapshot(store: Store) -> Any:
    """Everything the tickets, policies and ledger roles hold, as data."""
    ledger = Ledger(store)
    policies = store.policies
    return (
        [to_data(t) for t in store.tickets.find(Always())],
        {k: [to_data(v.value) for v in policies.history(k)] for k in policies.keys()},  # noqa: SIM118
        {m: [to_data(e) for e in ledger.entries(m)] for m in ledger.members()},
    )


def refused_and_unchanged(store: Store, write: Callable[[], Any]) -> CsmError:
    before = snapshot(store)
    with pytest.raises(CsmError) as caught:
        write()
    assert not isinstance(caught.value, InternalError), caught.value
    assert snapshot(store) == before
    return caught.value


@_SETTINGS
@given(
    good=st.integers(0, 3),
    bad=st.integers(0, len(BAD_ITEMS) - 1).map(BAD_ITEMS.__getitem__),
    position=st.integers(0, 3),
)
def test_add_many_with_one_bad_ticket_stores_none(
    store: Store, good: int, bad: Any, position: int
) -> None:
    batch: list[Any] = [make_ticket(f"T-{next(_ids)}") for _ in range(good)]
    batch.insert(min(position, len(batch)), bad)
    refused_and_unchanged(store, lambda: store.tickets.add_many(batch))


def test_add_many_whose_iterable_fails_halfway_stores_none(store: Store) -> None:
    def tickets() -> Iterator[Any]:
        yield make_ticket("T-1")
        raise ValueError("the caller's export broke off")

    refused_and_unchanged(store, lambda: store.tickets.add_many(tickets()))


def test_add_many_with_an_existing_id_stores_none(store: Store) -> None:
    batch = [make_ticket("T-1"), make_ticket("T-0"), make_ticket("T-2")]
    refused_and_unchanged(store, lambda: store.tickets.add_many(batch))


@pytest.mark.parametrize("bad", BAD_ITEMS[:6], ids=lambda v: type(v).__name__)
def test_append_with_one_bad_event_appends_none(store: Store, bad: Any) -> None:
    ticket = store.tickets.get("T-0")
    events = [make_comment(T0 + timedelta(hours=1)), bad]
    refused_and_unchanged(
        store,
        lambda: store.tickets.append("T-0", events, expected_version=ticket.version),
    )


@_SETTINGS
@given(
    points=st.integers(0, len(BAD_POINTS) - 1).map(BAD_POINTS.__getitem__),
    write=st.sampled_from(("earn", "redeem", "transfer")),
)
def test_a_ledger_write_with_a_bad_amount_writes_nothing(
    store: Store, points: Any, write: str
) -> None:
    ledger = Ledger(store)
    key = f"k{next(_ids)}"
    calls: dict[str, Callable[[], Any]] = {
        "earn": lambda: ledger.earn("ann", points, at=T0, key=key),
        "redeem": lambda: ledger.redeem("ann", points, at=T0, key=key),
        "transfer": lambda: ledger.transfer("ann", "bob", points, at=T0, key=key),
    }
    err = refused_and_unchanged(store, calls[write])
    assert "points=" in str(err)


@pytest.mark.parametrize("spend", [Decimal("NaN"), Decimal("-Infinity"), math.nan, "9.90"])
def test_an_earn_with_a_bad_spend_writes_nothing(store: Store, spend: Any) -> None:
    ledger = Ledger(store)
    refused_and_unchanged(store, lambda: ledger.earn("ann", 5, at=T0, key="s", spend=spend))


def test_a_unit_of_work_the_caller_fails_halfway_writes_nothing(store: Store) -> None:
    def work() -> None:
        with store.unit_of_work() as uow:
            uow.tickets.add(make_ticket("T-1"))
            Ledger(uow).earn("ann", 3, at=T0, key="uow")
            uow.policies.put("std", make_policy("std"), expected_version=1)
            raise RuntimeError("the caller fails halfway")

    before = snapshot(store)
    with pytest.raises(RuntimeError, match="halfway"):
        work()
    assert snapshot(store) == before


@pytest.mark.parametrize(
    "bad_write",
    [
        lambda uow: Ledger(uow).earn("ann", Decimal("NaN"), at=T0, key="bad"),  # type: ignore[arg-type]
        lambda uow: uow.policies.put("other", "not a policy", expected_version=0),
        lambda uow: uow.tickets.add_many([make_ticket("T-2"), None]),
        lambda uow: uow.tickets.append("T-0", [None], expected_version=1),
    ],
    ids=["ledger", "policy", "add_many", "append"],
)
def test_a_unit_of_work_left_by_a_refused_write_writes_nothing(
    store: Store, bad_write: Callable[[Any], Any]
) -> None:
    def work() -> None:
        with store.unit_of_work() as uow:
            uow.tickets.add(make_ticket("T-1"))
            Ledger(uow).earn("ann", 3, at=T0, key="uow")
            bad_write(uow)

    refused_and_unchanged(store, work)


def test_a_refused_write_caught_inside_a_unit_of_work_leaves_the_others_to_commit(
    store: Store,
) -> None:
    with store.unit_of_work() as uow:
        uow.tickets.add(make_ticket("T-1"))
        with pytest.raises(CsmError):
            uow.tickets.add_many([make_ticket("T-2"), None])  # type: ignore[list-item]
        with pytest.raises(CsmError):
            Ledger(uow).earn("ann", Decimal("NaN"), at=T0, key="bad")  # type: ignore[arg-type]
    assert [t.id for t in store.tickets.find(Always())] == ["T-0", "T-1"]
    assert [e.key for e in Ledger(store).entries("ann")] == ["seed"]
