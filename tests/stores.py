"""The built-in stores as fixtures, for tests outside tests/storage that check one thing on
each: ``memory_store``, ``sqlite_store`` (a file in the test's temporary directory) and
``postgres_store`` (skipped without ``CSMCORE_TEST_POSTGRES_DSN``), named in ``STORES`` for
``@pytest.mark.parametrize`` and ``request.getfixturevalue``. Pytest finds fixtures by name in
the test module, so a module imports the three with the PostgreSQL fixtures they rest on::

    from tests.stores import (  # noqa: F401 - fixtures
        STORES,
        _postgres_check,
        memory_store,
        postgres_dsn,
        postgres_factory,
        postgres_store,
        sqlite_store,
    )
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from csmcore.storage import Store, open_store
from tests.storage.conftest import (
    PostgresFactory,
    _postgres_check,
    postgres_dsn,
    postgres_factory,
)

__all__ = [
    "STORES",
    "_postgres_check",
    "memory_store",
    "postgres_dsn",
    "postgres_factory",
    "postgres_store",
    "sqlite_store",
]

STORES = ["memory_store", "sqlite_store", "postgres_store"]


@pytest.fixture
def memory_store() -> Iterator[Store]:
    store = open_store("memory://")
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.close()


@pytest.fixture
def postgres_store(postgres_factory: PostgresFactory) -> Iterator[Store]:
    store = postgres_factory()
    yield store
    store.close()
