"""Reads racing writes: ``find`` / ``stream`` / ``get`` must never see half of an append.

Several writers (each with its own connection) keep flipping the priority of a few tickets
between high and low while a reader queries ``priority == 'high'``. Every ticket a query returns
must be one whole committed state that matches the condition: if the stored summary and the
history were read at different moments, a ticket pushed down as "high" could come back "low".

The writers run until the reader has finished its rounds, so the test has no timing threshold;
the more the two interleave, the more likely a torn read shows.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from csmcore.conditions import Always, Condition, Field
from csmcore.errors import ConcurrencyError
from csmcore.storage import Store, open_store
from csmcore.testing.storage_suite import make_ticket
from csmcore.tickets import Priority, PriorityChanged, Ticket

StoreFactory = Callable[[], Store]

TICKETS = 12
WRITERS = 3
READS = 120


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Fresh stores of each SQL backend (PostgreSQL: skipped without the DSN, required with
    it); every store built is closed after the test."""
    factory: StoreFactory = request.getfixturevalue(f"{request.param}_factory")
    built: list[Store] = []

    def build() -> Store:
        store = factory()
        built.append(store)
        return store

    yield build
    for store in built:
        store.close()


def _flip_priorities(store: Store, worker: int, stop: threading.Event) -> None:
    """Until ``stop``: pick a ticket, flip its priority high <-> low (lost races are fine)."""
    rnd = random.Random(worker)
    while not stop.is_set():
        ticket_id = f"T-{rnd.randrange(TICKETS):02d}"
        ticket = store.tickets.get(ticket_id)
        new = Priority.LOW if ticket.priority is Priority.HIGH else Priority.HIGH
        event = PriorityChanged(at=ticket.updated_at + timedelta(seconds=1), priority=new)
        with contextlib.suppress(ConcurrencyError):  # another writer got there first
            store.tickets.append(ticket_id, [event], expected_version=ticket.version)


def _problems(found: list[Ticket], condition: Condition) -> list[str]:
    ids = [t.id for t in found]
    problems = [f"{t.id} at version {t.version} does not match" for t in found]
    problems = [p for p, t in zip(problems, found, strict=True) if not condition.matches(t)]
    if ids != sorted(set(ids)):
        problems.append(f"ids not strictly ascending: {ids}")
    return problems


def test_queries_never_return_half_of_a_concurrent_append(stores: StoreFactory) -> None:
    reader = stores()
    reader.tickets.add_many(
        make_ticket(f"T-{n:02d}", priority=Priority.HIGH if n % 2 else Priority.LOW)
        for n in range(TICKETS)
    )
    writers = [open_store(reader.url) for _ in range(WRITERS)]
    stop = threading.Event()
    failures: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            _flip_priorities(writers[worker], worker, stop)
        except BaseException as err:  # reported below
            failures.append(err)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(WRITERS)]
    for thread in threads:
        thread.start()
    high = Field("priority") == "high"
    problems: list[str] = []
    try:
        for n in range(READS):
            if n % 2:
                problems += _problems(reader.tickets.find(high), high)
            else:
                for batch in reader.tickets.stream(high, batch_size=4):
                    problems += _problems(batch, high)
                    assert len(batch) <= 4
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for writer in writers:
            writer.close()
    assert failures == []
    assert problems == []
    # the writers did write: the race was real
    assert sum(t.version - 1 for t in reader.tickets.find(Always())) > 0
