"""The in-memory store: the default, and the reference every other adapter must agree with.

It keeps immutable objects in dictionaries guarded by one lock, so it is safe across threads of
one process. Nothing survives the process. A unit of work writes into a private overlay that is
merged into the store only when the ``with`` block ends normally.

>>> from datetime import datetime, timezone
>>> from csmcore.storage import open_store
>>> from csmcore.tickets import Channel, Priority, Role, Ticket
>>> store = open_store("memory://")
>>> at = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
>>> ticket, _ = Ticket.create(at=at, ticket_id="T-1", created_by=Role.REQUESTER,
...                           channel=Channel.EMAIL, priority=Priority.NORMAL, requester="ann")
>>> store.tickets.add(ticket).version
1
>>> store.tickets.get("T-1") == ticket
True
"""

from __future__ import annotations

import builtins
import heapq
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import attrs

from csmcore._boundary import PASS, guard_class, inline, translate
from csmcore._time import to_us
from csmcore.conditions import Condition
from csmcore.errors import NotFound, StorageError
from csmcore.escalation import FiringKey
from csmcore.loyalty import LedgerEntry, LedgerState, RedemptionOrder
from csmcore.loyalty._post import post_earn, post_expire, post_redeem, post_refund
from csmcore.storage import kit as c
from csmcore.storage._due_index import Due as _Due
from csmcore.storage._due_index import DueIndex as _DueIndex
from csmcore.storage.base import (
    DocumentRepositoryBase,
    FiringRepositoryBase,
    OutboxPagingBase,
    StoreBase,
    TicketRepositoryBase,
    updated_message,
)
from csmcore.storage.ledger import LEDGER, LedgerPlan, apply_new, check_members, check_plan
from csmcore.storage.protocols import (
    FiringRecord,
    OutboxMessage,
    OutboxState,
    TicketPlan,
    Versioned,
)
from csmcore.storage.roles import BUILTIN_ROLES, ESCALATION_ROLES, storage_role
from csmcore.tickets import Ticket, TicketEvent

__all__ = ["MemoryStore"]

R = TypeVar("R")


class _Tx:
    """An overlay of writes on top of the store's committed state."""

    __slots__ = ("docs", "ended", "ledgers", "rows", "store", "tickets")

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.ended = False
        self.tickets: dict[str, Ticket] = {}
        self.docs: dict[tuple[str, str], list[Any]] = {}
        self.rows: dict[str, dict[str, Any]] = {}
        self.ledgers: dict[str, LedgerState] = {}
        """Members' states with this unit of work's entries (copies: the committed states
        are untouched until the commit)."""

    def ledger(self, member_id: str) -> LedgerState:
        """The member's state as this unit of work sees it (a private copy once touched)."""
        found = self.ledgers.get(member_id)
        if found is not None:
            return found
        mine = LedgerState(member_id)
        committed = self.store._ledgers.get(member_id)
        if committed is not None:
            for entry in committed.entries:
                mine.apply(entry)
        return mine

    def row(self, kind: str, key: str) -> Any:
        mine = self.rows.get(kind)
        if mine is not None and key in mine:
            return mine[key]
        return self.store._rows[kind].get(key)

    def set_row(self, kind: str, key: str, value: Any) -> None:
        self.rows.setdefault(kind, {})[key] = value

    def scan(self, kind: str) -> Iterable[Any]:
        mine = self.rows.get(kind)
        if not mine:
            return self.store._rows[kind].values()
        return {**self.store._rows[kind], **mine}.values()

    def ticket(self, ticket_id: str) -> Ticket | None:
        found = self.tickets.get(ticket_id)
        return found if found is not None else self.store._tickets.get(ticket_id)

    def all_ids(self) -> list[str]:
        return sorted(self.store._tickets.keys() | self.tickets.keys())

    def versions(self, kind: str, key: str) -> list[Any]:
        found = self.docs.get((kind, key))
        return found if found is not None else self.store._docs.get((kind, key), [])

    def commit(self) -> None:
        self.store._tickets.update(self.tickets)
        self.store._docs.update(self.docs)
        for kind, rows in self.rows.items():
            if kind == "outbox":
                self.store._index_outbox(rows)
            elif kind == "plans":
                self.store._index_plans(rows)
            self.store._rows[kind].update(rows)
        for member, state in self.ledgers.items():
            if state.entries:
                self.store._ledgers[member] = state


class _Tickets(TicketRepositoryBase):
    def __init__(self, store: MemoryStore, tx: _Tx | None) -> None:
        self._store = store
        self._tx = tx

    def _add(self, ticket: Ticket) -> Ticket:
        with self._store._transaction(self._tx) as tx:
            self._put_new(tx, ticket)
        return ticket

    @staticmethod
    def _put_new(tx: _Tx, ticket: Ticket) -> None:
        if tx.ticket(ticket.id) is not None:
            raise c.ticket_exists(ticket.id)
        tx.tickets[ticket.id] = ticket

    def _add_many(self, tickets: list[Ticket]) -> int:
        with self._store._transaction(self._tx) as tx:
            # Every id is checked before any ticket is written: inside a unit of work ``tx``
            # is the unit's own overlay, so a batch refused half-way would stay in it.
            seen: set[str] = set()
            for ticket in tickets:
                if ticket.id in seen or tx.ticket(ticket.id) is not None:
                    raise c.ticket_exists(ticket.id)
                seen.add(ticket.id)
            for ticket in tickets:
                tx.tickets[ticket.id] = ticket
        return len(tickets)

    def _get(self, ticket_id: str) -> Ticket:
        with self._store._transaction(self._tx) as tx:
            found = tx.ticket(ticket_id)
        if found is None:
            raise c.no_ticket(ticket_id)
        return found

    def _append(
        self, ticket_id: str, events: tuple[TicketEvent, ...], expected_version: int
    ) -> Ticket:
        with self._store._transaction(self._tx) as tx:
            current = tx.ticket(ticket_id)
            if current is None:
                raise c.no_ticket(ticket_id)
            c.check_expected(ticket_id, current.version, expected_version)
            updated = c.apply_all(current, events)
            tx.tickets[ticket_id] = updated
        return updated

    def _matching(self, condition: Condition) -> Iterator[Ticket]:
        with self._store._transaction(self._tx) as tx:
            snapshot = [t for i in tx.all_ids() if (t := tx.ticket(i)) is not None]
        return (t for t in snapshot if condition.matches(t))

    def _find(self, condition: Condition, limit: int | None) -> list[Ticket]:
        found: list[Ticket] = []
        for ticket in self._matching(condition):
            found.append(ticket)
            if limit is not None and len(found) >= limit:
                break
        return found

    def _stream(self, condition: Condition, batch_size: int) -> Iterator[list[Ticket]]:
        batch: list[Ticket] = []
        for ticket in self._matching(condition):
            batch.append(ticket)
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _count(self, condition: Condition) -> int:
        return sum(1 for _ in self._matching(condition))


class _Documents(DocumentRepositoryBase[Any]):
    def __init__(self, store: MemoryStore, tx: _Tx | None, kind: str) -> None:
        self._store = store
        self._tx = tx
        self._kind = kind
        self.role = storage_role(kind)

    def _put(self, key: str, value: Any, expected_version: int) -> Versioned[Any]:
        c.encode_document(value)  # refuses what the SQL stores refuse
        with self._store._transaction(self._tx) as tx:
            versions = tx.versions(self._kind, key)
            c.check_expected(key, len(versions), expected_version, kind=self._kind)
            tx.docs[(self._kind, key)] = [*versions, value]
        return Versioned(key=key, version=expected_version + 1, value=value)

    def _get(self, key: str, version: int | None) -> Versioned[Any]:
        with self._store._transaction(self._tx) as tx:
            versions = tx.versions(self._kind, key)
        number = len(versions) if version is None else version
        if not versions or number > len(versions):
            raise c.no_document(self._kind, key, version, latest=len(versions))
        return Versioned(key=key, version=number, value=versions[number - 1])

    def _history(self, key: str) -> list[Versioned[Any]]:
        with self._store._transaction(self._tx) as tx:
            versions = tx.versions(self._kind, key)
        return [Versioned(key=key, version=i, value=v) for i, v in enumerate(versions, 1)]

    def _keys(self) -> list[str]:
        with self._store._transaction(self._tx) as tx:
            found = {k for (kind, k) in tx.store._docs if kind == self._kind}
            found |= {k for (kind, k) in tx.docs if kind == self._kind}
        return sorted(found)

    def _latest_versions(self) -> dict[str, int]:
        with self._store._transaction(self._tx) as tx:
            found = {k: len(v) for (kind, k), v in tx.store._docs.items() if kind == self._kind}
            found.update((k, len(v)) for (kind, k), v in tx.docs.items() if kind == self._kind)
        return dict(sorted(found.items()))


_UTC = timezone.utc


def _record_order(record: FiringRecord) -> tuple[int, str]:
    return (to_us(record.firing.at), record.firing.key_text)


class _Firings(FiringRepositoryBase):
    """Firings by ticket (``rows["firings"][ticket_id]``: key -> record) and plans by ticket
    (``rows["plans"]``)."""

    def __init__(self, store: MemoryStore, tx: _Tx | None) -> None:
        self._store = store
        self._tx = tx

    def _record(self, record: FiringRecord) -> bool:
        with self._store._transaction(self._tx) as tx:
            ticket_id = record.firing.ticket_id
            found: dict[FiringKey, FiringRecord] = tx.row("firings", ticket_id) or {}
            if record.key in found:
                return False
            tx.set_row("firings", ticket_id, {**found, record.key: record})
        return True

    def _keys(self, ticket_id: str) -> frozenset[FiringKey]:
        with self._store._transaction(self._tx) as tx:
            return frozenset(tx.row("firings", ticket_id) or ())

    def _list(self, ticket_id: str | None, limit: int | None) -> builtins.list[FiringRecord]:
        with self._store._transaction(self._tx) as tx:
            if ticket_id is not None:
                records = builtins.list((tx.row("firings", ticket_id) or {}).values())
            else:
                records = [r for found in tx.scan("firings") for r in found.values()]
        records.sort(key=_record_order)
        return records if limit is None else records[:limit]

    def _plan(self, plan: TicketPlan) -> None:
        if plan.next_due is not None:
            plan = attrs.evolve(plan, next_due=plan.next_due.astimezone(_UTC))
        with self._store._transaction(self._tx) as tx:
            kept: TicketPlan | None = tx.row("plans", plan.ticket_id)
            if kept is None or kept.version <= plan.version:
                tx.set_row("plans", plan.ticket_id, plan)

    def _planned(self, ticket_id: str) -> TicketPlan | None:
        with self._store._transaction(self._tx) as tx:
            found: TicketPlan | None = tx.row("plans", ticket_id)
        return found

    # Plans are kept in UTC, so they compare by (next_due, ticket_id) with datetime's own
    # comparisons. The committed ones with a next_due are read from the store's plan index; a
    # unit of work's own plans (the few it changed) replace their committed versions.

    def _due(self, at: datetime, limit: int | None) -> builtins.list[TicketPlan]:
        """Plans due at ``at`` by (next_due, ticket_id): the committed ones from the index, up
        to ``at``, merged with a unit of work's own (sorted here)."""
        at = at.astimezone(_UTC)
        with self._store._transaction(self._tx) as tx:
            committed = tx.store._rows["plans"]
            items: Iterator[_Due] = tx.store._plans_due.after(None, at)
            mine: dict[str, TicketPlan] | None = tx.rows.get("plans")
            if mine:
                items = heapq.merge(
                    (item for item in items if item[1] not in mine),
                    sorted(
                        (p.next_due, p.ticket_id)
                        for p in mine.values()
                        if p.next_due is not None and p.next_due <= at
                    ),
                )
                return [
                    mine[key] if key in mine else committed[key]
                    for _, key in itertools.islice(items, limit)
                ]
            return [committed[key] for _, key in itertools.islice(items, limit)]

    def _next_due(self) -> datetime | None:
        """The first committed item of the index (skipping tickets a unit of work planned
        again), or a unit of work's own earliest, whichever is earlier."""
        with self._store._transaction(self._tx) as tx:
            index = tx.store._plans_due
            mine: dict[str, TicketPlan] | None = tx.rows.get("plans")
            if not mine:
                first = next(iter(index), None)
                return None if first is None else first[0]
            dues = [p.next_due for p in mine.values() if p.next_due is not None]
            first = next((item for item in index if item[1] not in mine), None)
            if first is not None:
                dues.append(first[0])
        return min(dues) if dues else None


def _no_message(key: str) -> NotFound:
    return NotFound(f"no outbox message with key {key!r}")


_PENDING = OutboxState.PENDING


class _Outbox(OutboxPagingBase):
    def __init__(self, store: MemoryStore, tx: _Tx | None) -> None:
        self._store = store
        self._tx = tx

    def _put(self, messages: builtins.list[OutboxMessage]) -> int:
        new = 0
        with self._store._transaction(self._tx) as tx:
            for message in messages:
                if tx.row("outbox", message.key) is None:
                    tx.set_row("outbox", message.key, message)
                    new += 1
        return new

    # Every instant kept here is in UTC (the base class converts what it is given), so the
    # messages compare by (next_attempt_at, key) with datetime's own comparisons, which are
    # exact between UTC datetimes: no conversion per message in these scans.

    def _due(self, at: datetime, limit: int) -> builtins.list[OutboxMessage]:
        return self._page(None, at, limit)

    def _due_after(
        self, at: datetime, after_at: datetime, after_key: str, limit: int
    ) -> builtins.list[OutboxMessage]:
        return self._page((after_at, after_key), at, limit)

    def _page(self, start: _Due | None, at: datetime, limit: int) -> builtins.list[OutboxMessage]:
        """PENDING messages due at ``at``, after ``start`` in (next_attempt_at, key) order, at
        most ``limit``: the committed ones from the store's due index, merged with a unit of
        work's own (the few it changed, sorted here; their committed versions skipped)."""
        at = at.astimezone(timezone.utc)
        with self._store._transaction(self._tx) as tx:
            committed = tx.store._rows["outbox"]
            items: Iterator[_Due] = tx.store._due.after(start, at)
            mine = tx.rows.get("outbox")
            if mine:
                items = heapq.merge(
                    (item for item in items if item[1] not in mine),
                    sorted(
                        (m.next_attempt_at, m.key)
                        for m in mine.values()
                        if m.state is _PENDING
                        and m.next_attempt_at <= at
                        and (start is None or (m.next_attempt_at, m.key) > start)
                    ),
                )
                return [
                    mine[key] if key in mine else committed[key]
                    for _, key in itertools.islice(items, limit)
                ]
            return [committed[key] for _, key in itertools.islice(items, limit)]

    def _claim(self, key: str, attempts: int, until: datetime) -> bool:
        with self._store._transaction(self._tx) as tx:
            found: OutboxMessage | None = tx.row("outbox", key)
            if found is None:
                raise _no_message(key)
            if found.state is not OutboxState.PENDING or found.attempts != attempts:
                return False
            tx.set_row(
                "outbox",
                key,
                attrs.evolve(found, attempts=attempts + 1, next_attempt_at=until),
            )
        return True

    def _update(
        self,
        key: str,
        state: OutboxState,
        next_attempt_at: datetime | None,
        delivered_at: datetime | None,
        error: str | None,
    ) -> None:
        with self._store._transaction(self._tx) as tx:
            found: OutboxMessage | None = tx.row("outbox", key)
            if found is None:
                raise _no_message(key)
            tx.set_row(
                "outbox", key, updated_message(found, state, next_attempt_at, delivered_at, error)
            )

    def _get(self, key: str) -> OutboxMessage:
        with self._store._transaction(self._tx) as tx:
            found: OutboxMessage | None = tx.row("outbox", key)
        if found is None:
            raise _no_message(key)
        return found

    def _list(self, state: OutboxState | None, limit: int | None) -> builtins.list[OutboxMessage]:
        with self._store._transaction(self._tx) as tx:
            found = [m for m in tx.scan("outbox") if state is None or m.state is state]
        found.sort(key=lambda m: (to_us(m.created_at), m.key))
        return found if limit is None else found[:limit]


@guard_class(fallback=StorageError)
class _Ledger:
    """The ``ledger`` role: one :class:`~csmcore.loyalty.LedgerState` per member, kept for good
    (no replay per operation); plans run and entries apply under the store's lock, so the
    version check holds trivially."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def read(self, member_id: str, view: Callable[[LedgerState], R]) -> R:
        c.check_id(member_id, "member_id")
        store = self._store
        with store._lock:
            store._check_usable()
            state = store._ledgers.get(member_id)
            return view(state if state is not None else LedgerState(member_id))

    def write(self, member_ids: Sequence[str], plan: LedgerPlan) -> list[LedgerEntry]:
        store = self._store
        if type(member_ids) is tuple and len(member_ids) == 1:  # the common case, quickly
            member = member_ids[0]
            with store._lock:
                if store._closed or store._open_uow is not None:
                    store._check_usable()
                if type(member) is not str:  # checked before it is hashed
                    c.check_id(member, "member_id")
                state = store._ledgers.get(member)  # a known member's id was checked before
                if state is None:
                    state = LedgerState(c.check_id(member, "member_id"))
                found = plan({member: state})
                if not found:
                    return []
                entry = found[0]
                if (
                    len(found) > 1
                    or type(entry) is not LedgerEntry
                    or entry.seq != state.version + 1
                    or entry.member_id != member
                ):
                    found = check_plan((member,), {member: state}, found)
                    apply_new({member: state}, found)
                else:
                    state.apply(entry, new=True)  # refused: the state as it was
                if member not in store._ledgers:
                    store._ledgers[member] = state
            return found if type(found) is list else list(found)
        members = check_members(member_ids)
        with store._lock:
            store._check_usable()
            ledgers = store._ledgers
            states = {m: ledgers.get(m) or LedgerState(m) for m in members}
            entries = check_plan(members, states, plan(states))
            apply_new(states, entries)
            for m in members:
                if states[m].entries:
                    ledgers[m] = states[m]
        return entries

    def members(self) -> list[str]:
        with self._store._lock:
            self._store._check_usable()
            return sorted(self._store._ledgers)

    # --- LedgerPosting: the common writes planned and applied in one step (see _post) ---------
    # Each runs the csmcore.loyalty._post function on the member's state under the lock, where
    # no other writer can come between plan and apply; what it returns, writes and raises is
    # what write() with the same plan gives. Each translates errors in its own body (a try
    # costs nothing until something is raised; a guard wrapper would cost a call) around the
    # shared _post, which holds the lock and finds the member's state.

    def _post(self, member_id: str, post: Callable[..., R], *args: Any) -> R:
        """``post(state, *args)`` on ``member_id``'s state under the store's lock (a new state,
        kept only if it wrote, for a member without entries yet)."""
        store = self._store
        with store._lock:
            if store._closed or store._open_uow is not None:
                store._check_usable()
            if type(member_id) is not str:  # checked before it is hashed
                c.check_id(member_id, "member_id")
            state = store._ledgers.get(member_id)
            if state is not None:
                return post(state, *args)
            state = LedgerState(c.check_id(member_id, "member_id"))
            found = post(state, *args)
            if state.entries:
                store._ledgers[member_id] = state
            return found

    @inline("MemoryStore.ledger.post_earn")  # LedgerPosting.post_earn's signature, as declared
    def post_earn(
        self,
        member_id: str,
        points: int,
        at: datetime,
        key: str,
        expires_at: datetime | None,
        pending_until: datetime | None,
        spend: Decimal | None,
        reference: str | None,
        reason: str | None,
    ) -> LedgerEntry:
        try:
            return self._post(
                member_id,
                post_earn,
                points,
                at,
                key,
                expires_at,
                pending_until,
                spend,
                reference,
                reason,
            )
        except PASS:
            raise
        except Exception as err:
            raise translate(err, "MemoryStore.ledger.post_earn", fallback=StorageError) from err

    @inline("MemoryStore.ledger.post_redeem")
    def post_redeem(
        self,
        member_id: str,
        points: int,
        at: datetime,
        key: str,
        reference: str | None,
        order: RedemptionOrder,
    ) -> LedgerEntry:
        try:
            return self._post(member_id, post_redeem, points, at, key, reference, order)
        except PASS:
            raise
        except Exception as err:
            raise translate(err, "MemoryStore.ledger.post_redeem", fallback=StorageError) from err

    @inline("MemoryStore.ledger.post_refund")
    def post_refund(
        self, member_id: str, redemption_id: str, at: datetime, key: str, points: int | None
    ) -> LedgerEntry:
        try:
            return self._post(member_id, post_refund, redemption_id, at, key, points)
        except PASS:
            raise
        except Exception as err:
            raise translate(err, "MemoryStore.ledger.post_refund", fallback=StorageError) from err

    @inline("MemoryStore.ledger.post_expire")
    def post_expire(self, member_id: str, at: datetime) -> list[LedgerEntry]:
        try:
            return self._post(member_id, post_expire, at)
        except PASS:
            raise
        except Exception as err:
            raise translate(err, "MemoryStore.ledger.post_expire", fallback=StorageError) from err


@guard_class(fallback=StorageError)
class _TxLedger:
    """The ``ledger`` role inside a unit of work: plans run on the unit of work's copies of
    the members' states (its own entries visible), and the entries join the store when the
    unit of work commits. The unit of work holds the store's lock, so no other writer can
    append to a member meanwhile and the version check holds trivially."""

    def __init__(self, store: MemoryStore, tx: _Tx) -> None:
        self._store = store
        self._tx = tx

    def read(self, member_id: str, view: Callable[[LedgerState], R]) -> R:
        c.check_id(member_id, "member_id")
        with self._store._transaction(self._tx) as tx:
            state = tx.ledgers.get(member_id)
            if state is None:
                state = tx.store._ledgers.get(member_id)
            return view(state if state is not None else LedgerState(member_id))

    def write(self, member_ids: Sequence[str], plan: LedgerPlan) -> list[LedgerEntry]:
        members = check_members(member_ids)
        with self._store._transaction(self._tx) as tx:
            states = {m: tx.ledger(m) for m in members}
            entries = check_plan(members, states, plan(states))
            apply_new(states, entries)
            for m in members:
                if states[m].entries:
                    tx.ledgers[m] = states[m]
        return entries

    def members(self) -> list[str]:
        with self._store._transaction(self._tx) as tx:
            mine = {m for m, s in tx.ledgers.items() if s.entries}
            return sorted(mine | tx.store._ledgers.keys())


class _Roles:
    roles: ClassVar[frozenset[str]] = BUILTIN_ROLES | ESCALATION_ROLES | {LEDGER.name}
    """The roles this store and its units of work offer: the required ones, ``firings``,
    ``outbox`` and ``ledger``."""

    ledger: _Ledger | _TxLedger

    def __init__(self, store: MemoryStore, tx: _Tx | None) -> None:
        self.tickets = _Tickets(store, tx)
        self.calendars = _Documents(store, tx, "calendars")
        self.policies = _Documents(store, tx, "policies")
        self.rules = _Documents(store, tx, "rules")
        self.firings = _Firings(store, tx)
        self.outbox = _Outbox(store, tx)
        self.ledger = _Ledger(store) if tx is None else _TxLedger(store, tx)


class MemoryStore(_Roles, StoreBase):
    """A store held in this process's memory (``memory://``). Thread-safe; not persistent.

    Besides the required roles it offers the optional ``firings``, ``outbox`` and ``ledger``
    roles, on the store and in units of work (a ledger write outside one is its own
    transaction; inside one it commits or rolls back with the rest)."""

    def __init__(self) -> None:
        self._tickets: dict[str, Ticket] = {}
        self._ledgers: dict[str, LedgerState] = {}
        self._docs: dict[tuple[str, str], list[Any]] = {}
        self._rows: dict[str, dict[str, Any]] = {"firings": {}, "plans": {}, "outbox": {}}
        self._due = _DueIndex()
        """The committed PENDING outbox messages by (next_attempt_at, key)."""
        self._plans_due = _DueIndex()
        """The committed plans with a next_due, by (next_due, ticket_id)."""
        self._lock = threading.RLock()
        self._open_uow: int | None = None
        self._closed = False
        super().__init__(self, None)

    @property
    def url(self) -> str:
        """Always ``"memory://"``; note that opening it gives a new, empty store."""
        return "memory://"

    @contextmanager
    def _transaction(self, tx: _Tx | None) -> Iterator[_Tx]:
        if tx is not None:
            if tx.ended or self._open_uow != threading.get_ident():
                raise StorageError("this unit of work has ended; open a new one")
            yield tx
            return
        with self._lock:
            self._check_usable()
            own = _Tx(self)
            yield own
            own.commit()

    def _index_outbox(self, changed: dict[str, OutboxMessage]) -> None:
        """Bring the due index in step with ``changed`` messages about to be committed."""
        committed = self._rows["outbox"]
        due = self._due
        for key, message in changed.items():
            old = committed.get(key)
            if old is not None and old.state is _PENDING:
                due.discard((old.next_attempt_at, key))
            if message.state is _PENDING:
                due.add((message.next_attempt_at, key))

    def _index_plans(self, changed: dict[str, TicketPlan]) -> None:
        """Bring the plan index in step with ``changed`` plans about to be committed: a
        replaced plan leaves it, a plan with a next_due enters it."""
        committed = self._rows["plans"]
        due = self._plans_due
        for ticket_id, plan in changed.items():
            old = committed.get(ticket_id)
            if old is not None and old.next_due == plan.next_due:
                continue  # the same item (or none before and after)
            if old is not None and old.next_due is not None:
                due.discard((old.next_due, ticket_id))
            if plan.next_due is not None:
                due.add((plan.next_due, ticket_id))

    def _check_usable(self) -> None:
        if self._closed:
            raise StorageError("the store memory:// is closed")
        if self._open_uow == threading.get_ident():
            raise StorageError(
                "a unit of work is open on this store in this thread; "
                "write through its roles (uow.tickets, ...) instead"
            )

    @contextmanager
    def unit_of_work(self) -> Iterator[_Roles]:
        """Group writes into one transaction; see :meth:`csmcore.storage.protocols.Store`."""
        with self._lock:
            self._check_usable()
            tx = _Tx(self)
            self._open_uow = threading.get_ident()
            try:
                yield _Roles(self, tx)
                tx.commit()
            finally:
                tx.ended = True
                self._open_uow = None

    def close(self) -> None:
        """Mark the store closed; its data is dropped."""
        with self._lock:
            self._closed = True
            self._tickets = {}
            self._docs = {}
            self._rows = {kind: {} for kind in self._rows}
            self._due = _DueIndex()
            self._plans_due = _DueIndex()
            self._ledgers = {}

    def __repr__(self) -> str:
        return f"MemoryStore(tickets={len(self._tickets)})"
