"""Ledgers written before pending points paid a negative balance at the instant they became
active (fixture ``tests/fixtures/main_13c0929_debts``, written by commit 13c0929), read from
the ``csm_ledger`` table of each SQL store, PostgreSQL too: those whose entries fit only the
rule they were written under read as when written; the one that fits today's rule reads with
its debt paid at the activation (the documented correction); new entries append after them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.loyalty import Balance, EntryKind, LedgerEntry, LedgerState, verify_entries
from csmcore.serialization import from_document
from csmcore.services import Ledger
from csmcore.storage import open_store
from tests.old_stores import ledger_inserts
from tests.storage.conftest import SqlFactory

FIXTURE = Path(__file__).parent.parent / "fixtures" / "main_13c0929_debts"
DOCUMENTS: dict[str, Any] = json.loads((FIXTURE / "documents.json").read_text("utf-8"))
BALANCES: dict[str, Any] = json.loads((FIXTURE / "balances.json").read_text("utf-8"))
EARLIER_RULE_ONLY = ("ann", "bob", "cy")


def _entries(member: str) -> list[LedgerEntry]:
    return [from_document(d, LedgerEntry) for d in DOCUMENTS[member]]


def _fields(balance: Balance) -> dict[str, int]:
    return {
        "active": balance.active,
        "pending": balance.pending,
        "expired": balance.expired,
        "spent": balance.spent,
        "negative": balance.negative,
        "lifetime": balance.lifetime,
    }


def test_the_fixture_records_what_the_earlier_rule_read() -> None:
    # 13c0929: dan's 100 points activating on 1 Feb expired in full on 1 March, and the 80 he
    # owed stayed owed (70 after his earn of 10 on 5 March)
    assert all(BALANCES[m]["verify_ok"] for m in BALANCES)
    assert BALANCES["dan"]["at_entries"][-1] == _fields(
        Balance(active=0, pending=0, expired=100, spent=80, negative=70, lifetime=110)
    )


@pytest.mark.parametrize("member", EARLIER_RULE_ONLY)
def test_entries_that_fit_only_the_earlier_rule_read_as_when_written(member: str) -> None:
    entries = _entries(member)
    for loaded in (LedgerState.replay(member, entries), _one_by_one(member, entries)):
        got = [_fields(loaded.balance(e.at)) for e in entries]
        assert got == BALANCES[member]["at_entries"]
        # cy's EXPIRE came right after the lot expired: that payment alone is undone
        assert loaded.legacy is (member != "cy")
    assert verify_entries(member, entries).ok


def _one_by_one(member: str, entries: list[LedgerEntry]) -> LedgerState:
    state = LedgerState(member)
    for entry in entries:  # as the SQL stores load a member
        state.apply(entry)
    return state


def test_a_ledger_that_fits_todays_rule_reads_its_debt_paid_at_the_activation() -> None:
    # dan: the 100 points paid the 80 owed on 1 Feb; 20 expired on 1 March; his 10 of
    # 5 March stay active (the earlier rule read 100 expired, 70 owed, 0 active)
    entries = _entries("dan")
    state = LedgerState.replay("dan", entries)
    assert not state.legacy
    assert state.balance() == Balance(
        active=10, pending=0, expired=20, spent=80, negative=0, lifetime=110
    )
    assert [_fields(state.balance(e.at)) for e in entries[:-1]] == (
        BALANCES["dan"]["at_entries"][:-1]
    )
    assert verify_entries("dan", entries).ok


@pytest.mark.parametrize("factory_fixture", ["sqlite_factory", "postgres_factory"])
def test_sql_stores_read_them_and_append_after_them(
    factory_fixture: str, request: pytest.FixtureRequest
) -> None:
    factory: SqlFactory = request.getfixturevalue(factory_fixture)
    store = factory()
    url = store.url
    factory.raw(
        url,
        ledger_inserts(DOCUMENTS),
    )
    later = datetime(2026, 3, 10, tzinfo=timezone.utc)
    try:
        ledger = Ledger(store, returns="unlimited")
        for member in EARLIER_RULE_ONLY:
            assert _fields(ledger.balance(member)) == BALANCES[member]["at_entries"][-1]
            assert ledger.verify(member).ok
        assert ledger.balance("dan").active == 10
        # ann has 30 left (the earlier rule): she spends them; bob earns 100, 70 pay his debt
        spent = ledger.redeem("ann", 30, at=later, key="r2")
        assert [(d.lot_id, d.points) for d in spent.draws] == [("ann#4", 30)]
        ledger.earn("bob", 100, at=later, key="d")
        assert ledger.balance("bob").active == 30
    finally:
        store.close()
    again = open_store(url)
    try:
        ledger = Ledger(again, returns="unlimited")
        assert ledger.balance("ann").active == 0
        assert ledger.balance("bob").active == 30
        for member in DOCUMENTS:
            assert ledger.verify(member).ok
    finally:
        again.close()


def test_why_an_expire_right_after_the_expiry_keeps_its_own_rule() -> None:
    # Two rules read stored EXPIREs that recorded points which, by today's rule, paid a debt
    # at their activation: the general one reads the member's whole ledger by the earlier
    # rule (ann, bob); the narrow one (cy: the EXPIRE is the first entry after the expiry)
    # undoes that payment alone, at the EXPIRE. Unifying them on the general rule would
    # change how cy reads before the EXPIRE: on 2 March today's rule reads the 80 owed paid on
    # 1 Feb and 20 expired; the earlier rule reads 100 expired and 80 owed. At every entry
    # both agree, so only the instants between show it.
    entries = _entries("cy")
    state = LedgerState.replay("cy", entries)
    assert not state.legacy
    mar2 = datetime(2026, 3, 2, tzinfo=timezone.utc)
    assert state.balance(mar2) == Balance(expired=20, spent=80, lifetime=100)
    earlier = LedgerState.replay("cy", entries, legacy=True)
    assert earlier.balance(mar2) == Balance(expired=100, spent=80, negative=80, lifetime=100)
    assert [earlier.balance(e.at) for e in entries] == [state.balance(e.at) for e in entries]
    # after the EXPIRE both read what 13c0929 read: the record stands
    assert _fields(state.balance()) == BALANCES["cy"]["at_entries"][-1]


@settings(max_examples=150, deadline=None)
@given(
    owed=st.integers(1, 150),
    points=st.integers(1, 200),
    pending=st.integers(1, 20),
    lasts=st.integers(1, 20),
    late=st.integers(0, 10),
    spent=st.integers(0, 200),
)
def test_old_style_expires_right_after_the_expiry_read_as_written_and_differ_between(
    owed: int, points: int, pending: int, lasts: int, late: int, spent: int
) -> None:
    # Random ledgers of cy's shape, as 13c0929 wrote them: owed points when a pending lot
    # becomes active, no entry until ``late`` days after it expired, then the EXPIRE 13c0929
    # wrote (everything left in the lot: the debt was paid at entries' instants only). Read
    # today, each is read by the narrow rule: as written at every entry, by today's rule
    # before the EXPIRE. Wherever the debt took points at the activation, the earlier rule
    # (the general fallback) reads the instants between the expiry and the EXPIRE otherwise.
    day = timedelta(days=1)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ledger = Ledger(open_store("memory://"), returns="unlimited")
    bought = ledger.earn("m", owed + spent, at=t0, key="a")
    ledger.redeem("m", owed, at=t0, key="gift")
    ledger.reverse(bought.entry_id, at=t0, key="return", points=owed + spent)
    expires = t0 + (1 + pending + lasts) * day
    lot = ledger.earn(
        "m",
        points,
        at=t0 + day,
        key="b",
        pending_until=t0 + (1 + pending) * day,
        expires_at=expires,
    )
    stored = LedgerEntry(
        entry_id="m#5",
        member_id="m",
        seq=5,
        kind=EntryKind.EXPIRE,
        at=expires + late * day,
        points=-points,
        key="expire:m#4:0",
        lot_id=lot.lot_id,
        expires_at=expires,
    )
    entries = [*ledger.entries("m"), stored]
    state = LedgerState.replay("m", entries)
    earlier = LedgerState.replay("m", entries, legacy=True)
    assert not state.legacy
    assert verify_entries("m", entries).ok
    assert _one_by_one("m", entries).balance() == state.balance()
    assert [state.balance(e.at) for e in entries] == [earlier.balance(e.at) for e in entries]
    paid = min(owed, points)  # what the lot paid at its activation, by today's rule
    if late:
        assert state.balance(expires) == Balance(
            expired=points - paid, spent=owed, negative=owed - paid, lifetime=points
        )
        assert earlier.balance(expires) == Balance(
            expired=points, spent=owed, negative=owed, lifetime=points
        )
