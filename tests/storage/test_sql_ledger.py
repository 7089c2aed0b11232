"""The SQL ledger's concurrency choice, shown step by step: a per-member version check (the
primary key ``(member_id, seq)``) makes a writer that lost the race plan again on the newer
state, and a store's cached member states never hide another handle's entries."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from csmcore.errors import InsufficientPoints
from csmcore.loyalty import LedgerEntry, LedgerState
from csmcore.services import Ledger
from csmcore.storage import open_store
from csmcore.storage._sql import SCHEMA_VERSION
from csmcore.storage.protocols import Store
from csmcore.testing.builders import T0
from tests.storage.conftest import PostgresFactory


def test_a_writer_that_loses_the_race_plans_again_on_the_new_state(
    postgres_factory: PostgresFactory,
) -> None:
    store = postgres_factory()
    other = open_store(store.url)  # another pool: another connection, another cache
    try:
        Ledger(store).earn("ann", 10, at=T0, key="earn")
        seen: list[int] = []

        def plan(states: Mapping[str, LedgerState]) -> list[LedgerEntry]:
            seen.append(states["ann"].version)
            if len(seen) == 1:  # another writer commits between our read and our insert
                Ledger(other).redeem("ann", 8, at=T0, key="theirs")
            return [states["ann"].plan_redeem(5, at=T0, key="mine")]

        with pytest.raises(InsufficientPoints, match="has 2 active points"):
            store.ledger.write(("ann",), plan)  # type: ignore[attr-defined]
        assert seen == [1, 2]  # planned on version 1, lost, planned again on version 2
        entries = Ledger(store).entries("ann")
        assert [e.key for e in entries] == ["earn", "theirs"]  # nothing lost, no overdraw
        assert Ledger(store).balance("ann").active == 2
    finally:
        other.close()


def _two_handles(url: str) -> tuple[Store, Store]:
    return open_store(url), open_store(url)


def test_a_cached_member_state_catches_up_with_another_handle(tmp_path: Path) -> None:
    a, b = _two_handles(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        Ledger(a).earn("ann", 10, at=T0, key="earn")
        assert Ledger(a).balance("ann").active == 10  # a caches ann at version 1
        Ledger(b).redeem("ann", 7, at=T0, key="b-spends")
        assert Ledger(a).balance("ann").active == 3  # a reads b's entry
        with pytest.raises(InsufficientPoints):
            Ledger(a).redeem("ann", 4, at=T0, key="a-spends")  # planned on the new state
        assert Ledger(a).verify("ann").ok
    finally:
        a.close()
        b.close()


def test_a_store_migrated_from_schema_4_gains_an_empty_ledger(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    open_store(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP INDEX csm_ledger_key")
        conn.execute("DROP TABLE csm_ledger")
        # schema 7 and 9
        for table in ("csm_firings", "csm_ticket_plans", "csm_outbox", "csm_ticket_requesters"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE csm_meta SET value = '4' WHERE name = 'schema_version'")
    conn.close()
    store = open_store(f"sqlite:///{path}")
    try:
        assert store.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
        assert Ledger(store).members() == []
        Ledger(store).earn("ann", 1, at=T0, key="k")
        assert Ledger(store).members() == ["ann"]
    finally:
        store.close()


def test_in_a_unit_of_work_a_writer_that_loses_the_race_plans_again(
    postgres_factory: PostgresFactory,
) -> None:
    """The same check inside a unit of work: the losing insert is rolled back to its
    savepoint, the write plans again on the newer state, and the unit of work goes on."""
    store = postgres_factory()
    other = open_store(store.url)
    try:
        Ledger(store).earn("ann", 10, at=T0, key="earn")
        seen: list[int] = []

        def plan(states: Mapping[str, LedgerState]) -> list[LedgerEntry]:
            seen.append(states["ann"].version)
            if len(seen) == 1:  # another connection commits between our read and our insert
                Ledger(other).redeem("ann", 8, at=T0, key="theirs")
            return [states["ann"].plan_redeem(1, at=T0, key="mine")]

        with store.unit_of_work() as uow:
            (entry,) = uow.ledger.write(("ann",), plan)  # type: ignore[attr-defined]
            assert entry.seq == 3  # after theirs
            Ledger(uow).earn("bob", 4, at=T0, key="goes-on")
        assert seen == [1, 2]
        assert [e.key for e in Ledger(store).entries("ann")] == ["earn", "theirs", "mine"]
        assert Ledger(store).balance("ann").active == 1
        assert Ledger(store).balance("bob").active == 4
    finally:
        other.close()


def test_a_unit_of_work_starts_from_the_cache_and_never_changes_it(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'cache.db'}")
    try:
        ledger = Ledger(store)
        for n in range(5):
            ledger.earn("ann", 10, at=T0, key=f"e{n}")
        cache = store.ledger._states  # type: ignore[attr-defined]
        cached = cache["ann"]
        try:
            with store.unit_of_work() as uow:
                Ledger(uow).redeem("ann", 45, at=T0, key="spend")
                assert Ledger(uow).balance("ann").active == 5
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        assert cache["ann"] is cached
        assert cached.version == 5  # untouched by the unit of work
        assert ledger.balance("ann").active == 50
        with store.unit_of_work() as uow:
            Ledger(uow).redeem("ann", 45, at=T0, key="spend")
        assert cached.version == 5
        assert ledger.balance("ann").active == 5  # the cache catches up from the table
        assert ledger.verify("ann").ok
    finally:
        store.close()


def test_a_read_does_not_fail_when_a_writer_commits_while_it_catches_up(
    postgres_factory: PostgresFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # at READ COMMITTED each statement sees the latest commits: an entry committed between
    # the read of the member's last seq and the read of the entries after the cached ones was
    # read too, and the read raised ConcurrencyError ("changed while it was read"); the
    # entries read are now bounded by the seq read first
    from csmcore.storage._sql_ledger import SqlLedger

    store = postgres_factory()
    other = open_store(store.url)  # another pool: another connection, another cache
    try:
        Ledger(other).earn("ann", 10, at=T0, key="earn")
        version = SqlLedger._version
        calls: list[int] = []

        def racing(cur: object, member: str) -> int:
            found = version(cur, member)  # type: ignore[arg-type]
            calls.append(found)
            if len(calls) == 1:  # another writer commits right after
                Ledger(other).earn("ann", 5, at=T0, key="theirs")
            return found

        monkeypatch.setattr(SqlLedger, "_version", staticmethod(racing))
        assert Ledger(store).balance("ann").active == 10  # the state at the seq read
        assert Ledger(store).balance("ann").active == 15  # and the next read catches up
        assert [e.key for e in Ledger(store).entries("ann")] == ["earn", "theirs"]
    finally:
        other.close()


def test_a_write_refused_before_anything_was_applied_keeps_the_cached_state(
    tmp_path: Path,
) -> None:
    # a plan that raises (a redemption beyond the balance) leaves the cached state as it was:
    # the next write plans on it without replaying the member; a refused entry of a plan
    # built by hand is undone in the state itself, which stays cached too
    store = open_store(f"sqlite:///{tmp_path / 'cache.db'}")
    try:
        ledger = Ledger(store)
        ledger.earn("ann", 10, at=T0, key="e")
        cache = store.ledger._states  # type: ignore[attr-defined]
        cached = cache["ann"]
        with pytest.raises(InsufficientPoints):
            ledger.redeem("ann", 11, at=T0, key="r")
        assert cache["ann"] is cached
        spent = ledger.redeem("ann", 4, at=T0, key="r")
        assert cache["ann"] is cached
        assert cached.version == 2
        assert spent.draws[0].points == 4
    finally:
        store.close()
