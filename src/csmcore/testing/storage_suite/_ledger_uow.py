"""The ``ledger`` role inside units of work (:class:`LedgerUnitOfWorkTests`): entries commit or
roll back with the rest of the unit of work, idempotency keys hold across both paths, and
concurrent units of work never overdraw."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any, ClassVar

import pytest

from csmcore.conditions import Always
from csmcore.errors import IdempotencyConflict, InsufficientPoints
from csmcore.loyalty import EntryKind
from csmcore.services import Ledger
from csmcore.storage.ledger import LedgerRepository
from csmcore.storage.protocols import Store
from csmcore.storage.roles import offered_roles, role_of
from csmcore.testing.builders import T0, make_ticket
from csmcore.testing.storage_suite._base import (
    LedgerFaults,
    StoreFactory,
    StoreFixtures,
    check_ended_units_refuse,
)
from csmcore.testing.storage_suite._ledger_faults import (
    FAULTED_WRITES,
    fault_scene,
    ledger_snapshot,
    refused_by_the_backend,
)

__all__ = ["LedgerUnitOfWorkTests"]

DAY = timedelta(days=1)


class _Rollback(Exception):
    """Raised inside a unit of work to roll it back."""


class LedgerUnitOfWorkTests(StoreFixtures):
    """The ``ledger`` role offered inside units of work (``uow.ledger``): add this class to
    an adapter's suite when its units of work list ``"ledger"`` in their ``roles``."""

    uow_redeemers: ClassVar[int] = 4
    """Concurrent units of work in the overdraw check."""

    def _ledger(self, uow: Any) -> Ledger:
        assert "ledger" in offered_roles(uow), (
            f"{type(uow).__name__} (a unit of work) does not offer the 'ledger' role; list it "
            "in the unit of work's roles attribute"
        )
        return Ledger(uow)

    def test_a_unit_of_work_offers_the_ledger_role(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            self._ledger(uow)
            assert isinstance(role_of(uow, "ledger"), LedgerRepository)

    def test_the_ledger_of_an_ended_unit_of_work_refuses(self, store: Store) -> None:
        Ledger(store).earn("ann", 10, at=T0, key="before")
        check_ended_units_refuse(
            store,
            lambda uow: (self._ledger(uow), role_of(uow, "ledger"))[1],
            lambda ledger: {
                "read": lambda: ledger.read("ann", lambda state: state.version),
                "write": lambda: ledger.write(
                    ["ann"], lambda states: [states["ann"].plan_earn(5, at=T0, key="late")]
                ),
                "members": lambda: ledger.members(),
            },
        )
        assert [e.key for e in Ledger(store).entries("ann")] == ["before"]

    def _write_and_roll_back(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.tickets.add(make_ticket("T-1"))
            ledger = self._ledger(uow)
            ledger.earn("ann", 5, at=T0 + DAY, key="inside")
            ledger.earn("bob", 7, at=T0 + DAY, key="inside")
            assert ledger.balance("ann", T0 + DAY).active == 15  # its own entries, seen
            assert ledger.members() == ["ann", "bob"]
            raise _Rollback

    def test_a_rolled_back_unit_of_work_leaves_no_entry(self, store: Store) -> None:
        Ledger(store).earn("ann", 10, at=T0, key="before")
        with pytest.raises(_Rollback):
            self._write_and_roll_back(store)
        outside = Ledger(store)
        assert [e.key for e in outside.entries("ann")] == ["before"]
        assert outside.entries("bob") == []
        assert outside.members() == ["ann"]
        assert outside.balance("ann", T0 + DAY).active == 10
        assert store.tickets.count(Always()) == 0  # the rest of it rolled back too
        # another writer now takes the seq the rolled-back entry had: nothing stale is read
        again = outside.earn("ann", 3, at=T0 + DAY, key="after")
        assert again.seq == 2
        assert outside.balance("ann", T0 + DAY).active == 13
        assert outside.verify("ann").ok

    def test_a_committed_unit_of_work_keeps_its_entries(self, store: Store) -> None:
        Ledger(store).earn("ann", 10, at=T0, key="before")
        with store.unit_of_work() as uow:
            uow.tickets.add(make_ticket("T-1"))
            ledger = self._ledger(uow)
            first = ledger.earn("ann", 5, at=T0 + DAY, key="inside")
            spent = ledger.redeem("ann", 12, at=T0 + DAY, key="spend")
            moved = ledger.transfer("ann", "bob", 3, at=T0 + DAY, key="give")
        outside = Ledger(store)
        assert list(outside.entries("ann"))[1:] == [first, spent, moved[0]]
        assert list(outside.entries("bob")) == [moved[1]]
        assert outside.balance("ann", T0 + DAY).active == 0
        assert outside.balance("bob", T0 + DAY).active == 3
        assert [t.id for t in store.tickets.find(Always())] == ["T-1"]
        assert outside.verify("ann").ok
        assert outside.verify("bob").ok

    def test_a_backend_fault_in_a_unit_of_work_keeps_nothing_of_it(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        """A backend failure at the second entry of a transfer inside a unit of work raises
        StorageError there; the unit of work it ends keeps none of its writes, and the same
        writes go through once the backend works again (needs :class:`LedgerFaults`)."""
        faults: LedgerFaults = self.hook(store_factory, LedgerFaults)
        fault_scene(Ledger(store))
        before = ledger_snapshot(Ledger(store))
        transfer, _ = FAULTED_WRITES["transfer"]

        def unit() -> object:
            with store.unit_of_work() as uow:
                uow.tickets.add(make_ticket("T-1"))
                ledger = self._ledger(uow)
                ledger.earn("ann", 6, at=T0 + DAY, key="inside")
                return transfer(ledger)

        faults.fail_ledger_entry(store.url, "bob", len(before["bob"]) + 1)
        try:
            refused_by_the_backend(unit, f"entry {len(before['bob']) + 1} of member 'bob'")
        finally:
            faults.heal_ledger(store.url)
        assert ledger_snapshot(Ledger(store)) == before, (
            "a unit of work ended by a backend failure in its ledger must keep none of its "
            "ledger entries"
        )
        assert store.tickets.count(Always()) == 0
        moved = unit()
        after = ledger_snapshot(Ledger(store))
        assert after["bob"] == [*before["bob"], moved[1]]  # type: ignore[index]
        assert [e.key for e in after["ann"][len(before["ann"]) :]] == ["inside", "fault-transfer"]

    def test_committed_entries_are_seen_by_another_handle(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            written = self._ledger(uow).earn("ann", 5, at=T0, key="inside")
        other = self.reopen(store)
        try:
            assert list(Ledger(other).entries("ann")) == [written]
        finally:
            other.close()

    def test_idempotency_keys_hold_across_both_paths(self, store: Store) -> None:
        first = Ledger(store).earn("ann", 10, at=T0, key="k")
        with store.unit_of_work() as uow:
            ledger = self._ledger(uow)
            assert ledger.earn("ann", 10, at=T0, key="k") == first  # the original
            with pytest.raises(IdempotencyConflict):
                ledger.earn("ann", 11, at=T0, key="k")
            second = ledger.earn("ann", 4, at=T0, key="k2")
            assert ledger.earn("ann", 4, at=T0, key="k2") == second  # its own, too
            # a refused write wrote nothing, and the unit of work goes on
            with pytest.raises(InsufficientPoints):
                ledger.redeem("ann", 100, at=T0, key="too-much")
        assert Ledger(store).earn("ann", 4, at=T0, key="k2") == second
        assert [e.key for e in Ledger(store).entries("ann")] == ["k", "k2"]

    def test_concurrent_units_of_work_never_overdraw(self, store: Store) -> None:
        ledger = Ledger(store)
        for n in range(4):
            ledger.earn("pool", 15, at=T0 - DAY, key=f"fund-{n}")
        won: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        barrier = threading.Barrier(self.uow_redeemers, timeout=30)

        def run(worker: int) -> None:
            try:
                barrier.wait()
                for n in range(100):
                    with store.unit_of_work() as uow:
                        try:
                            entry = Ledger(uow).redeem("pool", 4, at=T0, key=f"w{worker}-{n}")
                        except InsufficientPoints:
                            return
                    with lock:
                        won.append(entry.entry_id)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=run, args=(w,)) for w in range(self.uow_redeemers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == [], (
            f"concurrent units of work redeeming raised {errors!r}: inside a unit of work too, a "
            "ledger write inserts its entries only if no other writer appended to the member "
            "since the state it planned on, and plans again when one did (or the backend "
            "serialises the units of work)"
        )
        redemptions = [e for e in ledger.entries("pool") if e.kind is EntryKind.REDEEM]
        assert sorted(e.entry_id for e in redemptions) == sorted(won)  # none lost, none extra
        assert len(won) == 60 // 4
        assert ledger.balance("pool", T0).active == 0
        assert ledger.verify("pool").ok
