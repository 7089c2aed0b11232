"""Earn rules, worked by hand: rounding of Decimal amounts, categories, multipliers, campaign
windows, stacking, caps across a month boundary, events, pending and expiry in quotes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta

from csmcore.loyalty import (
    Cap,
    EndOfPeriodExpiry,
    EventRule,
    LoyaltyEvent,
    Multiplier,
    PendingPolicy,
    Period,
    Program,
    Purchase,
    PurchaseLine,
    RollingExpiry,
    Rounding,
    SpendRule,
    Stacking,
    Tier,
    TierPolicy,
    Window,
    cap_usage,
)
from tests.loyalty.program_support import Entry, earn, utc

AT = utc(2026, 3, 10, 12)
D = Decimal


def program(*rules: SpendRule | EventRule, **kwargs: object) -> Program:
    return Program(name="shop", rules=rules, **kwargs)  # type: ignore[arg-type]


def points(prog: Program, activity: Purchase | LoyaltyEvent, **kwargs: object) -> int:
    return prog.quote(activity, at=kwargs.pop("at", AT), **kwargs).points  # type: ignore[arg-type]


# -- rounding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        # 10 points per 3.00 spent, on 10.00: 10 / 3 * 10 = 33.333... points
        (Rounding.DOWN, 33),
        (Rounding.HALF_UP, 33),
        (Rounding.HALF_EVEN, 33),
        (Rounding.UP, 34),
    ],
)
def test_a_third_of_a_point_rounds_per_the_rule(rounding: Rounding, expected: int) -> None:
    rule = SpendRule(name="base", points=D(10), per=D(3), rounding=rounding)
    assert points(program(rule), Purchase.of(D("10.00"))) == expected


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        # 10 points per 1.00 on 1.05: exactly 10.5 points, the tie the modes disagree on
        (Rounding.DOWN, 10),
        (Rounding.HALF_UP, 11),
        (Rounding.HALF_EVEN, 10),
        (Rounding.UP, 11),
    ],
)
def test_half_a_point_follows_the_rounding_mode(rounding: Rounding, expected: int) -> None:
    rule = SpendRule(name="base", points=D(10), rounding=rounding)
    assert points(program(rule), Purchase.of(D("1.05"))) == expected


def test_decimal_amounts_are_exact_where_floats_are_not() -> None:
    # 1 point per 0.10: lines of 0.10 and 0.20 are 0.30, exactly 3 points. In binary floats
    # 0.1 + 0.2 = 0.30000000000000004 and 0.30000000000000004 / 0.1 = 3.0000000000000004,
    # while 0.3 / 0.1 = 2.9999999999999996, which rounds down to 2 (odoo PR #153541's kind).
    rule = SpendRule(name="base", points=D(1), per=D("0.10"))
    purchase = Purchase(lines=(PurchaseLine(amount=D("0.10")), PurchaseLine(amount=D("0.20"))))
    quote = program(rule).quote(purchase, at=AT)
    assert quote.points == 3
    assert quote.breakdown[0].exact == D(3)
    assert quote.spend == D("0.30")


@pytest.mark.parametrize(
    ("rule", "lines", "expected"),
    [
        # 1 point per 3.00 on three lines of 1.00: exactly 1 point (1/3 + 1/3 + 1/3)
        (SpendRule(name="base", points=D(1), per=D(3)), ("1.00", "1.00", "1.00"), 1),
        # 3 points per 7.50 on 2.50: exactly 1 point (2.50 / 7.50 = 1/3, times 3)
        (SpendRule(name="base", points=D(3), per=D("7.50")), ("2.50",), 1),
        # 6 points per 9.00 on 3.00: exactly 2 points
        (SpendRule(name="base", points=D(6), per=D(9)), ("3.00",), 2),
    ],
)
def test_an_exact_whole_number_of_points_is_not_rounded_away(
    rule: SpendRule, lines: tuple[str, ...], expected: int
) -> None:
    # dividing each line by `per` first left 0.999...9 (60 digits) where the exact value is a
    # whole number, which Rounding.DOWN turned into one point less
    purchase = Purchase(lines=tuple(PurchaseLine(amount=D(a)) for a in lines))
    quote = program(rule).quote(purchase, at=AT)
    assert quote.breakdown[0].exact == expected
    assert quote.points == expected


def test_rounding_up_an_exact_whole_number_after_a_multiplier_keeps_it() -> None:
    # 2 points per 3.00 at x1.5 on 1.00 is exactly 1 point; 0.666...67 x 1.5 = 1.000...005
    # was rounded UP to 2
    rule = SpendRule(name="base", points=D(2), per=D(3), rounding=Rounding.UP)
    bonus = Multiplier(name="x1.5", factor=D("1.5"))
    quote = program(rule, multipliers=[bonus]).quote(Purchase.of(D("1.00")), at=AT)
    assert quote.breakdown[0].exact == 1
    assert quote.points == 1


def test_an_exact_half_point_follows_the_rounding_mode_after_a_division() -> None:
    # 1 point per 11.00 on eleven lines of 0.50: exactly 0.5, which HALF_UP makes 1 (each line
    # divided first added up to 0.4999...96, rounded to 0)
    rule = SpendRule(name="base", points=D(1), per=D(11), rounding=Rounding.HALF_UP)
    purchase = Purchase(lines=tuple(PurchaseLine(amount=D("0.50")) for _ in range(11)))
    quote = program(rule).quote(purchase, at=AT)
    assert quote.breakdown[0].exact == D("0.5")
    assert quote.points == 1


def test_a_rule_rounds_once_over_its_lines_not_per_line() -> None:
    # books 12.70 at x2 = 25.40, food 5.65 at x1 = 5.65: 31.05 -> 31 (per line: 25 + 5 = 30)
    rule = SpendRule(name="base", points=D(1))
    double = Multiplier(name="books x2", factor=D(2), categories={"books"})
    purchase = Purchase(
        lines=(
            PurchaseLine(amount=D("12.70"), category="books"),
            PurchaseLine(amount=D("5.65"), category="food"),
        )
    )
    quote = program(rule, multipliers=[double]).quote(purchase, at=AT)
    assert quote.breakdown[0].exact == D("31.05")
    assert quote.points == 31
    assert quote.breakdown[0].multipliers == ("books x2",)


def test_a_category_rule_reads_only_its_lines() -> None:
    rule = SpendRule(name="books", points=D(5), categories={"books"})
    purchase = Purchase(
        lines=(
            PurchaseLine(amount=D("3.00"), category="books"),
            PurchaseLine(amount=D("100"), category="food"),
        )
    )
    assert points(program(rule), purchase) == 15
    assert program(rule).quote(Purchase.of(D(100)), at=AT).breakdown == ()


# -- multipliers and campaign windows --------------------------------------------------------

BLACK_FRIDAY = Window(starts_at=utc(2026, 11, 27), ends_at=utc(2026, 11, 30))
TIERS = TierPolicy(tiers=[Tier(name="silver", threshold=1000), Tier(name="gold", threshold=5000)])


def stacked(stacking: Stacking) -> Program:
    return program(
        SpendRule(name="base", points=D(1)),
        multipliers=[
            Multiplier(name="gold", factor=D("1.5"), tiers={"gold"}),
            Multiplier(name="black friday", factor=D(2), window=BLACK_FRIDAY),
        ],
        stacking=stacking,
        tiers=TIERS,
    )


def test_tier_and_campaign_multipliers_multiply() -> None:
    prog = stacked(Stacking.MULTIPLY)
    friday = utc(2026, 11, 29, 23, 59)
    # 40.00 x 1.5 (gold) x 2 (campaign) = 120; silver: x 2 = 80; outside the window: 40 x 1.5
    assert points(prog, Purchase.of(D(40)), at=friday, tier="gold") == 120
    assert points(prog, Purchase.of(D(40)), at=friday, tier="silver") == 80
    assert points(prog, Purchase.of(D(40)), at=utc(2026, 11, 30), tier="gold") == 60
    assert points(prog, Purchase.of(D(40)), at=utc(2026, 11, 26, 23, 59), tier=None) == 40
    quote = prog.quote(Purchase.of(D(40)), at=friday, tier="gold")
    assert quote.breakdown[0].multipliers == ("gold", "black friday")


def test_highest_stacking_takes_the_best_multiplier_only() -> None:
    prog = stacked(Stacking.HIGHEST)
    friday = utc(2026, 11, 28)
    assert points(prog, Purchase.of(D(40)), at=friday, tier="gold") == 80  # x2 beats x1.5
    quote = prog.quote(Purchase.of(D(40)), at=friday, tier="gold")
    assert quote.breakdown[0].multipliers == ("black friday",)


def test_a_rule_window_opens_and_closes_the_rule() -> None:
    prog = program(
        SpendRule(name="base", points=D(1)),
        SpendRule(name="launch bonus", points=D(1), window=BLACK_FRIDAY),
    )
    assert points(prog, Purchase.of(D(10)), at=utc(2026, 11, 27)) == 20
    assert points(prog, Purchase.of(D(10)), at=utc(2026, 11, 30)) == 10


def test_multipliers_reach_event_rules_only_when_named() -> None:
    survey = EventRule(name="survey", event="survey_answered", points=50)
    prog = program(
        SpendRule(name="base", points=D(1)),
        survey,
        multipliers=[
            Multiplier(name="gold", factor=D("1.5"), tiers={"gold"}),
            Multiplier(name="gold survey", factor=D(3), tiers={"gold"}, rules={"survey"}),
        ],
        tiers=TIERS,
    )
    assert points(prog, LoyaltyEvent(name="survey_answered"), tier="gold") == 150
    assert points(prog, LoyaltyEvent(name="survey_answered"), tier="silver") == 50
    assert points(prog, LoyaltyEvent(name="newsletter")) == 0


def test_fixed_points_per_purchase_add_to_spend_points() -> None:
    prog = program(
        SpendRule(name="base", points=D(1)),
        EventRule(name="visit", event="purchase", points=25),
    )
    quote = prog.quote(Purchase.of(D("9.99")), at=AT)
    assert [(p.rule, p.points) for p in quote.breakdown] == [("base", 9), ("visit", 25)]
    assert quote.points == 34


# -- caps ------------------------------------------------------------------------------------


def capped() -> Program:
    return program(
        SpendRule(name="base", points=D(1)),
        EventRule(name="survey", event="survey_answered", points=50),
        caps=[Cap(name="monthly", points=1000, period=Period.MONTH, events={"purchase"})],
    )


def test_a_cap_cuts_to_the_room_left_and_reopens_next_month() -> None:
    prog = capped()
    entries = [earn(utc(2026, 1, 5), 600), earn(utc(2026, 1, 20), 300)]
    jan31 = utc(2026, 1, 31, 23, 59)
    # 900 earned in January: a 250.00 purchase on 31 January gets the 100 left
    counted = cap_usage(prog.caps, entries, jan31)
    assert counted == {"monthly": 900}
    quote = prog.quote(Purchase.of(D(250)), at=jan31, counted=counted)
    assert (quote.points, quote.uncapped, quote.capped_by) == (100, 250, ("monthly",))
    entries.append(earn(jan31, 100))
    # one minute later it is February: the cap has its 1000 again
    feb1 = utc(2026, 2, 1, 0, 0)
    counted = cap_usage(prog.caps, entries, feb1)
    assert counted == {"monthly": 0}
    assert prog.quote(Purchase.of(D(250)), at=feb1, counted=counted).points == 250


def test_a_cap_counts_only_its_events() -> None:
    prog = capped()
    entries = [earn(utc(2026, 1, 5), 1000), earn(utc(2026, 1, 6), 50, reason="survey_answered")]
    counted = cap_usage(prog.caps, entries, utc(2026, 1, 7))
    assert counted == {"monthly": 1000}
    assert points(prog, Purchase.of(D(10)), counted=counted) == 0
    assert points(prog, LoyaltyEvent(name="survey_answered"), counted=counted) == 50


def test_a_cap_period_is_read_in_its_time_zone() -> None:
    cap = Cap(name="monthly", points=1000, period="month", timezone="Europe/Berlin")
    # 31 January 23:30 UTC is 1 February 00:30 in Berlin: it counts for February
    entries = [earn(utc(2026, 1, 31, 23, 30), 700)]
    assert cap_usage([cap], entries, utc(2026, 1, 31, 22, 59)) == {"monthly": 0}
    assert cap_usage([cap], entries, utc(2026, 2, 10)) == {"monthly": 700}


def test_reversals_do_not_free_room_under_a_cap() -> None:
    prog = capped()
    entries = [
        earn(utc(2026, 1, 5), 1000),
        Entry(kind="reverse", at=utc(2026, 1, 6), points=400, reason="purchase"),
    ]
    assert cap_usage(prog.caps, entries, utc(2026, 1, 7)) == {"monthly": 1000}


# -- pending and expiry in a quote -----------------------------------------------------------


def test_pending_for_a_returns_window_then_rolling_expiry_from_activation() -> None:
    prog = program(
        SpendRule(name="base", points=D(1)),
        pending=PendingPolicy(after=relativedelta(days=30)),
        expiry=RollingExpiry(after=relativedelta(months=12)),
    )
    quote = prog.quote(Purchase.of(D(80)), at=utc(2026, 3, 10, 12))
    # 10 March + 30 days = 9 April (21 days left in March, 9 in April); + 12 months
    assert quote.pending
    assert quote.pending_until == utc(2026, 4, 9, 12)
    assert quote.expires_at == utc(2027, 4, 9, 12)


def test_explicit_activation_leaves_pending_until_open() -> None:
    prog = program(SpendRule(name="base", points=D(1)), pending=PendingPolicy(explicit=True))
    quote = prog.quote(Purchase.of(D(80)), at=AT)
    assert (quote.pending, quote.pending_until, quote.expires_at) == (True, None, None)


def test_quarter_end_expiry_in_a_quote() -> None:
    prog = program(
        SpendRule(name="base", points=D(1)),
        expiry=EndOfPeriodExpiry(period=Period.QUARTER, min_age=relativedelta(months=3)),
    )
    # 10 March + 3 months = 10 June, in Q2: expires 1 July 00:00 UTC
    assert prog.quote(Purchase.of(D(1)), at=AT).expires_at == utc(2026, 7, 1)


def test_no_points_is_a_quote_of_zero_not_an_error() -> None:
    prog = program(SpendRule(name="base", points=D(1)))
    quote = prog.quote(Purchase.of(D("0.99")), at=AT)
    assert (quote.points, quote.uncapped) == (0, 0)
