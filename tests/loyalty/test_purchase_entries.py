"""PURCHASE entries (issue 12): money spent that earned no points, counted by spend tiers.

A PURCHASE has 0 points, the purchase amount as ``spend`` (> 0), no lot; its return is a
REVERSE of 0 points that gives back the whole spend. These tests check the entry's rules on
a :class:`~csmcore.loyalty.LedgerState` (plan, replay, verify) and what tiers count.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest

from csmcore.errors import IdempotencyConflict, LedgerCorrupt, ValidationError
from csmcore.loyalty import (
    EntryKind,
    LedgerEntry,
    LedgerState,
    QualifyWhen,
    ReturnsPolicy,
    Tier,
    TierBasis,
    TierPolicy,
    tier_status,
    verify_entries,
)

D = Decimal
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
SPEND = TierPolicy(tiers=[Tier(name="silver", threshold=D("100.00"))], basis=TierBasis.SPEND)


def _written(state: LedgerState, entry: LedgerEntry) -> LedgerEntry:
    state.apply(entry, new=True)
    return entry


def test_a_purchase_is_an_entry_of_no_points_and_no_lot() -> None:
    state = LedgerState("ann")
    entry = _written(
        state, state.plan_purchase(D("40.00"), at=T0, key="o-1", reference="o-1", reason="purchase")
    )
    assert entry.kind is EntryKind.PURCHASE
    assert EntryKind("purchase") is EntryKind.PURCHASE
    assert (entry.points, entry.spend, entry.reference, entry.reason) == (
        0,
        D("40.00"),
        "o-1",
        "purchase",
    )
    assert (entry.lot_id, entry.expires_at, entry.pending_until, entry.draws) == (
        None,
        None,
        None,
        (),
    )
    assert state.lots == {}
    assert state.balance(T0 + DAY) == LedgerState("ann").balance(T0 + DAY)
    assert verify_entries("ann", state.entries).ok


def test_a_purchase_plan_is_idempotent_by_key() -> None:
    state = LedgerState("ann")
    first = _written(state, state.plan_purchase(D("40.00"), at=T0, key="o-1"))
    assert state.plan_purchase(D("40.00"), at=T0, key="o-1") is first
    with pytest.raises(IdempotencyConflict, match="spend"):
        state.plan_purchase(D("41.00"), at=T0, key="o-1")
    state.apply(state.plan_earn(5, at=T0, key="e-1"))
    with pytest.raises(IdempotencyConflict, match="kind"):
        state.plan_purchase(D("40.00"), at=T0, key="e-1")


@pytest.mark.parametrize("spend", [D(0), D("-1.00"), D("NaN"), 5, 1.5, None])
def test_a_purchase_needs_money(spend: Any) -> None:
    state = LedgerState("ann")
    with pytest.raises(ValidationError, match="spend"):
        state.plan_purchase(spend, at=T0, key="o-1")
    assert state.entries == []


@pytest.mark.parametrize(
    "change",
    [
        {"points": 1},
        {"spend": None},
        {"spend": D(0)},
        {"lot_id": "ann#1"},
        {"expires_at": T0 + DAY},
        {"pending_until": T0 + DAY},
    ],
)
def test_an_entry_that_is_no_purchase_is_refused(change: dict[str, Any]) -> None:
    fields: dict[str, Any] = {
        "entry_id": "ann#1",
        "member_id": "ann",
        "seq": 1,
        "kind": EntryKind.PURCHASE,
        "at": T0,
        "points": 0,
        "key": "o-1",
        "spend": D("40.00"),
    }
    with pytest.raises(ValidationError, match="purchase"):
        LedgerEntry(**{**fields, **change})


def test_returning_a_purchase_gives_back_its_whole_spend_once() -> None:
    state = LedgerState("ann")
    bought = _written(state, state.plan_purchase(D("150.00"), at=T0, key="o-1"))
    assert tier_status(SPEND, state.entries, T0).tier == "silver"
    back = _written(
        state, state.plan_reverse(bought.entry_id, at=T0 + DAY, key="r-1", policy="only_pending")
    )
    assert back.kind is EntryKind.REVERSE
    assert (back.points, back.spend, back.related, back.lot_id, back.draws) == (
        0,
        D("150.00"),
        bought.entry_id,
        None,
        (),
    )
    assert back.returns_policy is ReturnsPolicy.ONLY_PENDING
    status = tier_status(SPEND, state.entries, T0 + DAY)  # the tier holds until its review
    assert (status.tier, status.qualifying) == ("silver", D("0.00"))
    # a retry gets the return back; a second return is refused as for a fully returned earn
    assert (
        state.plan_reverse(bought.entry_id, at=T0 + DAY, key="r-1", policy="only_pending") is back
    )
    with pytest.raises(ValidationError, match="already"):
        state.plan_reverse(bought.entry_id, at=T0 + DAY, key="r-2")
    with pytest.raises(ValidationError, match="points=1"):
        LedgerState.replay("ann", state.entries[:1]).plan_reverse(
            bought.entry_id, at=T0 + DAY, key="r-2", points=1
        )
    report = verify_entries("ann", state.entries)
    assert report.ok, report.problems
    assert LedgerState.replay("ann", state.entries).balance() == state.balance()


def test_replay_and_verify_refuse_a_second_return_of_a_purchase() -> None:
    state = LedgerState("ann")
    bought = _written(state, state.plan_purchase(D("10.00"), at=T0, key="o-1"))
    back = _written(state, state.plan_reverse(bought.entry_id, at=T0, key="r-1"))
    again = attrs.evolve(back, entry_id="ann#3", seq=3, key="r-2")
    with pytest.raises(LedgerCorrupt, match="ann#3"):
        LedgerState.replay("ann", [*state.entries, again])
    assert not verify_entries("ann", [*state.entries, again]).ok
    # a return of 0 points must give back the purchase's own spend
    other = attrs.evolve(back, spend=D("9.00"))
    with pytest.raises(LedgerCorrupt, match="ann#2"):
        LedgerState.replay("ann", [bought, other])
    assert not verify_entries("ann", [bought, other]).ok
    # a return of 0 points of an earn is no return
    earn = LedgerState("bob").plan_earn(5, at=T0, key="e")
    empty = attrs.evolve(back, entry_id="bob#2", member_id="bob", related="bob#1", spend=None)
    assert not verify_entries("bob", [earn, empty]).ok


def test_tiers_count_a_purchase_on_spend_only() -> None:
    state = LedgerState("ann")
    _written(state, state.plan_earn(30, at=T0, key="e-1", spend=D("30.00"), reason="purchase"))
    _written(state, state.plan_purchase(D("80.00"), at=T0 + DAY, key="o-1", reason="purchase"))
    at = T0 + 2 * DAY
    assert tier_status(SPEND, state.entries, at).qualifying == D("110.00")
    points = TierPolicy(tiers=[Tier(name="silver", threshold=100)])
    assert tier_status(points, state.entries, at).qualifying == 30
    active = attrs.evolve(SPEND, qualify_when=QualifyWhen.ACTIVE)
    assert tier_status(active, state.entries, T0 + DAY).qualifying == D("110.00")
    assert tier_status(active, state.entries, T0).qualifying == D("30.00")
    excluded = attrs.evolve(SPEND, non_qualifying=["purchase"])
    assert tier_status(excluded, state.entries, at).qualifying == 0
