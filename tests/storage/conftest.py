"""Store factories for the project's own adapters, and the PostgreSQL policy of DESIGN.md.

PostgreSQL tests run when ``CSMCORE_TEST_POSTGRES_DSN`` is set and FAIL if that server cannot be
reached; without the variable they are skipped with a reason. Every store a test builds lives in
its own freshly created schema, dropped after the test, so runs never see each other's data.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from csmcore.storage import Store, open_store

POSTGRES_DSN = os.environ.get("CSMCORE_TEST_POSTGRES_DSN", "")


def postgres_url(schema: str) -> str:
    sep = "&" if "?" in POSTGRES_DSN else "?"
    return f"{POSTGRES_DSN}{sep}schema={schema}&pool_timeout=10"


@pytest.fixture
def postgres_factory() -> Iterator[object]:
    """Builds PostgreSQL stores, each in a new schema; drops the schemas afterwards."""
    if not POSTGRES_DSN:
        pytest.skip("CSMCORE_TEST_POSTGRES_DSN is not set (CI sets it); PostgreSQL tests skipped")
    schemas: list[str] = []

    def build() -> Store:
        schema = f"csm_test_{uuid.uuid4().hex[:16]}"
        schemas.append(schema)
        return open_store(postgres_url(schema))

    yield build
    if schemas:
        import psycopg
        from psycopg import sql

        with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
            for schema in schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


@pytest.fixture
def sqlite_factory(tmp_path: Path) -> object:
    def build() -> Store:
        return open_store(f"sqlite:///{tmp_path / uuid.uuid4().hex}.db")

    return build
