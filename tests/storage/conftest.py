"""Store factories for the project's own adapters, and the PostgreSQL policy of DESIGN.md.

PostgreSQL tests run when ``CSMCORE_TEST_POSTGRES_DSN`` is set and FAIL if that server cannot be
reached; without the variable they are skipped with a reason. Every store a test builds lives in
its own freshly created schema, dropped after the test, so runs never see each other's data.

The SQLite and PostgreSQL factories also carry the conformance suite's hooks
(:class:`~csmcore.testing.storage_suite.SchemaAccess`, ``OldSchemas``, ``BackendFaults`` and
``PushdownProbe``): they reach the tables with the driver directly, behind the adapter's back.
"""

from __future__ import annotations

import abc
import os
import sqlite3
import uuid
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from csmcore import conditions as cd
from csmcore.storage import Store, open_store
from csmcore.storage import _sql as sql_store
from csmcore.storage._sql_store import SqlStore

Rows = list[tuple[Any, ...]]


class SqlFactory(abc.ABC):
    """Builds stores of one SQL adapter and reaches their tables with the driver directly."""

    schema_version = sql_store.SCHEMA_VERSION
    migrations: tuple[tuple[str, ...], ...]

    @abc.abstractmethod
    def __call__(self) -> Store:
        """A fresh, empty store."""

    @abc.abstractmethod
    def raw(self, url: str, statements: Sequence[str]) -> Rows:
        """Run ``statements`` in one transaction on the tables of the store at ``url``; the
        rows of the last one."""

    @abc.abstractmethod
    def tables(self, url: str) -> set[str]:
        """The tables of the store at ``url``."""

    @abc.abstractmethod
    def schema_layout(self, url: str) -> Hashable:
        """Tables, columns and indexes of the store at ``url``."""

    @abc.abstractmethod
    def unreachable_url(self) -> str:
        """A URL of this adapter whose backend cannot be opened."""

    # --- SchemaAccess / OldSchemas ---------------------------------------------------------

    def read_schema_version(self, url: str) -> int | None:
        if "csm_meta" not in self.tables(url):
            return None
        rows = self.raw(url, ["SELECT value FROM csm_meta WHERE name = 'schema_version'"])
        return int(rows[0][0]) if rows else None

    def write_schema_version(self, url: str, version: int | None) -> None:
        if version is None:
            self.raw(url, ["DROP TABLE csm_meta"])
            return
        statements = []
        if "csm_meta" not in self.tables(url):
            statements.append(self._statement(0, "CREATE TABLE csm_meta "))
        statements.append(
            "INSERT INTO csm_meta (name, value) VALUES ('schema_version', "
            f"'{version:d}') ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        )
        self.raw(url, statements)

    def write_old_schema(self, url: str, version: int) -> None:
        """Undo the migration steps after ``version`` (each must create a table or an index,
        or add a column)."""
        undo = []
        for step in reversed(self.migrations[version:]):
            for statement in reversed(step):
                words = statement.split()
                if words[:2] == ["CREATE", "INDEX"]:
                    undo.append(f"DROP INDEX {words[2]}")
                elif words[:3] == ["CREATE", "UNIQUE", "INDEX"]:
                    undo.append(f"DROP INDEX {words[3]}")
                elif words[:2] == ["CREATE", "TABLE"]:
                    undo.append(f"DROP TABLE {words[2]}")
                elif words[:2] == ["ALTER", "TABLE"] and words[3:5] == ["ADD", "COLUMN"]:
                    undo.append(f"ALTER TABLE {words[2]} DROP COLUMN {words[5]}")
                elif words[:2] == ["DROP", "INDEX"]:  # made again as an earlier step made it
                    made = f"CREATE INDEX {words[2]} "
                    undo.append(next(s for m in self.migrations for s in m if s.startswith(made)))
                else:
                    raise NotImplementedError(f"no way to undo {statement!r}; extend this hook")
        self.raw(url, undo)
        self.write_schema_version(url, version)

    def _statement(self, step: int, prefix: str) -> str:
        (found,) = [s for s in self.migrations[step] if s.startswith(prefix)]
        return found

    # --- BackendFaults ---------------------------------------------------------------------

    def break_backend(self, url: str) -> None:
        self.raw(url, ["DROP TABLE csm_events"])

    # --- LedgerFaults ----------------------------------------------------------------------
    # The refused entries sit in a table of their own; a trigger on csm_ledger raises when an
    # insert matches one of them. Healing drops both.

    @abc.abstractmethod
    def _refusing_trigger(self) -> list[str]:
        """Statements creating the trigger ``csm_test_refuse`` on csm_ledger."""

    @abc.abstractmethod
    def _drop_refusing_trigger(self) -> str:
        """The statement dropping that trigger."""

    def fail_ledger_entry(self, url: str, member_id: str, seq: int) -> None:
        statements = []
        if "csm_test_refused" not in self.tables(url):
            statements.append("CREATE TABLE csm_test_refused (member_id TEXT, seq BIGINT)")
            statements.extend(self._refusing_trigger())
        member = member_id.replace("'", "''")
        statements.append(f"INSERT INTO csm_test_refused VALUES ('{member}', {seq:d})")
        self.raw(url, statements)

    def heal_ledger(self, url: str) -> None:
        if "csm_test_refused" in self.tables(url):
            self.raw(url, [self._drop_refusing_trigger(), "DROP TABLE csm_test_refused"])

    # --- PushdownProbe ---------------------------------------------------------------------

    def pushes_down(self, store: Store, condition: cd.Condition) -> bool:
        assert isinstance(store, SqlStore)
        return sql_store.compile_condition(condition, store.dialect).exact

    @contextmanager
    def reads(self, store: Store) -> Iterator[Callable[[], int]]:
        """Counts the tickets rebuilt from stored histories (every ticket a query fetches)."""
        original = sql_store._history
        count = 0

        def counting(texts: Sequence[str]) -> Any:
            nonlocal count
            count += 1
            return original(texts)

        sql_store._history = counting
        try:
            yield lambda: count
        finally:
            sql_store._history = original


class SqliteFactory(SqlFactory):
    def __init__(self, directory: Path) -> None:
        from csmcore.storage.sqlite import SqliteStore

        self.directory = directory
        self.migrations = SqliteStore.dialect.migrations

    def __call__(self) -> Store:
        return open_store(f"sqlite:///{self.directory / uuid.uuid4().hex}.db")

    @staticmethod
    def _path(url: str) -> str:
        return url.removeprefix("sqlite:///").partition("?")[0]

    def raw(self, url: str, statements: Sequence[str]) -> Rows:
        conn = sqlite3.connect(self._path(url))
        try:
            with conn:
                rows: Rows = []
                for statement in statements:
                    rows = conn.execute(statement).fetchall()
                return rows
        finally:
            conn.close()

    def tables(self, url: str) -> set[str]:
        return {
            r[0] for r in self.raw(url, ["SELECT name FROM sqlite_master WHERE type = 'table'"])
        }

    def schema_layout(self, url: str) -> Hashable:
        return tuple(
            self.raw(url, ["SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"])
        )

    def unreachable_url(self) -> str:
        return f"sqlite:///{self.directory / 'no-such-directory' / 'store.db'}"

    def _refusing_trigger(self) -> list[str]:
        return [
            "CREATE TRIGGER csm_test_refuse BEFORE INSERT ON csm_ledger WHEN EXISTS (SELECT 1 "
            "FROM csm_test_refused r WHERE r.member_id = NEW.member_id AND r.seq = NEW.seq) "
            "BEGIN SELECT RAISE(ABORT, 'injected fault: ledger entry refused'); END"
        ]

    def _drop_refusing_trigger(self) -> str:
        return "DROP TRIGGER csm_test_refuse"


class PostgresFactory(SqlFactory):
    """Each store in a new schema; :meth:`drop` removes them all."""

    def __init__(self, dsn: str) -> None:
        from csmcore.storage.postgres import PostgresStore

        self.dsn = dsn
        self.migrations = PostgresStore.dialect.migrations
        self.schemas: list[str] = []

    def __call__(self) -> Store:
        schema = new_schema_name()
        store = open_store(_postgres_url(self.dsn, schema))  # an unreachable server fails here
        self.schemas.append(schema)
        return store

    @staticmethod
    def _schema(url: str) -> str:
        (schema,) = parse_qs(urlsplit(url).query)["schema"]
        return schema

    def raw(self, url: str, statements: Sequence[str]) -> Rows:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn) as conn:
            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema(url))))
            rows: Rows = []
            for statement in statements:
                cur = conn.execute(statement.encode())
                rows = cur.fetchall() if cur.description else []
            return rows

    def tables(self, url: str) -> set[str]:
        query = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {r[0] for r in self.raw(url, [query])}

    def schema_layout(self, url: str) -> Hashable:
        schema = self._schema(url)
        columns = self.raw(
            url,
            [
                "SELECT table_name, column_name, data_type, is_nullable, collation_name "
                "FROM information_schema.columns WHERE table_schema = current_schema() "
                "ORDER BY table_name, column_name"
            ],
        )
        indexes = self.raw(
            url,
            [
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() ORDER BY indexname"
            ],
        )
        return (
            tuple(columns),
            tuple((name, text.replace(schema, "<schema>")) for name, text in indexes),
        )

    def unreachable_url(self) -> str:
        return "postgresql://postgres@127.0.0.1:1/csm?schema=csm_unreachable&pool_timeout=1"

    def _refusing_trigger(self) -> list[str]:
        # an I/O error (SQLSTATE 58030), as a failing disk would give
        return [
            "CREATE FUNCTION csm_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF EXISTS (SELECT 1 FROM csm_test_refused r WHERE r.member_id = NEW.member_id "
            "AND r.seq = NEW.seq) THEN RAISE EXCEPTION 'injected fault: ledger entry refused' "
            "USING ERRCODE = '58030'; END IF; RETURN NEW; END $$",
            "CREATE TRIGGER csm_test_refuse BEFORE INSERT ON csm_ledger FOR EACH ROW "
            "EXECUTE FUNCTION csm_test_refuse()",
        ]

    def _drop_refusing_trigger(self) -> str:
        return "DROP FUNCTION csm_test_refuse() CASCADE"

    def drop(self) -> None:
        if not self.schemas:
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


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


def new_schema_name() -> str:
    return f"csm_test_{uuid.uuid4().hex[:16]}"


def _postgres_url(dsn: str, schema: str) -> str:
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}schema={schema}&pool_timeout=10"


@pytest.fixture
def postgres_schema_url(postgres_dsn: str) -> Callable[[], tuple[str, str]]:
    """Returns a function giving ``(schema, store URL)`` for a new, uniquely named schema."""

    def make() -> tuple[str, str]:
        schema = new_schema_name()
        return schema, _postgres_url(postgres_dsn, schema)

    return make


@pytest.fixture
def postgres_factory(postgres_dsn: str) -> Iterator[PostgresFactory]:
    """Builds PostgreSQL stores, each in a new schema; drops the schemas afterwards."""
    factory = PostgresFactory(postgres_dsn)
    yield factory
    factory.drop()


@pytest.fixture
def sqlite_factory(tmp_path: Path) -> SqliteFactory:
    """Builds SQLite stores, each in a new file of the test's temporary directory."""
    return SqliteFactory(tmp_path)
