"""Stores for the engine tests: the storage tests' factories (a new SQLite file, or a new
PostgreSQL schema dropped afterwards, per store)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from csmcore.storage import Store, open_store
from tests.storage.conftest import (  # noqa: F401 (fixtures)
    _postgres_check,
    postgres_dsn,
    postgres_factory,
    sqlite_factory,
)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest) -> Iterator[Callable[[], Store]]:
    """Builds fresh stores of each built-in adapter (closed after the test)."""
    if request.param == "memory":
        factory: Callable[[], Store] = lambda: open_store("memory://")  # noqa: E731
    else:
        factory = request.getfixturevalue(f"{request.param}_factory")
    built: list[Store] = []

    def make() -> Store:
        built.append(factory())
        return built[-1]

    yield make
    for store in built:
        store.close()


@pytest.fixture
def store(make_store: Callable[[], Store]) -> Store:
    """A fresh store of each built-in adapter."""
    return make_store()
