"""Earn rules: what a member earns for a purchase or an event (pure).

Money is a :class:`~decimal.Decimal` (an ``int`` is accepted, a ``float`` never: ``0.1 + 0.2``
is how a shop ends up showing "268.28000000000003 points"). Each rule computes its exact
contribution as a Decimal (base times its multipliers) and rounds it once, with its own
:class:`Rounding`; the quote is the sum of the rounded contributions, then capped.
"""

from __future__ import annotations

import decimal
import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Final, Protocol

import attrs

from csmcore._time import in_range_us, require_aware
from csmcore._values import as_utc, check_identifier, coerce_enum, frozen_set, instance_of
from csmcore.errors import ValidationError, invalid_type
from csmcore.loyalty._expiry import Period, Rounding, check_zone, period_bounds
from csmcore.serialization import serializable

__all__ = [
    "Activity",
    "AppliedRule",
    "Cap",
    "EarnQuote",
    "EarnRule",
    "EntryLike",
    "EventRule",
    "LoyaltyEvent",
    "Multiplier",
    "Purchase",
    "PurchaseLine",
    "SpendRule",
    "Stacking",
    "Window",
    "cap_usage",
    "check_money",
]

_CONTEXT: Final = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[])
"""Exact enough for any amount a shop handles: 60 significant digits before rounding."""


def check_money(value: object, argument: str, *, positive: bool = False) -> Decimal:
    """``value`` as a finite Decimal that is not negative (positive when ``positive``).

    An ``int`` is converted; a ``float``, a ``bool``, a string or a non-finite Decimal raise
    :class:`~csmcore.errors.ValidationError` naming ``argument``.
    """
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        if isinstance(value, float):
            raise ValidationError(
                f"{argument}={value!r} is a float; money and rates are Decimal "
                f"(Decimal({str(value)!r})) so that no binary rounding creeps in",
                field=argument,
                value=value,
            )
        raise invalid_type(argument, value, "a Decimal (or an int)")
    number = Decimal(value)
    if not number.is_finite():
        raise ValidationError(
            f"{argument}={value!r} is not a finite number", field=argument, value=value
        )
    if number < 0 or (positive and number == 0):
        raise ValidationError(
            f"{argument}={value!r} must be {'positive' if positive else 'zero or more'}",
            field=argument,
            value=value,
        )
    return number


def _points(_: object, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(attribute.name, value, "a whole number of points (an int)")
    if value < 0:
        raise ValidationError(
            f"{attribute.name}={value!r} must be zero or more points",
            field=attribute.name,
            value=value,
        )


def _name(_: object, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(
            f"{attribute.name}={value!r} is not a name; expected a non-empty string",
            field=attribute.name,
            value=value,
        )
    check_identifier(value, attribute.name)


def _optional_name(instance: object, attribute: Any, value: Any) -> None:
    if value is not None:
        _name(instance, attribute, value)


def check_names(value: object, argument: str) -> frozenset[str]:
    """``value`` (a collection of non-empty strings, not a string) as a frozenset."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(
            f"{argument}={value!r} is not a collection of names; expected e.g. "
            f"{{'gold', 'platinum'}} (a single string is refused)",
            field=argument,
            value=value,
        )
    out = frozen_set(value, argument, "names (non-empty strings)")
    for item in out:
        if not isinstance(item, str) or not item.strip():
            raise ValidationError(
                f"{argument} holds {item!r}, which is not a name (a non-empty string)",
                field=argument,
                value=value,
            )
        check_identifier(item, argument)
    return out


def _rounding(value: object) -> Rounding:
    return coerce_enum(Rounding, value, "rounding")


# -- activities ---------------------------------------------------------------------------


def _amount(value: Any) -> Decimal:
    return check_money(value, "amount")


@serializable("loyalty.purchase_line", aliases=("csmcore.loyalty:PurchaseLine",))
@attrs.frozen(kw_only=True)
class PurchaseLine:
    """One line of a purchase: an ``amount`` of money (Decimal, zero or more) in a product
    ``category`` (None: uncategorised)."""

    amount: Decimal = attrs.field(converter=_amount)
    category: str | None = attrs.field(default=None, validator=_optional_name)


def _lines(value: object) -> tuple[PurchaseLine, ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise invalid_type("lines", value, "a sequence of PurchaseLine")
    lines = tuple(value)
    if not lines:
        raise ValidationError("lines=() is empty; a purchase has at least one line", field="lines")
    for line in lines:
        if not isinstance(line, PurchaseLine):
            raise invalid_type("lines", line, "PurchaseLine values")
    return lines


@serializable("loyalty.purchase", aliases=("csmcore.loyalty:Purchase",))
@attrs.frozen(kw_only=True)
class Purchase:
    """A purchase: its lines and an optional ``reference`` (the order number).

    >>> Purchase.of(Decimal("19.99"), category="books").amount
    Decimal('19.99')
    """

    lines: tuple[PurchaseLine, ...] = attrs.field(converter=_lines)
    reference: str | None = attrs.field(default=None, validator=_optional_name)

    kind: ClassVar[str] = "purchase"
    """The activity kind purchases have (what :class:`EventRule` ``event`` and caps match)."""

    @classmethod
    def of(
        cls, amount: Decimal | int, *, category: str | None = None, reference: str | None = None
    ) -> Purchase:
        """A purchase of one line."""
        return cls(lines=(PurchaseLine(amount=amount, category=category),), reference=reference)

    @property
    def amount(self) -> Decimal:
        """The total amount of the lines, exact (whatever decimal context the caller set)."""
        with decimal.localcontext(_CONTEXT):
            return sum((line.amount for line in self.lines), Decimal(0))


@serializable("loyalty.event", aliases=("csmcore.loyalty:LoyaltyEvent",))
@attrs.frozen(kw_only=True)
class LoyaltyEvent:
    """Something other than a purchase that earns points: ``name`` is its kind
    (``"survey_answered"``, ``"signup"``, ``"sla_breach"``), ``reference`` what it is about."""

    name: str = attrs.field(validator=_name)
    reference: str | None = attrs.field(default=None, validator=_optional_name)

    def __attrs_post_init__(self) -> None:
        if self.name == Purchase.kind:
            raise ValidationError(
                "name='purchase' is the kind of Purchase; use Purchase for purchases",
                field="name",
                value=self.name,
            )

    @property
    def kind(self) -> str:
        """The activity kind: the event's name."""
        return self.name

    @property
    def amount(self) -> None:
        """Events carry no money."""
        return None


Activity = Purchase | LoyaltyEvent
"""What earns points: a purchase or an event."""


# -- windows, rules, multipliers, caps ----------------------------------------------------


def check_instant(value: object, argument: str) -> datetime:
    """``value`` (an aware datetime in the supported range) in UTC."""
    if not isinstance(value, datetime):
        raise invalid_type(argument, value, "an aware datetime")
    require_aware(value, argument)
    in_range_us(value, argument)
    return as_utc(value)


def _starts_at(value: Any) -> datetime:
    return check_instant(value, "starts_at")


def _ends_at(value: Any) -> datetime:
    return check_instant(value, "ends_at")


@serializable("loyalty.window", aliases=("csmcore.loyalty:Window",))
@attrs.frozen(kw_only=True)
class Window:
    """A campaign window: from ``starts_at`` (included) to ``ends_at`` (excluded), UTC."""

    starts_at: datetime = attrs.field(converter=_starts_at)
    ends_at: datetime = attrs.field(converter=_ends_at)

    def __attrs_post_init__(self) -> None:
        if self.ends_at <= self.starts_at:
            raise ValidationError(
                f"ends_at={self.ends_at.isoformat()} is not after starts_at="
                f"{self.starts_at.isoformat()}; a window ends after it starts",
                field="ends_at",
                value=self.ends_at,
            )

    def __contains__(self, at: object) -> bool:
        return isinstance(at, datetime) and self.starts_at <= at < self.ends_at


_window_field = attrs.field(
    default=None, validator=attrs.validators.optional(instance_of(Window, "a Window or None"))
)


def _rule_points(value: Any) -> Decimal:
    return check_money(value, "points", positive=True)


def _per(value: Any) -> Decimal:
    return check_money(value, "per", positive=True)


def _categories(value: Any) -> frozenset[str]:
    return check_names(value, "categories")


@serializable("loyalty.spend_rule", aliases=("csmcore.loyalty:SpendRule",))
@attrs.frozen(kw_only=True)
class SpendRule:
    """``points`` points per ``per`` units of money spent (``points=Decimal(1), per=Decimal(1)``:
    one point per euro), on the purchase lines of ``categories`` (empty: every line), while
    ``window`` is open (None: always). The rule's exact total (lines times their multipliers)
    is rounded once with ``rounding``.
    """

    name: str = attrs.field(validator=_name)
    points: Decimal = attrs.field(converter=_rule_points)
    per: Decimal = attrs.field(default=Decimal(1), converter=_per)
    rounding: Rounding = attrs.field(default=Rounding.DOWN, converter=_rounding)
    categories: frozenset[str] = attrs.field(factory=frozenset, converter=_categories)
    window: Window | None = _window_field


@serializable("loyalty.event_rule", aliases=("csmcore.loyalty:EventRule",))
@attrs.frozen(kw_only=True)
class EventRule:
    """A fixed number of ``points`` for each activity of kind ``event``: ``"purchase"`` (a
    bonus per purchase) or a custom event name (``"survey_answered"``, ``"sla_breach"``),
    while ``window`` is open. Multipliers apply only when they name the rule in ``rules``;
    the result is rounded with ``rounding``.
    """

    name: str = attrs.field(validator=_name)
    event: str = attrs.field(validator=_name)
    points: int = attrs.field(validator=_points)
    rounding: Rounding = attrs.field(default=Rounding.DOWN, converter=_rounding)
    window: Window | None = _window_field


EarnRule = SpendRule | EventRule
"""One of the earn rules."""


def _factor_value(value: Any) -> Decimal:
    return check_money(value, "factor", positive=True)


def _tier_names(value: Any) -> frozenset[str]:
    return check_names(value, "tiers")


def _rule_names(value: Any) -> frozenset[str]:
    return check_names(value, "rules")


@serializable("loyalty.multiplier", aliases=("csmcore.loyalty:Multiplier",))
@attrs.frozen(kw_only=True)
class Multiplier:
    """Multiplies what rules earn by ``factor`` (a Decimal, e.g. ``Decimal("1.5")``).

    It applies when every filter given holds: the member's tier is in ``tiers``, the purchase
    line's category is in ``categories`` (a multiplier with categories never applies to event
    rules), ``at`` is in ``window``. ``rules`` names the rules it applies to; empty means every
    :class:`SpendRule` (event rules are multiplied only when named).
    """

    name: str = attrs.field(validator=_name)
    factor: Decimal = attrs.field(converter=_factor_value)
    tiers: frozenset[str] = attrs.field(factory=frozenset, converter=_tier_names)
    categories: frozenset[str] = attrs.field(factory=frozenset, converter=_categories)
    window: Window | None = _window_field
    rules: frozenset[str] = attrs.field(factory=frozenset, converter=_rule_names)

    def applies(
        self, rule: EarnRule, *, tier: str | None, category: str | None, at: datetime
    ) -> bool:
        """True when this multiplier multiplies ``rule`` for that tier, category and instant."""
        if self.rules:
            if rule.name not in self.rules:
                return False
        elif not isinstance(rule, SpendRule):
            return False
        if self.tiers and tier not in self.tiers:
            return False
        if self.categories and (isinstance(rule, EventRule) or category not in self.categories):
            return False
        return self.window is None or at in self.window


class Stacking(enum.StrEnum):
    """How several multipliers that apply combine: their product, or the highest alone."""

    MULTIPLY = "multiply"
    HIGHEST = "highest"


def _cap_period(value: Any) -> Period:
    return coerce_enum(Period, value, "period")


def _events(value: Any) -> frozenset[str]:
    return check_names(value, "events")


@serializable("loyalty.cap", aliases=("csmcore.loyalty:Cap",))
@attrs.frozen(kw_only=True)
class Cap:
    """At most ``points`` points per calendar ``period`` (read in ``timezone``) from the
    activities of kinds ``events`` (empty: every activity; ``{"purchase"}``: purchases only).

    What counts against a cap is what was *earned* (the EARN entries of the ledger, pending
    or not) in the period; a later return does not free room, so earn-return-earn cannot
    collect more than the cap.
    """

    name: str = attrs.field(validator=_name)
    points: int = attrs.field(validator=_points)
    period: Period = attrs.field(converter=_cap_period)
    timezone: str = attrs.field(default="UTC", validator=check_zone)
    events: frozenset[str] = attrs.field(factory=frozenset, converter=_events)

    def counts(self, kind: str | None) -> bool:
        """True when activities of ``kind`` count against (and are limited by) this cap."""
        return not self.events or kind in self.events

    def bounds(self, at: datetime) -> tuple[datetime, datetime]:
        """The cap period containing ``at``: ``(start, end)`` in UTC, end excluded."""
        return period_bounds(at, self.period, self.timezone)


# -- quotes -------------------------------------------------------------------------------


@serializable("loyalty.applied_rule", aliases=("csmcore.loyalty:AppliedRule",))
@attrs.frozen(kw_only=True)
class AppliedRule:
    """One rule's part of a quote: its exact Decimal contribution, the whole points it gave
    after its rounding, and the multipliers that applied (by name)."""

    rule: str
    exact: Decimal
    points: int
    multipliers: tuple[str, ...] = ()


@serializable("loyalty.earn_quote", aliases=("csmcore.loyalty:EarnQuote",))
@attrs.frozen(kw_only=True)
class EarnQuote:
    """What an activity earns at an instant: computed by :meth:`Program.quote`, posted by
    :func:`csmcore.services.earn_points`.

    ``points`` is what is granted (never negative; after caps), ``uncapped`` what the rules
    gave before caps, ``capped_by`` the caps that cut it. ``pending`` says the points wait:
    until ``pending_until`` (UTC), or until an explicit activation when that is None.
    ``expires_at`` (UTC, None: never) is counted from when the points become available;
    for points awaiting an explicit activation it is None here, and
    :func:`csmcore.services.activate_points` sets it when they are activated.
    """

    kind: str
    at: datetime
    points: int
    uncapped: int
    breakdown: tuple[AppliedRule, ...]
    capped_by: tuple[str, ...] = ()
    pending: bool = False
    pending_until: datetime | None = None
    expires_at: datetime | None = None
    spend: Decimal | None = None
    tier: str | None = None


class EntryLike(Protocol):
    """What the program reads of a ledger entry (``csmcore.loyalty.LedgerEntry`` has it)."""

    @property
    def kind(self) -> Any: ...
    @property
    def at(self) -> datetime: ...
    @property
    def points(self) -> int: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def spend(self) -> Decimal | None: ...


def kind_name(entry: EntryLike) -> str:
    """The entry kind as its string value (``"earn"``, ``"reverse"``...)."""
    kind = entry.kind
    return str(getattr(kind, "value", kind))


def cap_usage(caps: Sequence[Cap], entries: Iterable[EntryLike], at: datetime) -> dict[str, int]:
    """For each cap, the points earned in its period containing ``at``, up to ``at``
    (included): the sum of the EARN entries whose ``reason`` (the activity kind) the cap
    counts. Pure; ``entries`` are one member's ledger entries in any order.
    """
    require_aware(at, "at")
    bounds = {cap.name: cap.bounds(at) for cap in caps}
    used = dict.fromkeys(bounds, 0)
    for entry in entries:
        if kind_name(entry) != "earn" or entry.at > at:
            continue
        for cap in caps:
            start, end = bounds[cap.name]
            if start <= entry.at < end and cap.counts(entry.reason):
                used[cap.name] += entry.points
    return used


def rule_contributions(
    rules: Sequence[EarnRule],
    multipliers: Sequence[Multiplier],
    stacking: Stacking,
    activity: Activity,
    *,
    at: datetime,
    tier: str | None,
) -> tuple[AppliedRule, ...]:
    """The parts of the rules that apply to ``activity`` at ``at`` for a member of ``tier``."""
    out = []
    with decimal.localcontext(_CONTEXT):
        for rule in rules:
            if rule.window is not None and at not in rule.window:
                continue
            used: dict[str, None] = {}
            exact = Decimal(0)
            if isinstance(rule, SpendRule):
                if not isinstance(activity, Purchase):
                    continue
                lines = [
                    line
                    for line in activity.lines
                    if not rule.categories or line.category in rule.categories
                ]
                if not lines:
                    continue
                # money times factors (exact: finite decimals), divided once at the end, so
                # that a whole or half number of points stays exact for the rounding (a
                # division per line left 0.999...9 where the sum is exactly 1)
                for line in lines:
                    factor = _factor(rule, multipliers, stacking, tier, line.category, at, used)
                    exact += line.amount * factor
                exact = exact * rule.points / rule.per
            else:
                if rule.event != activity.kind:
                    continue
                factor = _factor(rule, multipliers, stacking, tier, None, at, used)
                exact = rule.points * factor
            out.append(
                AppliedRule(
                    rule=rule.name,
                    exact=exact,
                    points=rule.rounding.apply(exact),
                    multipliers=tuple(used),
                )
            )
    return tuple(out)


def _factor(
    rule: EarnRule,
    multipliers: Sequence[Multiplier],
    stacking: Stacking,
    tier: str | None,
    category: str | None,
    at: datetime,
    used: dict[str, None],
) -> Decimal:
    applying = [m for m in multipliers if m.applies(rule, tier=tier, category=category, at=at)]
    if not applying:
        return Decimal(1)
    if stacking is Stacking.HIGHEST:
        best = max(applying, key=lambda m: m.factor)  # first of equal factors: declared order
        used[best.name] = None
        return best.factor
    factor = Decimal(1)
    for m in applying:
        used[m.name] = None
        factor *= m.factor
    return factor


def apply_caps(
    caps: Sequence[Cap], kind: str, points: int, counted: Mapping[str, int]
) -> tuple[int, tuple[str, ...]]:
    """``points`` cut to the room each cap counting ``kind`` has left, and the caps that cut."""
    cut = []
    for cap in caps:
        if not cap.counts(kind):
            continue
        room = max(0, cap.points - counted.get(cap.name, 0))
        if points > room:
            points = room
            cut.append(cap.name)
    return points, tuple(cut)
