"""PostgreSQL: a server that cannot be reached fails at once, statements are bounded by the
store's statement timeout, and a statement the client abandons is cancelled on the server
(issue 11).

No test here measures speed: waiting for the server's timeout to fire is the behaviour under
test, and the hang guard only turns a hang into a failure.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from csmcore import conditions as cd
from csmcore.errors import StorageError, ValidationError
from csmcore.storage import open_store
from csmcore.storage.postgres import PostgresStore
from tests.guard import hang_guard

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")


@pytest.mark.usefixtures("postgres_dsn")
def test_a_wrong_port_fails_fast_naming_host_and_port() -> None:
    # regression: it failed only after the pool timeout. With a pool timeout of 10 minutes, the
    # error must come from the first connection (bounded by connect_timeout), not the pool.
    with (
        hang_guard(),
        pytest.raises(StorageError, match=r"host '127\.0\.0\.1' port '1'.*connect_timeout"),
    ):
        open_store("postgresql://postgres@127.0.0.1:1/test?pool_timeout=600")


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
        with hang_guard(), pytest.raises(StorageError, match="statement timeout"):
            store.query_once(None, "SELECT pg_sleep(60)")
        with (
            hang_guard(),
            pytest.raises(StorageError, match="statement timeout"),
            store.tx(None, write=True) as cur,
        ):
            cur.query("SELECT pg_sleep(60)")
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


class ClientTimeout(Exception):
    """What a client-side timeout raises (from a signal handler) in these tests."""


@contextmanager
def raising_after(seconds: float, error: type[BaseException]) -> Iterator[None]:
    """Raise ``error`` in the main thread after ``seconds``: a client giving up on a call."""

    def fire(signum: int, frame: object) -> None:
        raise error("the client gave up")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _still_running(dsn: str, marker: str) -> int:
    """How many statements holding ``marker`` the server still runs, once it has had the time
    to act on a cancel request (polled: the state is what is asserted, not a duration)."""
    with psycopg.connect(dsn, autocommit=True) as probe:
        for _ in range(100):
            row = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE %s AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchone()
            assert row is not None
            if row[0] == 0:
                return 0
            time.sleep(0.05)
        return int(row[0])


@pytest.mark.parametrize("error", [ClientTimeout, KeyboardInterrupt])
@pytest.mark.parametrize("how", ["query_once", "transaction"])
def test_an_abandoned_statement_is_cancelled_on_the_server(
    postgres_dsn: str,
    postgres_schema_url: Callable[[], tuple[str, str]],
    error: type[BaseException],
    how: str,
) -> None:
    _, url = postgres_schema_url()
    store = open_store(url)  # statement timeout 30 s: far beyond this test
    assert isinstance(store, PostgresStore)
    marker = f"csm_abandoned_{uuid.uuid4().hex}"
    statement = f"SELECT pg_sleep(25) /* {marker} */"

    def call() -> None:
        if how == "query_once":
            store.query_once(None, statement)
        else:
            with store.tx(None, write=True) as cur:
                cur.query(statement)

    try:
        with hang_guard(), pytest.raises(error), raising_after(0.3, error):
            call()
        assert _still_running(postgres_dsn, marker) == 0
        assert store.tickets.count(cd.Always()) == 0  # the store still works
    finally:
        store.drop_schema()
