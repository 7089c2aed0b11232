"""The csmcore pytest plugin, loaded automatically through the ``pytest11`` entry point.

Fixtures:

- ``csm_clock``: a :class:`~csmcore.clock.FixedClock` at Monday 2025-01-06 09:00 UTC.
- ``csm_store``: a fresh, empty store of the kind chosen for the run, closed (and for
  PostgreSQL dropped) after the test.
- ``csm_store_factory``: a callable building more such stores in one test (each fresh); it
  fits :class:`csmcore.testing.storage_suite.StorageSuite`'s ``store_factory`` directly.
- ``csm_store_url``: the store option of the run, as given.

Choose the store for a run with ``pytest --csmcore-store=KIND`` (or the environment variable
``CSMCORE_STORE``):

- ``memory`` (the default): ``memory://``.
- ``sqlite``: a new SQLite file in the test's temporary directory.
- a ``postgresql://`` URL: a new, uniquely named schema per store on that server, dropped after
  the test, so runs and tests never see each other's data.
- any other URL (e.g. of a third-party adapter): opened once per store, with every
  ``{unique}`` in it replaced by a new hex name for each store (``jsonfile:///tmp/csm-{unique}.json``),
  so that each store is fresh and empty. A URL without ``{unique}`` is opened as given, so all
  its stores share whatever data the URL names (fresh only if the adapter makes a new store at
  each opening).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from csmcore.clock import FixedClock
from csmcore.storage import open_store
from csmcore.storage.protocols import Store

pytest.register_assert_rewrite("csmcore.testing.storage_suite")

__all__ = ["CLOCK_START", "pytest_addoption"]

CLOCK_START = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
"""Where ``csm_clock`` starts: a Monday morning, in UTC."""

_ENV = "CSMCORE_STORE"
_UNIQUE = "{unique}"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add ``--csmcore-store``."""
    group = parser.getgroup("csmcore")
    group.addoption(
        "--csmcore-store",
        dest="csmcore_store",
        default=None,
        metavar="KIND",
        help=(
            "store for the csm_store fixtures: memory (default), sqlite, or a store URL such as "
            "postgresql://user@host/db; in another adapter's URL {unique} is replaced by a new "
            f"name for each store, so each is fresh (environment: {_ENV})"
        ),
    )


@pytest.fixture
def csm_clock() -> FixedClock:
    """A fixed clock at :data:`CLOCK_START`; move it with ``set`` or ``advance``."""
    return FixedClock(CLOCK_START)


@pytest.fixture
def csm_store_url(request: pytest.FixtureRequest) -> str:
    """The store kind or URL chosen for this run (``memory`` unless told otherwise)."""
    chosen = request.config.getoption("csmcore_store") or os.environ.get(_ENV) or "memory"
    return str(chosen)


def _with_schema(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}schema={schema}"


@pytest.fixture
def csm_store_factory(csm_store_url: str, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A callable that builds a fresh store of the chosen kind; all are cleaned up after."""
    built: list[Store] = []

    def build() -> Store:
        kind = csm_store_url
        if kind in ("memory", "memory://"):
            store = open_store("memory://")
        elif kind == "sqlite":
            store = open_store(f"sqlite:///{tmp_path / uuid.uuid4().hex}.db")
        elif kind.startswith(("postgresql://", "postgres://")):
            store = open_store(_with_schema(kind, f"csm_test_{uuid.uuid4().hex[:16]}"))
        else:  # a third-party URL: {unique} names a new store each time
            store = open_store(kind.replace(_UNIQUE, uuid.uuid4().hex))
        built.append(store)
        return store

    yield build
    for store in built:
        drop = getattr(store, "drop_schema", None)
        if callable(drop) and getattr(store, "schema", None):
            drop()
        else:
            store.close()


@pytest.fixture
def csm_store(csm_store_factory: Callable[[], Store]) -> Store:
    """A fresh, empty store of the chosen kind (see the module documentation)."""
    return csm_store_factory()
