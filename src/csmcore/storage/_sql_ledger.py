"""The ``ledger`` role of the SQL stores (SQLite and PostgreSQL).

Table ``csm_ledger(member_id, seq, key, data)`` (schema version 5): one row per entry, primary
key ``(member_id, seq)``, a unique index on ``(member_id, key)``; ``data`` is the entry's
document (``{"type": "loyalty.entry", "schema": n, "data": ...}``).

Concurrency: a per-member version check, done by the primary key. A write reads the member's
last seq inside its transaction, plans on the state at that seq, and inserts the new entries at
seq + 1, seq + 2, ... If another writer (another process, another connection) appended to the
member meanwhile, the insert hits an existing ``(member_id, seq)`` and fails; the transaction
is rolled back, and the write reads again and re-plans (a redemption that no longer fits then
raises ``InsufficientPoints``). So no two writers can both spend the same points (no overdraw)
and no entry is ever overwritten or lost, at the default isolation level of either backend
(READ COMMITTED on PostgreSQL: its unique index waits for the other transaction and then
refuses the duplicate), without holding row locks while Python plans. Only a duplicate key
counts as another writer's row: any other refusal of the insert (a check, a trigger, a failing
disk) is a backend failure, raised as ``StorageError`` at once. On SQLite, writers take
the file's write lock at ``BEGIN IMMEDIATE``, so the check never even fails there.

Inside a unit of work (``uow.ledger``) the same check holds, within the unit of work's
transaction: each write runs in a savepoint, reads the member's last seq (its own earlier
entries included) and inserts after it; a write that loses to another writer is rolled back to
its savepoint and planned again on the newer state (PostgreSQL: the other transaction's
insert makes ours wait, then fail, and the next read sees its row). The entries commit or roll
back with the rest of the unit of work. Such a unit of work keeps its own states (built on first
use from the entries the store's cache has already read, then caught up from the tables, with
its own entries applied) and never changes the store's cache, so a rolled back unit of work
leaves no trace in it. A conflict that aborts the whole transaction (a
deadlock, a serialization failure) raises ``ConcurrencyError``: run the unit of work again.

Each store object caches the replayed :class:`~csmcore.loyalty.LedgerState` of recently used
members (committed states only, keyed by their seq) and only reads the entries it has not
seen, so an operation does not replay a member's whole history. Writes to one member from the
threads of one process are serialised by a lock per member (striped); different members go in
parallel.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Final, TypeVar

from csmcore._boundary import guard_class
from csmcore.errors import ConcurrencyError, SerializationError, StorageError
from csmcore.loyalty import LedgerEntry, LedgerState
from csmcore.serialization import from_document, to_document
from csmcore.storage import kit as c
from csmcore.storage._sql import Cursor, dump_json
from csmcore.storage.ledger import LedgerPlan, apply_new, check_members, check_plan

if TYPE_CHECKING:
    from csmcore.storage._sql_roles import SqlRoles
    from csmcore.storage._sql_store import SqlStore

__all__ = ["SqlLedger", "SqlTxLedger", "decode_entry", "encode_entry"]

R = TypeVar("R")

_STRIPES: Final = 64
_CACHE_SIZE: Final = 50_000
MAX_ATTEMPTS: Final = 200
"""How many times a write re-plans after losing to another writer before ConcurrencyError."""

_VERSION = "SELECT MAX(seq) FROM csm_ledger WHERE member_id = ?"
_AFTER = "SELECT data FROM csm_ledger WHERE member_id = ? AND seq > ? AND seq <= ? ORDER BY seq"
"""The entries after a cached state's, up to the seq read first: at READ COMMITTED a later
statement sees entries committed since, which are not part of the version read."""
_INSERT = "INSERT INTO csm_ledger (member_id, seq, key, data) VALUES (?, ?, ?, ?)"


def encode_entry(entry: LedgerEntry) -> str:
    """The JSON text of ``entry`` as ``csm_ledger.data`` holds it."""
    return dump_json(to_document(entry))


def decode_entry(text: str) -> LedgerEntry:
    """The entry of a ``csm_ledger.data`` text; SerializationError when it is not one."""
    entry = from_document(json.loads(text), LedgerEntry)
    if not isinstance(entry, LedgerEntry):
        raise SerializationError(f"csm_ledger holds {type(entry).__name__}, not a ledger entry")
    return entry


@guard_class(fallback=StorageError)
class SqlLedger:
    """The ``ledger`` role of one SQL store (see the module documentation)."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._states: dict[str, LedgerState] = {}
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]

    def _locks(self, members: Sequence[str]) -> list[threading.Lock]:
        indexes = sorted({hash(m) % _STRIPES for m in members})
        return [self._stripes[i] for i in indexes]

    def _state(self, cur: Cursor, member: str, version: int) -> LedgerState:
        """The member's committed state at ``version`` (cached, caught up, or replayed).
        Called with the member's stripe lock held."""
        state = self._states.get(member)
        if state is None or state.version > version:
            state = LedgerState(member)
        if state.version < version:
            rows = cur.query(_AFTER, [member, state.version, version])
            for (text,) in rows:
                state.apply(decode_entry(text))
            if state.version != version:
                raise ConcurrencyError(
                    f"{self._store._describe()}: the ledger of member {member!r} changed while "
                    "it was read"
                )
        if len(self._states) >= _CACHE_SIZE and member not in self._states:
            for old in list(self._states)[: _CACHE_SIZE // 2]:
                self._states.pop(old, None)  # other members' threads may evict too
        self._states[member] = state
        return state

    @staticmethod
    def _version(cur: Cursor, member: str) -> int:
        rows = cur.query(_VERSION, [member])
        return int(rows[0][0] or 0) if rows else 0

    def read(self, member_id: str, view: Callable[[LedgerState], R]) -> R:
        member = c.check_id(member_id, "member_id")
        store = self._store
        with self._locks([member])[0]:

            def work(cur: Cursor) -> LedgerState:
                return self._state(cur, member, self._version(cur, member))

            state = store.run(None, work, write=False)
            return view(state)

    def write(self, member_ids: Sequence[str], plan: LedgerPlan) -> list[LedgerEntry]:
        members = check_members(member_ids)
        store = self._store
        with ExitStack() as stack:
            for lock in self._locks(members):
                stack.enter_context(lock)
            states: dict[str, LedgerState] = {}
            applied: list[bool] = []
            for attempt in range(MAX_ATTEMPTS):
                states.clear()
                applied.clear()

                def work(cur: Cursor) -> list[LedgerEntry]:
                    for m in members:
                        states[m] = self._state(cur, m, self._version(cur, m))
                    entries = check_plan(members, states, plan(states))
                    if entries:
                        apply_new(states, entries)  # refused: nothing written
                        applied.append(True)
                        rows = [(e.member_id, e.seq, e.key, encode_entry(e)) for e in entries]
                        try:
                            if len(rows) == 1:
                                cur.run(_INSERT, rows[0])
                            else:
                                cur.run_many(_INSERT, rows)
                        except store.integrity_errors as err:
                            if not store.is_unique_violation(err):
                                raise  # not a concurrent writer's row: a backend failure
                            raise ConcurrencyError(
                                f"{store._describe()}: another writer appended to the ledger "
                                f"of {list(members)} first ({type(err).__name__})"
                            ) from err
                    return entries

                try:  # the cached states take the entries before they are written
                    return store.run(None, work, write=True)
                except BaseException as err:
                    concurrent = isinstance(err, ConcurrencyError)
                    if applied or concurrent:  # the cached states may be wrong: they go
                        for m in members:
                            self._states.pop(m, None)
                    if not concurrent or attempt + 1 == MAX_ATTEMPTS:
                        raise
                    time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise AssertionError("unreachable")  # pragma: no cover

    def members(self) -> list[str]:
        rows = self._store.query_once(
            None, "SELECT DISTINCT member_id FROM csm_ledger ORDER BY member_id"
        )
        return [str(r[0]) for r in rows]

    def forget(self) -> None:
        """Drop the cached states (they are read again from the tables)."""
        self._states.clear()


@guard_class(fallback=StorageError)
class SqlTxLedger:
    """The ``ledger`` role inside one unit of work (see the module documentation)."""

    def __init__(self, store: SqlStore, cur: Cursor, roles: SqlRoles) -> None:
        self._store = store
        self._cur = cur
        self._roles = roles
        self._states: dict[str, LedgerState] = {}

    def _check_open(self) -> None:
        c.check_unit_open(self._roles.ended, self._roles.aborted)

    def _run(self, work: Callable[[Cursor], R], *, write: bool) -> R:
        self._check_open()
        try:
            return self._store.run(self._cur, work, write=write)
        except ConcurrencyError as err:
            if isinstance(err.__cause__, self._store.conflict_errors):
                self._roles.aborted = True  # the backend rolls the whole transaction back
            raise

    def _state(self, cur: Cursor, member: str) -> LedgerState:
        """The member's state as this unit of work sees it, caught up with the tables."""
        version = SqlLedger._version(cur, member)
        state = self._states.get(member)
        if state is None or state.version > version:
            state = self._seed(member, version)
        if state.version < version:
            for (text,) in cur.query(_AFTER, [member, state.version, version]):
                state.apply(decode_entry(text))
        self._states[member] = state
        return state

    def _seed(self, member: str, version: int) -> LedgerState:
        """A new state of ``member`` holding the entries the store's cache has already read
        (committed entries, which never change; at most ``version`` of them), so that only the
        others are read from the tables. The cache itself is never changed here."""
        state = LedgerState(member)
        cached = self._store.ledger._states.get(member)
        if cached is not None:
            for entry in list(cached.entries)[:version]:  # a copy: other threads may append
                state.apply(entry)
        return state

    def read(self, member_id: str, view: Callable[[LedgerState], R]) -> R:
        member = c.check_id(member_id, "member_id")
        return view(self._run(lambda cur: self._state(cur, member), write=False))

    def write(self, member_ids: Sequence[str], plan: LedgerPlan) -> list[LedgerEntry]:
        members = check_members(member_ids)
        store = self._store
        states: dict[str, LedgerState] = {}
        applied: list[bool] = []
        for attempt in range(MAX_ATTEMPTS):
            states.clear()
            applied.clear()

            def work(cur: Cursor) -> list[LedgerEntry]:
                for m in members:
                    states[m] = self._state(cur, m)
                entries = check_plan(members, states, plan(states))
                apply_new(states, entries)  # refused: nothing written
                applied.append(True)
                rows = [(e.member_id, e.seq, e.key, encode_entry(e)) for e in entries]
                try:
                    if rows:
                        cur.run_many(_INSERT, rows)
                except store.integrity_errors as err:
                    if not store.is_unique_violation(err):
                        raise  # not a concurrent writer's row: a backend failure
                    raise ConcurrencyError(
                        f"{store._describe()}: another writer appended to the ledger of "
                        f"{list(members)} first ({type(err).__name__})"
                    ) from err
                return entries

            try:  # this unit of work's states take the entries before they are written
                return self._run(work, write=True)
            except BaseException as err:
                concurrent = isinstance(err, ConcurrencyError)
                if applied or concurrent:  # those states may be wrong: they go
                    for m in members:
                        self._states.pop(m, None)
                if not concurrent or self._roles.aborted or attempt + 1 == MAX_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise AssertionError("unreachable")  # pragma: no cover

    def members(self) -> list[str]:
        rows = self._run(
            lambda cur: cur.query("SELECT DISTINCT member_id FROM csm_ledger ORDER BY member_id"),
            write=False,
        )
        return [str(r[0]) for r in rows]
