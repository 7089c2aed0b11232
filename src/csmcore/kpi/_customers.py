"""Customer-success figures over customer records: churn, retention, net revenue retention and
customer lifetime value (money is Decimal)."""

from __future__ import annotations

import decimal
from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs

from csmcore._time import require_aware
from csmcore._values import as_utc, check_text
from csmcore.errors import InvalidType, ValidationError

__all__ = ["CustomerFigures", "CustomerRecord", "customer_figures"]

_ROUNDINGS = (
    decimal.ROUND_CEILING,
    decimal.ROUND_DOWN,
    decimal.ROUND_FLOOR,
    decimal.ROUND_HALF_DOWN,
    decimal.ROUND_HALF_EVEN,
    decimal.ROUND_HALF_UP,
    decimal.ROUND_UP,
    decimal.ROUND_05UP,
)


def _aware(argument: str) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if value is None and argument == "until":
            return
        if not isinstance(value, datetime):
            raise InvalidType(
                f"{argument}={value!r} is not a datetime", field=argument, value=value
            )
        require_aware(value, argument)

    return check


def _utc(value: Any) -> Any:
    """An aware datetime in UTC (anything else as it is, for the validator to refuse): two
    datetimes of one zone compare by wall reading, fold ignored, so a record from 02:30 CEST
    to the second 02:10 (CET) of a fall-back night would end before it starts."""
    return as_utc(value) if isinstance(value, datetime) and value.tzinfo is not None else value


def _revenue(value: object) -> tuple[tuple[datetime, Decimal], ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidType(
            f"revenue={value!r} is not a sequence of (instant, Decimal) pairs",
            field="revenue",
            value=value,
        )
    out = []
    for item in value:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise InvalidType(
                f"revenue item {item!r} is not an (instant, Decimal) pair",
                field="revenue",
                value=item,
            )
        at, amount = item
        if not isinstance(at, datetime):
            raise InvalidType(
                f"revenue instant {at!r} is not a datetime", field="revenue", value=at
            )
        require_aware(at, "revenue")
        if isinstance(amount, bool) or not isinstance(amount, Decimal | int):
            raise InvalidType(
                f"revenue amount {amount!r} ({type(amount).__name__}) is not a Decimal; money "
                "is Decimal, never float",
                field="revenue",
                value=amount,
            )
        amount = Decimal(amount)
        if not amount.is_finite() or amount < 0:
            raise ValidationError(
                f"revenue amount {amount!r} is not a finite amount >= 0",
                field="revenue",
                value=amount,
            )
        out.append((as_utc(at), amount))
    out.sort(key=lambda pair: pair[0])
    return tuple(out)


@attrs.frozen(kw_only=True)
class CustomerRecord:
    """A customer: active from ``since`` until ``until`` (None: still active; a churn at
    ``until``), paying recurring ``revenue`` per period: ``(from instant, amount)`` steps, each
    amount holding until the next step. Instants are kept in UTC (given in any zone).

    Raises ValidationError for naive instants, ``until`` not after ``since``, float or negative
    amounts.
    """

    customer: str = attrs.field()
    since: datetime = attrs.field(converter=_utc, validator=_aware("since"))
    until: datetime | None = attrs.field(default=None, converter=_utc, validator=_aware("until"))
    revenue: tuple[tuple[datetime, Decimal], ...] = attrs.field(default=(), converter=_revenue)

    @customer.validator
    def _check_customer(self, _: object, value: object) -> None:
        if not isinstance(value, str):
            raise InvalidType(f"customer={value!r} is not text", field="customer", value=value)
        check_text(value, "customer")

    def __attrs_post_init__(self) -> None:
        if self.until is not None and self.until <= self.since:
            raise ValidationError(
                f"until={self.until.isoformat()} is not after since={self.since.isoformat()}",
                field="until",
                value=self.until,
            )

    def active_at(self, instant: datetime) -> bool:
        """True when the customer is active at ``instant``."""
        instant = as_utc(require_aware(instant, "instant"))
        return self.since <= instant and (self.until is None or instant < self.until)

    def revenue_at(self, instant: datetime) -> Decimal:
        """The recurring revenue at ``instant`` (0 when inactive or before the first step)."""
        if not self.active_at(instant):
            return Decimal(0)
        i = bisect_right([at for at, _ in self.revenue], as_utc(instant))
        return self.revenue[i - 1][1] if i else Decimal(0)


@attrs.frozen(kw_only=True)
class CustomerFigures:
    """Customer-success figures of the period ``[start, end)`` (formulas in
    ``docs/kpi-reference.md``). Rates are floats in 0..1 (``nrr`` may exceed 1), None when
    their denominator is zero; money is Decimal rounded to ``quantum``."""

    start: datetime
    end: datetime
    customers_start: int
    customers_end: int
    new: int
    churned: int
    churn_rate: float | None
    retention_rate: float | None
    revenue_start: Decimal
    revenue_end_retained: Decimal
    net_revenue_retention: float | None
    average_revenue: Decimal | None
    lifetime_value: Decimal | None


def customer_figures(
    records: Iterable[CustomerRecord],
    start: datetime,
    end: datetime,
    *,
    margin: Decimal = Decimal(1),
    quantum: Decimal = Decimal("0.01"),
    rounding: str = ROUND_HALF_EVEN,
) -> CustomerFigures:
    """Churn, retention, net revenue retention and lifetime value over ``[start, end)``.

    - churn rate = customers active at ``start`` who left by ``end`` / customers at start;
    - retention rate = (customers at end - new customers) / customers at start;
    - net revenue retention = recurring revenue at ``end`` of the customers active at
      ``start`` (churned ones count 0) / their recurring revenue at ``start``;
    - lifetime value = average revenue per customer at start x ``margin`` / churn rate (None
      when nobody churned: the formula has no finite value).

    Raises NaiveDatetimeError for naive bounds, ValidationError when ``end <= start``,
    ``margin`` is not a Decimal in 0..1, ``quantum`` not a positive finite Decimal (or too fine
    for Decimal's precision) or ``rounding`` not one of :mod:`decimal`'s rounding modes.

    >>> from datetime import timezone
    >>> def day(y, m, d):
    ...     return datetime(y, m, d, tzinfo=timezone.utc)
    >>> jan, feb, old = day(2025, 1, 1), day(2025, 2, 1), day(2024, 1, 1)
    >>> rs = [CustomerRecord(customer="a", since=old, revenue=[(old, Decimal(100))]),
    ...       CustomerRecord(customer="b", since=old, until=day(2025, 1, 15),
    ...                      revenue=[(old, Decimal(100))])]
    >>> f = customer_figures(rs, jan, feb)
    >>> f.churn_rate, f.retention_rate, f.net_revenue_retention, f.lifetime_value
    (0.5, 0.5, 0.5, Decimal('200.00'))
    """
    given = (start, end)  # reported as given; compared in UTC (one zone compares by wall reading)
    start = as_utc(require_aware(start, "start"))
    end = as_utc(require_aware(end, "end"))
    if end <= start:
        raise ValidationError(
            f"end={given[1].isoformat()} is not after start={given[0].isoformat()}",
            field="end",
            value=given[1],
        )
    if (
        not isinstance(margin, Decimal)
        or margin.is_nan()
        or not (Decimal(0) <= margin <= Decimal(1))
    ):
        raise ValidationError(
            f"margin={margin!r} is not a Decimal in 0..1", field="margin", value=margin
        )
    if not isinstance(quantum, Decimal) or not quantum.is_finite() or quantum <= 0:
        raise ValidationError(
            f"quantum={quantum!r} is not a positive finite Decimal (Decimal('0.01') for cents)",
            field="quantum",
            value=quantum,
        )
    if rounding not in _ROUNDINGS:
        raise ValidationError(
            f"rounding={rounding!r} is not a decimal rounding mode; accepted: "
            f"{', '.join(_ROUNDINGS)}",
            field="rounding",
            value=rounding,
        )

    def money(amount: Decimal) -> Decimal:
        try:
            return amount.quantize(quantum, rounding)
        except decimal.InvalidOperation:
            raise ValidationError(
                f"quantum={quantum!r} is finer than Decimal's {decimal.getcontext().prec} "
                f"digits can hold for {amount!r}; expected a coarser quantum",
                field="quantum",
                value=quantum,
            ) from None

    at_start = at_end = new = churned = 0
    revenue_start = revenue_end = Decimal(0)
    for record in records:
        if not isinstance(record, CustomerRecord):
            raise InvalidType(f"{record!r} is not a CustomerRecord", field="records", value=record)
        was = record.active_at(start)
        still = record.until is None or record.until > end
        if was:
            at_start += 1
            revenue_start += record.revenue_at(start)
            if still:
                revenue_end += record.revenue_at(end)
            else:
                churned += 1
        elif start < record.since <= end:
            new += 1
        if record.since <= end and still:
            at_end += 1
    churn = churned / at_start if at_start else None
    retention = (at_end - new) / at_start if at_start else None
    nrr = float(revenue_end / revenue_start) if revenue_start else None
    arpa = money(revenue_start / at_start) if at_start else None
    clv = None
    if arpa is not None and churn:
        clv = money(revenue_start / at_start * margin / (Decimal(churned) / at_start))
    return CustomerFigures(
        start=given[0],
        end=given[1],
        customers_start=at_start,
        customers_end=at_end,
        new=new,
        churned=churned,
        churn_rate=churn,
        retention_rate=retention,
        revenue_start=money(revenue_start),
        revenue_end_retained=money(revenue_end),
        net_revenue_retention=nrr,
        average_revenue=arpa,
        lifetime_value=clv,
    )
