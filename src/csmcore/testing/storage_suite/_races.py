"""Races between threads and processes (:class:`ConcurrencyTests`), and writer processes
killed while they hold the lock (:class:`CrashTests`)."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

from csmcore import conditions as cd
from csmcore.calendars import BusinessCalendar
from csmcore.errors import (
    ConcurrencyError,
    CsmError,
)
from csmcore.storage import open_store
from csmcore.storage.protocols import Store
from csmcore.testing._workers import (
    append_worker,
    bulk_writer,
    in_process,
    race_once,
    race_worker,
    stuck_writer,
)
from csmcore.testing.builders import T0, make_comment, make_ticket
from csmcore.testing.storage_suite._base import (
    StoreFixtures,
)
from csmcore.tickets import (
    Commented,
    Priority,
    PriorityChanged,
    Ticket,
)


def _race_threads(handles: list[Store], ticket_id: str) -> list[str]:
    """Each handle appends :func:`~csmcore.testing._workers.race_events` at expected version 1
    from its own thread, all released together; the outcomes, sorted."""
    start = threading.Barrier(len(handles))
    results: list[str] = []

    def race(worker: int) -> None:
        start.wait()
        results.append(race_once(handles[worker], ticket_id, worker))

    threads = [threading.Thread(target=race, args=(w,)) for w in range(len(handles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)


def _one_winner(writers: int) -> list[str]:
    return sorted(["won"] + ["conflict"] * (writers - 1))


def _torn(found: list[Ticket], condition: cd.Condition) -> list[str]:
    """What is wrong with ``found`` as a result of a query for ``condition``."""
    problems = [f"{t.id} at version {t.version} does not match" for t in found]
    problems = [p for p, t in zip(problems, found, strict=True) if not condition.matches(t)]
    ids = [t.id for t in found]
    if ids != sorted(set(ids)):
        problems.append(f"ids not strictly ascending: {ids}")
    return problems


def _run_processes(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]], ctx: Any) -> list[Any]:
    """Run each ``(target, args)`` in its own spawned process; return their results in order of
    completion. Fails the test if one raised or did not finish in time."""
    results = ctx.Queue()
    procs = [ctx.Process(target=in_process, args=(t, a, results)) for t, a in jobs]
    for proc in procs:
        proc.start()
    try:
        outcomes = [results.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():  # stuck: end it, or it would keep the test run from exiting
                proc.terminate()
                proc.join(timeout=5)
    failed = [detail for status, detail in outcomes if status == "error"]
    assert failed == [], f"a writer process failed: {failed}"
    return [detail for _, detail in outcomes]


class ConcurrencyTests(StoreFixtures):
    """Concurrent writers: no lost event; one winner per expected version."""

    writers: ClassVar[int] = 4
    """Concurrent writers (threads, processes) in the lost-event checks."""
    appends_per_writer: ClassVar[int] = 10
    racers: ClassVar[int] = 3
    """Writers racing with the same expected version."""
    race_rounds: ClassVar[int] = 100
    """Rounds of that race between threads, each on a new ticket (so no handle has it cached);
    process races run a tenth as many."""
    race_reads: ClassVar[int] = 120
    """Queries made while writers append, in the torn-read check; the check also waits until
    the writers have committed a quarter as many appends."""

    def _authors(self, store: Store, ticket_id: str) -> list[str]:
        events = store.tickets.get(ticket_id).events[1:]
        return sorted(e.author for e in events if isinstance(e, Commented) and e.author)

    def _expected_authors(self) -> list[str]:
        return sorted(
            f"w{w}-{n}" for w in range(self.writers) for n in range(self.appends_per_writer)
        )

    def test_threads_never_lose_an_event(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-1"))
        handles = [self._handle(store) for _ in range(self.writers)]
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            mine = handles[worker]
            try:
                for n in range(self.appends_per_writer):
                    while True:
                        version = mine.tickets.get("T-1").version
                        try:
                            mine.tickets.append(
                                "T-1",
                                [make_comment(T0, f"w{worker}-{n}")],
                                expected_version=version,
                            )
                            break
                        except ConcurrencyError:
                            continue
            except BaseException as err:  # reported below
                errors.append(err)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(self.writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for handle in handles:
            if handle is not store:
                handle.close()
        assert errors == []
        assert self._authors(store, "T-1") == self._expected_authors()
        assert store.tickets.get("T-1").version == 1 + self.writers * self.appends_per_writer

    def test_threads_with_the_same_expected_version_have_one_winner(self, store: Store) -> None:
        """Of several writers appending at the same expected version, exactly one wins and every
        other one gets ConcurrencyError, never an InvalidTransition about the winner's events."""
        handles = [self._handle(store) for _ in range(self.racers)]
        outcomes: list[list[str]] = []
        try:
            for round_ in range(self.race_rounds):
                ticket_id = f"R-{round_:03d}"
                store.tickets.add(make_ticket(ticket_id))
                outcomes.append(_race_threads(handles, ticket_id))
                assert store.tickets.get(ticket_id).version == 2
        finally:
            for handle in handles:
                if handle is not store:
                    handle.close()
        assert [o for o in outcomes if o != _one_winner(self.racers)] == []

    def test_queries_never_return_half_of_a_concurrent_append(self, store: Store) -> None:
        """Writers keep flipping the priority of a few tickets between high and low while a
        reader queries for ``priority == 'high'``: every ticket a query returns must be one
        whole committed state that matches (a summary and a history read at different moments
        would let a ticket selected as high come back low)."""
        high = cd.Eq("priority", "high")
        count = 12
        store.tickets.add_many(
            make_ticket(f"T-{n:02d}", priority="high" if n % 2 else "low") for n in range(count)
        )
        handles = [self._handle(store) for _ in range(self.racers)]
        stop = threading.Event()
        written: list[str] = []
        failures: list[BaseException] = []

        def flip(worker: int) -> None:
            mine = handles[worker]
            rnd = random.Random(worker)
            try:
                while not stop.is_set():
                    ticket = mine.tickets.get(f"T-{rnd.randrange(count):02d}")
                    new = Priority.LOW if ticket.priority is Priority.HIGH else Priority.HIGH
                    at = ticket.updated_at + timedelta(seconds=1)
                    try:
                        mine.tickets.append(
                            ticket.id,
                            [PriorityChanged(at=at, priority=new)],
                            expected_version=ticket.version,
                        )
                        written.append(ticket.id)
                    except ConcurrencyError:  # another writer got there first
                        pass
            except BaseException as err:  # reported below
                failures.append(err)

        threads = [threading.Thread(target=flip, args=(w,)) for w in range(self.racers)]
        for thread in threads:
            thread.start()
        problems: list[str] = []
        reads = 0
        # Writers normally pass the bar in well under a second; the deadline turns writers that
        # make no progress (every append refused, say) into a failure instead of a hang.
        deadline = time.monotonic() + 120
        try:
            while (
                not failures
                and (reads < self.race_reads or len(written) < self.race_reads // 4)
                and time.monotonic() < deadline
            ):
                if reads % 2:
                    problems += _torn(store.tickets.find(high), high)
                else:
                    for batch in store.tickets.stream(high, batch_size=4):
                        problems += _torn(batch, high)
                        assert 0 < len(batch) <= 4
                reads += 1
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            for handle in handles:
                if handle is not store:
                    handle.close()
        assert failures == []
        assert problems == []
        assert len(written) >= self.race_reads // 4, (
            f"the writers landed {len(written)} appends in 120 s; is every append refused?"
        )
        assert sum(t.version - 1 for t in store.tickets.find(cd.Always())) == len(written)

    def _handle(self, store: Store) -> Store:
        """A separate connection when the store can reopen, else the store itself."""
        return store if "reopen" in self.opt_out else open_store(store.url)

    def test_processes_never_lose_an_event(self, store: Store) -> None:
        self.require("processes")
        store.tickets.add(make_ticket("T-1"))
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(self.writers)
        _run_processes(
            [
                (append_worker, (store.url, "T-1", w, self.appends_per_writer, start, self.opener))
                for w in range(self.writers)
            ],
            ctx,
        )
        assert self._authors(store, "T-1") == self._expected_authors()

    def test_processes_with_the_same_expected_version_have_one_winner(self, store: Store) -> None:
        self.require("processes")
        ids = [f"R-{n:02d}" for n in range(max(self.race_rounds // 10, 1))]
        store.tickets.add_many([make_ticket(i) for i in ids])
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(self.racers)
        results = _run_processes(
            [(race_worker, (store.url, ids, w, start, self.opener)) for w in range(self.racers)],
            ctx,
        )
        outcomes = [sorted(one) for one in zip(*results, strict=True)]
        assert [o for o in outcomes if o != _one_winner(self.racers)] == []
        assert all(store.tickets.get(i).version == 2 for i in ids)


# --------------------------------------------------------------------------------------------
# Stateful agreement with the memory reference
# --------------------------------------------------------------------------------------------


def _killed(target: Callable[..., None], args: tuple[Any, ...], settle: float = 0.0) -> None:
    """Start ``target(*args, ready)`` in a spawned process, wait until it sets ``ready`` (and
    ``settle`` seconds more), then kill it with SIGKILL, as a crash or ``kill -9`` would."""
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=target, args=(*args, ready))
    proc.start()
    try:
        assert ready.wait(120), f"the writer process {target.__name__} never got going"
        time.sleep(settle)
    finally:
        if proc.pid is not None and proc.is_alive():
            os.kill(proc.pid, signal.SIGKILL)
        proc.join(30)
    assert proc.exitcode == -signal.SIGKILL, f"the writer process ended with {proc.exitcode}"


class CrashTests(StoreFixtures):
    """A writer process killed (SIGKILL) while it holds the adapter's lock blocks the other
    writers for at most ``crash_recovery_seconds``; what was committed stays whole, and what it
    had not committed is gone. Needs ``processes`` and ``crash`` (a store that cannot recover
    from a killed writer opts out of ``"crash"`` with the reason)."""

    crash_recovery_seconds: ClassVar[float] = 10.0
    """How long, at most, other writers may wait for the lock of a writer process that was
    killed while holding it."""

    def _handle(self, store: Store) -> Store:
        return store if "reopen" in self.opt_out else open_store(store.url)

    def _write_after_the_kill(self, store: Store, write: Callable[[Store], object]) -> None:
        """Run ``write`` on another handle of ``store`` (``store`` itself without ``reopen``)
        after a writer was killed holding its lock; fail when the write was refused, or waited
        longer than :attr:`crash_recovery_seconds`."""
        started = time.monotonic()
        other: Store | None = None
        try:
            other = self._handle(store)  # opening may take the lock too
            write(other)
        except CsmError as err:
            raise AssertionError(
                f"after {time.monotonic() - started:.1f} s, the killed writer's lock still "
                f"failed the next writer: {type(err).__name__}: {err}"
            ) from err
        finally:
            waited = time.monotonic() - started
            if other is not None and other is not store:
                other.close()
        assert waited < self.crash_recovery_seconds, (
            f"the other writers waited {waited:.1f} s for the killed writer's lock"
        )

    def test_a_writer_killed_inside_a_unit_of_work_blocks_nobody_for_long(
        self, store: Store
    ) -> None:
        self.require("processes")
        self.require("crash")
        store.tickets.add_many([make_ticket("T-1"), make_ticket("T-2")])
        store.tickets.append("T-1", [make_comment(T0, "before")], expected_version=1)
        _killed(stuck_writer, (store.url, "T-1", self.opener))

        def write(other: Store) -> None:
            other.tickets.append("T-1", [make_comment(T0, "after")], expected_version=2)
            other.tickets.add(make_ticket("T-3"))
            other.calendars.put("after", BusinessCalendar.always(), expected_version=0)

        self._write_after_the_kill(store, write)
        authors = [getattr(e, "author", None) for e in store.tickets.get("T-1").events]
        assert authors == [None, "before", "after"]
        assert [t.id for t in store.tickets.find(cd.Always())] == ["T-1", "T-2", "T-3"]
        assert store.calendars.keys() == ["after"]

    def test_a_writer_killed_in_the_middle_of_add_many_tears_nothing(self, store: Store) -> None:
        self.require("processes")
        self.require("crash")
        size = 200
        _killed(bulk_writer, (store.url, size, self.opener), settle=0.3)
        self._write_after_the_kill(store, lambda other: other.tickets.add(make_ticket("T-after")))
        batches: dict[str, int] = {}
        for ticket in store.tickets.find(cd.Always()):
            assert ticket.version == 1, ticket.id
            if ticket.id.startswith("B-"):
                key = ticket.id[:7]
                batches[key] = batches.get(key, 0) + 1
        assert batches, "not one batch was committed before the kill"
        torn = {k: n for k, n in batches.items() if n != size}
        assert torn == {}, f"batches stored in part: {torn}"
        assert sorted(batches) == [f"B-{b:05d}" for b in range(len(batches))]
