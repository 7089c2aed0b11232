"""The loyalty ledger's record on every store (memory, SQLite, PostgreSQL): every expiry gets
its EXPIRE entry, and a write only ever adds entries that fit the member's ledger."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from csmcore.errors import LedgerCorrupt, ValidationError
from csmcore.loyalty import (
    Balance,
    EntryKind,
    LedgerEntry,
    LedgerState,
    LotDraw,
    LotStatus,
    verify_entries,
)
from csmcore.serialization import from_document
from csmcore.services import Ledger
from csmcore.storage import open_store
from csmcore.storage.ledger import LedgerRepository
from csmcore.storage.protocols import Store
from csmcore.storage.roles import role_of

UTC = timezone.utc
DAY = timedelta(days=1)
JAN1 = datetime(2026, 1, 1, tzinfo=UTC)
STORES = ["memory", "sqlite_factory", "postgres_factory"]


def _draws(*draws: LotDraw) -> Any:
    return draws  # (attrs' tuple converter makes mypy expect a bare Iterable)


def _factory(name: str, request: pytest.FixtureRequest) -> Callable[[], Store]:
    if name == "memory":
        return lambda: open_store("memory://")
    factory: Callable[[], Store] = request.getfixturevalue(name)
    return factory


def _expired_by_lot(entries: list[LedgerEntry]) -> dict[str, int]:
    """lot id -> the points the EXPIRE entries recorded for it."""
    found: dict[str, int] = {}
    for e in entries:
        if e.kind is EntryKind.EXPIRE:
            found[e.lot_id or ""] = found.get(e.lot_id or "", 0) - e.points
    return found


@pytest.mark.parametrize("name", STORES)
def test_points_refunded_into_a_lot_after_a_return_took_its_recorded_expiry_are_recorded(
    name: str, request: pytest.FixtureRequest
) -> None:
    # ann#1: 100 points expiring 1 Feb; ann#2: 100 that never expire. 10 Jan: ann redeems 30
    # (from ann#1, expiring first). 2 Feb: expire records the 70 left in ann#1. 3 Feb: the
    # purchase of ann#1 is returned: its 70 expired (recorded) points and 30 from ann#2.
    # 4 Feb: the redemption is refunded: its 30 points go back to ann#1, which has expired,
    # so they expire at once. 5 Feb: expire records them (it wrote nothing: the 70 recorded
    # before still counted, although the return had taken them).
    store = _factory(name, request)()
    try:
        led = Ledger(store)
        bought = led.earn(
            "ann", 100, at=JAN1, key="o1", expires_at=datetime(2026, 2, 1, tzinfo=UTC)
        )
        led.earn("ann", 100, at=JAN1, key="o2")
        spent = led.redeem("ann", 30, at=JAN1 + 9 * DAY, key="r1")
        assert [(d.lot_id, d.points) for d in spent.draws] == [("ann#1", 30)]
        [first] = led.expire("ann", at=datetime(2026, 2, 2, tzinfo=UTC))
        assert (first.lot_id, first.points) == ("ann#1", -70)
        back = led.reverse(bought.entry_id, at=datetime(2026, 2, 3, tzinfo=UTC), key="ret")
        assert [(d.lot_id, d.points) for d in back.draws] == [("ann#1", 70), ("ann#2", 30)]
        led.refund(spent.entry_id, at=datetime(2026, 2, 4, tzinfo=UTC), key="f1")
        assert led.verify("ann").ok  # as stored before the fix: no second EXPIRE yet
        before = led.balance("ann")
        assert before == Balance(active=70, expired=30, spent=0, lifetime=100)
        [second] = led.expire("ann", at=datetime(2026, 2, 5, tzinfo=UTC))
        assert (second.kind, second.lot_id, second.points) == (EntryKind.EXPIRE, "ann#1", -30)
        assert second.key != first.key
        assert led.expire("ann", at=datetime(2026, 2, 6, tzinfo=UTC)) == []  # once per lot
        assert led.balance("ann", datetime(2026, 2, 5, tzinfo=UTC)) == before
        entries = list(led.entries("ann"))
        assert _expired_by_lot(entries) == {"ann#1": 100}  # 70 on 1 Feb, 30 on 4 Feb
        [lot] = [x for x in led.lots("ann") if x.lot_id == "ann#1"]
        assert (lot.status, lot.remaining) == (LotStatus.EXPIRED, 30)
        report = verify_entries("ann", entries)
        assert report.ok, report.problems
        assert report.balance == before
    finally:
        store.close()


FIXTURE = Path(__file__).parent.parent / "fixtures" / "main_13c0929_debts"


def _stored(member: str) -> list[LedgerEntry]:
    documents = json.loads((FIXTURE / "documents.json").read_text("utf-8"))
    return [from_document(d, LedgerEntry) for d in documents[member]]


def _write(store: Store, entry: LedgerEntry) -> list[LedgerEntry]:
    repo: LedgerRepository = role_of(store, "ledger")
    return repo.write((entry.member_id,), lambda states: [entry])


@pytest.mark.parametrize("name", STORES)
@pytest.mark.parametrize("member", ["ann", "bob"])
def test_a_new_entry_that_fits_only_the_earlier_debt_rule_is_refused(
    name: str, member: str, request: pytest.FixtureRequest
) -> None:
    # The entries csmcore 13c0929 wrote (fixture main_13c0929_debts), sent through write as
    # new ones: all but the last fit today's rule (a negative balance paid when pending points
    # become active); the last (ann: a redemption drawing points that paid the debt; bob: an
    # expire recording them) fits only the earlier one. Stored, it reads by that rule; written
    # now, it is refused, and nothing is written.
    entries = _stored(member)
    make = _factory(name, request)
    store = make()
    try:
        for entry in entries[:-1]:
            assert _write(store, entry) == [entry]
        led = Ledger(store, returns="unlimited")
        before = led.balance(member)
        with pytest.raises(LedgerCorrupt) as caught:
            _write(store, entries[-1])
        message = str(caught.value)
        assert repr(entries[-1].entry_id) in message
        assert "earlier rule" in message
        assert caught.value.value == entries[-1].entry_id
        assert list(led.entries(member)) == entries[:-1]  # nothing written
        assert led.balance(member) == before
        assert not role_of(store, "ledger").read(member, lambda s: s.legacy)
        assert led.verify(member).ok
        if name != "memory":  # and nothing stored: another handle reads the same
            again = open_store(store.url)
            try:
                assert list(Ledger(again).entries(member)) == entries[:-1]
            finally:
                again.close()
    finally:
        store.close()


@pytest.mark.parametrize("name", STORES)
def test_a_new_entry_that_fits_no_rule_is_refused_and_nothing_is_stored(
    name: str, request: pytest.FixtureRequest
) -> None:
    # a hand-built redemption of 50 from a lot holding 5: the SQL stores committed it and
    # then every read of the member raised LedgerCorrupt
    store = _factory(name, request)()
    try:
        led = Ledger(store)
        led.earn("zoe", 10, at=JAN1, key="k")
        spent = led.redeem("zoe", 5, at=JAN1, key="r")
        bad = LedgerEntry(
            entry_id="zoe#3",
            member_id="zoe",
            seq=3,
            kind=EntryKind.REDEEM,
            at=spent.at,
            points=-50,
            key="r2",
            draws=_draws(attrs.evolve(spent.draws[0], points=50)),
        )
        with pytest.raises(LedgerCorrupt, match="'zoe#3'"):
            _write(store, bad)
        assert [e.key for e in led.entries("zoe")] == ["k", "r"]
        assert led.balance("zoe").active == 5
        if name != "memory":
            again = open_store(store.url)
            try:
                assert Ledger(again).balance("zoe").active == 5
            finally:
                again.close()
    finally:
        store.close()


@pytest.mark.parametrize("name", STORES)
def test_a_refused_transfer_leaves_both_members_as_they_were(
    name: str, request: pytest.FixtureRequest
) -> None:
    # a plan whose first entry fits and whose second does not: neither is kept (the memory
    # store had applied the first to its member's state)
    store = _factory(name, request)()
    try:
        led = Ledger(store)
        led.earn("ann", 10, at=JAN1, key="a")
        spent = led.redeem("ann", 4, at=JAN1, key="r")
        led.earn("bob", 10, at=JAN1, key="b")
        good = attrs.evolve(spent, entry_id="ann#3", seq=3, key="r2")
        bad = attrs.evolve(spent, entry_id="bob#2", member_id="bob", seq=2, key="x")
        repo = role_of(store, "ledger")
        with pytest.raises(LedgerCorrupt, match="'bob#2'"):
            repo.write(("ann", "bob"), lambda states: [good, bad])
        assert [e.key for e in led.entries("ann")] == ["a", "r"]
        assert [e.key for e in led.entries("bob")] == ["b"]
        assert led.balance("ann").active == 6
        assert led.redeem("ann", 6, at=JAN1, key="r3").points == -6
    finally:
        store.close()


def test_rewind_takes_a_state_back_to_one_of_its_versions() -> None:
    led = Ledger(open_store("memory://"))
    led.earn("ann", 10, at=JAN1, key="a")
    led.redeem("ann", 4, at=JAN1 + DAY, key="r")
    state = LedgerState.replay("ann", led.entries("ann"))
    state.rewind(1)
    assert (state.version, state.balance().active) == (1, 10)
    for bad in (2, -1, "1", 1.0, None):
        with pytest.raises(ValidationError, match="version="):
            state.rewind(bad)  # type: ignore[arg-type]
    assert state.version == 1
