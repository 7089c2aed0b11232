"""The loyalty program: earn rules, multipliers, caps, pending and expiry policies, tiers.

A :class:`Program` is an immutable value, checked when built, serialised under the stable tag
``"loyalty.program"``; :meth:`Program.quote` is the pure function that says what an activity
earns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs
from cattrs.strategies import configure_tagged_union
from dateutil.relativedelta import relativedelta

from csmcore._time import in_range_us, require_aware
from csmcore._values import as_utc, check_identifier, coerce_enum
from csmcore.errors import SerializationError, ValidationError, invalid_type
from csmcore.loyalty._earn import (
    Activity,
    Cap,
    EarnQuote,
    EarnRule,
    EventRule,
    LoyaltyEvent,
    Multiplier,
    Purchase,
    SpendRule,
    Stacking,
    apply_caps,
    rule_contributions,
)
from csmcore.loyalty._entries import ReturnsPolicy
from csmcore.loyalty._expiry import (
    EXPIRY_TYPES,
    EndOfPeriodExpiry,
    ExpiryPolicy,
    NeverExpires,
    PendingPolicy,
    RollingExpiry,
)
from csmcore.loyalty._tiers import TierPolicy
from csmcore.serialization import converter, serializable, tag_of

__all__ = ["Program"]


def check_sequence(
    value: object, argument: str, types: tuple[type, ...], accepted: str
) -> tuple[Any, ...]:
    """``value`` as a tuple of ``types`` values with unique names."""
    if not isinstance(value, Iterable) or isinstance(value, str | bytes | Mapping):
        raise invalid_type(argument, value, f"a sequence of {accepted}")
    items = tuple(value)
    for item in items:
        if not isinstance(item, types):
            raise invalid_type(argument, item, accepted)
    names = [item.name for item in items]
    for name in names:
        if names.count(name) > 1:
            raise ValidationError(
                f"{argument}: the name {name!r} is used twice; names are unique in a program",
                field=argument,
                value=name,
            )
    return items


def _expiry(value: object) -> ExpiryPolicy:
    if not isinstance(value, EXPIRY_TYPES):
        raise invalid_type("expiry", value, "NeverExpires, RollingExpiry or EndOfPeriodExpiry")
    return value


def _rules(value: Any) -> tuple[EarnRule, ...]:
    return check_sequence(value, "rules", (SpendRule, EventRule), "SpendRule or EventRule")


def _multipliers(value: Any) -> tuple[Multiplier, ...]:
    return check_sequence(value, "multipliers", (Multiplier,), "Multiplier")


def _returns(value: Any) -> ReturnsPolicy:
    return coerce_enum(ReturnsPolicy, value, "returns")


def _stacking(value: Any) -> Stacking:
    return coerce_enum(Stacking, value, "stacking")


def _caps(value: Any) -> tuple[Cap, ...]:
    return check_sequence(value, "caps", (Cap,), "Cap")


@serializable("loyalty.program", aliases=("csmcore.loyalty:Program",))
@attrs.frozen(kw_only=True)
class Program:
    """A loyalty program.

    ``rules`` (:class:`SpendRule`, :class:`EventRule`) say what earns points, ``multipliers``
    multiply them (combined per ``stacking``), ``caps`` limit them per period. ``pending`` says
    whether earned points wait, ``expiry`` when they expire, ``tiers`` (optional) how members
    reach tiers, which multipliers can name. ``returns`` is how the return of a purchase claws
    back its points (a :class:`ReturnsPolicy`: only while pending, within the balance, or
    unlimited with an explicit negative balance; :func:`csmcore.services.return_points`
    applies it). Names are unique per kind; every name a
    multiplier refers to must exist. Raises ValidationError naming the bad value.

    >>> from decimal import Decimal
    >>> from datetime import datetime, timezone
    >>> program = Program(
    ...     name="shop",
    ...     rules=[SpendRule(name="base", points=Decimal(1), per=Decimal(1))],
    ...     multipliers=[Multiplier(name="books x2", factor=Decimal(2), categories={"books"})],
    ... )
    >>> quote = program.quote(
    ...     Purchase.of(Decimal("12.70"), category="books"),
    ...     at=datetime(2026, 3, 1, tzinfo=timezone.utc),
    ... )
    >>> quote.points, quote.breakdown[0].exact
    (25, Decimal('25.40'))
    """

    name: str = attrs.field()
    rules: tuple[EarnRule, ...] = attrs.field(converter=_rules)
    multipliers: tuple[Multiplier, ...] = attrs.field(default=(), converter=_multipliers)
    stacking: Stacking = attrs.field(default=Stacking.MULTIPLY, converter=_stacking)
    caps: tuple[Cap, ...] = attrs.field(default=(), converter=_caps)
    pending: PendingPolicy = attrs.field(factory=PendingPolicy)
    expiry: ExpiryPolicy = attrs.field(factory=NeverExpires, converter=_expiry)
    tiers: TierPolicy | None = attrs.field(default=None)
    returns: ReturnsPolicy = attrs.field(default=ReturnsPolicy.WITHIN_BALANCE, converter=_returns)

    @name.validator
    def _check_name(self, _: Any, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(
                f"name={value!r} is not a program name; expected a non-empty string",
                field="name",
                value=value,
            )
        check_identifier(value, "name")

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.pending, PendingPolicy):
            raise invalid_type("pending", self.pending, "a PendingPolicy")
        if self.tiers is not None and not isinstance(self.tiers, TierPolicy):
            raise invalid_type("tiers", self.tiers, "a TierPolicy or None")
        if not self.rules:
            raise ValidationError("rules=() is empty; a program has at least one earn rule")
        rule_names = {rule.name for rule in self.rules}
        tier_names = set(self.tiers.names) if self.tiers is not None else set()
        for m in self.multipliers:
            unknown = sorted(m.rules - rule_names)
            if unknown:
                raise ValidationError(
                    f"multiplier {m.name!r}: rules {unknown} are not rules of the program; "
                    f"accepted: {sorted(rule_names)}",
                    field="rules",
                    value=unknown,
                )
            unknown = sorted(m.tiers - tier_names)
            if unknown:
                raise ValidationError(
                    f"multiplier {m.name!r}: tiers {unknown} are not tiers of the program; "
                    f"accepted: {sorted(tier_names) or 'none (the program has no tiers)'}",
                    field="tiers",
                    value=unknown,
                )

    def quote(
        self,
        activity: Activity,
        *,
        at: datetime,
        tier: str | None = None,
        counted: Mapping[str, int] | None = None,
    ) -> EarnQuote:
        """What ``activity`` earns at ``at`` for a member of ``tier`` (None: no tier) who has
        already earned ``counted[cap.name]`` points in each cap's current period (missing: 0).

        Pure: no I/O, no clock. Each applicable rule's exact Decimal part is rounded with its
        rounding mode; the sum is cut to each cap's room; pending and expiry follow the
        policies (expiry counts from when the points become available). Raises
        ValidationError for an unknown tier, a negative count or an instant out of range,
        NaiveDatetimeError for a naive ``at``.
        """
        if not isinstance(activity, Purchase | LoyaltyEvent):
            raise invalid_type("activity", activity, "a Purchase or a LoyaltyEvent")
        require_aware(at, "at")
        in_range_us(at, "at")
        at = as_utc(at)
        if tier is not None:
            if self.tiers is None:
                raise ValidationError(
                    f"tier={tier!r}: this program has no tiers; pass tier=None",
                    field="tier",
                    value=tier,
                )
            self.tiers.rank(tier)
        counted = dict(counted or {})
        for name, value in counted.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(
                    f"counted[{name!r}]={value!r} is not a count of points (an int >= 0)",
                    field="counted",
                    value=value,
                )
        breakdown = rule_contributions(
            self.rules, self.multipliers, self.stacking, activity, at=at, tier=tier
        )
        uncapped = sum(part.points for part in breakdown)
        points, cut = apply_caps(self.caps, activity.kind, uncapped, counted)
        pending_until = self.pending.pending_until(at)
        # points awaiting an explicit activation get their expiry when they are activated
        # (activate_points), counted from then
        expires_at = None if self.pending.explicit else self.expiry.expires_at(pending_until or at)
        return EarnQuote(
            kind=activity.kind,
            at=at,
            points=points,
            uncapped=uncapped,
            breakdown=breakdown,
            capped_by=cut,
            pending=self.pending.is_pending,
            pending_until=pending_until,
            expires_at=expires_at,
            spend=activity.amount,
            tier=tier,
        )


# -- serialization ------------------------------------------------------------------------

_DELTA_FIELDS = ("years", "months", "days", "hours", "minutes", "seconds", "microseconds")


def _unstructure_delta(value: relativedelta) -> dict[str, int]:
    return {name: getattr(value, name) for name in _DELTA_FIELDS if getattr(value, name)}


def _structure_delta(value: Any, _: type) -> relativedelta:
    if not isinstance(value, Mapping):
        raise SerializationError(
            f"{value!r} is not a period of time; expected a mapping such as {{'months': 12}}"
        )
    extra = sorted(set(value) - set(_DELTA_FIELDS), key=repr)
    if extra:
        raise SerializationError(f"unknown keys {extra}; accepted: {list(_DELTA_FIELDS)}")
    for name, part in value.items():
        if isinstance(part, bool) or not isinstance(part, int) or not 0 <= part <= 10**6:
            raise SerializationError(f"{name}={part!r} is not a whole number from 0 to 1000000")
    return relativedelta(**value)


converter.register_unstructure_hook(relativedelta, _unstructure_delta)
converter.register_unstructure_hook_func(
    lambda cls: cls == frozenset[str], lambda value: sorted(value)
)
converter.register_structure_hook(relativedelta, _structure_delta)


def _tag(cls: type) -> str:
    return tag_of(cls)


configure_tagged_union(EarnRule, converter, tag_generator=_tag, tag_name="type")
configure_tagged_union(
    NeverExpires | RollingExpiry | EndOfPeriodExpiry, converter, tag_generator=_tag, tag_name="type"
)
configure_tagged_union(Purchase | LoyaltyEvent, converter, tag_generator=_tag, tag_name="type")
