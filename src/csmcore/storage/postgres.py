"""The PostgreSQL store (``postgresql://user@host:5432/db``), psycopg 3 with a connection pool.

Needs ``pip install 'csmcore[postgres]'``. It uses plain SQL and no extensions; the built-in
server functions it calls are ``pg_advisory_xact_lock`` (to serialise schema creation and
migration between processes) and, for conditions on custom fields, the ``jsonb`` operators and
``jsonb_typeof``, which every PostgreSQL since 9.4 has. It is tested against the
PostgreSQL server of the project's CI; other servers and PostgreSQL-compatible services are
expected, not proven, to work.

- ``?schema=name`` keeps the tables in a schema of their own (created when missing); any other
  query parameter is passed to libpq (``sslmode``, ``connect_timeout``, ...).
- ``?pool_min=1&pool_max=4`` size the connection pool; ``?pool_timeout=30`` is how many seconds
  to wait for a free connection before :class:`~csmcore.errors.StorageError`.
- ``?connect_timeout=5`` (libpq's own parameter, whole seconds; 5 when not given, and libpq
  takes at least 2) bounds the first connection made when the store opens: a server that
  cannot be reached (a wrong host or port) raises :class:`~csmcore.errors.StorageError` naming
  the host and port at once instead of after ``pool_timeout``.
- ``?statement_timeout=30`` is the most seconds one statement may run on the server (a number
  of seconds, fractions allowed, default 30; ``0`` means no limit). A statement that runs
  longer is cancelled by the server and raises :class:`~csmcore.errors.StorageError`, so an
  abandoned query does not go on running and holding locks.
- A statement the client abandons while it runs (KeyboardInterrupt, or any exception raised
  while waiting for the server, such as a client-side timeout raised by a signal handler) is
  cancelled on the server (psycopg's ``Connection.cancel_safe``) before the exception goes on;
  the connection is then discarded by the pool.
- It runs at the server's default isolation, READ COMMITTED, where each statement sees its own
  snapshot. So every read is one statement (a page of ``find`` / ``stream`` picks the matching
  ids and reads their histories in the same query), an append reads the version and the history
  with one statement, and writes check versions in the ``UPDATE``'s ``WHERE`` clause: two
  writers with the same expected version cannot both win, and a stale expected version is a
  :class:`~csmcore.errors.ConcurrencyError`, never a verdict on another writer's events.
- Reads outside a unit of work run in autocommit mode (no ``BEGIN`` / ``COMMIT`` round trips).
- String columns use the ``"C"`` collation, so ids sort by code point as Python sorts them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from csmcore.errors import CsmError, StorageError, ValidationError
from csmcore.storage._sql import (
    DEFAULT_STATEMENT_TIMEOUT,
    Cursor,
    Dialect,
    dump_json,
    statement_timeout_option,
)
from csmcore.storage._sql_schema import standard_migrations
from csmcore.storage._sql_store import SqlStore
from csmcore.storage._sql_values import DECIMAL_COMPARISONS, json_number

__all__ = ["PostgresStore"]

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_OWN_PARAMS = ("schema", "pool_min", "pool_max", "pool_timeout", "statement_timeout")
_DEFAULT_CONNECT_TIMEOUT = 5


class _PostgresDialect(Dialect):
    name = "postgresql"
    migrations = standard_migrations('TEXT COLLATE "C"', json_type="jsonb", big="BIGINT")

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if not values:
            return self.false, []
        return f"{column} = ANY(?)", [list(values)]

    def bump_and_insert(self, bump: str) -> str | None:
        # one round trip instead of two: the INSERT reads the UPDATE's RETURNING
        return (
            f"WITH bumped AS ({bump} RETURNING id) "
            "INSERT INTO csm_events (ticket_id, seq, data) SELECT id, ?, ? FROM bumped"
        )

    # custom fields: csm_tickets.fields is jsonb, whose numbers compare exactly as numeric

    two_valued_equals = True  # fields is NOT NULL and the parameters are never NULL

    def custom_unset(self, key: str) -> tuple[str, list[Any]]:
        return "(t.fields ->> ?::text) IS NULL", [key]

    def custom_equals(
        self, key: str, values: Sequence[str | int | float | bool]
    ) -> tuple[str, list[Any]] | None:
        # containment: jsonb tells true from 1 and finds 1 in 1.0; a GIN index on fields
        # (jsonb_path_ops) can serve it
        params = [
            dump_json({key: json_number(v) if isinstance(v, int | float) else v}) for v in values
        ]
        # a Decimal equal to a number: both its bounds are that number (decimal_bounds)
        params += [
            dump_json({key: {"lo": json_number(v), "hi": json_number(v)}})
            for v in values
            if not isinstance(v, bool | str)
        ]
        return " OR ".join(["t.fields @> ?::jsonb"] * len(params)) or self.false, params

    def custom_compare(
        self, key: str, op: str, value: str | int | float
    ) -> tuple[str, list[Any]] | None:
        if isinstance(value, str):
            return (
                f"jsonb_typeof(t.fields -> ?::text) = 'string' "
                f'AND (t.fields ->> ?::text) COLLATE "C" {op} ?::text',
                [key, key, value],
            )
        number = dump_json(json_number(value))
        # or a Decimal that compares so (decimal_bounds): its bounds are numbers
        tests = DECIMAL_COMPARISONS[op]
        decimal = " AND ".join(
            f"(t.fields -> ?::text -> '{bound}') {test} ?::jsonb" for bound, test in tests
        )
        return (
            f"CASE jsonb_typeof(t.fields -> ?::text) "
            f"WHEN 'number' THEN (t.fields -> ?::text) {op} ?::jsonb "
            f"WHEN 'object' THEN {decimal} END",
            [key, key, number, *[x for _ in tests for x in (key, number)]],
        )


@lru_cache(maxsize=256)
def _pg(statement: str) -> str:
    # Shared SQL uses "?" placeholders and never contains "%" or a literal "?".
    return statement.replace("?", "%s")


class _PgCursor:
    __slots__ = ("_conn",)

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._conn
        try:
            return conn.execute(_pg(statement), params).fetchall()
        except BaseException as err:
            _cancel_abandoned(conn, err)
            raise

    def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        conn = self._conn
        try:
            return conn.execute(_pg(statement), params).rowcount
        except BaseException as err:
            _cancel_abandoned(conn, err)
            raise

    def run_many(self, statement: str, rows: Iterable[Sequence[Any]]) -> None:
        conn = self._conn
        try:
            with conn.cursor() as cur:
                cur.executemany(_pg(statement), rows)
        except BaseException as err:
            _cancel_abandoned(conn, err)
            raise


def _cancel_abandoned(conn: psycopg.Connection[Any], err: BaseException) -> None:
    """Cancel on the server a statement the client gave up on while it ran.

    psycopg cancels on KeyboardInterrupt itself; any other exception raised while it waits for
    the server (a client-side timeout raised by a signal handler, say) would leave the statement
    running on the server, holding its locks, after the pool closes the connection. A failure to
    cancel is left to the server's statement timeout.
    """
    if isinstance(err, psycopg.Error):
        return  # the server answered (with an error): nothing runs any more
    with suppress(Exception):  # the original exception is what the caller must see
        if conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.ACTIVE:
            conn.cancel_safe(timeout=5.0)


def _int_option(url: str, options: dict[str, str], name: str, default: int) -> int:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValidationError(f"url={url!r}: {name}={raw!r} is not a whole number >= 1")
    return value


def _probe(conninfo: str, connect_timeout: int) -> None:
    """Make one connection within ``connect_timeout`` seconds and close it; raise
    :class:`~csmcore.errors.StorageError` naming the host and port when it cannot be made.

    The pool retries a failing connection until its own timeout; this makes a server that
    cannot be reached fail at once."""
    try:
        psycopg.connect(conninfo, connect_timeout=connect_timeout, autocommit=True).close()
    except psycopg.Error as err:
        try:
            params = conninfo_to_dict(conninfo)
        except psycopg.Error:
            params = {}
        host = params.get("host") or "the default host"
        port = params.get("port") or "5432"
        raise StorageError(
            f"cannot connect to the PostgreSQL server at host {host!r} port {port!r} "
            f"(connect_timeout={connect_timeout} s): {type(err).__name__}: {err}".strip()
        ) from err


class PostgresStore(SqlStore):
    """A store in a PostgreSQL database. Use :func:`csmcore.storage.open_store` or construct it.

    ``conninfo`` is a libpq URL or key=value string without csmcore's own parameters.
    Raises :class:`~csmcore.errors.StorageError` when the server cannot be reached within
    ``timeout`` seconds, :class:`~csmcore.errors.SchemaVersionError` for a newer schema.
    """

    dialect = _PostgresDialect()
    driver_errors = (psycopg.Error, PoolTimeout)
    integrity_errors = (psycopg.errors.IntegrityError,)
    value_errors = (psycopg.DataError,)  # e.g. NUL in text, a number out of range
    conflict_errors = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
    """SQLSTATE 40P01 and 40001: raised as ConcurrencyError (see the module documentation)."""

    def is_unique_violation(self, err: BaseException | None) -> bool:
        return isinstance(err, psycopg.errors.UniqueViolation)  # SQLSTATE 23505

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str | None = None,
        pool_min: int = 1,
        pool_max: int = 4,
        timeout: float = 30.0,
        url: str | None = None,
        connect_timeout: int = _DEFAULT_CONNECT_TIMEOUT,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    ) -> None:
        if schema is not None and not _SCHEMA_NAME.match(schema):
            raise ValidationError(
                f"schema={schema!r} is not a plain SQL identifier (letters, digits, underscore, "
                "at most 63 characters, not starting with a digit)"
            )
        if not statement_timeout >= 0:  # also refuses NaN
            raise ValidationError(
                f"statement_timeout={statement_timeout!r} is not a number of seconds >= 0"
            )
        self._schema = schema
        self._url = url or conninfo
        self._statement_timeout = statement_timeout
        super().__init__()
        _probe(conninfo, connect_timeout)
        timeout_ms = round(statement_timeout * 1000)
        if statement_timeout and not timeout_ms:
            timeout_ms = 1

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute(f"SET statement_timeout = {int(timeout_ms)}")
            if schema is not None:
                conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            conn.commit()

        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=pool_min,
            max_size=max(pool_min, pool_max),
            timeout=timeout,
            configure=configure,
            kwargs={"connect_timeout": connect_timeout},
            open=False,
            name="csmcore",
        )
        try:
            with self._translate():
                self._pool.open(wait=True, timeout=timeout)
                with self._transaction(True) as cur:
                    # one opener at a time migrates (other processes may open the same database)
                    cur.query("SELECT pg_advisory_xact_lock(4242, 1)")
                    if schema is not None:
                        cur.run(
                            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}")
                            .format(sql.Identifier(schema))
                            .as_string(None)
                        )
                    self._migrate(cur)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Open a ``postgresql://`` (or ``postgres://``) URL; see the module documentation."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        options = {k: v for k, v in query if k in _OWN_PARAMS}
        rest = [(k, v) for k, v in query if k not in _OWN_PARAMS]
        conninfo = urlunsplit(
            ("postgresql", parts.netloc, parts.path, urlencode(rest), parts.fragment)
        )
        try:
            timeout = float(options.get("pool_timeout", "30"))
        except ValueError as err:
            raise ValidationError(
                f"url={url!r}: pool_timeout={options['pool_timeout']!r} is not a number of seconds"
            ) from err
        statement_timeout = statement_timeout_option(url, options)
        connect_timeout = _int_option(url, dict(rest), "connect_timeout", _DEFAULT_CONNECT_TIMEOUT)
        return cls(
            conninfo,
            schema=options.get("schema"),
            pool_min=_int_option(url, options, "pool_min", 1),
            pool_max=_int_option(url, options, "pool_max", 4),
            timeout=timeout,
            url=url,
            connect_timeout=connect_timeout,
            statement_timeout=statement_timeout,
        )

    @property
    def url(self) -> str:
        """The URL this store was opened with (it may contain a password)."""
        return self._url

    @property
    def statement_timeout(self) -> float:
        """The most seconds one statement may run on the server (0: no limit)."""
        return self._statement_timeout

    @property
    def schema(self) -> str | None:
        """The schema holding the tables (None: the server's default search path)."""
        return self._schema

    def _describe(self) -> str:
        where = f" schema {self._schema!r}" if self._schema else ""
        return f"PostgreSQL store{where}"

    def _existing_tables(self, cur: Cursor) -> set[str]:
        rows = cur.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        return {r[0] for r in rows}

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Cursor]:
        if self._closed:
            raise StorageError(f"{self._describe()} is closed")
        # The pool commits when the block ends normally and rolls back when it raises.
        with self._pool.connection() as conn:
            yield _PgCursor(conn)

    def query_once(
        self, uow: Cursor | None, statement: str, params: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """One read-only statement; outside a unit of work it runs in autocommit mode, without
        BEGIN and COMMIT round trips (one statement sees one snapshot at any isolation level)."""
        if uow is not None:
            return super().query_once(uow, statement, params)
        self._check_usable()
        try:
            with self._pool.connection() as conn:
                conn.autocommit = True
                try:
                    return _PgCursor(conn).query(statement, params)
                finally:
                    if conn.pgconn.transaction_status != psycopg.pq.TransactionStatus.ACTIVE:
                        conn.autocommit = False  # (an abandoned one is closed by the pool)
        except CsmError:
            raise
        except Exception as err:
            self._raise_translated(err)

    def drop_schema(self) -> None:
        """Drop this store's schema with everything in it, then close the store.

        For tests and temporary stores. Raises :class:`~csmcore.errors.ValidationError` when
        the store has no schema of its own (it never drops ``public``).
        """
        if self._schema is None:
            raise ValidationError("this store has no schema of its own (?schema=...) to drop")
        with self.tx(None, write=True) as cur:
            cur.run(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                .format(sql.Identifier(self._schema))
                .as_string(None)
            )
        self.close()

    def close(self) -> None:
        """Close the pool's connections. Closing twice is harmless."""
        self._closed = True
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self._schema!r})"
