"""Store factories for the project's own adapters, and the PostgreSQL policy of DESIGN.md.

PostgreSQL tests run when ``CSMCORE_TEST_POSTGRES_DSN`` is set and FAIL if that server cannot be
reached; without the variable they are skipped with a reason. Every store a test builds lives in
its own freshly created schema, dropped after the test, so runs never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from csmcore.storage import Store, open_store


@pytest.fixture(scope="session")
def _postgres_check() -> str | None:
    """Connect once per run: None when the server answers, else why it does not."""
    dsn = os.environ.get("CSMCORE_TEST_POSTGRES_DSN", "")
    if not dsn:
        return None
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        return f"{type(err).__name__}: {err}"
    return None


@pytest.fixture
def postgres_dsn(_postgres_check: str | None) -> str:
    """The DSN of the test server; skips (with the reason) when none is configured and FAILS
    when one is configured but cannot be reached."""
    dsn = os.environ.get("CSMCORE_TEST_POSTGRES_DSN", "")
    if not dsn:
        pytest.skip("CSMCORE_TEST_POSTGRES_DSN is not set (CI sets it); PostgreSQL tests skipped")
    if _postgres_check is not None:
        pytest.fail(
            f"CSMCORE_TEST_POSTGRES_DSN={dsn!r} is set but the server cannot be reached: "
            f"{_postgres_check}"
        )
    return dsn


def _postgres_url(dsn: str, schema: str) -> str:
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}schema={schema}&pool_timeout=10"


@pytest.fixture
def postgres_schema_url(postgres_dsn: str) -> Callable[[], tuple[str, str]]:
    """Returns a function giving ``(schema, store URL)`` for a new, uniquely named schema."""

    def make() -> tuple[str, str]:
        schema = f"csm_test_{uuid.uuid4().hex[:16]}"
        return schema, _postgres_url(postgres_dsn, schema)

    return make


@pytest.fixture
def postgres_factory(
    postgres_dsn: str, postgres_schema_url: Callable[[], tuple[str, str]]
) -> Iterator[object]:
    """Builds PostgreSQL stores, each in a new schema; drops the schemas afterwards."""
    schemas: list[str] = []

    def build() -> Store:
        schema, url = postgres_schema_url()
        store = open_store(url)  # an unreachable server fails the test here
        schemas.append(schema)
        return store

    yield build
    if schemas:
        import psycopg
        from psycopg import sql

        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


@pytest.fixture
def sqlite_factory(tmp_path: Path) -> object:
    def build() -> Store:
        return open_store(f"sqlite:///{tmp_path / uuid.uuid4().hex}.db")

    return build
