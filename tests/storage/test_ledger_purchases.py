"""A purchase that earns no points (issue 12), on every store: ``earn_points`` writes a
PURCHASE entry (0 points, the money as ``spend``) under its key, so that a spend tier counts
the money and the key is consumed; a return of it gives the money back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from csmcore.errors import IdempotencyConflict, ValidationError
from csmcore.loyalty import (
    Cap,
    EntryKind,
    EventRule,
    LoyaltyEvent,
    Period,
    Program,
    Purchase,
    Rounding,
    SpendRule,
    Tier,
    TierBasis,
    TierPolicy,
)
from csmcore.services import Ledger, earn_points, return_points, tier_of
from csmcore.storage import Store, open_store

D = Decimal

PROGRAM = Program(
    name="shop",
    rules=[
        SpendRule(name="base", points=D(1), per=D(1), rounding=Rounding.DOWN),
        EventRule(name="survey", event="survey", points=0),
    ],
    caps=[Cap(name="monthly", points=100, period=Period.MONTH)],
    tiers=TierPolicy(tiers=[Tier(name="silver", threshold=D("500.00"))], basis=TierBasis.SPEND),
)


def utc(month: int, day: int) -> datetime:
    return datetime(2026, month, day, tzinfo=timezone.utc)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        made = open_store("memory://")
    else:
        made = request.getfixturevalue(f"{request.param}_factory")()
    yield made
    made.close()


def test_a_capped_purchase_counts_towards_a_spend_tier_and_keeps_its_key(store: Store) -> None:
    ledger = Ledger(store)
    for n in range(6):
        buy = Purchase.of(D("100.00"), reference=f"o{n}")
        earn_points(ledger, PROGRAM, "ann", buy, at=utc(1, 1 + n), key=f"o{n}")
    status = tier_of(ledger, PROGRAM, "ann", utc(1, 31))
    assert (status.tier, status.qualifying) == ("silver", D("600.00"))
    entries = list(ledger.entries("ann"))
    assert [e.kind for e in entries] == [EntryKind.EARN] + [EntryKind.PURCHASE] * 5
    assert (entries[1].spend, entries[1].reference, entries[1].reason) == (
        D("100.00"),
        "o1",
        "purchase",
    )
    # a retry of the same purchase under its key: None again, nothing written, even once the
    # cap has room again (it is not quoted again)
    again = Purchase.of(D("100"), reference="o1")
    assert earn_points(ledger, PROGRAM, "ann", again, at=utc(2, 1), key="o1") is None
    assert len(ledger.entries("ann")) == 6
    # another payload under that key is refused
    for other in (
        Purchase.of(D("90.00"), reference="o1"),
        Purchase.of(D("100.00"), reference="o9"),
        LoyaltyEvent(name="survey"),
    ):
        with pytest.raises(IdempotencyConflict, match="o1"):
            earn_points(ledger, PROGRAM, "ann", other, at=utc(2, 1), key="o1")
    assert len(ledger.entries("ann")) == 6
    assert ledger.verify("ann").ok


def test_an_event_worth_nothing_still_writes_nothing(store: Store) -> None:
    ledger = Ledger(store)
    survey = LoyaltyEvent(name="survey")
    assert earn_points(ledger, PROGRAM, "ann", survey, at=utc(1, 1), key="s") is None
    assert list(ledger.entries("ann")) == []
    assert earn_points(ledger, PROGRAM, "ann", Purchase.of(D(0)), at=utc(1, 1), key="z") is None
    assert list(ledger.entries("ann")) == []


def test_returning_a_purchase_takes_its_money_off_the_spend_tier(store: Store) -> None:
    ledger = Ledger(store)
    for n in range(6):
        earn_points(ledger, PROGRAM, "ann", Purchase.of(D("100.00")), at=utc(1, 1 + n), key=f"o{n}")
    bought = ledger.entries("ann")[5]
    back = return_points(ledger, PROGRAM, bought.entry_id, at=utc(1, 10), key="r")
    assert (back.kind, back.points, back.spend, back.related) == (
        EntryKind.REVERSE,
        0,
        D("100.00"),
        bought.entry_id,
    )
    assert ledger.reverse(bought.entry_id, at=utc(1, 10), key="r", policy=PROGRAM.returns) == back
    status = tier_of(ledger, PROGRAM, "ann", utc(1, 31))
    assert (status.tier, status.qualifying) == ("silver", D("500.00"))
    with pytest.raises(ValidationError, match="already"):
        ledger.reverse(bought.entry_id, at=utc(1, 11), key="r2")
    ledger.reverse(ledger.entries("ann")[4].entry_id, at=utc(1, 12), key="r3")
    status = tier_of(ledger, PROGRAM, "ann", utc(1, 31))
    assert (status.tier, status.qualifying) == ("silver", D("400.00"))  # until its review
    assert ledger.verify("ann").ok
    assert ledger.balance("ann", utc(1, 31)).active == 100
