"""The ``ledger`` role (:class:`LedgerTests`): entries kept exactly, idempotent writes, atomic
transfers, no overdraw under concurrency, and a state machine over random operations."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from csmcore.errors import (
    IdempotencyConflict,
    InsufficientPoints,
    InvalidTransition,
    LedgerCorrupt,
    ValidationError,
)
from csmcore.loyalty import (
    Balance,
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
from csmcore.serialization import to_document
from csmcore.services import Ledger
from csmcore.storage import open_store
from csmcore.storage.ledger import LedgerRepository
from csmcore.storage.protocols import Store
from csmcore.storage.roles import role_of
from csmcore.testing._workers import redeem_worker
from csmcore.testing.builders import T0
from csmcore.testing.storage_suite._base import (
    LedgerFaults,
    StoreFactory,
    StoreFixtures,
)
from csmcore.testing.storage_suite._ledger_faults import (
    FAULTED_WRITES,
    fault_scene,
    ledger_snapshot,
    refused_by_the_backend,
)
from csmcore.testing.storage_suite._races import _run_processes
from csmcore.testing.storage_suite._text import REFUSED_IDS

__all__ = ["LedgerTests"]

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


def _draws(*draws: LotDraw) -> Any:
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


class _LedgerMachine(RuleBasedStateMachine):
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


class LedgerTests(StoreFixtures):
    """The optional ``ledger`` role: add this class to an adapter's suite when it offers it."""

    ledger_examples: ClassVar[int] = 12
    """How many random programs the state machine runs (each on a fresh store)."""
    ledger_steps: ClassVar[int] = 30
    """How many operations each program makes at most."""
    redeemers: ClassVar[int] = 4
    """Concurrent redeemers (threads, connections, processes) in the overdraw checks."""

    def test_offers_the_ledger_role(self, store: Store) -> None:
        found = role_of(store, "ledger")
        assert isinstance(found, LedgerRepository)

    def _every_field(self, ledger: Ledger) -> list[LedgerEntry]:
        berlin = timezone(timedelta(hours=1))
        at = datetime(2025, 3, 3, 10, 0, 0, 123456, tzinfo=berlin)
        earn = ledger.earn(
            "mémber ✓",
            268,
            at=at,
            key="order 1 ✓",
            expires_at=at + 365 * DAY,
            pending_until=at + 14 * DAY,
            spend=Decimal("268.280"),
            reference='ref "quoted" \\ \n',
            reason="purchase",
        )
        # the activation gives the lot a new expiry: the ACTIVATE entry carries it
        ledger.activate(
            "mémber ✓", earn.lot_id or "", at=at + DAY, key="act", expires_at=at + 200 * DAY
        )
        redeem = ledger.redeem("mémber ✓", 68, at=at + 2 * DAY, key="r", reference="basket")
        ledger.refund(redeem.entry_id, at=at + 3 * DAY, key="f", points=8)
        ledger.transfer("mémber ✓", "bob", 100, at=at + 4 * DAY, key="t")
        ledger.adjust("bob", -10, at=at + 5 * DAY, key="a", reason="typo")
        # a return records the policy it was written under (not the handle's default)
        ledger.reverse(earn.entry_id, at=at + 6 * DAY, key="ret", points=30, policy="unlimited")
        # money spent that earned no points, and its return (0 points, the money back)
        bought = write_purchase(
            ledger,
            "bob",
            Decimal("19.990"),
            at=at + 7 * DAY,
            key="bought ✓",
            reference="order 2",
            reason="purchase",
        )
        ledger.reverse(bought.entry_id, at=at + 8 * DAY, key="back", policy="only_pending")
        return list(ledger.entries("mémber ✓")) + list(ledger.entries("bob"))

    def test_entries_come_back_exactly(self, store: Store) -> None:
        written = self._every_field(Ledger(store))
        read = list(Ledger(store).entries("mémber ✓")) + list(Ledger(store).entries("bob"))
        assert read == written
        assert [to_document(e) for e in read] == [to_document(e) for e in written]
        assert Ledger(store).members() == ["bob", "mémber ✓"]

    def test_entries_survive_reopening(self, store: Store) -> None:
        written = self._every_field(Ledger(store))
        other = self.reopen(store)
        try:
            ledger = Ledger(other)
            assert list(ledger.entries("mémber ✓")) + list(ledger.entries("bob")) == written
            assert ledger.verify("mémber ✓").ok
            # a retry on another handle returns the original
            again = ledger.redeem("mémber ✓", 68, at=written[2].at, key="r", reference="basket")
            assert again == written[2]
        finally:
            other.close()

    def test_the_same_key_returns_the_original_and_another_payload_conflicts(
        self, store: Store
    ) -> None:
        ledger = Ledger(store)
        first = ledger.earn("ann", 10, at=T0, key="k")
        assert ledger.earn("ann", 10, at=T0, key="k") == first
        with pytest.raises(IdempotencyConflict):
            ledger.earn("ann", 12, at=T0, key="k")
        assert ledger.earn("bob", 12, at=T0, key="k").member_id == "bob"  # keys are per member
        assert len(ledger.entries("ann")) == 1
        # a return's policy is part of its payload (the store must keep ``returns_policy``)
        earn = ledger.earn("cy", 10, at=T0, key="o")
        back = ledger.reverse(earn.entry_id, at=T0, key="ret", points=4, policy="unlimited")
        assert back.returns_policy is ReturnsPolicy.UNLIMITED
        again = Ledger(store, returns=ReturnsPolicy.UNLIMITED)
        assert again.reverse(earn.entry_id, at=T0, key="ret", points=4) == back
        with pytest.raises(IdempotencyConflict):
            ledger.reverse(earn.entry_id, at=T0, key="ret", points=4)
        assert ledger.entries("cy") == [earn, back]

    def test_a_refused_write_writes_nothing(self, store: Store) -> None:
        ledger = Ledger(store)
        ledger.earn("ann", 10, at=T0, key="e")
        with pytest.raises(InsufficientPoints):
            ledger.redeem("ann", 11, at=T0, key="r")
        with pytest.raises(InsufficientPoints):
            ledger.transfer("ann", "bob", 11, at=T0, key="t")
        with pytest.raises(ValidationError):
            ledger.earn("ann", 1, at=T0 - DAY, key="past")
        assert [e.key for e in ledger.entries("ann")] == ["e"]
        assert ledger.entries("bob") == []
        assert ledger.members() == ["ann"]

    def test_a_plan_entry_that_does_not_fit_is_refused_and_nothing_written(
        self, store: Store
    ) -> None:
        # a plan may build entries by hand: the role applies them to the members' states
        # before writing (csmcore.storage.ledger.apply_new), so one that does not fit raises
        # LedgerCorrupt and nothing is written, for any of the plan's members
        ledger = Ledger(store, returns="unlimited")
        repo: LedgerRepository = role_of(store, "ledger")
        ledger.earn("ann", 10, at=T0, key="e")
        spent = ledger.redeem("ann", 5, at=T0, key="r")
        overdraws = LedgerEntry(
            entry_id="ann#3",
            member_id="ann",
            seq=3,
            kind=EntryKind.REDEEM,
            at=spent.at,
            points=-50,
            key="r2",
            draws=_draws(attrs.evolve(spent.draws[0], points=50)),
        )
        fits = attrs.evolve(spent, entry_id="ann#3", seq=3, key="r3")
        stranger = attrs.evolve(spent, entry_id="bob#1", member_id="bob", seq=1, key="x")
        with pytest.raises(LedgerCorrupt, match="'ann#3'"):
            repo.write(("ann",), lambda states: [overdraws])
        with pytest.raises(LedgerCorrupt, match="'bob#1'"):  # the first fits, not the second
            repo.write(("ann", "bob"), lambda states: [fits, stranger])
        # an expiry recording points that paid a debt when pending points became active: it
        # fits only the rule of entries stored before that (debts paid at entries' instants)
        bought = ledger.earn("cy", 100, at=T0, key="a")
        ledger.redeem("cy", 80, at=T0 + DAY, key="gift")
        ledger.reverse(bought.entry_id, at=T0 + 2 * DAY, key="return")  # 80 owed
        lot = ledger.earn(
            "cy",
            100,
            at=T0 + 3 * DAY,
            key="b",
            pending_until=T0 + 10 * DAY,
            expires_at=T0 + 20 * DAY,
        )  # active on day 10: pays the 80; 20 expire on day 20
        ledger.earn("cy", 10, at=T0 + 21 * DAY, key="c")
        stored_only = LedgerEntry(
            entry_id="cy#6",
            member_id="cy",
            seq=6,
            kind=EntryKind.EXPIRE,
            at=T0 + 22 * DAY,
            points=-100,
            key="expire:cy#4:0",
            lot_id=lot.lot_id,
            expires_at=lot.expires_at,
        )
        with pytest.raises(LedgerCorrupt, match="'cy#6'"):
            repo.write(("cy",), lambda states: [stored_only])
        handles = [store] if "reopen" in self.opt_out else [store, self.reopen(store)]
        for handle in handles:
            try:
                assert [e.key for e in Ledger(handle).entries("ann")] == ["e", "r"]
                assert Ledger(handle).entries("bob") == []
                assert [e.key for e in Ledger(handle).entries("cy")][-1] == "c"
                assert Ledger(handle).balance("ann").active == 5
                assert Ledger(handle).balance("cy") == Balance(
                    active=10, expired=20, spent=80, lifetime=110
                )
            finally:
                if handle is not store:
                    handle.close()
        assert ledger.redeem("ann", 5, at=T0, key="r4").points == -5  # the state as it was

    @pytest.mark.parametrize("operation", sorted(FAULTED_WRITES))
    def test_a_backend_fault_leaves_the_ledger_and_the_key_unused(
        self, store_factory: StoreFactory, store: Store, operation: str
    ) -> None:
        """A backend failure at any entry of a write raises StorageError and leaves every
        member's ledger as it was; once the backend works again, the same write (same key)
        writes all its entries: nothing was half written, no key consumed (needs the
        :class:`LedgerFaults` hook)."""
        faults: LedgerFaults = self.hook(store_factory, LedgerFaults)
        ledger = Ledger(store)
        fault_scene(ledger)
        write, targets = FAULTED_WRITES[operation]
        before = ledger_snapshot(ledger)
        for member, n in targets:
            seq = len(before[member]) + n
            where = f"entry {seq} of member {member!r} ({operation})"
            faults.fail_ledger_entry(store.url, member, seq)
            try:
                refused_by_the_backend(lambda: write(ledger), where)
            finally:
                faults.heal_ledger(store.url)
            assert ledger_snapshot(ledger) == before, (
                f"a write the backend refused at {where} must leave every member's "
                "ledger as it was: write all the entries of one write in one transaction, "
                "and change no cached state before the backend took them"
            )
        written = write(ledger)
        after = ledger_snapshot(ledger)
        for member in after:
            assert after[member][: len(before[member])] == before[member]
            new = after[member][len(before[member]) :]
            assert len(new) == sum(1 for m, _ in targets if m == member), (
                f"once the backend worked again, the {operation} refused before must write "
                f"its entries (its key was not used); {member!r} got {new}"
            )
        again = write(ledger)  # and now the key holds (nothing is left to expire)
        assert again == ([] if operation == "expire" else written)
        assert ledger_snapshot(ledger) == after

    @pytest.mark.parametrize(
        "refused", [*REFUSED_IDS.values(), "", 5, None], ids=[*REFUSED_IDS, "empty", "int", "none"]
    )
    def test_member_ids_no_store_can_keep_are_refused(self, store: Store, refused: Any) -> None:
        """``read`` and ``write`` check every member id as :func:`csmcore.storage.kit.check_id`
        does (argument name ``member_id``) before anything else, and write nothing."""
        ledger = role_of(store, "ledger")
        calls: list[tuple[str, Callable[[], object]]] = [
            ("read", lambda: ledger.read(refused, lambda state: state.version)),
            ("write", lambda: ledger.write(["ann", refused], lambda states: [])),
        ]
        for name, call in calls:
            refusal = ""
            try:
                call()
            except ValidationError as err:
                refusal = str(err)
            assert "member_id=" in refusal, (
                f"ledger.{name} must refuse member_id={refused!r} with a ValidationError naming "
                "it: check every member id with csmcore.storage.kit.check_id(member_id, "
                f"'member_id') before anything else (got {refusal or 'no error'!r})"
            )
        with pytest.raises(ValidationError, match="member_id="):
            Ledger(store).earn(refused, 5, at=T0, key="k")
        assert ledger.members() == []

    def _fund(self, store: Store) -> int:
        ledger = Ledger(store)
        for n in range(5):
            ledger.earn("pool", 20, at=T0 - DAY, key=f"fund-{n}", expires_at=T0 + (n + 1) * DAY)
        return 100

    def _check_no_overdraw(self, store: Store, won: list[str], funded: int, points: int) -> None:
        ledger = Ledger(store)
        redemptions = [e for e in ledger.entries("pool") if e.kind is EntryKind.REDEEM]
        assert sorted(e.entry_id for e in redemptions) == sorted(won)  # none lost, none extra
        assert len(won) == funded // points  # every point that could be spent was
        balance = ledger.balance("pool", T0)
        assert balance.active == funded - points * len(won) >= 0
        assert ledger.verify("pool").ok

    def _threads(self, handles: list[Store], points: int) -> list[str]:
        won: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        barrier = threading.Barrier(len(handles), timeout=30)

        def run(worker: int, handle: Store) -> None:
            ledger = Ledger(handle)
            try:
                barrier.wait()
                n = 0
                while True:
                    try:
                        entry = ledger.redeem("pool", points, at=T0, key=f"w{worker}-{n}")
                    except InsufficientPoints:
                        return
                    with lock:
                        won.append(entry.entry_id)
                    n += 1
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=run, args=(w, h)) for w, h in enumerate(handles)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == [], (
            f"concurrent redemptions on {len(handles)} handles raised {errors!r}: a write must "
            "plan on the member's latest state and insert its entries only if no other writer "
            "appended to that member meanwhile (the per-member version check, in the same "
            "transaction as the insert), planning again when one did"
        )
        return won

    def test_threads_never_overdraw(self, store: Store) -> None:
        funded = self._fund(store)
        won = self._threads([store] * self.redeemers, 3)
        self._check_no_overdraw(store, won, funded, 3)

    def test_separate_connections_never_overdraw(self, store: Store) -> None:
        self.require("reopen")
        funded = self._fund(store)
        handles = [open_store(store.url) for _ in range(self.redeemers)]
        try:
            won = self._threads(handles, 7)
        finally:
            for handle in handles:
                handle.close()
        self._check_no_overdraw(store, won, funded, 7)

    def test_processes_never_overdraw(self, store: Store) -> None:
        self.require("processes")
        funded = self._fund(store)
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(self.redeemers)
        results = _run_processes(
            [
                (redeem_worker, (store.url, "pool", w, 3, start, self.opener))
                for w in range(self.redeemers)
            ],
            ctx,
        )
        won = [entry_id for found in results for entry_id in found]
        self._check_no_overdraw(store, won, funded, 3)

    def test_random_operations_keep_every_invariant(self, stores: StoreFactory) -> None:
        machine: Any = type("LedgerMachine", (_LedgerMachine,), {"factory": staticmethod(stores)})
        machine.TestCase.settings = settings(
            max_examples=self.ledger_examples,
            stateful_step_count=self.ledger_steps,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        machine.TestCase().runTest()
