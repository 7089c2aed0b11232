"""A return records the returns policy it was written under, and ``verify`` judges a negative
balance by it (not by the policy of whichever handle asks, which a shop may have changed
since). Returns stored before entries recorded it (``loyalty.entry`` schema 1, fixture
``tests/fixtures/main_b7cf9f5_ledger`` written by commit b7cf9f5) read with
``returns_policy`` None and are judged, as before, by the policy asked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from csmcore.errors import IdempotencyConflict, InvalidType, ValidationError
from csmcore.loyalty import EntryKind, LedgerEntry, LedgerState, ReturnsPolicy, verify_entries
from csmcore.serialization import from_document, to_data, to_document
from csmcore.services import Ledger
from csmcore.storage import Store, open_store
from tests.old_stores import opened_copy

FIXTURE = Path(__file__).parent.parent / "fixtures" / "main_b7cf9f5_ledger"
DOCUMENTS: dict[str, Any] = json.loads((FIXTURE / "documents.json").read_text("utf-8"))
UNLIMITED, WITHIN, PENDING = (
    ReturnsPolicy.UNLIMITED,
    ReturnsPolicy.WITHIN_BALANCE,
    ReturnsPolicy.ONLY_PENDING,
)


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2025, 3, day, hour, tzinfo=timezone.utc)


@pytest.fixture
def old_store(tmp_path: Path) -> Iterator[Store]:
    """A copy of that commit's store (opening it migrates it forward)."""
    with opened_copy(FIXTURE.name, tmp_path) as opened:
        yield opened


def test_each_return_records_the_policy_it_was_written_under() -> None:
    store = open_store("memory://")
    for n, policy in enumerate((UNLIMITED, WITHIN, PENDING)):
        led = Ledger(store, returns=policy)
        earned = led.earn("ann", 50, at=at(1 + n), key=f"o{n}", pending_until=at(9))
        back = led.reverse(earned.entry_id, at=at(1 + n), key=f"ret{n}", points=10)
        assert back.returns_policy is policy
        assert earned.returns_policy is None  # only returns record one
    # the policy given for one return wins over the handle's
    led = Ledger(store, returns=WITHIN)
    earned = led.earn("ann", 50, at=at(4), key="o9")
    back = led.reverse(earned.entry_id, at=at(4), key="ret9", policy=UNLIMITED)
    assert back.returns_policy is UNLIMITED
    assert led.verify("ann").ok


def test_the_policy_round_trips_in_schema_2() -> None:
    store = open_store("memory://")
    led = Ledger(store, returns=UNLIMITED)
    earned = led.earn("ann", 50, at=at(1), key="o1")
    back = led.reverse(earned.entry_id, at=at(2), key="ret1")
    document = to_document(back)
    assert document["schema"] == 2
    assert document["data"]["returns_policy"] == "unlimited"
    assert from_document(document, LedgerEntry) == back
    assert to_data(earned)["returns_policy"] is None


def test_a_policy_on_another_kind_or_of_another_type_is_refused() -> None:
    state = LedgerState("ann")
    state.apply(state.plan_earn(50, at=at(1), key="o1"))
    earn = state.entries[0]
    with pytest.raises(ValidationError, match="only a reverse records the returns policy"):
        attrs.evolve(earn, returns_policy=UNLIMITED)
    back = state.plan_reverse(earn.entry_id, at=at(2), key="r1", policy=WITHIN)
    with pytest.raises(InvalidType, match="returns_policy='unlimited' is a str"):
        attrs.evolve(back, returns_policy="unlimited")  # type: ignore[arg-type]


def test_plan_reverse_takes_the_policy_by_value_and_records_the_member() -> None:
    """``LedgerState.plan_reverse`` is public: a policy given by value (as ``Ledger.reverse``
    takes it) is read as that policy and the entry records the ReturnsPolicy member (it
    recorded the string, which then could not be serialised, and judged the return under
    ``within_balance``); an unknown one is refused naming ``policy``."""
    state = LedgerState("ann")
    state.apply(state.plan_earn(50, at=at(1), key="o1"))
    state.apply(state.plan_redeem(45, at=at(1), key="s1"))
    earn = state.entries[0]
    back = state.plan_reverse(earn.entry_id, at=at(2), key="r1", points=20, policy="unlimited")
    assert back.returns_policy is UNLIMITED
    assert back.points == -20
    assert to_document(back)["data"]["returns_policy"] == "unlimited"
    with pytest.raises(ValidationError, match=r"policy='lenient'.*unlimited"):
        state.plan_reverse(earn.entry_id, at=at(2), key="r2", points=1, policy="lenient")


def test_verify_judges_each_return_by_its_recorded_policy() -> None:
    # ann: 100 earned, 80 redeemed, the purchase returned under UNLIMITED: 80 negative
    store = open_store("memory://")
    led = Ledger(store, returns=UNLIMITED)
    earned = led.earn("ann", 100, at=at(1), key="o1")
    led.redeem("ann", 80, at=at(1), key="r1")
    back = led.reverse(earned.entry_id, at=at(2), key="ret1")
    assert led.balance("ann").negative == 80
    entries = list(led.entries("ann"))
    # whatever the policy asked now, the return was allowed to go negative when written
    for policy in (UNLIMITED, WITHIN, PENDING):
        assert Ledger(store, returns=policy).verify("ann").ok
    assert verify_entries("ann", entries, allow_negative=False).ok
    # a forged return claiming WITHIN_BALANCE that went negative is caught
    forged = [*entries[:-1], attrs.evolve(back, returns_policy=WITHIN)]
    problems = verify_entries("ann", forged, allow_negative=True).problems
    assert problems == (
        "entry 3 ('ann#3', reverse) leaves 80 points negative; it was written under "
        "ReturnsPolicy.WITHIN_BALANCE, which forbids it",
        "the negative balance is 80; the policy forbids it",
    )
    # one claiming ONLY_PENDING that took active points of its own lot is caught too
    forged = [*entries[:-1], attrs.evolve(back, returns_policy=PENDING)]
    problems = verify_entries("ann", forged, allow_negative=True).problems
    assert (
        "entry 3 ('ann#3', reverse) was written under ReturnsPolicy.ONLY_PENDING but takes "
        "points that are not the pending points of its own lot"
    ) in problems


def test_an_only_pending_return_of_pending_points_verifies() -> None:
    led = Ledger(open_store("memory://"), returns=PENDING)
    earned = led.earn("ann", 40, at=at(1), key="o1", pending_until=at(10))
    led.earn("bob", 5, at=at(1), key="o2")
    led.reverse(earned.entry_id, at=at(2), key="ret1", points=15)
    assert led.verify("ann").ok


def test_entries_stored_before_read_with_no_policy_and_are_judged_as_before(
    old_store: Store,
) -> None:
    for member, documents in DOCUMENTS.items():
        assert {d["schema"] for d in documents} == {1}
        stored = Ledger(old_store).entries(member)
        assert [from_document(d, LedgerEntry) for d in documents] == list(stored)
        assert all(e.returns_policy is None for e in stored)
    ann = Ledger(old_store).entries("ann")
    assert [e.kind for e in ann] == [
        EntryKind.EARN,
        EntryKind.EARN,
        EntryKind.REDEEM,
        EntryKind.REVERSE,
        EntryKind.EARN,
    ]
    # ann's return went 70 negative under UNLIMITED (30 still owed): nothing recorded it, so
    # the handle's policy decides, as it did when the store was written
    assert Ledger(old_store, returns=UNLIMITED).verify("ann").ok
    report = Ledger(old_store).verify("ann")
    assert report.problems == (
        "entry 4 ('ann#4', reverse) leaves 70 points negative; the policy forbids it",
        "the negative balance is 30; the policy forbids it",
    )
    assert Ledger(old_store).verify("bob").ok
    # the ledger goes on: a new return records its policy next to the old entries
    led = Ledger(old_store, returns=UNLIMITED)
    more = led.earn("bob", 10, at=at(6), key="order-10")
    back = led.reverse(more.entry_id, at=at(7), key="return-10")
    assert Ledger(old_store).entries("bob")[-1] == back
    assert back.returns_policy is UNLIMITED
    assert Ledger(old_store).verify("bob").ok


@pytest.mark.parametrize("store_url", ["memory://", "sqlite"])
def test_a_retry_under_another_policy_conflicts(store_url: str, tmp_path: Path) -> None:
    # the policy is part of what a return records: the same key with another policy is
    # another payload (IdempotencyConflict, as for points), not the original under a policy
    # the caller did not ask for
    url = f"sqlite:///{tmp_path / 's.db'}" if store_url == "sqlite" else store_url
    store = open_store(url)
    try:
        led = Ledger(store, returns=UNLIMITED)
        earned = led.earn("ann", 50, at=at(1), key="o1", pending_until=at(9))
        back = led.reverse(earned.entry_id, at=at(2), key="r1", points=10)
        assert led.reverse(earned.entry_id, at=at(2), key="r1", points=10) == back
        assert (
            Ledger(store, returns=WITHIN).reverse(
                earned.entry_id, at=at(2), key="r1", points=10, policy=UNLIMITED
            )
            == back
        )
        for other in (WITHIN, PENDING):
            with pytest.raises(IdempotencyConflict, match=r"differs in: returns_policy"):
                led.reverse(earned.entry_id, at=at(2), key="r1", points=10, policy=other)
            with pytest.raises(IdempotencyConflict, match=r"differs in: returns_policy"):
                Ledger(store, returns=other).reverse(earned.entry_id, at=at(2), key="r1")
        assert len(led.entries("ann")) == 2
    finally:
        store.close()


def test_a_retry_of_a_return_stored_before_matches_any_policy(old_store: Store) -> None:
    # bob's return of 30 (order-9) was stored without a policy: a retry gets the original
    # whatever the policy, as before
    stored = Ledger(old_store).entries("bob")[-1]
    for policy in ReturnsPolicy:
        again = Ledger(old_store, returns=policy).reverse(
            "bob#1", at=stored.at, key="return-9", points=30
        )
        assert again == stored


def test_verify_summary_names_only_the_forbidden_part_of_a_mixed_negative_balance() -> None:
    # ann: two purchases of 100 and 50, 150 redeemed, both returned under UNLIMITED: 150
    # negative. One return is forged to claim WITHIN_BALANCE: its 50 are forbidden, the
    # other 100 were allowed, so the summary must not blame the whole balance on the policy.
    led = Ledger(open_store("memory://"), returns=UNLIMITED)
    first = led.earn("ann", 100, at=at(1), key="o1")
    second = led.earn("ann", 50, at=at(1), key="o2")
    led.redeem("ann", 150, at=at(1), key="s1")
    led.reverse(first.entry_id, at=at(2), key="ret1")
    led.reverse(second.entry_id, at=at(3), key="ret2")
    entries = list(led.entries("ann"))
    assert led.balance("ann").negative == 150
    forged = [*entries[:-1], attrs.evolve(entries[-1], returns_policy=WITHIN)]
    problems = verify_entries("ann", forged, allow_negative=True).problems
    assert problems == (
        "entry 5 ('ann#5', reverse) leaves 50 points negative; it was written under "
        "ReturnsPolicy.WITHIN_BALANCE, which forbids it",
        "the negative balance is 150; returns whose policy forbids it left 50 of the 150 "
        "points that went negative",
    )
