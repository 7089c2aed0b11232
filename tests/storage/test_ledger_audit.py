"""The loyalty ledger's record on every store (memory, SQLite, PostgreSQL): every expiry gets
its EXPIRE entry, and a write only ever adds entries that fit the member's ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from csmcore.loyalty import Balance, EntryKind, LedgerEntry, LotStatus, verify_entries
from csmcore.services import Ledger
from csmcore.storage import open_store
from csmcore.storage.protocols import Store

UTC = timezone.utc
DAY = timedelta(days=1)
JAN1 = datetime(2026, 1, 1, tzinfo=UTC)
STORES = ["memory", "sqlite_factory", "postgres_factory"]


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
