"""Tiers, worked by hand: upgrade at once, validity through the next year, one-tier-down and
re-evaluate downgrades at year end, grace periods, requalification, rolling windows, spend
thresholds, and the highest tier met whatever the order the tiers are given in."""

from __future__ import annotations

from decimal import Decimal

from dateutil.relativedelta import relativedelta

from csmcore.loyalty import Downgrade, Tier, TierPolicy, review_tiers, tier_status
from tests.loyalty.program_support import Entry, earn, utc

# given highest first, on purpose: the policy sorts them (frappe/erpnext #22167 took the first
# tier whose threshold was met in list order)
TIERS = [
    Tier(name="gold", threshold=5000),
    Tier(name="silver", threshold=1000),
]


def policy(**kwargs: object) -> TierPolicy:
    return TierPolicy(tiers=TIERS, **kwargs)  # type: ignore[arg-type]


# 2026: 1,200 points on 1 March (silver), 4,000 more on 15 June (5,200 in 2026: gold);
# 2027: 1,500 points on 1 May (silver level only)
HISTORY = [
    earn(utc(2026, 3, 1), 1200),
    earn(utc(2026, 6, 15), 4000),
    earn(utc(2027, 5, 1), 1500),
]


def test_the_highest_tier_met_is_picked_whatever_the_order_given() -> None:
    p = policy()
    assert p.names == ("silver", "gold")
    assert p.met(Decimal(5000)) == "gold"
    assert p.met(Decimal(4999)) == "silver"
    assert p.met(Decimal(1000)) == "silver"  # meeting a threshold exactly reaches it
    assert p.met(Decimal(999)) is None


def test_upgrade_is_immediate_and_valid_through_next_year() -> None:
    p = policy()
    before = tier_status(p, HISTORY, utc(2026, 2, 28))
    assert (before.tier, before.rank, before.next_tier, before.needed) == (
        None,
        0,
        "silver",
        Decimal(1000),
    )
    silver = tier_status(p, HISTORY, utc(2026, 3, 1))
    assert (silver.tier, silver.since) == ("silver", utc(2026, 3, 1))
    # reached in 2026: valid through 2027, i.e. until 1 January 2028
    assert silver.valid_until == utc(2028, 1, 1)
    assert (silver.qualifying, silver.next_tier, silver.needed) == (
        Decimal(1200),
        "gold",
        Decimal(3800),
    )
    gold = tier_status(p, HISTORY, utc(2026, 6, 15))
    assert (gold.tier, gold.since, gold.valid_until) == ("gold", utc(2026, 6, 15), utc(2028, 1, 1))
    assert (gold.next_tier, gold.needed) == (None, Decimal(0))


def test_one_tier_down_at_the_end_of_validity_then_again_a_year_later() -> None:
    p = policy(downgrade=Downgrade.ONE_TIER)
    # 2027 qualifies only for silver: gold is kept through 2027 (valid until 1 Jan 2028)
    assert tier_status(p, HISTORY, utc(2027, 12, 31, 23, 59)).tier == "gold"
    after = tier_status(p, HISTORY, utc(2028, 1, 1))
    assert (after.tier, after.since) == ("silver", utc(2028, 1, 1))
    # a tier given by a downgrade is valid to the end of the review year it starts in
    assert after.valid_until == utc(2029, 1, 1)
    # nothing earned in 2028: silver goes at the next review, to no tier
    assert tier_status(p, HISTORY, utc(2029, 1, 1)).tier is None


def test_reevaluate_from_scratch_uses_the_year_that_just_ended() -> None:
    p = policy(downgrade=Downgrade.REEVALUATE)
    # 2027 earned 1,500: re-evaluated at 1 Jan 2028 -> silver
    assert tier_status(p, HISTORY, utc(2028, 1, 1)).tier == "silver"
    # with only 500 earned in 2027, from scratch gives no tier (one-tier-down would give silver)
    small = [*HISTORY[:2], earn(utc(2027, 5, 1), 500)]
    assert tier_status(p, small, utc(2028, 1, 1)).tier is None
    assert tier_status(policy(), small, utc(2028, 1, 1)).tier == "silver"


def test_a_grace_period_delays_the_downgrade() -> None:
    p = policy(grace=relativedelta(months=3))
    status = tier_status(p, HISTORY, utc(2028, 3, 31, 23, 59))
    assert (status.tier, status.valid_until, status.review_at) == (
        "gold",
        utc(2028, 1, 1),
        utc(2028, 4, 1),
    )
    after = tier_status(p, HISTORY, utc(2028, 4, 1))
    assert (after.tier, after.since) == ("silver", utc(2028, 4, 1))
    # silver from 1 April 2028 is valid until 1 January 2029, reviewed at 1 April 2029
    assert (after.valid_until, after.review_at) == (utc(2029, 1, 1), utc(2029, 4, 1))


def test_requalifying_during_grace_keeps_the_tier() -> None:
    p = policy(grace=relativedelta(months=3))
    history = [*HISTORY, earn(utc(2028, 2, 10), 5000)]
    status = tier_status(p, history, utc(2028, 6, 1))
    # 5,000 in 2028 by 10 February: gold requalified, valid through 2029
    assert (status.tier, status.since, status.valid_until) == (
        "gold",
        utc(2026, 6, 15),
        utc(2030, 1, 1),
    )


def test_requalifying_each_year_keeps_the_tier() -> None:
    p = policy()
    history = [earn(utc(2026, 1, 10), 6000), earn(utc(2027, 1, 10), 6000)]
    status = tier_status(p, history, utc(2028, 6, 1))
    assert (status.tier, status.since, status.valid_until) == (
        "gold",
        utc(2026, 1, 10),
        utc(2029, 1, 1),
    )


def test_returns_reduce_the_qualifying_points() -> None:
    p = policy()
    history = [
        earn(utc(2026, 3, 1), 900),
        Entry(kind="reverse", at=utc(2026, 3, 5), points=300, reason="purchase"),
        earn(utc(2026, 3, 9), 300),
    ]
    # 900 - 300 + 300 = 900: no tier; redemptions and adjustments never count
    history.append(Entry(kind="redeem", at=utc(2026, 3, 10), points=500))
    history.append(Entry(kind="adjust", at=utc(2026, 3, 11), points=5000))
    status = tier_status(p, history, utc(2026, 4, 1))
    assert (status.tier, status.qualifying) == (None, Decimal(900))


def test_rolling_twelve_months_on_spend() -> None:
    p = TierPolicy(
        tiers=[Tier(name="plus", threshold=Decimal("500.00"))],
        basis="spend",
        rolling=relativedelta(months=12),
    )
    history = [
        earn(utc(2026, 2, 1), 30, spend="300.00"),
        earn(utc(2026, 9, 1), 25, spend="250.00"),
    ]
    # 1 Sep 2026: 550.00 spent in the 12 months before -> plus
    assert tier_status(p, history, utc(2026, 9, 1)).tier == "plus"
    # 2 Feb 2027: the February purchase left the window: 250.00 (valid until the end of
    # 2027 all the same)
    status = tier_status(p, history, utc(2027, 2, 2))
    assert (status.tier, status.qualifying, status.needed) == (
        "plus",
        Decimal("250.00"),
        Decimal(0),
    )


def test_a_base_tier_of_threshold_zero_is_held_from_the_start_and_never_lost() -> None:
    p = TierPolicy(tiers=[Tier(name="member", threshold=0), *TIERS])
    assert tier_status(p, [], utc(2026, 1, 1)).tier == "member"
    history = [earn(utc(2026, 3, 1), 1200)]
    assert tier_status(p, history, utc(2028, 1, 1)).tier == "member"
    assert tier_status(p, history, utc(2030, 1, 1)).tier == "member"


def test_yearly_review_reports_the_members_whose_tier_changes() -> None:
    p = policy()
    members = {
        "C-2": [earn(utc(2026, 4, 1), 1200), earn(utc(2027, 4, 1), 1200)],  # kept silver
        "C-1": HISTORY,  # gold -> silver
        "C-3": [earn(utc(2026, 4, 1), 1200)],  # silver reached 2026: kept through 2027
    }
    changes = review_tiers(p, members, utc(2028, 1, 1))
    assert [(c.member_id, c.before.tier, c.after.tier) for c in changes] == [
        ("C-1", "gold", "silver"),
        ("C-3", "silver", None),
    ]


def test_partial_returns_on_spend_give_back_the_exact_money() -> None:
    # 200.00 for 7 points, returned one point at a time: the seven returns subtract exactly
    # 200.00 (shares of the money in cents: 28.57, 28.57, 28.57, 28.58...), so the 1,000.00
    # spent afterwards reaches silver. Each return as spend x 1/7 at 28 digits left 999.99...
    from csmcore.loyalty import LedgerState

    p = TierPolicy(tiers=[Tier(name="silver", threshold=1000)], basis="spend")
    state = LedgerState("ann")
    order = state.plan_earn(7, at=utc(2026, 1, 1), key="o1", spend=Decimal("200.00"))
    state.apply(order)
    for n in range(7):
        state.apply(state.plan_reverse(order.entry_id, at=utc(2026, 1, 2), key=f"r{n}", points=1))
    state.apply(state.plan_earn(1000, at=utc(2026, 1, 3), key="o2", spend=Decimal("1000.00")))
    status = tier_status(p, state.entries, utc(2026, 1, 4))
    assert (status.tier, status.qualifying) == ("silver", Decimal("1000.00"))
    # halfway: 4 of 7 points returned, 114.29 of the 200.00 (4/7 of it, to the cent)
    halfway = tier_status(p, state.entries[:5], utc(2026, 1, 2))
    assert halfway.qualifying == Decimal("85.71")


def test_non_qualifying_reasons_are_spendable_but_do_not_lift_a_tier() -> None:
    # 800 points bought on 1 March 2026, 300 goodwill points for a breach on 2 March (reason
    # "sla_breach"), then the goodwill is reversed on 3 March and 200 more are bought on 4 March
    from csmcore.services import Ledger
    from csmcore.storage import open_store

    led = Ledger(open_store("memory://"))
    led.earn("ann", 800, at=utc(2026, 3, 1), key="order-1")
    goodwill = led.earn("ann", 300, at=utc(2026, 3, 2), key="breach-1", reason="sla_breach")
    counting, excluding = policy(), policy(non_qualifying={"sla_breach"})
    entries = led.entries("ann")
    # every earn counts by default: 1,100 on 2 March is silver
    assert tier_status(counting, entries, utc(2026, 3, 2)).tier == "silver"
    # not the goodwill: 800, no tier, although the 300 points are spendable
    status = tier_status(excluding, entries, utc(2026, 3, 2))
    assert (status.tier, status.qualifying, status.needed) == (None, Decimal(800), Decimal(200))
    assert led.balance("ann", utc(2026, 3, 2)).active == 1100
    # the goodwill's return takes nothing off what qualifies (it never counted): 800 + 200
    # bought on 4 March reach silver then; counting the return would leave 700
    led.reverse(goodwill.entry_id, at=utc(2026, 3, 3), key="undo-1")
    led.earn("ann", 200, at=utc(2026, 3, 4), key="order-2")
    status = tier_status(excluding, led.entries("ann"), utc(2026, 3, 4))
    assert (status.tier, status.since, status.qualifying) == (
        "silver",
        utc(2026, 3, 4),
        Decimal(1000),
    )


def test_non_qualifying_must_be_reasons() -> None:
    import pytest

    from csmcore.errors import InvalidType

    with pytest.raises(InvalidType, match="non_qualifying='sla_breach' is a str"):
        policy(non_qualifying="sla_breach")
    with pytest.raises(InvalidType, match="non_qualifying=''"):
        policy(non_qualifying={""})


def test_a_tier_policy_stored_before_non_qualifying_reads_with_every_earn_counting() -> None:
    from csmcore.serialization import from_data, to_data

    data = to_data(policy(non_qualifying={"sla_breach", "goodwill"}))
    assert data["non_qualifying"] == ["goodwill", "sla_breach"]
    assert from_data(data, TierPolicy) == policy(non_qualifying={"goodwill", "sla_breach"})
    del data["non_qualifying"]  # as written before the field existed
    assert from_data(data, TierPolicy).non_qualifying == frozenset()
