"""PostgreSQL: writers that deadlock get ConcurrencyError (the documented retry loop works),
and the deadlocks one call could cause on its own are avoided by taking row locks in id order."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

from csmcore import conditions as cd
from csmcore.errors import ConcurrencyError, StorageError
from csmcore.storage import kit
from csmcore.storage.protocols import Store
from csmcore.testing.builders import T0, make_comment, make_ticket

pytestmark = pytest.mark.usefixtures("postgres_dsn")

psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")

_CONFLICTS = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)


def _race(*writers: Callable[[threading.Barrier], None]) -> list[BaseException | None]:
    """Run each writer in its own thread (they share a barrier); what each raised, or None."""
    barrier = threading.Barrier(len(writers), timeout=30)
    outcomes: list[BaseException | None] = [None] * len(writers)

    def run(index: int) -> None:
        try:
            writers[index](barrier)
        except BaseException as err:
            outcomes[index] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def _append_one(store: Store, ticket_id: str, author: str) -> None:
    """The documented retry loop's body: reload, append at the version read."""
    ticket = store.tickets.get(ticket_id)
    store.tickets.append(ticket_id, [make_comment(T0, author)], expected_version=ticket.version)


def test_units_of_work_appending_in_opposite_order_get_concurrency_error(
    postgres_factory: Callable[[], Store],
) -> None:
    store = postgres_factory()
    store.tickets.add_many([make_ticket("A"), make_ticket("B")])

    def writer(name: str, first: str, second: str) -> Callable[[threading.Barrier], None]:
        def write(barrier: threading.Barrier) -> None:
            with store.unit_of_work() as uow:
                uow.tickets.append(first, [make_comment(T0, name)], expected_version=1)
                barrier.wait()  # each holds the lock of its first ticket: a deadlock
                uow.tickets.append(second, [make_comment(T0, name)], expected_version=1)

        return write

    outcomes = _race(writer("one", "A", "B"), writer("two", "B", "A"))
    failed = [err for err in outcomes if err is not None]
    assert len(failed) == 1, outcomes
    assert isinstance(failed[0], ConcurrencyError), repr(failed[0])
    assert isinstance(failed[0].__cause__, _CONFLICTS)
    assert "rolled back as a whole" in str(failed[0])
    # the winner's unit of work is complete, the loser's left nothing
    assert [store.tickets.get(i).version for i in "AB"] == [2, 2]
    # the loser runs its unit of work again, and it succeeds
    loser = "one" if outcomes[0] is not None else "two"
    with store.unit_of_work() as uow:
        for ticket_id in "AB":
            version = uow.tickets.get(ticket_id).version
            uow.tickets.append(ticket_id, [make_comment(T0, loser)], expected_version=version)
    assert [store.tickets.get(i).version for i in "AB"] == [3, 3]


def test_a_unit_of_work_that_goes_on_after_a_conflict_is_rolled_back(
    postgres_factory: Callable[[], Store],
) -> None:
    store = postgres_factory()
    store.tickets.add_many([make_ticket("A"), make_ticket("B"), make_ticket("C")])
    later: list[BaseException] = []

    def writer(first: str, second: str) -> Callable[[threading.Barrier], None]:
        def write(barrier: threading.Barrier) -> None:
            with store.unit_of_work() as uow:
                uow.tickets.append(first, [make_comment(T0, "x")], expected_version=1)
                barrier.wait()
                try:
                    uow.tickets.append(second, [make_comment(T0, "x")], expected_version=1)
                except ConcurrencyError:
                    # the caller swallows the conflict: the unit of work refuses to go on
                    try:
                        uow.tickets.append("C", [make_comment(T0, "y")], expected_version=1)
                    except StorageError as err:
                        later.append(err)

        return write

    outcomes = _race(writer("A", "B"), writer("B", "A"))
    failed = [err for err in outcomes if err is not None]
    assert len(failed) == 1, outcomes
    assert isinstance(failed[0], ConcurrencyError), outcomes
    assert len(later) == 1, later
    assert "aborted by a conflict" in str(later[0])
    assert store.tickets.get("C").version == 1
    assert sorted(store.tickets.get(i).version for i in "AB") == [2, 2]


def test_add_many_of_the_same_new_ids_in_opposite_order_never_deadlocks(
    postgres_factory: Callable[[], Store],
) -> None:
    store = postgres_factory()
    for round_ in range(8):
        ids = [f"R{round_}-{i:03d}" for i in range(300)]
        orders = [ids, ids[::-1]]

        def writer(order: list[str]) -> Callable[[threading.Barrier], None]:
            def write(barrier: threading.Barrier) -> None:
                tickets = [make_ticket(i) for i in order]
                barrier.wait()
                store.tickets.add_many(tickets)

            return write

        outcomes = _race(*(writer(order) for order in orders))
        failed = [err for err in outcomes if err is not None]
        assert len(failed) == 1, outcomes
        # the second writer waited for the first and found the first id taken
        assert isinstance(failed[0], ConcurrencyError), repr(failed[0])
        assert str(failed[0]) == str(kit.ticket_exists(ids[0]))
        assert store.tickets.count(cd.Always()) == 300 * (round_ + 1)
    # retrying the loser's work is refused the same way, and adding new ids works
    with pytest.raises(ConcurrencyError, match="'R0-000' already exists"):
        store.tickets.add_many([make_ticket("R0-001"), make_ticket("R0-000")])
    _append_one(store, "R0-000", "after")
    assert store.tickets.add_many([make_ticket("S-2"), make_ticket("S-1")]) == 2


def test_add_many_with_a_taken_id_logs_no_pipeline_warning(
    postgres_factory: Callable[[], Store], caplog: pytest.LogCaptureFixture
) -> None:
    """psycopg runs executemany in pipeline mode and logs a WARNING ("error ignored
    terminating Pipeline") when one of its rows fails; the store finds taken ids first, so a
    host's logs stay clean for this ordinary conflict (a writer racing in between can still
    make psycopg log it; the result is the same)."""
    store = postgres_factory()
    store.tickets.add(make_ticket("B"))
    with caplog.at_level("DEBUG", logger="psycopg"):
        with pytest.raises(ConcurrencyError, match="'B' already exists"):
            store.tickets.add_many([make_ticket("A"), make_ticket("B"), make_ticket("C")])
        with pytest.raises(ConcurrencyError, match="'D' already exists"):
            store.tickets.add_many([make_ticket("D"), make_ticket("D")])
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert [t.id for t in store.tickets.find(cd.Always())] == ["B"]
