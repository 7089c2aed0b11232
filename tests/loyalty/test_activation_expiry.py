"""Points awaiting an explicit activation count their expiry from the activation (as Talon.One
does for points that await activation: its ``validityDuration`` is "relative to the activation
date"), not from when they were earned: an order delivered late must not find its points
already expired, or about to. Dates below are worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import attrs
import pytest
from dateutil.relativedelta import relativedelta

from csmcore.errors import IdempotencyConflict, InvalidTransition, ValidationError
from csmcore.loyalty import (
    EntryKind,
    LedgerState,
    PendingPolicy,
    Program,
    Purchase,
    RollingExpiry,
    SpendRule,
    verify_entries,
)
from csmcore.services import Ledger, activate_points, earn_points
from csmcore.storage import open_store
from tests.loyalty.program_support import utc

PROGRAM = Program(
    name="delivered orders",
    rules=[SpendRule(name="base", points=Decimal(1))],
    pending=PendingPolicy(explicit=True),
    expiry=RollingExpiry(after=relativedelta(months=1)),
)
EARNED = utc(2026, 1, 10, 12)
DELIVERED = utc(2026, 2, 20, 12)
EXPIRES = utc(2026, 3, 20, 12)  # one month after the delivery, not after the purchase


def _ledger(url: str = "memory://") -> Ledger:
    return Ledger(open_store(url))


def _earned(ledger: Ledger) -> str:
    entry = earn_points(ledger, PROGRAM, "ann", Purchase.of(Decimal("100.00")), at=EARNED, key="o1")
    assert entry is not None
    assert entry.expires_at is None  # not known until the activation
    assert ledger.balance("ann", EARNED).pending == 100
    return entry.lot_id or ""


@pytest.mark.parametrize("url", ["memory://", "sqlite:///:memory:"])
def test_the_expiry_of_explicitly_activated_points_starts_at_the_activation(url: str) -> None:
    ledger = _ledger(url)
    lot = _earned(ledger)
    # still pending long after a month from the purchase: nothing expired meanwhile
    assert ledger.balance("ann", utc(2026, 2, 19)).pending == 100
    activation = activate_points(ledger, PROGRAM, "ann", lot, at=DELIVERED, key="delivered")
    assert activation.kind is EntryKind.ACTIVATE
    assert activation.expires_at == EXPIRES
    assert ledger.balance("ann", EXPIRES - timedelta(microseconds=1)).active == 100
    at_expiry = ledger.balance("ann", EXPIRES)
    assert (at_expiry.active, at_expiry.expired) == (0, 100)
    # a redemption in between draws with the new expiry, and its refund restores it
    redeem = ledger.redeem("ann", 30, at=utc(2026, 3, 1), key="r")
    assert [(d.points, d.expires_at) for d in redeem.draws] == [(30, EXPIRES)]
    refund = ledger.refund(redeem.entry_id, at=utc(2026, 3, 2), key="f")
    assert [(d.points, d.expires_at) for d in refund.draws] == [(30, EXPIRES)]
    expired = ledger.expire("ann", at=utc(2026, 3, 21))
    assert [(e.points, e.lot_id) for e in expired] == [(-100, lot)]
    entries = list(ledger.entries("ann"))
    report = verify_entries("ann", entries)
    assert report.ok, report.problems
    assert report.balance == ledger.balance("ann", utc(2026, 3, 21))
    replayed = LedgerState.replay("ann", entries)
    for at in (EARNED, DELIVERED, utc(2026, 3, 1), EXPIRES, utc(2026, 3, 21)):
        assert replayed.balance(at) == ledger.balance("ann", at)


def test_an_activation_without_an_expiry_keeps_the_lots_own() -> None:
    ledger = _ledger()
    earn = ledger.earn(
        "ann", 50, at=EARNED, key="e", expires_at=utc(2026, 6, 1), pending_until=utc(2026, 5, 1)
    )
    activation = ledger.activate("ann", earn.lot_id or "", at=DELIVERED, key="a")
    assert activation.expires_at is None
    assert ledger.balance("ann", utc(2026, 5, 31)).active == 50
    assert ledger.balance("ann", utc(2026, 6, 1)).expired == 50


def test_a_new_expiry_moves_the_lot_in_the_soonest_expiry_order() -> None:
    ledger = _ledger()
    ledger.earn("ann", 40, at=EARNED, key="a", expires_at=utc(2026, 6, 1))
    late = ledger.earn(
        "ann", 40, at=EARNED, key="b", expires_at=utc(2026, 12, 1), pending_until=utc(2026, 11, 1)
    )
    # activated with an expiry before the first lot's: it is now drawn first
    ledger.activate("ann", late.lot_id or "", at=DELIVERED, key="act", expires_at=utc(2026, 4, 1))
    redeem = ledger.redeem("ann", 50, at=utc(2026, 3, 1), key="r")
    assert [(d.lot_id, d.points) for d in redeem.draws] == [(late.lot_id, 40), ("ann#1", 10)]
    assert verify_entries("ann", list(ledger.entries("ann"))).ok


def test_an_activation_is_idempotent_per_key_and_payload() -> None:
    ledger = _ledger()
    lot = _earned(ledger)
    first = activate_points(ledger, PROGRAM, "ann", lot, at=DELIVERED, key="delivered")
    assert activate_points(ledger, PROGRAM, "ann", lot, at=DELIVERED, key="delivered") == first
    with pytest.raises(IdempotencyConflict, match="expires_at"):
        ledger.activate("ann", lot, at=DELIVERED, key="delivered", expires_at=utc(2026, 9, 1))
    assert len(ledger.entries("ann")) == 2


def test_bad_activation_expiries_are_refused_writing_nothing() -> None:
    ledger = _ledger()
    lot = _earned(ledger)
    for bad in (DELIVERED, DELIVERED - timedelta(days=1)):
        with pytest.raises(ValidationError, match=r"expires_at=.* is not after at="):
            ledger.activate("ann", lot, at=DELIVERED, key="k", expires_at=bad)
    with pytest.raises(ValidationError, match="expires_at"):
        ledger.activate("ann", lot, at=DELIVERED, key="k", expires_at=datetime(2026, 4, 1))
    with pytest.raises(ValidationError, match="program"):
        activate_points(ledger, "PROGRAM", "ann", lot, at=DELIVERED, key="k")  # type: ignore[arg-type]
    assert len(ledger.entries("ann")) == 1


def test_a_lot_that_expired_while_pending_gets_no_new_expiry() -> None:
    ledger = _ledger()
    earn = ledger.earn(
        "ann", 50, at=EARNED, key="e", expires_at=utc(2026, 2, 1), pending_until=utc(2026, 3, 1)
    )
    with pytest.raises(InvalidTransition, match="expired at 2026-02-01"):
        ledger.activate("ann", earn.lot_id or "", at=DELIVERED, key="a", expires_at=utc(2026, 4, 1))
    assert ledger.balance("ann", DELIVERED).expired == 50


def test_verify_reports_a_forged_activation_expiry() -> None:
    ledger = _ledger()
    lot = _earned(ledger)
    activation = activate_points(ledger, PROGRAM, "ann", lot, at=DELIVERED, key="delivered")
    entries = list(ledger.entries("ann"))
    forged = attrs.evolve(activation, expires_at=DELIVERED)
    report = verify_entries("ann", [entries[0], forged])
    assert not report.ok
    assert any("expiry not after its activation" in p for p in report.problems)
