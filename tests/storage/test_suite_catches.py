"""The conformance suite catches what it promises to: each store here is the memory store with
one planted bug, and the suite's check for it must fail (while the plain memory store passes,
in test_conformance.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from csmcore import conditions as cd
from csmcore.errors import ConcurrencyError
from csmcore.storage.memory import MemoryStore
from csmcore.storage.protocols import Store
from csmcore.testing.storage_suite import MessageTests, ResultTests, UnitOfWorkTests
from csmcore.tickets import Ticket


class _Suite(ResultTests, MessageTests, UnitOfWorkTests):  # not collected: no "Test" prefix
    pass


class _PatchedUnits(MemoryStore):
    """A memory store whose units of work have their ``tickets.find`` replaced."""

    def broken_find(
        self, real: Callable[..., list[Ticket]], before: set[str]
    ) -> Callable[..., list[Ticket]]:
        raise NotImplementedError

    @contextmanager
    def unit_of_work(self) -> Iterator[Any]:
        before = {t.id for t in self.tickets.find(cd.Always())}
        with super().unit_of_work() as uow:
            setattr(uow.tickets, "find", self.broken_find(uow.tickets.find, before))  # noqa: B010
            yield uow


class DuplicatesInUnits(_PatchedUnits):
    """Inside a unit of work, a ticket changed there comes back twice (the committed row and
    the unit's overlay)."""

    def broken_find(
        self, real: Callable[..., list[Ticket]], before: set[str]
    ) -> Callable[..., list[Ticket]]:
        def find(condition: cd.Condition, *, limit: int | None = None) -> list[Ticket]:
            found = real(condition)
            again = [t for t in found if t.id in before and t.version > 1]
            result = sorted(found + again, key=lambda t: t.id)
            return result if limit is None else result[:limit]

        return find


class UnitWritesLast(_PatchedUnits):
    """Inside a unit of work, the tickets written there come after the committed ones."""

    def broken_find(
        self, real: Callable[..., list[Ticket]], before: set[str]
    ) -> Callable[..., list[Ticket]]:
        def find(condition: cd.Condition, *, limit: int | None = None) -> list[Ticket]:
            found = real(condition)
            result = [t for t in found if t.id in before] + [t for t in found if t.id not in before]
            return result if limit is None else result[:limit]

        return find


class StreamStopsAtAShortPage(MemoryStore):
    """``stream`` filters each page of ``batch_size`` tickets and stops at the first page that
    comes out short: the tickets after it are dropped."""

    def __init__(self) -> None:
        super().__init__()
        real = self.tickets.find

        def stream(condition: cd.Condition, *, batch_size: int = 500) -> Iterator[list[Ticket]]:
            every = real(cd.Always())
            for start in range(0, len(every), batch_size):
                page = [t for t in every[start : start + batch_size] if condition.matches(t)]
                if page:
                    yield page
                if len(page) < batch_size:
                    return

        setattr(self.tickets, "stream", stream)  # noqa: B010


class StreamDropsTheLastBatch(MemoryStore):
    """``stream`` yields only full batches."""

    def __init__(self) -> None:
        super().__init__()
        real = self.tickets.stream

        def stream(condition: cd.Condition, *, batch_size: int = 500) -> Iterator[list[Ticket]]:
            return (b for b in real(condition, batch_size=batch_size) if len(b) == batch_size)

        setattr(self.tickets, "stream", stream)  # noqa: B010


class OwnMessages(MemoryStore):
    """Reports an existing id in words of its own."""

    def __init__(self) -> None:
        super().__init__()
        real = self.tickets.add

        def add(ticket: Ticket) -> Ticket:
            try:
                return real(ticket)
            except ConcurrencyError:
                raise ConcurrencyError(f"duplicate key {ticket.id}") from None

        setattr(self.tickets, "add", add)  # noqa: B010


class EndedUnitsStillRead(MemoryStore):
    """The roles of an ended unit of work still answer ``count``."""

    @contextmanager
    def unit_of_work(self) -> Iterator[Any]:
        with super().unit_of_work() as uow:
            store = self

            def count(condition: cd.Condition) -> int:
                return len([t for t in store._tickets.values() if condition.matches(t)])

            setattr(uow.tickets, "count", count)  # noqa: B010
            yield uow


CAUGHT: list[tuple[Callable[[], Store], str]] = [
    (DuplicatesInUnits, "test_a_unit_of_work_sees_each_ticket_once_in_id_order"),
    (UnitWritesLast, "test_a_unit_of_work_sees_each_ticket_once_in_id_order"),
    (StreamStopsAtAShortPage, "test_stream_gives_every_matching_ticket_once_in_full_batches"),
    (StreamDropsTheLastBatch, "test_stream_gives_every_matching_ticket_once_in_full_batches"),
    (OwnMessages, "test_tickets_report_the_shared_messages"),
    (EndedUnitsStillRead, "test_roles_of_an_ended_unit_of_work_refuse"),
]


@pytest.mark.parametrize(("broken", "check"), CAUGHT, ids=[b.__name__ for b, _ in CAUGHT])
def test_the_suite_catches_a_planted_bug(broken: Callable[[], Store], check: str) -> None:
    store = broken()
    try:
        with pytest.raises(AssertionError):
            getattr(_Suite(), check)(store)
    finally:
        store.close()


@pytest.mark.parametrize("check", sorted({c for _, c in CAUGHT}))
def test_the_same_checks_pass_on_the_memory_store(check: str) -> None:
    store = MemoryStore()
    try:
        getattr(_Suite(), check)(store)
    finally:
        store.close()
