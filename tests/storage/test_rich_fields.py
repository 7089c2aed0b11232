"""Conditions on custom fields holding a Decimal or a datetime give the same tickets on every
store (a condition whose value is a Decimal or a datetime is left to ``matches`` by the SQL
stores, see ``_JSON_SCALARS`` in ``csmcore.storage._sql``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from csmcore.conditions import Compare, Condition, Eq, In, Not
from csmcore.storage import Store, open_store
from csmcore.testing.builders import T0, make_ticket
from csmcore.tickets import Ticket

UTC = timezone.utc
DUE = datetime(2025, 3, 1, 12, tzinfo=UTC)


def tickets() -> list[Ticket]:
    out = []
    for n, (amount, due) in enumerate(
        [
            (Decimal("10.50"), DUE),
            (Decimal("10.5"), DUE + timedelta(days=1)),
            (Decimal("99"), DUE - timedelta(microseconds=1)),
            (None, None),
            ("10.50", "2025-03-01T12:00:00+00:00"),  # text that looks alike is not equal
        ]
    ):
        ticket = make_ticket(f"T-{n}")
        fields = {k: v for k, v in (("amount", amount), ("due", due)) if v is not None}
        if fields:
            ticket, _ = ticket.set_fields(T0 + timedelta(minutes=1), fields)
        out.append(ticket)
    return out


CONDITIONS: list[Condition] = [
    Eq("fields.amount", Decimal("10.5")),
    In("fields.amount", [Decimal("99"), None]),
    Compare("fields.amount", ">", Decimal("10.50")),
    Eq("fields.due", DUE),
    Compare("fields.due", "<", DUE),
    Compare("fields.due", ">=", DUE),
    Not(Eq("fields.due", DUE)),
    Eq("fields.amount", None),  # a Decimal value is set, not unset
    In("fields.due", [None]),
    Not(Eq("fields.due", None)),
]


def _check(store: Store) -> None:
    stored = tickets()
    store.tickets.add_many(stored)
    for condition in CONDITIONS:
        expected = [t.id for t in stored if condition.matches(t)]
        assert [t.id for t in store.tickets.find(condition)] == expected, condition
        assert store.tickets.count(condition) == len(expected), condition


def test_the_reference_answers_are_what_the_values_say() -> None:
    found = {repr(c): [t.id for t in tickets() if c.matches(t)] for c in CONDITIONS[:4]}
    assert list(found.values()) == [["T-0", "T-1"], ["T-2", "T-3"], ["T-2"], ["T-0"]]


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_memory_and_sqlite_agree_with_matches(url: str, tmp_path: object) -> None:
    store = open_store(f"sqlite:///{tmp_path}/s.db" if url == "sqlite" else url)
    try:
        _check(store)
    finally:
        store.close()


def test_postgres_agrees_with_matches(postgres_factory: Callable[[], Store]) -> None:
    store = postgres_factory()
    try:
        _check(store)
    finally:
        store.close()
