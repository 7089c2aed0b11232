"""Apply a loyalty program to a ledger: earn idempotently, tier status, tier reviews, and the
loyalty member conditions read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Final

from csmcore._time import require_aware
from csmcore.errors import IdempotencyConflict, ValidationError, invalid_type
from csmcore.loyalty import (
    Activity,
    EarnQuote,
    EntryKind,
    LedgerEntry,
    LedgerState,
    LoyaltyEvent,
    LoyaltyMember,
    Program,
    Purchase,
    TierChange,
    TierPolicy,
    TierStatus,
    cap_usage,
    review_tiers,
    tier_status,
)
from csmcore.services._ledger import Ledger

__all__ = [
    "UNTIL_ACTIVATED",
    "activate_points",
    "earn_points",
    "loyalty_member",
    "quote_points",
    "return_points",
    "review_member_tiers",
    "tier_of",
]

UNTIL_ACTIVATED: Final = datetime(9998, 12, 29, tzinfo=timezone.utc)
"""The ``pending_until`` written for points that wait for an explicit activation
(``PendingPolicy(explicit=True)``): the last day csmcore accepts, so only
``Ledger.activate`` makes them active."""


def _policy(program: Program | TierPolicy) -> TierPolicy:
    if isinstance(program, TierPolicy):
        return program
    if isinstance(program, Program):
        if program.tiers is None:
            raise ValidationError(
                f"program {program.name!r} has no tiers; give it a TierPolicy (tiers=...)",
                field="program",
                value=program.name,
            )
        return program.tiers
    raise invalid_type("program", program, "a Program or a TierPolicy")


def tier_of(
    ledger: Ledger, program: Program | TierPolicy, member_id: str, at: datetime
) -> TierStatus:
    """The member's :class:`~csmcore.loyalty.TierStatus` at ``at``, from the ledger's entries
    up to ``at``. ValidationError when the program has no tiers."""
    require_aware(at, "at")
    return tier_status(_policy(program), ledger.entries(member_id, until=at), at)


def quote_points(
    ledger: Ledger, program: Program, member_id: str, activity: Activity, *, at: datetime
) -> EarnQuote:
    """What ``activity`` earns ``member_id`` at ``at``: the member's tier (when the program has
    tiers) and cap usage come from the ledger's entries up to ``at``. Writes nothing."""
    require_aware(at, "at")
    return _quote(program, list(ledger.entries(member_id, until=at)), activity, at)


def _quote(
    program: Program, entries: list[LedgerEntry], activity: Activity, at: datetime
) -> EarnQuote:
    """``program.quote`` of ``activity`` at ``at`` for a member of these entries (up to
    ``at``): their tier and cap usage."""
    tier = None if program.tiers is None else tier_status(program.tiers, entries, at).tier
    counted = cap_usage(program.caps, entries, at)
    return program.quote(activity, at=at, tier=tier, counted=counted)


def earn_points(
    ledger: Ledger,
    program: Program,
    member_id: str,
    activity: Activity,
    *,
    at: datetime,
    key: str,
) -> LedgerEntry | None:
    """Post what ``activity`` earns ``member_id`` at ``at`` (see :func:`quote_points`) as one EARN
    entry with idempotency key ``key``, and return it; None when the quote is 0 points (a
    cap reached, an amount worth less than a point, nothing the rules reward). Then a
    :class:`~csmcore.loyalty.Purchase` of an amount > 0 is still written, as a PURCHASE entry
    of 0 points with the amount as ``spend`` (what spend tiers count) under ``key``; a
    :class:`~csmcore.loyalty.LoyaltyEvent` (no money) writes nothing.

    Idempotent: when the member already has the EARN or PURCHASE of this activity under
    ``key`` (the same kind, ``spend`` and reference) nothing is written and the EARN is
    returned as it is (None for a PURCHASE), without quoting again (a second quote would count
    the first entry against the cap); a ``key`` the member used for anything else raises
    :class:`~csmcore.errors.IdempotencyConflict`, writing nothing.
    The entry carries the quote's expiry and pending instant (:data:`UNTIL_ACTIVATED` for
    points awaiting an explicit activation), the purchase amount as ``spend`` (what spend
    tiers count), the activity reference and its kind as ``reason`` (what caps count).
    """
    if not isinstance(activity, Purchase | LoyaltyEvent):
        raise invalid_type("activity", activity, "a Purchase or a LoyaltyEvent")
    require_aware(at, "at")
    result: list[LedgerEntry | None] = [None]

    def plan(states: Mapping[str, LedgerState]) -> list[LedgerEntry]:
        # quoted on the member's state as the write finds it, so a purchase posted meanwhile
        # counts against the caps and the tier (the version check plans again when another
        # writer came first)
        state = states[member_id]
        found = state.by_key.get(key) if isinstance(key, str) else None
        if found is not None:
            _check_retry(found, activity, key)
            result[0] = found if found.kind is EntryKind.EARN else None
            return []
        quote = _quote(program, [e for e in state.entries if e.at <= at], activity, at)
        result[0] = None
        if quote.points == 0:
            if not isinstance(activity, Purchase) or not activity.amount > 0:
                return []
            # money spent that earned nothing: a PURCHASE, so that spend tiers count it and
            # the key is consumed (the caller still gets None: no points were earned)
            bought = state.plan_purchase(
                activity.amount,
                at=at,
                key=key,
                reference=activity.reference,
                reason=activity.kind,
            )
            return [bought]
        pending_until = quote.pending_until
        if quote.pending and pending_until is None:
            pending_until = UNTIL_ACTIVATED
        entry = state.plan_earn(
            quote.points,
            at=at,
            key=key,
            expires_at=quote.expires_at,
            pending_until=pending_until,
            spend=quote.spend,
            reference=activity.reference,
            reason=quote.kind,
        )
        result[0] = entry
        return [entry]

    ledger.repository.write((member_id,), plan)
    return result[0]


def activate_points(
    ledger: Ledger,
    program: Program,
    member_id: str,
    lot_id: str,
    *,
    at: datetime,
    key: str,
) -> LedgerEntry:
    """Make the pending lot ``lot_id`` active at ``at`` (the order was delivered, the returns
    window closed early), its expiry counted from ``at`` by the program's expiry policy:
    points become available now, so their expiry starts now (a lot that never expires under
    the program keeps no expiry). Idempotent per ``key`` like every ledger write.
    :class:`~csmcore.errors.InvalidTransition` when the lot is not pending or has expired.
    """
    if not isinstance(program, Program):
        raise invalid_type("program", program, "a Program")
    require_aware(at, "at")
    return ledger.activate(
        member_id, lot_id, at=at, key=key, expires_at=program.expiry.expires_at(at)
    )


def return_points(
    ledger: Ledger,
    program: Program,
    earn_entry_id: str,
    *,
    at: datetime,
    key: str,
    points: int | None = None,
) -> LedgerEntry:
    """The return of a purchase under the program's returns policy (``program.returns``):
    claw back ``points`` (default: all not yet clawed back) that the EARN ``earn_entry_id``
    gave, as :meth:`Ledger.reverse` does (of a PURCHASE, money that earned no points: a
    REVERSE of 0 points giving back its whole spend, once). Idempotent per ``key``: a retry
    gets the original entry back, unless the program's returns policy changed since (the
    entry records it): :class:`~csmcore.errors.IdempotencyConflict`."""
    if not isinstance(program, Program):
        raise invalid_type("program", program, "a Program")
    return ledger.reverse(earn_entry_id, at=at, key=key, points=points, policy=program.returns)


def _check_retry(entry: LedgerEntry, activity: Activity, key: str) -> None:
    """IdempotencyConflict unless ``entry`` (written with ``key``) is the EARN, or the PURCHASE
    of 0 points, of this very activity: same kind, money and reference (its points and
    instant are not compared: a retry may come later, when a new quote would differ)."""
    differs = []
    if entry.kind is not EntryKind.EARN and entry.kind is not EntryKind.PURCHASE:
        differs.append("kind")
    if entry.reason != activity.kind:
        differs.append("activity kind (reason)")
    if entry.spend != activity.amount:
        differs.append("spend")
    if entry.reference != activity.reference:
        differs.append("reference")
    if differs:
        raise IdempotencyConflict(
            f"key={key!r} was already used for entry {entry.entry_id!r} "
            f"({entry.kind.value}, {entry.points} points at {entry.at.isoformat()}) with "
            f"another payload (differs in: {', '.join(differs)}); use a new key for a new "
            "activity, or the same activity to get the original entry",
            field="key",
            value=key,
        )


def loyalty_member(ledger: Ledger, program: Program, member_id: str, at: datetime) -> LoyaltyMember:
    """The :class:`~csmcore.loyalty.LoyaltyMember` conditions read (tier and balances) at
    ``at``, from the ledger."""
    require_aware(at, "at")
    balance = ledger.balance(member_id, at)
    tier, rank = None, 0
    if program.tiers is not None:
        status = tier_status(program.tiers, ledger.entries(member_id, until=at), at)
        tier, rank = status.tier, status.rank
    return LoyaltyMember(
        member_id=member_id,
        tier=tier,
        tier_rank=rank,
        points=balance.active - balance.negative,
        pending=balance.pending,
        lifetime=balance.lifetime,
    )


def review_member_tiers(
    ledger: Ledger, program: Program | TierPolicy, member_ids: Iterable[str], at: datetime
) -> list[TierChange]:
    """The members among ``member_ids`` whose tier changes at ``at`` (see
    :func:`csmcore.loyalty.review_tiers`), read from the ledger. Writes nothing: tiers are
    derived, so a review is a report (for letters, a CRM export...), safe to run again."""
    require_aware(at, "at")
    members = {member_id: ledger.entries(member_id, until=at) for member_id in member_ids}
    return review_tiers(_policy(program), members, at)
