"""The ``dictstore://`` adapter of this directory proved with csmcore's conformance suite, every
group included (the optional ``ledger``, ``firings`` and ``outbox`` roles too), as
docs/howto-adapter.md tells a third-party author to.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from typing import ClassVar

import pytest

from csmcore.storage import open_store, register_adapter
from csmcore.storage.protocols import Store
from csmcore.testing.storage_suite import (
    FiringTests,
    LedgerTests,
    LedgerUnitOfWorkTests,
    OutboxTests,
    StorageSuite,
    StoreFactory,
)

from .dictstore import SCHEMA_VERSION, SCHEME, UNREACHABLE_PREFIX, backend_of, open_dictstore


@pytest.fixture(autouse=True)
def _register_scheme() -> None:
    # a distributed adapter declares the entry point instead:
    #   [project.entry-points."csmcore.storage"]
    #   dictstore = "my_package.dictstore:open_dictstore"
    # (registering the same opener again is harmless)
    register_adapter(SCHEME, open_dictstore)


class DictStores:
    """The store factory, with the hooks the backend can offer (schema versions, faults,
    ledger faults)."""

    schema_version = SCHEMA_VERSION

    def __call__(self) -> Store:
        return open_store(f"{SCHEME}://{uuid.uuid4().hex}")

    def read_schema_version(self, url: str) -> int | None:
        return backend_of(url).schema_version

    def write_schema_version(self, url: str, version: int | None) -> None:
        backend_of(url).schema_version = version

    def schema_layout(self, url: str) -> Hashable:
        return tuple(sorted(vars(backend_of(url).tables)))

    def unreachable_url(self) -> str:
        return f"{SCHEME}://{UNREACHABLE_PREFIX}{uuid.uuid4().hex}"

    def break_backend(self, url: str) -> None:
        backend_of(url).broken = True

    def fail_ledger_entry(self, url: str, member_id: str, seq: int) -> None:
        backend_of(url).refused_entries.add((member_id, seq))

    def heal_ledger(self, url: str) -> None:
        backend_of(url).refused_entries.clear()


class TestDictStore(StorageSuite, LedgerTests, LedgerUnitOfWorkTests, FiringTests, OutboxTests):
    opt_out: ClassVar[dict[str, str]] = {
        "processes": "the backend lives in this process's memory",
        "crash": "the backend lives in this process's memory; no other process holds its lock",
        "pushdown": "it filters every condition in Python; nothing is selected in the backend",
    }

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return DictStores()
