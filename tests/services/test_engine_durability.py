"""Exactly once across crashes and concurrent engines.

SQLite: engine processes run at once on one file; a process killed (SIGKILL) inside its unit of
work, after applying firings and before the commit, then a new run. PostgreSQL: the same with
processes, and engines on several connections in threads. After all of them: each firing
recorded once, its ticket events appended once, and every notification in the outbox once.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from csmcore.escalation import NotificationRequest, PlannedFiring, dry_run
from csmcore.loyalty import recovery_key
from csmcore.services import EscalationEngine, Ledger
from csmcore.storage import Store, open_store, role_of
from csmcore.testing._engine_workers import (
    BOOK,
    RECOVERY_POINTS,
    RULES,
    T0,
    engine_worker,
    scenario_tickets,
)
from csmcore.testing._workers import in_process

H = timedelta(hours=1)
M = timedelta(minutes=1)
NOW = T0 + 6 * H
TICKETS = 12


def _expected() -> list[PlannedFiring]:
    return dry_run(scenario_tickets(TICKETS), BOOK, RULES, T0 - M, NOW)


def _prepared(store: Store) -> None:
    store.tickets.add_many(scenario_tickets(TICKETS))
    EscalationEngine(store, BOOK, RULES).plan_all()


def _assert_exactly_once(store: Store) -> None:
    expected = _expected()
    records = role_of(store, "firings").list()
    assert Counter(r.key for r in records) == Counter(p.firing.key for p in expected)
    assert [r.firing for r in records] == sorted(
        (p.firing for p in expected), key=lambda f: (f.at, f.key_text)
    )
    assert all(r.recorded_at >= r.firing.at for r in records)
    messages = role_of(store, "outbox").list()
    assert Counter(m.key for m in messages) == Counter(
        r.idempotency_key
        for p in expected
        for r in p.requests
        if isinstance(r, NotificationRequest)
    )
    ledger = Ledger(store)
    for ticket in scenario_tickets(TICKETS):
        events = store.tickets.get(ticket.id).events
        kinds = Counter(type(e).__name__ for e in events)
        assert kinds == {
            "TicketCreated": 1,
            "TagsChanged": 1,
            "PriorityChanged": 1,
            "Commented": 1,
        }, ticket.id
        # the breach's loyalty points, granted once, with the firing
        entries = ledger.entries(ticket.requester)
        assert [(e.key, e.points) for e in entries] == [
            (recovery_key(ticket.id, "first_reply", 1), RECOVERY_POINTS)
        ], ticket.id
    assert EscalationEngine(store, BOOK, RULES).next_due() is None


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest) -> Any:
    factory: Callable[[], Store] = request.getfixturevalue(f"{request.param}_factory")
    store = factory()
    yield store
    store.close()


def _processes(jobs: list[tuple[Any, ...]]) -> list[tuple[str, Any]]:
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=in_process, args=(engine_worker, args, results)) for args in jobs]
    for proc in procs:
        proc.start()
    try:
        return [results.get(timeout=180) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)


def test_concurrent_engine_processes_fire_each_firing_once(sql_store: Store) -> None:
    _prepared(sql_store)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    jobs = [(sql_store.url, NOW, start, None, 2) for _ in range(3)]
    threading.Timer(1.0, start.set).start()
    outcomes = _processes(jobs)
    assert [status for status, _ in outcomes] == ["ok"] * 3, outcomes
    fired = Counter(key for _, keys in outcomes for key in keys)
    assert set(fired.values()) == {1}  # no firing applied by two engines
    assert sorted(fired) == sorted(p.firing.key_text for p in _expected())
    _assert_exactly_once(sql_store)


def test_concurrent_engines_on_postgres_connections_fire_each_firing_once(
    postgres_factory: Callable[[], Store],
) -> None:
    store = postgres_factory()
    handles = [open_store(store.url) for _ in range(4)]
    try:
        _prepared(store)
        barrier = threading.Barrier(len(handles))
        fired: list[list[str]] = [[] for _ in handles]
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                engine = EscalationEngine(handles[index], BOOK, RULES, batch_size=1)
                barrier.wait(30)
                fired[index] = [p.firing.key_text for p in engine.run(NOW).firings]
            except BaseException as err:  # reported below
                errors.append(err)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(len(handles))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        counted = Counter(key for keys in fired for key in keys)
        assert set(counted.values()) == {1}
        assert sorted(counted) == sorted(p.firing.key_text for p in _expected())
        _assert_exactly_once(store)
    finally:
        for handle in handles:
            handle.close()
        store.close()


@pytest.mark.parametrize("kill_after", [1, 3, 4, 9])
def test_a_process_killed_between_applying_and_committing_loses_nothing(
    sql_store: Store, kill_after: int
) -> None:
    """The worker kills itself (SIGKILL) in the hook that runs after a firing's writes and
    before its unit of work commits (batches of two tickets: six firings). What earlier units
    of work committed stays; the killed one is gone whole (its loyalty points too: with
    ``kill_after=3`` the kill comes right after the breach firing wrote them); a new run fires
    the rest once."""
    _prepared(sql_store)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=engine_worker, args=(sql_store.url, NOW, None, kill_after, 2))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -signal.SIGKILL
    committed = (kill_after - 1) // 6 * 6  # whole batches of two tickets before the kill
    records = role_of(sql_store, "firings").list()
    assert len(records) == committed
    messages = role_of(sql_store, "outbox").list()
    assert len(messages) == committed // 3 * 4
    ledger = Ledger(sql_store)
    assert len(ledger.members()) == committed // 3  # one grant per committed ticket
    again = EscalationEngine(sql_store, BOOK, RULES).run(NOW)
    assert len(again.firings) == 3 * TICKETS - committed
    _assert_exactly_once(sql_store)


def test_two_crashes_then_concurrent_engines(sql_store: Store) -> None:
    _prepared(sql_store)
    ctx = multiprocessing.get_context("spawn")
    for kill_after in (8, 5):
        proc = ctx.Process(target=engine_worker, args=(sql_store.url, NOW, None, kill_after, 2))
        proc.start()
        proc.join(120)
        assert proc.exitcode == -signal.SIGKILL
    outcomes = _processes([(sql_store.url, NOW, None, None, 3) for _ in range(2)])
    assert [status for status, _ in outcomes] == ["ok", "ok"], outcomes
    _assert_exactly_once(sql_store)


def test_a_second_engine_waits_for_the_first_and_skips_what_it_fired(
    postgres_factory: Callable[[], Store], postgres_dsn: str
) -> None:
    """PostgreSQL: engine A is inside its unit of work, its first firing recorded; engine B
    (another connection) plans the same ticket from the committed state and inserts the same
    firing key, which waits for A (seen in pg_stat_activity). When A commits, B's insert finds
    the key taken: B rolls back, reads the ticket again, and fires nothing."""
    import time

    import psycopg

    store = postgres_factory()
    other = open_store(store.url)
    try:
        store.tickets.add_many(scenario_tickets(1))
        paused = threading.Event()
        resume = threading.Event()

        def hook(_: PlannedFiring) -> None:
            if not paused.is_set():
                paused.set()
                assert resume.wait(60)

        first = EscalationEngine(store, BOOK, RULES, on_applied=hook)
        first.plan_all()
        second = EscalationEngine(other, BOOK, RULES)
        runs: dict[str, Any] = {}
        a = threading.Thread(target=lambda: runs.setdefault("a", first.run(NOW)))
        a.start()
        assert paused.wait(60)
        b = threading.Thread(target=lambda: runs.setdefault("b", second.run(NOW)))
        b.start()
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            waiting = 0
            for _ in range(600):  # until B waits for A's lock on the firing key
                waiting = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE 'INSERT INTO csm_firings%'"
                ).fetchone()[0]  # type: ignore[index]
                if waiting:
                    break
                time.sleep(0.05)
        assert waiting, "engine B never waited for engine A's firing"
        resume.set()
        a.join(60)
        b.join(60)
        assert len(runs["a"].firings) == 3
        assert runs["b"].firings == ()
        assert runs["b"].retries >= 1
        fired = Counter(r.key for r in role_of(store, "firings").list())
        assert len(fired) == 3
        assert set(fired.values()) == {1}
        assert len(role_of(store, "outbox").list()) == 4
        assert store.tickets.get("E-0000").version == 4
    finally:
        other.close()
        store.close()
