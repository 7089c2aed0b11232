"""The escalation engine treats a gold member differently (issue 13: conditions read "the
requester's loyalty member (tier) where a ledger is configured"; issue 12: "escalation rules can
treat a gold member differently"), on every built-in store: the tier comes from the program's
tiers over the requester's ledger entries in the store, as they stood at each instant.

Calendar: Monday-Friday 09:00-17:00 UTC; 2025-01-06 is a Monday. First reply within 2 business
hours: tickets created Monday 10:00 are 50 % used at 11:00."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from csmcore.loyalty import (
    EntryKind,
    LedgerEntry,
    LotDraw,
    Purchase,
)
from csmcore.services import EscalationEngine, Ledger, earn_points
from csmcore.storage import Store, open_store
from csmcore.storage._sql_ledger import encode_entry
from csmcore.storage.sqlite import SqliteStore
from tests.escalation.support import GOLD, MEMBER_BOOK, SHOP, at, requested

BOOK = MEMBER_BOOK
PROGRAM = SHOP


def test_a_gold_member_is_escalated_and_a_silver_one_is_not(store: Store) -> None:
    store.tickets.add(requested("T-ann", "ann"))
    store.tickets.add(requested("T-bob", "bob"))
    engine = EscalationEngine(store, BOOK, [GOLD], loyalty=PROGRAM)
    assert engine.plan_all() == 2
    assert engine.next_due() is None  # no member is gold yet: nothing to plan
    # purchases at 10:30: ann 600.00 (gold from then on), bob 200.00 (silver)
    ledger = Ledger(store)
    for member, amount in (("ann", "600.00"), ("bob", "200.00")):
        earn_points(
            ledger, PROGRAM, member, Purchase.of(Decimal(amount)), at=at(6, 10, 30), key="o-1"
        )
        assert engine.member_changed(member) == 1
    assert engine.next_due() == at(6, 11)
    run = engine.run(at(6, 12))
    assert [(p.firing.ticket_id, p.firing.at) for p in run.firings] == [("T-ann", at(6, 11))]
    assert "gold-late" in store.tickets.get("T-ann").tags
    assert "gold-late" not in store.tickets.get("T-bob").tags
    assert engine.run(at(6, 17)).firings == ()  # fired once


def _draws(*draws: LotDraw) -> Any:
    return draws  # (attrs' tuple converter makes mypy expect a bare Iterable)


def test_a_corrupt_ledger_sets_its_requesters_ticket_aside_only(tmp_path: Path) -> None:
    # ann's ledger holds a forged entry (a redemption drawing more than the lot holds) written
    # behind csmcore's back: reading her as a member raises LedgerCorrupt. Her ticket is
    # reported and put off; bob's is escalated as usual.
    store = open_store(f"sqlite:///{tmp_path / 'desk.db'}")
    store.tickets.add(requested("T-ann", "ann"))
    store.tickets.add(requested("T-bob", "bob"))
    ledger = Ledger(store)
    earned = ledger.earn("ann", 600, at=at(6, 9), key="o1")
    ledger.earn("bob", 600, at=at(6, 9), key="o1")
    forged = LedgerEntry(
        entry_id="ann#2",
        member_id="ann",
        seq=2,
        kind=EntryKind.REDEEM,
        at=at(6, 9, 30),
        points=-900,
        key="forged",
        draws=_draws(LotDraw(lot_id=earned.lot_id or "", points=900, expires_at=None)),
    )
    assert isinstance(store, SqliteStore)
    with store.tx(None, write=True) as cur:
        cur.run(
            "INSERT INTO csm_ledger (member_id, seq, key, data) VALUES (?, ?, ?, ?)",
            ["ann", 2, "forged", encode_entry(forged)],
        )
    other = open_store(store.url)  # a new handle: nothing of ann's ledger cached
    engine = EscalationEngine(other, BOOK, [GOLD], loyalty=PROGRAM)
    assert engine.plan_all() == 2  # ann's ticket is planned due at once, to be tried
    run = engine.run(at(6, 12))
    assert [p.firing.ticket_id for p in run.firings] == ["T-bob"]
    (failure,) = run.failed
    assert failure.ticket_id == "T-ann"
    assert failure.error.startswith("LedgerCorrupt: ")
    other.close()
    store.close()
