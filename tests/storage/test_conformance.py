"""The project's own adapters, proved with exactly the public conformance suite."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest

from csmcore.storage import open_store
from csmcore.testing.storage_suite import StorageSuite, StoreFactory


class TestMemoryStore(StorageSuite):
    opt_out: ClassVar[Mapping[str, str]] = {
        "reopen": "memory:// always opens a new, empty store; nothing outlives the object",
        "processes": "the data lives in one process's memory",
    }

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: open_store("memory://")


class TestSqliteStore(StorageSuite):
    @pytest.fixture
    def store_factory(self, sqlite_factory: StoreFactory) -> StoreFactory:
        return sqlite_factory


class TestPostgresStore(StorageSuite):
    @pytest.fixture
    def store_factory(self, postgres_factory: StoreFactory) -> StoreFactory:
        return postgres_factory
