"""Schema version 9 (``csm_ticket_requesters``: every requester each ticket had) and
``stream_by_requester`` of the built-in stores (the optional ``TicketsByRequester``): a real
schema-8 store written by commit e31c18b migrates and its former requesters are found (also by
the escalation engine), version-8 stores of both SQL backends are filled from their histories,
the SQL stores select in the index, and a declared event whose fold sets the requester is
indexed too."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from csmcore import conditions as cd
from csmcore.services import EscalationEngine, Ledger
from csmcore.storage import Store, TicketsByRequester, open_store, role_of
from csmcore.storage._sql import SCHEMA_VERSION
from csmcore.testing.builders import T0, make_ticket
from csmcore.tickets import (
    RequesterChanged,
    Ticket,
    TicketEventBase,
    TicketState,
    _declare,
    event_type,
)
from tests.escalation.support import GOLD, MEMBER_BOOK, SHOP, at
from tests.old_stores import copy_of
from tests.storage.conftest import SqlFactory

BOOK = MEMBER_BOOK
PROGRAM = SHOP
_LONG = "L" * 256


def _ids(store: Store, requester: str, condition: cd.Condition | None = None) -> list[str]:
    role = store.tickets
    assert isinstance(role, TicketsByRequester)
    batches = role.stream_by_requester(requester, condition or cd.Always(), batch_size=2)
    return [t.id for batch in batches for t in batch]


def test_the_schema_8_fixture_migrates_and_finds_former_requesters(tmp_path: Path) -> None:
    """The SQLite store commit e31c18b wrote (schema 8, see make_fixture.py) opens at schema 9
    with every requester of every ticket indexed; ann's entry dated back to her time as T-1's
    requester re-plans T-1 through member_changed, as a fresh plan does."""
    path = copy_of("main_e31c18b_requesters", tmp_path)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT value FROM csm_meta").fetchall() == [("8",)]
    finally:
        conn.close()
    store = open_store(f"sqlite:///{path}")
    try:
        assert store.schema_version() == SCHEMA_VERSION == 9  # type: ignore[attr-defined]
        assert _ids(store, "ann") == ["T-1", "T-3"]
        assert _ids(store, "bob") == ["T-1", "T-2"]
        assert _ids(store, "carl") == ["T-2"]
        assert _ids(store, "dan") == ["T-4"]
        assert _ids(store, "ann", ~cd.Eq("status", "closed")) == ["T-1"]
        engine = EscalationEngine(store, BOOK, [GOLD], loyalty=PROGRAM)
        assert engine.next_due() is None  # the fixture's plans: nobody is gold
        Ledger(store).earn("ann", 600, at=at(6, 10, 30), key="order-1")
        assert engine.member_changed("ann") == 1  # T-1 (T-3 is closed)
        assert engine.next_due() == at(6, 11)
        firings = role_of(store, "firings")
        planned = {i: firings.planned(i).next_due for i in ("T-1", "T-2", "T-3", "T-4")}
        EscalationEngine(store, BOOK, [GOLD], loyalty=PROGRAM, remember=0).plan_all()
        assert {i: firings.planned(i).next_due for i in planned} == planned
        # new writes keep the index: carl asks T-4 now
        store.tickets.append(
            "T-4", [RequesterChanged(at=at(6, 12), requester="carl")], expected_version=1
        )
        assert _ids(store, "carl") == ["T-2", "T-4"]
        assert _ids(store, "dan") == ["T-4"]
    finally:
        store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_factory(request: pytest.FixtureRequest) -> SqlFactory:
    name = "sqlite_factory" if request.param == "sqlite" else "postgres_factory"
    found: SqlFactory = request.getfixturevalue(name)
    return found


def _changed(ticket_id: str, *requesters: str) -> Ticket:
    first, *later = requesters
    ticket = make_ticket(ticket_id, requester=first)
    for n, requester in enumerate(later, 1):
        ticket, _ = ticket.change_requester(T0 + n * timedelta(minutes=1), requester)
    return ticket


_MANY = 1200  # more than two pages of the migration's 500 tickets


def _many() -> list[Ticket]:
    paths = (("ann",), ("ann", "bob"), ("bob", "ann", "bob"), (_LONG, "carl"), ("carl", _LONG))
    return [_changed(f"M-{n:05d}", *paths[n % len(paths)]) for n in range(_MANY)]


def test_a_version_8_store_is_filled_from_the_histories(sql_factory: SqlFactory) -> None:
    store = sql_factory()
    tickets = _many()
    store.tickets.add_many(tickets)
    url = store.url
    store.close()
    sql_factory.write_old_schema(url, 8)
    assert "csm_ticket_requesters" not in sql_factory.tables(url)
    store = open_store(url)
    try:
        assert sql_factory.read_schema_version(url) == SCHEMA_VERSION
        for requester in ("ann", "bob", "carl", _LONG, "nobody"):
            expected = [t.id for t in tickets if requester in t.requesters]
            assert _ids(store, requester) == expected, requester
        # the index holds the requesters of at most 255 characters (long ones are read in
        # Python), one row per ticket and requester
        count = sql_factory.raw(url, ["SELECT COUNT(*) FROM csm_ticket_requesters"])[0][0]
        short = sum(len([r for r in t.requesters if len(r) <= 255]) for t in tickets)
        assert count == short
    finally:
        store.close()


def test_the_sql_stores_select_in_the_index(sql_factory: SqlFactory) -> None:
    """Only the tickets of the requester asked for are read (rebuilt from their histories),
    whatever the condition; a requester too long for the index is found by reading them all."""
    store = sql_factory()
    try:
        tickets = [_changed(f"P-{n:03d}", "x", f"r{n % 20}") for n in range(200)]
        tickets.append(_changed("P-900", "r3", _LONG))
        store.tickets.add_many(tickets)
        with sql_factory.reads(store) as reads:
            assert _ids(store, "r3") == [t.id for t in tickets if "r3" in t.requesters]
            assert reads() == 11
        with sql_factory.reads(store) as reads:
            assert _ids(store, "r3", cd.Eq("requester", _LONG)) == ["P-900"]
            assert reads() == 1
        with sql_factory.reads(store) as reads:
            assert _ids(store, _LONG) == ["P-900"]
            assert reads() == len(tickets)
    finally:
        store.close()


@attrs.frozen(kw_only=True)
class _Transferred(TicketEventBase):
    """An application's own event that hands the ticket to another requester (its fold sets
    the requester)."""

    to: str

    def fold(self, state: TicketState) -> TicketState:
        return state.replace(requester=self.to)


@pytest.fixture
def transferred() -> Iterator[type[_Transferred]]:
    """:class:`_Transferred`, declared for one test (and removed after it)."""
    cls = event_type("test.ticket_requesters.transferred")(_Transferred)
    try:
        yield cls
    finally:
        _declare._SPECS.pop(cls, None)
        _declare._ENCODE.pop(cls, None)
        _declare._BY_NAME.pop("test.ticket_requesters.transferred", None)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
def test_a_requester_set_by_a_declared_event_is_indexed(
    kind: str, request: pytest.FixtureRequest, transferred: type[_Transferred]
) -> None:
    store = (
        open_store("memory://")
        if kind == "memory"
        else request.getfixturevalue(f"{kind}_factory")()
    )
    try:
        store.tickets.add(make_ticket("D-1"))
        zed: Any = transferred(at=T0, to="zed")  # a declared event: no TicketEvent member
        store.tickets.append("D-1", [zed], expected_version=1)
        with store.unit_of_work() as uow:
            yan: Any = transferred(at=T0, to="yan")
            uow.tickets.append("D-1", [yan], expected_version=2)
        assert store.tickets.get("D-1").requesters == ("ann", "zed", "yan")
        for requester in ("ann", "zed", "yan"):
            assert _ids(store, requester) == ["D-1"], requester
    finally:
        store.close()


def test_an_engine_on_a_tickets_role_without_the_protocol_reads_every_open_ticket() -> None:
    """A third-party ``tickets`` role that does not offer ``TicketsByRequester`` (not built on
    the base class): member_changed still finds the former requester's ticket, reading every
    ticket not closed."""
    inner = open_store("memory://")

    class _Plain:
        """Only the protocol's methods (no stream_by_requester)."""

        def __init__(self, tickets: object) -> None:
            self._tickets = tickets

        def __getattr__(self, name: str) -> object:
            if name == "stream_by_requester":
                raise AttributeError(name)
            return getattr(self._tickets, name)

    class _Store:
        roles = inner.roles  # type: ignore[attr-defined]

        def __init__(self) -> None:
            self.tickets = _Plain(inner.tickets)

        def __getattr__(self, name: str) -> object:
            return getattr(inner, name)

    store = _Store()
    assert not isinstance(store.tickets, TicketsByRequester)
    moved = make_ticket("T-1", at=at(6, 10), requester="ann")
    moved, _ = moved.change_requester(at(6, 11, 30), "bob")
    inner.tickets.add(moved)
    inner.tickets.add(make_ticket("T-2", at=at(6, 10), requester="carl"))
    engine = EscalationEngine(store, BOOK, [GOLD], loyalty=PROGRAM)  # type: ignore[arg-type]
    assert engine.plan_all() == 2
    Ledger(inner).earn("ann", 600, at=at(6, 10, 30), key="order-1")
    assert engine.member_changed("ann") == 1
    assert engine.next_due() == at(6, 11)
