"""What is specific to the SQL adapters: schema versions and migrations, push-down of conditions
with bound parameters, translation of driver errors, SQLite durability settings."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from csmcore import conditions as cd
from csmcore.errors import SchemaVersionError, StorageError
from csmcore.storage import open_store
from csmcore.storage._sql import SCHEMA_VERSION, SqlStore, compile_condition
from csmcore.storage.protocols import Store
from csmcore.storage.sqlite import SqliteStore
from csmcore.testing.storage_suite import make_ticket
from csmcore.tickets import Priority

RawSql = Callable[[str], list[tuple[Any, ...]]]


class Backend:
    """Opens one store location repeatedly and runs raw SQL on it, bypassing csmcore."""

    def __init__(self, url: str, raw: RawSql) -> None:
        self.url = url
        self.raw = raw

    def open(self) -> SqlStore:
        store = open_store(self.url)
        assert isinstance(store, SqlStore)
        return store


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "schema.db"

        def raw_sqlite(statement: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as conn:
                return conn.execute(statement).fetchall()

        yield Backend(f"sqlite:///{path}", raw_sqlite)
        return
    dsn: str = request.getfixturevalue("postgres_dsn")
    import psycopg

    schema, url = request.getfixturevalue("postgres_schema_url")()

    def raw_pg(statement: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {schema}")
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    yield Backend(url, raw_pg)
    raw_pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _indexes(backend: Backend) -> set[str]:
    if backend.url.startswith("sqlite"):
        rows = backend.raw("SELECT name FROM sqlite_master WHERE type = 'index'")
    else:
        rows = backend.raw("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
    return {r[0] for r in rows} & {"csm_tickets_status_priority", "csm_ticket_tags_ticket"}


def test_a_new_store_gets_the_current_schema_version(backend: Backend) -> None:
    store = backend.open()
    try:
        assert store.schema_version() == SCHEMA_VERSION == 2
    finally:
        store.close()
    assert backend.raw("SELECT value FROM csm_meta WHERE name = 'schema_version'") == [("2",)]


def test_an_older_schema_migrates_forward_keeping_the_data(backend: Backend) -> None:
    store = backend.open()
    ticket = store.tickets.add(make_ticket("T-1", tags={"vip"}))
    store.close()
    # turn it into what csmcore's schema version 1 wrote: the same tables without the indexes
    backend.raw("DROP INDEX csm_tickets_status_priority")
    backend.raw("DROP INDEX csm_ticket_tags_ticket")
    backend.raw("UPDATE csm_meta SET value = '1' WHERE name = 'schema_version'")
    assert _indexes(backend) == set()

    store = backend.open()
    try:
        assert store.schema_version() == 2
        assert _indexes(backend) == {"csm_tickets_status_priority", "csm_ticket_tags_ticket"}
        assert store.tickets.get("T-1") == ticket
        assert store.tickets.count(cd.HasTags({"vip"})) == 1
    finally:
        store.close()


def test_a_newer_schema_is_refused_and_left_untouched(backend: Backend) -> None:
    store = backend.open()
    store.tickets.add(make_ticket("T-1"))
    store.close()
    backend.raw("UPDATE csm_meta SET value = '99' WHERE name = 'schema_version'")
    with pytest.raises(SchemaVersionError, match=r"schema version 99.*newer csmcore"):
        backend.open()
    assert backend.raw("SELECT value FROM csm_meta WHERE name = 'schema_version'") == [("99",)]
    assert backend.raw("SELECT COUNT(*) FROM csm_tickets") == [(1,)]


def test_tables_without_csmcore_metadata_are_refused(backend: Backend) -> None:
    store = backend.open()
    store.close()
    backend.raw("DROP TABLE csm_meta")
    with pytest.raises(SchemaVersionError, match="no csm_meta table"):
        backend.open()


def test_driver_errors_become_storage_errors_with_the_cause(backend: Backend) -> None:
    store = backend.open()
    try:
        store.tickets.add(make_ticket("T-1"))
        backend.raw("DROP TABLE csm_events")
        with pytest.raises(StorageError, match="csm_events") as info:
            store.tickets.get("T-1")
        assert info.value.__cause__ is not None
        assert type(info.value.__cause__).__module__.split(".")[0] in ("sqlite3", "psycopg")
    finally:
        store.close()


def test_values_are_bound_never_spliced(backend: Backend) -> None:
    nasty = "x'); DROP TABLE csm_tickets; --"
    store = backend.open()
    try:
        store.tickets.add(make_ticket("T-1", requester=nasty, tags={nasty}))
        store.tickets.add(make_ticket("T-2"))
        assert [t.id for t in store.tickets.find(cd.Eq("requester", nasty))] == ["T-1"]
        assert [t.id for t in store.tickets.find(cd.HasTags({nasty}))] == ["T-1"]
        assert store.tickets.count(cd.In("requester", [nasty, "ann"])) == 2
    finally:
        store.close()


def test_compiled_conditions_carry_values_only_as_parameters() -> None:
    nasty = "a' OR '1'='1"
    compiled = compile_condition(
        cd.All(cd.Eq("requester", nasty), cd.HasTags({nasty})), SqliteStore.dialect
    )
    assert nasty not in compiled.sql
    assert compiled.params == [nasty, nasty]
    assert compiled.exact


@pytest.mark.parametrize(
    ("condition", "exact"),
    [
        (cd.Eq("priority", Priority.HIGH), True),
        (cd.Compare("priority", ">=", "high"), True),
        (cd.Eq("assignee", None) | cd.In("group", ["a", None]), True),
        (~cd.HasTags({"vip"}), True),
        (cd.Eq("merged", True), True),
        (cd.Eq("fields.plan", "gold"), False),
        (cd.Eq("status", "open") & cd.Compare("fields.seats", ">", 3), False),
        (~cd.Eq("fields.plan", "gold"), False),
    ],
)
def test_what_is_pushed_down_exactly(condition: cd.Condition, exact: bool) -> None:
    assert compile_condition(condition, SqliteStore.dialect).exact is exact


def test_custom_field_conditions_are_filtered_in_python_with_the_same_result(
    backend: Backend,
) -> None:
    store = backend.open()
    try:
        store.tickets.add_many(
            [
                make_ticket("T-1", fields={"seats": 5, "plan": "gold"}),
                make_ticket("T-2", fields={"seats": 2}),
                make_ticket("T-3", fields={"seats": True}),
                make_ticket("T-4", priority=Priority.URGENT, fields={"seats": 9.5}),
            ]
        )
        big = cd.Compare("fields.seats", ">", 3)
        assert [t.id for t in store.tickets.find(big)] == ["T-1", "T-4"]
        assert store.tickets.count(big & cd.Eq("priority", "urgent")) == 1
        assert store.tickets.count(~cd.Eq("fields.plan", "gold")) == 3
        assert store.tickets.find(big, limit=1)[0].id == "T-1"
    finally:
        store.close()


def test_sqlite_is_durable_and_in_wal_mode(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/d.db")
    assert isinstance(store, SqliteStore)
    try:
        conn = store._conn
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        store.close()


def test_sqlite_file_that_cannot_be_opened_raises_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no-such-dir") as info:
        open_store(f"sqlite:///{tmp_path}/no-such-dir/x.db")
    assert isinstance(info.value.__cause__, sqlite3.Error)


def test_postgres_rejects_a_schema_name_that_is_not_an_identifier() -> None:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    from csmcore.errors import ValidationError

    with pytest.raises(ValidationError, match="not a plain SQL identifier"):
        open_store("postgresql://postgres@127.0.0.1:1/x?schema=bad;name")


def test_postgres_drop_schema_removes_everything(
    postgres_dsn: str, postgres_schema_url: Callable[[], tuple[str, str]]
) -> None:
    import psycopg

    from csmcore.storage.postgres import PostgresStore

    schema, url = postgres_schema_url()
    store: Store = open_store(url)
    assert isinstance(store, PostgresStore)
    store.tickets.add(make_ticket("T-1"))
    store.drop_schema()
    with psycopg.connect(postgres_dsn) as conn:
        rows = conn.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s", [schema]
        ).fetchall()
    assert rows == []
