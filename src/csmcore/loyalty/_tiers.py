"""Tiers: a pure function of (ledger entries, tier policy, instant).

The qualifying amount at an instant is what the member earned (points, or money spent) in
the qualification window ending then: the calendar period containing the instant (a year, a
half-year...) or, with ``rolling``, the span of that length ending at it. EARN entries add,
and on spend so do PURCHASE entries (money spent that earned no points, counted at their own
instant); REVERSE entries (returns) subtract; redemptions, expiry, adjustments and transfers
do not count. An EARN counts at its own instant, pending or not, unless the policy says
``qualify_when=QualifyWhen.ACTIVE``: then it counts at the instant its points become active
(its ``pending_until``, or the ACTIVATE of its lot when that comes first; never when they
expire while pending), less what was returned while it was pending, and only a return after
that instant counts (at its own instant), so that a purchase returned inside the returns
window never lifts a tier.

The status is replayed from the entries in time order:

- after each qualifying entry, the highest tier whose threshold the qualifying amount meets
  (``>=``) is found. Above the current tier: upgrade at once. Equal: the tier is requalified.
  Either way it stays valid until the end of the review period ``valid_for`` periods after
  the one the entry falls in (``valid_for=1``, yearly: reached in 2026, valid through 2027).
  Below: nothing happens before the review;
- a tier of threshold 0 is the base tier: every member holds it from the start, for good;
- at ``valid_until + grace`` (the grace period lets a member requalify late), the tier goes
  down: one tier (``Downgrade.ONE_TIER``), or to the highest tier met by the qualifying amount
  of the window that ended at ``valid_until`` (``Downgrade.REEVALUATE``, possibly no tier). A
  tier given by a downgrade is valid until the end of the review period containing it. A
  member never ends up below the tier the window running at the review already meets (with a
  grace period, what was earned since the end of the validity counts).

Thresholds are distinct, so the highest tier met is always one tier: frappe/erpnext #22167
picked the first tier whose threshold was met in list order, not the highest.
"""

from __future__ import annotations

import decimal
import enum
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta

from csmcore._time import US, in_range_us, require_aware, zone_from_name
from csmcore._values import (
    as_utc,
    check_identifier,
    check_iterable,
    coerce_enum,
    frozen_set,
    show,
)
from csmcore.errors import ValidationError, invalid_type
from csmcore.loyalty._earn import EntryLike, check_money, kind_name
from csmcore.loyalty._expiry import Period, check_delta, check_zone, first_of_month, period_bounds
from csmcore.serialization import serializable

__all__ = [
    "Downgrade",
    "QualifyWhen",
    "Tier",
    "TierBasis",
    "TierChange",
    "TierPolicy",
    "TierStatus",
    "review_tiers",
    "tier_status",
]


class TierBasis(enum.StrEnum):
    """What tier thresholds measure: points earned, or money spent."""

    POINTS = "points"
    SPEND = "spend"


class Downgrade(enum.StrEnum):
    """What happens to a tier that was not requalified by the end of its validity."""

    ONE_TIER = "one_tier"
    """Down one tier (gold to silver), whatever the member earned."""
    REEVALUATE = "reevaluate"
    """To the highest tier the last qualification window's amount meets (possibly none)."""


class QualifyWhen(enum.StrEnum):
    """When an EARN counts towards a tier's qualifying amount."""

    EARNED = "earned"
    """When it is written, pending or not (the default)."""
    ACTIVE = "active"
    """When its points become active (its ``pending_until``, or its explicit activation), in
    the qualification window of that instant; the points returned while it was pending never
    count. Closes "buy to reach a tier, return inside the returns window, keep the tier"."""


def _threshold(value: Any) -> Decimal:
    return check_money(value, "threshold")


@serializable("loyalty.tier", aliases=("csmcore.loyalty:Tier",))
@attrs.frozen(kw_only=True)
class Tier:
    """A tier: its ``name`` and the qualifying amount (points or money) that reaches it."""

    name: str = attrs.field()
    threshold: Decimal = attrs.field(converter=_threshold)

    @name.validator
    def _check_name(self, _: Any, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(
                f"name={value!r} is not a tier name; expected a non-empty string",
                field="name",
                value=value,
            )
        check_identifier(value, "name")


def _tiers(value: object) -> tuple[Tier, ...]:
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise invalid_type("tiers", value, "a sequence of Tier")
    tiers = tuple(value)
    if not tiers:
        raise ValidationError("tiers=() is empty; a tier policy has at least one tier")
    for tier in tiers:
        if not isinstance(tier, Tier):
            raise invalid_type("tiers", tier, "Tier values")
    names = [t.name for t in tiers]
    for name in names:
        if names.count(name) > 1:
            raise ValidationError(
                f"tiers: the name {name!r} is used twice; tier names are unique",
                field="tiers",
                value=name,
            )
    thresholds = [t.threshold for t in tiers]
    for tier in tiers:
        if thresholds.count(tier.threshold) > 1:
            same = [t.name for t in tiers if t.threshold == tier.threshold]
            raise ValidationError(
                f"tiers {same} share the threshold {tier.threshold}; thresholds are distinct "
                "so that the highest tier met is one tier",
                field="tiers",
                value=tier.threshold,
            )
    return tuple(sorted(tiers, key=lambda t: t.threshold))


def _basis(value: Any) -> TierBasis:
    return coerce_enum(TierBasis, value, "basis")


def _qualification(value: Any) -> Period:
    return coerce_enum(Period, value, "qualification")


def _rolling(value: Any) -> relativedelta | None:
    return None if value is None else check_delta(value, "rolling")


def _review(value: Any) -> Period:
    return coerce_enum(Period, value, "review")


def _downgrade(value: Any) -> Downgrade:
    return coerce_enum(Downgrade, value, "downgrade")


def _grace(value: Any) -> relativedelta:
    return check_delta(value, "grace", positive=False)


def _qualify_when(value: Any) -> QualifyWhen:
    return coerce_enum(QualifyWhen, value, "qualify_when")


def _reasons(value: Any) -> frozenset[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise invalid_type(
            "non_qualifying", value, "a collection of entry reasons (strings), e.g. {'sla_breach'}"
        )
    reasons = frozen_set(value, "non_qualifying", "entry reasons (non-empty strings)")
    for reason in reasons:
        if not isinstance(reason, str) or not reason:
            raise invalid_type("non_qualifying", reason, "non-empty strings (entry reasons)")
    return reasons


@serializable("loyalty.tier_policy", aliases=("csmcore.loyalty:TierPolicy",))
@attrs.frozen(kw_only=True)
class TierPolicy:
    """The tiers of a program and how members reach, keep and lose them.

    ``tiers`` are sorted by threshold when built (the lowest first: its rank is 1). ``basis``:
    points earned or money spent. ``qualification``: the calendar period whose amount counts
    (read in ``timezone``), unless ``rolling`` (a relativedelta, e.g. ``months=12``) gives a
    sliding window instead. ``review``: the calendar period tiers are valid by; ``valid_for``:
    how many review periods after the one it was reached in a tier stays valid. ``downgrade``
    and ``grace`` say what happens at the end of the validity. ``non_qualifying``: the
    ``reason`` of EARN entries that do not count towards a tier (with their returns), such as
    the service recovery policy's (``"sla_breach"``), so that goodwill points are spendable
    but do not lift a member's tier; empty by default (every earn counts). ``qualify_when``:
    when an earn counts, ``QualifyWhen.EARNED`` (the default: when written, pending or not) or
    ``QualifyWhen.ACTIVE`` (when its points become active, in the window of that instant; what
    is returned while pending never counts), which keeps a purchase returned inside the
    returns window from lifting a tier until the review.
    """

    tiers: tuple[Tier, ...] = attrs.field(converter=_tiers)
    basis: TierBasis = attrs.field(default=TierBasis.POINTS, converter=_basis)
    qualification: Period = attrs.field(default=Period.YEAR, converter=_qualification)
    rolling: relativedelta | None = attrs.field(default=None, converter=_rolling)
    review: Period = attrs.field(default=Period.YEAR, converter=_review)
    valid_for: int = attrs.field(default=1)
    downgrade: Downgrade = attrs.field(default=Downgrade.ONE_TIER, converter=_downgrade)
    grace: relativedelta = attrs.field(factory=relativedelta, converter=_grace)
    timezone: str = attrs.field(default="UTC", validator=check_zone)
    non_qualifying: frozenset[str] = attrs.field(factory=frozenset, converter=_reasons)
    qualify_when: QualifyWhen = attrs.field(default=QualifyWhen.EARNED, converter=_qualify_when)

    @valid_for.validator
    def _check_valid_for(self, _: Any, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_type("valid_for", value, "a whole number of review periods (an int)")
        if not 0 <= value <= 10:
            raise ValidationError(
                f"valid_for={value!r} is out of range; accepted: 0 to 10 review periods",
                field="valid_for",
                value=value,
            )

    def __attrs_post_init__(self) -> None:
        if self.basis is TierBasis.POINTS:
            for tier in self.tiers:
                if tier.threshold != tier.threshold.to_integral_value():
                    raise ValidationError(
                        f"tier {tier.name!r}: threshold={tier.threshold} is not a whole number "
                        "of points; points thresholds are integers",
                        field="threshold",
                        value=tier.threshold,
                    )

    @property
    def names(self) -> tuple[str, ...]:
        """The tier names, lowest first."""
        return tuple(t.name for t in self.tiers)

    def rank(self, tier: str | None) -> int:
        """1 for the lowest tier, 2 for the next...; 0 for no tier. ValidationError for a name
        that is not one of :attr:`names`."""
        if tier is None:
            return 0
        try:
            return self.names.index(tier) + 1
        except ValueError:
            raise ValidationError(
                f"tier={tier!r} is not a tier of this policy; accepted: {list(self.names)}",
                field="tier",
                value=tier,
            ) from None

    def met(self, amount: Decimal) -> str | None:
        """The highest tier whose threshold ``amount`` meets (``>=``), or None.

        >>> policy = TierPolicy(tiers=[Tier(name="gold", threshold=5000),
        ...                            Tier(name="silver", threshold=1000)])
        >>> policy.met(Decimal(5000)), policy.met(Decimal(4999)), policy.met(Decimal(999))
        ('gold', 'silver', None)
        """
        found = None
        for tier in self.tiers:
            if amount >= tier.threshold:
                found = tier.name
        return found

    def window(self, at: datetime) -> tuple[datetime, datetime]:
        """The qualification window of an instant ``at``: ``(start, at]``-style bounds
        ``(start, end)`` with ``start`` included (excluded when rolling) and ``end`` = ``at``
        included. Raises NaiveDatetimeError for a naive ``at`` (which ``astimezone`` would read
        in the machine's zone)."""
        in_range_us(require_aware(at, "at"), "at")
        if self.rolling is not None:
            local = at.astimezone(zone_from_name(self.timezone))
            return as_utc(local - self.rolling), at
        return period_bounds(at, self.qualification, self.timezone)[0], at

    def valid_until(self, at: datetime, periods: int) -> datetime:
        """The end of the review period ``periods`` periods after the one containing ``at``."""
        start, _ = period_bounds(at, self.review, self.timezone)
        local = start.astimezone(zone_from_name(self.timezone))
        return as_utc(first_of_month(local, self.review.months * (periods + 1)))


@serializable("loyalty.tier_status", aliases=("csmcore.loyalty:TierStatus",))
@attrs.frozen(kw_only=True)
class TierStatus:
    """A member's tier at :attr:`at`.

    ``tier`` (None: no tier) held since ``since`` and valid until ``valid_until`` (the member
    keeps it until ``review_at`` = ``valid_until`` + grace unless requalified); ``qualifying``
    is the amount in the current qualification window (with ``QualifyWhen.ACTIVE``, of the
    earns active by then); ``next_tier`` the tier above (None at
    the top) and ``needed`` what is still missing to reach it (0 when reached).
    """

    at: datetime
    tier: str | None
    rank: int
    since: datetime | None
    valid_until: datetime | None
    review_at: datetime | None
    qualifying: Decimal
    next_tier: str | None
    needed: Decimal


@serializable("loyalty.tier_change", aliases=("csmcore.loyalty:TierChange",))
@attrs.frozen(kw_only=True)
class TierChange:
    """A member whose tier differs between just before a review instant and at it."""

    member_id: str
    before: TierStatus
    after: TierStatus


def _value(
    policy: TierPolicy,
    entry: EntryLike,
    returned: Mapping[int, Decimal],
    excluded: frozenset[str] = frozenset(),
) -> Decimal:
    """What ``entry`` adds to the qualifying amount: an EARN its points (or spend), a PURCHASE
    its spend (0 points), a REVERSE minus what it clawed back (for spend: its own ``spend``
    when it has one, as the return of a PURCHASE has, else its share of the returned EARN's
    spend, from ``returned``); anything else nothing. An EARN or PURCHASE whose reason the
    policy does not qualify, and a REVERSE of one (its id in ``excluded``), add nothing."""
    kind = kind_name(entry)
    if kind == "earn" or kind == "purchase":
        if entry.reason is not None and entry.reason in policy.non_qualifying:
            return Decimal(0)
        if policy.basis is TierBasis.POINTS:
            return Decimal(entry.points)
        return entry.spend or Decimal(0)
    if kind != "reverse" or getattr(entry, "related", None) in excluded:
        return Decimal(0)
    back = abs(entry.points)  # the ledger writes debits as negative points
    if policy.basis is TierBasis.POINTS:
        return Decimal(-back)
    if entry.spend is not None:
        return -abs(entry.spend)
    return -returned.get(id(entry), Decimal(0))


def _spend_returned(held: Sequence[EntryLike]) -> dict[int, Decimal]:
    """``id(entry)`` of each REVERSE without its own ``spend`` -> the money it gives back: its
    share of the returned EARN's spend, in that spend's unit (cents for ``200.00``), taken as
    the difference of the shares returned before and after it, so that the returns of one
    purchase add up to exactly its spend (1/7 of 200.00 seven times is not 200.00)."""
    earns = {
        entry_id: e
        for e in held
        if kind_name(e) == "earn" and (entry_id := getattr(e, "entry_id", None)) is not None
    }
    reverses = [e for e in held if kind_name(e) == "reverse" and e.spend is None]
    reverses.sort(key=lambda e: (e.at, getattr(e, "seq", 0)))
    out: dict[int, Decimal] = {}
    done: dict[str, int] = {}
    for entry in reverses:
        related = getattr(entry, "related", None) or ""
        earned = earns.get(related)
        if earned is None or not earned.spend or not earned.points:
            continue
        before = done.get(related, 0)
        after = done[related] = before + abs(entry.points)
        out[id(entry)] = _share(earned.spend, earned.points, after) - _share(
            earned.spend, earned.points, before
        )
    return out


def _share(spend: Decimal, points: int, back: int) -> Decimal:
    """The money of ``back`` of the ``points`` a purchase of ``spend`` earned, in the unit of
    ``spend`` (half to even); all of it from ``points`` on."""
    if back >= points:
        return spend
    if not back:
        return Decimal(0)
    with decimal.localcontext(_EXACT):
        unit = Decimal(1).scaleb(min(spend.as_tuple().exponent, 0))  # type: ignore[arg-type]
        return (spend * back / points).quantize(unit, rounding=decimal.ROUND_HALF_EVEN)


_EXACT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[])


class _Timeline:
    """The qualifying values of a member in time order, with prefix sums: the amount in any
    window is two binary searches (a replay is O(n log n), not O(n^2))."""

    __slots__ = ("sums", "times")

    def __init__(self, items: Sequence[tuple[datetime, Decimal]]) -> None:
        self.times = [when for when, _ in items]
        self.sums = [Decimal(0)]
        for _, value in items:
            self.sums.append(self.sums[-1] + value)

    def amount(self, policy: TierPolicy, at: datetime, *, end_excl: bool) -> Decimal:
        """The qualifying amount of the window ending at ``at`` (just before it when
        ``end_excl``)."""
        start, end = policy.window(at - US if end_excl else at)
        hi = bisect_right(self.times, end)
        # a rolling window excludes its start, a calendar period includes it
        lo = (bisect_right if policy.rolling is not None else bisect_left)(self.times, start)
        return self.sums[hi] - self.sums[min(lo, hi)]


def _activations(held: Sequence[EntryLike]) -> dict[str, datetime | None]:
    """``entry_id`` of each EARN of ``held`` -> the instant its points become active: at once
    (no ``pending_until``), at its ``pending_until``, or at the first ACTIVATE of its lot when
    that comes first; None when they never do (they expire while still pending)."""
    lots: dict[str, str] = {}  # lot id -> the id of the EARN that made it
    earns: list[tuple[str, EntryLike]] = []
    for e in held:
        if kind_name(e) == "earn" and (entry_id := getattr(e, "entry_id", None)) is not None:
            earns.append((entry_id, e))
            lots[getattr(e, "lot_id", None) or entry_id] = entry_id
    activated: dict[str, datetime] = {}
    for e in held:
        if kind_name(e) == "activate":
            earn_id = lots.get(getattr(e, "lot_id", None) or "")
            if earn_id is not None and (earn_id not in activated or e.at < activated[earn_id]):
                activated[earn_id] = e.at
    return {entry_id: _activation(e, activated.get(entry_id)) for entry_id, e in earns}


def _activation(earn: EntryLike, activated: datetime | None) -> datetime | None:
    """The instant the points of ``earn`` become active, given the first activation of its
    lot (None: none); None when they never do."""
    pending: datetime | None = getattr(earn, "pending_until", None)
    if pending is None or pending <= earn.at:
        return earn.at
    if activated is not None and activated < pending:
        return activated
    expires: datetime | None = getattr(earn, "expires_at", None)
    return None if expires is not None and expires <= pending else pending


def _active_items(
    policy: TierPolicy,
    held: Sequence[EntryLike],
    returned: Mapping[int, Decimal],
    excluded: frozenset[str],
    at: datetime,
) -> list[tuple[datetime, Decimal]]:
    """The qualifying values of ``held`` up to ``at`` under ``QualifyWhen.ACTIVE``: each EARN
    at the instant its points become active, less what was returned while it was pending (one
    value: nothing when all of it was), and each REVERSE of an active EARN at its own instant.
    A REVERSE whose EARN is not among ``held`` counts at its own instant."""
    activations = _activations(held)
    while_pending: dict[str, Decimal] = {}
    items: list[tuple[datetime, Decimal]] = []
    for e in held:
        if kind_name(e) != "reverse":
            continue
        earn_id = getattr(e, "related", None) or ""
        if earn_id in activations:
            active = activations[earn_id]
            if active is None or e.at < active:
                value = _value(policy, e, returned, excluded)
                while_pending[earn_id] = while_pending.get(earn_id, Decimal(0)) + value
                continue
        if e.at <= at and (value := _value(policy, e, returned, excluded)):
            items.append((e.at, value))
    for e in held:
        kind = kind_name(e)
        if kind == "purchase":  # no points to wait for: counts at its own instant
            if e.at <= at and (value := _value(policy, e, returned, excluded)):
                items.append((e.at, value))
            continue
        if kind != "earn":
            continue
        earn_id = getattr(e, "entry_id", None)
        active = _activation(e, None) if earn_id is None else activations[earn_id]
        if active is None or active > at:
            continue
        value = _value(policy, e, returned, excluded)
        if earn_id is not None:
            value += while_pending.get(earn_id, Decimal(0))
        if value:
            items.append((active, value))
    return items


def tier_status(policy: TierPolicy, entries: Iterable[EntryLike], at: datetime) -> TierStatus:
    """The member's tier status at ``at`` (included), replayed from ``entries`` (one member's
    ledger entries, any order). Pure: the same entries, policy and instant give the same
    status. Raises NaiveDatetimeError for a naive ``at``. Amounts are summed exactly,
    whatever decimal context the caller set.
    """
    in_range_us(require_aware(at, "at"), "at")
    if not isinstance(policy, TierPolicy):
        raise invalid_type("policy", policy, "a TierPolicy")
    held = tuple(check_iterable(entries, "entries", "an iterable of ledger entries"))
    try:
        with decimal.localcontext(_EXACT):
            return _tier_status(policy, held, as_utc(at))
    except AttributeError as err:  # an item that is no entry: name it
        for entry in held:
            if not all(hasattr(entry, name) for name in ("kind", "at", "points", "reason")):
                raise ValidationError(
                    f"entries holds {show(entry)}, a {type(entry).__name__}; expected ledger "
                    "entries (kind, at, points, reason, spend)",
                    field="entries",
                    value=entry,
                ) from err
        raise


def _tier_status(policy: TierPolicy, entries: Iterable[EntryLike], at: datetime) -> TierStatus:
    """:func:`tier_status` of an aware UTC ``at``, in an exact decimal context."""
    held = list(entries)
    returned = _spend_returned(held) if policy.basis is TierBasis.SPEND else {}
    excluded: frozenset[str] = frozenset()
    if policy.non_qualifying:
        excluded = frozenset(
            entry_id
            for e in held
            if kind_name(e) in ("earn", "purchase")
            and e.reason in policy.non_qualifying
            and (entry_id := getattr(e, "entry_id", None)) is not None
        )
    if policy.qualify_when is QualifyWhen.ACTIVE:
        items = sorted(_active_items(policy, held, returned, excluded, at), key=lambda i: i[0])
    else:
        items = sorted(
            (
                (e.at, v)
                for e in held
                if e.at <= at and (v := _value(policy, e, returned, excluded))
            ),
            key=lambda item: item[0],
        )
    timeline = _Timeline(items)
    base = policy.met(Decimal(0))  # a tier of threshold 0 is every member's from the start
    tier: str | None = base
    since: datetime | None = None
    valid_until: datetime | None = None

    zone = zone_from_name(policy.timezone)
    graced: dict[datetime, datetime] = {}  # valid_until -> valid_until + grace

    def deadline() -> datetime | None:
        if tier == base or valid_until is None:
            return None
        if not policy.grace:
            return valid_until
        found = graced.get(valid_until)
        if found is None:
            found = graced[valid_until] = as_utc(valid_until.astimezone(zone) + policy.grace)
        return found

    def run_reviews(until: datetime) -> None:
        nonlocal tier, since, valid_until
        due = deadline()
        while due is not None and due <= until:
            assert valid_until is not None
            if policy.downgrade is Downgrade.ONE_TIER:
                rank = policy.rank(tier)
                new = policy.names[rank - 2] if rank > 1 else None
            else:
                new = policy.met(timeline.amount(policy, valid_until, end_excl=True))
                if policy.rank(new) > policy.rank(tier):
                    new = tier
            if policy.rank(new) < policy.rank(base):
                new = base
            lasts = policy.valid_until(due, 0)
            now = policy.met(timeline.amount(policy, due, end_excl=False))
            if policy.rank(now) >= policy.rank(new) and now != base:
                # the window running at the review already meets a tier: requalified
                new, lasts = now, policy.valid_until(due, policy.valid_for)
            if new != tier:
                tier, since = new, due
            valid_until = lasts if new != base else None
            due = deadline()

    for index, (when, _) in enumerate(items):
        run_reviews(when)
        if index + 1 < len(items) and items[index + 1][0] == when:
            continue  # entries at one instant count together
        met = policy.met(timeline.amount(policy, when, end_excl=False))
        if met is not None and policy.rank(met) >= policy.rank(tier):
            if met != tier:
                tier, since = met, when
            if met != base:
                until = policy.valid_until(when, policy.valid_for)
                valid_until = until if valid_until is None else max(valid_until, until)
    run_reviews(at)
    qualifying = timeline.amount(policy, at, end_excl=False)
    rank = policy.rank(tier)
    above = policy.tiers[rank] if rank < len(policy.tiers) else None
    return TierStatus(
        at=at,
        tier=tier,
        rank=rank,
        since=since,
        valid_until=valid_until,
        review_at=deadline(),
        qualifying=qualifying,
        next_tier=None if above is None else above.name,
        needed=Decimal(0) if above is None else max(Decimal(0), above.threshold - qualifying),
    )


def review_tiers(
    policy: TierPolicy, members: Mapping[str, Iterable[EntryLike]], at: datetime
) -> list[TierChange]:
    """The members whose tier at ``at`` differs from their tier just before it (1 µs
    earlier), by member id: the report of a review run at a review instant (e.g. 1 January
    00:00 in the tier policy's time zone, plus the grace). Pure.
    """
    # in UTC: one microsecond before the second 02:30 of a fall-back night, taken on the
    # local wall clock, would be the first 02:29, an hour earlier
    in_range_us(require_aware(at, "at"), "at")
    at = as_utc(at)
    changes = []
    for member_id in sorted(members):
        entries = list(members[member_id])
        before = tier_status(policy, entries, at - US)
        after = tier_status(policy, entries, at)
        if before.tier != after.tier:
            changes.append(TierChange(member_id=member_id, before=before, after=after))
    return changes
