"""Ledger entries written before returns recorded their policy (``loyalty.entry`` schema 1, the
documents of fixture ``tests/fixtures/main_b7cf9f5_ledger``, written by commit b7cf9f5) read
from the ``csm_ledger`` table of each SQL store, PostgreSQL too, and new entries append after
them."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from csmcore.errors import IdempotencyConflict
from csmcore.loyalty import EntryKind, LedgerEntry, ReturnsPolicy
from csmcore.serialization import from_document
from csmcore.services import Ledger
from csmcore.storage import open_store
from tests.old_stores import ledger_inserts
from tests.storage.conftest import SqlFactory

FIXTURE = Path(__file__).parent.parent / "fixtures" / "main_b7cf9f5_ledger"
DOCUMENTS: dict[str, Any] = json.loads((FIXTURE / "documents.json").read_text("utf-8"))


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=timezone.utc)


@pytest.mark.parametrize("factory_fixture", ["sqlite_factory", "postgres_factory"])
def test_schema_1_entries_read_and_new_ones_append(
    factory_fixture: str, request: pytest.FixtureRequest
) -> None:
    factory: SqlFactory = request.getfixturevalue(factory_fixture)
    store = factory()
    url = store.url
    factory.raw(
        url,
        ledger_inserts(DOCUMENTS),
    )
    try:
        for member, documents in DOCUMENTS.items():
            stored = Ledger(store).entries(member)
            assert list(stored) == [from_document(d, LedgerEntry) for d in documents]
            assert all(e.returns_policy is None for e in stored)
        # ann's return went 70 negative under 'unlimited', which nothing recorded: the handle's
        # policy judges it
        assert Ledger(store, returns="unlimited").verify("ann").ok
        assert not Ledger(store).verify("ann").ok
        # a retry of bob's old return matches whatever the policy
        old = Ledger(store).entries("bob")[-1]
        assert (
            Ledger(store, returns="unlimited").reverse(
                "bob#1", at=old.at, key="return-9", points=30
            )
            == old
        )
        # new entries append after the old ones and record their policy
        led = Ledger(store, returns=ReturnsPolicy.UNLIMITED)
        more = led.earn("bob", 10, at=at(6), key="order-10")
        back = led.reverse(more.entry_id, at=at(7), key="return-10")
        assert back.returns_policy is ReturnsPolicy.UNLIMITED
        with pytest.raises(IdempotencyConflict):
            Ledger(store).reverse(more.entry_id, at=at(7), key="return-10")
    finally:
        store.close()
    again = open_store(url)
    try:
        bob = Ledger(again).entries("bob")
        assert [e.kind for e in bob] == [EntryKind.EARN, EntryKind.REVERSE] * 2
        assert [e.returns_policy for e in bob] == [None, None, None, ReturnsPolicy.UNLIMITED]
        assert bob[-1] == back
        for policy in ReturnsPolicy:
            assert Ledger(again, returns=policy).verify("bob").ok
    finally:
        again.close()
