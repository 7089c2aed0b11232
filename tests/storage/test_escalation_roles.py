"""The optional escalation roles (``firings``, ``outbox``) of the built-in stores, proved with
the conformance suite's groups for them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest

from csmcore.storage import open_store
from csmcore.testing.storage_suite import (
    OPTIONAL_GROUPS,
    FiringTests,
    OutboxTests,
    StoreFactory,
)


def test_the_optional_groups_name_their_roles() -> None:
    assert OPTIONAL_GROUPS["firings"] == (FiringTests,)
    assert OPTIONAL_GROUPS["outbox"] == (OutboxTests,)


class TestMemoryEscalationRoles(FiringTests, OutboxTests):
    opt_out: ClassVar[Mapping[str, str]] = {
        "reopen": "memory:// always opens a new, empty store; nothing outlives the object",
    }

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: open_store("memory://")


class TestSqliteEscalationRoles(FiringTests, OutboxTests):
    @pytest.fixture
    def store_factory(self, sqlite_factory: StoreFactory) -> StoreFactory:
        return sqlite_factory


class TestPostgresEscalationRoles(FiringTests, OutboxTests):
    @pytest.fixture
    def store_factory(self, postgres_factory: StoreFactory) -> StoreFactory:
        return postgres_factory
