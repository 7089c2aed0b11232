"""Appends racing appends: a stale expected version is a ConcurrencyError, never a verdict on
somebody else's newer history.

In each round several writers, each with its own connection and a cold ticket cache, append at
expected version 1 to the same new ticket at once. One closes the ticket; the others comment at
an earlier instant. Whoever commits first wins; every other writer must get ConcurrencyError.
An InvalidTransition ("the ticket is closed" or "events must be in time order") would mean a
writer checked its event against a history newer than the version it was told to expect.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from csmcore.errors import ConcurrencyError, CsmError
from csmcore.storage import Store, open_store
from csmcore.testing.storage_suite import T0, make_ticket
from csmcore.tickets import Commented, Role, Status, StatusChanged, TicketEvent

StoreFactory = Callable[[], Store]

WRITERS = 3
ROUNDS = 100


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


def _events(worker: int) -> list[TicketEvent]:
    if worker == 0:
        return [StatusChanged(at=T0 + timedelta(hours=1), status=Status.CLOSED)]
    return [Commented(at=T0 + timedelta(minutes=worker), author_role=Role.AGENT, author="x")]


def _race(writers: list[Store], ticket_id: str) -> list[str]:
    """Every writer appends its events at expected version 1, released together; returns the
    outcomes, sorted."""
    start = threading.Barrier(len(writers))
    results: list[str] = []

    def race(worker: int) -> None:
        events = _events(worker)
        start.wait()
        try:
            writers[worker].tickets.append(ticket_id, events, expected_version=1)
            results.append("won")
        except ConcurrencyError:
            results.append("conflict")
        except CsmError as err:
            results.append(f"{type(err).__name__}: {err}")

    threads = [threading.Thread(target=race, args=(w,)) for w in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)


def test_a_stale_expected_version_is_always_a_concurrency_error(stores: StoreFactory) -> None:
    store = stores()
    writers = [open_store(store.url) for _ in range(WRITERS)]
    outcomes: list[list[str]] = []
    try:
        for round_ in range(ROUNDS):
            ticket_id = f"R-{round_:03d}"  # new in every round: no writer has it cached
            store.tickets.add(make_ticket(ticket_id))
            outcomes.append(_race(writers, ticket_id))
            assert store.tickets.get(ticket_id).version == 2
    finally:
        for writer in writers:
            writer.close()
    expected = sorted(["won"] + ["conflict"] * (WRITERS - 1))
    assert [o for o in outcomes if o != expected] == []
