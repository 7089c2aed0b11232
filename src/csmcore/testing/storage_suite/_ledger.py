"""The ``ledger`` role (:class:`LedgerTests`): entries kept exactly, idempotent writes, atomic
transfers, no overdraw under concurrency, and a state machine over random operations."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import HealthCheck, settings

from csmcore.errors import (
    IdempotencyConflict,
    InsufficientPoints,
    LedgerCorrupt,
    ValidationError,
)
from csmcore.loyalty import (
    Balance,
    EntryKind,
    LedgerEntry,
    ReturnsPolicy,
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
from csmcore.testing.storage_suite._ledger_machine import (
    DAY,
    LedgerMachine,
    draws_of,
    write_purchase,
)
from csmcore.testing.storage_suite._races import _run_processes
from csmcore.testing.storage_suite._text import REFUSED_IDS

__all__ = ["LedgerTests"]


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
            draws=draws_of(attrs.evolve(spent.draws[0], points=50)),
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
        machine: Any = type("LedgerMachine", (LedgerMachine,), {"factory": staticmethod(stores)})
        machine.TestCase.settings = settings(
            max_examples=self.ledger_examples,
            stateful_step_count=self.ledger_steps,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        machine.TestCase().runTest()
