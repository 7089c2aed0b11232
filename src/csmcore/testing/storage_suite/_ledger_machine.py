"""The ledger group's state machine (:class:`LedgerMachine`): random operations on a member's
ledger through a store, every invariant checked after each step; and the helpers the ledger
checks share with it (:func:`write_purchase`, :data:`DAY`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from csmcore.errors import (
    InsufficientPoints,
    InvalidTransition,
    ValidationError,
)
from csmcore.loyalty import (
    EntryKind,
    LedgerEntry,
    LedgerState,
    LotDraw,
    LotStatus,
    MemberTimeline,
    QualifyWhen,
    ReturnsPolicy,
    Tier,
    TierBasis,
    TierPolicy,
    tier_status,
    verify_entries,
)
from csmcore.services import Ledger
from csmcore.storage.protocols import Store
from csmcore.testing.builders import T0

__all__ = ["DAY", "LedgerMachine", "draws_of", "write_purchase"]

DAY = timedelta(days=1)
_US = timedelta(microseconds=1)
_TIERS = TierPolicy(
    tiers=[Tier(name="silver", threshold=100), Tier(name="gold", threshold=300)],
    qualify_when=QualifyWhen.ACTIVE,
)
"""Tiers counting an earn when its points become active (the machine's timeline check)."""
_SPEND = TierPolicy(
    tiers=[Tier(name="silver", threshold=Decimal("1000.00"))],
    basis=TierBasis.SPEND,
    rolling=relativedelta(years=50),
)
"""A spend tier whose window holds every entry the machine writes (its earns have no spend:
what counts is the money of its purchases that earned no points, less their returns)."""
_BALANCED = (EntryKind.EARN, EntryKind.ADJUST, EntryKind.TRANSFER_IN, EntryKind.TRANSFER_OUT)


def draws_of(*draws: LotDraw) -> Any:
    return draws  # (attrs' tuple converter makes mypy expect a bare Iterable)


def write_purchase(
    ledger: Ledger,
    member: str,
    spend: Decimal,
    *,
    at: datetime,
    key: str,
    reference: str | None = None,
    reason: str | None = None,
) -> LedgerEntry:
    """Write (or, for a known key, find) the PURCHASE entry of ``spend`` that earned no
    points, as ``csmcore.services.earn_points`` writes it, through the ledger's repository."""
    found: list[LedgerEntry] = []

    def plan(states: Any) -> list[LedgerEntry]:
        state = states[member]
        entry = state.plan_purchase(spend, at=at, key=key, reference=reference, reason=reason)
        found[:] = [entry]
        return [entry] if entry.seq > len(state.entries) else []

    ledger.repository.write((member,), plan)
    return found[0]


def spend_kept(entries: list[LedgerEntry]) -> Decimal:
    """The money of a member's PURCHASE entries not given back by a return (a REVERSE of 0
    points gives back the whole spend of its PURCHASE)."""
    bought = sum(
        (e.spend or Decimal(0) for e in entries if e.kind is EntryKind.PURCHASE), Decimal(0)
    )
    back = sum(
        (e.spend or Decimal(0) for e in entries if e.kind is EntryKind.REVERSE and not e.points),
        Decimal(0),
    )
    return bought - back


def net_points(entries: list[LedgerEntry]) -> int:
    """What a member's entries credited net of returns, adjustments and transfers: conservation
    says active + pending + expired + spent - negative equals it."""
    return sum(e.points for e in entries if e.kind in _BALANCED or e.kind is EntryKind.REVERSE)


def check_member(ledger: Ledger, member: str, at: datetime, *, allow_negative: bool) -> None:
    """Every invariant of one member: ``verify``; the balance at ``at`` and at each entry's
    instant equals the plain replay of the entries up to it; conservation; nothing negative."""
    entries = list(ledger.entries(member))
    report = verify_entries(member, entries, allow_negative=allow_negative)
    assert report.ok, report.problems
    # each return records the policy it was written under, so the verdict does not depend on
    # the policy of whoever asks (a store that loses ``returns_policy`` fails here)
    assert all(e.returns_policy is not None for e in entries if e.kind is EntryKind.REVERSE)
    strict = verify_entries(member, entries, allow_negative=not allow_negative)
    assert strict.ok, strict.problems
    for index, entry in enumerate(entries):
        if index + 1 < len(entries) and entries[index + 1].at == entry.at:
            continue  # the balance at an instant includes every entry at that instant
        upto = verify_entries(member, entries[: index + 1], allow_negative=True)
        assert ledger.balance(member, entry.at) == upto.balance, (member, entry.entry_id)
    balance = ledger.balance(member, at)
    assert min(balance.active, balance.pending, balance.expired, balance.spent) >= 0
    assert balance.negative >= 0
    assert not balance.negative or allow_negative
    total = balance.active + balance.pending + balance.expired + balance.spent
    assert total - balance.negative == net_points(entries), "points were minted or lost"
    if entries and all(e.spend is None for e in entries if e.kind is EntryKind.EARN):
        # a spend tier counts each purchase that earned no points until it is returned
        assert tier_status(_SPEND, entries, at).qualifying == spend_kept(entries), member
    check_between_entries(ledger, member, entries, at)


def recorded_expiries(entries: list[LedgerEntry]) -> dict[str, int]:
    """lot id -> the points in the lot whose expiry an EXPIRE entry recorded, counted plainly
    from the entries: a return that takes back expired points of its own lot takes the
    recorded ones first (so points a refund gives back to the lot later are not taken for
    recorded)."""
    recorded: dict[str, int] = {}
    for e in entries:
        if e.kind is EntryKind.EXPIRE:
            recorded[e.lot_id or ""] = recorded.get(e.lot_id or "", 0) - e.points
        elif e.kind is EntryKind.REVERSE:
            for d in e.draws:
                if recorded.get(d.lot_id):
                    recorded[d.lot_id] = max(0, recorded[d.lot_id] - d.points)
    return recorded


def check_expiries_recorded(ledger: Ledger, member: str, at: datetime) -> None:
    """After ``expire`` at ``at``: every point expired by then has its EXPIRE entry (the audit
    trail shows every expiry)."""
    recorded = recorded_expiries(list(ledger.entries(member)))
    for lot in ledger.lots(member, at):
        if lot.status is LotStatus.EXPIRED:
            assert recorded.get(lot.lot_id, 0) >= lot.remaining, (member, lot, recorded)


def check_between_entries(
    ledger: Ledger, member: str, entries: list[LedgerEntry], at: datetime
) -> None:
    """Between entries too: at each instant a lot becomes active or expires (and just before
    it), the store's balance equals a fresh replay of the entries up to it, conserves points
    and is never negative; and the member's timeline (balances and tiers counted at
    activation) answers the same from one instant to its ``next_change``."""
    if not entries:
        return
    # what csmcore writes today fits today's rule (never read by the earlier one)
    assert not LedgerState.replay(member, entries).legacy
    first = entries[0].at
    marks = {e.at for e in entries}
    for e in entries:
        for value in (e.pending_until, e.expires_at, *(d.expires_at for d in e.draws)):
            if value is not None:
                marks.add(value)
    instants = sorted(
        {x for m in marks for x in (m - _US, m, m + _US) if first <= x <= at + 10 * DAY}
    )[-40:]
    timeline = MemberTimeline(member, entries, _TIERS)
    for t in instants:
        upto = [e for e in entries if e.at <= t]
        balance = ledger.balance(member, t)
        assert balance == LedgerState.replay(member, upto).balance(t), (member, t)
        assert min(balance.active, balance.pending, balance.expired, balance.spent) >= 0
        assert balance.negative >= 0
        assert not (balance.negative and balance.active)  # active points pay a debt first
        total = balance.active + balance.pending + balance.expired + balance.spent
        assert total - balance.negative == net_points(upto), ("minted or lost", member, t)
    for i, t in enumerate(instants):
        seen = timeline.at(t)
        change = timeline.next_change(t)
        assert change is None or change > t
        for u in instants[i + 1 :]:
            if change is not None and u >= change:
                break
            assert timeline.at(u) == seen, (member, t, u, change)


class LedgerMachine(RuleBasedStateMachine):
    """Random operations on a store's ledger; every invariant after each step."""

    factory: Callable[[], Store]
    members = ("ann", "bob", "cy")

    def __init__(self) -> None:
        super().__init__()
        self.store = self.factory()
        self.ledgers = {p: Ledger(self.store, returns=p) for p in ReturnsPolicy}
        self.ledger = self.ledgers[ReturnsPolicy.WITHIN_BALANCE]
        self.now = T0
        self.count = 0
        self.earns: list[LedgerEntry] = []
        self.purchases: list[LedgerEntry] = []
        self.redemptions: list[LedgerEntry] = []
        self.done: list[tuple[Callable[[], Any], Any]] = []
        self.negative_allowed: set[str] = set()

    def teardown(self) -> None:
        self.store.close()

    def _key(self) -> str:
        self.count += 1
        return f"k{self.count}"

    def _entries(self) -> int:
        return sum(len(self.ledger.entries(m)) for m in self.members)

    def _record(self, call: Callable[[], Any]) -> Any:
        result = call()
        self.done.append((call, result))
        return result

    @initialize()
    def start(self) -> None:
        self.ledger.earn("ann", 50, at=self.now, key="seed", expires_at=self.now + 20 * DAY)

    @rule(hours=st.integers(0, 24 * 12))
    def advance(self, hours: int) -> None:
        self.now += timedelta(hours=hours)

    @rule(
        member=st.sampled_from(members),
        points=st.integers(1, 120),
        expires=st.none() | st.integers(1, 40),
        pending=st.none() | st.integers(1, 8),
    )
    def earn(self, member: str, points: int, expires: int | None, pending: int | None) -> None:
        key, at = self._key(), self.now
        exp = None if expires is None else at + expires * DAY
        until = None if pending is None else at + pending * DAY
        entry = self._record(
            lambda: self.ledger.earn(
                member, points, at=at, key=key, expires_at=exp, pending_until=until
            )
        )
        self.earns.append(entry)

    @rule(
        member=st.sampled_from(members),
        points=st.integers(1, 120),
        pending=st.integers(1, 4),
        lasts=st.integers(1, 6),
    )
    def earn_briefly_active(self, member: str, points: int, pending: int, lasts: int) -> None:
        # pending points active for a few days only: with a debt, they pay it at their
        # activation and may expire before the next entry (partly spent or not)
        self.earn(member, points, pending + lasts, pending)

    @rule(
        member=st.sampled_from(members),
        owed=st.integers(1, 60),
        points=st.integers(1, 120),
        pending=st.integers(1, 4),
        lasts=st.integers(1, 6),
    )
    def owe_then_earn_pending(
        self, member: str, owed: int, points: int, pending: int, lasts: int
    ) -> None:
        # a purchase spent and returned under UNLIMITED leaves a debt; pending points earned
        # next pay it at their activation, whether or not an entry is written then
        at, earn_key, spend_key, return_key = self.now, self._key(), self._key(), self._key()
        bought = self._record(lambda: self.ledger.earn(member, owed, at=at, key=earn_key))
        self.earns.append(bought)
        spend = self.ledger.balance(member, at).active
        if spend:
            self.redemptions.append(
                self._record(lambda: self.ledger.redeem(member, spend, at=at, key=spend_key))
            )
        unlimited = self.ledgers[ReturnsPolicy.UNLIMITED]
        self._record(lambda: unlimited.reverse(bought.entry_id, at=at, key=return_key))
        self.negative_allowed.add(member)
        self.earn_briefly_active(member, points, pending, lasts)

    @rule(member=st.sampled_from(members), points=st.integers(1, 150))
    def redeem(self, member: str, points: int) -> None:
        before = self.ledger.balance(member, self.now)
        key, at = self._key(), self.now
        try:
            entry = self._record(lambda: self.ledger.redeem(member, points, at=at, key=key))
        except InsufficientPoints:
            assert points > before.active  # refused only when short
            return
        assert points <= before.active  # never overdraws
        assert sum(d.points for d in entry.draws) == points
        self.redemptions.append(entry)

    @precondition(lambda self: self.redemptions)
    @rule(data=st.data(), partial=st.booleans())
    def refund(self, data: st.DataObject, partial: bool) -> None:
        redemption = data.draw(st.sampled_from(self.redemptions))
        member = redemption.member_id
        lots_before = {lot.lot_id: lot for lot in self.ledger.lots(member, self.now)}
        owed = self.ledger.balance(member, self.now).negative
        points = data.draw(st.integers(1, -redemption.points)) if partial else None
        key, at = self._key(), self.now
        try:
            entry = self._record(
                lambda: self.ledger.refund(redemption.entry_id, at=at, key=key, points=points)
            )
        except ValidationError:
            return  # already refunded (in part): never more than was drawn
        drawn = {d.lot_id: d for d in redemption.draws}
        lots_after = {lot.lot_id: lot for lot in self.ledger.lots(member, self.now)}
        for d in entry.draws:  # the same lots, with the same expiry, given back exactly
            assert d.lot_id in drawn
            assert d.points <= drawn[d.lot_id].points
            assert d.expires_at == drawn[d.lot_id].expires_at == lots_after[d.lot_id].expires_at
        moved = {d.lot_id: d.points for d in entry.draws}
        if not owed:  # (a negative balance would take its share of the restored points)
            for lot_id, lot in lots_after.items():
                assert lot.remaining == lots_before[lot_id].remaining + moved.get(lot_id, 0)

    @rule(member=st.sampled_from(members), cents=st.integers(1, 50_000))
    def purchase(self, member: str, cents: int) -> None:
        # money spent that earned no points (a cap reached): a PURCHASE of 0 points
        spend = Decimal(cents).scaleb(-2)
        key, at = self._key(), self.now
        entry = self._record(
            lambda: write_purchase(self.ledger, member, spend, at=at, key=key, reason="purchase")
        )
        assert (entry.kind, entry.points, entry.spend, entry.lot_id) == (
            EntryKind.PURCHASE,
            0,
            spend,
            None,
        )
        self.purchases.append(entry)

    @precondition(lambda self: self.earns or self.purchases)
    @rule(data=st.data(), policy=st.sampled_from(ReturnsPolicy), partial=st.booleans())
    def reverse(self, data: st.DataObject, policy: ReturnsPolicy, partial: bool) -> None:
        # an earn's points (all or part), or a purchase's money (all of it, once)
        earn = data.draw(st.sampled_from(self.earns + self.purchases))
        points = data.draw(st.integers(1, earn.points)) if partial and earn.points else None
        key, at = self._key(), self.now
        ledger = self.ledgers[policy]
        try:
            entry = self._record(
                lambda: ledger.reverse(earn.entry_id, at=at, key=key, points=points)
            )
        except (InsufficientPoints, InvalidTransition, ValidationError):
            return
        assert entry.returns_policy is policy
        if earn.kind is EntryKind.PURCHASE:
            assert (entry.points, entry.spend, entry.related) == (0, earn.spend, earn.entry_id)
        if policy is ReturnsPolicy.UNLIMITED:
            self.negative_allowed.add(earn.member_id)

    @rule(member=st.sampled_from(members))
    def expire(self, member: str) -> None:
        at = self.now
        before = self.ledger.balance(member, at)
        self.ledger.expire(member, at=at)
        # recording expiries changes no balance (nor what paying a debt took)
        assert self.ledger.balance(member, at) == before
        assert self.ledger.expire(member, at=at) == []  # idempotent per lot
        check_expiries_recorded(self.ledger, member, at)

    @rule(member=st.sampled_from(members), points=st.integers(2, 120), spend=st.integers(1, 119))
    def refund_into_a_returned_expired_lot(self, member: str, points: int, spend: int) -> None:
        # a lot partly spent expires and its expiry is recorded; its purchase is returned
        # (taking back the recorded expired points) and the redemption refunded: the points
        # given back expire at once, and the next expire records them
        spend = min(spend, points - 1)
        at = self.now
        keys = [self._key() for _ in range(4)]
        bought = self._record(
            lambda: self.ledger.earn(member, points, at=at, key=keys[0], expires_at=at + DAY)
        )
        self.earns.append(bought)
        try:
            spent = self._record(lambda: self.ledger.redeem(member, spend, at=at, key=keys[1]))
        except InsufficientPoints:  # a debt took the points first
            return
        self.redemptions.append(spent)
        self.now = later = at + 2 * DAY
        self.expire(member)
        unlimited = self.ledgers[ReturnsPolicy.UNLIMITED]
        self._record(lambda: unlimited.reverse(bought.entry_id, at=later, key=keys[2]))
        self.negative_allowed.add(member)
        self._record(lambda: self.ledger.refund(spent.entry_id, at=later, key=keys[3]))
        self.expire(member)

    @rule(member=st.sampled_from(members), points=st.integers(-60, 60).filter(bool))
    def adjust(self, member: str, points: int) -> None:
        key, at = self._key(), self.now
        try:
            self._record(
                lambda: self.ledger.adjust(member, points, at=at, key=key, reason="machine")
            )
        except InsufficientPoints:
            assert -points > self.ledger.balance(member, at).active

    @rule(
        giver=st.sampled_from(members), receiver=st.sampled_from(members), points=st.integers(1, 80)
    )
    def transfer(self, giver: str, receiver: str, points: int) -> None:
        if giver == receiver:
            return
        key, at = self._key(), self.now
        before = self._entries()
        try:
            out, into = self._record(
                lambda: self.ledger.transfer(giver, receiver, points, at=at, key=key)
            )
        except InsufficientPoints:
            assert self._entries() == before  # atomic: nothing half-written
            return
        assert [(d.points, d.expires_at) for d in out.draws] == [
            (d.points, d.expires_at) for d in into.draws
        ]

    @precondition(lambda self: self.earns)
    @rule(data=st.data(), expires=st.none() | st.integers(1, 40))
    def activate(self, data: st.DataObject, expires: int | None) -> None:
        # with ``expires``, the lot's expiry starts again at the activation
        earn = data.draw(st.sampled_from(self.earns))
        key, at = self._key(), self.now
        exp = None if expires is None else at + expires * DAY
        with contextlib.suppress(InvalidTransition):  # not pending (any more), or expired
            self._record(
                lambda: self.ledger.activate(
                    earn.member_id, earn.lot_id or "", at=at, key=key, expires_at=exp
                )
            )

    @precondition(lambda self: self.done)
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        call, result = data.draw(st.sampled_from(self.done))
        before = self._entries()
        assert call() == result  # the same key and payload: the original result
        assert self._entries() == before  # and nothing written

    @invariant()
    def invariants_hold(self) -> None:
        for member in self.members:
            check_member(
                self.ledger,
                member,
                self.now,
                allow_negative=member in self.negative_allowed,
            )
        moved_in = moved_out = 0
        for member in self.members:
            for e in self.ledger.entries(member):
                if e.kind is EntryKind.TRANSFER_IN:
                    moved_in += e.points
                elif e.kind is EntryKind.TRANSFER_OUT:
                    moved_out -= e.points
        assert moved_in == moved_out  # transfers neither mint nor lose
