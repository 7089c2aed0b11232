"""The storage base classes translate what an adapter's primitives raise, in one place."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Always, Condition
from csmcore.errors import CsmError, NotFound, StorageError, ValidationError
from csmcore.storage.base import (
    DocumentRepositoryBase,
    FiringRepositoryBase,
    OutboxPagingBase,
    StoreBase,
    TicketRepositoryBase,
)
from csmcore.storage.protocols import Versioned
from csmcore.storage.roles import storage_role
from csmcore.testing.builders import make_comment, make_ticket
from csmcore.tickets import Ticket, TicketEvent


class DriverDown(Exception):
    """What a backend driver raises when it cannot reach its server."""


class BadDriverValue(Exception):
    """What a backend driver raises for a value it cannot store."""


class FlakyStore(StoreBase):
    """A store whose driver fails with ``failure`` on every call, after yielding one batch in
    ``stream``; it translates its driver's two errors and nothing else."""

    def __init__(self, failure: BaseException) -> None:
        self.failure = failure
        self.tickets = FlakyTickets(self)
        self.calendars = FlakyDocuments(self, "calendars")

    def translate_error(self, err: BaseException) -> CsmError | None:
        if isinstance(err, DriverDown):
            return StorageError(f"the backend is unreachable: {err}")
        if isinstance(err, BadDriverValue):
            return ValidationError(f"the backend refused a value: {err}")
        return None


class FlakyTickets(TicketRepositoryBase):
    def __init__(self, store: FlakyStore) -> None:
        self._store = store

    def _add_many(self, tickets: list[Ticket]) -> int:
        raise self._store.failure

    def _get(self, ticket_id: str) -> Ticket:
        raise self._store.failure

    def _append(self, ticket_id: str, events: tuple[TicketEvent, ...], expected: int) -> Ticket:
        raise self._store.failure

    def _find(self, condition: Condition, limit: int | None) -> list[Ticket]:
        raise self._store.failure

    def _count(self, condition: Condition) -> int:
        raise self._store.failure

    def _stream(self, condition: Condition, batch_size: int) -> Iterator[list[Ticket]]:
        yield [make_ticket("T-1")]
        raise self._store.failure


class FlakyDocuments(DocumentRepositoryBase[Any]):
    def __init__(self, store: FlakyStore, kind: str) -> None:
        self._store, self.role = store, storage_role(kind)

    def _put(self, key: str, value: Any, expected_version: int) -> Versioned[Any]:
        raise self._store.failure

    def _get(self, key: str, version: int | None) -> Versioned[Any]:
        raise self._store.failure

    def _history(self, key: str) -> list[Versioned[Any]]:
        raise self._store.failure

    def _keys(self) -> list[str]:
        raise self._store.failure


def calls(store: FlakyStore) -> dict[str, Any]:
    """Every public method of the two roles, called with valid arguments."""
    return {
        "add": lambda: store.tickets.add(make_ticket("T-1")),
        "add_many": lambda: store.tickets.add_many([make_ticket("T-1")]),
        "get": lambda: store.tickets.get("T-1"),
        "append": lambda: store.tickets.append("T-1", [make_comment()], expected_version=1),
        "find": lambda: store.tickets.find(Always()),
        "count": lambda: store.tickets.count(Always()),
        "stream": lambda: list(store.tickets.stream(Always())),
        "put": lambda: store.calendars.put("c", BusinessCalendar.always(), expected_version=0),
        "doc get": lambda: store.calendars.get("c"),
        "history": lambda: store.calendars.history("c"),
        "keys": lambda: store.calendars.keys(),
    }


METHODS = sorted(calls(FlakyStore(DriverDown())))


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("failure", "expected"),
    [(DriverDown("timeout"), StorageError), (BadDriverValue("x"), ValidationError)],
)
def test_driver_errors_are_translated_with_the_driver_error_as_cause(
    method: str, failure: Exception, expected: type[CsmError]
) -> None:
    store = FlakyStore(failure)
    with pytest.raises(expected) as caught:
        calls(store)[method]()
    assert caught.value.__cause__ is failure


@pytest.mark.parametrize("method", METHODS)
def test_errors_that_translate_error_leaves_reach_the_caller_as_storage_errors(
    method: str,
) -> None:
    # issue 11: nothing escapes a public entry point as itself; the public boundary
    # (csmcore._boundary) turns what the adapter's translate_error leaves alone into a
    # StorageError, keeping the original as the cause
    failure = RuntimeError("a failure translate_error does not know")
    store = FlakyStore(failure)
    with pytest.raises(StorageError) as caught:
        calls(store)[method]()
    assert caught.value.__cause__ is failure


@pytest.mark.parametrize("method", METHODS)
def test_csm_errors_from_primitives_are_not_translated_again(method: str) -> None:
    failure = NotFound("no ticket with id 'T-1'")
    store = FlakyStore(failure)
    with pytest.raises(NotFound) as caught:
        calls(store)[method]()
    assert caught.value is failure


def test_arguments_are_checked_before_any_primitive_runs() -> None:
    store = FlakyStore(DriverDown("never reached"))
    with pytest.raises(ValidationError, match="ticket_id=''"):
        store.tickets.get("")
    with pytest.raises(ValidationError, match="batch_size"):
        store.tickets.stream(Always(), batch_size=0)


def test_a_stream_yields_its_batches_until_the_driver_fails() -> None:
    store = FlakyStore(DriverDown("connection lost"))
    batches = store.tickets.stream(Always())
    assert [t.id for t in next(batches)] == ["T-1"]
    with pytest.raises(StorageError, match="connection lost"):
        next(batches)


def test_a_role_can_translate_by_itself() -> None:
    class OwnTickets(FlakyTickets):
        def translate_error(self, err: BaseException) -> CsmError | None:
            return StorageError("translated by the role")

    store = FlakyStore(RuntimeError("driver"))
    store.tickets = OwnTickets(store)
    with pytest.raises(StorageError, match="translated by the role"):
        store.tickets.get("T-1")


class _RecordingFirings(FiringRepositoryBase):
    """Records the ``at`` its ``_due`` receives."""

    def __init__(self) -> None:
        self.seen: list[datetime] = []

    def _due(self, at: datetime, limit: int | None) -> list[Any]:
        self.seen.append(at)
        return []

    _record = _keys = _list = _plan = _planned = _next_due = None  # type: ignore[assignment]


class _RecordingOutbox(OutboxPagingBase):
    """Records the ``at`` its ``_due`` and ``_due_after`` receive."""

    def __init__(self) -> None:
        self.seen: list[datetime] = []

    def _due(self, at: datetime, limit: int) -> list[Any]:
        self.seen.append(at)
        return []

    def _due_after(self, at: datetime, after_at: datetime, after_key: str, limit: int) -> list[Any]:
        self.seen.append(at)
        return []

    _put = _claim = _update = _get = _list = None  # type: ignore[assignment]


def test_the_escalation_roles_hand_their_primitives_at_in_utc() -> None:
    """Every instant the firings and outbox roles hand a primitive is in UTC, ``due``'s
    ``at`` too: a backend that compares instants as UTC text then compares them right."""
    tokyo = timezone(timedelta(hours=9))
    at = datetime(2025, 3, 3, 21, tzinfo=tokyo)
    firings, outbox = _RecordingFirings(), _RecordingOutbox()
    firings.due(at)
    outbox.due(at)
    outbox.due_after(at, after=(at, "a"))
    assert firings.seen + outbox.seen == [at] * 3
    assert [t.tzinfo for t in firings.seen + outbox.seen] == [timezone.utc] * 3
