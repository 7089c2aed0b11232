"""The SQL store shared by SQLite and PostgreSQL: transactions, savepoints, units of work,
the translation of driver errors, schema migrations and the cache of committed tickets.

The SQL itself (schema, condition push-down, event codec) is in :mod:`csmcore.storage._sql`;
the role objects are in :mod:`csmcore.storage._sql_roles`.
"""

from __future__ import annotations

import abc
import reprlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, NoReturn, TypeVar

from csmcore._boundary import exempt
from csmcore.errors import CsmError, SchemaVersionError, StorageError, ValidationError
from csmcore.storage import kit as c
from csmcore.storage._sql import SCHEMA_VERSION, Cursor, Dialect
from csmcore.storage._sql_ledger import SqlLedger
from csmcore.storage._sql_roles import SqlDocuments, SqlFirings, SqlOutbox, SqlRoles, SqlTickets
from csmcore.storage._sql_schema import DATA_MIGRATIONS
from csmcore.storage.base import StoreBase
from csmcore.tickets import Ticket

__all__ = ["SqlStore", "TicketCache"]

_T = TypeVar("_T")


class TicketCache:
    """Recently used committed tickets, so that appending to a ticket does not decode its whole
    history again.

    A ticket's history is append-only, so a committed ``(id, version)`` names exactly one
    history: an entry is used only when the version read inside the writing transaction equals
    the cached ticket's version. Only committed states are put here.
    """

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._data: OrderedDict[str, Ticket] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ticket_id: str, version: int) -> Ticket | None:
        with self._lock:
            found = self._data.get(ticket_id)
            if found is None or found.version != version:
                return None
            self._data.move_to_end(ticket_id)
            return found

    def put(self, tickets: Iterable[Ticket]) -> None:
        with self._lock:
            for ticket in tickets:
                self._data[ticket.id] = ticket
                self._data.move_to_end(ticket.id)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


class SqlStore(StoreBase, abc.ABC):
    """Shared behaviour of the SQL stores; subclasses supply connections and the dialect.

    They offer the required roles and the optional ``firings``, ``outbox`` and ``ledger``
    roles, on the store and in units of work (the roles of :class:`SqlRoles`)."""

    roles: ClassVar[frozenset[str]] = SqlRoles.roles

    dialect: Dialect
    driver_errors: tuple[type[BaseException], ...]
    integrity_errors: tuple[type[BaseException], ...]
    value_errors: tuple[type[BaseException], ...] = ()
    """Driver errors meaning a value cannot be stored (raised as ValidationError)."""
    conflict_errors: tuple[type[BaseException], ...] = ()
    """Driver errors meaning the transaction lost to a concurrent one (a deadlock, a
    serialization failure): raised as ConcurrencyError, and they abort a unit of work."""

    def is_unique_violation(self, err: BaseException | None) -> bool:
        """True when ``err`` is a primary key or unique index refusing a duplicate (what a
        concurrent writer's row causes), not another constraint (a check, a trigger)."""
        return isinstance(err, self.integrity_errors)

    def __init__(self) -> None:
        self._closed = False
        self._uow_threads: set[int] = set()
        self._uow_lock = threading.Lock()
        self.cache = TicketCache()
        self.tickets = SqlTickets(self, None)
        self.calendars = SqlDocuments(self, None, "calendars")
        self.policies = SqlDocuments(self, None, "policies")
        self.rules = SqlDocuments(self, None, "rules")
        self.firings = SqlFirings(self, None)
        self.outbox = SqlOutbox(self, None)
        self.ledger = SqlLedger(self)

    # --- to be supplied by the dialect -------------------------------------------------------

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The store's URL, without credentials."""

    @abc.abstractmethod
    def _transaction(self, write: bool) -> AbstractContextManager[Cursor]:
        """A new transaction on a connection of this store (commit on success)."""

    @contextmanager
    def _savepoint(self, cur: Cursor) -> Iterator[None]:
        """A savepoint inside the current transaction of ``cur``: one operation of a unit of
        work either happens completely or not at all."""
        cur.run("SAVEPOINT csm_op")
        try:
            yield
        except BaseException:
            cur.run("ROLLBACK TO SAVEPOINT csm_op")
            cur.run("RELEASE SAVEPOINT csm_op")
            raise
        cur.run("RELEASE SAVEPOINT csm_op")

    @abc.abstractmethod
    def _describe(self) -> str:
        """A short description of the store for error messages."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's connections; later calls raise StorageError."""

    # --- shared --------------------------------------------------------------------------------

    def _raise_translated(self, err: Exception) -> NoReturn:
        """Raise the CsmError the driver error ``err`` stands for (caused by it), else ``err``."""
        translated = self.translate_error(err)
        if translated is None:
            raise err
        raise translated from err

    @exempt("a hook that returns an error for the roles' use")
    def translate_error(self, err: BaseException) -> CsmError | None:
        """The CsmError a driver error ``err`` stands for; None for anything else."""
        if isinstance(err, UnicodeEncodeError):  # text the driver cannot encode (a surrogate)
            return ValidationError(
                f"{self._describe()} cannot store the text {reprlib.repr(err.object)}: "
                f"{err.reason} at index {err.start}; text must be valid Unicode without NUL "
                "characters"
            )
        if isinstance(err, self.conflict_errors):
            return c.conflict(self._describe(), f"{type(err).__name__}: {err}")
        if isinstance(err, self.value_errors):
            return ValidationError(
                f"{self._describe()} refused a value: {type(err).__name__}: {err}"
            )
        if isinstance(err, self.driver_errors):
            return StorageError(f"{self._describe()}: {type(err).__name__}: {err}")
        return None

    @contextmanager
    def _translate(self, *, driver_only: bool = False) -> Iterator[None]:
        """Translate driver errors raised inside; with ``driver_only``, leave every other
        exception as it is (a unit of work runs the caller's own code, whose OverflowError or
        UnicodeEncodeError is the caller's, not a value the backend refused)."""
        try:
            yield
        except CsmError:
            raise
        except Exception as err:
            if driver_only and not isinstance(err, self.driver_errors):
                raise
            self._raise_translated(err)

    @exempt("a primitive the roles call behind their own boundary; not an entry point")
    @contextmanager
    def tx(self, uow: Cursor | None, *, write: bool) -> Iterator[Cursor]:
        """The cursor of the open unit of work (in a savepoint), or a new transaction."""
        if uow is not None:
            with self._translate(), self._savepoint(uow):
                yield uow
            return
        self._check_usable()
        with self._translate(), self._transaction(write) as cur:
            yield cur

    @exempt("a primitive the roles call behind their own boundary; not an entry point")
    def run(self, uow: Cursor | None, work: Callable[[Cursor], _T], *, write: bool) -> _T:
        """``work(cursor)`` inside :meth:`tx`; a store subclass may override it with a faster
        path that behaves the same."""
        with self.tx(uow, write=write) as cur:
            return work(cur)

    @exempt("a primitive the roles call behind their own boundary; not an entry point")
    def run_one(self, uow: Cursor | None, statement: str, params: Sequence[Any] = ()) -> int:
        """One writing ``statement`` (its row count), in the unit of work or a transaction of
        its own. In a unit of work it runs in a savepoint, as every operation does; a store
        subclass whose backend backs out a failed statement by itself and keeps the
        transaction usable (SQLite) may run it without one."""
        return self.run(uow, lambda cur: cur.run(statement, params), write=True)

    @exempt("a primitive the roles call behind their own boundary; not an entry point")
    def query_once(
        self, uow: Cursor | None, statement: str, params: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """The rows of one read-only ``statement``, in the unit of work or on its own.

        One statement always reads one consistent snapshot, so outside a unit of work a store
        subclass may run it without an explicit transaction (fewer round trips)."""
        return self.run(uow, lambda cur: cur.query(statement, params), write=False)

    def _check_usable(self) -> None:
        if self._closed:
            raise StorageError(f"{self._describe()} is closed")
        if threading.get_ident() in self._uow_threads:
            raise StorageError(
                "a unit of work is open on this store in this thread; "
                "write through its roles (uow.tickets, ...) instead"
            )

    @contextmanager
    def unit_of_work(self) -> Iterator[SqlRoles]:
        """Group writes into one transaction; see :meth:`csmcore.storage.protocols.Store`."""
        self._check_usable()
        ident = threading.get_ident()
        with self._translate(driver_only=True), self._transaction(True) as cur:
            with self._uow_lock:
                self._uow_threads.add(ident)
            roles = SqlRoles(self, cur)
            try:
                yield roles
                if roles.aborted:  # the caller went on after the conflict: roll back
                    raise c.conflict(self._describe(), "a unit of work went on after a conflict")
            finally:
                roles.ended = True
                with self._uow_lock:
                    self._uow_threads.discard(ident)
        self.cache.put(roles.written)  # committed now

    # --- schema --------------------------------------------------------------------------------

    def _migrate(self, cur: Cursor, target: int = SCHEMA_VERSION) -> None:
        """Bring the schema to ``target`` (inside the caller's write transaction)."""
        tables = self._existing_tables(cur)
        if "csm_meta" not in tables:
            if tables & {"csm_tickets", "csm_events", "csm_documents"}:
                raise SchemaVersionError(
                    f"{self._describe()} has csmcore tables but no csm_meta table; "
                    "it was not written by csmcore (or was damaged), so it is left untouched"
                )
            current = 0
        else:
            rows = cur.query("SELECT value FROM csm_meta WHERE name = 'schema_version'")
            try:
                current = int(rows[0][0])
            except (IndexError, ValueError) as err:
                raise SchemaVersionError(
                    f"{self._describe()} has no readable schema_version in csm_meta"
                ) from err
        if current > len(self.dialect.migrations):
            raise SchemaVersionError(
                f"{self._describe()} has schema version {current}, written by a newer csmcore; "
                f"this csmcore knows versions up to {len(self.dialect.migrations)}. Upgrade "
                "csmcore to open it (nothing was changed)"
            )
        for version in range(current, target):
            for statement in self.dialect.migrations[version]:
                cur.run(statement)
            fill = DATA_MIGRATIONS.get(version)
            if fill is not None:
                fill(cur)
            cur.run(
                "INSERT INTO csm_meta (name, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                [str(version + 1)],
            )

    @abc.abstractmethod
    def _existing_tables(self, cur: Cursor) -> set[str]:
        """Names of the tables that exist in the store's schema."""

    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        rows = self.query_once(None, "SELECT value FROM csm_meta WHERE name = 'schema_version'")
        return int(rows[0][0])
