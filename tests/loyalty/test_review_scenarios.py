"""Scenarios from a review of the loyalty side against its documentation (docs/loyalty.md,
docs/loyalty-program.md, the compensation and tier review how-tos): period boundaries, time
zones, leap days, boundary instants, caps, stacked multipliers, tiers, lot order, refunds
after expiry, transfers, idempotency and bad inputs, and the known bugs of other loyalty
systems csmcore must not have.

Every expected number and instant is worked out by hand in the comment above it, from the
documentation, before the test was first run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta

from csmcore import BusinessCalendar
from csmcore.errors import (
    CsmError,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidTransition,
    NaiveDatetimeError,
    ValidationError,
)
from csmcore.loyalty import (
    Balance,
    Cap,
    Downgrade,
    EndOfPeriodExpiry,
    LedgerState,
    Multiplier,
    PendingPolicy,
    Period,
    Program,
    Purchase,
    PurchaseLine,
    RecoveryPolicy,
    RollingExpiry,
    Rounding,
    SpendRule,
    Stacking,
    Tier,
    TierPolicy,
    Window,
    tier_status,
    verify_entries,
)
from csmcore.serialization import from_document
from csmcore.services import (
    Ledger,
    compensate,
    earn_points,
    return_points,
    review_member_tiers,
    tier_of,
)
from csmcore.sla import SlaBook, SlaMetric, SlaPolicy, SlaTarget
from csmcore.storage import open_store
from csmcore.tickets import Role, Ticket

D = Decimal
US = timedelta(microseconds=1)
BERLIN = ZoneInfo("Europe/Berlin")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=timezone.utc)


LedgerFactory = Callable[..., Ledger]


@pytest.fixture(params=["memory://", "sqlite:///:memory:"])
def new_ledger(request: pytest.FixtureRequest) -> LedgerFactory:
    """Ledgers on the memory store (its one-step posting) and on SQLite (the general
    plan-then-write path): every ledger scenario must read the same on both."""

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


# -- end-of-period and rolling expiry -------------------------------------------------------


def test_half_year_end_expiry_reads_new_years_night_in_the_policys_time_zone() -> None:
    # Available 2026-12-31 23:30 UTC = 2027-01-01 00:30 in Berlin (CET, UTC+1). Plus a minimum
    # age of 6 months, local: 2027-07-01 00:30 CEST, in H2 2027, so the points expire at the end
    # of H2 2027: 2028-01-01 00:00 CET = 2027-12-31 23:00 UTC.
    # Read in UTC instead: 2026-12-31 23:30 + 6 months = 2027-06-30 23:30, in H1 2027: they
    # expire on 2027-07-01 00:00 UTC, six months earlier.
    available = utc(2026, 12, 31, 23, 30)
    berlin = EndOfPeriodExpiry(
        period=Period.HALF_YEAR, min_age=relativedelta(months=6), timezone="Europe/Berlin"
    )
    in_utc = EndOfPeriodExpiry(period=Period.HALF_YEAR, min_age=relativedelta(months=6))
    assert berlin.expires_at(available) == utc(2027, 12, 31, 23)
    assert in_utc.expires_at(available) == utc(2027, 7, 1)


def test_a_minimum_age_reached_at_a_period_start_expires_at_the_end_of_that_period() -> None:
    # Quarter-end, 3 months minimum age, UTC. Available 2026-01-01 00:00: 3 months old on
    # 2026-04-01 00:00, the first instant of Q2 (period starts are included), so they expire
    # on 2026-07-01. One microsecond earlier (2025-12-31 23:59:59.999999): 3 months old on
    # 2026-03-31 23:59:59.999999, still Q1, so they expire on 2026-04-01.
    rule = EndOfPeriodExpiry(period=Period.QUARTER, min_age=relativedelta(months=3))
    assert rule.expires_at(utc(2026, 1, 1)) == utc(2026, 7, 1)
    assert rule.expires_at(utc(2026, 1, 1) - US) == utc(2026, 4, 1)


def test_leap_day_earnings_expire_on_the_clipped_date(new_ledger: LedgerFactory) -> None:
    # Rolling 1 year from 2028-02-29 10:00: relativedelta clips to 2029-02-28 10:00; 4 years
    # land on the next leap day 2032-02-29 10:00. A month after 2028-01-31 is 2028-02-29.
    # End of month with a 1-month minimum age from 2028-01-31: 1 month old on 2028-02-29, in
    # February, so they expire on 2028-03-01 00:00. Year-end with a 12-month minimum age
    # from 2028-02-29: 12 months old on 2029-02-28, in 2029: expire 2030-01-01.
    leap_day = utc(2028, 2, 29, 10)
    assert RollingExpiry(after=relativedelta(years=1)).expires_at(leap_day) == utc(2029, 2, 28, 10)
    assert RollingExpiry(after=relativedelta(years=4)).expires_at(leap_day) == utc(2032, 2, 29, 10)
    month = RollingExpiry(after=relativedelta(months=1))
    assert month.expires_at(utc(2028, 1, 31, 10)) == leap_day
    month_end = EndOfPeriodExpiry(period=Period.MONTH, min_age=relativedelta(months=1))
    assert month_end.expires_at(utc(2028, 1, 31, 10)) == utc(2028, 3, 1)
    year_end = EndOfPeriodExpiry(period=Period.YEAR, min_age=relativedelta(months=12))
    assert year_end.expires_at(leap_day) == utc(2030, 1, 1)

    # On the ledger: 100 points earned on the leap day, expiring a year later, are usable up
    # to 2029-02-28 09:59:59.999999 and expired from 10:00 on.
    ledger = new_ledger()
    ledger.earn("ann", 100, at=leap_day, key="o-1", expires_at=utc(2029, 2, 28, 10))
    assert ledger.balance("ann", utc(2029, 2, 28, 10) - US).active == 100
    after = ledger.balance("ann", utc(2029, 2, 28, 10))
    assert (after.active, after.expired) == (0, 100)


def test_a_returns_window_moves_the_end_of_period_expiry_to_the_next_quarter() -> None:
    # Earned 2026-03-20 12:00 UTC, pending 30 days: active from 2026-04-19 12:00. The docs say
    # expiry is counted from when the points become available: 2026-04-19 is in Q2, so with
    # quarter-end expiry (no minimum age) they expire on 2026-07-01, not on 2026-04-01 (which
    # is the end of the quarter they were earned in, while they were still pending).
    program = one_point_per_unit(
        pending=PendingPolicy(after=relativedelta(days=30)),
        expiry=EndOfPeriodExpiry(period=Period.QUARTER),
    )
    quote = program.quote(Purchase.of(D("80.00")), at=utc(2026, 3, 20, 12))
    assert quote.pending_until == utc(2026, 4, 19, 12)
    assert quote.expires_at == utc(2026, 7, 1)


def test_a_lot_expires_at_its_instant_exactly_and_its_expiry_is_recorded_once(
    new_ledger: LedgerFactory,
) -> None:
    # 100 points earned 2026-01-05, expiring 2026-02-01 00:00. At 2026-01-31 23:59:59.999999
    # they are active; at 2026-02-01 00:00 they are expired (expired from expires_at on), so a
    # redemption of 100 at that instant is refused with nothing written. expire() before the
    # instant writes nothing, at it writes one entry of -100, and again nothing (FloCafe #78
    # deducted expiring credits twice): the balance shows 100 expired, not 200.
    ledger = new_ledger()
    expiry = utc(2026, 2, 1)
    ledger.earn("ann", 100, at=utc(2026, 1, 5), key="o-1", expires_at=expiry)
    assert ledger.balance("ann", expiry - US).active == 100
    with pytest.raises(InsufficientPoints):
        ledger.redeem("ann", 100, at=expiry, key="late")
    assert len(ledger.entries("ann")) == 1
    assert ledger.expire("ann", at=expiry - US) == []
    written = ledger.expire("ann", at=expiry)
    assert [(e.kind.value, e.points, e.lot_id) for e in written] == [("expire", -100, "ann#1")]
    assert ledger.expire("ann", at=expiry) == []
    assert ledger.expire("ann", at=expiry + timedelta(days=40)) == []
    balance = ledger.balance("ann", expiry + timedelta(days=40))
    assert (balance.active, balance.expired, balance.lifetime) == (0, 100, 100)
    assert ledger.verify("ann").ok


# -- pending points and returns windows -----------------------------------------------------


def test_pending_points_become_usable_at_pending_until_exactly(new_ledger: LedgerFactory) -> None:
    # 100 points earned 2026-03-01 12:00, pending until 2026-03-31 12:00 (pending while
    # at < pending_until). One microsecond before: pending 100, active 0, and a redemption is
    # refused (nothing written); at pending_until: active 100 and the redemption draws them.
    ledger = new_ledger()
    until = utc(2026, 3, 31, 12)
    ledger.earn("ann", 100, at=utc(2026, 3, 1, 12), key="o-1", pending_until=until)
    before = ledger.balance("ann", until - US)
    assert (before.active, before.pending) == (0, 100)
    with pytest.raises(InsufficientPoints):
        ledger.redeem("ann", 100, at=until - US, key="early")
    assert len(ledger.entries("ann")) == 1
    spend = ledger.redeem("ann", 100, at=until, key="on-time")
    assert [(d.lot_id, d.points) for d in spend.draws] == [("ann#1", 100)]


def test_a_return_at_the_end_of_the_returns_window_is_too_late_under_only_pending(
    new_ledger: LedgerFactory,
) -> None:
    # only_pending claws back only while the lot is pending, i.e. at < pending_until. Ann
    # returns one microsecond before the end of the window: -100. Bob returns at the very
    # instant the window ends: his points are active, InvalidTransition, nothing written.
    ledger = new_ledger(returns="only_pending")
    until = utc(2026, 4, 1, 9)
    for member in ("ann", "bob"):
        ledger.earn(member, 100, at=utc(2026, 3, 2, 9), key="o-1", pending_until=until)
    back = ledger.reverse("ann#1", at=until - US, key="r-1")
    assert back.points == -100
    with pytest.raises(InvalidTransition):
        ledger.reverse("bob#1", at=until, key="r-1")
    assert len(ledger.entries("bob")) == 1
    assert ledger.balance("bob", until).active == 100


# -- caps -----------------------------------------------------------------------------------


def test_an_earn_straddling_a_cap_gets_the_room_left_then_nothing(
    new_ledger: LedgerFactory,
) -> None:
    # Cap 1000 points a month on purchases, 1 point per 1.00. 950.00 on 2 March: 950 points.
    # 113.00 on 10 March would earn 113; 50 are left: 50 points (a partial award). 10.00 on
    # 11 March: no points (earn_points returns None); a PURCHASE of 0 points records its
    # money for spend tiers (issue 12; it used to write nothing). A retry of the
    # 10 March purchase on 12 March returns its entry of 50 (not None, not a new quote).
    # On 1 April 00:00 UTC the cap reopens: 10.00 earns 10.
    program = one_point_per_unit(
        caps=[Cap(name="monthly", points=1000, period=Period.MONTH, events={"purchase"})]
    )
    ledger = new_ledger()

    def buy(amount: str, when: datetime, key: str) -> Any:
        return earn_points(ledger, program, "ann", Purchase.of(D(amount)), at=when, key=key)

    assert buy("950.00", utc(2026, 3, 2), "o-1").points == 950
    second = buy("113.00", utc(2026, 3, 10), "o-2")
    assert second.points == 50
    assert buy("10.00", utc(2026, 3, 11), "o-3") is None
    assert [(e.kind.value, e.points, e.spend) for e in ledger.entries("ann")][2:] == [
        ("purchase", 0, D("10.00"))
    ]
    assert buy("113.00", utc(2026, 3, 12), "o-2") == second
    assert buy("10.00", utc(2026, 4, 1), "o-4").points == 10


def test_a_cap_in_new_york_with_a_gold_multiplier(new_ledger: LedgerFactory) -> None:
    # 1 point per 1.00; gold (500 points in the calendar year) doubles; at most 1000 points a
    # month, months read in New York (EST, UTC-5 in winter).
    # - 2026-01-15 12:00 UTC: 500.00, not gold yet (the tier before this purchase): 500;
    #   the member is gold from then on.
    # - 2026-02-01 03:00 UTC = 31 Jan 22:00 in New York: 150.00 x 2 = 300, January room
    #   1000 - 500 = 500: 300.
    # - 2026-02-01 04:00 UTC = 31 Jan 23:00: 300 more, room 200: 200 (capped).
    # - 2026-02-01 05:00 UTC = 1 Feb 00:00 in New York: a new period: 300.
    program = one_point_per_unit(
        multipliers=[Multiplier(name="gold x2", factor=D(2), tiers={"gold"})],
        caps=[Cap(name="monthly", points=1000, period=Period.MONTH, timezone="America/New_York")],
        tiers=TierPolicy(tiers=[Tier(name="gold", threshold=500)]),
    )
    ledger = new_ledger()
    buys = [
        ("500.00", utc(2026, 1, 15, 12)),
        ("150.00", utc(2026, 2, 1, 3)),
        ("150.00", utc(2026, 2, 1, 4)),
        ("150.00", utc(2026, 2, 1, 5)),
    ]
    points = []
    for n, (amount, when) in enumerate(buys):
        entry = earn_points(ledger, program, "ann", Purchase.of(D(amount)), at=when, key=f"o{n}")
        points.append(entry.points if entry is not None else 0)
    assert points == [500, 300, 200, 300]


def test_a_return_does_not_free_room_under_a_cap_on_the_ledger(new_ledger: LedgerFactory) -> None:
    # Cap 1000 a month. 1000.00 on 4 May: 1000. Returned on 5 May: -1000 (within balance).
    # 10.00 on 6 May: the docs say returns do not free room, so nothing (None), and the
    # member holds 0 points.
    program = one_point_per_unit(caps=[Cap(name="monthly", points=1000, period=Period.MONTH)])
    ledger = new_ledger()
    bought = earn_points(
        ledger, program, "ann", Purchase.of(D("1000.00")), at=utc(2026, 5, 4), key="o-1"
    )
    assert bought is not None
    assert bought.points == 1000
    assert (
        return_points(ledger, program, bought.entry_id, at=utc(2026, 5, 5), key="r-1").points
        == -1000
    )
    again = earn_points(
        ledger, program, "ann", Purchase.of(D("10.00")), at=utc(2026, 5, 6), key="o-2"
    )
    assert again is None
    assert ledger.balance("ann", utc(2026, 5, 6)).active == 0


# -- multipliers and rounding ---------------------------------------------------------------


def test_a_campaign_window_includes_its_start_and_excludes_its_end_in_any_zone() -> None:
    # Black Friday in Berlin: from 27 Nov 00:00 CET (26 Nov 23:00 UTC) to 30 Nov 00:00 CET
    # (29 Nov 23:00 UTC), start included, end excluded. 100.00 at 1 point per 1.00, x2 in the
    # window: 100 one microsecond before the start, 200 at the start, 200 one microsecond
    # before the end, 100 at the end.
    window = Window(
        starts_at=datetime(2026, 11, 27, tzinfo=BERLIN),
        ends_at=datetime(2026, 11, 30, tzinfo=BERLIN),
    )
    program = one_point_per_unit(
        multipliers=[Multiplier(name="black friday", factor=D(2), window=window)]
    )
    basket = Purchase.of(D("100.00"))
    start, end = utc(2026, 11, 26, 23), utc(2026, 11, 29, 23)
    assert [
        program.quote(basket, at=when).points for when in (start - US, start, end - US, end)
    ] == [100, 200, 200, 100]


@pytest.mark.parametrize(
    ("rounding", "at_52_5", "at_37_5", "at_0_0375"),
    [
        # 14.00 x 3.75 = 52.5; 10.00 x 3.75 = 37.5; 0.01 x 3.75 = 0.0375
        (Rounding.DOWN, 52, 37, 0),
        (Rounding.HALF_UP, 53, 38, 0),
        (Rounding.HALF_EVEN, 52, 38, 0),  # to the even neighbour: 52, 38
        (Rounding.UP, 53, 38, 1),  # any fraction up
    ],
)
def test_three_stacked_multipliers_round_once_per_mode(
    rounding: Rounding, at_52_5: int, at_37_5: int, at_0_0375: int
) -> None:
    # gold 1.25 x books 2 x campaign 1.5 = 3.75 (MULTIPLY); 1 point per 1.00 on a books line.
    # With HIGHEST only the best factor (2) applies: 14.00 -> 28 in every mode.
    window = Window(starts_at=utc(2026, 1, 1), ends_at=utc(2027, 1, 1))
    multipliers = [
        Multiplier(name="gold", factor=D("1.25"), tiers={"gold"}),
        Multiplier(name="books", factor=D(2), categories={"books"}),
        Multiplier(name="campaign", factor=D("1.5"), window=window),
    ]
    tiers = TierPolicy(tiers=[Tier(name="gold", threshold=1000)])
    rules = [SpendRule(name="base", points=D(1), per=D(1), rounding=rounding)]
    multiply = Program(name="shop", rules=rules, multipliers=multipliers, tiers=tiers)
    highest = Program(
        name="shop", rules=rules, multipliers=multipliers, tiers=tiers, stacking=Stacking.HIGHEST
    )
    when = utc(2026, 6, 1)

    def points(program: Program, amount: str) -> int:
        basket = Purchase.of(D(amount), category="books")
        return program.quote(basket, at=when, tier="gold").points

    assert [points(multiply, a) for a in ("14.00", "10.00", "0.01")] == [
        at_52_5,
        at_37_5,
        at_0_0375,
    ]
    assert points(highest, "14.00") == 28


def test_a_purchase_worth_less_than_a_point_earns_nothing_and_points_stay_integers(
    new_ledger: LedgerFactory,
) -> None:
    # 0.99 at 1 point per 1.00 rounded down: 0 points, so earn_points returns None and writes
    # only a PURCHASE of 0 points and spend 0.99 (no lot; issue 12: spend tiers count it). Three
    # lines of 0.10 at 10 points per 1.00 are exactly 3 points (not 2.9999...: odoo #153541),
    # and every balance field is a plain int.
    program = one_point_per_unit()
    ledger = new_ledger()
    assert (
        earn_points(ledger, program, "ann", Purchase.of(D("0.99")), at=utc(2026, 1, 2), key="o-1")
        is None
    )
    assert [(e.kind.value, e.points, e.spend, e.lot_id) for e in ledger.entries("ann")] == [
        ("purchase", 0, D("0.99"), None)
    ]
    tens = Program(name="tens", rules=[SpendRule(name="base", points=D(10), per=D(1))])
    lines = tuple(PurchaseLine(amount=D("0.10")) for _ in range(3))
    entry = earn_points(ledger, tens, "ann", Purchase(lines=lines), at=utc(2026, 1, 3), key="o-2")
    assert entry is not None
    assert entry.points == 3
    balance = ledger.balance("ann")
    assert all(
        type(getattr(balance, f)) is int
        for f in ("active", "pending", "expired", "spent", "negative", "lifetime")
    )


# -- tiers ----------------------------------------------------------------------------------

YEARLY = TierPolicy(
    tiers=[Tier(name="silver", threshold=1000), Tier(name="gold", threshold=5000)],
    downgrade=Downgrade.ONE_TIER,
)


def test_the_purchase_that_reaches_a_tier_earns_at_the_tier_before_it(
    new_ledger: LedgerFactory,
) -> None:
    # Silver 1000, gold 2000; gold doubles. 900.00 on 2 March: 900. 1200.00 on 3 March: the
    # member is untiered before it (900), so 1200 points, and gold from that instant (2100).
    # A second purchase at the very same instant (another key): gold already, 100.00 -> 200.
    # Tier at 3 March: gold since 3 March.
    program = one_point_per_unit(
        multipliers=[Multiplier(name="gold x2", factor=D(2), tiers={"gold"})],
        tiers=TierPolicy(
            tiers=[Tier(name="silver", threshold=1000), Tier(name="gold", threshold=2000)]
        ),
    )
    ledger = new_ledger()
    first = earn_points(
        ledger, program, "ann", Purchase.of(D("900.00")), at=utc(2026, 3, 2), key="o-1"
    )
    reaching = earn_points(
        ledger, program, "ann", Purchase.of(D("1200.00")), at=utc(2026, 3, 3), key="o-2"
    )
    same_instant = earn_points(
        ledger, program, "ann", Purchase.of(D("100.00")), at=utc(2026, 3, 3), key="o-3"
    )
    assert [e.points for e in (first, reaching, same_instant) if e is not None] == [900, 1200, 200]
    status = tier_of(ledger, program, "ann", utc(2026, 3, 3))
    assert (status.tier, status.since) == ("gold", utc(2026, 3, 3))


def test_a_return_below_the_threshold_keeps_the_tier_until_the_review(
    new_ledger: LedgerFactory,
) -> None:
    # Yearly, silver 1000, gold 5000, no grace. 5000 earned on 1 March 2026: gold, valid
    # through 2027 (valid_until 2028-01-01). 3000 returned on 20 March: the qualifying amount
    # falls to 2000, but the docs make tiers move down only at valid_until + grace, so the
    # member stays gold (the top tier: nothing `needed`); at 2028-01-01, not requalified in
    # 2027, one tier down: silver.
    ledger = new_ledger()
    bought = ledger.earn("ann", 5000, at=utc(2026, 3, 1), key="o-1")
    ledger.reverse(bought.entry_id, at=utc(2026, 3, 20), key="r-1", points=3000)
    status = tier_of(ledger, YEARLY, "ann", utc(2026, 3, 21))
    assert (status.tier, status.qualifying, status.needed) == ("gold", D(2000), D(0))
    assert status.valid_until == utc(2028, 1, 1)
    assert tier_of(ledger, YEARLY, "ann", utc(2028, 1, 1)).tier == "silver"


def test_a_return_in_the_next_year_counts_against_the_next_year(new_ledger: LedgerFactory) -> None:
    # 1000 earned on 20 Dec 2026: silver, valid through 2027. Returned on 5 Jan 2027: a return
    # subtracts in the window of its own date, so 2027 starts at -1000; silver still holds
    # (valid through 2027), and gold (5000) `needs` 6000. 1000 earned on 1 June 2027 brings
    # 2027 back to 0, which requalifies nothing: on 1 Jan 2028 the member has no tier.
    ledger = new_ledger()
    bought = ledger.earn("ann", 1000, at=utc(2026, 12, 20), key="o-1")
    ledger.reverse(bought.entry_id, at=utc(2027, 1, 5), key="r-1")
    early = tier_of(ledger, YEARLY, "ann", utc(2027, 1, 6))
    assert (early.tier, early.qualifying, early.needed) == ("silver", D(-1000), D(6000))
    ledger.earn("ann", 1000, at=utc(2027, 6, 1), key="o-2")
    assert tier_of(ledger, YEARLY, "ann", utc(2027, 6, 2)).qualifying == 0
    assert tier_of(ledger, YEARLY, "ann", utc(2027, 12, 31)).tier == "silver"
    assert tier_of(ledger, YEARLY, "ann", utc(2028, 1, 1)).tier is None


def test_a_rolling_window_excludes_the_instant_exactly_a_year_before(
    new_ledger: LedgerFactory,
) -> None:
    # Rolling 12 months (start excluded, end included). 1000 earned 2026-03-01 00:00:
    # counted at 2027-02-28 23:59:59.999999, not at 2027-03-01 00:00 (the window's excluded
    # start). Silver reached 2026-03-01 stays valid through 2027 (yearly review), then goes.
    # Leap day: 1000 earned 2028-02-29 12:00 counts at 2029-02-28 12:00 (window from
    # 2028-02-28 12:00, excluded) and no longer at 2029-03-01 00:00.
    policy = TierPolicy(
        tiers=[Tier(name="silver", threshold=1000)], rolling=relativedelta(months=12)
    )
    ledger = new_ledger()
    ledger.earn("ann", 1000, at=utc(2026, 3, 1), key="o-1")
    assert tier_of(ledger, policy, "ann", utc(2027, 3, 1) - US).qualifying == 1000
    at_anniversary = tier_of(ledger, policy, "ann", utc(2027, 3, 1))
    assert (at_anniversary.qualifying, at_anniversary.tier) == (D(0), "silver")
    assert tier_of(ledger, policy, "ann", utc(2028, 1, 1)).tier is None
    ledger.earn("bob", 1000, at=utc(2028, 2, 29, 12), key="o-1")
    assert tier_of(ledger, policy, "bob", utc(2029, 2, 28, 12)).qualifying == 1000
    assert tier_of(ledger, policy, "bob", utc(2029, 3, 1)).qualifying == 0


def test_a_tier_given_by_a_downgrade_lasts_its_review_period_then_the_grace(
    new_ledger: LedgerFactory,
) -> None:
    # Yearly UTC, silver 1000, gold 5000, one tier down, grace 3 months. Gold on 15 June 2026,
    # valid through 2027; nothing earned since. Review at 2028-01-01 + 3 months = 2028-04-01:
    # silver since 2028-04-01, valid until the end of the review period containing it
    # (2029-01-01), reviewed at 2029-04-01: then no tier.
    policy = TierPolicy(tiers=YEARLY.tiers, grace=relativedelta(months=3))
    ledger = new_ledger()
    ledger.earn("ann", 5000, at=utc(2026, 6, 15), key="o-1")
    assert tier_of(ledger, policy, "ann", utc(2028, 4, 1) - US).tier == "gold"
    status = tier_of(ledger, policy, "ann", utc(2028, 4, 1))
    assert (status.tier, status.since, status.valid_until, status.review_at) == (
        "silver",
        utc(2028, 4, 1),
        utc(2029, 1, 1),
        utc(2029, 4, 1),
    )
    assert tier_of(ledger, policy, "ann", utc(2029, 4, 1)).tier is None


def test_the_highest_tier_met_wins_when_one_purchase_jumps_two_tiers() -> None:
    # Tiers given highest first (erpnext #22167 picked the first one met in list order): one
    # earn of 6000 jumps from no tier straight to platinum (5000), not silver or gold.
    policy = TierPolicy(
        tiers=[
            Tier(name="platinum", threshold=5000),
            Tier(name="gold", threshold=2500),
            Tier(name="silver", threshold=1000),
        ]
    )
    from tests.loyalty.program_support import earn

    status = tier_status(policy, [earn(utc(2026, 2, 1), 6000)], utc(2026, 2, 1))
    assert (status.tier, status.rank, status.next_tier) == ("platinum", 3, None)


# -- lots, refunds and transfers ------------------------------------------------------------


def _lots_of_equal_expiry(ledger: Ledger) -> None:
    """A: 100 (5 Jan, expires 1 June); B: 100 (6 Jan, never); C: 100 (7 Jan, expires 1 June);
    D: 50 (8 Jan, expires 1 June, pending until 1 Feb)."""
    june = utc(2026, 6, 1)
    ledger.earn("ann", 100, at=utc(2026, 1, 5), key="a", expires_at=june)
    ledger.earn("ann", 100, at=utc(2026, 1, 6), key="b")
    ledger.earn("ann", 100, at=utc(2026, 1, 7), key="c", expires_at=june)
    ledger.earn(
        "ann", 50, at=utc(2026, 1, 8), key="d", expires_at=june, pending_until=utc(2026, 2, 1)
    )


def test_equal_expiries_draw_oldest_first_and_never_expiring_lots_last(
    new_ledger: LedgerFactory,
) -> None:
    # Redeem 250 on 9 Jan. Soonest expiry first: A and C expire together (oldest first: A,
    # then C), B never expires (last), D is pending (skipped): A 100, C 100, B 50.
    # FIFO: A 100, B 100, C 50.
    soonest, fifo = new_ledger(), new_ledger(order="fifo")
    draws = []
    for ledger in (soonest, fifo):
        _lots_of_equal_expiry(ledger)
        spend = ledger.redeem("ann", 250, at=utc(2026, 1, 9), key="basket")
        draws.append([(d.lot_id, d.points) for d in spend.draws])
    assert draws == [
        [("ann#1", 100), ("ann#3", 100), ("ann#2", 50)],
        [("ann#1", 100), ("ann#2", 100), ("ann#3", 50)],
    ]


def test_a_refund_after_a_lot_expired_restores_it_expired_and_it_expires_once(
    new_ledger: LedgerFactory,
) -> None:
    # A: 100 on 5 Jan expiring 1 Feb; B: 100 on 6 Jan expiring 31 Dec. Redeem 150 on 10 Jan:
    # A 100, B 50. expire() on 1 Feb: A holds nothing, nothing to record. Refund everything
    # on 5 Feb, latest drawn first: B 50 (B back to 100), A 100, into an expired lot: those
    # 100 are expired at once (a refund never extends a lot's life). Balance on 5 Feb: active
    # 100, expired 100, spent 0, lifetime 200. expire() then records -100 for A once; again,
    # nothing; the balance stays at 100 expired (not 200: FloCafe #78).
    ledger = new_ledger()
    ledger.earn("ann", 100, at=utc(2026, 1, 5), key="a", expires_at=utc(2026, 2, 1))
    ledger.earn("ann", 100, at=utc(2026, 1, 6), key="b", expires_at=utc(2026, 12, 31))
    spend = ledger.redeem("ann", 150, at=utc(2026, 1, 10), key="basket")
    assert [(d.lot_id, d.points) for d in spend.draws] == [("ann#1", 100), ("ann#2", 50)]
    assert ledger.expire("ann", at=utc(2026, 2, 1)) == []
    back = ledger.refund(spend.entry_id, at=utc(2026, 2, 5), key="refund")
    assert [(d.lot_id, d.points, d.expires_at) for d in back.draws] == [
        ("ann#2", 50, utc(2026, 12, 31)),
        ("ann#1", 100, utc(2026, 2, 1)),
    ]
    balance = ledger.balance("ann", utc(2026, 2, 5))
    assert (balance.active, balance.expired, balance.spent, balance.lifetime) == (100, 100, 0, 200)
    recorded = ledger.expire("ann", at=utc(2026, 2, 5))
    assert [(e.lot_id, e.points) for e in recorded] == [("ann#1", -100)]
    assert ledger.expire("ann", at=utc(2026, 2, 6)) == []
    assert ledger.balance("ann", utc(2026, 2, 6)).expired == 100
    assert ledger.verify("ann").ok


def test_partial_refunds_retries_and_exhaustion(new_ledger: LedgerFactory) -> None:
    # 300 earned, 200 redeemed. Refund 120 (key k1); a retry of k1 returns the same entry and
    # mints nothing (odoo #257854): active 100 + 120 = 220. Refund the rest (default): 80.
    # Anything more is refused with a ValidationError saying 0 points are left (odoo #212922
    # charged partial refunds twice), and nothing is written: 4 entries, active 300.
    ledger = new_ledger()
    ledger.earn("ann", 300, at=utc(2026, 1, 5), key="o-1")
    spend = ledger.redeem("ann", 200, at=utc(2026, 1, 6), key="basket")
    first = ledger.refund(spend.entry_id, at=utc(2026, 1, 7), key="k1", points=120)
    assert ledger.refund(spend.entry_id, at=utc(2026, 1, 7), key="k1", points=120) == first
    assert ledger.balance("ann", utc(2026, 1, 7)).active == 220
    assert ledger.refund(spend.entry_id, at=utc(2026, 1, 8), key="k2").points == 80
    for key, points in (("k3", None), ("k4", 1)):
        with pytest.raises(ValidationError, match="0 points left to refund"):
            ledger.refund(spend.entry_id, at=utc(2026, 1, 9), key=key, points=points)
    assert len(ledger.entries("ann")) == 4
    balance = ledger.balance("ann", utc(2026, 1, 9))
    assert (balance.active, balance.spent) == (300, 0)


def test_a_transfer_moves_only_active_points_keeps_expiry_and_refuses_self(
    new_ledger: LedgerFactory,
) -> None:
    # Ann: 100 active (1 March, expiring 1 Sept) and 50 pending until 1 April (2 March).
    # On 10 March a transfer of 120 is refused (only 100 active), nothing written on either
    # side. 100 go through: Bob's lot expires 1 Sept; Ann keeps 50 pending. Ann to Ann is a
    # ValidationError naming her. On 1 April the 50 are active and can be moved.
    ledger = new_ledger()
    ledger.earn("ann", 100, at=utc(2026, 3, 1), key="o-1", expires_at=utc(2026, 9, 1))
    ledger.earn("ann", 50, at=utc(2026, 3, 2), key="o-2", pending_until=utc(2026, 4, 1))
    with pytest.raises(InsufficientPoints):
        ledger.transfer("ann", "bob", 120, at=utc(2026, 3, 10), key="gift-1")
    assert (len(ledger.entries("ann")), len(ledger.entries("bob"))) == (2, 0)
    out, into = ledger.transfer("ann", "bob", 100, at=utc(2026, 3, 10), key="gift-2")
    assert (out.points, into.points) == (-100, 100)
    assert [(lot.remaining, lot.expires_at) for lot in ledger.lots("bob", utc(2026, 3, 10))] == [
        (100, utc(2026, 9, 1))
    ]
    ann = ledger.balance("ann", utc(2026, 3, 10))
    assert (ann.active, ann.pending) == (0, 50)
    with pytest.raises(ValidationError, match="'ann'"):
        ledger.transfer("ann", "ann", 10, at=utc(2026, 3, 11), key="self")
    ledger.transfer("ann", "bob", 50, at=utc(2026, 4, 1), key="gift-3")
    assert ledger.balance("bob", utc(2026, 4, 1)).active == 150


# -- idempotency and bad inputs -------------------------------------------------------------


def test_keys_are_per_member_and_the_instant_is_part_of_the_payload(
    new_ledger: LedgerFactory,
) -> None:
    # Ann earns 100 at 09:00 under key "k". The same write given as 10:00 in Berlin (the same
    # instant: CET is UTC+1) returns the original. A retry at another instant is another
    # payload: IdempotencyConflict naming "at". Bob may use "k" too (keys are per member).
    # Ann redeeming under "k" conflicts on the kind. Ann's ledger still holds one entry.
    ledger = new_ledger()
    first = ledger.earn("ann", 100, at=utc(2026, 1, 5, 9), key="k")
    same = ledger.earn("ann", 100, at=datetime(2026, 1, 5, 10, tzinfo=BERLIN), key="k")
    assert same == first
    with pytest.raises(IdempotencyConflict, match=r"differs in: at"):
        ledger.earn("ann", 100, at=utc(2026, 1, 5, 10), key="k")
    assert ledger.earn("bob", 100, at=utc(2026, 1, 5, 9), key="k").entry_id == "bob#1"
    with pytest.raises(IdempotencyConflict, match=r"differs in: kind"):
        ledger.redeem("ann", 10, at=utc(2026, 1, 5, 11), key="k")
    assert ledger.entries("ann") == [first]


@pytest.mark.parametrize("points", [0, -5, 1.5, True, D("10"), "10", None])
def test_bad_points_are_refused_naming_the_value_and_nothing_is_written(
    points: object, new_ledger: LedgerFactory
) -> None:
    ledger = new_ledger()
    ledger.earn("ann", 100, at=utc(2026, 1, 5), key="o-1")
    before = list(ledger.entries("ann"))
    for write in (
        lambda: ledger.earn("ann", points, at=utc(2026, 1, 6), key="bad"),  # type: ignore[arg-type]
        lambda: ledger.redeem("ann", points, at=utc(2026, 1, 6), key="bad"),  # type: ignore[arg-type]
        lambda: ledger.transfer("ann", "bob", points, at=utc(2026, 1, 6), key="bad"),  # type: ignore[arg-type]
    ):
        with pytest.raises(CsmError) as caught:
            write()
        assert isinstance(caught.value, ValidationError)
        assert f"points={points!r}" in str(caught.value)
    assert list(ledger.entries("ann")) == before
    assert ledger.entries("bob") == []


def test_naive_instants_and_unknown_entries_are_refused_with_nothing_written(
    new_ledger: LedgerFactory,
) -> None:
    ledger = new_ledger()
    ledger.earn("ann", 100, at=utc(2026, 1, 5), key="o-1")
    spend = ledger.redeem("ann", 40, at=utc(2026, 1, 6), key="basket")
    naive = datetime(2026, 1, 7, 9)
    with pytest.raises(NaiveDatetimeError, match="at="):
        ledger.redeem("ann", 10, at=naive, key="naive")
    with pytest.raises(NaiveDatetimeError, match="at="):
        ledger.refund(spend.entry_id, at=naive, key="naive")
    with pytest.raises(ValidationError, match="zed#1"):
        ledger.refund("zed#1", at=utc(2026, 1, 7), key="r-1")
    with pytest.raises(ValidationError, match="ann#1"):
        ledger.refund("ann#1", at=utc(2026, 1, 7), key="r-2")  # an earn, not a redemption
    assert len(ledger.entries("ann")) == 2
    assert ledger.entries("zed") == []


# -- service recovery -----------------------------------------------------------------------


BOOK = SlaBook(
    policies=[
        SlaPolicy(
            name="standard",
            position=1,
            default=True,
            targets=[
                SlaTarget(
                    metric=SlaMetric.FIRST_REPLY, within=timedelta(hours=2), business_hours=False
                )
            ],
        )
    ],
    calendar=BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC"),
)


def _late_first_reply(ticket_id: str, created: datetime) -> Ticket:
    """Ann's ticket created at ``created``, answered 3 hours later (due after 2: breached)."""
    ticket, _ = Ticket.create(
        at=created,
        ticket_id=ticket_id,
        created_by="requester",
        channel="email",
        priority="normal",
        requester="ann@example.com",
    )
    ticket, _ = ticket.comment(created + timedelta(hours=3), Role.AGENT)
    return ticket


def test_the_compensation_cap_turns_over_at_local_midnight(new_ledger: LedgerFactory) -> None:
    # 250 per missed first reply, at most 300 a month in Berlin (CEST, UTC+2, since 29 March
    # 2026). T-1 compensated 31 March 21:00 UTC = 23:00 in Berlin (March): 250. T-2 at
    # 31 March 22:30 UTC = 1 April 00:30 in Berlin: a new month, 250 in full (read in UTC it
    # would still be March, 50 left). T-3 at 23:00 UTC: April has 50 left: 50.
    policy = RecoveryPolicy(
        points=100,
        per_target={"first_reply": 250},
        cap=300,
        period="month",
        timezone="Europe/Berlin",
    )
    ledger = new_ledger()
    granted = []
    for ticket_id, created, now in (
        ("T-1", utc(2026, 3, 31, 8), utc(2026, 3, 31, 21)),
        ("T-2", utc(2026, 3, 31, 9), utc(2026, 3, 31, 22, 30)),
        ("T-3", utc(2026, 3, 31, 10), utc(2026, 3, 31, 23)),
    ):
        ticket = _late_first_reply(ticket_id, created)
        granted += [
            e.points for e in compensate(ledger, policy, ticket, BOOK.evaluate(ticket, now), now)
        ]
    assert granted == [250, 250, 50]
    assert ledger.balance("ann@example.com").active == 550


# -- the application's decimal context ------------------------------------------------------


def test_money_is_exact_whatever_decimal_context_the_application_set(
    new_ledger: LedgerFactory,
) -> None:
    # An application that set a 2-digit context (decimal.getcontext().prec = 2, a common
    # misreading of "2 decimal places") must not change what csmcore records. 994.56 + 5.00
    # = 999.56 spent: 999 points (1 per 1.00, down), spend 999.56 exactly, and a spend tier
    # of 1000.00 is NOT reached (999.56 < 1000.00), so no tier and 0.44 still needed.
    # A partial return of 333 of the 999 points gives back 333/999 of 999.56 = 333.186...,
    # 333.19 to the cent: 666.37 left to qualify.
    import decimal

    tiers = TierPolicy(tiers=[Tier(name="silver", threshold=D("1000.00"))], basis="spend")
    program = one_point_per_unit(tiers=tiers)
    ledger = new_ledger()
    basket = Purchase(lines=(PurchaseLine(amount=D("994.56")), PurchaseLine(amount=D("5.00"))))
    with decimal.localcontext() as context:
        context.prec = 2
        assert basket.amount == D("999.56")
        entry = earn_points(ledger, program, "ann", basket, at=utc(2026, 1, 5), key="o-1")
        assert entry is not None
        assert (entry.points, entry.spend) == (999, D("999.56"))
        status = tier_of(ledger, program, "ann", utc(2026, 1, 6))
        assert (status.tier, status.qualifying, status.needed) == (None, D("999.56"), D("0.44"))
        ledger.reverse(entry.entry_id, at=utc(2026, 1, 7), key="r-1", points=333)
        assert tier_of(ledger, program, "ann", utc(2026, 1, 8)).qualifying == D("666.37")


# -- behaviours the docs now spell out ------------------------------------------------------


def test_a_cap_without_events_counts_every_earn_of_the_period(new_ledger: LedgerFactory) -> None:
    # Cap 100 a month, no events: the 80-point welcome bonus and a 10-point manual earn
    # (Ledger.earn, no reason) of 5 Jan count, so a 50.00 purchase on 6 Jan earns the 10 left.
    # The same history under a cap on purchases only: 50.
    everything = one_point_per_unit(caps=[Cap(name="m", points=100, period=Period.MONTH)])
    purchases = one_point_per_unit(
        caps=[Cap(name="m", points=100, period=Period.MONTH, events={"purchase"})]
    )
    earned = []
    for program in (everything, purchases):
        ledger = new_ledger()
        ledger.earn("ann", 80, at=utc(2026, 1, 5), key="welcome", reason="welcome")
        ledger.earn("ann", 10, at=utc(2026, 1, 5), key="manual")
        entry = earn_points(ledger, program, "ann", Purchase.of(D(50)), at=utc(2026, 1, 6), key="o")
        earned.append(None if entry is None else entry.points)
    assert earned == [10, 50]


def test_a_return_after_the_earned_lot_expired_does_not_take_its_expired_points_twice(
    new_ledger: LedgerFactory,
) -> None:
    # A: 100 on 5 Jan, expiring 1 Feb; B: 100 on 6 Jan, never expiring. 30 redeemed on
    # 10 Jan (from A, the soonest). A expires with 70 unused: the member has lost them. The
    # purchase of A is returned on 5 Feb in full (within balance): the 70 expired points of A
    # are the ones it takes back (not 70 more from B), and the 30 that were spent come from B:
    # active 70, expired 0, spent 30, lifetime 100 (earned 200, returned 100); the return
    # still counts -100 for tiers. The same when expire() recorded A's 70 first (2 Feb).
    # Under unlimited, a lot that expired entirely unused is returned with nothing owed.
    for record_first in (False, True):
        ledger = new_ledger()
        ledger.earn("ann", 100, at=utc(2026, 1, 5), key="a", expires_at=utc(2026, 2, 1))
        ledger.earn("ann", 100, at=utc(2026, 1, 6), key="b")
        ledger.redeem("ann", 30, at=utc(2026, 1, 10), key="basket")
        if record_first:
            assert [e.points for e in ledger.expire("ann", at=utc(2026, 2, 2))] == [-70]
        back = ledger.reverse("ann#1", at=utc(2026, 2, 5), key="return")
        assert back.points == -100
        assert [(d.lot_id, d.points) for d in back.draws] == [("ann#1", 70), ("ann#2", 30)]
        balance = ledger.balance("ann", utc(2026, 2, 5))
        assert (balance.active, balance.expired, balance.spent, balance.negative) == (70, 0, 30, 0)
        assert balance.lifetime == 100
        assert ledger.expire("ann", at=utc(2026, 2, 6)) == []
        assert ledger.verify("ann").ok
    unlimited = new_ledger(returns="unlimited")
    unlimited.earn("bob", 100, at=utc(2026, 1, 5), key="a", expires_at=utc(2026, 2, 1))
    back = unlimited.reverse("bob#1", at=utc(2026, 2, 5), key="return")
    assert [(d.lot_id, d.points) for d in back.draws] == [("bob#1", 100)]
    balance = unlimited.balance("bob", utc(2026, 2, 5))
    assert (balance.active, balance.expired, balance.negative, balance.lifetime) == (0, 0, 0, 0)
    assert unlimited.verify("bob").ok


def test_pending_points_count_for_tiers_at_once_and_a_return_in_the_window_keeps_the_tier(
    new_ledger: LedgerFactory,
) -> None:
    # Documented (docs/loyalty-program.md, "Tiers"): an EARN counts for tiers when it is
    # written, pending or not. Silver at 1000 points; 30-day returns window; only pending
    # points are clawed back. 1000.00 on 1 March: 1000 points pending until 31 March, silver
    # at once. Returned on 10 March (still pending): -1000, qualifying 0, silver kept (valid
    # through 2027, until 2028-01-01) since a return never lowers a tier before its review.
    program = one_point_per_unit(
        pending=PendingPolicy(after=relativedelta(days=30)),
        returns="only_pending",
        tiers=TierPolicy(tiers=[Tier(name="silver", threshold=1000)]),
    )
    ledger = new_ledger()
    bought = earn_points(
        ledger, program, "ann", Purchase.of(D("1000.00")), at=utc(2026, 3, 1), key="o-1"
    )
    assert bought is not None
    assert bought.pending_until == utc(2026, 3, 31)
    assert tier_of(ledger, program, "ann", utc(2026, 3, 1)).tier == "silver"
    back = return_points(ledger, program, bought.entry_id, at=utc(2026, 3, 10), key="r-1")
    assert back.points == -1000
    status = tier_of(ledger, program, "ann", utc(2026, 3, 11))
    assert (status.tier, status.qualifying, status.valid_until) == ("silver", D(0), utc(2028, 1, 1))


def test_a_debt_paid_by_points_activating_later_does_not_come_back_when_they_expire(
    new_ledger: LedgerFactory,
) -> None:
    # Returns unlimited. Bob earns 100 (5 Jan), redeems 80 (6 Jan) and returns the purchase
    # (7 Jan): 20 clawed back from the lot, 80 owed (negative). He earns 100 on 8 Jan, pending
    # until 1 Feb, expiring 1 March. The docs: later credits pay the negative balance off
    # first. On 9 Jan the 100 are pending: 80 still owed. On 1 Feb they become usable and pay
    # the 80: active 20, negative 0. On 1 March the lot expires with the 20 left: expired 20,
    # negative 0 (not expired 100 with the 80 owed again: the 80 points would count twice,
    # once paying the debt and once expiring). expire() records -20; verify agrees.
    ledger = new_ledger(returns="unlimited")
    bought = ledger.earn("bob", 100, at=utc(2026, 1, 5), key="a")
    ledger.redeem("bob", 80, at=utc(2026, 1, 6), key="gift")
    ledger.reverse(bought.entry_id, at=utc(2026, 1, 7), key="return")
    ledger.earn(
        "bob",
        100,
        at=utc(2026, 1, 8),
        key="b",
        pending_until=utc(2026, 2, 1),
        expires_at=utc(2026, 3, 1),
    )

    def seen(when: datetime) -> tuple[int, int, int, int]:
        b = ledger.balance("bob", when)
        return (b.active, b.pending, b.expired, b.negative)

    assert seen(utc(2026, 1, 9)) == (0, 100, 0, 80)
    assert seen(utc(2026, 2, 1)) == (20, 0, 0, 0)
    assert seen(utc(2026, 3, 1)) == (0, 0, 20, 0)
    assert [(x.lot_id, x.remaining) for x in ledger.lots("bob", utc(2026, 3, 1))] == [
        ("bob#1", 0),
        ("bob#4", 20),
    ]
    written = ledger.expire("bob", at=utc(2026, 3, 1))
    assert [(e.lot_id, e.points) for e in written] == [("bob#4", -20)]
    assert seen(utc(2026, 3, 1)) == (0, 0, 20, 0)
    assert seen(utc(2026, 2, 15)) == (20, 0, 0, 0)  # the past reads as it did
    # Nothing is owed any more: 50 earned on 5 March can all be spent on 6 March.
    ledger.earn("bob", 50, at=utc(2026, 3, 5), key="c")
    spend = ledger.redeem("bob", 50, at=utc(2026, 3, 6), key="gift-2")
    assert [(d.lot_id, d.points) for d in spend.draws] == [("bob#6", 50)]
    assert ledger.verify("bob").ok


def test_a_tier_review_reports_the_changes_at_the_instant_it_is_given(
    new_ledger: LedgerFactory,
) -> None:
    # The how-to's policy: yearly in Berlin, silver 1000, gold 5000, one tier down, grace 3
    # months. Ann: gold in 2026 (1200 + 4000), 1500 in 2027. Review instant: 1 April 2028
    # 00:00 Berlin (CEST) = 31 March 22:00 UTC: Ann gold -> silver. Run for that instant
    # (today or a week later: the same answer); run with a later "now" (1 April 22:00 UTC),
    # it reports nothing, since nothing changes at that instant.
    policy = TierPolicy(
        tiers=[Tier(name="silver", threshold=1000), Tier(name="gold", threshold=5000)],
        grace=relativedelta(months=3),
        timezone="Europe/Berlin",
    )
    ledger = new_ledger()
    for n, (when, points) in enumerate(
        [(utc(2026, 3, 1), 1200), (utc(2026, 6, 15), 4000), (utc(2027, 5, 1), 1500)]
    ):
        ledger.earn("ann", points, at=when, key=f"o{n}")
    review_at = utc(2028, 3, 31, 22)
    assert tier_of(ledger, policy, "ann", utc(2027, 12, 31)).review_at == review_at
    changes = review_member_tiers(ledger, policy, ["ann"], review_at)
    assert [(c.member_id, c.before.tier, c.after.tier) for c in changes] == [
        ("ann", "gold", "silver")
    ]
    assert review_member_tiers(ledger, policy, ["ann"], review_at + timedelta(days=1)) == []


def test_an_expiry_stored_before_debts_were_paid_at_activation_still_replays() -> None:
    # The debt scenario above, as csmcore wrote it before pending points paid a negative
    # balance at their activation: expire() on 1 March recorded all 100 points of bob#4 as
    # expired. That stored record stands: the ledger replays and verifies, reading as it did
    # when written (100 expired, 80 owed), instead of raising LedgerCorrupt.
    ledger = Ledger(open_store("memory://"), returns="unlimited")
    bought = ledger.earn("bob", 100, at=utc(2026, 1, 5), key="a")
    ledger.redeem("bob", 80, at=utc(2026, 1, 6), key="gift")
    ledger.reverse(bought.entry_id, at=utc(2026, 1, 7), key="return")
    ledger.earn(
        "bob",
        100,
        at=utc(2026, 1, 8),
        key="b",
        pending_until=utc(2026, 2, 1),
        expires_at=utc(2026, 3, 1),
    )
    stored = from_document(
        {
            "type": "loyalty.entry",
            "schema": 2,
            "data": {
                "entry_id": "bob#5",
                "member_id": "bob",
                "seq": 5,
                "kind": "expire",
                "at": "2026-03-01T00:00:00+00:00",
                "points": -100,
                "key": "expire:bob#4:0",
                "lot_id": "bob#4",
                "expires_at": "2026-03-01T00:00:00+00:00",
            },
        }
    )
    entries = [*ledger.entries("bob"), stored]
    state = LedgerState.replay("bob", entries)
    assert state.balance() == Balance(
        active=0, pending=0, expired=100, spent=80, negative=80, lifetime=100
    )
    assert verify_entries("bob", entries).ok


def test_an_expiry_stored_before_debts_were_paid_at_activation_replays_after_later_entries() -> (
    None
):
    # The same, with an entry between the lot's expiry and the stored EXPIRE, as csmcore wrote
    # it before: on 5 March bob earned 10, which paid 10 of the 80 owed (the 100 of bob#4 had
    # expired unused, so 70 were still owed); expire() on 6 March recorded all 100 of bob#4.
    # Read by today's rule, bob#4 paid the 80 at its activation on 1 Feb, so the stored
    # EXPIRE of 100 raised LedgerCorrupt (every read of bob failed). Entries that fit only the
    # earlier rule are read by it, wholly: 100 expired and 70 owed, as when they were written,
    # at every instant.
    ledger = Ledger(open_store("memory://"), returns="unlimited")
    bought = ledger.earn("bob", 100, at=utc(2026, 1, 5), key="a")
    ledger.redeem("bob", 80, at=utc(2026, 1, 6), key="gift")
    ledger.reverse(bought.entry_id, at=utc(2026, 1, 7), key="return")
    ledger.earn(
        "bob",
        100,
        at=utc(2026, 1, 8),
        key="b",
        pending_until=utc(2026, 2, 1),
        expires_at=utc(2026, 3, 1),
    )
    ledger.earn("bob", 10, at=utc(2026, 3, 5), key="c")
    stored = from_document(
        {
            "type": "loyalty.entry",
            "schema": 2,
            "data": {
                "entry_id": "bob#6",
                "member_id": "bob",
                "seq": 6,
                "kind": "expire",
                "at": "2026-03-06T00:00:00+00:00",
                "points": -100,
                "key": "expire:bob#4:0",
                "lot_id": "bob#4",
                "expires_at": "2026-03-01T00:00:00+00:00",
            },
        }
    )
    entries = [*ledger.entries("bob"), stored]
    state = LedgerState.replay("bob", entries)
    assert state.balance() == Balance(
        active=0, pending=0, expired=100, spent=80, negative=70, lifetime=110
    )
    assert state.balance(utc(2026, 3, 5)) == state.balance()
    report = verify_entries("bob", entries)
    assert report.ok, report.problems
    assert report.balance == state.balance()
    # entry by entry, as a SQL store loads a member
    loaded = LedgerState("bob")
    for entry in entries:
        loaded.apply(entry)
    assert loaded.balance() == state.balance()
    assert [(x.lot_id, x.remaining) for x in loaded.lot_values()] == [
        ("bob#1", 0),
        ("bob#4", 100),
        ("bob#5", 0),
    ]


def test_a_redemption_stored_before_debts_were_paid_at_activation_replays() -> None:
    # Returns unlimited. As csmcore wrote it before pending points paid a negative balance at
    # their activation: ann owes 50 from 4 Jan; lot Y (pending until 6 Jan, expiring at the
    # end of the year) and lot A (pending until 11 Jan, expiring 1 Feb) become active with no
    # entry between; on 16 Jan the debt was paid from the lot expiring first, A (50 left),
    # and ann redeemed 150: 50 from A, 100 from Y. Read by today's rule, Y paid the debt on
    # 6 Jan, so the stored redemption drew 100 from a lot of 50 (LedgerCorrupt). The entries
    # are read by the rule they were written under.
    ledger = Ledger(open_store("memory://"), returns="unlimited")
    first = ledger.earn("ann", 100, at=utc(2026, 1, 1), key="e0")
    ledger.redeem("ann", 100, at=utc(2026, 1, 1), key="r0")
    ledger.earn(
        "ann",
        100,
        at=utc(2026, 1, 2),
        key="A",
        pending_until=utc(2026, 1, 11),
        expires_at=utc(2026, 2, 1),
    )
    ledger.earn(
        "ann",
        100,
        at=utc(2026, 1, 2),
        key="Y",
        pending_until=utc(2026, 1, 6),
        expires_at=utc(2027, 1, 1),
    )
    ledger.reverse(first.entry_id, at=utc(2026, 1, 4), key="v", points=50)
    stored = from_document(
        {
            "type": "loyalty.entry",
            "schema": 2,
            "data": {
                "entry_id": "ann#6",
                "member_id": "ann",
                "seq": 6,
                "kind": "redeem",
                "at": "2026-01-16T00:00:00+00:00",
                "points": -150,
                "key": "r1",
                "draws": [
                    {"lot_id": "ann#3", "points": 50, "expires_at": "2026-02-01T00:00:00+00:00"},
                    {"lot_id": "ann#4", "points": 100, "expires_at": "2027-01-01T00:00:00+00:00"},
                ],
            },
        }
    )
    entries = [*ledger.entries("ann"), stored]
    state = LedgerState.replay("ann", entries)
    assert state.balance() == Balance(
        active=0, pending=0, expired=0, spent=250, negative=0, lifetime=250
    )
    report = verify_entries("ann", entries)
    assert report.ok, report.problems
    loaded = LedgerState("ann")
    for entry in entries:
        loaded.apply(entry)
    assert loaded.balance() == state.balance()
