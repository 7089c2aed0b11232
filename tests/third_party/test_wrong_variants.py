"""Wrong variants of the ``dictstore://`` adapter, each with one planted bug: the conformance
suite must catch every one of them (the correct adapter passes the same checks in
``test_dictstore.py``). The first group escaped the suite until the checks named here were
added to ``FiringTests``, ``OutboxTests`` and ``UnitOfWorkTests``."""

from __future__ import annotations

import bisect
import inspect
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import attrs
import pytest

from csmcore.errors import LedgerCorrupt
from csmcore.loyalty import LedgerState
from csmcore.storage import kit
from csmcore.storage.ledger import check_plan
from csmcore.storage.protocols import FiringRecord, OutboxMessage, OutboxState, TicketPlan
from csmcore.testing.storage_suite import (
    ConcurrencyTests,
    FiringTests,
    LedgerTests,
    LedgerUnitOfWorkTests,
    OutboxTests,
    UnitOfWorkTests,
)
from csmcore.tickets import Ticket

from . import dictstore as ds
from . import test_dictstore as proved  # (importing TestDictStore here would run it twice)

_register_scheme = proved._register_scheme  # the autouse fixture registering dictstore://
DictStores = proved.DictStores

_RACE_PAUSE = 0.005  # between a racy variant's check and its write: other threads get in


class _Checks(
    FiringTests, OutboxTests, LedgerTests, LedgerUnitOfWorkTests, ConcurrencyTests, UnitOfWorkTests
):  # not collected
    opt_out = proved.TestDictStore.opt_out


Patch = Callable[[pytest.MonkeyPatch], None]


def _outbox_due_by_key(mp: pytest.MonkeyPatch) -> None:
    def due(self: ds._Outbox, at: datetime, limit: int) -> list[OutboxMessage]:
        found = [
            m for m in self._all() if m.state is OutboxState.PENDING and m.next_attempt_at <= at
        ]
        return sorted(found, key=lambda m: m.key)[:limit]

    mp.setattr(ds._Outbox, "_due", due)


def _outbox_due_by_creation(mp: pytest.MonkeyPatch) -> None:
    def due(self: ds._Outbox, at: datetime, limit: int) -> list[OutboxMessage]:
        found = [
            m for m in self._all() if m.state is OutboxState.PENDING and m.next_attempt_at <= at
        ]
        return sorted(found, key=lambda m: (m.created_at, m.key))[:limit]

    mp.setattr(ds._Outbox, "_due", due)


def _outbox_list_by_key(mp: pytest.MonkeyPatch) -> None:
    def list_(self: ds._Outbox, state: OutboxState | None, limit: int | None) -> list[Any]:
        found = sorted((m for m in self._all() if state in (None, m.state)), key=lambda m: m.key)
        return found if limit is None else found[:limit]

    mp.setattr(ds._Outbox, "_list", list_)


def _outbox_delivery_clears_the_error(mp: pytest.MonkeyPatch) -> None:
    real = ds._Outbox._update

    def update(self: ds._Outbox, key: str, state: OutboxState, *rest: Any) -> None:
        real(self, key, state, *rest)
        if state is OutboxState.DELIVERED:
            with self._store.transaction(self._unit) as tables:
                cleared = attrs.evolve(ds._message(tables.outbox[key]), last_error=None)
                tables.outbox[key] = ds._dump(kit.encode_document(cleared))

    mp.setattr(ds._Outbox, "_update", update)


def _outbox_racy_claim(mp: pytest.MonkeyPatch) -> None:
    """Reads the message in one transaction and writes the claim in another."""

    def claim(self: ds._Outbox, key: str, attempts: int, until: datetime) -> bool:
        message = self._get(key)
        if message.state is not OutboxState.PENDING or message.attempts != attempts:
            return False
        time.sleep(_RACE_PAUSE)
        claimed = attrs.evolve(message, attempts=attempts + 1, next_attempt_at=until)
        with self._store.transaction(self._unit) as tables:
            tables.outbox[key] = ds._dump(kit.encode_document(claimed))
        return True

    mp.setattr(ds._Outbox, "_claim", claim)


def _firings_racy_record(mp: pytest.MonkeyPatch) -> None:
    """Checks the key in one transaction and inserts it in another."""

    def record(self: ds._Firings, record: FiringRecord) -> bool:
        if record.key in self._keys(record.firing.ticket_id):
            return False
        time.sleep(_RACE_PAUSE)
        raw = ds._dump(kit.encode_document(record))
        with self._store.transaction(self._unit) as tables:
            tables.firings[record.firing.key_text] = (record.firing.ticket_id, raw)
        return True

    mp.setattr(ds._Firings, "_record", record)


def _firings_racy_plan(mp: pytest.MonkeyPatch) -> None:
    """Compares the versions in one transaction and writes the plan in another."""

    def plan(self: ds._Firings, plan: TicketPlan) -> None:
        stored = self._planned(plan.ticket_id)
        if stored is not None and stored.version > plan.version:
            return
        time.sleep(_RACE_PAUSE)
        with self._store.transaction(self._unit) as tables:
            tables.plans[plan.ticket_id] = ds._dump(kit.encode_document(plan))

    mp.setattr(ds._Firings, "_plan", plan)


def _add_many_half_way_in_a_unit(mp: pytest.MonkeyPatch) -> None:
    """Writes each ticket of a batch as it goes, and a unit of work keeps a failed call's
    writes (no savepoint): a refused ``add_many`` leaves its first tickets in the unit."""
    real = ds.DictStore.transaction

    @contextmanager
    def transaction(self: ds.DictStore, unit: Any) -> Iterator[ds._Tables]:
        if unit is None:
            with real(self, unit) as tables:
                yield tables
            return
        with real(self, unit):  # refuses when the unit has ended
            pass
        yield unit.tables

    def add_many(self: ds._Tickets, tickets: list[Ticket]) -> int:
        with self._store.transaction(self._unit) as tables:
            for ticket in tickets:
                if ticket.id in tables.tickets:
                    raise kit.ticket_exists(ticket.id)
                tables.tickets[ticket.id] = tuple(
                    ds._dump(kit.encode_event(e)) for e in ticket.events
                )
                bisect.insort(tables.ids, ticket.id)
        return len(tickets)

    mp.setattr(ds.DictStore, "transaction", transaction)
    mp.setattr(ds._Tickets, "_add_many", add_many)


def _committed(store: ds.DictStore, unit: Any) -> ds._Tables:
    with store.transaction(unit):  # refuses when the unit has ended
        pass
    return store._backend.tables if unit is None else store._backend._tables


def _firings_schedule_ignores_the_unit(mp: pytest.MonkeyPatch) -> None:
    """``due`` and ``next_due`` of a unit of work read the committed schedule only."""

    def scheduled(self: ds._Firings) -> list[TicketPlan]:
        plans = [ds._plan(raw) for raw in _committed(self._store, self._unit).plans.values()]
        ordered = sorted((p for p in plans if p.next_due is not None), key=lambda p: p.ticket_id)
        return sorted(ordered, key=lambda p: p.next_due or datetime.max)

    mp.setattr(ds._Firings, "_scheduled", scheduled)


def _outbox_due_and_list_ignore_the_unit(mp: pytest.MonkeyPatch) -> None:
    """``due`` and ``list`` of a unit of work read the committed messages only."""

    def all_(self: ds._Outbox) -> list[OutboxMessage]:
        return [ds._message(raw) for raw in _committed(self._store, self._unit).outbox.values()]

    mp.setattr(ds._Outbox, "_all", all_)


def _documents_read_the_committed_versions(mp: pytest.MonkeyPatch) -> None:
    """``get`` and ``history`` of a unit of work read the committed versions only."""

    def versions(self: ds._Documents, key: str) -> tuple[bytes, ...]:
        return _committed(self._store, self._unit).documents.get(self._kind, {}).get(key, ())

    mp.setattr(ds._Documents, "_versions", versions)


# -- variants the suite caught already ----------------------------------------------------------


def _firings_record_true_twice(mp: pytest.MonkeyPatch) -> None:
    real = ds._Firings._record
    mp.setattr(ds._Firings, "_record", lambda self, record: real(self, record) or True)


def _outbox_due_ignoring_limit(mp: pytest.MonkeyPatch) -> None:
    real = ds._Outbox._due
    mp.setattr(ds._Outbox, "_due", lambda self, at, limit: real(self, at, 10**6))


def _ledger_plans_on_a_stale_cache(mp: pytest.MonkeyPatch) -> None:
    """Keeps each member's first replayed entries for good (its idempotency keys go stale;
    each read replays them again, so that applying a plan's entries leaves them stale)."""
    cache: dict[str, Any] = {}
    real = ds._Ledger._member

    def member(tables: ds._Tables, member_id: str) -> Any:
        first = cache.setdefault(member_id, list(real(tables, member_id).entries))
        return LedgerState.replay(member_id, first)

    mp.setattr(ds._Ledger, "_member", staticmethod(member))


def _ledger_without_the_version_check(mp: pytest.MonkeyPatch) -> None:
    """Plans in one transaction and appends in another: a concurrent entry is overdrawn."""

    def write(self: ds._Ledger, member_ids: Any, plan: Any) -> list[Any]:
        ids = [kit.check_id(m, "member_id") for m in member_ids]
        with self._store.transaction(self._unit) as tables:
            states = {m: self._member(tables, m) for m in ids}
        entries = list(plan(states))
        time.sleep(0.001)  # widen the window between plan and append, so the race is certain
        with self._store.transaction(self._unit) as tables:
            for entry in entries:
                raw = ds._dump(kit.encode_document(entry))
                tables.ledger[entry.member_id] = (*tables.ledger.get(entry.member_id, ()), raw)
        return entries

    mp.setattr(ds._Ledger, "write", write)


def _unlocked_transactions(mp: pytest.MonkeyPatch) -> None:
    """Each call publishes its copy of the tables without holding the lock: lost updates."""
    real = ds.DictStore.transaction

    @contextmanager
    def transaction(self: ds.DictStore, unit: Any) -> Any:
        if unit is not None:
            with real(self, unit) as tables:
                yield tables
            return
        work = self._backend.tables.copy()
        yield work
        time.sleep(0.0005)
        self._backend.tables = work

    mp.setattr(ds.DictStore, "transaction", transaction)


def _ledger_one_transaction_per_entry(mp: pytest.MonkeyPatch) -> None:
    """Plans under the lock, then sends each entry in a transaction of its own: a write the
    backend refuses at its second entry keeps the first (a transfer half done)."""

    def write(self: ds._Ledger, member_ids: Any, plan: Any) -> list[Any]:
        ids = [kit.check_id(m, "member_id") for m in member_ids]
        with self._store.transaction(self._unit) as tables:
            states = {m: self._member(tables, m) for m in ids}
            entries = check_plan(ids, states, plan(states))
        for entry in entries:
            try:
                with self._store.transaction(self._unit) as tables:
                    self._store._backend.check_entry(entry.member_id, entry.seq)
                    raw = ds._dump(kit.encode_document(entry))
                    tables.ledger[entry.member_id] = (*tables.ledger.get(entry.member_id, ()), raw)
            except ds.BackendError as err:
                raise self._translated(err) from err
        return entries

    mp.setattr(ds._Ledger, "write", write)


def _ledger_cache_ahead_of_the_backend(mp: pytest.MonkeyPatch) -> None:
    """Keeps each member's state in the handle and moves it on before the backend took the
    entries: a refused write stays in the cache (read back, its key used)."""
    states: dict[str, LedgerState] = {}
    real_write = ds._Ledger.write

    def state(self: ds._Ledger, member_id: str) -> LedgerState:
        if member_id not in states:
            with self._store.transaction(self._unit) as tables:
                states[member_id] = self._member(tables, member_id)
        return states[member_id]

    def read(self: ds._Ledger, member_id: str, view: Any) -> Any:
        return view(state(self, kit.check_id(member_id, "member_id")))

    def write(self: ds._Ledger, member_ids: Any, plan: Any) -> list[Any]:
        ids = [kit.check_id(m, "member_id") for m in member_ids]
        current = {m: state(self, m) for m in ids}
        entries = check_plan(ids, current, plan(current))
        for entry in entries:
            current[entry.member_id].apply(entry)
        return real_write(self, ids, lambda _: entries)

    mp.setattr(ds._Ledger, "read", read)
    mp.setattr(ds._Ledger, "write", write)


_DUE = r"due\(\) orders PENDING messages by next_attempt_at, then by key"

CAUGHT: list[tuple[Patch, str, type[BaseException], str]] = [
    # (variant, the check that catches it, what it raises, what that says: the reason)
    (_outbox_due_by_key, "test_due_orders_by_next_attempt_then_key", AssertionError, _DUE),
    (_outbox_due_by_creation, "test_due_orders_by_next_attempt_then_key", AssertionError, _DUE),
    (
        _outbox_list_by_key,
        "test_list_orders_by_creation_then_key",
        AssertionError,
        r"list\(\) orders messages by created_at, then by key",
    ),
    (
        _outbox_delivery_clears_the_error,
        "test_a_delivery_keeps_the_last_error",
        AssertionError,
        "a delivery keeps the last error",
    ),
    (
        _outbox_racy_claim,
        "test_concurrent_claims_have_one_winner",
        AssertionError,
        "claiming one message with the same attempts exactly one must get True",
    ),
    (
        _firings_racy_record,
        "test_concurrent_records_of_one_key_have_one_winner",
        AssertionError,
        "recording the same firing key at the same moment exactly one must get True",
    ),
    (
        _firings_racy_plan,
        "test_concurrent_plans_keep_the_newest_version",
        AssertionError,
        "must leave the plan of the newest version",
    ),
    (
        _add_many_half_way_in_a_unit,
        "test_a_failed_add_many_inside_writes_none_of_its_tickets",
        AssertionError,
        "an add_many refused inside a unit of work must leave none of its tickets",
    ),
    (
        _firings_schedule_ignores_the_unit,
        "test_a_unit_of_work_reads_its_own_records_and_plans",
        AssertionError,
        "the firings role of a unit of work must read the unit's own writes",
    ),
    (
        _outbox_due_and_list_ignore_the_unit,
        "test_a_unit_of_work_reads_its_own_messages",
        AssertionError,
        "the outbox role of a unit of work must read the unit's own writes",
    ),
    (
        _documents_read_the_committed_versions,
        "test_a_unit_of_work_reads_its_own_documents",
        AssertionError,
        "the document roles of a unit of work must read the unit's own versions",
    ),
    (_firings_record_true_twice, "test_a_key_is_recorded_once", AssertionError, r"is False"),
    (
        _outbox_due_ignoring_limit,
        "test_due_in_order_of_next_attempt",
        AssertionError,
        r"\['a', 'b', 'late'\] == \['a', 'b'\]",  # due(limit=2) gave a third
    ),
    (_ledger_plans_on_a_stale_cache, "test_threads_never_overdraw", LedgerCorrupt, "is not entry"),
    (
        _ledger_without_the_version_check,
        "test_threads_never_overdraw",
        AssertionError,
        "concurrent redemptions .* raised .*LedgerCorrupt",
    ),
    (
        _ledger_one_transaction_per_entry,
        "test_a_backend_fault_leaves_the_ledger_and_the_key_unused[transfer]",
        AssertionError,
        r"a write the backend refused at entry 2 of member 'bob' \(transfer\) must leave every",
    ),
    (
        _ledger_one_transaction_per_entry,
        "test_a_backend_fault_leaves_the_ledger_and_the_key_unused[expire]",
        AssertionError,
        r"a write the backend refused at entry 5 of member 'ann' \(expire\) must leave every",
    ),
    (
        _ledger_cache_ahead_of_the_backend,
        "test_a_backend_fault_leaves_the_ledger_and_the_key_unused[earn]",
        AssertionError,
        r"a write the backend refused at entry 4 of member 'ann' \(earn\) must leave every",
    ),
    (
        _unlocked_transactions,
        "test_threads_never_lose_an_event",
        AssertionError,
        r"Right contains \d+ more items",  # events written and lost
    ),
]


@pytest.mark.parametrize(
    ("patch", "check", "error", "reason"), CAUGHT, ids=[c[0].__name__.strip("_") for c in CAUGHT]
)
def test_the_suite_catches_a_wrong_dictstore(
    monkeypatch: pytest.MonkeyPatch,
    patch: Patch,
    check: str,
    error: type[BaseException],
    reason: str,
) -> None:
    """The check fails on the variant for the reason it is there for (its message), not for
    another (a racing thread raising, a missing attribute of the planted code, ...)."""
    patch(monkeypatch)
    with pytest.raises(error, match=reason):
        _run(check)


@pytest.mark.parametrize("check", sorted({c[1] for c in CAUGHT}))
def test_the_same_checks_pass_on_the_right_dictstore(check: str) -> None:
    _run(check)


def _run(check: str) -> None:
    """Run the suite's ``check`` (``name`` or ``name[parameter]``) on a new dictstore, with
    the hooks of ``DictStores`` where it asks for them."""
    found = re.fullmatch(r"(\w+)(?:\[(\w+)\])?", check)
    assert found is not None, check
    method = getattr(_Checks(), found[1])
    factory = DictStores()
    store = factory()
    try:
        kwargs: dict[str, Any] = {"store": store}
        names = inspect.signature(method).parameters
        if "store_factory" in names:
            kwargs["store_factory"] = factory
        if found[2] is not None:
            (parameter,) = [n for n in names if n not in kwargs]
            kwargs[parameter] = found[2]
        method(**kwargs)
    finally:
        store.close()
