"""A complete storage adapter over one JSON file: the worked example of the adapter how-to
(docs/howto-adapter.md), shipped so that it can be read, run and copied.

The whole store is one JSON document, ``{"schema_version": 1, "tickets": {id: [event data]},
"documents": {kind: {key: [document]}}}``. Every operation is a *transaction*: an exclusive
``fcntl`` lock on ``<path>.lock``, load, change, and (when the operation succeeds) an atomic
rewrite: a temporary file, ``fsync``, rename. It is small, not fast, and POSIX-only (``fcntl``).

Crash recovery needs nothing more: the kernel releases the lock of a process that dies, however
it dies, so a killed writer blocks nobody; and the file is only ever replaced by a rename, so a
reader sees the whole old file or the whole new one, never half of a write. A temporary file a
crash leaves behind is never read (and removed by the next writer that finds it stale).

Its test, with csmcore's conformance suite::

    import pytest
    from csmcore.storage import register_adapter
    from csmcore.testing.example_adapter import JsonFiles, open_jsonfile
    from csmcore.testing.storage_suite import StorageSuite

    register_adapter("jsonfile", open_jsonfile)  # a package declares an entry point instead

    class TestJsonFileStore(StorageSuite):
        opt_out = {
            "pushdown": "it filters every condition in Python; nothing is selected in the file",
        }
        opener = "csmcore.testing.example_adapter:open_jsonfile"  # for writer processes

        @pytest.fixture
        def store_factory(self, tmp_path):
            return JsonFiles(tmp_path)

>>> import shutil, tempfile
>>> from csmcore.testing.builders import make_ticket
>>> directory = tempfile.mkdtemp()
>>> store = JsonFileStore(f"{directory}/store.json")
>>> store.tickets.add(make_ticket("T-1")).version
1
>>> store.tickets.add(make_ticket("T-1"))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
csmcore.errors.ConcurrencyError: ticket 'T-1' already exists; a new ticket needs a new id, ...
>>> store.close()
>>> shutil.rmtree(directory)
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from csmcore.conditions import Condition
from csmcore.errors import SchemaVersionError, StorageError
from csmcore.storage import Store, Versioned, kit, open_store
from csmcore.storage.base import DocumentRepositoryBase, StoreBase, TicketRepositoryBase
from csmcore.storage.roles import BUILTIN_ROLES, storage_role
from csmcore.tickets import Ticket, TicketEvent

__all__ = ["SCHEMA_VERSION", "JsonFileStore", "JsonFiles", "open_jsonfile"]

T = TypeVar("T")

State = dict[str, Any]
"""The loaded file: {"schema_version": 1, "tickets": {...}, "documents": {...}}."""

SCHEMA_VERSION = 1
"""The layout this adapter writes. A later layout would bump it and migrate older files when
they are opened (in ``_check_schema``)."""


def _io(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, its I/O errors (and a file that is not JSON) raised as StorageError."""
    try:
        return call(*args)
    except (OSError, ValueError) as err:
        raise StorageError(f"{type(err).__name__}: {err}") from err


def _check_schema(path: str, state: State) -> State:
    """``state`` if this adapter can read it, else SchemaVersionError (the file is not touched)."""
    version = state.get("schema_version") if isinstance(state, dict) else None
    if not isinstance(version, int):
        raise SchemaVersionError(
            f"{path} records no schema_version; it was not written by the jsonfile adapter, so "
            "it is left untouched"
        )
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path} has schema version {version}, written by a newer jsonfile adapter; this one "
            f"knows versions up to {SCHEMA_VERSION}. Upgrade it to open the file (nothing was "
            "changed)"
        )
    return state


def _ticket(events: list[Any]) -> Ticket:
    return Ticket.from_events(kit.decode_event(e) for e in events)


class _Unit:
    """One unit of work: the state it changes, and whether it is still open."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.thread = threading.get_ident()
        self.open = True


class _Tickets(TicketRepositoryBase):
    """The ``tickets`` role. The base class checks every argument (with the messages the
    conformance suite expects) before it calls these primitives."""

    def __init__(self, store: JsonFileStore, unit: _Unit | None) -> None:
        self._store, self._unit = store, unit

    def _add_many(self, tickets: list[Ticket]) -> int:
        with self._store.transaction(self._unit) as state:
            added: dict[str, list[Any]] = {}
            for ticket in tickets:
                if ticket.id in state["tickets"] or ticket.id in added:
                    raise kit.ticket_exists(ticket.id)  # nothing was changed yet
                added[ticket.id] = [kit.encode_event(e) for e in ticket.events]
            state["tickets"].update(added)
        return len(tickets)

    def _get(self, ticket_id: str) -> Ticket:
        with self._store.transaction(self._unit) as state:
            events = state["tickets"].get(ticket_id)
        if events is None:
            raise kit.no_ticket(ticket_id)
        return _ticket(events)

    def _append(
        self, ticket_id: str, events: tuple[TicketEvent, ...], expected_version: int
    ) -> Ticket:
        with self._store.transaction(self._unit) as state:
            stored = state["tickets"].get(ticket_id)
            if stored is None:
                raise kit.no_ticket(ticket_id)
            kit.check_expected(ticket_id, len(stored), expected_version)
            updated = kit.apply_all(_ticket(stored), events)  # InvalidTransition: no write
            state["tickets"][ticket_id] = stored + [kit.encode_event(e) for e in events]
        return updated

    def _matching(self, condition: Condition) -> list[Ticket]:
        with self._store.transaction(self._unit) as state:
            rows = sorted(state["tickets"].items())  # id order: Python's str order
        return [t for t in (_ticket(events) for _, events in rows) if condition.matches(t)]

    def _find(self, condition: Condition, limit: int | None) -> list[Ticket]:
        found = self._matching(condition)
        return found if limit is None else found[:limit]

    def _stream(self, condition: Condition, batch_size: int) -> Iterator[list[Ticket]]:
        found = self._matching(condition)
        return iter([found[i : i + batch_size] for i in range(0, len(found), batch_size)])

    def _count(self, condition: Condition) -> int:
        return len(self._matching(condition))


class _Documents(DocumentRepositoryBase[Any]):
    """One document role; ``role`` tells the base class which values ``put`` accepts."""

    def __init__(self, store: JsonFileStore, unit: _Unit | None, kind: str) -> None:
        self._store, self._unit, self._kind = store, unit, kind
        self.role = storage_role(kind)  # policies refuse a calendar, and so on

    def _put(self, key: str, value: Any, expected_version: int) -> Versioned[Any]:
        doc = kit.encode_document(value)
        with self._store.transaction(self._unit) as state:
            versions = state["documents"].setdefault(self._kind, {}).setdefault(key, [])
            kit.check_expected(key, len(versions), expected_version, kind=self._kind)
            versions.append(doc)
        return Versioned(key=key, version=expected_version + 1, value=value)

    def _versions(self, key: str) -> list[Any]:
        with self._store.transaction(self._unit) as state:
            return list(state["documents"].get(self._kind, {}).get(key, []))

    def _get(self, key: str, version: int | None) -> Versioned[Any]:
        versions = self._versions(key)
        number = len(versions) if version is None else version
        if not versions or number > len(versions):
            raise kit.no_document(self._kind, key, version, latest=len(versions))
        return Versioned(key=key, version=number, value=kit.decode_document(versions[number - 1]))

    def _history(self, key: str) -> list[Versioned[Any]]:
        return [
            Versioned(key=key, version=n, value=kit.decode_document(d))
            for n, d in enumerate(self._versions(key), 1)
        ]

    def _keys(self) -> list[str]:
        with self._store.transaction(self._unit) as state:
            return sorted(k for k, v in state["documents"].get(self._kind, {}).items() if v)


class _Roles:
    roles = BUILTIN_ROLES
    """The roles this store (and its units of work) offer: the four required ones."""

    def __init__(self, store: JsonFileStore, unit: _Unit | None) -> None:
        self.tickets = _Tickets(store, unit)
        self.calendars = _Documents(store, unit, "calendars")
        self.policies = _Documents(store, unit, "policies")
        self.rules = _Documents(store, unit, "rules")


class JsonFileStore(_Roles, StoreBase):
    """A csmcore store in one JSON file (``jsonfile:///path/to/store.json``).

    Raises :class:`~csmcore.errors.SchemaVersionError` when the file was written by a newer
    version of the adapter (or not by it), :class:`~csmcore.errors.StorageError` when it cannot
    be read or written."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._uow_thread: int | None = None
        self._closed = False
        super().__init__(self, None)
        if os.path.exists(path):
            with self._locked(write=False):  # refuse a file this adapter cannot read, at once
                pass

    @property
    def url(self) -> str:
        return f"jsonfile:///{self.path}"

    @contextmanager
    def transaction(self, unit: _Unit | None) -> Iterator[State]:
        """Inside a unit of work: its state (StorageError once it has ended). Otherwise: a new
        transaction for one operation."""
        if unit is not None:
            if not unit.open or unit.thread != threading.get_ident():
                raise StorageError("this unit of work has ended; open a new one")
            yield unit.state
            return
        if self._uow_thread == threading.get_ident():
            raise StorageError(
                "a unit of work is open on this store in this thread; "
                "write through its roles (uow.tickets, ...) instead"
            )
        with self._locked() as state:
            yield state

    @contextmanager
    def _locked(self, *, write: bool = True) -> Iterator[State]:
        """Exclusive access to the file: load it, yield it, write it back if no exception."""
        if self._closed:
            raise StorageError(f"the store {self.url} is closed")
        with self._lock, _io(open, f"{self.path}.lock", "a") as lock:
            # the kernel releases the lock when the file is closed or the process dies
            _io(fcntl.flock, lock, fcntl.LOCK_EX)
            state = _check_schema(self.path, _io(self._load))
            yield state
            if write:
                _io(self._save, state)

    def _load(self) -> State:
        try:
            with open(self.path, encoding="utf-8") as f:
                state: State = json.load(f)
                return state
        except FileNotFoundError:
            return {"schema_version": SCHEMA_VERSION, "tickets": {}, "documents": {}}

    def _save(self, state: State) -> None:
        temporary = f"{self.path}.{uuid.uuid4().hex}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            json.dump(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)  # atomic: readers see the old or the new file
        for stale in glob.glob(f"{glob.escape(self.path)}.*.tmp"):
            if os.path.getmtime(stale) < time.time() - 3600:  # left by a crashed writer
                os.remove(stale)

    @contextmanager
    def unit_of_work(self) -> Iterator[_Roles]:
        """One transaction for the whole block: the lock is held until it ends, and the file is
        written only when it ends without an exception."""
        with self._locked() as state:
            unit = _Unit(state)
            self._uow_thread = unit.thread
            try:
                yield _Roles(self, unit)
            finally:
                unit.open = False  # its roles refuse from now on
                self._uow_thread = None

    def close(self) -> None:
        self._closed = True


def open_jsonfile(url: str) -> JsonFileStore:
    """The opener for the ``jsonfile`` scheme (``jsonfile:///path/to/store.json``)."""
    return JsonFileStore(url.removeprefix("jsonfile:///"))


class JsonFiles:
    """The test factory: builds fresh jsonfile stores in ``directory`` (the scheme must be
    registered). Its other methods are the conformance suite's hooks (``SchemaAccess``,
    ``BackendFaults``): they edit the files directly, without the adapter."""

    schema_version = SCHEMA_VERSION

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self) -> Store:
        return open_store(f"jsonfile:///{self.directory / uuid.uuid4().hex}.json")

    @staticmethod
    def edit(url: str, change: Callable[[State], None]) -> None:
        """Load the file of the store at ``url``, let ``change`` change it, write it back."""
        path = Path(url.removeprefix("jsonfile:///"))
        state = json.loads(path.read_text(encoding="utf-8"))
        change(state)
        path.write_text(json.dumps(state), encoding="utf-8")

    def read_schema_version(self, url: str) -> int | None:
        found: list[int | None] = []
        self.edit(url, lambda state: found.append(state.get("schema_version")))
        return found[0]

    def write_schema_version(self, url: str, version: int | None) -> None:
        def change(state: State) -> None:
            state.pop("schema_version", None)
            if version is not None:
                state["schema_version"] = version

        self.edit(url, change)

    def schema_layout(self, url: str) -> tuple[str, ...]:
        """The file's top-level keys."""
        keys: list[str] = []
        self.edit(url, lambda state: keys.extend(sorted(state)))
        return tuple(keys)

    def unreachable_url(self) -> str:
        return f"jsonfile:///{self.directory / 'no-such-directory' / 'store.json'}"

    def break_backend(self, url: str) -> None:
        path = url.removeprefix("jsonfile:///")
        os.remove(path)
        os.mkdir(path)  # reading the "file" now fails with IsADirectoryError
