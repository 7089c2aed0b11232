"""Programs, rules and tiers are checked when built: each bad value raises a ValidationError
naming it and what is accepted; bad stored data raises SerializationError."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

from csmcore.errors import NaiveDatetimeError, SerializationError, ValidationError
from csmcore.loyalty import (
    Cap,
    EndOfPeriodExpiry,
    EventRule,
    LoyaltyEvent,
    Multiplier,
    PendingPolicy,
    Program,
    Purchase,
    PurchaseLine,
    RollingExpiry,
    SpendRule,
    Tier,
    TierPolicy,
    Window,
)
from csmcore.serialization import from_data, to_data
from tests.loyalty.program_support import utc

BASE = SpendRule(name="base", points=Decimal(1))


def escape(text: str) -> str:
    return "".join("\\" + c if c in "[](){}.*+?^$|" else c for c in text)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: PurchaseLine(amount=19.99),
            "amount=19.99 is a float; money and rates are Decimal",
        ),
        (lambda: PurchaseLine(amount=Decimal("-1")), "amount=Decimal('-1') must be zero or more"),
        (lambda: PurchaseLine(amount=Decimal("NaN")), "is not a finite number"),
        (lambda: PurchaseLine(amount="12.50"), "amount='12.50'"),
        (lambda: PurchaseLine(amount=Decimal(1), category=""), "category=''"),
        (lambda: Purchase(lines=()), "lines=() is empty"),
        (lambda: Purchase(lines=[Decimal(1)]), "PurchaseLine"),
        (lambda: LoyaltyEvent(name="purchase"), "use Purchase for purchases"),
        (lambda: LoyaltyEvent(name=" "), "name=' ' is not a name"),
        (lambda: SpendRule(name="r", points=Decimal(0)), "points=Decimal('0') must be positive"),
        (lambda: SpendRule(name="r", points=Decimal(1), per=0), "per=0 must be positive"),
        (
            lambda: SpendRule(name="r", points=Decimal(1), rounding="nearest"),
            "rounding='nearest' is not a Rounding; accepted: 'down', 'half_up'",
        ),
        (lambda: SpendRule(name="r", points=Decimal(1), categories="books"), "categories='books'"),
        (lambda: EventRule(name="r", event="signup", points=-5), "points=-5 must be zero or more"),
        (lambda: EventRule(name="r", event="signup", points=True), "points=True"),
        (lambda: Multiplier(name="m", factor=Decimal(0)), "factor=Decimal('0') must be positive"),
        (lambda: Multiplier(name="m", factor=1.5), "factor=1.5 is a float"),
        (lambda: Cap(name="c", points=10, period="week"), "period='week' is not a Period"),
        (lambda: Cap(name="c", points=10, period="month", timezone="Nowhere/City"), "Nowhere/City"),
        (
            lambda: Window(starts_at=utc(2026, 2, 1), ends_at=utc(2026, 1, 1)),
            "ends_at=2026-01-01T00:00:00+00:00 is not after starts_at",
        ),
        (
            lambda: Window(starts_at=datetime(2026, 1, 1), ends_at=utc(2026, 2, 1)),
            "starts_at",
        ),
        (lambda: PendingPolicy(after=relativedelta(days=-3)), "is negative"),
        (lambda: PendingPolicy(after=relativedelta()), "is zero"),
        (lambda: PendingPolicy(after=30), "after=30 is not a period of time"),
        (
            lambda: PendingPolicy(after=relativedelta(days=3), explicit=True),
            "not both",
        ),
        (lambda: RollingExpiry(after=relativedelta(month=3)), "sets absolute fields ['month']"),
        (lambda: EndOfPeriodExpiry(period="decade"), "period='decade' is not a Period"),
        (lambda: Tier(name="gold", threshold=-1), "threshold=-1 must be zero or more"),
        (lambda: TierPolicy(tiers=[]), "tiers=() is empty"),
        (
            lambda: TierPolicy(
                tiers=[Tier(name="gold", threshold=10), Tier(name="silver", threshold=10)]
            ),
            "tiers ['gold', 'silver'] share the threshold 10",
        ),
        (
            lambda: TierPolicy(tiers=[Tier(name="a", threshold=1), Tier(name="a", threshold=2)]),
            "the name 'a' is used twice",
        ),
        (
            lambda: TierPolicy(tiers=[Tier(name="a", threshold=Decimal("1.5"))]),
            "threshold=1.5 is not a whole number of points",
        ),
        (lambda: TierPolicy(tiers=[Tier(name="a", threshold=1)], valid_for=11), "valid_for=11"),
        (
            lambda: TierPolicy(tiers=[Tier(name="a", threshold=1)], downgrade="two"),
            "downgrade='two'",
        ),
        (lambda: Program(name="p", rules=[]), "rules=() is empty"),
        (lambda: Program(name="p", rules=[BASE, BASE]), "the name 'base' is used twice"),
        (lambda: Program(name="p", rules=[BASE], expiry="never"), "expiry='never'"),
        (
            lambda: Program(
                name="p", rules=[BASE], multipliers=[Multiplier(name="m", factor=2, rules={"x"})]
            ),
            "multiplier 'm': rules ['x'] are not rules of the program; accepted: ['base']",
        ),
        (
            lambda: Program(
                name="p",
                rules=[BASE],
                multipliers=[Multiplier(name="m", factor=2, tiers={"gold"})],
            ),
            "tiers ['gold'] are not tiers of the program; accepted: none",
        ),
    ],
)
def test_bad_values_are_refused_when_built(build: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=escape(message)):
        build()


PROGRAM = Program(
    name="p",
    rules=[BASE],
    caps=[Cap(name="monthly", points=100, period="month")],
    tiers=TierPolicy(tiers=[Tier(name="gold", threshold=10)]),
)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"at": datetime(2026, 1, 1)}, NaiveDatetimeError, "at"),
        ({"at": utc(2026, 1, 1), "tier": "platinum"}, ValidationError, "tier='platinum'"),
        ({"at": utc(2026, 1, 1), "counted": {"monthly": -1}}, ValidationError, "counted"),
        ({"at": utc(2026, 1, 1), "counted": {"monthly": 1.0}}, ValidationError, "counted"),
    ],
)
def test_bad_quote_arguments(kwargs: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=escape(message)):
        PROGRAM.quote(Purchase.of(Decimal(1)), **kwargs)


def test_a_quote_of_something_else_than_an_activity_is_refused() -> None:
    with pytest.raises(ValidationError, match="a Purchase or a LoyaltyEvent"):
        PROGRAM.quote(Decimal(10), at=utc(2026, 1, 1))  # type: ignore[arg-type]


def test_a_tier_in_a_program_without_tiers_is_refused() -> None:
    with pytest.raises(ValidationError, match="this program has no tiers"):
        Program(name="p", rules=[BASE]).quote(
            Purchase.of(Decimal(1)), at=utc(2026, 1, 1), tier="gold"
        )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["rules"][0].update(type="loyalty.nope"), "@ $.rules[0]"),
        (
            lambda d: d["rules"][0].update(points="lots"),
            "'lots' is not a decimal string such as '12.50' @ $.rules[0].points",
        ),
        (
            lambda d: d["rules"][0].update(points="-1"),
            "points=Decimal('-1') must be positive @ $.rules[0]",
        ),
        (
            lambda d: d.update(
                expiry={"type": "loyalty.rolling_expiry", "after": {"fortnights": 1}}
            ),
            "unknown keys ['fortnights']",
        ),
        (
            lambda d: d.update(expiry={"type": "loyalty.rolling_expiry", "after": {"days": -1}}),
            "days=-1 is not a whole number",
        ),
        (
            lambda d: d.update(expiry={"type": "loyalty.rolling_expiry", "after": {"days": True}}),
            "days=True is not a whole number",
        ),
        (lambda d: d.update(extra=1), "unknown keys ['extra'] @ $"),
        (lambda d: d["tiers"]["tiers"][0].update(threshold=0.5), "@ $.tiers.tiers[0].threshold"),
    ],
)
def test_bad_stored_programs_raise_serialization_errors(mutate: Any, message: str) -> None:
    data = to_data(PROGRAM)
    mutate(data)
    with pytest.raises(SerializationError, match=escape(message)):
        from_data(data, Program)


def test_a_timedelta_is_accepted_where_a_period_of_time_is() -> None:
    policy = PendingPolicy(after=timedelta(days=2, hours=3))
    assert policy.pending_until(utc(2026, 1, 1)) == utc(2026, 1, 3, 3)
