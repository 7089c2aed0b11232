"""The optional :class:`~csmcore.storage.protocols.TicketsByRequester` of the ``tickets`` role
(``stream_by_requester``: the tickets anyone was the requester of at some instant), checked
where the role offers it; part of :class:`~csmcore.testing.storage_suite.ResultTests`."""

from __future__ import annotations

from typing import Any

import pytest

from csmcore import conditions as cd
from csmcore.errors import ValidationError
from csmcore.storage.protocols import Store, TicketsByRequester
from csmcore.testing.builders import T0, make_comment, make_ticket
from csmcore.testing.storage_suite._base import StoreFixtures
from csmcore.tickets import Priority, RequesterChanged, Ticket

_LONG = "r" * 300
"""A requester longer than any id (a store may find such ones another way)."""

REQUESTERS: tuple[str, ...] = ("ann", "bob", "carl", "é ключ \U0001f600", _LONG, "nobody")
"""The requesters :class:`RequesterChecks` asks for."""

_CONDITIONS: tuple[cd.Condition, ...] = (
    cd.Always(),
    cd.Eq("priority", "high"),
    cd.Eq("requester", "bob"),
    ~cd.HasTags(frozenset({"vip"})),
    cd.Never(),
)


class _RollBack(Exception):
    """Raised inside a unit of work to roll it back."""


def _change(ticket: Ticket, *requesters: str) -> Ticket:
    """``ticket`` after a change to each of ``requesters`` in turn (and a comment between)."""
    for requester in requesters:
        ticket = ticket.apply(RequesterChanged(at=T0, requester=requester))
        ticket = ticket.apply(make_comment(T0))
    return ticket


def _tickets() -> list[Ticket]:
    """Tickets whose requesters change in every way: never, once, away and back, to and from
    long and odd text; spread over the ids so that a page may hold few of one requester's."""
    out = []
    paths: tuple[tuple[str, ...], ...] = (
        ("ann",),
        ("ann", "bob"),
        ("bob", "carl", "bob"),
        ("carl",),
        ("ann", "carl", "ann"),
        (_LONG, "ann"),
        ("é ключ \U0001f600",),
        ("bob", _LONG),
    )
    for n in range(40):
        first, *later = paths[n % len(paths)]
        made = make_ticket(
            f"R-{n:03d}",
            requester=first,
            priority=Priority.HIGH if n % 3 == 0 else Priority.NORMAL,
            tags={"vip"} if n % 5 == 1 else set(),
        )
        out.append(_change(made, *later))
    return out


def _by_requester(role: Any) -> Any:
    """``role`` when it offers :class:`TicketsByRequester`; skips the running test otherwise
    (the escalation engine then reads every ticket not closed, as the protocol allows)."""
    if not isinstance(role, TicketsByRequester):
        pytest.skip(
            f"the tickets role ({type(role).__name__}) does not offer the optional "
            "TicketsByRequester (stream_by_requester): EscalationEngine.member_changed reads "
            "every ticket not closed instead"
        )
    return role


def _streamed(role: Any, requester: str, condition: cd.Condition, size: int) -> list[str]:
    batches = list(role.stream_by_requester(requester, condition, batch_size=size))
    call = f"stream_by_requester({requester!r}, {condition!r}, batch_size={size})"
    sizes = [len(b) for b in batches]
    assert all(0 < n <= size for n in sizes), f"{call} gave batches of {sizes}: each non-empty"
    assert sizes[:-1] == [size] * len(sizes[:-1]), (
        f"{call} gave batches of {sizes}: every batch but the last must be full"
    )
    return [t.id for batch in batches for t in batch]


def _expected(tickets: list[Ticket], requester: str, condition: cd.Condition) -> list[str]:
    return sorted(t.id for t in tickets if requester in t.requesters and condition.matches(t))


def _wrong_requester_result(
    tickets: list[Ticket],
    requester: str,
    condition: cd.Condition,
    size: int,
    got: list[str],
    expected: list[str],
) -> str:
    """Why ``got`` is not ``expected``, for the message of a failed check."""
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    changed = [t.id for t in tickets if t.id in missing and len(t.requesters) > 1]
    hint = (
        f" ({changed} changed requester: keep every requester a ticket ever had, on add and "
        "on append, e.g. those csmcore.storage.kit.added_requesters(before, after) gives)"
        if changed
        else ""
    )
    return (
        f"stream_by_requester({requester!r}, {condition!r}, batch_size={size}) must give, in "
        f"id order, the tickets matching the condition of which {requester!r} was the "
        f"requester at some instant (Ticket.requesters); missing {missing}{hint}, not "
        f"expected {extra}" + ("" if missing or extra else f", order {got}")
    )


class RequesterChecks(StoreFixtures):
    """``stream_by_requester`` gives exactly the tickets matching the condition of which the
    requester was the requester at some instant (``Ticket.requesters``: the current one and
    everyone before a change of requester), in id order, in full batches, also inside a unit of
    work (its own writes included, a rolled-back one's left out). Skipped, saying so, where the
    ``tickets`` role does not offer it."""

    def test_stream_by_requester_finds_every_requester_a_ticket_had(self, store: Store) -> None:
        role = _by_requester(store.tickets)
        tickets = _tickets()
        for ticket in tickets[::2]:  # half added whole, half changed by appends
            store.tickets.add(ticket)
        for ticket in tickets[1::2]:
            store.tickets.add(Ticket.from_events(ticket.events[:1]))
            if ticket.version > 1:
                store.tickets.append(ticket.id, ticket.events[1:], expected_version=1)
        for requester in REQUESTERS:
            for condition in _CONDITIONS:
                expected = _expected(tickets, requester, condition)
                for size in (1, 3, 40, 500):
                    got = _streamed(role, requester, condition, size)
                    assert got == expected, _wrong_requester_result(
                        tickets, requester, condition, size, got, expected
                    )
                assert got == sorted(got), "not in id order"

    def test_a_unit_of_work_finds_its_own_changes_of_requester(self, store: Store) -> None:
        _by_requester(store.tickets)
        store.tickets.add_many([make_ticket("U-1"), make_ticket("U-3", requester="bob")])
        with store.unit_of_work() as uow:
            role = _by_requester(uow.tickets)
            uow.tickets.append(
                "U-1", [RequesterChanged(at=T0, requester="dan")], expected_version=1
            )
            uow.tickets.add(_change(make_ticket("U-2", requester="eve"), "dan"))
            own = (
                "inside a unit of work, stream_by_requester must see the unit's own adds and "
                "changes of requester"
            )
            assert _streamed(role, "dan", cd.Always(), 1) == ["U-1", "U-2"], own
            assert _streamed(role, "ann", cd.Always(), 5) == ["U-1"], own  # the former one
            assert _streamed(role, "eve", cd.Always(), 5) == ["U-2"], own
            assert _streamed(role, "bob", cd.Always(), 5) == ["U-3"], own
        assert _streamed(store.tickets, "dan", cd.Always(), 5) == ["U-1", "U-2"]

        def rolled_back() -> None:
            with store.unit_of_work() as uow:
                uow.tickets.append(
                    "U-3", [RequesterChanged(at=T0, requester="fay")], expected_version=1
                )
                assert _streamed(uow.tickets, "fay", cd.Always(), 5) == ["U-3"], own
                raise _RollBack

        with pytest.raises(_RollBack):
            rolled_back()
        assert _streamed(store.tickets, "fay", cd.Always(), 5) == [], (
            "a requester a rolled-back unit of work gave a ticket must not find it"
        )
        assert _streamed(store.tickets, "bob", cd.Always(), 5) == ["U-3"]

    def test_stream_by_requester_checks_its_arguments_at_the_call(self, store: Store) -> None:
        role = _by_requester(store.tickets)
        for bad in ("", 7, None, "a\x00b"):
            with pytest.raises(ValidationError, match="requester"):
                role.stream_by_requester(bad, cd.Always())
        with pytest.raises(ValidationError, match="batch_size"):
            role.stream_by_requester("ann", cd.Always(), batch_size=0)
        with pytest.raises(ValidationError, match="condition"):
            role.stream_by_requester("ann", "priority == high")
