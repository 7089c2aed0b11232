"""A loyalty member over time, from a snapshot of their ledger entries: what conditions read at
any instant, and the instants at which it can change (for a planner that visits only those).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Final

from csmcore._time import require_aware, to_datetime, to_us
from csmcore.errors import invalid_type
from csmcore.loyalty._entries import LedgerEntry
from csmcore.loyalty._replay import LedgerState
from csmcore.loyalty._subject import LoyaltyMember
from csmcore.loyalty._tiers import TierPolicy, tier_status

__all__ = ["MemberTimeline"]

_KEPT: Final = 64  # members worked out per timeline before the oldest are forgotten


class MemberTimeline:
    """One member as conditions see them at any instant (:meth:`at`): tier and balances worked
    out from ``entries`` (the member's ledger entries, in order) and the program's ``tiers``
    (None: no tiers), exactly as :func:`csmcore.services.loyalty_member` reads them from a
    ledger at that instant.

    The entries are a snapshot: a write made after it is not seen (build a new timeline).
    :meth:`next_change` is the next instant after a given one at which the member can read
    differently (an entry, a lot expiring or activating, a tier's review), so that the
    escalation planner visits it. :attr:`token` tells two snapshots apart.

    >>> from datetime import datetime, timedelta, timezone
    >>> state = LedgerState("ann")
    >>> jan = datetime(2026, 1, 10, tzinfo=timezone.utc)
    >>> state.apply(state.plan_earn(100, at=jan, key="o1", expires_at=jan + timedelta(days=30)))
    >>> ann = MemberTimeline("ann", state.entries)
    >>> ann.at(jan + timedelta(days=1)).points, ann.at(jan + timedelta(days=30)).points
    (100, 0)
    >>> ann.next_change(jan + timedelta(days=1)) == jan + timedelta(days=30)
    True
    """

    __slots__ = ("_changes", "_entries", "_seen", "_state", "_tiers", "member_id", "token")

    def __init__(
        self, member_id: str, entries: Iterable[LedgerEntry], tiers: TierPolicy | None = None
    ) -> None:
        if tiers is not None and not isinstance(tiers, TierPolicy):
            raise invalid_type("tiers", tiers, "a TierPolicy or None")
        held = tuple(entries)
        self._state = LedgerState.replay(member_id, held)  # checks member and entries
        self.member_id = member_id
        self._entries = held
        self._tiers = tiers
        self.token: tuple[object, ...] = (
            member_id,
            len(held),
            held[-1].key if held else None,
            tiers,  # by value (frozen): an id could be reused by other tiers
        )
        """Equal for two timelines of the same member, entries and tiers."""
        instants = set()
        for entry in held:
            instants.add(to_us(entry.at))
            for value in (entry.expires_at, entry.pending_until):
                if value is not None:
                    instants.add(to_us(value))
            for draw in entry.draws:
                if draw.expires_at is not None:
                    instants.add(to_us(draw.expires_at))
        self._changes = sorted(instants)
        self._seen: dict[int, tuple[LoyaltyMember, int | None]] = {}

    def _read(self, t: int) -> tuple[LoyaltyMember, int | None]:
        found = self._seen.get(t)
        if found is not None:
            return found
        at = to_datetime(t, timezone.utc)
        balance = self._state.balance(at) if self._entries else None
        tier, rank, review = None, 0, None
        if self._tiers is not None:
            status = tier_status(self._tiers, self._entries, at)
            tier, rank = status.tier, status.rank
            review = None if status.review_at is None else to_us(status.review_at)
        member = LoyaltyMember(
            member_id=self.member_id,
            tier=tier,
            tier_rank=rank,
            points=0 if balance is None else balance.active - balance.negative,
            pending=0 if balance is None else balance.pending,
            lifetime=0 if balance is None else balance.lifetime,
        )
        if len(self._seen) >= _KEPT:
            del self._seen[next(iter(self._seen))]
        self._seen[t] = found = (member, review)
        return found

    def at(self, instant: datetime) -> LoyaltyMember:
        """The member at ``instant`` (entries at or before it count). Raises
        NaiveDatetimeError for a naive ``instant``."""
        return self._read(to_us(require_aware(instant, "instant")))[0]

    def next_change(self, instant: datetime) -> datetime | None:
        """The first instant after ``instant`` at which :meth:`at` can answer differently
        (None: never, as the entries stand), in ``instant``'s time zone. Raises
        NaiveDatetimeError for a naive ``instant``."""
        found = self.next_change_us(to_us(require_aware(instant, "instant")))
        return None if found is None else to_datetime(found, instant.tzinfo)

    def next_change_us(self, t: int) -> int | None:
        """:meth:`next_change` in microseconds since the epoch (what the planner uses)."""
        changes = self._changes
        i = bisect_right(changes, t)
        best = changes[i] if i < len(changes) else None
        review = self._read(t)[1]
        if review is not None and review > t and (best is None or review < best):
            best = review
        return best

    def __repr__(self) -> str:
        return f"MemberTimeline({self.member_id!r}, {len(self._entries)} entries)"
