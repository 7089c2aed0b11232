"""When a pending earn counts towards a tier: ``TierPolicy(qualify_when=...)``, worked by hand.

By default (``"earned"``) an EARN counts when it is written, pending or not: a member can buy
enough to reach gold, return the purchase inside the returns window and keep gold until the
review. With ``qualify_when="active"`` an earn counts at the instant its points become active
(its ``pending_until``, or the explicit activation), in the qualification window of that
instant; what is returned while it is still pending never counts, a return after activation
counts as before (negative, in the window of its own date).

Tiers: silver from 1,000, gold from 5,000 (points, or money on spend), a calendar year, valid
through the next year, one tier down at the review (1 January, no grace).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.errors import CsmError, SerializationError, ValidationError
from csmcore.loyalty import (
    LedgerEntry,
    LedgerState,
    MemberTimeline,
    PendingPolicy,
    Program,
    Purchase,
    QualifyWhen,
    SpendRule,
    Tier,
    TierBasis,
    TierPolicy,
    review_tiers,
    tier_status,
)
from csmcore.serialization import from_data, from_document, to_data
from csmcore.services import (
    UNTIL_ACTIVATED,
    Ledger,
    activate_points,
    earn_points,
    return_points,
    review_member_tiers,
    tier_of,
)
from csmcore.storage import open_store
from tests.loyalty.program_support import utc

US = timedelta(microseconds=1)
TIERS = [Tier(name="silver", threshold=1000), Tier(name="gold", threshold=5000)]
SPEND_TIERS = [
    Tier(name="silver", threshold=Decimal("1000.00")),
    Tier(name="gold", threshold=Decimal("5000.00")),
]
FIXTURE = Path(__file__).parent.parent / "fixtures" / "main_75556e0_tiers"


def tiers(**kwargs: Any) -> TierPolicy:
    return TierPolicy(tiers=TIERS, **kwargs)


EARNED = tiers()
ACTIVE = tiers(qualify_when="active")


def shop(policy: TierPolicy, pending: PendingPolicy | None = None) -> Program:
    """One point per 1.00 spent, points pending through a 30-day returns window."""
    return Program(
        name="shop",
        rules=[SpendRule(name="base", points=Decimal(1))],
        pending=pending or PendingPolicy(after=relativedelta(days=30)),
        tiers=policy,
    )


def buy(ledger: Ledger, program: Program, member: str, at: datetime, amount: str) -> str:
    earned = earn_points(ledger, program, member, Purchase.of(Decimal(amount)), at=at, key=str(at))
    assert earned is not None
    return earned.entry_id


def tier_and_since(status: Any) -> tuple[str | None, datetime | None]:
    return status.tier, status.since


# -- the setting ---------------------------------------------------------------------------


def test_the_default_counts_earns_when_written_and_bad_values_are_refused() -> None:
    assert EARNED.qualify_when is QualifyWhen.EARNED
    assert ACTIVE.qualify_when is QualifyWhen.ACTIVE
    assert tiers(qualify_when=QualifyWhen.ACTIVE) == ACTIVE
    for bad in ("settled", "", None, True, 1):
        with pytest.raises(ValidationError, match=r"qualify_when=.*accepted: 'earned', 'active'"):
            tiers(qualify_when=bad)
    with pytest.raises(CsmError, match="qualify_when='when'"):
        tiers(qualify_when="when")


# -- the exploit -------------------------------------------------------------------------------


def _exploit(policy: TierPolicy) -> Ledger:
    """ann: 1,200.00 on 1 March 2026 (pending until 31 March), 4,000.00 on 1 June (pending
    until 1 July), returned on 10 June, inside the returns window. bob: the same two purchases,
    kept."""
    program = shop(policy)
    ledger = Ledger(open_store("memory://"))
    june = {}
    for member in ("ann", "bob"):
        buy(ledger, program, member, utc(2026, 3, 1), "1200.00")
        june[member] = buy(ledger, program, member, utc(2026, 6, 1), "4000.00")
    return_points(ledger, program, june["ann"], at=utc(2026, 6, 10), key="return")
    return ledger


def test_without_the_setting_a_purchase_returned_in_the_window_keeps_gold() -> None:
    ledger = _exploit(EARNED)
    gold = tier_of(ledger, EARNED, "ann", utc(2026, 6, 1))
    assert (gold.tier, gold.since, gold.qualifying) == ("gold", utc(2026, 6, 1), Decimal(5200))
    after_return = tier_of(ledger, EARNED, "ann", utc(2026, 6, 10))
    assert (after_return.tier, after_return.qualifying) == ("gold", Decimal(1200))
    assert after_return.valid_until == utc(2028, 1, 1)
    assert tier_of(ledger, EARNED, "ann", utc(2027, 12, 31)).tier == "gold"
    changes = review_member_tiers(ledger, EARNED, ["ann", "bob"], utc(2028, 1, 1))
    assert [(c.member_id, c.before.tier, c.after.tier) for c in changes] == [
        ("ann", "gold", "silver"),
        ("bob", "gold", "silver"),
    ]


def test_with_the_setting_a_purchase_returned_in_the_window_never_lifts_the_tier() -> None:
    ledger = _exploit(ACTIVE)
    # 1 March: 1,200 pending, nothing active, no tier yet
    first = tier_of(ledger, ACTIVE, "ann", utc(2026, 3, 1))
    assert (first.tier, first.qualifying, first.needed) == (None, Decimal(0), Decimal(1000))
    assert tier_of(ledger, ACTIVE, "ann", utc(2026, 3, 31) - US).tier is None
    # 31 March: the 1,200 become active: silver, valid through 2027
    silver = tier_of(ledger, ACTIVE, "ann", utc(2026, 3, 31))
    assert (silver.tier, silver.since, silver.qualifying) == (
        "silver",
        utc(2026, 3, 31),
        Decimal(1200),
    )
    assert silver.valid_until == utc(2028, 1, 1)
    # 1 June: 4,000 more, pending: still silver, 3,800 short of gold
    june = tier_of(ledger, ACTIVE, "ann", utc(2026, 6, 1))
    assert (june.tier, june.qualifying, june.needed) == ("silver", Decimal(1200), Decimal(3800))
    # returned on 10 June, while pending: 1 July (the end of the window) changes nothing
    for when in (utc(2026, 6, 10), utc(2026, 7, 1), utc(2026, 12, 31), utc(2027, 12, 31) - US):
        status = tier_of(ledger, ACTIVE, "ann", when)
        assert (status.tier, status.since, status.qualifying) == (
            "silver",
            utc(2026, 3, 31),
            Decimal(1200 if when.year == 2026 else 0),
        )
        assert status.valid_until == utc(2028, 1, 1)
    # bob kept his purchase: gold when its points became active, 1 July, not on 1 June
    assert tier_and_since(tier_of(ledger, ACTIVE, "bob", utc(2026, 7, 1) - US)) == (
        "silver",
        utc(2026, 3, 31),
    )
    assert tier_and_since(tier_of(ledger, ACTIVE, "bob", utc(2026, 7, 1))) == (
        "gold",
        utc(2026, 7, 1),
    )
    # the review: ann's silver ran out (nothing in 2027), bob goes down one tier
    changes = review_member_tiers(ledger, ACTIVE, ["ann", "bob"], utc(2028, 1, 1))
    assert [(c.member_id, c.before.tier, c.after.tier) for c in changes] == [
        ("ann", "silver", None),
        ("bob", "gold", "silver"),
    ]


def test_on_spend_the_money_returned_while_pending_never_counts() -> None:
    # 5,000.00 on 1 June (5,000 points pending until 1 July); 1,500 points (1,500.00) returned
    # on 10 June, while pending; 500 points (500.00) returned on 15 July, after activation
    policies = {
        q: TierPolicy(tiers=SPEND_TIERS, basis=TierBasis.SPEND, qualify_when=q)
        for q in ("earned", "active")
    }
    ledgers = {}
    for q, policy in policies.items():
        program = shop(policy)
        ledger = ledgers[q] = Ledger(open_store("memory://"))
        june = buy(ledger, program, "ann", utc(2026, 6, 1), "5000.00")
        return_points(ledger, program, june, at=utc(2026, 6, 10), key="r1", points=1500)
        return_points(ledger, program, june, at=utc(2026, 7, 15), key="r2", points=500)
    earned, active = policies["earned"], policies["active"]
    # today: gold on 1 June, kept
    status = tier_of(ledgers["earned"], earned, "ann", utc(2026, 6, 10))
    assert (status.tier, status.since, status.qualifying) == (
        "gold",
        utc(2026, 6, 1),
        Decimal("3500.00"),
    )
    # active: nothing before 1 July, then the 3,500.00 kept: silver
    assert tier_of(ledgers["active"], active, "ann", utc(2026, 6, 30)).qualifying == 0
    status = tier_of(ledgers["active"], active, "ann", utc(2026, 7, 1))
    assert (status.tier, status.since, status.qualifying, status.needed) == (
        "silver",
        utc(2026, 7, 1),
        Decimal("3500.00"),
        Decimal("1500.00"),
    )
    # the return after activation counts on its own date, as before: 3,000.00 in both
    for q, policy in policies.items():
        status = tier_of(ledgers[q], policy, "ann", utc(2026, 7, 15))
        assert status.qualifying == Decimal("3000.00")
        assert status.tier == ("gold" if q == "earned" else "silver")


def test_an_explicit_activation_is_when_the_earn_counts() -> None:
    # 6,000.00 on 10 January 2026 awaiting delivery; 2,000 points returned on 15 January
    # (pending); delivered (activated) on 20 February: 4,000 count then, silver
    program = shop(ACTIVE, PendingPolicy(explicit=True))
    ledger = Ledger(open_store("memory://"))
    order = buy(ledger, program, "ann", utc(2026, 1, 10), "6000.00")
    return_points(ledger, program, order, at=utc(2026, 1, 15), key="r1", points=2000)
    activate_points(ledger, program, "ann", order, at=utc(2026, 2, 20, 12), key="delivered")
    assert tier_of(ledger, ACTIVE, "ann", utc(2026, 2, 20, 12) - US).tier is None
    status = tier_of(ledger, ACTIVE, "ann", utc(2026, 2, 20, 12))
    assert (status.tier, status.since, status.qualifying) == (
        "silver",
        utc(2026, 2, 20, 12),
        Decimal(4000),
    )
    # as written today: gold on 10 January, kept after the return
    assert tier_and_since(tier_of(ledger, EARNED, "ann", utc(2026, 2, 20, 12))) == (
        "gold",
        utc(2026, 1, 10),
    )
    # bob's 5,000.00 is never delivered: it never counts
    buy(ledger, program, "bob", utc(2026, 1, 10), "5000.00")
    never = tier_of(ledger, ACTIVE, "bob", utc(2026, 12, 31))
    assert (never.tier, never.qualifying) == (None, Decimal(0))
    assert tier_of(ledger, EARNED, "bob", utc(2026, 12, 31)).tier == "gold"


def test_a_return_after_activation_counts_on_its_own_date() -> None:
    program = shop(ACTIVE)
    ledger = Ledger(open_store("memory://"))
    # ann: 5,000 on 1 March 2026, active 31 March (gold); 2,000 returned on 15 April
    ann = buy(ledger, program, "ann", utc(2026, 3, 1), "5000.00")
    return_points(ledger, program, ann, at=utc(2026, 4, 15), key="r", points=2000)
    status = tier_of(ledger, ACTIVE, "ann", utc(2026, 4, 15))
    assert (status.tier, status.since, status.qualifying) == (
        "gold",
        utc(2026, 3, 31),
        Decimal(3000),
    )
    # bob: the same, returned on 20 March (pending): 3,000 count on 31 March, silver
    bob = buy(ledger, program, "bob", utc(2026, 3, 1), "5000.00")
    return_points(ledger, program, bob, at=utc(2026, 3, 20), key="r", points=2000)
    status = tier_of(ledger, ACTIVE, "bob", utc(2026, 4, 15))
    assert (status.tier, status.since, status.qualifying) == (
        "silver",
        utc(2026, 3, 31),
        Decimal(3000),
    )
    # cy: 5,000 on 1 November 2026 (active 1 December), 1,000 returned on 10 January 2027:
    # counted in 2027, the year of the return
    cy = buy(ledger, program, "cy", utc(2026, 11, 1), "5000.00")
    return_points(ledger, program, cy, at=utc(2027, 1, 10), key="r", points=1000)
    assert tier_of(ledger, ACTIVE, "cy", utc(2026, 12, 31)).qualifying == 5000
    status = tier_of(ledger, ACTIVE, "cy", utc(2027, 1, 10))
    assert (status.tier, status.since, status.qualifying) == (
        "gold",
        utc(2026, 12, 1),
        Decimal(-1000),
    )


def test_an_earn_pending_across_the_year_end_counts_in_the_year_it_becomes_active() -> None:
    # 5,000 on 10 December 2026, pending 30 days: active on 9 January 2027
    statuses = {}
    for policy in (EARNED, ACTIVE):
        ledger = Ledger(open_store("memory://"))
        buy(ledger, shop(policy), "ann", utc(2026, 12, 10), "5000.00")
        statuses[policy.qualify_when.value] = {
            when: tier_of(ledger, policy, "ann", when)
            for when in (utc(2026, 12, 31), utc(2027, 1, 9), utc(2028, 1, 1))
        }
    earned, active = statuses["earned"], statuses["active"]
    # today: gold in 2026, valid through 2027, one tier down on 1 January 2028
    assert (earned[utc(2026, 12, 31)].tier, earned[utc(2026, 12, 31)].valid_until) == (
        "gold",
        utc(2028, 1, 1),
    )
    assert earned[utc(2027, 1, 9)].qualifying == 0
    assert earned[utc(2028, 1, 1)].tier == "silver"
    # active: nothing in 2026; gold in 2027 (9 January), valid through 2028
    assert (active[utc(2026, 12, 31)].tier, active[utc(2026, 12, 31)].qualifying) == (
        None,
        Decimal(0),
    )
    gold = active[utc(2027, 1, 9)]
    assert (gold.tier, gold.since, gold.qualifying) == ("gold", utc(2027, 1, 9), Decimal(5000))
    assert gold.valid_until == utc(2029, 1, 1)
    assert active[utc(2028, 1, 1)].tier == "gold"


def test_the_activation_instant_is_read_in_the_policy_time_zone() -> None:
    # pending until 23:30 UTC on 31 December 2026: 00:30 on 1 January 2027 in Berlin
    state = LedgerState("ann")
    state.apply(
        state.plan_earn(
            5000, at=utc(2026, 12, 1), key="o1", pending_until=utc(2026, 12, 31, 23, 30)
        )
    )
    berlin = tiers(qualify_when="active", timezone="Europe/Berlin")
    status = tier_status(berlin, state.entries, utc(2026, 12, 31, 23, 30))
    assert (status.tier, status.qualifying) == ("gold", Decimal(5000))
    assert status.valid_until == utc(2028, 12, 31, 23)  # 1 January 2029, Berlin
    in_utc = tier_status(ACTIVE, state.entries, utc(2026, 12, 31, 23, 30))
    assert in_utc.valid_until == utc(2028, 1, 1)  # reached in 2026, UTC
    assert tier_status(ACTIVE, state.entries, utc(2027, 1, 1)).qualifying == 0


def test_a_rolling_window_counts_the_earn_from_its_activation() -> None:
    # 5,000.00 on 1 January 2026, active on 31 January; rolling 12 months on spend
    policies = [
        TierPolicy(
            tiers=SPEND_TIERS,
            basis="spend",
            rolling=relativedelta(months=12),
            qualify_when=q,
        )
        for q in ("earned", "active")
    ]
    for policy in policies:
        ledger = Ledger(open_store("memory://"))
        buy(ledger, shop(policy), "ann", utc(2026, 1, 1), "5000.00")
        mid = tier_of(ledger, policy, "ann", utc(2027, 1, 15)).qualifying
        end = tier_of(ledger, policy, "ann", utc(2027, 1, 31)).qualifying
        if policy.qualify_when is QualifyWhen.EARNED:
            assert (mid, end) == (Decimal(0), Decimal(0))
        else:  # (15 January 2026, 15 January 2027] holds 31 January 2026; the next does not
            assert (mid, end) == (Decimal("5000.00"), Decimal(0))


def test_an_earn_expiring_before_its_activation_never_counts() -> None:
    state = LedgerState("ann")
    state.apply(
        state.plan_earn(
            5000,
            at=utc(2026, 3, 1),
            key="o1",
            expires_at=utc(2026, 3, 20),
            pending_until=utc(2026, 3, 31),
        )
    )
    assert state.balance(utc(2026, 4, 1)).active == 0  # the ledger never made them active
    status = tier_status(ACTIVE, state.entries, utc(2026, 4, 1))
    assert (status.tier, status.qualifying) == (None, Decimal(0))
    assert tier_status(EARNED, state.entries, utc(2026, 4, 1)).tier == "gold"


def test_an_earn_returned_in_full_while_pending_does_not_requalify_at_its_activation() -> None:
    # rolling 12 months. 1,200 on 1 March 2027 (active 31 March: silver, valid through 2028);
    # 500 on 10 December 2027, returned on 15 December, its window ending 9 January 2028:
    # nothing becomes active then, so nothing requalifies silver into 2029
    policy = tiers(rolling=relativedelta(months=12), qualify_when="active")
    program = shop(policy)
    ledger = Ledger(open_store("memory://"))
    buy(ledger, program, "ann", utc(2027, 3, 1), "1200.00")
    december = buy(ledger, program, "ann", utc(2027, 12, 10), "500.00")
    return_points(ledger, program, december, at=utc(2027, 12, 15), key="r")
    status = tier_of(ledger, policy, "ann", utc(2028, 1, 9))
    assert (status.tier, status.valid_until) == ("silver", utc(2029, 1, 1))
    assert tier_of(ledger, policy, "ann", utc(2029, 1, 1)).tier is None


def test_a_timeline_changes_tier_at_the_activation_instants() -> None:
    # explicit: 600 points awaiting activation from 10:00, activated at 10:20; by time: 600
    # pending until 11:00
    small = TierPolicy(
        tiers=[Tier(name="silver", threshold=100), Tier(name="gold", threshold=500)],
        qualify_when="active",
    )
    explicit, timed = LedgerState("ann"), LedgerState("bob")
    explicit.apply(
        explicit.plan_earn(600, at=utc(2026, 1, 5, 10), key="e", pending_until=UNTIL_ACTIVATED)
    )
    explicit.apply(explicit.plan_activate("ann#1", at=utc(2026, 1, 5, 10, 20), key="a"))
    timed.apply(
        timed.plan_earn(600, at=utc(2026, 1, 5, 10), key="e", pending_until=utc(2026, 1, 5, 11))
    )
    for state, when in ((explicit, utc(2026, 1, 5, 10, 20)), (timed, utc(2026, 1, 5, 11))):
        timeline = MemberTimeline(state.member_id, state.entries, small)
        assert timeline.next_change(utc(2026, 1, 5, 10)) == when
        assert timeline.at(when - US).tier is None
        assert timeline.at(when).tier == "gold"
        # counted when written, as before: gold at 10:00
        earned = MemberTimeline(state.member_id, state.entries, TierPolicy(tiers=small.tiers))
        assert earned.at(utc(2026, 1, 5, 10)).tier == "gold"


# -- a brute-force reference --------------------------------------------------------------

_START = utc(2026, 11, 1)


@st.composite
def _ledgers(draw: st.DrawFn) -> list[LedgerEntry]:
    """A member's ledger: earns (active at once, pending some days, or awaiting activation),
    activations of pending lots and partial or full returns, over a few months around a year
    end."""
    state = LedgerState("ann")
    t = _START
    for n in range(draw(st.integers(1, 12))):
        t += timedelta(days=draw(st.integers(0, 20)), hours=draw(st.integers(0, 23)))
        pending = [lot.lot_id for lot in state.lot_values(t) if lot.status.value == "pending"]
        returnable = [
            e for e in state.entries if e.kind.value == "earn" and state.lots[e.entry_id].remaining
        ]
        action = draw(st.sampled_from(["earn", "earn", "activate", "return"]))
        if action == "activate" and pending:
            lot = draw(st.sampled_from(pending))
            state.apply(state.plan_activate(lot, at=t, key=f"k{n}"))
        elif action == "return" and returnable:
            earn = draw(st.sampled_from(returnable))
            left = state.lots[earn.entry_id].remaining
            points = draw(st.integers(1, left))
            state.apply(state.plan_reverse(earn.entry_id, at=t, key=f"k{n}", points=points))
        else:
            wait = draw(st.sampled_from([None, 0, 3, 10, 40]))
            until = None
            if wait is None:
                until = UNTIL_ACTIVATED
            elif wait:
                until = t + timedelta(days=wait)
            spend = Decimal(draw(st.integers(1, 400_000))).scaleb(-2)
            state.apply(
                state.plan_earn(
                    draw(st.integers(1, 3000)),
                    at=t,
                    key=f"k{n}",
                    pending_until=until,
                    spend=spend,
                )
            )
    return state.entries


def _activation(entries: list[LedgerEntry], earn: LedgerEntry) -> datetime:
    if earn.pending_until is None:
        return earn.at
    activations = [
        e.at for e in entries if e.kind.value == "activate" and e.lot_id == earn.entry_id
    ]
    return min([earn.pending_until, *activations])


class _Fake:
    """An entry as tier_status reads one, for the reference."""

    def __init__(self, kind: str, at: datetime, points: int, spend: Decimal | None) -> None:
        self.kind, self.at, self.points, self.spend, self.reason = kind, at, points, spend, None


def _reference(policy: TierPolicy, entries: list[LedgerEntry], at: datetime) -> list[_Fake]:
    """What the default policy would read if the ledger held only what was active at ``at``:
    each earn active by ``at`` as an earn at its activation, less what was returned while it
    was pending (points, or its share of the money), and each return after its earn's
    activation, on its own date."""
    earned = {e.entry_id: e for e in entries if e.kind.value == "earn"}
    out = []
    for entry_id, earn in earned.items():
        active = _activation(entries, earn)
        if active > at:
            continue
        returns = [e for e in entries if e.kind.value == "reverse" and e.related == entry_id]
        before = sum(-r.points for r in returns if r.at < active)
        assert earn.spend is not None
        kept = earn.spend - _share(earn.spend, earn.points, before)
        if before < earn.points:
            out.append(_Fake("earn", active, earn.points - before, kept))
        done = before
        for r in returns:
            if r.at >= active and r.at <= at:
                back = _share(earn.spend, earn.points, done - r.points) - _share(
                    earn.spend, earn.points, done
                )
                done -= r.points
                out.append(_Fake("reverse", r.at, r.points, back))
    return out


def _share(spend: Decimal, points: int, back: int) -> Decimal:
    if back >= points:
        return spend
    return (spend * back / points).quantize(Decimal("0.01"), rounding="ROUND_HALF_EVEN")


@settings(max_examples=150, deadline=None)
@given(
    entries=_ledgers(),
    basis=st.sampled_from(["points", "spend"]),
    rolling=st.sampled_from([None, relativedelta(months=2)]),
    offsets=st.lists(st.integers(0, 200 * 24), min_size=1, max_size=6),
)
def test_the_tier_is_the_tier_of_what_was_active(
    entries: list[LedgerEntry], basis: str, rolling: relativedelta | None, offsets: list[int]
) -> None:
    thresholds = TIERS if basis == "points" else SPEND_TIERS
    active = TierPolicy(tiers=thresholds, basis=basis, rolling=rolling, qualify_when="active")
    earned = TierPolicy(tiers=thresholds, basis=basis, rolling=rolling)
    for hours in offsets:
        at = _START + timedelta(hours=hours)
        got = tier_status(active, entries, at)
        want = tier_status(earned, _reference(active, entries, at), at)
        assert (got.tier, got.since, got.valid_until, got.qualifying) == (
            want.tier,
            want.since,
            want.valid_until,
            want.qualifying,
        )
    # nothing pending, nothing to wait for: both settings read alike
    settled = [e for e in entries if e.pending_until is None and e.kind.value == "earn"]
    for hours in offsets:
        at = _START + timedelta(hours=hours)
        assert tier_status(active, settled, at) == tier_status(earned, settled, at)


@settings(max_examples=60, deadline=None)
@given(entries=_ledgers(), offsets=st.lists(st.integers(0, 200 * 24), min_size=1, max_size=4))
def test_the_default_reads_as_before_the_setting_existed(
    entries: list[LedgerEntry], offsets: list[int]
) -> None:
    # every earn counts when written: the same as an explicit qualify_when="earned"
    for hours in offsets:
        at = _START + timedelta(hours=hours)
        assert tier_status(EARNED, entries, at) == tier_status(
            tiers(qualify_when="earned"), entries, at
        )
        assert review_tiers(EARNED, {"ann": entries}, at) == review_tiers(
            tiers(qualify_when=QualifyWhen.EARNED), {"ann": entries}, at
        )


# -- stored policies ----------------------------------------------------------------------


def test_policies_written_before_the_setting_read_and_behave_as_then() -> None:
    documents = json.loads((FIXTURE / "documents.json").read_text("utf-8"))
    for name in ("policy", "default_policy"):
        assert "qualify_when" not in documents[name]["data"]
        policy = from_document(documents[name])
        assert isinstance(policy, TierPolicy)
        assert policy.qualify_when is QualifyWhen.EARNED
        assert to_data(policy) == {**documents[name]["data"], "qualify_when": "earned"}
    program = from_document(documents["program"])
    assert isinstance(program, Program)
    assert program.tiers is not None
    assert program.tiers.qualify_when is QualifyWhen.EARNED
    entries = [from_document(e) for e in documents["entries"]]
    for when, status in documents["statuses"].items():
        at = datetime.fromisoformat(when)
        assert to_data(tier_status(program.tiers, entries, at)) == status
    # the exploit that commit allowed (gold kept after the return) is still what it reads
    assert documents["statuses"]["2027-01-10T00:00:00+00:00"]["tier"] == "gold"


def test_the_setting_is_stored_and_a_bad_stored_value_is_refused() -> None:
    data = to_data(ACTIVE)
    assert data["qualify_when"] == "active"
    assert from_data(data, TierPolicy) == ACTIVE
    with pytest.raises(
        SerializationError,
        match=r"'settled' is not a QualifyWhen; accepted: 'earned', 'active'.*qualify_when",
    ):
        from_data({**data, "qualify_when": "settled"}, TierPolicy)


class _Earned:
    """An earn as a caller's own record gives it (no entry id): tier_status reads attributes."""

    def __init__(self, at: datetime, points: int, pending_until: datetime | None) -> None:
        self.kind, self.at, self.points, self.reason, self.spend = "earn", at, points, None, None
        self.pending_until = pending_until


def test_entries_without_ids_count_at_their_pending_until() -> None:
    history = [
        _Earned(utc(2026, 3, 1), 1200, None),
        _Earned(utc(2026, 6, 1), 4000, utc(2026, 7, 1)),
    ]
    assert tier_and_since(tier_status(ACTIVE, history, utc(2026, 6, 30))) == (
        "silver",
        utc(2026, 3, 1),
    )
    assert tier_and_since(tier_status(ACTIVE, history, utc(2026, 7, 1))) == (
        "gold",
        utc(2026, 7, 1),
    )
    assert tier_and_since(tier_status(EARNED, history, utc(2026, 6, 30))) == (
        "gold",
        utc(2026, 6, 1),
    )
