"""``dictstore://``: a third-party csmcore storage adapter, written from csmcore's documentation.

It was written from docs/howto-adapter.md, docs/storage.md, docs/loyalty.md and the public
docstrings of ``csmcore.storage`` (``protocols``, ``base``, ``kit``, ``roles``, ``ledger``),
without reading csmcore's own stores, and is proved with the shipped conformance suite in
``test_dictstore.py`` next to it, as an integrator would.

The backend is a toy key-value server living in this process: tables of UTF-8 JSON bytes
(what a real key-value store would hold) behind one lock. ``dictstore://NAME`` opens the
backend called NAME (created, empty, on first use), so two ``open_store`` of the same URL are
two handles on the same data, as two connections to a server would be; the data lives as long
as the process. Every call works on a copy of the tables and publishes it when it succeeds (a
transaction); a unit of work holds the lock for its whole block and publishes once at the end.

The store offers the four required roles and the optional ``ledger``, ``firings`` and
``outbox`` roles, on the store and inside its units of work.
"""

from __future__ import annotations

import bisect
import builtins
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import attrs

from csmcore.conditions import Condition
from csmcore.errors import CsmError, NotFound, SchemaVersionError, StorageError, ValidationError
from csmcore.escalation import FiringKey
from csmcore.loyalty import LedgerEntry, LedgerState
from csmcore.storage import kit
from csmcore.storage.base import (
    DocumentRepositoryBase,
    FiringRepositoryBase,
    OutboxRepositoryBase,
    StoreBase,
    TicketRepositoryBase,
    updated_message,
)
from csmcore.storage.ledger import apply_new, check_plan
from csmcore.storage.protocols import (
    FiringRecord,
    OutboxMessage,
    OutboxState,
    TicketPlan,
    Versioned,
)
from csmcore.storage.roles import storage_role
from csmcore.tickets import Ticket, TicketEvent

SCHEME = "dictstore"
SCHEMA_VERSION = 1
R = TypeVar("R")


class BackendError(OSError):
    """What the toy backend raises, as a driver would (csmcore never sees it untranslated)."""


def _dump(data: Any) -> bytes:
    # ASCII JSON: NUL and lone surrogates inside documents are escaped and come back exactly
    return json.dumps(data, separators=(",", ":")).encode("ascii")


def _load(raw: bytes) -> Any:
    return json.loads(raw)


class _Tables:
    """One snapshot of the backend's tables. Values are immutable (bytes, tuples of bytes)."""

    def __init__(self) -> None:
        self.tickets: dict[str, tuple[bytes, ...]] = {}  # id -> events, in order
        self.ids: list[str] = []  # the ticket ids, sorted (Python's str order)
        self.documents: dict[str, dict[str, tuple[bytes, ...]]] = {}  # kind -> key -> versions
        self.ledger: dict[str, tuple[bytes, ...]] = {}  # member -> entries, in seq order
        self.firings: dict[str, tuple[str, bytes]] = {}  # key_text -> (ticket id, record)
        self.plans: dict[str, bytes] = {}  # ticket id -> plan
        self.outbox: dict[str, bytes] = {}  # key -> message

    def copy(self) -> _Tables:
        other = _Tables()
        other.tickets = dict(self.tickets)
        other.ids = list(self.ids)
        other.documents = {kind: dict(keys) for kind, keys in self.documents.items()}
        other.ledger = dict(self.ledger)
        other.firings = dict(self.firings)
        other.plans = dict(self.plans)
        other.outbox = dict(self.outbox)
        return other


class _Backend:
    """The data behind one dictstore URL, shared by every handle opened on it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holder: int | None = None  # the thread holding the lock
        self._tables = _Tables()
        self.schema_version: int | None = SCHEMA_VERSION
        self.broken = False
        self.refused_entries: set[tuple[str, int]] = set()  # (member, seq) the server refuses
        self.decoded = _Decoded()

    def check_entry(self, member_id: str, seq: int) -> None:
        """What the server does when it is sent a ledger entry: refuse the ones it must."""
        if (member_id, seq) in self.refused_entries:
            raise BackendError(f"dictstore backend: entry {seq} of {member_id!r} refused")

    @property
    def tables(self) -> _Tables:
        if self.broken:
            raise BackendError("dictstore backend: the tables are gone")
        return self._tables

    @tables.setter
    def tables(self, tables: _Tables) -> None:
        if self.broken:
            raise BackendError("dictstore backend: the tables are gone")
        self._tables = tables

    @contextmanager
    def locked(self) -> Iterator[None]:
        if self.holder == threading.get_ident():
            raise StorageError(
                "a unit of work is open on this dictstore in this thread; use its roles "
                "(uow.tickets, ...) until it ends"
            )
        with self.lock:
            self.holder = threading.get_ident()
            try:
                yield
            finally:
                self.holder = None


_BACKENDS: dict[str, _Backend] = {}
_BACKENDS_LOCK = threading.Lock()
UNREACHABLE_PREFIX = "down."  # dictstore://down.NAME stands for a server that refuses connections


def backend_of(url: str) -> _Backend:
    """The backend behind ``url`` (for the suite's hooks, which go behind the adapter's back)."""
    return _BACKENDS[_name(url)]


def _name(url: str) -> str:
    prefix = f"{SCHEME}://"
    if not isinstance(url, str) or not url.startswith(prefix) or not url[len(prefix) :]:
        raise ValidationError(f"url={url!r} is not a dictstore URL; expected dictstore://NAME")
    return url[len(prefix) :]


def open_dictstore(url: str) -> DictStore:
    """The opener registered for ``dictstore://`` (an entry point in a distributed package)."""
    name = _name(url)
    try:
        if name.startswith(UNREACHABLE_PREFIX):
            raise ConnectionRefusedError(f"dictstore server {name!r} refused the connection")
        with _BACKENDS_LOCK:
            backend = _BACKENDS.setdefault(name, _Backend())
    except OSError as err:
        raise StorageError(f"cannot open {url!r}: {err}") from err
    recorded = backend.schema_version
    if recorded is None:
        raise SchemaVersionError(
            f"{url!r} records no schema version; it was not written by this dictstore adapter"
        )
    if recorded > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{url!r} has schema version {recorded}, newer than this adapter's "
            f"{SCHEMA_VERSION}; upgrade the adapter to open it"
        )
    return DictStore(url, backend)


class _Unit:
    def __init__(self, tables: _Tables) -> None:
        self.tables, self.thread, self.open = tables, threading.get_ident(), True


class DictStore(StoreBase):
    """A store over a dictstore backend."""

    roles = StoreBase.roles | {"ledger", "firings", "outbox"}

    def __init__(self, url: str, backend: _Backend) -> None:
        self._url, self._backend, self._closed = url, backend, False
        self.tickets = _Tickets(self, None)
        self.calendars = _Documents(self, None, "calendars")
        self.policies = _Documents(self, None, "policies")
        self.rules = _Documents(self, None, "rules")
        self.ledger = _Ledger(self, None)
        self.firings = _Firings(self, None)
        self.outbox = _Outbox(self, None)

    @property
    def url(self) -> str:
        return self._url

    def __repr__(self) -> str:
        return f"DictStore({self._url!r})"

    def translate_error(self, err: BaseException) -> CsmError | None:
        if isinstance(err, BackendError):
            return StorageError(f"the dictstore backend of {self._url!r} failed: {err}")
        return None

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"{self._url!r} is closed; open it again with open_store")

    @contextmanager
    def transaction(self, unit: _Unit | None) -> Iterator[_Tables]:
        """The tables to read and change in one call; published when the call succeeds."""
        self._check_open()
        if unit is not None:
            if not unit.open or unit.thread != threading.get_ident():
                raise StorageError("this unit of work has ended; open a new one")
            work = unit.tables.copy()  # a savepoint: a failed call is undone on its own
            yield work
            unit.tables = work
            return
        with self._backend.locked():
            work = self._backend.tables.copy()
            yield work
            self._backend.tables = work

    @contextmanager
    def unit_of_work(self) -> Iterator[_Roles]:
        self._check_open()
        with self._backend.locked():
            try:
                unit = _Unit(self._backend.tables.copy())
            except BackendError as err:
                raise StorageError(f"cannot start a unit of work on {self._url!r}: {err}") from err
            try:
                yield _Roles(self, unit)
            finally:
                unit.open = False  # its roles refuse from now on
            try:  # reached only when the block ended normally
                self._backend.tables = unit.tables
            except BackendError as err:
                raise StorageError(f"the unit of work on {self._url!r} failed: {err}") from err

    def close(self) -> None:
        self._closed = True


class _Roles:
    """The roles of one unit of work."""

    roles = DictStore.roles

    def __init__(self, store: DictStore, unit: _Unit) -> None:
        self.tickets = _Tickets(store, unit)
        self.calendars = _Documents(store, unit, "calendars")
        self.policies = _Documents(store, unit, "policies")
        self.rules = _Documents(store, unit, "rules")
        self.ledger = _Ledger(store, unit)
        self.firings = _Firings(store, unit)
        self.outbox = _Outbox(store, unit)


# -- tickets ----------------------------------------------------------------------------------


def _ticket(history: tuple[bytes, ...]) -> Ticket:
    return Ticket.from_events(kit.decode_event(_load(raw)) for raw in history)


class _Decoded:
    """Tickets decoded from histories, by id: a history is an immutable tuple shared by every
    copy of the tables, so a cached ticket is valid while its id still holds that very tuple."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[bytes, ...], Ticket]] = {}

    def ticket(self, ticket_id: str, history: tuple[bytes, ...]) -> Ticket:
        found = self._cache.get(ticket_id)
        if found is not None and found[0] is history:
            return found[1]
        ticket = _ticket(history)
        self._cache[ticket_id] = (history, ticket)
        return ticket


class _Tickets(TicketRepositoryBase):
    def __init__(self, store: DictStore, unit: _Unit | None) -> None:
        self._store, self._unit = store, unit

    def _add_many(self, tickets: list[Ticket]) -> int:
        with self._store.transaction(self._unit) as tables:
            added: dict[str, tuple[bytes, ...]] = {}
            for ticket in tickets:
                if ticket.id in tables.tickets or ticket.id in added:
                    raise kit.ticket_exists(ticket.id)
                added[ticket.id] = tuple(_dump(kit.encode_event(e)) for e in ticket.events)
            tables.tickets.update(added)
            for ticket_id in added:
                bisect.insort(tables.ids, ticket_id)
        return len(tickets)

    def _get(self, ticket_id: str) -> Ticket:
        with self._store.transaction(self._unit) as tables:
            history = tables.tickets.get(ticket_id)
        if history is None:
            raise kit.no_ticket(ticket_id)
        return self._store._backend.decoded.ticket(ticket_id, history)

    def _append(
        self, ticket_id: str, events: tuple[TicketEvent, ...], expected_version: int
    ) -> Ticket:
        with self._store.transaction(self._unit) as tables:
            history = tables.tickets.get(ticket_id)
            if history is None:
                raise kit.no_ticket(ticket_id)
            kit.check_expected(ticket_id, len(history), expected_version)
            updated = kit.apply_all(self._store._backend.decoded.ticket(ticket_id, history), events)
            tables.tickets[ticket_id] = history + tuple(_dump(kit.encode_event(e)) for e in events)
        return updated

    def _page(self, condition: Condition, after: str | None, size: int | None) -> list[Ticket]:
        """Matching tickets with ids after ``after``, at most ``size``, from one snapshot."""
        with self._store.transaction(self._unit) as tables:
            start = 0 if after is None else bisect.bisect_right(tables.ids, after)
            found: list[Ticket] = []
            decoded = self._store._backend.decoded
            for ticket_id in tables.ids[start:]:
                ticket = decoded.ticket(ticket_id, tables.tickets[ticket_id])
                if condition.matches(ticket):
                    found.append(ticket)
                    if size is not None and len(found) >= size:
                        break
        return found

    def _find(self, condition: Condition, limit: int | None) -> list[Ticket]:
        return self._page(condition, None, limit)

    def _stream(self, condition: Condition, batch_size: int) -> Iterator[list[Ticket]]:
        after: str | None = None
        while True:
            page = self._page(condition, after, batch_size)
            if page:
                yield page
            if len(page) < batch_size:
                return
            after = page[-1].id

    def _count(self, condition: Condition) -> int:
        return len(self._page(condition, None, None))


# -- documents --------------------------------------------------------------------------------


class _Documents(DocumentRepositoryBase[Any]):
    def __init__(self, store: DictStore, unit: _Unit | None, kind: str) -> None:
        self._store, self._unit, self._kind = store, unit, kind
        self.role = storage_role(kind)

    def _put(self, key: str, value: Any, expected_version: int) -> Versioned[Any]:
        raw = _dump(kit.encode_document(value))
        with self._store.transaction(self._unit) as tables:
            keys = tables.documents.setdefault(self._kind, {})
            versions = keys.get(key, ())
            kit.check_expected(key, len(versions), expected_version, kind=self._kind)
            keys[key] = (*versions, raw)
        return Versioned(key=key, version=expected_version + 1, value=value)

    def _versions(self, key: str) -> tuple[bytes, ...]:
        with self._store.transaction(self._unit) as tables:
            return tables.documents.get(self._kind, {}).get(key, ())

    def _get(self, key: str, version: int | None) -> Versioned[Any]:
        versions = self._versions(key)
        if not versions:
            raise kit.no_document(self._kind, key)
        if version is None:
            version = len(versions)
        elif version > len(versions):
            raise kit.no_document(self._kind, key, version, latest=len(versions))
        value = kit.decode_document(_load(versions[version - 1]))
        return Versioned(key=key, version=version, value=value)

    def _history(self, key: str) -> list[Versioned[Any]]:
        return [
            Versioned(key=key, version=n, value=kit.decode_document(_load(raw)))
            for n, raw in enumerate(self._versions(key), start=1)
        ]

    def _keys(self) -> list[str]:
        with self._store.transaction(self._unit) as tables:
            return sorted(k for k, v in tables.documents.get(self._kind, {}).items() if v)


# -- ledger (no base class: it checks its own arguments and translates its own errors) --------


class _Ledger:
    def __init__(self, store: DictStore, unit: _Unit | None) -> None:
        self._store, self._unit = store, unit

    @staticmethod
    def _member(tables: _Tables, member_id: str) -> LedgerState:
        entries = tables.ledger.get(member_id, ())
        return LedgerState.replay(member_id, (kit.decode_document(_load(e)) for e in entries))

    def _translated(self, err: BackendError) -> CsmError:
        translation = self._store.translate_error(err)
        assert translation is not None
        return translation

    def read(self, member_id: str, view: Callable[[LedgerState], R]) -> R:
        kit.check_id(member_id, "member_id")
        try:
            with self._store.transaction(self._unit) as tables:
                state = self._member(tables, member_id)
        except BackendError as err:
            raise self._translated(err) from err
        return view(state)

    def write(
        self, member_ids: Sequence[str], plan: Callable[[dict[str, LedgerState]], Any]
    ) -> builtins.list[LedgerEntry]:
        ids = [kit.check_id(m, "member_id") for m in member_ids]
        try:
            with self._store.transaction(self._unit) as tables:  # nobody appends meanwhile
                states = {m: self._member(tables, m) for m in ids}
                entries = check_plan(ids, states, plan(states))  # plan raises: nothing written
                apply_new(states, entries)  # an entry that does not fit: nothing written
                for entry in entries:
                    self._store._backend.check_entry(entry.member_id, entry.seq)
                    kept = tables.ledger.get(entry.member_id, ())
                    tables.ledger[entry.member_id] = (*kept, _dump(kit.encode_document(entry)))
        except BackendError as err:
            raise self._translated(err) from err
        return entries

    def members(self) -> builtins.list[str]:
        try:
            with self._store.transaction(self._unit) as tables:
                return sorted(m for m, entries in tables.ledger.items() if entries)
        except BackendError as err:
            raise self._translated(err) from err


# -- firings ----------------------------------------------------------------------------------


def _record(raw: bytes) -> FiringRecord:
    record = kit.decode_document(_load(raw))
    assert isinstance(record, FiringRecord)
    return record


def _plan(raw: bytes) -> TicketPlan:
    plan = kit.decode_document(_load(raw))
    assert isinstance(plan, TicketPlan)
    return plan


class _Firings(FiringRepositoryBase):
    def __init__(self, store: DictStore, unit: _Unit | None) -> None:
        self._store, self._unit = store, unit

    def _record(self, record: FiringRecord) -> bool:
        raw = _dump(kit.encode_document(record))
        with self._store.transaction(self._unit) as tables:
            key_text = record.firing.key_text
            if key_text in tables.firings:
                return False
            tables.firings[key_text] = (record.firing.ticket_id, raw)
        return True

    def _keys(self, ticket_id: str) -> frozenset[FiringKey]:
        with self._store.transaction(self._unit) as tables:
            rows = [raw for owner, raw in tables.firings.values() if owner == ticket_id]
        return frozenset(_record(raw).key for raw in rows)

    def _list(self, ticket_id: str | None, limit: int | None) -> builtins.list[FiringRecord]:
        with self._store.transaction(self._unit) as tables:
            rows = [raw for owner, raw in tables.firings.values() if ticket_id in (None, owner)]
        records = sorted(
            (_record(raw) for raw in rows), key=lambda r: (r.firing.at, r.firing.key_text)
        )
        return records if limit is None else records[:limit]

    def _plan(self, plan: TicketPlan) -> None:
        raw = _dump(kit.encode_document(plan))
        with self._store.transaction(self._unit) as tables:  # compare and write: one step
            stored = tables.plans.get(plan.ticket_id)
            if stored is not None and _plan(stored).version > plan.version:
                return  # a plan from a newer version of the ticket stays
            tables.plans[plan.ticket_id] = raw

    def _planned(self, ticket_id: str) -> TicketPlan | None:
        with self._store.transaction(self._unit) as tables:
            raw = tables.plans.get(ticket_id)
        return None if raw is None else _plan(raw)

    def _scheduled(self) -> builtins.list[TicketPlan]:
        with self._store.transaction(self._unit) as tables:
            rows = list(tables.plans.values())
        plans = [_plan(raw) for raw in rows]
        return sorted(
            (p for p in plans if p.next_due is not None),
            key=lambda p: (p.next_due, p.ticket_id),
        )

    def _due(self, at: datetime, limit: int | None) -> builtins.list[TicketPlan]:
        due = [p for p in self._scheduled() if p.next_due is not None and p.next_due <= at]
        return due if limit is None else due[:limit]

    def _next_due(self) -> datetime | None:
        scheduled = self._scheduled()
        return scheduled[0].next_due if scheduled else None


# -- outbox -----------------------------------------------------------------------------------


def _message(raw: bytes) -> OutboxMessage:
    message = kit.decode_document(_load(raw))
    assert isinstance(message, OutboxMessage)
    return message


def _no_message(key: str) -> NotFound:
    return NotFound(f"no outbox message with key {key!r}")


class _Outbox(OutboxRepositoryBase):
    def __init__(self, store: DictStore, unit: _Unit | None) -> None:
        self._store, self._unit = store, unit

    def _put(self, messages: builtins.list[OutboxMessage]) -> int:
        rows = [(m.key, _dump(kit.encode_document(m))) for m in messages]
        with self._store.transaction(self._unit) as tables:
            new = 0
            for key, raw in rows:
                if key not in tables.outbox:
                    tables.outbox[key] = raw
                    new += 1
        return new

    def _all(self) -> builtins.list[OutboxMessage]:
        with self._store.transaction(self._unit) as tables:
            rows = list(tables.outbox.values())
        return [_message(raw) for raw in rows]

    def _due(self, at: datetime, limit: int) -> builtins.list[OutboxMessage]:
        due = [m for m in self._all() if m.state is OutboxState.PENDING and m.next_attempt_at <= at]
        due.sort(key=lambda m: (m.next_attempt_at, m.key))
        return due[:limit]

    def _claim(self, key: str, attempts: int, until: datetime) -> bool:
        with self._store.transaction(self._unit) as tables:
            raw = tables.outbox.get(key)
            if raw is None:
                raise _no_message(key)
            message = _message(raw)
            if message.state is not OutboxState.PENDING or message.attempts != attempts:
                return False
            claimed = updated_message(message, OutboxState.PENDING, until, None, None)
            claimed = _with_attempts(claimed, attempts + 1)
            tables.outbox[key] = _dump(kit.encode_document(claimed))
        return True

    def _update(
        self,
        key: str,
        state: OutboxState,
        next_attempt_at: datetime | None,
        delivered_at: datetime | None,
        error: str | None,
    ) -> None:
        with self._store.transaction(self._unit) as tables:
            raw = tables.outbox.get(key)
            if raw is None:
                raise _no_message(key)
            message = updated_message(_message(raw), state, next_attempt_at, delivered_at, error)
            tables.outbox[key] = _dump(kit.encode_document(message))

    def _get(self, key: str) -> OutboxMessage:
        with self._store.transaction(self._unit) as tables:
            raw = tables.outbox.get(key)
        if raw is None:
            raise _no_message(key)
        return _message(raw)

    def _list(self, state: OutboxState | None, limit: int | None) -> builtins.list[OutboxMessage]:
        found = [m for m in self._all() if state is None or m.state is state]
        found.sort(key=lambda m: (m.created_at, m.key))
        return found if limit is None else found[:limit]


def _with_attempts(message: OutboxMessage, attempts: int) -> OutboxMessage:
    return attrs.evolve(message, attempts=attempts)
