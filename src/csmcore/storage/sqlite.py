"""The SQLite store (``sqlite:///relative.db``, ``sqlite:////absolute.db``), stdlib ``sqlite3``.

- WAL journal and ``synchronous=FULL``: a returned write survives a crash or power loss.
- Writes take the database's write lock at their start (``BEGIN IMMEDIATE``) and wait up to
  ``timeout`` seconds for it, so several processes can write the same file safely; readers are
  never blocked by writers. A transaction sees one snapshot of the file; reads outside a unit of
  work are single statements, each one snapshot.
- One connection per store, shared by the threads of a process under a lock.
- The schema migrates forward when the file is opened; a file written by a newer csmcore raises
  :class:`~csmcore.errors.SchemaVersionError` and is left untouched.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from csmcore.errors import CsmError, StorageError, ValidationError
from csmcore.storage._sql import Cursor, Dialect, standard_migrations
from csmcore.storage._sql_store import SqlStore

__all__ = ["SqliteStore"]

_T = TypeVar("_T")


class _SqliteDialect(Dialect):
    name = "sqlite"
    migrations = standard_migrations("TEXT", " WITHOUT ROWID")


class _SqliteCursor:
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._conn.executemany(sql, rows)


class SqliteStore(SqlStore):
    """A store in one SQLite file. Use :func:`csmcore.storage.open_store` or construct it.

    ``path`` is a file path (``":memory:"`` gives a private, temporary database); ``timeout`` is
    how many seconds a writer waits for another process's write lock before raising
    :class:`~csmcore.errors.StorageError`. Raises :class:`~csmcore.errors.StorageError` when the
    file cannot be opened and :class:`~csmcore.errors.SchemaVersionError` for a newer schema.
    """

    dialect = _SqliteDialect()
    driver_errors = (sqlite3.Error,)
    integrity_errors = (sqlite3.IntegrityError,)
    value_errors = (sqlite3.DataError, OverflowError)  # text too long, integer beyond 64 bits

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self._path = os.fspath(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        super().__init__()
        try:
            conn = sqlite3.connect(
                self._path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            raise StorageError(f"cannot open SQLite file {self._path!r}: {err}") from err
        self._conn = conn
        # room for the few parameters a query adds (keyset, page size)
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 16
        if limit < self.dialect.max_params:
            self.dialect = _SqliteDialect()
            self.dialect.max_params = max(limit, 0)
        try:
            with self._translate():
                self._set_wal(conn, timeout)
                conn.execute("PRAGMA synchronous=FULL")
                with self._transaction(True) as cur:
                    self._migrate(cur)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _set_wal(conn: sqlite3.Connection, timeout: float) -> None:
        # Switching to WAL needs a moment of exclusive access; another process opening the same
        # new file at the same time may hold it, and SQLite does not always wait for it.
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        """Open ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``.

        The only query parameter is ``timeout`` (seconds). Raises
        :class:`~csmcore.errors.ValidationError` for a URL without a path or with other
        parameters.
        """
        prefix = "sqlite:///"
        if not url.lower().startswith(prefix) or len(url) == len(prefix):
            raise ValidationError(
                f"url={url!r} is not a SQLite URL; expected 'sqlite:///relative/path.db' or "
                "'sqlite:////absolute/path.db'"
            )
        rest = url[len(prefix) :]
        path, _, query = rest.partition("?")
        options = dict(parse_qsl(query, keep_blank_values=True))
        unknown = sorted(set(options) - {"timeout"})
        if unknown:
            raise ValidationError(
                f"url={url!r} has unknown parameters {unknown}; the only one accepted is timeout"
            )
        try:
            timeout = float(options.get("timeout", "30"))
        except ValueError as err:
            raise ValidationError(
                f"url={url!r}: timeout={options['timeout']!r} is not a number of seconds"
            ) from err
        return cls(path, timeout=timeout)

    @property
    def url(self) -> str:
        """``sqlite:///`` followed by the path (an absolute path gives four slashes)."""
        return f"sqlite:///{self._path}"

    @property
    def path(self) -> str:
        """The database file's path as given."""
        return self._path

    def _describe(self) -> str:
        return f"SQLite store {self._path!r}"

    def _existing_tables(self, cur: Cursor) -> set[str]:
        return {r[0] for r in cur.query("SELECT name FROM sqlite_master WHERE type = 'table'")}

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Cursor]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StorageError(f"{self._describe()} is closed")
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _SqliteCursor(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def run(self, uow: Cursor | None, work: Callable[[Cursor], _T], *, write: bool) -> _T:
        """``work(cursor)`` in a new transaction (or the unit of work's savepoint): the same as
        the shared version, without its layers of context managers (appends are short)."""
        if uow is not None:
            return super().run(uow, work, write=write)
        self._check_usable()
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StorageError(f"{self._describe()} is closed")
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = work(_SqliteCursor(conn))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except CsmError:
                raise
            except Exception as err:
                self._raise_translated(err)
        return result

    def query_once(
        self, uow: Cursor | None, statement: str, params: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """One read-only statement; outside a unit of work it runs on its own (SQLite gives
        every statement one consistent snapshot of the file)."""
        if uow is not None:
            return super().query_once(uow, statement, params)
        self._check_usable()
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StorageError(f"{self._describe()} is closed")
            try:
                return conn.execute(statement, params).fetchall()
            except Exception as err:
                self._raise_translated(err)

    def close(self) -> None:
        """Close the connection (the data stays in the file). Closing twice is harmless."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __repr__(self) -> str:
        return f"SqliteStore({self._path!r})"
