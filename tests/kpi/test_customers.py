"""Customer-success figures: a hand-worked book of customers, bad inputs."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from csmcore.errors import InvalidType, NaiveDatetimeError, ValidationError
from csmcore.kpi import CustomerRecord, customer_figures


def day(month: int, d: int = 1, year: int = 2025) -> datetime:
    return datetime(year, month, d, tzinfo=timezone.utc)


OLD = day(1, 1, 2024)


def book() -> list[CustomerRecord]:
    """Period: January 2025. At 1 Jan: a (100), b (200), c (100), d (100) = 4 customers, 500.

    - a stays at 100; b expands to 300 on 10 Jan; c churns on 20 Jan; d contracts to 50;
    - e joins on 15 Jan (new, not in the retention or NRR cohort).
    """
    return [
        CustomerRecord(customer="a", since=OLD, revenue=[(OLD, Decimal(100))]),
        CustomerRecord(
            customer="b", since=OLD, revenue=[(OLD, Decimal(200)), (day(1, 10), Decimal(300))]
        ),
        CustomerRecord(customer="c", since=OLD, until=day(1, 20), revenue=[(OLD, Decimal(100))]),
        CustomerRecord(
            customer="d", since=OLD, revenue=[(OLD, Decimal(100)), (day(1, 5), Decimal(50))]
        ),
        CustomerRecord(customer="e", since=day(1, 15), revenue=[(day(1, 15), Decimal(1000))]),
    ]


def test_a_month_by_hand() -> None:
    f = customer_figures(book(), day(1), day(2))
    # churn = 1 (c) / 4 = 0.25; retention = (end 4 [a, b, d, e] - new 1 [e]) / 4 = 0.75
    assert (f.customers_start, f.customers_end, f.new, f.churned) == (4, 4, 1, 1)
    assert (f.churn_rate, f.retention_rate) == (0.25, 0.75)
    # NRR = cohort revenue at end (a 100 + b 300 + c 0 + d 50 = 450) / at start (500) = 0.9
    assert f.revenue_start == Decimal("500.00")
    assert f.revenue_end_retained == Decimal("450.00")
    assert f.net_revenue_retention == 0.9
    # average revenue per customer = 500 / 4 = 125; CLV = 125 * margin / churn
    assert f.average_revenue == Decimal("125.00")
    assert f.lifetime_value == Decimal("500.00")
    half = customer_figures(book(), day(1), day(2), margin=Decimal("0.5"))
    assert half.lifetime_value == Decimal("250.00")


def test_no_churn_has_no_finite_lifetime_value_and_empty_books_have_no_rates() -> None:
    f = customer_figures(book()[:2], day(1), day(2))
    assert f.churn_rate == 0.0
    assert f.lifetime_value is None
    empty = customer_figures([], day(1), day(2))
    assert empty.churn_rate is None
    assert empty.net_revenue_retention is None
    assert empty.average_revenue is None


def test_revenue_steps() -> None:
    b = book()[1]
    assert b.revenue_at(day(1, 9)) == Decimal(200)
    assert b.revenue_at(day(1, 10)) == Decimal(300)
    assert book()[2].revenue_at(day(1, 21)) == Decimal(0)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: CustomerRecord(customer="x", since=OLD, until=OLD), ValidationError, "not after"),
        (
            lambda: CustomerRecord(customer="x", since=OLD.replace(tzinfo=None)),
            NaiveDatetimeError,
            "since",
        ),
        (
            lambda: CustomerRecord(customer="x", since=OLD, revenue=[(OLD, 9.99)]),
            InvalidType,
            "never float",
        ),
        (
            lambda: CustomerRecord(customer="x", since=OLD, revenue=[(OLD, Decimal(-1))]),
            ValidationError,
            ">= 0",
        ),
        (
            lambda: CustomerRecord(customer="x", since=OLD, revenue=[(OLD, Decimal("NaN"))]),
            ValidationError,
            "finite",
        ),
        (lambda: CustomerRecord(customer="x", since=OLD, revenue=[OLD]), InvalidType, "pair"),
        (lambda: CustomerRecord(customer=3, since=OLD), InvalidType, "customer=3"),  # type: ignore[arg-type]
        (lambda: customer_figures([], day(2), day(1)), ValidationError, "not after start"),
        (
            lambda: customer_figures([], day(1), day(2), margin=Decimal(2)),
            ValidationError,
            "margin",
        ),
        (lambda: customer_figures([], day(1), day(2), margin=0.5), ValidationError, "margin"),  # type: ignore[arg-type]
        (lambda: customer_figures(["a"], day(1), day(2)), InvalidType, "not a CustomerRecord"),  # type: ignore[list-item]
        (
            lambda: customer_figures([], day(1).replace(tzinfo=None), day(2)),
            NaiveDatetimeError,
            "start",
        ),
    ],
)
def test_bad_inputs(call: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        call()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"margin": Decimal("NaN")}, r"margin=Decimal\('NaN'\) is not a Decimal in 0..1"),
        ({"quantum": 0.01}, r"quantum=0.01 is not a positive finite Decimal"),
        ({"quantum": Decimal(0)}, r"quantum=Decimal\('0'\) is not a positive finite Decimal"),
        ({"quantum": Decimal("-0.01")}, r"quantum=Decimal\('-0.01'\) is not a positive"),
        ({"rounding": "UP"}, r"rounding='UP' is not a decimal rounding mode; accepted: "),
        (
            {"quantum": Decimal("1e-30")},
            r"quantum=Decimal\('1E-30'\) is finer than Decimal's 28 digits can hold for "
            r"Decimal\('100'\)",
        ),
    ],
)
def test_bad_money_settings_name_the_value(settings: dict[str, object], message: str) -> None:
    # they failed inside decimal (InvalidOperation, TypeError) with messages naming no value
    rs = [CustomerRecord(customer="a", since=OLD, revenue=[(OLD, Decimal(100))])]
    with pytest.raises(ValidationError, match=message):
        customer_figures(rs, day(1), day(2), **settings)  # type: ignore[arg-type]
