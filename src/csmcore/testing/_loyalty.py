"""Strategies for the loyalty ledger's entries and lot draws (re-exported by
:mod:`csmcore.testing.strategies`) and for the serializable types of loyalty programs (earn
rules, expiry and pending policies, tiers, quotes, members, service recovery): the factories
that :mod:`csmcore.testing.strategies` registers for ``st.from_type``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs
from dateutil.relativedelta import relativedelta
from hypothesis import strategies as st

from csmcore import loyalty as lp
from csmcore.loyalty import EntryKind, LedgerEntry, LotDraw, ReturnsPolicy, entry_id_of
from csmcore.testing._basics import instants, names

__all__ = [
    "PROGRAM_STRATEGIES",
    "ledger_entries",
    "lot_draws",
    "programs",
    "recovery_policies",
    "tier_policies",
]


def lot_draws() -> st.SearchStrategy[LotDraw]:
    """Lot draws (ids, a positive number of points, an optional expiry); not tied to a
    ledger."""
    return st.builds(
        LotDraw,
        lot_id=names(),
        points=st.integers(1, 10**12),
        expires_at=st.none() | instants(),
    )


def _any_strategy(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy


def _ledger_entries(draw: st.DrawFn) -> LedgerEntry:
    member = draw(names(max_size=20))
    seq = draw(st.integers(1, 10**6))
    kind = draw(st.sampled_from(EntryKind))
    if kind is EntryKind.PURCHASE:  # 0 points, money > 0, no lot: what a purchase must be
        return LedgerEntry(
            entry_id=entry_id_of(member, seq),
            member_id=member,
            seq=seq,
            kind=kind,
            at=draw(instants()),
            points=0,
            key=draw(names()),
            reference=draw(st.none() | names()),
            spend=draw(_money(positive=True)),
            reason=draw(st.none() | names()),
            related=draw(st.none() | names()),
        )
    return LedgerEntry(
        entry_id=entry_id_of(member, seq),
        member_id=member,
        seq=seq,
        kind=kind,
        at=draw(instants()),
        points=draw(st.integers(-(10**12), 10**12)),
        key=draw(names()),
        lot_id=draw(st.none() | names()),
        expires_at=draw(st.none() | instants()),
        pending_until=draw(st.none() | instants()),
        draws=tuple(draw(st.lists(_any_strategy(lot_draws()), max_size=3))),
        reference=draw(st.none() | names()),
        spend=draw(st.none() | st.decimals(allow_nan=False, allow_infinity=False, places=2)),
        reason=draw(st.none() | names()),
        related=draw(st.none() | names()),
        returns_policy=(
            draw(st.none() | st.sampled_from(ReturnsPolicy)) if kind is EntryKind.REVERSE else None
        ),
    )


def ledger_entries() -> st.SearchStrategy[LedgerEntry]:
    """Ledger entries with every field filled or not (values, not a consistent ledger: use
    :class:`csmcore.services.Ledger` or the ledger conformance state machine for those)."""
    return st.composite(_ledger_entries)()


def _program_names() -> st.SearchStrategy[str]:
    return names().filter(lambda name: bool(name.strip()))


def _money(*, positive: bool = False) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=Decimal("0.01") if positive else 0,
        max_value=10**6,
        places=2,
        allow_nan=False,
        allow_infinity=False,
    )


def _periods_of_time(*, zero: bool = False) -> st.SearchStrategy[relativedelta]:
    deltas = st.builds(
        relativedelta, months=st.integers(0, 24), days=st.integers(0, 60), hours=st.integers(0, 23)
    )
    return deltas if zero else deltas.filter(lambda delta: bool(delta))


_LOYALTY_ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])


def _windows() -> st.SearchStrategy[lp.Window]:
    return st.builds(
        lambda start, days: lp.Window(starts_at=start, ends_at=start + timedelta(days=days)),
        instants(),
        st.integers(1, 90),
    )


def _spend_rules() -> st.SearchStrategy[lp.SpendRule]:
    return st.builds(
        lp.SpendRule,
        name=_program_names(),
        points=_money(positive=True),
        per=_money(positive=True),
        rounding=st.sampled_from(lp.Rounding),
        categories=st.frozensets(_program_names(), max_size=2),
        window=st.none() | _windows(),
    )


def _event_rules() -> st.SearchStrategy[lp.EventRule]:
    return st.builds(
        lp.EventRule,
        name=_program_names(),
        event=_program_names().filter(lambda name: name != "purchase"),
        points=st.integers(0, 10**6),
        rounding=st.sampled_from(lp.Rounding),
        window=st.none() | _windows(),
    )


def _multipliers() -> st.SearchStrategy[lp.Multiplier]:
    return st.builds(
        lp.Multiplier,
        name=_program_names(),
        factor=_money(positive=True),
        categories=st.frozensets(_program_names(), max_size=2),
        window=st.none() | _windows(),
    )


def _caps() -> st.SearchStrategy[lp.Cap]:
    return st.builds(
        lp.Cap,
        name=_program_names(),
        points=st.integers(0, 10**6),
        period=st.sampled_from(lp.Period),
        timezone=_LOYALTY_ZONES,
        events=st.frozensets(_program_names(), max_size=2),
    )


def _pending_policies() -> st.SearchStrategy[lp.PendingPolicy]:
    return st.one_of(
        st.just(lp.PendingPolicy()),
        st.just(lp.PendingPolicy(explicit=True)),
        st.builds(lp.PendingPolicy, after=_periods_of_time(), timezone=_LOYALTY_ZONES),
    )


def _never() -> st.SearchStrategy[lp.NeverExpires]:
    return st.just(lp.NeverExpires())


def _rolling() -> st.SearchStrategy[lp.RollingExpiry]:
    return st.builds(lp.RollingExpiry, after=_periods_of_time(), timezone=_LOYALTY_ZONES)


def _end_of_period() -> st.SearchStrategy[lp.EndOfPeriodExpiry]:
    return st.builds(
        lp.EndOfPeriodExpiry,
        period=st.sampled_from(lp.Period),
        min_age=_periods_of_time(zero=True),
        timezone=_LOYALTY_ZONES,
    )


def _tiers() -> st.SearchStrategy[lp.Tier]:
    return st.builds(lp.Tier, name=_program_names(), threshold=st.integers(0, 10**6))


def _tier_policies() -> st.SearchStrategy[lp.TierPolicy]:
    tiers = st.lists(
        _tiers(), min_size=1, max_size=4, unique_by=(lambda t: t.name, lambda t: t.threshold)
    )
    return st.builds(
        lp.TierPolicy,
        tiers=tiers,
        qualification=st.sampled_from(lp.Period),
        rolling=st.none() | _periods_of_time(),
        review=st.sampled_from(lp.Period),
        valid_for=st.integers(0, 3),
        downgrade=st.sampled_from(lp.Downgrade),
        grace=_periods_of_time(zero=True),
        timezone=_LOYALTY_ZONES,
        non_qualifying=st.frozensets(st.sampled_from(["sla_breach", "goodwill"]), max_size=2),
        qualify_when=st.sampled_from(lp.QualifyWhen),
    )


@st.composite
def _programs(draw: st.DrawFn) -> lp.Program:
    rules = draw(
        st.lists(
            _spend_rules() | _event_rules(), min_size=1, max_size=3, unique_by=lambda r: r.name
        )
    )
    tiers = draw(st.none() | _tier_policies())
    rule_names = sorted(rule.name for rule in rules)
    tier_names = sorted(tiers.names) if tiers is not None else []
    multipliers = draw(st.lists(_multipliers(), max_size=3, unique_by=lambda m: m.name))
    multipliers = [
        attrs.evolve(
            m,
            rules=draw(st.frozensets(st.sampled_from(rule_names), max_size=2)),
            tiers=draw(st.frozensets(st.sampled_from(tier_names), max_size=2))
            if tier_names
            else frozenset(),
        )
        for m in multipliers
    ]
    return lp.Program(
        name=draw(_program_names()),
        rules=rules,
        multipliers=multipliers,
        stacking=draw(st.sampled_from(lp.Stacking)),
        caps=draw(st.lists(_caps(), max_size=2, unique_by=lambda c: c.name)),
        pending=draw(_pending_policies()),
        expiry=draw(_never() | _rolling() | _end_of_period()),
        tiers=tiers,
        returns=draw(st.sampled_from(lp.ReturnsPolicy)),
    )


def programs() -> st.SearchStrategy[lp.Program]:
    """Loyalty programs: one to three spend or event rules, multipliers naming them (and the
    tiers), caps, a pending policy, an expiry, optional tiers and a returns policy."""
    return _programs()


def tier_policies() -> st.SearchStrategy[lp.TierPolicy]:
    """Tier policies: one to four tiers (distinct names and thresholds), qualification and
    review periods, validity, downgrade, grace, ``non_qualifying`` entry reasons and
    ``qualify_when``."""
    return _tier_policies()


def _purchase_lines() -> st.SearchStrategy[lp.PurchaseLine]:
    return st.builds(lp.PurchaseLine, amount=_money(), category=st.none() | _program_names())


def _purchases() -> st.SearchStrategy[lp.Purchase]:
    return st.builds(
        lp.Purchase,
        lines=st.lists(_purchase_lines(), min_size=1, max_size=4).map(tuple),
        reference=st.none() | _program_names(),
    )


def _loyalty_events() -> st.SearchStrategy[lp.LoyaltyEvent]:
    return st.builds(
        lp.LoyaltyEvent,
        name=_program_names().filter(lambda name: name != "purchase"),
        reference=st.none() | _program_names(),
    )


def _applied_rules() -> st.SearchStrategy[lp.AppliedRule]:
    return st.builds(
        lp.AppliedRule,
        rule=_program_names(),
        exact=_money(),
        points=st.integers(0, 10**6),
        multipliers=st.lists(_program_names(), max_size=2).map(tuple),
    )


def _earn_quotes() -> st.SearchStrategy[lp.EarnQuote]:
    return st.builds(
        lp.EarnQuote,
        kind=_program_names(),
        at=instants(),
        points=st.integers(0, 10**6),
        uncapped=st.integers(0, 10**6),
        breakdown=st.lists(_applied_rules(), max_size=3).map(tuple),
        capped_by=st.lists(_program_names(), max_size=2).map(tuple),
        pending=st.booleans(),
        pending_until=st.none() | instants(),
        expires_at=st.none() | instants(),
        spend=st.none() | _money(),
        tier=st.none() | _program_names(),
    )


def _tier_statuses() -> st.SearchStrategy[lp.TierStatus]:
    return st.builds(
        lp.TierStatus,
        at=instants(),
        tier=st.none() | _program_names(),
        rank=st.integers(0, 5),
        since=st.none() | instants(),
        valid_until=st.none() | instants(),
        review_at=st.none() | instants(),
        qualifying=_money(),
        next_tier=st.none() | _program_names(),
        needed=_money(),
    )


def _tier_changes() -> st.SearchStrategy[lp.TierChange]:
    return st.builds(
        lp.TierChange, member_id=_program_names(), before=_tier_statuses(), after=_tier_statuses()
    )


def _loyalty_members() -> st.SearchStrategy[lp.LoyaltyMember]:
    return st.builds(
        lambda member_id, tier, rank, points, pending, lifetime: lp.LoyaltyMember(
            member_id=member_id,
            tier=tier,
            tier_rank=rank if tier is not None else 0,
            points=points,
            pending=pending,
            lifetime=lifetime,
        ),
        _program_names(),
        st.none() | _program_names(),
        st.integers(1, 5),
        st.integers(-(10**6), 10**6),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
    )


def recovery_policies() -> st.SearchStrategy[lp.RecoveryPolicy]:
    """Service-recovery policies: points, per-target points, caps, periods and expiries."""
    return st.builds(
        lp.RecoveryPolicy,
        points=st.integers(0, 10**4),
        per_target=st.dictionaries(_program_names(), st.integers(0, 10**4), max_size=3),
        cap=st.none() | st.integers(0, 10**5),
        period=st.sampled_from(lp.Period),
        timezone=_LOYALTY_ZONES,
        reason=_program_names(),
        expiry=_never() | _rolling() | _end_of_period(),
    )


def _recovery_grants() -> st.SearchStrategy[lp.RecoveryGrant]:
    return st.builds(
        lp.RecoveryGrant,
        member_id=_program_names(),
        ticket_id=_program_names(),
        target=_program_names(),
        cycle=st.integers(1, 50),
        key=_program_names(),
        breached_at=instants(),
        points=st.integers(1, 10**4),
        capped=st.booleans(),
        expires_at=st.none() | instants(),
    )


PROGRAM_STRATEGIES: tuple[tuple[type, Callable[[], st.SearchStrategy[Any]]], ...] = (
    (lp.Window, _windows),
    (lp.SpendRule, _spend_rules),
    (lp.EventRule, _event_rules),
    (lp.Multiplier, _multipliers),
    (lp.Cap, _caps),
    (lp.PendingPolicy, _pending_policies),
    (lp.NeverExpires, _never),
    (lp.RollingExpiry, _rolling),
    (lp.EndOfPeriodExpiry, _end_of_period),
    (lp.Tier, _tiers),
    (lp.TierPolicy, tier_policies),
    (lp.Program, programs),
    (lp.PurchaseLine, _purchase_lines),
    (lp.Purchase, _purchases),
    (lp.LoyaltyEvent, _loyalty_events),
    (lp.AppliedRule, _applied_rules),
    (lp.EarnQuote, _earn_quotes),
    (lp.TierStatus, _tier_statuses),
    (lp.TierChange, _tier_changes),
    (lp.LoyaltyMember, _loyalty_members),
    (lp.RecoveryPolicy, recovery_policies),
    (lp.RecoveryGrant, _recovery_grants),
)
"""Each serializable type of :mod:`csmcore.loyalty`'s programs with its strategy factory."""
