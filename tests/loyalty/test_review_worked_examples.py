"""Worked examples from a second review of the loyalty side against docs/loyalty.md,
docs/loyalty-program.md, the tier review how-to, DESIGN.md ("Semantics decided ... Loyalty")
and what established loyalty products document (end-of-period expiry with a minimum age,
one-tier-down versus re-evaluation after a grace period, returns after redemptions, refunds
into expired lots, transfers keeping expiry, per-rule rounding of stacked multipliers, an
explicit early activation inside a returns window).

Each expected number and instant was worked out by hand, in the comment above it, from the
documentation, before the test was first run. They complement test_review_scenarios.py
(which pins other boundaries) and do not repeat it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

from csmcore.errors import InsufficientPoints, InvalidTransition, ValidationError
from csmcore.loyalty import (
    Cap,
    Downgrade,
    EndOfPeriodExpiry,
    EventRule,
    Multiplier,
    PendingPolicy,
    Period,
    Program,
    Purchase,
    PurchaseLine,
    QualifyWhen,
    RollingExpiry,
    Rounding,
    SpendRule,
    Tier,
    TierBasis,
    TierPolicy,
)
from csmcore.services import (
    Ledger,
    activate_points,
    earn_points,
    return_points,
    tier_of,
)
from csmcore.storage import open_store

D = Decimal
US = timedelta(microseconds=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=timezone.utc)


LedgerFactory = Callable[..., Ledger]


@pytest.fixture(params=["memory://", "sqlite:///:memory:"])
def new_ledger(request: pytest.FixtureRequest) -> LedgerFactory:
    """Ledgers on the memory store (its one-step posting) and on SQLite (the general
    plan-then-write path): every scenario must read the same on both."""

    def make(**options: Any) -> Ledger:
        return Ledger(open_store(request.param), **options)

    return make


def one_point_per_unit(**options: Any) -> Program:
    """1 point per 1.00 spent, rounded down, plus whatever ``options`` add."""
    return Program(
        name="shop",
        rules=[SpendRule(name="base", points=D(1), per=D(1), rounding=Rounding.DOWN)],
        **options,
    )


def buy(
    ledger: Ledger, program: Program, member: str, amount: str, when: datetime, key: str
) -> Any:
    return earn_points(ledger, program, member, Purchase.of(D(amount)), at=when, key=key)


# -- 1. end of quarter, 30-day minimum age ----------------------------------------------------


def test_points_earned_a_day_before_quarter_end_with_a_30_day_minimum_age(
    new_ledger: LedgerFactory,
) -> None:
    # Quarter-end expiry, minimum age 30 days, UTC.
    # - Earned 2026-03-31 10:00 (the last day of Q1): 30 days old on 2026-04-30 10:00, in Q2:
    #   they expire at the end of Q2, 2026-07-01 00:00 (91 days later, not the next midnight).
    # - Without a minimum age they would expire at the end of Q1: 2026-04-01 00:00, 14 hours
    #   after they were earned (the cliff the minimum age exists to avoid).
    # - The minimum age is a floor: earned 2026-06-01 00:00, 30 days old at 2026-07-01 00:00,
    #   the first instant of Q3 (period starts belong to their period): expire 2026-10-01.
    #   One microsecond earlier (2026-05-31 23:59:59.999999): 30 days old on 2026-06-30
    #   23:59:59.999999, still Q2: expire 2026-07-01 00:00, i.e. 30 days + 1 us later; never
    #   less than the minimum age.
    rule = EndOfPeriodExpiry(period=Period.QUARTER, min_age=relativedelta(days=30))
    assert rule.expires_at(utc(2026, 3, 31, 10)) == utc(2026, 7, 1)
    assert EndOfPeriodExpiry(period=Period.QUARTER).expires_at(utc(2026, 3, 31, 10)) == utc(
        2026, 4, 1
    )
    assert rule.expires_at(utc(2026, 6, 1)) == utc(2026, 10, 1)
    assert rule.expires_at(utc(2026, 6, 1) - US) == utc(2026, 7, 1)

    # In Tokyo (JST, UTC+9, no DST): earned 2026-03-01 16:00 UTC = 2 March 01:00 JST; 30 days
    # later is 1 April 01:00 JST, in Q2: expire 1 July 00:00 JST = 2026-06-30 15:00 UTC. Read
    # in UTC the same instant is 30 days old on 31 March 16:00 UTC, in Q1: 1 April 00:00 UTC.
    tokyo = EndOfPeriodExpiry(
        period=Period.QUARTER, min_age=relativedelta(days=30), timezone="Asia/Tokyo"
    )
    assert tokyo.expires_at(utc(2026, 3, 1, 16)) == utc(2026, 6, 30, 15)
    assert rule.expires_at(utc(2026, 3, 1, 16)) == utc(2026, 4, 1)

    # With a 14-day returns window the minimum age counts from when the points become
    # available: 100.00 bought 2026-03-01 12:00 is pending until 2026-03-15 12:00; 30 days
    # after that is 2026-04-14 12:00, in Q2: expire 2026-07-01. (Counted from the purchase it
    # would be 2026-03-31 12:00, Q1: 2026-04-01.) On the ledger: pending 100 at 03-15
    # 11:59:59.999999, active 100 from 12:00, still active at 06-30 23:59:59.999999, expired
    # 100 from 07-01 00:00, and expire() then records -100 once.
    program = one_point_per_unit(
        pending=PendingPolicy(after=relativedelta(days=14)),
        expiry=EndOfPeriodExpiry(period=Period.QUARTER, min_age=relativedelta(days=30)),
    )
    ledger = new_ledger()
    earned = buy(ledger, program, "ann", "100.00", utc(2026, 3, 1, 12), "o-1")
    assert (earned.pending_until, earned.expires_at) == (utc(2026, 3, 15, 12), utc(2026, 7, 1))
    assert ledger.balance("ann", utc(2026, 3, 15, 12) - US).pending == 100
    assert ledger.balance("ann", utc(2026, 3, 15, 12)).active == 100
    assert ledger.balance("ann", utc(2026, 7, 1) - US).active == 100
    gone = ledger.balance("ann", utc(2026, 7, 1))
    assert (gone.active, gone.expired) == (0, 100)
    assert [e.points for e in ledger.expire("ann", at=utc(2026, 7, 1))] == [-100]
    assert ledger.expire("ann", at=utc(2026, 7, 2)) == []


# -- 2. leap day, yearly rolling expiry, read in a time zone ---------------------------------


def test_a_yearly_rolling_expiry_of_a_leap_day_read_in_berlin() -> None:
    # Rolling 12 months, Europe/Berlin (CET, UTC+1 in February and March).
    # - 2028-02-28 23:30 UTC is 29 February 00:30 in Berlin, the local leap day: a year later
    #   is clipped to 2029-02-28 00:30 CET = 2029-02-27 23:30 UTC. In UTC the same instant
    #   (28 February) gives 2029-02-28 23:30 UTC: 24 hours later.
    # - 2028-02-29 23:30 UTC is 1 March 00:30 in Berlin: 2029-03-01 00:30 CET =
    #   2029-02-28 23:30 UTC. In UTC (29 February) it is clipped to 2029-02-28 23:30 UTC too.
    # - relativedelta(months=12) is relativedelta(years=1): the same instants.
    # - relativedelta(days=365) is not a year: from 2028-01-15 10:00 UTC (before the leap day)
    #   it is 2029-01-14 10:00 UTC.
    berlin = RollingExpiry(after=relativedelta(years=1), timezone="Europe/Berlin")
    in_utc = RollingExpiry(after=relativedelta(years=1))
    assert berlin.expires_at(utc(2028, 2, 28, 23, 30)) == utc(2029, 2, 27, 23, 30)
    assert in_utc.expires_at(utc(2028, 2, 28, 23, 30)) == utc(2029, 2, 28, 23, 30)
    assert berlin.expires_at(utc(2028, 2, 29, 23, 30)) == utc(2029, 2, 28, 23, 30)
    assert in_utc.expires_at(utc(2028, 2, 29, 23, 30)) == utc(2029, 2, 28, 23, 30)
    months = RollingExpiry(after=relativedelta(months=12), timezone="Europe/Berlin")
    assert months.expires_at(utc(2028, 2, 28, 23, 30)) == utc(2029, 2, 27, 23, 30)
    days = RollingExpiry(after=relativedelta(days=365))
    assert days.expires_at(utc(2028, 1, 15, 10)) == utc(2029, 1, 14, 10)


# -- 3. a monthly and a quarterly cap east of UTC ---------------------------------------------


def test_caps_turn_over_at_local_midnight_east_of_utc(new_ledger: LedgerFactory) -> None:
    # Cap 500 points a month in Tokyo (JST, UTC+9): the month starts 9 hours before UTC's.
    # - 2026-01-31 14:00 UTC = 31 Jan 23:00 JST: 400.00 -> 400 (January).
    # - 2026-01-31 15:00 UTC = 1 Feb 00:00 JST: 300.00 -> 300 in full (February). Read in UTC
    #   it would still be January, 100 left.
    # - 2026-02-28 14:59:59.999999 UTC = 28 Feb 23:59:59.999999 JST: 300.00, February room
    #   500 - 300 = 200 -> 200 (capped).
    # - 2026-02-28 15:00 UTC = 1 Mar 00:00 JST: 300 in full.
    tokyo = one_point_per_unit(
        caps=[Cap(name="monthly", points=500, period=Period.MONTH, timezone="Asia/Tokyo")]
    )
    ledger = new_ledger()
    got = [
        buy(ledger, tokyo, "ann", amount, when, f"o{n}").points
        for n, (amount, when) in enumerate(
            [
                ("400.00", utc(2026, 1, 31, 14)),
                ("300.00", utc(2026, 1, 31, 15)),
                ("300.00", utc(2026, 2, 28, 15) - US),
                ("300.00", utc(2026, 2, 28, 15)),
            ]
        )
    ]
    assert got == [400, 300, 200, 300]

    # Cap 1000 a quarter in Berlin: Q2 2026 starts 1 April 00:00 CEST = 31 March 22:00 UTC
    # (summer time since 29 March). 900.00 at 21:59 UTC (23:59 CEST, Q1): 900; 200.00 at
    # 22:00 UTC (Q2): 200 in full (UTC would say Q1, 100 left).
    berlin = one_point_per_unit(
        caps=[Cap(name="quarterly", points=1000, period=Period.QUARTER, timezone="Europe/Berlin")]
    )
    assert buy(ledger, berlin, "bob", "900.00", utc(2026, 3, 31, 21, 59), "o1").points == 900
    assert buy(ledger, berlin, "bob", "200.00", utc(2026, 3, 31, 22), "o2").points == 200


# -- 4. a rolling 12-month window at its boundary, across a clock change -------------------


def test_a_rolling_window_boundary_follows_the_policys_wall_clock(
    new_ledger: LedgerFactory,
) -> None:
    # Silver at 1000 points over a rolling 12 months (start excluded, end included).
    # Ann earns 600 at 2026-03-28 12:00 UTC (13:00 CET, winter).
    # - UTC policy: the window at T is (T - 12 months, T]; at 2027-03-28 12:00 UTC its start
    #   is 2026-03-28 12:00, excluded: the 600 count up to 11:59:59.999999 and not at 12:00.
    # - Berlin policy: Berlin is on summer time from 2027-03-28 01:00 UTC, so 2027-03-28
    #   11:00 UTC is 13:00 CEST, and 12 months earlier on the wall clock is 2026-03-28 13:00
    #   CET = 12:00 UTC, excluded: the 600 stop counting at 11:00 UTC, an hour earlier.
    # A second earn of 400 at 2027-03-28 10:30 UTC: 600 + 400 = 1000 >= 1000 under both
    # policies: silver since 10:30 (thresholds are met with >=). The same 400 at 11:00 UTC
    # under the Berlin policy meets only 400: no tier.
    tiers = [Tier(name="silver", threshold=1000)]
    in_utc = TierPolicy(tiers=tiers, rolling=relativedelta(months=12))
    berlin = TierPolicy(tiers=tiers, rolling=relativedelta(months=12), timezone="Europe/Berlin")
    ledger = new_ledger()
    for member in ("ann", "bob"):
        ledger.earn(member, 600, at=utc(2026, 3, 28, 12), key="o-1")
    assert tier_of(ledger, in_utc, "ann", utc(2027, 3, 28, 12) - US).qualifying == 600
    assert tier_of(ledger, in_utc, "ann", utc(2027, 3, 28, 12)).qualifying == 0
    assert tier_of(ledger, berlin, "ann", utc(2027, 3, 28, 11) - US).qualifying == 600
    assert tier_of(ledger, berlin, "ann", utc(2027, 3, 28, 11)).qualifying == 0

    ledger.earn("ann", 400, at=utc(2027, 3, 28, 10, 30), key="o-2")
    for policy in (in_utc, berlin):
        status = tier_of(ledger, policy, "ann", utc(2027, 3, 28, 10, 30))
        assert (status.tier, status.since, status.qualifying) == (
            "silver",
            utc(2027, 3, 28, 10, 30),
            D(1000),
        )
    ledger.earn("bob", 400, at=utc(2027, 3, 28, 11), key="o-2")
    late = tier_of(ledger, berlin, "bob", utc(2027, 3, 28, 11))
    assert (late.tier, late.qualifying) == (None, D(400))
    assert tier_of(ledger, in_utc, "bob", utc(2027, 3, 28, 11)).tier == "silver"


# -- 5. one tier down versus re-evaluation, after a grace period -----------------------------

THREE_TIERS = [
    Tier(name="silver", threshold=1000),
    Tier(name="gold", threshold=2500),
    Tier(name="platinum", threshold=5000),
]


@pytest.mark.parametrize(
    ("downgrade", "ann_after", "cy_after"),
    [
        # Ann earned 1200 in 2027: one tier down from platinum is gold; re-evaluated, 1200
        # meets silver. Cy earned nothing in 2027: gold, or no tier at all.
        (Downgrade.ONE_TIER, "gold", "gold"),
        (Downgrade.REEVALUATE, "silver", None),
    ],
)
def test_one_tier_down_or_reevaluate_after_the_grace_and_requalifying_inside_it(
    downgrade: Downgrade, ann_after: str, cy_after: str | None, new_ledger: LedgerFactory
) -> None:
    # Yearly in UTC, silver 1000, gold 2500, platinum 5000, grace 2 months. Everyone earns
    # 6000 on 2026-04-01: platinum, valid through 2027 (valid_until 2028-01-01), reviewed at
    # 2028-01-01 + 2 months = 2028-03-01 00:00. At 2028-03-01 - 1 us all are platinum.
    # - Ann: 1200 in 2027 (2027-06-01) -> ann_after at 2028-03-01, since then, valid until
    #   the end of the review year containing the review (2029-01-01), reviewed 2029-03-01.
    # - Bob: nothing in 2027, 2600 on 2028-02-15 (inside the grace): the year running at the
    #   review (2028, from 1 January) meets gold, so he requalifies for gold under both
    #   policies (never below what the running window meets), valid through 2029
    #   (valid_until 2030-01-01, review 2030-03-01). Not platinum: 2600 < 5000.
    # - Cy: nothing since 2026 -> cy_after.
    policy = TierPolicy(tiers=THREE_TIERS, downgrade=downgrade, grace=relativedelta(months=2))
    ledger = new_ledger()
    for member in ("ann", "bob", "cy"):
        ledger.earn(member, 6000, at=utc(2026, 4, 1), key="o-1")
    ledger.earn("ann", 1200, at=utc(2027, 6, 1), key="o-2")
    ledger.earn("bob", 2600, at=utc(2028, 2, 15), key="o-2")
    review = utc(2028, 3, 1)
    for member in ("ann", "bob", "cy"):
        before = tier_of(ledger, policy, member, review - US)
        assert (before.tier, before.valid_until, before.review_at) == (
            "platinum",
            utc(2028, 1, 1),
            review,
        )
    ann = tier_of(ledger, policy, "ann", review)
    assert (ann.tier, ann.since, ann.valid_until, ann.review_at) == (
        ann_after,
        review,
        utc(2029, 1, 1),
        utc(2029, 3, 1),
    )
    bob = tier_of(ledger, policy, "bob", review)
    assert (bob.tier, bob.since, bob.valid_until, bob.review_at) == (
        "gold",
        review,
        utc(2030, 1, 1),
        utc(2030, 3, 1),
    )
    assert tier_of(ledger, policy, "cy", review).tier == cy_after
    # A year on, with nothing earned in 2028: Ann goes one tier further down (gold -> silver)
    # or is re-evaluated on 2028's 0 points (silver -> no tier).
    later = tier_of(ledger, policy, "ann", utc(2029, 3, 1)).tier
    assert later == ("silver" if downgrade is Downgrade.ONE_TIER else None)


# -- 6. a partial return after a partial redemption, under each returns policy -------------


def test_partial_returns_after_a_partial_redemption_within_balance(
    new_ledger: LedgerFactory,
) -> None:
    # A: 100 (1 March, expiring 1 Sept); B: 100 (2 March, expiring 1 Dec). Redeem 70 on
    # 3 March: soonest expiry first, all from A (A 30 left). Return 60 of A's purchase on
    # 4 March: A's 30, then 30 from B: B 70. Balance: active 70, spent 70, lifetime
    # 200 - 60 = 140; points-tier qualifying 140. Return the other 40 on 5 March: B gives 40,
    # 30 left: active 30, lifetime 100. A third return of 1 point is refused (A's purchase
    # earned 100, all returned) and nothing is written.
    ledger = new_ledger()
    ledger.earn("ann", 100, at=utc(2026, 3, 1), key="a", expires_at=utc(2026, 9, 1))
    ledger.earn("ann", 100, at=utc(2026, 3, 2), key="b", expires_at=utc(2026, 12, 1))
    spend = ledger.redeem("ann", 70, at=utc(2026, 3, 3), key="basket")
    assert [(d.lot_id, d.points) for d in spend.draws] == [("ann#1", 70)]
    back = ledger.reverse("ann#1", at=utc(2026, 3, 4), key="r-1", points=60)
    assert [(d.lot_id, d.points) for d in back.draws] == [("ann#1", 30), ("ann#2", 30)]
    balance = ledger.balance("ann", utc(2026, 3, 4))
    assert (balance.active, balance.spent, balance.negative, balance.lifetime) == (70, 70, 0, 140)
    points_tier = TierPolicy(tiers=[Tier(name="silver", threshold=1000)])
    assert tier_of(ledger, points_tier, "ann", utc(2026, 3, 4)).qualifying == 140
    rest = ledger.reverse("ann#1", at=utc(2026, 3, 5), key="r-2")
    assert (rest.points, [(d.lot_id, d.points) for d in rest.draws]) == (-40, [("ann#2", 40)])
    balance = ledger.balance("ann", utc(2026, 3, 5))
    assert (balance.active, balance.lifetime) == (30, 100)
    with pytest.raises(ValidationError):
        ledger.reverse("ann#1", at=utc(2026, 3, 6), key="r-3", points=1)
    assert len(ledger.entries("ann")) == 5
    assert ledger.verify("ann").ok


def test_a_partial_return_the_member_cannot_cover_within_balance_or_unlimited(
    new_ledger: LedgerFactory,
) -> None:
    # A: 100 (1 March, expiring 1 Sept); B: 100 (2 March, expiring 1 Dec). Redeem 170 on
    # 3 March: A 100, B 70 (B 30 left). Return 60 of A's purchase on 4 March:
    # - within_balance: A holds nothing, the member only 30: InsufficientPoints, nothing
    #   written;
    # - unlimited: B's 30, and 30 owed: active 0, negative 30, spent 170, lifetime 140.
    #   Refunding 50 of the redemption on 5 March gives them back to B (latest drawn first,
    #   B gave 70), and the refund pays the debt first: active 50 - 30 = 20, negative 0,
    #   spent 120.
    for policy in ("within_balance", "unlimited"):
        ledger = new_ledger(returns=policy)
        ledger.earn("ann", 100, at=utc(2026, 3, 1), key="a", expires_at=utc(2026, 9, 1))
        ledger.earn("ann", 100, at=utc(2026, 3, 2), key="b", expires_at=utc(2026, 12, 1))
        spend = ledger.redeem("ann", 170, at=utc(2026, 3, 3), key="basket")
        assert [(d.lot_id, d.points) for d in spend.draws] == [("ann#1", 100), ("ann#2", 70)]
        if policy == "within_balance":
            with pytest.raises(InsufficientPoints):
                ledger.reverse("ann#1", at=utc(2026, 3, 4), key="r-1", points=60)
            assert len(ledger.entries("ann")) == 3
            continue
        back = ledger.reverse("ann#1", at=utc(2026, 3, 4), key="r-1", points=60)
        assert back.points == -60
        balance = ledger.balance("ann", utc(2026, 3, 4))
        assert (balance.active, balance.negative, balance.spent, balance.lifetime) == (
            0,
            30,
            170,
            140,
        )
        ledger.refund(spend.entry_id, at=utc(2026, 3, 5), key="refund", points=50)
        balance = ledger.balance("ann", utc(2026, 3, 5))
        assert (balance.active, balance.negative, balance.spent, balance.lifetime) == (
            20,
            0,
            120,
            140,
        )
        assert ledger.verify("ann").ok


def test_partial_returns_under_only_pending_take_the_pending_points_only(
    new_ledger: LedgerFactory,
) -> None:
    # A: 100 earned 1 March 00:00, pending until 31 March 00:00 (a 30-day window); B: 100
    # earned 2 March, active. Redeem 70 on 3 March: A is pending, so all from B (B 30 left).
    # Return 60 of A's purchase on 4 March: from A's pending points: pending 40, active 30,
    # spent 70, lifetime 140. A return of 50 more is refused (40 left to return, nothing
    # written). The last 40 one microsecond before 31 March: fine. Bob, the same history,
    # returns his 40 at 31 March 00:00: the window is over, InvalidTransition.
    ledger = new_ledger(returns="only_pending")
    for member in ("ann", "bob"):
        ledger.earn(member, 100, at=utc(2026, 3, 1), key="a", pending_until=utc(2026, 3, 31))
        ledger.earn(member, 100, at=utc(2026, 3, 2), key="b")
        spend = ledger.redeem(member, 70, at=utc(2026, 3, 3), key="basket")
        assert [(d.lot_id, d.points) for d in spend.draws] == [(f"{member}#2", 70)]
        back = ledger.reverse(f"{member}#1", at=utc(2026, 3, 4), key="r-1", points=60)
        assert [(d.lot_id, d.points) for d in back.draws] == [(f"{member}#1", 60)]
    balance = ledger.balance("ann", utc(2026, 3, 4))
    assert (balance.active, balance.pending, balance.spent, balance.lifetime) == (30, 40, 70, 140)
    with pytest.raises(ValidationError):
        ledger.reverse("ann#1", at=utc(2026, 3, 5), key="r-2", points=50)
    assert ledger.reverse("ann#1", at=utc(2026, 3, 31) - US, key="r-3").points == -40
    with pytest.raises(InvalidTransition):
        ledger.reverse("bob#1", at=utc(2026, 3, 31), key="r-2")
    assert len(ledger.entries("bob")) == 4
    assert ledger.balance("bob", utc(2026, 3, 31)).active == 70


# -- 7. a refund into a lot whose expiry was already recorded ---------------------------------


def test_a_refund_into_a_partly_expired_lot_expires_again_under_the_next_key(
    new_ledger: LedgerFactory,
) -> None:
    # A: 100 (5 Jan, expiring 1 Feb); B: 100 (6 Jan, expiring 1 July). Redeem 60 on 10 Jan:
    # A 60 (soonest expiry). expire() on 1 Feb records A's 40 unused: key "expire:ann#1:0".
    # Refund all 60 on 5 Feb: back to A with its expiry (1 Feb): expired at once, never
    # usable. Balance on 5 Feb: active 100 (B), expired 40 + 60 = 100, spent 0, lifetime 200.
    # A redemption of 101 is refused. expire() on 5 Feb records A's 60 under
    # "expire:ann#1:40" (40 recorded before); again: nothing.
    ledger = new_ledger()
    ledger.earn("ann", 100, at=utc(2026, 1, 5), key="a", expires_at=utc(2026, 2, 1))
    ledger.earn("ann", 100, at=utc(2026, 1, 6), key="b", expires_at=utc(2026, 7, 1))
    spend = ledger.redeem("ann", 60, at=utc(2026, 1, 10), key="basket")
    assert [(d.lot_id, d.points) for d in spend.draws] == [("ann#1", 60)]
    first = ledger.expire("ann", at=utc(2026, 2, 1))
    assert [(e.lot_id, e.points, e.key) for e in first] == [("ann#1", -40, "expire:ann#1:0")]
    back = ledger.refund(spend.entry_id, at=utc(2026, 2, 5), key="refund")
    assert [(d.lot_id, d.points, d.expires_at) for d in back.draws] == [
        ("ann#1", 60, utc(2026, 2, 1))
    ]
    balance = ledger.balance("ann", utc(2026, 2, 5))
    assert (balance.active, balance.expired, balance.spent, balance.lifetime) == (100, 100, 0, 200)
    with pytest.raises(InsufficientPoints):
        ledger.redeem("ann", 101, at=utc(2026, 2, 5), key="too-much")
    second = ledger.expire("ann", at=utc(2026, 2, 5))
    assert [(e.lot_id, e.points, e.key) for e in second] == [("ann#1", -60, "expire:ann#1:40")]
    assert ledger.expire("ann", at=utc(2026, 2, 6)) == []
    assert ledger.balance("ann", utc(2026, 2, 6)).expired == 100
    assert ledger.verify("ann").ok


# -- 8. a transfer keeps each lot's expiry, and the moved lots expire on the receiver's side --


def test_transferred_lots_expire_on_the_receivers_side_at_the_senders_dates(
    new_ledger: LedgerFactory,
) -> None:
    # Ann: A 100 (1 Jan, expiring 1 May), B 100 (2 Jan, expiring 1 Aug). Bob: C 30 (15 Jan,
    # expiring 1 June). Ann gives Bob 150 on 1 Feb: soonest expiry first, A 100 and B 50; Bob
    # gets 100 expiring 1 May and 50 expiring 1 Aug.
    # - 1 May: Bob's 100 expire: active 80 (C 30 + 50), expired 100; expire() records -100.
    #   Ann's A is empty: nothing to record for her.
    # - Bob redeems 60 on 2 May: C (1 June) 30, then the 1 Aug lot 30 (20 left).
    # - 1 Aug: Bob's 20 and Ann's 50 (B) expire: Bob expired 120, Ann expired 50, both 0
    #   active. Transfers are not earnings: Bob's points tier counts his own 30 only.
    ledger = new_ledger()
    ledger.earn("ann", 100, at=utc(2026, 1, 1), key="a", expires_at=utc(2026, 5, 1))
    ledger.earn("ann", 100, at=utc(2026, 1, 2), key="b", expires_at=utc(2026, 8, 1))
    ledger.earn("bob", 30, at=utc(2026, 1, 15), key="c", expires_at=utc(2026, 6, 1))
    out, _into = ledger.transfer("ann", "bob", 150, at=utc(2026, 2, 1), key="gift")
    assert [(d.lot_id, d.points) for d in out.draws] == [("ann#1", 100), ("ann#2", 50)]
    assert sorted(
        (lot.remaining, lot.expires_at) for lot in ledger.lots("bob", utc(2026, 2, 1))
    ) == [(30, utc(2026, 6, 1)), (50, utc(2026, 8, 1)), (100, utc(2026, 5, 1))]
    may = ledger.balance("bob", utc(2026, 5, 1))
    assert (may.active, may.expired) == (80, 100)
    assert [e.points for e in ledger.expire("bob", at=utc(2026, 5, 1))] == [-100]
    assert ledger.expire("ann", at=utc(2026, 5, 1)) == []
    spend = ledger.redeem("bob", 60, at=utc(2026, 5, 2), key="basket")
    assert [(d.points, d.expires_at) for d in spend.draws] == [
        (30, utc(2026, 6, 1)),
        (30, utc(2026, 8, 1)),
    ]
    assert [e.points for e in ledger.expire("bob", at=utc(2026, 8, 1))] == [-20]
    assert [e.points for e in ledger.expire("ann", at=utc(2026, 8, 1))] == [-50]
    bob, ann = ledger.balance("bob", utc(2026, 8, 1)), ledger.balance("ann", utc(2026, 8, 1))
    assert (bob.active, bob.expired, ann.active, ann.expired) == (0, 120, 0, 50)
    points_tier = TierPolicy(tiers=[Tier(name="silver", threshold=1000)])
    assert tier_of(ledger, points_tier, "bob", utc(2026, 8, 1)).qualifying == 30
    assert ledger.verify("ann").ok
    assert ledger.verify("bob").ok


# -- 9. stacked multipliers are rounded once per rule, not per line or per purchase ----------


def test_rounding_is_once_per_rule_over_lines_and_separate_between_rules() -> None:
    # 1 point per 1.00; books x2.
    # - DOWN, books 0.70 + food 0.70: 0.70 x 2 + 0.70 = 2.10 -> 2 (rounding each line down
    #   would give 1 + 0 = 1).
    # - books 0.75 + food 1.00: 1.50 + 1.00 = 2.50 -> HALF_UP 3, HALF_EVEN 2 (banker's: to the
    #   even neighbour; per line HALF_EVEN would give 2 + 1 = 3).
    # - Two rules, both DOWN: base (1 per 1.00, every line) and a books bonus (1 per 2.00 on
    #   books); books 1.50 + food 1.50: base 1.50 x 2 + 1.50 = 4.5 -> 4; bonus 1.50 x 2 / 2
    #   = 1.5 -> 1; 5 in all (one rounding of the sum 6.0 would give 6).
    # - An event rule is multiplied only when a multiplier names it: a 5-point purchase bonus
    #   with gold x1.3 on every spend rule stays 5; with "bonus x1.3" naming it, 6.5 ->
    #   HALF_UP 7, HALF_EVEN 6.
    books = Multiplier(name="books x2", factor=D(2), categories={"books"})
    when = utc(2026, 6, 1)

    def quote(rules: list[Any], lines: list[tuple[str, str]], **options: Any) -> int:
        program = Program(name="shop", rules=rules, **options)
        basket = Purchase(lines=tuple(PurchaseLine(amount=D(a), category=c) for a, c in lines))
        return program.quote(basket, at=when).points

    def base(rounding: Rounding) -> SpendRule:
        return SpendRule(name="base", points=D(1), per=D(1), rounding=rounding)

    tenths = [("0.70", "books"), ("0.70", "food")]
    assert quote([base(Rounding.DOWN)], tenths, multipliers=[books]) == 2
    halves = [("0.75", "books"), ("1.00", "food")]
    assert quote([base(Rounding.HALF_UP)], halves, multipliers=[books]) == 3
    assert quote([base(Rounding.HALF_EVEN)], halves, multipliers=[books]) == 2
    bonus = SpendRule(name="books bonus", points=D(1), per=D(2), categories={"books"})
    assert (
        quote(
            [base(Rounding.DOWN), bonus],
            [("1.50", "books"), ("1.50", "food")],
            multipliers=[books],
        )
        == 5
    )

    tiers = TierPolicy(tiers=[Tier(name="gold", threshold=1000)])
    for rounding, named in ((Rounding.HALF_UP, 7), (Rounding.HALF_EVEN, 6)):
        rules: list[Any] = [
            base(Rounding.DOWN),
            EventRule(name="bonus", event="purchase", points=5, rounding=rounding),
        ]
        unnamed = Program(
            name="shop",
            rules=rules,
            multipliers=[Multiplier(name="gold", factor=D("1.3"), tiers={"gold"})],
            tiers=tiers,
        )
        naming = Program(
            name="shop",
            rules=rules,
            multipliers=[
                Multiplier(name="bonus x1.3", factor=D("1.3"), tiers={"gold"}, rules={"bonus"})
            ],
            tiers=tiers,
        )
        # a 0.50 purchase earns nothing from the base rule (0.50 or 0.65 -> 0, down)
        basket = Purchase.of(D("0.50"))
        assert unnamed.quote(basket, at=when, tier="gold").points == 5
        assert naming.quote(basket, at=when, tier="gold").points == named


# -- 10. an explicit early activation inside the returns window ------------------------------


def test_an_early_activation_ends_the_returns_window_and_restarts_the_expiry(
    new_ledger: LedgerFactory,
) -> None:
    # 30-day window, expiry 6 months after the points become available. 100.00 bought
    # 2026-03-01 12:00: pending until 2026-03-31 12:00, expiring 2026-09-30 12:00.
    # activate_points on 2026-03-10 12:00 (delivered, window waived): the lot is active from
    # then on and its expiry is counted from the activation: 2026-09-10 12:00.
    # - only_pending: a return on 15 March, inside the original window, finds the lot active
    #   (pending only while at < pending_until *unless* an activate entry made it active):
    #   InvalidTransition, nothing written.
    # - within_balance: 40 returned on 15 March come from the lot: 60 left, which expire at
    #   2026-09-10 12:00 (active 60 one microsecond before, expired 60 at it).
    # - Tiers counted when active (silver 100, yearly): the earn counts at the activation
    #   (10 March), not at 31 March; the return after the activation counts -40 on its own
    #   date: qualifying 100 at 10 March (silver since 10 March), 60 at 15 March, silver kept.
    def program(returns: str) -> Program:
        return one_point_per_unit(
            pending=PendingPolicy(after=relativedelta(days=30)),
            expiry=RollingExpiry(after=relativedelta(months=6)),
            returns=returns,
            tiers=TierPolicy(
                tiers=[Tier(name="silver", threshold=100)], qualify_when=QualifyWhen.ACTIVE
            ),
        )

    for returns in ("only_pending", "within_balance"):
        shop, ledger = program(returns), new_ledger()
        earned = buy(ledger, shop, "ann", "100.00", utc(2026, 3, 1, 12), "o-1")
        assert (earned.pending_until, earned.expires_at) == (
            utc(2026, 3, 31, 12),
            utc(2026, 9, 30, 12),
        )
        activated = activate_points(
            ledger, shop, "ann", earned.lot_id, at=utc(2026, 3, 10, 12), key="delivered"
        )
        assert activated.expires_at == utc(2026, 9, 10, 12)
        assert ledger.balance("ann", utc(2026, 3, 10, 12)).active == 100
        at_activation = tier_of(ledger, shop, "ann", utc(2026, 3, 10, 12))
        assert (at_activation.tier, at_activation.since) == ("silver", utc(2026, 3, 10, 12))
        if returns == "only_pending":
            with pytest.raises(InvalidTransition):
                return_points(
                    ledger, shop, earned.entry_id, at=utc(2026, 3, 15), key="r-1", points=40
                )
            assert len(ledger.entries("ann")) == 2
            continue
        back = return_points(
            ledger, shop, earned.entry_id, at=utc(2026, 3, 15), key="r-1", points=40
        )
        assert [(d.lot_id, d.points) for d in back.draws] == [(earned.lot_id, 40)]
        status = tier_of(ledger, shop, "ann", utc(2026, 3, 15))
        assert (status.tier, status.qualifying) == ("silver", D(60))
        assert ledger.balance("ann", utc(2026, 9, 10, 12) - US).active == 60
        gone = ledger.balance("ann", utc(2026, 9, 10, 12))
        assert (gone.active, gone.expired) == (0, 60)


# -- 11. the money a partial return takes off a spend tier -----------------------------------


def test_partial_returns_take_their_share_of_the_spend_to_the_cent_and_add_up(
    new_ledger: LedgerFactory,
) -> None:
    # Spend tier (silver at 50.00). 10.00 bought on 1 March at 3 points per 1.00: 30 points,
    # spend 10.00. Returns of 7, 7 and 16 points: the share returned so far, to the cent (half
    # to even), minus the share returned before:
    # - 7/30 of 10.00 = 2.333... -> 2.33: qualifying 7.67;
    # - 14/30 = 4.666... -> 4.67, minus 2.33 = 2.34: qualifying 5.33;
    # - 30/30: all of 10.00, minus 4.67 = 5.33: qualifying 0.00 exactly (2.33 + 2.34 + 5.33).
    # A purchase of 0.05 at 40 points per 1.00 earns 2; returning 1 gives back half of 0.05 =
    # 0.025 -> 0.02 (half to even; half up would say 0.03): qualifying 0.03; the other point
    # gives back the remaining 0.03: 0.00.
    policy = TierPolicy(tiers=[Tier(name="silver", threshold=D("50.00"))], basis=TierBasis.SPEND)
    threes = Program(name="threes", rules=[SpendRule(name="base", points=D(3), per=D(1))])
    ledger = new_ledger()
    earned = buy(ledger, threes, "ann", "10.00", utc(2026, 3, 1), "o-1")
    assert (earned.points, earned.spend) == (30, D("10.00"))
    seen = []
    for n, points in enumerate((7, 7, 16)):
        ledger.reverse(earned.entry_id, at=utc(2026, 3, 2 + n), key=f"r-{n}", points=points)
        seen.append(tier_of(ledger, policy, "ann", utc(2026, 3, 2 + n)).qualifying)
    assert seen == [D("7.67"), D("5.33"), D("0.00")]

    forties = Program(name="forties", rules=[SpendRule(name="base", points=D(40), per=D(1))])
    small = buy(ledger, forties, "bob", "0.05", utc(2026, 3, 1), "o-1")
    assert small.points == 2
    got = []
    for n in range(2):
        ledger.reverse(small.entry_id, at=utc(2026, 3, 2 + n), key=f"r-{n}", points=1)
        got.append(tier_of(ledger, policy, "bob", utc(2026, 3, 2 + n)).qualifying)
    assert got == [D("0.03"), D("0.00")]


# -- 12. what a spend tier counts: all the money spent, points earned or not ---------------


def test_a_spend_tier_counts_every_purchase_under_a_monthly_cap(new_ledger: LedgerFactory) -> None:
    # docs/loyalty-program.md, "Tiers": a spend tier counts the money of every purchase, also
    # one that earned no points (issue 12: it used to count only purchases that wrote an
    # EARN). 1 point per 1.00, cap 100 a month, silver at 500.00 spent in the year.
    # - Six purchases of 100.00 on 1-6 January: the first earns 100 (an EARN, spend 100.00);
    #   the cap is then full, the other five earn 0 and each write a PURCHASE of 0 points and
    #   spend 100.00. 600.00 count: silver from 5 January (the fifth purchase makes 500.00),
    #   nothing more needed.
    # - A purchase of 0.99 (0 points, rounded down) on 7 January: a PURCHASE of 0.99: 600.99.
    # - On 1 February the cap reopens: of four purchases of 100.00 (1-4 February) the first
    #   earns 100, the other three write PURCHASEs: 1000.99 counts.
    program = one_point_per_unit(
        caps=[Cap(name="monthly", points=100, period=Period.MONTH)],
        tiers=TierPolicy(tiers=[Tier(name="silver", threshold=D("500.00"))], basis=TierBasis.SPEND),
    )
    ledger = new_ledger()
    written = [
        buy(ledger, program, "ann", "100.00", utc(2026, 1, 1 + n), f"o{n}") for n in range(6)
    ]
    assert [e.points if e is not None else None for e in written] == [100] + [None] * 5
    kinds = [(e.kind.value, e.points, e.spend) for e in ledger.entries("ann")]
    assert kinds == [("earn", 100, D("100.00"))] + [("purchase", 0, D("100.00"))] * 5
    status = tier_of(ledger, program, "ann", utc(2026, 1, 6))
    assert (status.tier, status.qualifying, status.needed) == ("silver", D("600.00"), D(0))
    assert status.since == utc(2026, 1, 5)
    assert buy(ledger, program, "ann", "0.99", utc(2026, 1, 7), "o6") is None
    status = tier_of(ledger, program, "ann", utc(2026, 1, 31))
    assert (status.tier, status.qualifying) == ("silver", D("600.99"))
    for n in range(4):
        buy(ledger, program, "ann", "100.00", utc(2026, 2, 1 + n), f"p{n}")
    status = tier_of(ledger, program, "ann", utc(2026, 2, 28))
    assert (status.tier, status.qualifying) == ("silver", D("1000.99"))
    assert ledger.balance("ann", utc(2026, 2, 28)).active == 200
    assert ledger.verify("ann").ok


# -- 13. an early activation under end-of-quarter expiry -------------------------------------


def test_an_early_activation_counts_the_quarter_end_from_the_activation() -> None:
    # Quarter-end expiry without a minimum age, 30-day window. Bought 2026-03-20 12:00:
    # pending until 2026-04-19 12:00 (Q2), expiring 2026-07-01. Activated early on
    # 2026-03-25 (the points are available from then, in Q1): the expiry is counted from the
    # activation, as documented for activate_points and as Talon.One counts the validity of
    # points that await an activation: the end of Q1, 2026-04-01 00:00, three months sooner.
    # A minimum age of 30 days avoids that: 2026-03-25 + 30 days = 2026-04-24, Q2: 07-01.
    ledger = Ledger(open_store("memory://"))
    for min_age, after_activation in (
        (relativedelta(), utc(2026, 4, 1)),
        (relativedelta(days=30), utc(2026, 7, 1)),
    ):
        program = one_point_per_unit(
            pending=PendingPolicy(after=relativedelta(days=30)),
            expiry=EndOfPeriodExpiry(period=Period.QUARTER, min_age=min_age),
        )
        member = f"m{min_age.days}"
        earned = buy(ledger, program, member, "80.00", utc(2026, 3, 20, 12), "o-1")
        assert (earned.pending_until, earned.expires_at) == (utc(2026, 4, 19, 12), utc(2026, 7, 1))
        activated = activate_points(
            ledger, program, member, earned.lot_id, at=utc(2026, 3, 25), key="delivered"
        )
        assert activated.expires_at == after_activation


# -- 14. only_pending and a lot that expired inside its returns window -----------------------


def test_only_pending_returns_the_expired_points_of_a_lot_still_inside_its_window(
    new_ledger: LedgerFactory,
) -> None:
    # Written directly with Ledger.earn: 100 points on 1 Jan, pending until 1 March, expiring
    # 1 Feb (a program never writes this: it counts expiry from the end of the window). On
    # 15 Feb the lot is expired (pending 0, expired 100), but the returns window is open:
    # under only_pending a return of 30 takes 30 of the lot's expired points and nothing
    # else: expired 70, lifetime 70, and verify accepts it. Bob, the same lot, returns on
    # 15 March, after the window: InvalidTransition, nothing written.
    ledger = new_ledger(returns="only_pending")
    for member in ("ann", "bob"):
        ledger.earn(
            member,
            100,
            at=utc(2026, 1, 1),
            key="o-1",
            pending_until=utc(2026, 3, 1),
            expires_at=utc(2026, 2, 1),
        )
    seen = ledger.balance("ann", utc(2026, 2, 15))
    assert (seen.pending, seen.expired) == (0, 100)
    back = ledger.reverse("ann#1", at=utc(2026, 2, 15), key="r-1", points=30)
    assert [(d.lot_id, d.points) for d in back.draws] == [("ann#1", 30)]
    after = ledger.balance("ann", utc(2026, 2, 15))
    assert (after.active, after.expired, after.negative, after.lifetime) == (0, 70, 0, 70)
    assert ledger.verify("ann").ok
    with pytest.raises(InvalidTransition):
        ledger.reverse("bob#1", at=utc(2026, 3, 15), key="r-1")
    assert len(ledger.entries("bob")) == 1
