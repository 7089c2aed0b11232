"""What is not conformance: settings and options only SQLite or PostgreSQL have.

Everything the adapters must do (schema versions, migrations, push-down, driver errors, races,
text) is checked by the shipped suite in test_conformance.py, through the hooks of conftest.py;
what each SQL store promises to push down is declared there too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Compare, Eq, In
from csmcore.errors import ConcurrencyError, StorageError, ValidationError
from csmcore.storage import open_store
from csmcore.storage._sql import compile_condition
from csmcore.storage._sql_store import SqlStore
from csmcore.storage.protocols import Store
from csmcore.storage.sqlite import SqliteStore
from csmcore.testing.builders import T0, make_ticket
from csmcore.tickets import FieldsChanged
from tests.storage.conftest import SqlFactory, SqliteFactory


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


def test_postgres_rejects_a_schema_name_that_is_not_an_identifier() -> None:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
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


@pytest.mark.parametrize("factory_name", ["sqlite_factory", "postgres_factory"])
def test_migrating_to_schema_4_fills_the_custom_fields_from_the_histories(
    factory_name: str, request: pytest.FixtureRequest
) -> None:
    factory: SqlFactory = request.getfixturevalue(factory_name)
    store = factory()
    first = make_ticket("A", fields={"made_sla": False, "n": 2**60, 'odd"%': "é"})
    store.tickets.add_many([first, make_ticket("B", fields={"made_sla": True}), make_ticket("C")])
    change = FieldsChanged(at=first.created_at, actor="x", changes={"made_sla": False, "n": 1})
    store.tickets.append("C", [change], expected_version=1)
    url = store.url
    store.close()
    factory.write_old_schema(url, 3)
    again = open_store(url)
    try:
        assert [t.id for t in again.tickets.find(Eq("fields.made_sla", False))] == ["A", "C"]
        assert again.tickets.count(Eq("fields.n", 2**60)) == 1
        assert again.tickets.count(Compare("fields.n", "<", 2**60)) == 1
        assert again.tickets.count(Eq('fields.odd"%', "é")) == 1
        assert again.tickets.count(Eq("fields.made_sla", None)) == 0
    finally:
        again.close()


def test_postgres_equality_on_custom_fields_can_use_a_gin_index(
    postgres_factory: SqlFactory,
) -> None:
    """docs/storage.md: on PostgreSQL, Eq and In on custom fields are jsonb containment that a
    GIN index serves (not hidden inside COALESCE)."""
    store = postgres_factory()
    assert isinstance(store, SqlStore)
    try:
        store.tickets.add_many(
            [make_ticket(f"T{n}", fields={"made_sla": n % 50 == 0}) for n in range(500)]
        )
        with store.tx(None, write=True) as cur:
            cur.run(
                "CREATE INDEX csm_tickets_fields ON csm_tickets USING gin (fields jsonb_path_ops)"
            )
            cur.run("ANALYZE csm_tickets")
            cur.run("SET LOCAL enable_seqscan = off")
            for condition in (Eq("fields.made_sla", True), In("fields.made_sla", [True, 2])):
                compiled = compile_condition(condition, store.dialect)
                plan = cur.query(
                    f"EXPLAIN SELECT COUNT(*) FROM csm_tickets t WHERE {compiled.sql}",
                    compiled.params,
                )
                assert "csm_tickets_fields" in " ".join(r[0] for r in plan), plan
        assert store.tickets.count(Eq("fields.made_sla", True)) == 10
    finally:
        store.close()


_HOUR = timedelta(hours=1)


def _refuse_inserts(factory: SqlFactory, url: str, table: str) -> None:
    """A trigger that refuses every insert into ``table`` (a constraint no concurrent writer
    caused: SQLite reports it as an IntegrityError, PostgreSQL here as a check violation)."""
    if isinstance(factory, SqliteFactory):
        statements = [
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END"
        ]
    else:
        statements = [
            f"CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'refused by a trigger' USING ERRCODE = 'check_violation'; END $$",
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION refuse_{table}()",
        ]
    factory.raw(url, statements)


@pytest.mark.parametrize("factory_name", ["sqlite_factory", "postgres_factory"])
@pytest.mark.parametrize(
    ("table", "write"),
    [
        ("csm_tickets", lambda store: store.tickets.add(make_ticket("T-2"))),
        ("csm_events", lambda store: store.tickets.add_many([make_ticket("T-2")])),
        (
            "csm_events",
            lambda store: store.tickets.append(
                "T-1",
                [FieldsChanged(at=T0 + _HOUR, actor="agent", changes={"a": 1})],
                expected_version=1,
            ),
        ),
        (
            "csm_documents",
            lambda store: store.calendars.put(
                "c", BusinessCalendar.always(timezone="UTC"), expected_version=0
            ),
        ),
    ],
    ids=["add", "add_many", "append", "put"],
)
def test_a_constraint_no_other_writer_caused_is_a_storage_error_not_a_conflict(
    request: pytest.FixtureRequest, factory_name: str, table: str, write: Callable[[Store], object]
) -> None:
    """Only a duplicate key means another writer got there first (ConcurrencyError, retry);
    any other refusal of an insert is a backend failure, StorageError caused by the driver's
    error (a retry would fail the same way)."""
    factory: SqlFactory = request.getfixturevalue(factory_name)
    store = factory()
    try:
        store.tickets.add(make_ticket("T-1"))
        _refuse_inserts(factory, store.url, table)
        with pytest.raises(StorageError, match="refused by a trigger") as info:
            write(store)
        assert not isinstance(info.value, ConcurrencyError)
        assert info.value.__cause__ is not None
    finally:
        store.close()
