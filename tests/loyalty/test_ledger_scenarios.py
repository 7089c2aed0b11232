"""Hand-worked scenarios, one per ledger rule (dates and numbers worked out in the comments)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import attrs
import pytest

from csmcore.errors import (
    IdempotencyConflict,
    InsufficientPoints,
    InvalidTransition,
    InvalidType,
    LedgerCorrupt,
    NaiveDatetimeError,
    ValidationError,
)
from csmcore.loyalty import (
    Balance,
    EntryKind,
    LedgerEntry,
    LedgerState,
    LotStatus,
    RedemptionOrder,
    ReturnsPolicy,
    verify_entries,
)
from csmcore.serialization import from_document, to_document
from csmcore.services import Ledger
from csmcore.storage import open_store

UTC = timezone.utc
JAN1 = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def ledger(**options: object) -> Ledger:
    return Ledger(open_store("memory://"), **options)  # type: ignore[arg-type]


def test_earn_creates_a_lot_that_expires_on_its_own_date() -> None:
    led = ledger()
    # Jan 1: 100 points expiring Mar 1; Jan 15: 50 points expiring Feb 1.
    a = led.earn("ann", 100, at=JAN1, key="o1", expires_at=datetime(2025, 3, 1, tzinfo=UTC))
    b = led.earn(
        "ann", 50, at=JAN1 + 14 * DAY, key="o2", expires_at=datetime(2025, 2, 1, tzinfo=UTC)
    )
    assert a.lot_id == "ann#1"
    assert b.lot_id == "ann#2"
    # Jan 20: both active: 150.  Feb 1 00:00: lot 2 expired (50), 100 active.
    assert led.balance("ann", datetime(2025, 1, 20, tzinfo=UTC)).active == 150
    feb1 = led.balance("ann", datetime(2025, 2, 1, tzinfo=UTC))
    assert (feb1.active, feb1.expired, feb1.lifetime) == (100, 50, 150)
    # Mar 1: everything expired: 150 expired, 0 active.
    mar1 = led.balance("ann", datetime(2025, 3, 1, tzinfo=UTC))
    assert (mar1.active, mar1.expired) == (0, 150)
    # Dec 31 2024 (before any entry): nothing.
    assert led.balance("ann", JAN1 - DAY) == Balance()


def test_redemption_draws_soonest_expiry_first_and_records_its_draws() -> None:
    led = ledger()
    led.earn("ann", 100, at=JAN1, key="o1", expires_at=JAN1 + 365 * DAY)  # lot ann#1, exp 2026
    led.earn("ann", 30, at=JAN1 + DAY, key="o2", expires_at=JAN1 + 30 * DAY)  # ann#2, exp Jan 31
    led.earn("ann", 20, at=JAN1 + 2 * DAY, key="o3")  # ann#3, never expires
    # Redeem 50 on Jan 5: soonest expiry first: 30 from ann#2, then 20 from ann#1.
    r = led.redeem("ann", 50, at=JAN1 + 4 * DAY, key="r1")
    assert [(d.lot_id, d.points) for d in r.draws] == [("ann#2", 30), ("ann#1", 20)]
    assert r.points == -50
    bal = led.balance("ann")
    assert (bal.active, bal.spent) == (100, 50)  # 150 - 50


def test_fifo_order_draws_the_oldest_lot_first() -> None:
    led = ledger(order=RedemptionOrder.FIFO)
    led.earn("ann", 100, at=JAN1, key="o1", expires_at=JAN1 + 365 * DAY)
    led.earn("ann", 30, at=JAN1 + DAY, key="o2", expires_at=JAN1 + 30 * DAY)
    r = led.redeem("ann", 50, at=JAN1 + 4 * DAY, key="r1")
    assert [(d.lot_id, d.points) for d in r.draws] == [("ann#1", 50)]


def test_a_redemption_beyond_the_active_points_is_refused_and_writes_nothing() -> None:
    led = ledger()
    led.earn("ann", 40, at=JAN1, key="o1")
    led.earn("ann", 60, at=JAN1, key="o2", pending_until=JAN1 + 14 * DAY)  # pending to Jan 15
    with pytest.raises(InsufficientPoints, match="has 40 active points"):
        led.redeem("ann", 41, at=JAN1 + DAY, key="r1")
    assert len(led.entries("ann")) == 2
    # Jan 15 the 60 are active: 100 redeemable.
    assert led.redeem("ann", 100, at=JAN1 + 14 * DAY, key="r2").points == -100


def test_pending_points_activate_at_their_date_or_by_an_activate_entry() -> None:
    led = ledger()
    e = led.earn("ann", 80, at=JAN1, key="o1", pending_until=JAN1 + 30 * DAY)  # to Jan 31
    assert led.balance("ann", JAN1 + 10 * DAY) == Balance(pending=80, lifetime=80)
    assert led.balance("ann", JAN1 + 30 * DAY) == Balance(active=80, lifetime=80)
    assert e.lot_id is not None
    led.activate("ann", e.lot_id, at=JAN1 + 5 * DAY, key="act")  # Jan 6, early
    assert led.balance("ann", JAN1 + 5 * DAY).active == 80
    assert led.balance("ann", JAN1 + 4 * DAY).pending == 80  # before the activation
    with pytest.raises(InvalidTransition, match="not pending"):
        led.activate("ann", e.lot_id, at=JAN1 + 6 * DAY, key="act2")


def test_a_refund_restores_exactly_the_lots_drawn_with_their_expiry() -> None:
    led = ledger()
    exp1, exp2 = JAN1 + 60 * DAY, JAN1 + 30 * DAY
    led.earn("ann", 100, at=JAN1, key="o1", expires_at=exp1)  # ann#1 exp Mar 2
    led.earn("ann", 30, at=JAN1, key="o2", expires_at=exp2)  # ann#2 exp Jan 31
    r = led.redeem("ann", 50, at=JAN1 + DAY, key="r1")  # 30 from ann#2, 20 from ann#1
    refund = led.refund(r.entry_id, at=JAN1 + 2 * DAY, key="f1")
    # latest drawn first: 20 back to ann#1, then 30 back to ann#2, each with its own expiry
    assert [(d.lot_id, d.points, d.expires_at) for d in refund.draws] == [
        ("ann#1", 20, exp1),
        ("ann#2", 30, exp2),
    ]
    lots = {lot.lot_id: lot for lot in led.lots("ann", JAN1 + 2 * DAY)}
    assert (lots["ann#1"].remaining, lots["ann#2"].remaining) == (100, 30)
    # Jan 31: ann#2's 30 restored points expire on their own date, as before.
    assert led.balance("ann", exp2) == Balance(active=100, expired=30, spent=0, lifetime=130)


def test_partial_refunds_never_give_back_more_than_was_drawn() -> None:
    # odoo PR #212922 charged twice on partial refunds; here partial refunds add up to the draw.
    led = ledger()
    led.earn("ann", 100, at=JAN1, key="o1")
    r = led.redeem("ann", 60, at=JAN1, key="r1")
    assert led.refund(r.entry_id, at=JAN1 + DAY, key="f1", points=25).points == 25
    assert led.refund(r.entry_id, at=JAN1 + DAY, key="f2", points=35).points == 35
    with pytest.raises(ValidationError, match="has 0 points left to refund"):
        led.refund(r.entry_id, at=JAN1 + DAY, key="f3", points=1)
    assert led.balance("ann") == Balance(active=100, spent=0, lifetime=100)
    with pytest.raises(ValidationError, match="only a redemption"):
        led.refund("ann#1", at=JAN1 + DAY, key="f4")


def test_returns_only_pending() -> None:
    led = ledger(returns=ReturnsPolicy.ONLY_PENDING)
    e = led.earn("ann", 50, at=JAN1, key="o1", pending_until=JAN1 + 14 * DAY)
    rev = led.reverse(e.entry_id, at=JAN1 + 3 * DAY, key="ret1", points=20)
    assert (rev.points, [(d.lot_id, d.points) for d in rev.draws]) == (-20, [("ann#1", 20)])
    # after Jan 15 the remaining 30 are active: no more claw-back
    with pytest.raises(InvalidTransition, match="no longer pending"):
        led.reverse(e.entry_id, at=JAN1 + 20 * DAY, key="ret2")
    assert led.balance("ann", JAN1 + 20 * DAY) == Balance(active=30, lifetime=30)


def test_returns_within_balance_take_other_lots_but_never_more_than_held() -> None:
    led = ledger(returns="within_balance")
    e = led.earn("ann", 100, at=JAN1, key="o1")  # ann#1
    led.earn("ann", 10, at=JAN1, key="o2")  # ann#2
    led.redeem("ann", 95, at=JAN1, key="r1")  # 95 from ann#1 (both never expire: oldest first)
    # left: ann#1 5, ann#2 10 = 15.  Returning the 100-point purchase would need 100: refused.
    with pytest.raises(InsufficientPoints, match="has 15 of the points=100"):
        led.reverse(e.entry_id, at=JAN1 + DAY, key="ret1")
    rev = led.reverse(e.entry_id, at=JAN1 + DAY, key="ret2", points=12)
    assert [(d.lot_id, d.points) for d in rev.draws] == [("ann#1", 5), ("ann#2", 7)]
    assert led.balance("ann") == Balance(active=3, spent=95, lifetime=98)


def test_returns_unlimited_go_negative_and_later_credits_pay_it_off_first() -> None:
    store = open_store("memory://")
    led = Ledger(store, returns=ReturnsPolicy.UNLIMITED)
    e = led.earn("ann", 100, at=JAN1, key="o1")
    led.redeem("ann", 80, at=JAN1, key="r1")  # 20 left
    rev = led.reverse(e.entry_id, at=JAN1 + DAY, key="ret1")  # claws back 100: 20 + 80 owed
    assert rev.points == -100
    assert sum(d.points for d in rev.draws) == 20
    assert led.balance("ann") == Balance(active=0, spent=80, negative=80, lifetime=0)
    # Jan 5: 50 earned: all of it pays the debt (80 -> 30), nothing spendable.
    led.earn("ann", 50, at=JAN1 + 4 * DAY, key="o2")
    assert led.balance("ann") == Balance(active=0, spent=80, negative=30, lifetime=50)
    with pytest.raises(InsufficientPoints):
        led.redeem("ann", 1, at=JAN1 + 4 * DAY, key="r2")
    # Jan 6: 40 more: 30 pay the rest, 10 are spendable.
    led.earn("ann", 40, at=JAN1 + 5 * DAY, key="o3")
    assert led.balance("ann") == Balance(active=10, spent=80, negative=0, lifetime=90)
    assert led.verify("ann").ok
    # the return records the policy it was written under: verified by a handle whose policy
    # is WITHIN_BALANCE now (the shop changed it since), the ledger is still right
    assert rev.returns_policy is ReturnsPolicy.UNLIMITED
    assert verify_entries("ann", led.entries("ann"), allow_negative=False).ok
    assert Ledger(store, returns=ReturnsPolicy.WITHIN_BALANCE).verify("ann").ok
    # a return stored before entries recorded the policy is judged by the policy asked
    legacy = [
        attrs.evolve(x, returns_policy=None) if x.kind is EntryKind.REVERSE else x
        for x in led.entries("ann")
    ]
    assert verify_entries("ann", legacy, allow_negative=True).ok
    report = verify_entries("ann", legacy, allow_negative=False)
    assert report.problems == (
        "entry 3 ('ann#3', reverse) leaves 80 points negative; the policy forbids it",
    )


def test_a_return_never_claws_back_more_than_the_purchase_earned() -> None:
    led = ledger(returns=ReturnsPolicy.UNLIMITED)
    e = led.earn("ann", 30, at=JAN1, key="o1")
    led.reverse(e.entry_id, at=JAN1, key="ret1", points=20)
    with pytest.raises(ValidationError, match="has 10 points left to claw back"):
        led.reverse(e.entry_id, at=JAN1, key="ret2", points=11)
    led.reverse(e.entry_id, at=JAN1, key="ret3")  # the 10 left
    # A second whole return (no points= given) says the purchase was already clawed back in
    # full, rather than "points=0 is not possible" for a number the caller never gave.
    with pytest.raises(ValidationError) as caught:
        led.reverse(e.entry_id, at=JAN1, key="ret4")
    assert str(caught.value) == (
        "earn 'ann#1' was already clawed back in full (0 of its 30 points left); a return "
        "never claws back more than the purchase earned"
    )
    assert (caught.value.field, caught.value.value) == ("earn_id", "ann#1")


def test_expiry_is_recorded_once_per_lot() -> None:
    led = ledger()
    led.earn("ann", 100, at=JAN1, key="o1", expires_at=JAN1 + 10 * DAY)  # exp Jan 11
    led.redeem("ann", 40, at=JAN1 + DAY, key="r1")  # 60 left in the lot
    assert led.expire("ann", at=JAN1 + 5 * DAY) == []  # nothing expired yet
    first = led.expire("ann", at=JAN1 + 12 * DAY)
    assert [(e.kind, e.points, e.lot_id) for e in first] == [(EntryKind.EXPIRE, -60, "ann#1")]
    assert led.expire("ann", at=JAN1 + 13 * DAY) == []  # idempotent per lot
    bal = led.balance("ann")
    assert (bal.active, bal.expired, bal.spent) == (0, 60, 40)
    assert led.lots("ann")[0].status is LotStatus.EXPIRED


def test_adjustments_credit_a_lot_or_draw_and_say_why() -> None:
    led = ledger()
    plus = led.adjust("ann", 25, at=JAN1, key="a1", reason="goodwill")
    minus = led.adjust("ann", -10, at=JAN1, key="a2", reason="typo")
    assert plus.lot_id == "ann#1"
    assert [(d.lot_id, d.points) for d in minus.draws] == [("ann#1", 10)]
    assert led.balance("ann").active == 15
    with pytest.raises(ValidationError, match="reason"):
        led.adjust("ann", 5, at=JAN1, key="a3", reason=" ")
    with pytest.raises(InsufficientPoints):
        led.adjust("ann", -16, at=JAN1, key="a4", reason="too much")


def test_a_transfer_moves_lots_with_their_expiry_atomically() -> None:
    led = ledger()
    exp = JAN1 + 90 * DAY
    led.earn("ann", 70, at=JAN1, key="o1", expires_at=exp)
    led.earn("bob", 5, at=JAN1, key="o1")
    out, into = led.transfer("ann", "bob", 50, at=JAN1 + DAY, key="gift")
    assert (out.points, into.points) == (-50, 50)
    assert out.related == into.entry_id
    assert into.related == out.entry_id
    assert [(d.lot_id, d.points, d.expires_at) for d in into.draws] == [("bob#2.1", 50, exp)]
    assert led.balance("ann").active == 20
    assert led.balance("bob").active == 55
    # bob's received lot expires on ann's date
    assert led.balance("bob", exp).expired == 50
    with pytest.raises(InsufficientPoints):
        led.transfer("ann", "bob", 21, at=JAN1 + DAY, key="gift2")
    assert len(led.entries("bob")) == 2  # nothing half-written
    assert led.transfer("ann", "bob", 50, at=JAN1 + DAY, key="gift") == (out, into)
    assert led.verify("ann").ok
    assert led.verify("bob").ok


def test_same_key_same_payload_returns_the_original_and_other_payload_conflicts() -> None:
    led = ledger()
    first = led.earn("ann", 10, at=JAN1, key="o1", spend=Decimal("9.99"))
    assert led.earn("ann", 10, at=JAN1, key="o1", spend=Decimal("9.99")) is first
    with pytest.raises(IdempotencyConflict, match="differs in: points"):
        led.earn("ann", 11, at=JAN1, key="o1", spend=Decimal("9.99"))
    with pytest.raises(IdempotencyConflict, match="differs in: kind"):
        led.redeem("ann", 10, at=JAN1, key="o1")
    r = led.redeem("ann", 4, at=JAN1 + DAY, key="r1")
    led.earn("ann", 100, at=JAN1 + 2 * DAY, key="o2")
    assert led.redeem("ann", 4, at=JAN1 + DAY, key="r1") == r  # a retry after later entries
    assert len(led.entries("ann")) == 3


def test_a_ledger_never_goes_back_in_time() -> None:
    led = ledger()
    led.earn("ann", 10, at=JAN1 + DAY, key="o1")
    with pytest.raises(ValidationError, match="never goes back in time"):
        led.earn("ann", 10, at=JAN1, key="o2")
    # an instant given in another zone is shown in UTC too, next to the ledger's own
    paris = JAN1.astimezone(ZoneInfo("Europe/Paris"))
    with pytest.raises(
        ValidationError,
        match=r"at=2025-01-01T10:00:00\+01:00 \(2025-01-01T09:00:00\+00:00\) is before the last "
        r"entry of member 'ann' \(2025-01-02T09:00:00\+00:00\)",
    ):
        led.earn("ann", 10, at=paris, key="o2")


def test_a_write_dated_before_the_last_entry_is_told_what_instant_to_use() -> None:
    # An order webhook arriving after the escalation engine granted recovery points at a later
    # breach instant was refused with "a ledger never goes back in time" and no way forward.
    led = ledger()
    led.earn("ann", 10, at=JAN1 + DAY, key="sla-recovery:T-1:first_reply:1")
    with pytest.raises(ValidationError) as caught:
        led.earn("ann", 10, at=JAN1, key="order-7")
    assert str(caught.value).endswith(
        "a ledger never goes back in time: write it at 2025-01-02T09:00:00+00:00 or later "
        "(ledger.entries('ann')[-1].at), e.g. at=max(at, that), as the escalation engine "
        "dates its grants"
    )
    assert led.earn("ann", 10, at=JAN1 + DAY, key="order-7").at == JAN1 + DAY


def test_bad_arguments_are_refused_with_their_name() -> None:
    led = ledger()
    with pytest.raises(InvalidType, match=r"points=2\.5"):
        led.earn("ann", 2.5, at=JAN1, key="o1")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="points=0"):
        led.earn("ann", 0, at=JAN1, key="o1")
    with pytest.raises(NaiveDatetimeError):
        led.earn("ann", 1, at=datetime(2025, 1, 1), key="o1")
    with pytest.raises(ValidationError, match="member_id=''"):
        led.earn("", 1, at=JAN1, key="o1")
    with pytest.raises(ValidationError, match="key=''"):
        led.earn("ann", 1, at=JAN1, key="")
    with pytest.raises(ValidationError, match="expires_at"):
        led.earn("ann", 1, at=JAN1, key="o1", expires_at=JAN1)
    with pytest.raises(InvalidType, match="spend"):
        led.earn("ann", 1, at=JAN1, key="o1", spend=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="entry_id='nope'"):
        led.refund("nope", at=JAN1, key="f")
    with pytest.raises(ValidationError, match="to itself"):
        led.transfer("ann", "ann", 1, at=JAN1, key="t")
    assert led.entries("ann") == []


def test_entries_serialize_with_their_stable_tag_and_no_floats() -> None:
    led = ledger()
    e = led.earn("ann", 268, at=JAN1, key="o1", spend=Decimal("268.28"), expires_at=JAN1 + DAY)
    doc = to_document(e)
    assert doc["type"] == "loyalty.entry"
    assert doc["data"]["points"] == 268
    assert doc["data"]["spend"] == "268.28"  # odoo PR #153541: never 268.28000000000003
    assert from_document(doc, LedgerEntry) == e


def test_replaying_a_broken_history_raises_ledger_corrupt() -> None:
    led = ledger()
    led.earn("ann", 10, at=JAN1, key="o1")
    r = led.redeem("ann", 10, at=JAN1, key="r1")
    import attrs

    forged = attrs.evolve(r, points=-11)
    with pytest.raises(LedgerCorrupt, match="ann#2"):
        LedgerState.replay("ann", [led.entries("ann")[0], forged])
    report = verify_entries("ann", [led.entries("ann")[0], forged])
    assert not report.ok
    assert any("debits 11" in p for p in report.problems)
    with pytest.raises(LedgerCorrupt):
        report.raise_for_problems()


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
def test_expiry_picks_a_key_no_client_write_used(url: str, tmp_path: object) -> None:
    # a client's key that happens to read like the key an expiry would take: the expiry
    # takes another one (memory wrote a second entry with the same key, which verify then
    # refused; SQLite retried against its unique index until ConcurrencyError)
    if url == "sqlite":
        url = f"sqlite:///{tmp_path}/ledger.db"
    store = open_store(url)
    try:
        led = Ledger(store)
        led.earn("bob", 10, at=JAN1, key="order-1", expires_at=JAN1 + DAY)
        mine = led.earn("bob", 5, at=JAN1, key="expire:bob#1:0")
        [expired] = led.expire("bob", at=JAN1 + 2 * DAY)
        assert (expired.kind, expired.points, expired.lot_id) == (EntryKind.EXPIRE, -10, "bob#1")
        assert expired.key != mine.key
        assert led.expire("bob", at=JAN1 + 3 * DAY) == []  # recorded once
        assert led.verify("bob").ok
        # the client's key still answers with the client's entry
        assert led.earn("bob", 5, at=JAN1, key="expire:bob#1:0") == mine
        assert led.balance("bob") == Balance(active=5, expired=10, lifetime=15)
    finally:
        store.close()


def test_verify_catches_a_credit_with_draws_and_an_expiry_of_no_expired_points() -> None:
    import attrs

    led = ledger()
    led.earn("ann", 100, at=JAN1, key="o1", expires_at=JAN1 + 10 * DAY)
    led.adjust("ann", -5, at=JAN1 + DAY, key="fix", reason="typo")
    led.expire("ann", at=JAN1 + 11 * DAY)
    earn, adjust, expire = led.entries("ann")
    assert verify_entries("ann", [earn, adjust, expire]).ok
    # the debit of 5 turned into a credit of 5 that still names the lot it drew from
    credit = attrs.evolve(adjust, points=5)
    report = verify_entries("ann", [earn, credit, expire])
    assert any("credit" in p and "draws" in p for p in report.problems), report.problems
    # an expiry of +95 (or 0) records no expired points
    for points in (95, 0):
        forged = attrs.evolve(expire, points=points)
        report = verify_entries("ann", [earn, adjust, forged])
        assert any("records" in p for p in report.problems), report.problems
        with pytest.raises(LedgerCorrupt, match="ann#3"):
            LedgerState.replay("ann", [earn, adjust, forged])


def test_the_redemption_order_is_taken_by_value_too_and_checked() -> None:
    # two lots: 10 earned first expiring late, 10 earned later expiring soon. Soonest expiry
    # draws the later lot first, FIFO the first; the order given as its value behaves the
    # same as the member (a text order used to be taken as "not soonest expiry": FIFO)
    def state() -> LedgerState:
        s = LedgerState("ann")
        s.apply(s.plan_earn(10, at=JAN1, key="o1", expires_at=JAN1 + 90 * DAY))
        s.apply(s.plan_earn(10, at=JAN1 + DAY, key="o2", expires_at=JAN1 + 30 * DAY))
        return s

    for order, lot in (
        ("soonest_expiry", "ann#2"),
        (RedemptionOrder.SOONEST_EXPIRY, "ann#2"),
        ("fifo", "ann#1"),
        (RedemptionOrder.FIFO, "ann#1"),
    ):
        entry = state().plan_redeem(5, at=JAN1 + 2 * DAY, key="r1", order=order)
        assert [d.lot_id for d in entry.draws] == [lot], order
    with pytest.raises(ValidationError, match="order='newest'"):
        state().plan_redeem(5, at=JAN1 + 2 * DAY, key="r1", order="newest")
