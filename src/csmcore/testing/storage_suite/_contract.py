"""What every query returns, in and out of units of work (:class:`ResultTests`), and the shared
messages of the shared errors (:class:`MessageTests`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from csmcore import conditions as cd
from csmcore.calendars import BusinessCalendar
from csmcore.errors import ConcurrencyError, CsmError, NotFound
from csmcore.storage import kit
from csmcore.storage.protocols import Store
from csmcore.testing.builders import T0, make_comment, make_policy, make_ticket
from csmcore.testing.storage_suite._base import StoreFixtures
from csmcore.testing.storage_suite._requesters import RequesterChecks
from csmcore.tickets import Priority, Ticket

_PRIORITIES = (Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT, Priority.HIGH)

RESULT_CONDITIONS: tuple[cd.Condition, ...] = (
    cd.Always(),
    cd.Eq("priority", "high"),
    cd.HasTags(frozenset({"vip"})),
    ~cd.HasTags(frozenset({"vip"})) & cd.Compare("priority", ">=", "high"),
    cd.Eq("priority", "urgent") | cd.HasTags(frozenset({"vip"})),
    cd.Never(),
)
"""Conditions that select all, some (spread over the ids, so a page may hold few of them) or
none of the tickets :class:`ResultTests` writes."""


def _spread(count: int) -> list[Ticket]:
    """``count`` tickets whose priorities and tags vary along the ids."""
    return [
        make_ticket(
            f"T-{n:03d}",
            priority=_PRIORITIES[n % len(_PRIORITIES)],
            tags={"vip"} if n % 7 == 3 else set(),
        )
        for n in range(count)
    ]


def _ids(tickets: list[Ticket]) -> list[str]:
    return [t.id for t in tickets]


class ResultTests(RequesterChecks):
    """``find``, ``stream`` and ``count`` give every matching ticket exactly once, in id order,
    in whole batches: on the store and inside a unit of work, whatever the batch size; and so
    does ``stream_by_requester`` where the role offers the optional
    :class:`~csmcore.storage.protocols.TicketsByRequester` (:class:`RequesterChecks`)."""

    def test_stream_gives_every_matching_ticket_once_in_full_batches(self, store: Store) -> None:
        tickets = _spread(41)
        store.tickets.add_many(tickets)
        for condition in RESULT_CONDITIONS:
            expected = [t.id for t in tickets if condition.matches(t)]
            for size in (1, 2, 3, 7, 40, 41, 42, 500):
                batches = list(store.tickets.stream(condition, batch_size=size))
                streamed = [t.id for batch in batches for t in batch]
                assert streamed == expected, (condition, size)
                full = [len(b) for b in batches[:-1]]
                assert full == [size] * len(full), (condition, size)  # only the last is short
                assert all(0 < len(b) <= size for b in batches), (condition, size)
            assert _ids(store.tickets.find(condition)) == expected, condition
            assert store.tickets.count(condition) == len(expected), condition

    def test_a_unit_of_work_sees_each_ticket_once_in_id_order(self, store: Store) -> None:
        """Tickets written inside a unit of work and tickets committed before are each found
        once, at their latest version, in id order (not the unit's writes first)."""
        tickets = _spread(12)
        store.tickets.add_many(tickets[::2])  # T-000, T-002, ...
        with store.unit_of_work() as uow:
            uow.tickets.add_many(tickets[1::2][::-1])  # T-011, T-009, ... written inside
            uow.tickets.append("T-004", [make_comment(T0, "inside")], expected_version=1)
            uow.tickets.append("T-005", [make_comment(T0, "inside")], expected_version=1)
            for condition in RESULT_CONDITIONS:
                expected = [t.id for t in tickets if condition.matches(t)]
                found = uow.tickets.find(condition)
                assert _ids(found) == expected, condition
                for limit in (1, 2, 5, 100):
                    assert _ids(uow.tickets.find(condition, limit=limit)) == expected[:limit]
                for size in (1, 5, 12):
                    batches = uow.tickets.stream(condition, batch_size=size)
                    assert [t.id for b in batches for t in b] == expected, (condition, size)
                assert uow.tickets.count(condition) == len(expected), condition
            versions = {t.id: t.version for t in uow.tickets.find(cd.Always())}
            assert versions["T-004"] == versions["T-005"] == 2
            assert sum(versions.values()) == len(tickets) + 2
        assert _ids(store.tickets.find(cd.Always())) == [t.id for t in tickets]


def _message(raise_it: Callable[[], object]) -> str:
    """The message of the CsmError ``raise_it`` raises."""
    with pytest.raises(CsmError) as raised:
        raise_it()
    return str(raised.value)


class MessageTests(StoreFixtures):
    """The shared errors carry the shared messages of :mod:`csmcore.storage.kit`
    (``ticket_exists``, ``no_ticket``, ``check_expected``, ``no_document``), on the store and
    inside a unit of work, so that callers (and their logs) see the same text from every store.
    """

    def test_tickets_report_the_shared_messages(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-1"))
        store.tickets.add(make_ticket("T-0500"))
        exists = str(kit.ticket_exists("T-1"))
        assert _message(lambda: store.tickets.add(make_ticket("T-1"))) == exists
        many = [make_ticket(f"T-{n:04d}") for n in range(1000)][::-1]
        assert _message(lambda: store.tickets.add_many(many)) == str(kit.ticket_exists("T-0500"))
        repeated = [make_ticket("T-7"), make_ticket("T-8"), make_ticket("T-7")]
        assert _message(lambda: store.tickets.add_many(repeated)) == str(kit.ticket_exists("T-7"))
        missing = str(kit.no_ticket("nope"))
        assert _message(lambda: store.tickets.get("nope")) == missing
        comment = [make_comment(T0, "x")]
        assert _message(lambda: store.tickets.append("nope", comment, expected_version=1)) == (
            missing
        )
        with pytest.raises(ConcurrencyError) as stale:
            kit.check_expected("T-1", 1, 3)
        assert _message(lambda: store.tickets.append("T-1", comment, expected_version=3)) == str(
            stale.value
        )
        with store.unit_of_work() as uow:
            assert _message(lambda: uow.tickets.add(make_ticket("T-1"))) == exists
            assert _message(lambda: uow.tickets.get("nope")) == missing
        assert store.tickets.count(cd.Always()) == 2

    def test_documents_report_the_shared_messages(self, store: Store) -> None:
        values = {"calendars": BusinessCalendar.always(), "policies": make_policy("p")}
        for kind, value in values.items():
            getattr(store, kind).put("k", value, expected_version=0)
            with pytest.raises(ConcurrencyError) as stale:
                kit.check_expected("k", 1, 0, kind=kind)
            self._check_document_messages(kind, getattr(store, kind), value, str(stale.value))
            with store.unit_of_work() as uow:
                self._check_document_messages(kind, getattr(uow, kind), value, str(stale.value))
            assert [v.version for v in getattr(store, kind).history("k")] == [1]
        with pytest.raises(NotFound):
            store.rules.get("none")

    @staticmethod
    def _check_document_messages(kind: str, role: Any, value: object, stale: str) -> None:
        """The messages of ``role`` (holding version 1 of ``"k"``) for a stale version and
        missing keys and versions."""
        assert _message(lambda: role.put("k", value, expected_version=0)) == stale
        assert _message(lambda: role.get("none")) == str(kit.no_document(kind, "none"))
        assert _message(lambda: role.get("k", version=5)) == str(
            kit.no_document(kind, "k", 5, latest=1)
        )
        assert _message(lambda: role.get("none", version=2)) == str(
            kit.no_document(kind, "none", 2)
        )
