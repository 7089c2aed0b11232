"""The program on a real (memory) ledger: earning with tier multipliers and caps read from
the ledger, idempotent retries, pending and expiry on the lots, returns lowering the tier,
the loyalty member for conditions, tier reviews, and SLA breach compensation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

from csmcore.conditions import Field
from csmcore.errors import CsmError, IdempotencyConflict, ValidationError
from csmcore.loyalty import (
    Cap,
    EndOfPeriodExpiry,
    EntryKind,
    LoyaltyEvent,
    Multiplier,
    PendingPolicy,
    Period,
    Program,
    Purchase,
    RecoveryPolicy,
    ReturnsPolicy,
    SpendRule,
    Tier,
    TierPolicy,
)
from csmcore.serialization import from_data, to_data
from csmcore.services import (
    UNTIL_ACTIVATED,
    Ledger,
    compensate,
    earn_points,
    loyalty_member,
    quote_points,
    return_points,
    review_member_tiers,
    tier_of,
)
from csmcore.storage import open_store
from csmcore.tickets import Role, Ticket
from tests.loyalty.program_support import utc
from tests.loyalty.test_recovery import SLA, breached_ticket
from tests.sla.support import at

D = Decimal
SHOP = Program(
    name="shop",
    rules=[SpendRule(name="base", points=D(1))],
    multipliers=[Multiplier(name="gold", factor=D(2), tiers={"gold"})],
    caps=[Cap(name="monthly", points=3000, period=Period.MONTH, events={"purchase"})],
    expiry=EndOfPeriodExpiry(period=Period.YEAR, min_age=relativedelta(months=12)),
    tiers=TierPolicy(
        tiers=[Tier(name="silver", threshold=1000), Tier(name="gold", threshold=2000)]
    ),
)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(open_store("memory://"))


def test_earning_reads_tier_and_cap_from_the_ledger(ledger: Ledger) -> None:
    first = earn_points(
        ledger, SHOP, "ann", Purchase.of(D("1500.00")), at=utc(2026, 3, 1), key="o1"
    )
    # no tier yet: 1500 points; they expire at the end of the year in which they are 12
    # months old (1 March 2027, in 2027 -> 1 January 2028)
    assert first is not None
    assert (first.points, first.expires_at, first.reason) == (1500, utc(2028, 1, 1), "purchase")
    assert first.spend == D("1500.00")
    second = earn_points(
        ledger, SHOP, "ann", Purchase.of(D("600.00")), at=utc(2026, 3, 2), key="o2"
    )
    # silver now (1500): no multiplier; 2100 in 2026 after it -> gold
    assert second is not None
    assert second.points == 600
    assert tier_of(ledger, SHOP, "ann", utc(2026, 3, 2)).tier == "gold"
    third = earn_points(ledger, SHOP, "ann", Purchase.of(D("500.00")), at=utc(2026, 3, 3), key="o3")
    # gold doubles 500 to 1000, but March has 3000 - 2100 = 900 left under the cap
    assert third is not None
    assert third.points == 900
    assert (
        earn_points(ledger, SHOP, "ann", Purchase.of(D(10)), at=utc(2026, 3, 4), key="o4") is None
    )
    # April: the cap has room again, gold doubles
    april = earn_points(ledger, SHOP, "ann", Purchase.of(D(10)), at=utc(2026, 4, 1), key="o5")
    assert april is not None
    assert april.points == 20
    assert ledger.verify("ann").ok


def test_a_retry_with_the_same_key_returns_the_first_entry(ledger: Ledger) -> None:
    purchase = Purchase.of(D("2900.00"), reference="order-9")
    first = earn_points(ledger, SHOP, "bob", purchase, at=utc(2026, 5, 1), key="order-9")
    # the retry comes later: re-quoting would see the cap used up; the first entry comes back
    again = earn_points(ledger, SHOP, "bob", purchase, at=utc(2026, 5, 2), key="order-9")
    assert again == first
    assert len(ledger.entries("bob")) == 1
    assert ledger.balance("bob", utc(2026, 5, 3)).active == 2900


def test_a_key_used_for_another_write_conflicts(ledger: Ledger) -> None:
    # the key of a redemption, or of another purchase, is not a retry of this purchase: it
    # used to come back as if it were the earn (a REDEEM of -100 points as the result)
    ledger.earn("bob", 500, at=utc(2026, 5, 1), key="gift")
    ledger.redeem("bob", 100, at=utc(2026, 5, 1), key="basket-1")
    with pytest.raises(IdempotencyConflict, match="differs in: kind"):
        earn_points(ledger, SHOP, "bob", Purchase.of(D(50)), at=utc(2026, 5, 2), key="basket-1")
    first = earn_points(
        ledger, SHOP, "bob", Purchase.of(D(50), reference="o-1"), at=utc(2026, 5, 2), key="o-1"
    )
    assert first is not None
    with pytest.raises(IdempotencyConflict, match="spend"):
        earn_points(
            ledger, SHOP, "bob", Purchase.of(D(70), reference="o-1"), at=utc(2026, 5, 2), key="o-1"
        )
    with pytest.raises(IdempotencyConflict, match="reference"):
        earn_points(
            ledger, SHOP, "bob", Purchase.of(D(50), reference="o-2"), at=utc(2026, 5, 2), key="o-1"
        )
    survey = LoyaltyEvent(name="survey_answered")
    with pytest.raises(IdempotencyConflict, match="reason"):
        earn_points(ledger, SHOP, "bob", survey, at=utc(2026, 5, 2), key="o-1")
    same = Purchase.of(D("50.00"), reference="o-1")
    assert earn_points(ledger, SHOP, "bob", same, at=utc(2026, 5, 3), key="o-1") == first
    assert len(ledger.entries("bob")) == 3


def test_quote_points_writes_nothing(ledger: Ledger) -> None:
    quote = quote_points(ledger, SHOP, "cy", Purchase.of(D(99)), at=utc(2026, 1, 1))
    assert quote.points == 99
    assert ledger.entries("cy") == []


def test_pending_points_are_pending_on_the_ledger_then_activate(ledger: Ledger) -> None:
    window = Program(
        name="returns window",
        rules=[SpendRule(name="base", points=D(1))],
        pending=PendingPolicy(after=timedelta(days=30)),
    )
    entry = earn_points(ledger, window, "dee", Purchase.of(D(50)), at=utc(2026, 3, 1), key="o1")
    assert entry is not None
    assert entry.pending_until == utc(2026, 3, 31)
    assert ledger.balance("dee", utc(2026, 3, 30)).pending == 50
    assert ledger.balance("dee", utc(2026, 3, 31)).active == 50
    explicit = Program(
        name="on delivery",
        rules=[SpendRule(name="base", points=D(1))],
        pending=PendingPolicy(explicit=True),
    )
    held = earn_points(ledger, explicit, "eve", Purchase.of(D(50)), at=utc(2026, 3, 1), key="o1")
    assert held is not None
    assert held.pending_until == UNTIL_ACTIVATED
    assert ledger.balance("eve", utc(2030, 1, 1)).pending == 50
    assert held.lot_id is not None
    ledger.activate("eve", held.lot_id, at=utc(2026, 3, 5), key="delivered")
    assert ledger.balance("eve", utc(2026, 3, 5)).active == 50


def test_a_return_lowers_the_qualifying_points(ledger: Ledger) -> None:
    bought = earn_points(ledger, SHOP, "fay", Purchase.of(D(1200)), at=utc(2026, 6, 1), key="o1")
    assert bought is not None
    assert tier_of(ledger, SHOP, "fay", utc(2026, 6, 1)).tier == "silver"
    ledger.reverse(bought.entry_id, at=utc(2026, 6, 5), key="return-o1", points=300)
    status = tier_of(ledger, SHOP, "fay", utc(2026, 6, 5))
    # silver was reached on 1 June and stays valid; the running amount is 900 now
    assert (status.tier, status.qualifying, status.needed) == ("silver", D(900), D(1100))


def test_spend_tiers_count_the_returned_share_of_the_spend(ledger: Ledger) -> None:
    spend_tiers = Program(
        name="spend",
        rules=[SpendRule(name="base", points=D(1), per=D(10))],
        tiers=TierPolicy(tiers=[Tier(name="plus", threshold=D(500))], basis="spend"),
    )
    bought = earn_points(
        ledger, spend_tiers, "gus", Purchase.of(D(400)), at=utc(2026, 1, 5), key="o1"
    )
    assert bought is not None
    assert bought.points == 40
    # half the points returned: half the 400.00 spend (200.00) no longer qualifies
    ledger.reverse(bought.entry_id, at=utc(2026, 1, 6), key="r1", points=20)
    assert tier_of(ledger, spend_tiers, "gus", utc(2026, 1, 6)).qualifying == D(200)


def test_the_loyalty_member_reads_tier_and_balances(ledger: Ledger) -> None:
    earn_points(ledger, SHOP, "hal", Purchase.of(D(2500)), at=utc(2026, 2, 1), key="o1")
    ledger.redeem("hal", 500, at=utc(2026, 2, 2), key="basket")
    member = loyalty_member(ledger, SHOP, "hal", utc(2026, 2, 3))
    assert (member.tier, member.tier_rank, member.points, member.lifetime) == (
        "gold",
        2,
        2000,
        2500,
    )
    assert (Field("member.tier") == "gold").matches(member)
    assert not (Field("member.points") > 2000).matches(member)


def test_a_program_without_tiers_has_no_tier_status(ledger: Ledger) -> None:
    plain = Program(name="plain", rules=[SpendRule(name="base", points=D(1))])
    with pytest.raises(ValidationError, match="has no tiers"):
        tier_of(ledger, plain, "ann", utc(2026, 1, 1))
    assert loyalty_member(ledger, plain, "ann", utc(2026, 1, 1)).tier is None


def test_review_member_tiers_reports_changes_and_writes_nothing(ledger: Ledger) -> None:
    earn_points(ledger, SHOP, "ida", Purchase.of(D(2500)), at=utc(2026, 2, 1), key="o1")
    earn_points(ledger, SHOP, "jon", Purchase.of(D(1200)), at=utc(2026, 2, 1), key="o1")
    earn_points(ledger, SHOP, "jon", Purchase.of(D(1200)), at=utc(2027, 2, 1), key="o2")
    changes = review_member_tiers(ledger, SHOP, ["ida", "jon"], utc(2028, 1, 1))
    assert [(c.member_id, c.before.tier, c.after.tier) for c in changes] == [
        ("ida", "gold", "silver")
    ]
    assert review_member_tiers(ledger, SHOP, ["ida", "jon"], utc(2028, 1, 1)) == changes
    assert len(ledger.entries("ida")) == 1


def test_an_event_earns_through_an_event_rule(ledger: Ledger) -> None:
    from csmcore.loyalty import EventRule

    survey = Program(
        name="survey", rules=[EventRule(name="survey", event="survey_answered", points=50)]
    )
    entry = earn_points(
        ledger,
        survey,
        "kim",
        LoyaltyEvent(name="survey_answered", reference="S-1"),
        at=utc(2026, 1, 1),
        key="survey-S-1",
    )
    assert entry is not None
    assert (entry.points, entry.reason, entry.reference, entry.spend) == (
        50,
        "survey_answered",
        "S-1",
        None,
    )


# -- service recovery ------------------------------------------------------------------------


def test_compensate_grants_each_breached_cycle_once(ledger: Ledger) -> None:
    policy = RecoveryPolicy(points=100, per_target={"first_reply": 250})
    ticket = breached_ticket()
    results = SLA.evaluate(ticket, at(6, 18))
    granted = compensate(ledger, policy, ticket, results, at(6, 18))
    assert [(e.points, e.key, e.reason, e.reference) for e in granted] == [
        (250, "sla-recovery:T-1:first_reply:1", "sla_breach", "T-1:first_reply:1"),
        (100, "sla-recovery:T-1:next_reply:2", "sla_breach", "T-1:next_reply:2"),
    ]
    assert {e.member_id for e in granted} == {"ann@example.com"}
    # run again (an escalation engine retried, later): nothing more
    assert compensate(ledger, policy, ticket, SLA.evaluate(ticket, at(7, 9)), at(7, 9)) == []
    assert ledger.balance("ann@example.com", at(7, 9)).active == 350
    assert all(e.kind is EntryKind.EARN for e in ledger.entries("ann@example.com"))


def test_compensate_respects_the_monthly_cap_across_tickets(ledger: Ledger) -> None:
    policy = RecoveryPolicy(points=100, cap=250)
    ticket = breached_ticket()
    first = compensate(ledger, policy, ticket, SLA.evaluate(ticket, at(6, 18)), at(6, 18))
    assert [e.points for e in first] == [100, 100]
    # a second ticket of the same requester: first reply due 11:00, breached; 50 left in January
    second, _ = Ticket.create(
        at=at(8, 9),
        ticket_id="T-2",
        created_by=Role.REQUESTER,
        channel="email",
        priority="normal",
        requester="ann@example.com",
    )
    results = SLA.evaluate(second, at(8, 12))
    granted = compensate(ledger, policy, second, results, at(8, 12))
    assert [(e.key, e.points) for e in granted] == [("sla-recovery:T-2:first_reply:1", 50)]
    assert compensate(ledger, policy, second, results, at(8, 13)) == []
    # February: the cap has room again, but every breach so far was granted once already
    assert compensate(ledger, policy, second, results, utc(2025, 2, 1)) == []


def test_compensate_judges_the_cap_and_the_keys_on_the_ledger_it_writes_to() -> None:
    # Two compensations of the same member at once (two workers of a nightly job, or one
    # racing the escalation engine's GrantPoints): the other one's grant lands after this one
    # started, before its first write. The cap and the keys must be judged on the ledger as it
    # is written, not on what was read before.
    policy = RecoveryPolicy(points=100, cap=150)
    ticket = breached_ticket()  # two breached cycles
    other, _ = Ticket.create(
        at=at(6, 9),
        ticket_id="T-2",
        created_by=Role.REQUESTER,
        channel="email",
        priority="normal",
        requester="ann@example.com",
    )
    when = at(6, 18)

    def racing(store: Any, meanwhile: Any) -> Ledger:
        """A Ledger on ``store`` that runs ``meanwhile`` once: just after compensate first
        reads the member's entries, or just before its first write."""
        pending = [meanwhile]

        def race() -> None:
            if pending:
                pending.pop()()

        class Writes:
            def __init__(self, inner: Any) -> None:
                self.inner = inner

            def write(self, member_ids: Any, plan: Any) -> Any:
                race()
                return self.inner.write(member_ids, plan)

        class Racing(Ledger):
            @property
            def repository(self) -> Any:
                return Writes(super().repository)

            def entries(self, member_id: str, *, until: Any = None) -> Any:
                seen = super().entries(member_id, until=until)
                race()  # after the read: what was read is out of date
                return seen

        return Racing(store)

    store = open_store("memory://")
    ledger = racing(
        store, lambda: compensate(Ledger(store), policy, other, SLA.evaluate(other, when), when)
    )
    compensate(ledger, policy, ticket, SLA.evaluate(ticket, when), when)
    entries = Ledger(store).entries("ann@example.com")
    assert sum(e.points for e in entries) == 150  # the cap, not 250
    assert entries[0].key == "sla-recovery:T-2:first_reply:1"
    # The same cycles granted by the other side meanwhile (at another instant): nothing twice
    # and no IdempotencyConflict.
    store = open_store("memory://")
    ledger = racing(
        store, lambda: compensate(Ledger(store), policy, ticket, SLA.evaluate(ticket, when), when)
    )
    later = at(6, 19)
    assert compensate(ledger, policy, ticket, SLA.evaluate(ticket, later), later) == []
    assert sum(e.points for e in Ledger(store).entries("ann@example.com")) == 150


def test_compensate_refuses_something_else_than_a_ticket(ledger: Ledger) -> None:
    with pytest.raises(ValidationError, match="a Ticket"):
        compensate(ledger, RecoveryPolicy(points=1), "T-1", [], at(6, 18))  # type: ignore[arg-type]


class _Racing:
    """A store whose ``ledger`` role runs ``before`` once, just before the first write goes
    through: another process compensating between this one's reading and writing."""

    roles = frozenset({"ledger"})

    def __init__(self, store: Any, before: Any) -> None:
        self._inner = store.ledger
        self._before = before
        self.ledger = self

    def read(self, member_id: str, view: Any) -> Any:
        return self._inner.read(member_id, view)

    def write(self, member_ids: Any, plan: Any) -> Any:
        before, self._before = self._before, None
        if before is not None:
            before()
        return self._inner.write(member_ids, plan)

    def members(self) -> list[str]:
        return list(self._inner.members())


def test_concurrent_compensations_never_exceed_the_cap() -> None:
    # two runs (two tickets of one requester) at once: the cap (250 a month) must hold by
    # the entries written, not by what each run read before the other wrote (it gave 300)
    store = open_store("memory://")
    policy = RecoveryPolicy(points=100, cap=250)
    first = breached_ticket()  # two breaches: 200
    second, _ = Ticket.create(
        at=at(6, 9),
        ticket_id="T-2",
        created_by=Role.REQUESTER,
        channel="email",
        priority="normal",
        requester="ann@example.com",
    )  # first reply due 11:00: breached
    other = Ledger(store)

    def meanwhile() -> None:
        compensate(other, policy, first, SLA.evaluate(first, at(6, 18)), at(6, 18))

    racing = Ledger(_Racing(store, meanwhile))
    granted = compensate(racing, policy, second, SLA.evaluate(second, at(6, 18)), at(6, 18))
    assert [e.points for e in granted] == [50]
    assert other.balance("ann@example.com").active == 250


def test_concurrent_purchases_never_earn_past_the_cap() -> None:
    # two purchases of one member posted at once: 2,500 then 1,000 under a cap of 3,000 a
    # month; the second must get the 500 left, not the 1,000 it quoted before the first wrote
    store = open_store("memory://")
    other = Ledger(store)

    def meanwhile() -> None:
        earn_points(other, SHOP, "ann", Purchase.of(D(2500)), at=utc(2026, 3, 1), key="o1")

    racing = Ledger(_Racing(store, meanwhile))
    entry = earn_points(racing, SHOP, "ann", Purchase.of(D(1000)), at=utc(2026, 3, 1), key="o2")
    assert entry is not None
    assert (entry.points, other.balance("ann").active) == (500, 3000)


@pytest.mark.parametrize(
    ("returns", "outcome"),
    [
        # 100 earned, 80 redeemed, then the purchase is returned whole
        ("within_balance", "InsufficientPoints"),  # 20 held, 100 to claw back: refused
        ("unlimited", (-100, 80)),  # clawed back: 20 from the lot, 80 owed
        ("only_pending", "InvalidTransition"),  # the points were active: they stay
    ],
)
def test_a_return_follows_the_programs_returns_policy(
    ledger: Ledger, returns: str, outcome: object
) -> None:
    program = Program(name="p", rules=[SpendRule(name="base", points=D(1))], returns=returns)
    assert program.returns is ReturnsPolicy(returns)
    earned = earn_points(ledger, program, "ann", Purchase.of(D("100.00")), at=at(6, 9), key="o1")
    assert earned is not None
    ledger.redeem("ann", 80, at=at(6, 10), key="r1")
    # the ledger handle's own policy (within balance by default) is not the one applied
    if isinstance(outcome, str):
        with pytest.raises(CsmError) as caught:
            return_points(ledger, program, earned.entry_id, at=at(6, 11), key="ret")
        assert type(caught.value).__name__ == outcome
        assert len(ledger.entries("ann")) == 2  # nothing written
    else:
        entry = return_points(ledger, program, earned.entry_id, at=at(6, 11), key="ret")
        assert (entry.points, ledger.balance("ann").negative) == outcome
        # a retry with the same key returns the same entry
        assert return_points(ledger, program, earned.entry_id, at=at(6, 11), key="ret") == entry


def test_a_program_written_before_returns_existed_reads_with_the_default() -> None:
    data = to_data(Program(name="p", rules=[SpendRule(name="base", points=D(1))]))
    assert data["returns"] == "within_balance"
    del data["returns"]  # as a program stored by the earlier release
    assert from_data(data, Program).returns is ReturnsPolicy.WITHIN_BALANCE
    with pytest.raises(ValidationError, match="returns='sometimes'"):
        Program(name="p", rules=[SpendRule(name="base", points=D(1))], returns="sometimes")
    with pytest.raises(ValidationError, match="program"):
        return_points(ledger_of(), "p", "ann#1", at=at(6, 9), key="k")  # type: ignore[arg-type]


def ledger_of() -> Ledger:
    return Ledger(open_store("memory://"))
