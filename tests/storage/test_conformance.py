"""The project's own adapters, proved with exactly the public conformance suite."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import pytest

from csmcore import conditions as cd
from csmcore.storage import open_store
from csmcore.testing.storage_suite import (
    LedgerTests,
    LedgerUnitOfWorkTests,
    StorageSuite,
    StoreFactory,
)

SQL_PUSHED_DOWN: Sequence[cd.Condition] = (
    cd.Eq("priority", "high"),
    cd.Compare("priority", ">=", "high"),
    cd.In("status", ["open", "pending"]),
    cd.Eq("status_name", "Awaiting Vendor"),
    cd.Eq("channel", "phone"),
    cd.Eq("created_by", "agent"),
    cd.Eq("group", None) | cd.In("group", ["billing", None]),
    cd.Eq("assignee", "zoe"),
    cd.Eq("requester", "bob"),
    cd.Eq("subject", "Printer on fire"),
    cd.Eq("merged", True),
    ~cd.HasTags({"vip"}),
    cd.HasTags({"a", "b"}) & ~cd.Eq("priority", "low"),
    cd.Eq("fields.made_sla", False),
    cd.Eq("fields.seats", 5) | cd.Eq("fields.plan", None),
    cd.In("fields.plan", ["gold", None, 1.5, True]),
    cd.Compare("fields.seats", ">=", 2.5) & ~cd.Compare("fields.plan", "<", "m"),
    cd.Eq('fields.a"b%\\c', "x") | cd.Eq("fields.é", 2**63 - 1),
)
"""What docs/storage.md says the SQL stores select in the database: every field, ``merged``,
tags and custom fields, under and/or/not."""


MEMORY_OPT_OUT: Mapping[str, str] = {
    "reopen": "memory:// always opens a new, empty store; nothing outlives the object",
    "processes": "the data lives in one process's memory",
    "schema": "nothing is written anywhere, so there is no schema to record or refuse",
    "migrations": "nothing outlives the object, so no older layout can ever be opened",
    "faults": "plain dictionaries in this process: no backend to be unreachable or to fail",
    "ledger faults": "the ledger lives in this process's memory: no backend can refuse an entry",
    "pushdown": "there is no backend to select in: every query filters with matches()",
}


class TestMemoryStore(StorageSuite, LedgerTests, LedgerUnitOfWorkTests):
    opt_out: ClassVar[Mapping[str, str]] = MEMORY_OPT_OUT

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: open_store("memory://")


class TestSqliteStore(StorageSuite, LedgerTests, LedgerUnitOfWorkTests):
    pushed_down = SQL_PUSHED_DOWN

    @pytest.fixture
    def store_factory(self, sqlite_factory: StoreFactory) -> StoreFactory:
        return sqlite_factory


class TestPostgresStore(StorageSuite, LedgerTests, LedgerUnitOfWorkTests):
    pushed_down = SQL_PUSHED_DOWN

    @pytest.fixture
    def store_factory(self, postgres_factory: StoreFactory) -> StoreFactory:
        return postgres_factory
