"""Properties of the program: quotes are never negative and never exceed the rules, caps are
never exceeded over any sequence of activities, tiers are monotone in qualifying points and
never below what the running window meets, programs round-trip through data."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.loyalty import (
    Cap,
    Downgrade,
    EndOfPeriodExpiry,
    EventRule,
    LoyaltyEvent,
    Multiplier,
    NeverExpires,
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
    period_bounds,
    tier_status,
)
from csmcore.serialization import from_data, from_document, to_data, to_document
from tests.loyalty.program_support import Entry, earn, utc

START = utc(2026, 1, 1)
money = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False)
rate = st.decimals(min_value=Decimal("0.01"), max_value=100, places=2, allow_nan=False)
categories = st.sampled_from(["books", "food", "toys"])
instants = st.integers(0, 4 * 365 * 24 * 60).map(lambda m: START + timedelta(minutes=m))
zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
TIER_NAMES = ("bronze", "silver", "gold")


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(instants)
    return Window(starts_at=start, ends_at=start + timedelta(days=draw(st.integers(1, 60))))


@st.composite
def programs(draw: st.DrawFn) -> Program:
    rules: list[SpendRule | EventRule] = [
        SpendRule(
            name=f"spend{i}",
            points=draw(rate),
            per=draw(rate),
            rounding=draw(st.sampled_from(Rounding)),
            categories=draw(st.frozensets(categories, max_size=2)),
            window=draw(st.none() | windows()),
        )
        for i in range(draw(st.integers(1, 3)))
    ]
    rules += [
        EventRule(
            name=f"event{i}",
            event=draw(st.sampled_from(["purchase", "survey", "signup"])),
            points=draw(st.integers(0, 500)),
            rounding=draw(st.sampled_from(Rounding)),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    names = [r.name for r in rules]
    multipliers = [
        Multiplier(
            name=f"m{i}",
            factor=draw(rate),
            tiers=draw(st.frozensets(st.sampled_from(TIER_NAMES), max_size=2)),
            categories=draw(st.frozensets(categories, max_size=2)),
            window=draw(st.none() | windows()),
            rules=draw(st.frozensets(st.sampled_from(names), max_size=2)),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    caps = [
        Cap(
            name=f"cap{i}",
            points=draw(st.integers(0, 5000)),
            period=draw(st.sampled_from(Period)),
            timezone=draw(zones),
            events=draw(st.frozensets(st.sampled_from(["purchase", "survey"]), max_size=1)),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    expiry = draw(
        st.sampled_from(
            [
                NeverExpires(),
                RollingExpiry(after=relativedelta(months=12)),
                EndOfPeriodExpiry(period=Period.QUARTER, min_age=relativedelta(months=3)),
            ]
        )
    )
    pending = draw(
        st.sampled_from(
            [PendingPolicy(), PendingPolicy(explicit=True), PendingPolicy(after=timedelta(days=30))]
        )
    )
    tiers = TierPolicy(
        tiers=[Tier(name=n, threshold=(i + 1) * 1000) for i, n in enumerate(TIER_NAMES)],
        downgrade=draw(st.sampled_from(Downgrade)),
        grace=draw(st.sampled_from([relativedelta(), relativedelta(months=3)])),
    )
    return Program(
        name="p",
        rules=rules,
        multipliers=multipliers,
        stacking=draw(st.sampled_from(Stacking)),
        caps=caps,
        pending=pending,
        expiry=expiry,
        tiers=tiers,
    )


purchases = st.builds(
    lambda lines: Purchase(lines=lines),
    st.lists(
        st.builds(PurchaseLine, amount=money, category=st.none() | categories),
        min_size=1,
        max_size=4,
    ).map(tuple),
)
activities = purchases | st.sampled_from(["survey", "signup", "other"]).map(
    lambda name: LoyaltyEvent(name=name)
)


@settings(max_examples=200)
@given(programs(), activities, instants, st.none() | st.sampled_from(TIER_NAMES))
def test_quotes_are_never_negative_and_add_up(
    program: Program, activity: Purchase | LoyaltyEvent, at: datetime, tier: str | None
) -> None:
    quote = program.quote(activity, at=at, tier=tier)
    assert 0 <= quote.points <= quote.uncapped
    assert quote.uncapped == sum(part.points for part in quote.breakdown)
    for part in quote.breakdown:
        assert part.exact >= 0
        assert abs(part.points - part.exact) < 1  # rounding moves less than one point
    if quote.expires_at is not None:
        assert quote.expires_at > at


def _rounded(value: Fraction, rounding: Rounding) -> int:
    """``value`` rounded as ``rounding`` says, worked out on an exact fraction."""
    low, high = math.floor(value), math.ceil(value)
    if rounding is Rounding.DOWN:
        return low
    if rounding is Rounding.UP:
        return high
    rest = value - low
    if rest != Fraction(1, 2):
        return high if rest > Fraction(1, 2) else low
    return high if rounding is Rounding.HALF_UP or low % 2 else low


# small round amounts and rates often make whole or half points exactly (1.00 / 3 x 3)
_cents = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False) | st.sampled_from(
    [Decimal("0.50"), Decimal("1.00"), Decimal("2.50"), Decimal(3)]
)
_rates = st.decimals(
    min_value=Decimal("0.01"), max_value=1000, places=2, allow_nan=False
) | st.sampled_from([Decimal("1.5"), Decimal(2), Decimal(3), Decimal("7.50"), Decimal(11)])


@settings(max_examples=300)
@given(
    st.lists(_cents, min_size=1, max_size=8),
    _rates,
    _rates,
    st.lists(_rates, max_size=3),
    st.sampled_from(Rounding),
    st.sampled_from(Stacking),
)
def test_a_spend_rule_rounds_the_exact_value(
    amounts: list[Decimal],
    per: Decimal,
    points: Decimal,
    factors: list[Decimal],
    rounding: Rounding,
    stacking: Stacking,
) -> None:
    # the points are the exact rational value (lines x multipliers x points / per) rounded
    # once: a division per line left 0.999...9 where the value is exactly 1
    program = Program(
        name="shop",
        rules=[SpendRule(name="base", points=points, per=per, rounding=rounding)],
        multipliers=[Multiplier(name=f"m{i}", factor=f) for i, f in enumerate(factors)],
        stacking=stacking,
    )
    purchase = Purchase(lines=tuple(PurchaseLine(amount=a) for a in amounts))
    factor = Fraction(1)
    if stacking is Stacking.MULTIPLY:
        for f in factors:
            factor *= Fraction(f)
    elif factors:
        factor = Fraction(max(factors))
    exact = sum(map(Fraction, amounts), Fraction(0)) * factor * Fraction(points) / Fraction(per)
    assert program.quote(purchase, at=utc(2026, 1, 1)).points == _rounded(exact, rounding)


@settings(max_examples=100)
@given(
    programs(),
    st.lists(st.tuples(st.integers(1, 20 * 24 * 60), activities), min_size=1, max_size=25),
)
def test_caps_are_never_exceeded_over_any_sequence(
    program: Program, steps: list[tuple[int, Purchase | LoyaltyEvent]]
) -> None:
    entries: list[Entry] = []
    at = START
    for minutes, activity in steps:
        at += timedelta(minutes=minutes)
        counted = cap_usage(program.caps, entries, at)
        quote = program.quote(activity, at=at, counted=counted)
        if quote.points:
            entries.append(earn(at, quote.points, reason=activity.kind))
    for cap in program.caps:
        per_period: dict[datetime, int] = {}
        for entry in entries:
            if cap.counts(entry.reason):
                start, _ = cap.bounds(entry.at)
                per_period[start] = per_period.get(start, 0) + entry.points
        assert all(total <= cap.points for total in per_period.values())


TIERS = TierPolicy(tiers=[Tier(name=n, threshold=(i + 1) * 1000) for i, n in enumerate(TIER_NAMES)])
tier_policies = st.builds(
    lambda downgrade, grace, rolling, zone: TierPolicy(
        tiers=TIERS.tiers, downgrade=downgrade, grace=grace, rolling=rolling, timezone=zone
    ),
    st.sampled_from(Downgrade),
    st.sampled_from([relativedelta(), relativedelta(months=3)]),
    st.sampled_from([None, relativedelta(months=12)]),
    zones,
)
histories = st.lists(
    st.builds(lambda at, points: earn(at, points), instants, st.integers(1, 3000)), max_size=12
)


@settings(max_examples=200)
@given(tier_policies, histories, st.builds(earn, instants, st.integers(1, 3000)), instants)
def test_more_qualifying_points_never_lower_the_tier(
    policy: TierPolicy, history: list[Entry], extra: Entry, at: datetime
) -> None:
    without = tier_status(policy, history, at)
    with_more = tier_status(policy, [*history, extra], at)
    assert with_more.rank >= without.rank


@settings(max_examples=200)
@given(tier_policies, histories, instants)
def test_a_member_holds_at_least_the_tier_the_running_window_meets(
    policy: TierPolicy, history: list[Entry], at: datetime
) -> None:
    status = tier_status(policy, history, at)
    assert status.rank >= policy.rank(policy.met(status.qualifying))
    assert status.rank == policy.rank(status.tier)
    if status.tier is not None:
        assert status.since is not None
        assert status.since <= at
        assert status.valid_until is not None
        assert status.review_at is not None
        assert status.review_at > at
    # the same inputs give the same status, whatever the order of the entries
    assert tier_status(policy, list(reversed(history)), at) == status


@settings(max_examples=100)
@given(programs())
def test_programs_round_trip_through_json(program: Program) -> None:
    data = json.loads(json.dumps(to_data(program)))
    assert from_data(data, Program) == program
    assert from_document(json.loads(json.dumps(to_document(program)))) == program


@given(instants, st.sampled_from(Period), zones)
def test_period_bounds_hold_the_instant(at: datetime, period: Period, zone: str) -> None:
    start, end = period_bounds(at, period, zone)
    assert start <= at < end
    assert period_bounds(start, period, zone) == (start, end)
    assert period_bounds(end, period, zone)[0] == end
