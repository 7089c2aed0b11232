"""PostgreSQL: a server that cannot be reached fails at once, and statements are bounded by the
store's statement timeout (issue 11)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from csmcore import conditions as cd
from csmcore.errors import StorageError, ValidationError
from csmcore.storage import open_store
from csmcore.storage.postgres import PostgresStore

pytest.importorskip("psycopg", reason="the postgres extra is not installed")


@pytest.mark.usefixtures("postgres_dsn")
def test_a_wrong_port_fails_fast_naming_host_and_port() -> None:
    # regression: it failed only after the pool timeout (30 s)
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"host '127\.0\.0\.1' port '1'"):
        open_store("postgresql://postgres@127.0.0.1:1/test")
    assert time.monotonic() - started < 1.5


@pytest.mark.usefixtures("postgres_dsn")
@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_connect_timeout_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="connect_timeout"):
        open_store(f"postgresql://postgres@127.0.0.1:1/test?connect_timeout={value}")


@pytest.mark.usefixtures("postgres_dsn")
@pytest.mark.parametrize("value", ["-1", "nan", "soon", "1e10"])
def test_a_bad_statement_timeout_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="statement_timeout"):
        open_store(f"postgresql://postgres@127.0.0.1:1/test?statement_timeout={value}")


def test_a_statement_over_the_timeout_raises_storage_error(
    postgres_schema_url: Callable[[], tuple[str, str]],
) -> None:
    _, url = postgres_schema_url()
    store = open_store(f"{url}&statement_timeout=0.2")
    assert isinstance(store, PostgresStore)
    try:
        assert store.statement_timeout == 0.2
        started = time.monotonic()
        with pytest.raises(StorageError, match="statement timeout"):
            store.query_once(None, "SELECT pg_sleep(3)")
        assert time.monotonic() - started < 1.5
        with (
            pytest.raises(StorageError, match="statement timeout"),
            store.tx(None, write=True) as cur,
        ):
            cur.query("SELECT pg_sleep(3)")
        assert store.tickets.count(cd.Always()) == 0  # the store still works
    finally:
        store.drop_schema()


def test_the_default_statement_timeout_is_30_seconds(
    postgres_schema_url: Callable[[], tuple[str, str]],
) -> None:
    _, url = postgres_schema_url()
    store = open_store(url)
    assert isinstance(store, PostgresStore)
    try:
        assert store.statement_timeout == 30.0
        assert store.query_once(None, "SHOW statement_timeout") == [("30s",)]
    finally:
        store.drop_schema()
