"""SQLite: statements are bounded by the store's statement timeout, set in the URL like
PostgreSQL's, and a statement over it leaves nothing half-written (issue 11).

The runaway statements below never end on their own; the hang guard only turns a broken timeout
into a failure (it is not a speed check).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from csmcore import conditions as cd
from csmcore.errors import StorageError, ValidationError
from csmcore.storage import open_store
from csmcore.storage.sqlite import SqliteStore
from csmcore.testing.builders import make_ticket
from tests.guard import hang_guard

RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"


def _open(tmp_path: Path, query: str = "") -> SqliteStore:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}{query}")
    assert isinstance(store, SqliteStore)
    return store


def test_the_default_statement_timeout_is_30_seconds(tmp_path: Path) -> None:
    store = _open(tmp_path)
    try:
        assert store.statement_timeout == 30.0
    finally:
        store.close()


@pytest.mark.parametrize("value", ["-1", "nan", "soon", "1e10", "inf"])
def test_a_bad_statement_timeout_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ValidationError, match=rf"statement_timeout={value!r}"):
        _open(tmp_path, f"?statement_timeout={value}")
    with pytest.raises(ValidationError, match="statement_timeout"):
        SqliteStore(tmp_path / "x.db", statement_timeout=float(value) if value != "soon" else -1)


def test_a_statement_over_the_timeout_raises_storage_error(tmp_path: Path) -> None:
    store = _open(tmp_path, "?statement_timeout=0.2&timeout=5")
    try:
        assert store.statement_timeout == 0.2
        with hang_guard(), pytest.raises(StorageError, match="statement timeout") as info:
            store.query_once(None, RUNAWAY)
        assert "0.2 s" in str(info.value)
        assert store.tickets.count(cd.Always()) == 0  # the store still works
    finally:
        store.close()


def test_a_write_over_the_timeout_leaves_nothing_written(tmp_path: Path) -> None:
    store = _open(tmp_path, "?statement_timeout=0.2")
    try:
        store.query_once(None, "SELECT 1")
        with store.tx(None, write=True) as cur:
            cur.run("CREATE TABLE probe (x INTEGER)")

        def write() -> None:
            with store.tx(None, write=True) as cur:
                cur.run("INSERT INTO probe VALUES (1)")
                cur.run(f"INSERT INTO probe {RUNAWAY}")  # interrupted mid-way

        with hang_guard(), pytest.raises(StorageError, match="statement timeout"):
            write()
        assert store.query_once(None, "SELECT count(*) FROM probe") == [(0,)]
        with store.tx(None, write=True) as cur:  # the next write works
            cur.run("INSERT INTO probe VALUES (2)")
        assert store.query_once(None, "SELECT x FROM probe") == [(2,)]
    finally:
        store.close()


def test_a_unit_of_work_over_the_timeout_writes_nothing(tmp_path: Path) -> None:
    store = _open(tmp_path, "?statement_timeout=0.2")
    try:
        with store.tx(None, write=True) as cur:
            cur.run("CREATE TABLE probe (x INTEGER)")

        def work() -> None:
            with store.unit_of_work() as uow:
                inside = uow.tickets._uow  # the unit of work's own connection
                assert inside is not None
                with store.tx(inside, write=True) as cur:
                    cur.run("INSERT INTO probe VALUES (1)")
                with store.tx(inside, write=True) as cur:
                    cur.run(RUNAWAY)

        with hang_guard(), pytest.raises(StorageError, match="statement timeout"):
            work()
        assert store.query_once(None, "SELECT count(*) FROM probe") == [(0,)]
    finally:
        store.close()


def test_a_write_over_the_timeout_in_a_unit_of_work_names_the_timeout(tmp_path: Path) -> None:
    # A writing statement interrupted inside an operation's savepoint: SQLite rolled the whole
    # transaction back, savepoint included; the error is the statement timeout, not the
    # failed "ROLLBACK TO SAVEPOINT" of a savepoint that no longer exists
    store = _open(tmp_path, "?statement_timeout=0.2")
    try:
        with store.tx(None, write=True) as cur:
            cur.run("CREATE TABLE probe (x INTEGER)")

        def work() -> None:
            with store.unit_of_work() as uow:
                inside = uow.tickets._uow
                assert inside is not None
                with store.tx(inside, write=True) as cur:
                    cur.run("INSERT INTO probe VALUES (1)")
                    cur.run(f"INSERT INTO probe {RUNAWAY}")

        with hang_guard(), pytest.raises(StorageError, match="statement timeout"):
            work()
        assert store.query_once(None, "SELECT count(*) FROM probe") == [(0,)]
        store.run_one(None, "INSERT INTO probe VALUES (2)")  # the store still works
        assert store.query_once(None, "SELECT x FROM probe") == [(2,)]
    finally:
        store.close()


def test_no_timeout_means_no_progress_handler(tmp_path: Path) -> None:
    store = _open(tmp_path, "?statement_timeout=0")
    try:
        assert store.statement_timeout == 0
        assert store._budget is None
        assert store.query_once(None, "SELECT 1") == [(1,)]
    finally:
        store.close()


def test_a_unit_of_work_sqlite_rolled_back_refuses_further_writes(tmp_path: Path) -> None:
    # SQLite rolls back the whole transaction when a writing statement is interrupted; a
    # caller that catches the error and goes on must not get its next writes committed one by
    # one outside the unit of work (a savepoint or a statement run after the rollback would
    # start and commit a transaction of its own).
    store = _open(tmp_path, "?statement_timeout=0.2")
    try:
        with store.tx(None, write=True) as cur:
            cur.run("CREATE TABLE probe (x INTEGER)")
        refused = "rolled back by SQLite"

        def work() -> None:
            with store.unit_of_work() as uow:
                inside = uow.tickets._uow
                assert inside is not None
                store.run_one(inside, "INSERT INTO probe VALUES (1)")
                with pytest.raises(StorageError, match="statement timeout"):
                    store.run_one(inside, f"INSERT INTO probe {RUNAWAY}")
                with pytest.raises(StorageError, match=refused):
                    store.run_one(inside, "INSERT INTO probe VALUES (2)")
                with pytest.raises(StorageError, match=refused):
                    uow.firings.plan("T-1", version=1, next_due=None)
                with pytest.raises(StorageError, match=refused):
                    store.run(
                        inside, lambda cur: cur.run("INSERT INTO probe VALUES (3)"), write=True
                    )
                with pytest.raises(StorageError, match=refused):
                    uow.firings.planned("T-1")
                with pytest.raises(StorageError, match=refused):
                    uow.tickets.add_many([make_ticket("T-2")])

        with hang_guard(), pytest.raises(StorageError):  # the unit of work cannot commit
            work()
        assert store.query_once(None, "SELECT count(*) FROM probe") == [(0,)]
        assert store.firings.planned("T-1") is None
        assert store.tickets.count(cd.Always()) == 0
        store.run_one(None, "INSERT INTO probe VALUES (4)")  # the store still works
        assert store.query_once(None, "SELECT x FROM probe") == [(4,)]
    finally:
        store.close()


def test_one_statement_in_a_unit_of_work_backs_out_alone(tmp_path: Path) -> None:
    # run_one runs without a savepoint on SQLite: a failing statement backs out its own rows
    # and leaves the unit of work's earlier statements and its transaction as they were
    store = _open(tmp_path)
    try:
        with store.tx(None, write=True) as cur:
            cur.run("CREATE TABLE probe (x INTEGER PRIMARY KEY)")
        with store.unit_of_work() as uow:
            inside = uow.tickets._uow
            assert inside is not None
            assert store.run_one(inside, "INSERT INTO probe VALUES (1)") == 1
            with pytest.raises(StorageError):  # the second row conflicts: none of the three
                store.run_one(inside, "INSERT INTO probe VALUES (2), (1), (3)")
            assert store.run_one(inside, "INSERT INTO probe VALUES (5)") == 1
        assert store.query_once(None, "SELECT x FROM probe ORDER BY x") == [(1,), (5,)]
    finally:
        store.close()
