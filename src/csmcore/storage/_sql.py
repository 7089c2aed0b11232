"""The part of the SQL adapters that SQLite and PostgreSQL share.

Layout (schema version 2):

- ``csm_meta(name, value)``: ``schema_version``.
- ``csm_tickets``: one row per ticket: ``id``, ``version`` (number of events) and the summary
  columns that conditions are pushed down to (status, priority, channel, group, ...).
- ``csm_ticket_tags(ticket_id, tag)``: the current tags, for ``HasTags``.
- ``csm_events(ticket_id, seq, data)``: the history, one JSON document per event (seq from 1).
- ``csm_documents(kind, key, version, data)``: versioned calendars, policies and rules.

Each dialect supplies its DDL per schema version, its placeholder and its driver errors.
"""

from __future__ import annotations

import abc
import json
import json.encoder
import reprlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from operator import attrgetter
from typing import Any, ClassVar, NoReturn, Protocol, TypeVar, cast

from csmcore import conditions as cd
from csmcore.errors import (
    ConcurrencyError,
    CsmError,
    NotFound,
    SchemaVersionError,
    StorageError,
    ValidationError,
)
from csmcore.storage import kit as c
from csmcore.storage.protocols import Versioned
from csmcore.tickets import Ticket, TicketEvent
from csmcore.tickets import (  # the fast event codecs (what to_data / from_data use for events)
    event_from_data as _structure_event_at,
)
from csmcore.tickets import (
    event_to_data as _unstructure_event,
)

_T = TypeVar("_T")

SCHEMA_VERSION = 2
"""The schema version this csmcore writes; older stores migrate forward when opened."""

_MAX_INTEGER = 2**63 - 1
"""The largest integer both backends store; no version or page size can exceed it."""

_TICKET_COLUMNS = (
    "status",
    "status_name",
    "priority",
    "priority_rank",
    "channel",
    "grp",
    "assignee",
    "requester",
    "created_by",
    "subject",
    "merged_into",
)

_CHANGING = attrgetter("status", "status_name", "priority", "group", "assignee", "merged_into")
"""The summary attributes events can change (the others come from TicketCreated)."""

_FIELD_COLUMNS = {
    "status": "status",
    "status_name": "status_name",
    "priority": "priority",
    "channel": "channel",
    "group": "grp",
    "assignee": "assignee",
    "requester": "requester",
    "created_by": "created_by",
    "subject": "subject",
}


def _value(v: object) -> Any:
    """An enum's value, anything else unchanged."""
    return getattr(v, "value", v)


def summary_row(ticket: Ticket) -> tuple[Any, ...]:
    return (
        _value(ticket.status),
        ticket.status_name,
        _value(ticket.priority),
        ticket.priority.rank,
        _value(ticket.channel),
        ticket.group,
        ticket.assignee,
        ticket.requester,
        _value(ticket.created_by),
        ticket.subject,
        ticket.merged_into,
    )


_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _fast_dump_json() -> Callable[[Any], str] | None:
    """The C encoder of ``json`` built once, without the circular-reference check (the data
    is a tree made by ``to_data``): ``JSONEncoder.encode`` builds a new one on every call.
    None when this Python has no C encoder, or one that does not write what ``_ENCODER``
    writes."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        encode = make(
            None,
            _ENCODER.default,
            json.encoder.encode_basestring_ascii,
            None,
            ":",
            ",",
            False,
            False,
            True,
        )
    except TypeError:  # another signature
        return None

    def dump(data: Any) -> str:
        return "".join(encode(data, 0))

    sample = {"a": [1, 2.5, None, True, "\x00\ud800é"], "b": {"c": "d"}}
    try:
        same = dump(sample) == _ENCODER.encode(sample)
    except Exception:  # any surprise means: do not use it
        same = False
    return dump if same else None


dump_json: Callable[[Any], str] = _fast_dump_json() or _ENCODER.encode
"""Compact, ASCII-only JSON text of JSON-safe data (NUL and surrogates come out escaped)."""


def _event_json(event: TicketEvent) -> str:
    """The stored JSON text of ``event``, checked as :func:`kit.encode_event` checks it.

    JSON escapes NUL and surrogates (``\\u0000``, ``\\ud800`` to ``\\udfff``), so only a text
    holding one of those escapes needs the full check; the usual one costs two substring
    searches.
    """
    text = dump_json(_unstructure_event(event))
    if "\\u0000" in text or "\\ud" in text:
        c.check_data_text(json.loads(text), f"{type(event).__name__} at {event.at.isoformat()}")
    return text


class Cursor(Protocol):
    """What the shared code needs of a dialect's connection inside one transaction."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...


def standard_migrations(text: str, without_rowid: str = "") -> tuple[tuple[str, ...], ...]:
    """The schema, as steps: ``[n]`` takes a store from version n to n + 1.

    ``text`` is the column type for strings (it must compare and sort by code point, like
    Python's ``str``); ``without_rowid`` is appended to tables clustered on their key.
    """
    return (
        (
            f"CREATE TABLE csm_meta (name {text} PRIMARY KEY, value {text} NOT NULL)",
            f"""CREATE TABLE csm_tickets (
                id {text} PRIMARY KEY,
                version INTEGER NOT NULL,
                status {text} NOT NULL,
                status_name {text} NOT NULL,
                priority {text} NOT NULL,
                priority_rank INTEGER NOT NULL,
                channel {text} NOT NULL,
                grp {text},
                assignee {text},
                requester {text} NOT NULL,
                created_by {text} NOT NULL,
                subject {text} NOT NULL,
                merged_into {text}){without_rowid}""",
            f"""CREATE TABLE csm_ticket_tags (
                ticket_id {text} NOT NULL,
                tag {text} NOT NULL,
                PRIMARY KEY (tag, ticket_id)){without_rowid}""",
            f"""CREATE TABLE csm_events (
                ticket_id {text} NOT NULL,
                seq INTEGER NOT NULL,
                data {text} NOT NULL,
                PRIMARY KEY (ticket_id, seq)){without_rowid}""",
            f"""CREATE TABLE csm_documents (
                kind {text} NOT NULL,
                key {text} NOT NULL,
                version INTEGER NOT NULL,
                data {text} NOT NULL,
                PRIMARY KEY (kind, key, version)){without_rowid}""",
        ),
        (
            "CREATE INDEX csm_tickets_status_priority ON csm_tickets (status, priority_rank)",
            "CREATE INDEX csm_ticket_tags_ticket ON csm_ticket_tags (ticket_id)",
        ),
    )


class Dialect:
    """Differences between SQL backends. Shared SQL is written with ``?`` placeholders."""

    name: ClassVar[str]
    false: ClassVar[str] = "FALSE"
    true: ClassVar[str] = "TRUE"
    migrations: ClassVar[tuple[tuple[str, ...], ...]]
    """``migrations[n]`` holds the statements that take the schema from version n to n + 1."""

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if not values:
            return self.false, []
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def bump_and_insert(self, bump: str) -> str | None:
        """One statement that runs ``bump`` (a guarded ``UPDATE csm_tickets``) and, only if it
        changed the row, inserts one event row (its seq and data are the last two
        parameters); None when the backend cannot, and the two run one after the other."""
        return None


class Compiled:
    """A condition turned into SQL: ``exact`` is False when ``sql`` only narrows the rows and
    the tickets it returns still have to be filtered with ``condition.matches``."""

    __slots__ = ("exact", "params", "sql")

    def __init__(self, sql: str, params: list[Any], exact: bool) -> None:
        self.sql = sql
        self.params = params
        self.exact = exact


def compile_condition(cond: cd.Condition, dialect: Dialect) -> Compiled:
    """Push ``cond`` down to SQL over ``csm_tickets t`` (bound parameters only).

    Leaves the SQL cannot express exactly become TRUE (a superset) and mark the result inexact.
    Every leaf is wrapped in COALESCE(..., FALSE) so that NULL columns give the same two-valued
    answers as Python's ``matches``. Each condition class has its handler in :data:`PUSH_DOWN`
    (a class without one is not pushed down: TRUE, inexact).
    """
    return PUSH_DOWN(cond, dialect)


PUSH_DOWN = cd.ConditionVisitor[Compiled](
    "PUSH_DOWN", default=lambda node, dialect: Compiled(dialect.true, [], False)
)
"""The SQL push-down of each condition class: ``handler(node, dialect) -> Compiled``."""


def _everything(dialect: Dialect) -> Compiled:
    return Compiled(dialect.true, [], False)


def _leaf(dialect: Dialect, sql: str, params: list[Any]) -> Compiled:
    return Compiled(f"COALESCE(({sql}), {dialect.false})", params, True)


@PUSH_DOWN.register(cd.Always)
def _push_always(node: cd.Always, dialect: Dialect) -> Compiled:
    return Compiled(dialect.true, [], True)


@PUSH_DOWN.register(cd.Never)
def _push_never(node: cd.Never, dialect: Dialect) -> Compiled:
    return Compiled(dialect.false, [], True)


@PUSH_DOWN.register(cd.All, cd.AnyOf)
def _push_all_any(node: cd.All | cd.AnyOf, dialect: Dialect) -> Compiled:
    parts = [PUSH_DOWN(p, dialect) for p in node.conditions]
    joiner = " AND " if isinstance(node, cd.All) else " OR "
    if not parts:
        empty = dialect.true if isinstance(node, cd.All) else dialect.false
        return Compiled(empty, [], True)
    return Compiled(
        "(" + joiner.join(p.sql for p in parts) + ")",
        [x for p in parts for x in p.params],
        all(p.exact for p in parts),
    )


@PUSH_DOWN.register(cd.Not)
def _push_not(node: cd.Not, dialect: Dialect) -> Compiled:
    inner = PUSH_DOWN(node.condition, dialect)
    if not inner.exact:
        return _everything(dialect)
    return Compiled(f"(NOT {inner.sql})", inner.params, True)


@PUSH_DOWN.register(cd.HasTags)
def _push_tags(node: cd.HasTags, dialect: Dialect) -> Compiled:
    tags = sorted(node.tags)
    if not tags:
        return Compiled(dialect.true, [], True)
    sql = " AND ".join(
        "EXISTS (SELECT 1 FROM csm_ticket_tags g WHERE g.ticket_id = t.id AND g.tag = ?)"
        for _ in tags
    )
    return Compiled(f"({sql})", list(tags), True)


@PUSH_DOWN.register(cd.Eq)
def _push_eq(node: cd.Eq, dialect: Dialect) -> Compiled:
    field = node.field
    if field == "merged" and isinstance(node.value, bool):
        test = "IS NOT NULL" if node.value else "IS NULL"
        return Compiled(f"(t.merged_into {test})", [], True)
    column = _FIELD_COLUMNS.get(field)
    if column is None:
        return _everything(dialect)
    value = _value(node.value)
    if value is None:
        return Compiled(f"(t.{column} IS NULL)", [], True)
    if not isinstance(value, str):
        return _everything(dialect)
    return _leaf(dialect, f"t.{column} = ?", [value])


@PUSH_DOWN.register(cd.In)
def _push_in(node: cd.In, dialect: Dialect) -> Compiled:
    column = _FIELD_COLUMNS.get(node.field)
    if column is None:
        return _everything(dialect)
    values = [_value(v) for v in node.values]
    if not all(v is None or isinstance(v, str) for v in values):
        return _everything(dialect)
    strings = sorted({v for v in values if v is not None})
    sql, params = dialect.in_list(f"t.{column}", strings)
    if None in values:
        sql = f"{sql} OR t.{column} IS NULL"
    return _leaf(dialect, sql, params)


@PUSH_DOWN.register(cd.Compare)
def _push_compare(node: cd.Compare, dialect: Dialect) -> Compiled:
    field = node.field
    column = _FIELD_COLUMNS.get(field)
    if column is None:
        return _everything(dialect)
    value = _value(node.value)
    if node.op not in ("<", "<=", ">", ">="):
        return _everything(dialect)
    if field == "priority":
        from csmcore.tickets import Priority

        return _leaf(dialect, f"t.priority_rank {node.op} ?", [Priority(value).rank])
    if not isinstance(value, str):
        return _everything(dialect)
    return _leaf(dialect, f"t.{column} {node.op} ?", [value])


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


class SqlStore(abc.ABC):
    """Shared behaviour of the SQL stores; subclasses supply connections and the dialect."""

    dialect: Dialect
    driver_errors: tuple[type[BaseException], ...]
    integrity_errors: tuple[type[BaseException], ...]
    value_errors: tuple[type[BaseException], ...] = ()
    """Driver errors meaning a value cannot be stored (raised as ValidationError)."""

    def __init__(self) -> None:
        self._closed = False
        self._uow_threads: set[int] = set()
        self._uow_lock = threading.Lock()
        self.cache = TicketCache()
        self.tickets = SqlTickets(self, None)
        self.calendars = SqlDocuments(self, None, "calendars")
        self.policies = SqlDocuments(self, None, "policies")
        self.rules = SqlDocuments(self, None, "rules")

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
        translated = self._as_csm_error(err)
        if translated is None:
            raise err
        raise translated from err

    def _as_csm_error(self, err: BaseException) -> CsmError | None:
        """The CsmError a driver error ``err`` stands for; None for anything else."""
        if isinstance(err, UnicodeEncodeError):  # text the driver cannot encode (a surrogate)
            return ValidationError(
                f"{self._describe()} cannot store the text {reprlib.repr(err.object)}: "
                f"{err.reason} at index {err.start}; text must be valid Unicode without NUL "
                "characters"
            )
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

    def run(self, uow: Cursor | None, work: Callable[[Cursor], _T], *, write: bool) -> _T:
        """``work(cursor)`` inside :meth:`tx`; a store subclass may override it with a faster
        path that behaves the same."""
        with self.tx(uow, write=write) as cur:
            return work(cur)

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


class SqlRoles:
    """The roles bound to one unit of work."""

    def __init__(self, store: SqlStore, cur: Cursor) -> None:
        self.ended = False
        self.written: list[Ticket] = []
        """Tickets written in this unit of work, for the cache once it commits."""
        self.tickets = SqlTickets(store, cur, self)
        self.calendars = SqlDocuments(store, cur, "calendars", self)
        self.policies = SqlDocuments(store, cur, "policies", self)
        self.rules = SqlDocuments(store, cur, "rules", self)


class _Bound:
    def __init__(self, store: SqlStore, cur: Cursor | None, roles: SqlRoles | None = None) -> None:
        self._store = store
        self._uow = cur
        self._roles = roles

    def _tx(self, *, write: bool) -> AbstractContextManager[Cursor]:
        self._check_open()
        return self._store.tx(self._uow, write=write)

    def _run(self, work: Callable[[Cursor], _T], *, write: bool) -> _T:
        self._check_open()
        return self._store.run(self._uow, work, write=write)

    def _query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._check_open()
        return self._store.query_once(self._uow, statement, params)

    def _check_open(self) -> None:
        if self._roles is not None and self._roles.ended:
            raise StorageError("this unit of work has ended; open a new one")


def _history(texts: Sequence[str]) -> Ticket:
    """The ticket whose stored events (JSON texts, in order) are ``texts``."""
    datas = json.loads("[" + ",".join(texts) + "]")  # one parse for the whole history
    events: list[Any] = [_structure_event_at(d, "$") for d in datas]
    return Ticket.from_events(cast(list[TicketEvent], events))


class SqlTickets(_Bound):
    """:class:`~csmcore.storage.protocols.TicketRepository` over SQL."""

    _INSERT_TICKET = (
        "INSERT INTO csm_tickets (id, version, "
        + ", ".join(_TICKET_COLUMNS)
        + ") VALUES (?, ?, "
        + ", ".join("?" * len(_TICKET_COLUMNS))
        + ")"
    )
    _INSERT_EVENT = "INSERT INTO csm_events (ticket_id, seq, data) VALUES (?, ?, ?)"
    _INSERT_TAG = "INSERT INTO csm_ticket_tags (ticket_id, tag) VALUES (?, ?)"
    _SELECT_HISTORY = "SELECT data FROM csm_events WHERE ticket_id = ? ORDER BY seq"
    _BUMP_VERSION = "UPDATE csm_tickets SET version = ? WHERE id = ? AND version = ?"

    def _remember(self, tickets: list[Ticket]) -> None:
        """Cache tickets just written: now if committed, else when the unit of work commits."""
        if self._roles is None:
            self._store.cache.put(tickets)
        else:
            self._roles.written.extend(tickets)

    def add(self, ticket: Ticket) -> Ticket:
        self.add_many([ticket])
        return ticket

    def add_many(self, tickets: Iterable[Ticket]) -> int:
        batch = [c.check_ticket(t) for t in tickets]
        if not batch:
            return 0
        ticket_rows = [(t.id, t.version, *summary_row(t)) for t in batch]
        tag_rows = [(t.id, tag) for t in batch for tag in sorted(t.tags)]
        event_rows = [
            (t.id, seq, _event_json(e)) for t in batch for seq, e in enumerate(t.events, 1)
        ]
        try:
            with self._tx(write=True) as cur:
                cur.run_many(self._INSERT_TICKET, ticket_rows)
                if tag_rows:
                    cur.run_many(self._INSERT_TAG, tag_rows)
                cur.run_many(self._INSERT_EVENT, event_rows)
            self._remember(batch)
        except StorageError as err:
            if isinstance(err.__cause__, self._store.integrity_errors):
                ids = [t.id for t in batch]
                shown = ids[0] if len(ids) == 1 else f"one of {len(ids)} tickets"
                raise ConcurrencyError(
                    f"ticket {shown!r} already exists (or repeats in the batch); "
                    "a new ticket needs a new id; nothing was stored"
                ) from err.__cause__
            raise
        return len(batch)

    def get(self, ticket_id: str) -> Ticket:
        c.check_id(ticket_id, "ticket_id")
        rows = self._query(self._SELECT_HISTORY, [ticket_id])
        if not rows:
            raise NotFound(f"no ticket with id {ticket_id!r}")
        ticket = _history([r[0] for r in rows])
        if self._roles is None:  # a committed state (inside a unit of work it may not be)
            self._store.cache.put([ticket])
        return ticket

    def append(
        self, ticket_id: str, events: Sequence[TicketEvent], *, expected_version: int
    ) -> Ticket:
        c.check_id(ticket_id, "ticket_id")
        new_events = c.check_events(events)
        c.check_version(expected_version)
        # A history only grows, so a cached committed ticket at the expected version is the
        # stored one as long as the store is still at that version: apply the events to it
        # before taking any lock, and let the guarded UPDATE below confirm the version.
        current = self._store.cache.get(ticket_id, expected_version)
        updated: Ticket | None = None
        if current is not None:
            try:
                updated = c.apply_all(current, new_events)
            except ValidationError:
                # maybe the events only fail on this version, and the store is past it: decide
                # below, after reading the stored history (a stale version is reported first)
                current = None

        def work(cur: Cursor) -> Ticket:
            if current is None or updated is None:
                stored = self._stored(cur, ticket_id, expected_version)
                return self._write_append(cur, stored, c.apply_all(stored, new_events))
            return self._write_append(cur, current, updated)

        try:
            updated = self._run(work, write=True)
            self._remember([updated])
        except StorageError as err:
            if isinstance(err.__cause__, self._store.integrity_errors):
                raise ConcurrencyError(
                    f"ticket {ticket_id!r} was changed by another writer at the same time "
                    f"(expected_version={expected_version}); reload it and apply again"
                ) from err.__cause__
            raise
        return updated

    def _stored(self, cur: Cursor, ticket_id: str, expected_version: int) -> Ticket:
        """The stored ticket, read in one statement (its version and history agree), after
        checking that it exists and is at ``expected_version``."""
        rows = cur.query(self._SELECT_HISTORY, [ticket_id])
        if not rows:
            raise NotFound(f"no ticket with id {ticket_id!r}")
        c.check_expected(ticket_id, len(rows), expected_version)
        return _history([r[0] for r in rows])

    def _write_append(self, cur: Cursor, current: Ticket, updated: Ticket) -> Ticket:
        """Write the events ``updated`` has beyond ``current`` and return ``updated``;
        ConcurrencyError (and nothing written) unless the store is still at
        ``current.version``."""
        ticket_id, version = current.id, current.version
        # set only the columns that changed: fewer index entries to rewrite
        changes: list[tuple[str, Any]] = []
        if _CHANGING(current) != _CHANGING(updated):
            before, after = summary_row(current), summary_row(updated)
            changes = [
                (col, new)
                for col, old, new in zip(_TICKET_COLUMNS, before, after, strict=True)
                if old != new
            ]
        if changes:
            assignments = "".join(f", {col} = ?" for col, _ in changes)
            bump = f"UPDATE csm_tickets SET version = ?{assignments} WHERE id = ? AND version = ?"
            params = [updated.version, *(v for _, v in changes), ticket_id, version]
        else:
            bump = self._BUMP_VERSION
            params = [updated.version, ticket_id, version]
        rows = [
            (ticket_id, seq, _event_json(e))
            for seq, e in enumerate(updated.events[version:], version + 1)
        ]
        combined = self._store.dialect.bump_and_insert(bump) if len(rows) == 1 else None
        if combined is not None:
            changed = cur.run(combined, [*params, rows[0][1], rows[0][2]])
        else:
            changed = cur.run(bump, params)
        if changed != 1:
            # the store has moved on: a cached ticket that is no longer the latest, or (on
            # PostgreSQL at read committed) a writer that committed after the history was read
            found = cur.query("SELECT version FROM csm_tickets WHERE id = ?", [ticket_id])
            if not found:
                raise NotFound(f"no ticket with id {ticket_id!r}")
            c.check_expected(ticket_id, int(found[0][0]), version)
            raise ConcurrencyError(
                f"ticket {ticket_id!r} was changed by another writer at the same time "
                f"(expected_version={version}); reload it and apply again"
            )
        if combined is None:
            if len(rows) == 1:
                cur.run(self._INSERT_EVENT, rows[0])
            else:
                cur.run_many(self._INSERT_EVENT, rows)
        if current.tags is not updated.tags and current.tags != updated.tags:
            for tag in sorted(current.tags - updated.tags):
                cur.run(
                    "DELETE FROM csm_ticket_tags WHERE ticket_id = ? AND tag = ?", [ticket_id, tag]
                )
            added = [(ticket_id, tag) for tag in sorted(updated.tags - current.tags)]
            if added:
                cur.run_many(self._INSERT_TAG, added)
        return updated

    def _pages(self, condition: cd.Condition, page: int) -> Iterator[list[Ticket]]:
        """Matching tickets in id order, page by page (keyset pagination on id).

        Each page is read with one statement, which picks the page's ids and reads their
        histories together: a writer committing in the middle cannot make the condition see one
        state of a ticket and the history another (PostgreSQL at read committed gives each
        statement, not each transaction, its own snapshot).
        """
        compiled = compile_condition(condition, self._store.dialect)
        after: str | None = None
        while True:
            keyset = "" if after is None else " AND t.id > ?"
            params = [
                *compiled.params,
                *([] if after is None else [after]),
                min(page, _MAX_INTEGER),
            ]
            rows = self._query(
                f"SELECT p.id, e.data FROM (SELECT t.id FROM csm_tickets t "
                f"WHERE {compiled.sql}{keyset} ORDER BY t.id LIMIT ?) p "
                "LEFT JOIN csm_events e ON e.ticket_id = p.id ORDER BY p.id, e.seq",
                params,
            )
            if not rows:
                return
            texts: dict[str, list[str]] = {}
            for ticket_id, data in rows:
                found = texts.setdefault(ticket_id, [])
                if data is not None:  # a ticket row without events would be damage: skipped
                    found.append(data)
            after = rows[-1][0]
            tickets = [_history(found) for found in texts.values() if found]
            if not compiled.exact:
                tickets = [t for t in tickets if condition.matches(t)]
            if tickets:
                yield tickets
            if len(texts) < page:
                return

    def find(self, condition: cd.Condition, *, limit: int | None = None) -> list[Ticket]:
        c.check_condition(condition)
        limit = c.check_limit(limit)
        found: list[Ticket] = []
        if limit == 0:
            return found
        page = 500 if limit is None else min(max(limit, 1), 500)
        for tickets in self._pages(condition, page):
            found.extend(tickets)
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    def stream(self, condition: cd.Condition, *, batch_size: int = 500) -> Iterator[list[Ticket]]:
        c.check_positive(batch_size, "batch_size")
        c.check_condition(condition)
        return self._stream(condition, batch_size)

    def _stream(self, condition: cd.Condition, batch_size: int) -> Iterator[list[Ticket]]:
        pending: list[Ticket] = []
        for tickets in self._pages(condition, batch_size):
            pending.extend(tickets)
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                pending = pending[batch_size:]
        if pending:
            yield pending

    def count(self, condition: cd.Condition) -> int:
        c.check_condition(condition)
        compiled = compile_condition(condition, self._store.dialect)
        if compiled.exact:
            rows = self._query(
                f"SELECT COUNT(*) FROM csm_tickets t WHERE {compiled.sql}", compiled.params
            )
            return int(rows[0][0])
        return sum(len(batch) for batch in self._pages(condition, 500))


class SqlDocuments(_Bound):
    """:class:`~csmcore.storage.protocols.VersionedRepository` over SQL."""

    def __init__(
        self, store: SqlStore, cur: Cursor | None, kind: str, roles: SqlRoles | None = None
    ) -> None:
        super().__init__(store, cur, roles)
        self._kind = kind

    def _latest(self, cur: Cursor, key: str) -> int:
        rows = cur.query(
            "SELECT MAX(version) FROM csm_documents WHERE kind = ? AND key = ?", [self._kind, key]
        )
        return int(rows[0][0] or 0)

    def put(self, key: str, value: Any, *, expected_version: int) -> Versioned[Any]:
        c.check_id(key, "key")
        c.check_version(expected_version)
        data = dump_json(c.encode_document(value))  # ASCII: NUL and surrogates are escaped
        try:
            with self._tx(write=True) as cur:
                latest = self._latest(cur, key)
                if latest != expected_version:
                    raise ConcurrencyError(
                        f"{self._kind} {key!r} is at version {latest}, not the "
                        f"expected_version={expected_version}; reload it and apply your change "
                        "again"
                    )
                cur.run(
                    "INSERT INTO csm_documents (kind, key, version, data) VALUES (?, ?, ?, ?)",
                    [self._kind, key, expected_version + 1, data],
                )
        except StorageError as err:
            if isinstance(err.__cause__, self._store.integrity_errors):
                raise ConcurrencyError(
                    f"{self._kind} {key!r} got a new version from another writer at the same "
                    f"time (expected_version={expected_version}); reload it and apply again"
                ) from err.__cause__
            raise
        return Versioned(key=key, version=expected_version + 1, value=value)

    def get(self, key: str, *, version: int | None = None) -> Versioned[Any]:
        c.check_id(key, "key")
        if version is not None:
            c.check_positive(version, "version")
        if version is None:
            rows = self._query(
                "SELECT version, data FROM csm_documents WHERE kind = ? AND key = ? "
                "ORDER BY version DESC LIMIT 1",
                [self._kind, key],
            )
        else:
            # the version asked for and the latest, in one statement (one snapshot)
            rows = self._query(
                "SELECT version, data FROM csm_documents WHERE kind = ? AND key = ? "
                "AND version IN (?, (SELECT MAX(version) FROM csm_documents "
                "WHERE kind = ? AND key = ?)) ORDER BY version DESC",
                [self._kind, key, min(version, _MAX_INTEGER), self._kind, key],
            )
            if rows and int(rows[-1][0]) != version:
                raise NotFound(
                    f"{self._kind} {key!r} has no version {version}; the latest is {rows[0][0]}"
                )
            rows = rows[-1:]
        if not rows:
            raise NotFound(f"no {self._kind} with key {key!r}")
        number, data = rows[0]
        return Versioned(key=key, version=int(number), value=c.decode_document(json.loads(data)))

    def history(self, key: str) -> list[Versioned[Any]]:
        c.check_id(key, "key")
        rows = self._query(
            "SELECT version, data FROM csm_documents WHERE kind = ? AND key = ? ORDER BY version",
            [self._kind, key],
        )
        return [
            Versioned(key=key, version=int(n), value=c.decode_document(json.loads(d)))
            for n, d in rows
        ]

    def keys(self) -> list[str]:
        rows = self._query(
            "SELECT DISTINCT key FROM csm_documents WHERE kind = ? ORDER BY key", [self._kind]
        )
        return [r[0] for r in rows]
