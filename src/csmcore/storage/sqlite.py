"""The SQLite store (``sqlite:///relative.db``, ``sqlite:////absolute.db``), stdlib ``sqlite3``.

- WAL journal and ``synchronous=FULL``: a returned write survives a crash or power loss.
- Writes take the database's write lock at their start (``BEGIN IMMEDIATE``) and wait up to
  ``timeout`` seconds for it, so several processes can write the same file safely; readers are
  never blocked by writers. A transaction sees one snapshot of the file; reads outside a unit of
  work are single statements, each one snapshot.
- One connection per store, shared by the threads of a process under a lock.
- The schema migrates forward when the file is opened; a file written by a newer csmcore raises
  :class:`~csmcore.errors.SchemaVersionError` and is left untouched.
- ``?statement_timeout=30`` is the most seconds one statement may run (a number of seconds,
  fractions allowed, default 30; ``0`` means no limit), as for PostgreSQL. SQLite checks it
  every few thousand virtual-machine steps (``sqlite3.Connection.set_progress_handler``) and
  interrupts a statement that runs longer: it raises :class:`~csmcore.errors.StorageError`
  naming the statement timeout, and its transaction is rolled back, so nothing is half-written.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl

from csmcore.errors import CsmError, StorageError, ValidationError
from csmcore.storage._sql import (
    DEFAULT_STATEMENT_TIMEOUT,
    Cursor,
    Dialect,
    statement_timeout_option,
)
from csmcore.storage._sql_schema import standard_migrations
from csmcore.storage._sql_store import SqlStore

__all__ = ["SqliteStore"]

_T = TypeVar("_T")


class _SqliteDialect(Dialect):
    name = "sqlite"
    migrations = standard_migrations("TEXT", " WITHOUT ROWID")
    row_values = sqlite3.sqlite_version_info >= (3, 15, 0)


_PROGRESS_STEPS = 10_000
"""SQLite virtual-machine instructions between two checks of the statement's time budget."""


class _Budget:
    """The time budget of the statement running on one connection (its progress handler)."""

    __slots__ = ("deadline", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = float("inf")

    def start(self) -> None:
        self.deadline = time.monotonic() + self.seconds

    def stop(self) -> None:
        self.deadline = float("inf")

    def __call__(self) -> int:
        if time.monotonic() > self.deadline:
            return 1  # SQLite interrupts the statement
        return 0


class _SqliteCursor:
    __slots__ = ("_budget", "_conn")

    def __init__(self, conn: sqlite3.Connection, budget: _Budget | None) -> None:
        self._conn = conn
        self._budget = budget

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        budget = self._budget
        if budget is None:
            return self._conn.execute(sql, params).fetchall()
        budget.start()
        try:
            return self._conn.execute(sql, params).fetchall()
        finally:
            budget.stop()

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        budget = self._budget
        if budget is None:
            return self._conn.execute(sql, params).rowcount
        budget.start()
        try:
            return self._conn.execute(sql, params).rowcount
        finally:
            budget.stop()

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        budget = self._budget
        if budget is not None:
            budget.start()  # one budget for the batch
        try:
            self._conn.executemany(sql, rows)
        finally:
            if budget is not None:
                budget.stop()


class SqliteStore(SqlStore):
    """A store in one SQLite file. Use :func:`csmcore.storage.open_store` or construct it.

    ``path`` is a file path (``":memory:"`` gives a private, temporary database); ``timeout`` is
    how many seconds a writer waits for another process's write lock before raising
    :class:`~csmcore.errors.StorageError`; ``statement_timeout`` is the most seconds one
    statement may run (0: no limit) before it is interrupted with StorageError. Raises
    :class:`~csmcore.errors.StorageError` when the file cannot be opened and
    :class:`~csmcore.errors.SchemaVersionError` for a newer schema.
    """

    dialect = _SqliteDialect()
    driver_errors = (sqlite3.Error,)
    integrity_errors = (sqlite3.IntegrityError,)
    value_errors = (sqlite3.DataError, OverflowError)  # text too long, integer beyond 64 bits

    def is_unique_violation(self, err: BaseException | None) -> bool:
        return isinstance(err, sqlite3.IntegrityError) and getattr(
            err, "sqlite_errorname", None
        ) in ("SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
    ) -> None:
        if not 0 <= statement_timeout < 2**31 / 1000:  # also refuses NaN
            raise ValidationError(
                f"statement_timeout={statement_timeout!r} is not a number of seconds from 0 "
                "(no limit) to 2147483"
            )
        self._statement_timeout = statement_timeout
        self._budget = _Budget(statement_timeout) if statement_timeout else None
        self._path = os.fspath(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        super().__init__()
        try:
            conn = sqlite3.connect(
                self._path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as err:
            folder = os.path.dirname(self._path)
            hint = (
                f"; its directory {folder!r} does not exist (the store creates the file, not "
                "its directory)"
                if folder and not os.path.isdir(folder)
                else ""
            )
            raise StorageError(f"cannot open SQLite file {self._path!r}: {err}{hint}") from err
        self._conn = conn
        if self._budget is not None:
            conn.set_progress_handler(self._budget, _PROGRESS_STEPS)
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

        The query parameters are ``timeout`` (seconds to wait for another process's write
        lock) and ``statement_timeout`` (seconds, see the module documentation). Raises
        :class:`~csmcore.errors.ValidationError` for a URL without a path, with other
        parameters or with a bad value.
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
        unknown = sorted(set(options) - {"timeout", "statement_timeout"})
        if unknown:
            raise ValidationError(
                f"url={url!r} has unknown parameters {unknown}; the ones accepted are timeout "
                "and statement_timeout"
            )
        statement_timeout = statement_timeout_option(url, options)
        try:
            timeout = float(options.get("timeout", "30"))
        except ValueError as err:
            raise ValidationError(
                f"url={url!r}: timeout={options['timeout']!r} is not a number of seconds"
            ) from err
        return cls(path, timeout=timeout, statement_timeout=statement_timeout)

    @property
    def url(self) -> str:
        """``sqlite:///`` followed by the path (an absolute path gives four slashes)."""
        return f"sqlite:///{self._path}"

    @property
    def statement_timeout(self) -> float:
        """The most seconds one statement may run (0: no limit)."""
        return self._statement_timeout

    @property
    def path(self) -> str:
        """The database file's path as given."""
        return self._path

    def _describe(self) -> str:
        return f"SQLite store {self._path!r}"

    def translate_error(self, err: BaseException) -> CsmError | None:
        """As the shared version, naming the statement timeout when it interrupted ``err``."""
        budget = self._budget
        # Only the progress handler interrupts this store's statements (it never calls
        # Connection.interrupt), so an interrupted statement is one over its time budget.
        if (
            budget is not None
            and isinstance(err, sqlite3.OperationalError)
            and "interrupted" in str(err)
        ):
            return StorageError(
                f"{self._describe()}: statement timeout: a statement ran longer than "
                f"{budget.seconds:g} s (statement_timeout) and was interrupted; its "
                "transaction was rolled back"
            )
        return super().translate_error(err)

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
                yield _SqliteCursor(conn, self._budget)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _in_unit(self, uow: Cursor) -> _SqliteCursor:
        """The cursor of an open unit of work whose transaction is still open. SQLite rolls
        back the whole transaction after some errors (an interrupted statement, a full disk);
        a statement run after that would commit on its own, outside the unit of work, so it is
        refused instead."""
        cur = cast(_SqliteCursor, uow)
        if not cur._conn.in_transaction:
            raise StorageError(
                f"{self._describe()}: the unit of work's transaction was rolled back by SQLite "
                "after an earlier error; nothing more can be written in it (start a new unit "
                "of work)"
            )
        return cur

    @contextmanager
    def _savepoint(self, cur: Cursor) -> Iterator[None]:
        """The shared savepoint, in a unit of work whose transaction is still open; when
        SQLite rolled the whole transaction back inside it (a writing statement interrupted
        by the statement timeout), the savepoint is gone with it: the error is raised as it
        is, not a failed ``ROLLBACK TO SAVEPOINT`` in its place."""
        inside = self._in_unit(cur)
        inside.run("SAVEPOINT csm_op")
        try:
            yield
        except BaseException:
            if inside._conn.in_transaction:
                inside.run("ROLLBACK TO SAVEPOINT csm_op")
                inside.run("RELEASE SAVEPOINT csm_op")
            raise
        inside.run("RELEASE SAVEPOINT csm_op")

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
                    result = work(_SqliteCursor(conn, self._budget))
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
            # a read changes nothing, so it needs no savepoint in the unit of work
            return self._unsaved(uow, _SqliteCursor.query, statement, params)
        self._check_usable()
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StorageError(f"{self._describe()} is closed")
            try:
                return _SqliteCursor(conn, self._budget).query(statement, params)
            except Exception as err:
                self._raise_translated(err)

    def run_one(self, uow: Cursor | None, statement: str, params: Sequence[Any] = ()) -> int:
        """One writing statement. In a unit of work it runs without a savepoint: SQLite backs
        out the changes of a statement that fails (a constraint, a refused value) and keeps
        the transaction and the statements before it, which is what the savepoint would do."""
        if uow is None:
            return super().run_one(uow, statement, params)
        return self._unsaved(uow, _SqliteCursor.run, statement, params)

    def _unsaved(
        self,
        uow: Cursor,
        call: Callable[[_SqliteCursor, str, Sequence[Any]], _T],
        statement: str,
        params: Sequence[Any],
    ) -> _T:
        """``call(cursor, statement, params)`` in the unit of work, without a savepoint, with
        the driver's errors translated."""
        cur = self._in_unit(uow)
        try:
            return call(cur, statement, params)
        except CsmError:
            raise
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
