"""The worked example of docs/howto-adapter.md: a complete adapter over one JSON file, proved
with the public conformance suite exactly as a third-party author would.

The whole store is one JSON document, rewritten atomically (temporary file, fsync, rename) on
every commit, with an exclusive ``fcntl`` lock held for each transaction so that several
handles on the same file never lose each other's writes. The document records the version of
its layout, and a file written by a newer version of the adapter is refused. It is small, not
fast.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest

from csmcore.conditions import Condition
from csmcore.errors import (
    ConcurrencyError,
    NotFound,
    SchemaVersionError,
    StorageError,
)
from csmcore.serialization import from_data
from csmcore.storage import Store, Versioned, kit, open_store, register_adapter
from csmcore.storage.base import DocumentRepositoryBase, StoreBase, TicketRepositoryBase
from csmcore.storage.roles import BUILTIN_ROLES, storage_role
from csmcore.testing.builders import T0, make_comment, make_ticket
from csmcore.testing.storage_suite import StorageSuite, StoreFactory
from csmcore.tickets import Ticket, TicketEvent, TicketEventBase

# -- the adapter ------------------------------------------------------------------------------

T = TypeVar("T")


def _io(call: Callable[..., T], *args: Any) -> T:
    """``call(*args)``, its I/O errors (and a file that is not JSON) raised as StorageError."""
    try:
        return call(*args)
    except (OSError, ValueError) as err:
        raise StorageError(f"{type(err).__name__}: {err}") from err


State = dict[str, Any]
"""{"schema_version": 1, "tickets": {id: [event data]}, "documents": {kind: {key: [doc]}}}"""

SCHEMA_VERSION = 1
"""The layout this adapter writes. A later layout would bump it and migrate older files when
they are opened (in ``_check_schema``)."""


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
    return Ticket.from_events(from_data(e, TicketEventBase) for e in events)  # type: ignore[misc]


class _Tickets(TicketRepositoryBase):
    """The ``tickets`` role. The base class checks every argument (with the messages the
    conformance suite expects) before it calls these primitives."""

    def __init__(self, store: JsonFileStore, state: State | None) -> None:
        self._store, self._state = store, state

    def _add_many(self, tickets: list[Ticket]) -> int:
        with self._store.transaction(self._state) as state:
            for ticket in tickets:
                if ticket.id in state["tickets"]:
                    raise ConcurrencyError(f"ticket {ticket.id!r} already exists")
                state["tickets"][ticket.id] = [kit.encode_event(e) for e in ticket.events]
        return len(tickets)

    def _get(self, ticket_id: str) -> Ticket:
        with self._store.transaction(self._state) as state:
            events = state["tickets"].get(ticket_id)
        if events is None:
            raise NotFound(f"no ticket with id {ticket_id!r}")
        return _ticket(events)

    def _append(
        self, ticket_id: str, events: tuple[TicketEvent, ...], expected_version: int
    ) -> Ticket:
        with self._store.transaction(self._state) as state:
            stored = state["tickets"].get(ticket_id)
            if stored is None:
                raise NotFound(f"no ticket with id {ticket_id!r}")
            kit.check_expected(ticket_id, len(stored), expected_version)
            updated = kit.apply_all(_ticket(stored), events)
            state["tickets"][ticket_id] = stored + [kit.encode_event(e) for e in events]
        return updated

    def _matching(self, condition: Condition) -> list[Ticket]:
        with self._store.transaction(self._state) as state:
            rows = sorted(state["tickets"].items())
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

    def __init__(self, store: JsonFileStore, state: State | None, kind: str) -> None:
        self._store, self._state, self._kind = store, state, kind
        self.role = storage_role(kind)

    def _put(self, key: str, value: Any, expected_version: int) -> Versioned[Any]:
        doc = kit.encode_document(value)
        with self._store.transaction(self._state) as state:
            versions = state["documents"].setdefault(self._kind, {}).setdefault(key, [])
            if len(versions) != expected_version:
                raise ConcurrencyError(
                    f"{self._kind} {key!r} is at version {len(versions)}, not the "
                    f"expected_version={expected_version}"
                )
            versions.append(doc)
        return Versioned(key=key, version=expected_version + 1, value=value)

    def _versions(self, key: str) -> list[Any]:
        with self._store.transaction(self._state) as state:
            return list(state["documents"].get(self._kind, {}).get(key, []))

    def _get(self, key: str, version: int | None) -> Versioned[Any]:
        versions = self._versions(key)
        if not versions:
            raise NotFound(f"no {self._kind} with key {key!r}")
        number = len(versions) if version is None else version
        if number > len(versions):
            raise NotFound(f"{self._kind} {key!r} has no version {version}")
        return Versioned(key=key, version=number, value=kit.decode_document(versions[number - 1]))

    def _history(self, key: str) -> list[Versioned[Any]]:
        return [
            Versioned(key=key, version=n, value=kit.decode_document(d))
            for n, d in enumerate(self._versions(key), 1)
        ]

    def _keys(self) -> list[str]:
        with self._store.transaction(self._state) as state:
            return sorted(k for k, v in state["documents"].get(self._kind, {}).items() if v)


class _Roles:
    roles = BUILTIN_ROLES
    """The roles this store (and its units of work) offer: the four required ones."""

    def __init__(self, store: JsonFileStore, state: State | None) -> None:
        self.tickets = _Tickets(store, state)
        self.calendars = _Documents(store, state, "calendars")
        self.policies = _Documents(store, state, "policies")
        self.rules = _Documents(store, state, "rules")


class JsonFileStore(_Roles, StoreBase):
    """A csmcore store in one JSON file (``jsonfile:///path/to/store.json``)."""

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
    def transaction(self, state: State | None) -> Iterator[State]:
        """Inside a unit of work: its state. Otherwise: a new transaction (one operation)."""
        if state is not None:
            if self._uow_thread != threading.get_ident():
                raise StorageError("this unit of work has ended; open a new one")
            yield state
            return
        if self._uow_thread == threading.get_ident():
            raise StorageError("a unit of work is open on this store in this thread")
        with self._locked() as state:
            yield state

    @contextmanager
    def _locked(self, *, write: bool = True) -> Iterator[State]:
        """Exclusive access to the file: load it, yield it, write it back if no exception."""
        if self._closed:
            raise StorageError(f"the store {self.url} is closed")
        with self._lock, _io(open, f"{self.path}.lock", "a") as lock:
            _io(fcntl.flock, lock, fcntl.LOCK_EX)  # released when the lock file is closed
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
        os.replace(temporary, self.path)

    @contextmanager
    def unit_of_work(self) -> Iterator[_Roles]:
        with self._locked() as state:
            self._uow_thread = threading.get_ident()
            try:
                yield _Roles(self, state)
            finally:
                self._uow_thread = None

    def close(self) -> None:
        self._closed = True


def open_jsonfile(url: str) -> JsonFileStore:
    """The opener registered for the ``jsonfile`` scheme."""
    return JsonFileStore(url.removeprefix("jsonfile:///"))


# -- proving it -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _register_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    # A distributed adapter declares an entry point instead:
    #   [project.entry-points."csmcore.storage"]
    #   jsonfile = "my_package.jsonfile:open_jsonfile"
    import csmcore.storage

    monkeypatch.setattr(csmcore.storage, "_registered", {})
    register_adapter("jsonfile", open_jsonfile)


class JsonFiles:
    """Builds fresh jsonfile stores in ``directory``. Its other methods are the suite's hooks
    (``SchemaAccess``, ``BackendFaults``): they edit the files directly, without the adapter."""

    schema_version = SCHEMA_VERSION

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self) -> Store:
        return open_store(f"jsonfile:///{self.directory / uuid.uuid4().hex}.json")

    @staticmethod
    def _edit(url: str, change: Callable[[State], None]) -> None:
        path = Path(url.removeprefix("jsonfile:///"))
        state = json.loads(path.read_text(encoding="utf-8"))
        change(state)
        path.write_text(json.dumps(state), encoding="utf-8")

    def read_schema_version(self, url: str) -> int | None:
        found: list[int | None] = []
        self._edit(url, lambda state: found.append(state.get("schema_version")))
        return found[0]

    def write_schema_version(self, url: str, version: int | None) -> None:
        def change(state: State) -> None:
            state.pop("schema_version", None)
            if version is not None:
                state["schema_version"] = version

        self._edit(url, change)

    def schema_layout(self, url: str) -> tuple[str, ...]:
        keys: list[str] = []
        self._edit(url, lambda state: keys.extend(sorted(state)))
        return tuple(keys)

    def unreachable_url(self) -> str:
        return f"jsonfile:///{self.directory / 'no-such-directory' / 'store.json'}"

    def break_backend(self, url: str) -> None:
        path = url.removeprefix("jsonfile:///")
        os.remove(path)
        os.mkdir(path)  # reading the "file" now fails with IsADirectoryError


class TestJsonFileStore(StorageSuite):
    opt_out: ClassVar[dict[str, str]] = {
        "processes": "the jsonfile scheme is registered at run time, which child processes "
        "do not see (a distributed adapter would use the csmcore.storage entry point)",
        "pushdown": "it filters every condition in Python; nothing is selected in the file",
    }

    agreement_examples = 6  # every operation rewrites and fsyncs the file: keep the run short
    race_rounds = 40

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return JsonFiles(tmp_path)


def test_the_file_records_each_event_with_its_schema(tmp_path: Path) -> None:
    """``kit.encode_event`` gives every event its ``"schema"``; data an older adapter wrote
    without it (version 1) still reads."""
    ticket = make_ticket("T-1")
    ticket = ticket.apply(make_comment(T0 + timedelta(minutes=5)))
    url = f"jsonfile:///{tmp_path / 'schema.json'}"
    store = open_store(url)
    try:
        store.tickets.add(ticket)
    finally:
        store.close()

    def check_and_strip(state: State) -> None:
        events = state["tickets"]["T-1"]
        assert [e["schema"] for e in events] == [2, 1]  # ticket.created is at 2 (issue 10)
        for event in events:
            del event["schema"]

    JsonFiles._edit(url, check_and_strip)  # behind the adapter's back, as the suite's hooks do
    store = open_store(url)
    try:
        assert store.tickets.get("T-1") == ticket
    finally:
        store.close()
