"""Schema version 8 (the outbox's due index ends with the key) and ``due_after`` of the built-in
stores: migrating real version-7 stores with many messages, a migration that fails half-way,
the index PostgreSQL plans with, and ``due_after`` against ``due`` for any cursor."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csmcore.errors import StorageError
from csmcore.escalation import NotificationRequest
from csmcore.storage import OutboxMessage, OutboxPaging, Store, open_store, role_of
from csmcore.storage._sql import SCHEMA_VERSION
from csmcore.storage._sql_store import SqlStore
from tests.old_stores import copy_of
from tests.storage.conftest import PostgresFactory, SqlFactory, SqliteFactory

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
_MANY = 3000


def _message(key: str, minutes: int) -> OutboxMessage:
    request = NotificationRequest(
        channel="email",
        recipient="lead@example.com",
        template="warn",
        data={"n": 1},
        not_before=T0 + timedelta(minutes=minutes),
        idempotency_key=key,
        ticket_id="T-1",
    )
    return OutboxMessage.new(request, created_at=T0)


def _outbox(store: Store) -> Any:
    return role_of(store, "outbox")


def _many() -> list[OutboxMessage]:
    # 30 instants, 100 messages tied on each: the groups a cursor must start inside
    return [_message(f"m/{n:05d}", n % 30) for n in range(_MANY)]


def _indexes(factory: SqlFactory, url: str) -> set[str]:
    if isinstance(factory, SqliteFactory):
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'csm_outbox'"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
        query += "AND tablename = 'csm_outbox'"
    return {
        r[0]
        for r in factory.raw(url, [query])
        if not r[0].startswith(("sqlite_", "csm_outbox_pkey"))
    }


@pytest.fixture(params=["sqlite", "postgres"])
def sql_factory(request: pytest.FixtureRequest) -> SqlFactory:
    name = "sqlite_factory" if request.param == "sqlite" else "postgres_factory"
    found: SqlFactory = request.getfixturevalue(name)
    return found


def _version_7_with_many_messages(factory: SqlFactory) -> tuple[str, list[tuple[Any, ...]]]:
    """A store holding :func:`_many`, put back to schema version 7; its URL and the keys
    ``due`` gave at version 8 before."""
    store = factory()
    _outbox(store).put(_many())
    _outbox(store).delivered("m/00000", at=T0)
    due = [
        (m.next_attempt_at, m.key) for m in _outbox(store).due(T0 + timedelta(hours=1), limit=10**6)
    ]
    url = store.url
    store.close()
    factory.write_old_schema(url, 7)
    assert factory.read_schema_version(url) == 7
    assert _indexes(factory, url) == {"csm_outbox_due"}
    return url, due


def test_a_version_7_store_with_many_messages_migrates(sql_factory: SqlFactory) -> None:
    url, due = _version_7_with_many_messages(sql_factory)
    store = open_store(url)
    try:
        assert sql_factory.read_schema_version(url) == SCHEMA_VERSION >= 8
        assert _indexes(sql_factory, url) == {"csm_outbox_due_key"}
        at = T0 + timedelta(hours=1)
        assert [(m.next_attempt_at, m.key) for m in _outbox(store).due(at, limit=10**6)] == due
        paging = _outbox(store)
        assert isinstance(paging, OutboxPaging)
        assert [m.key for m in paging.due_after(at, after=due[149], limit=3)] == [
            k for _, k in due[150:153]
        ]
    finally:
        store.close()


def test_a_migration_failing_half_way_changes_nothing_and_runs_again(
    sql_factory: SqlFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Version 8's statements run in the opening transaction: a failure after the new index
    was made and the old one dropped leaves version 7 as it was, and the next opening
    migrates (no 'index exists' / 'no such index' from a half-done step)."""
    url, due = _version_7_with_many_messages(sql_factory)
    from csmcore.storage.postgres import PostgresStore
    from csmcore.storage.sqlite import SqliteStore

    owner: type[SqlStore] = SqliteStore if isinstance(sql_factory, SqliteFactory) else PostgresStore
    dialect = type(owner.dialect)
    real = dialect.migrations
    broken = (*real[:7], (*real[7], "SELECT no_such_column FROM csm_outbox"))
    monkeypatch.setattr(dialect, "migrations", broken)
    with pytest.raises(StorageError):
        open_store(url).close()
    assert sql_factory.read_schema_version(url) == 7
    assert _indexes(sql_factory, url) == {"csm_outbox_due"}
    monkeypatch.setattr(dialect, "migrations", real)
    store = open_store(url)
    try:
        assert sql_factory.read_schema_version(url) == SCHEMA_VERSION
        assert _indexes(sql_factory, url) == {"csm_outbox_due_key"}
        got = _outbox(store).due(T0 + timedelta(hours=1), limit=10**6)
        assert [(m.next_attempt_at, m.key) for m in got] == due
    finally:
        store.close()


def test_the_version_7_fixture_with_many_messages_migrates(tmp_path: Path) -> None:
    """The SQLite store commit b7cf9f5 wrote (schema 7, as that code made it), given many
    outbox messages in its own layout, migrates to 8 and pages them as ``due`` orders them."""
    path = copy_of("main_b7cf9f5_ledger", tmp_path)
    source = open_store(f"sqlite:///{tmp_path / 'source.db'}")
    _outbox(source).put(_many())
    source.close()
    conn = sqlite3.connect(path)
    try:
        with conn:
            assert conn.execute("SELECT value FROM csm_meta").fetchall() == [("7",)]
            conn.execute("ATTACH DATABASE ? AS source", [str(tmp_path / "source.db")])
            conn.execute("INSERT INTO csm_outbox SELECT * FROM source.csm_outbox")
        conn.execute("DETACH DATABASE source")
    finally:
        conn.close()
    store = open_store(f"sqlite:///{path}")
    try:
        factory = SqliteFactory(tmp_path)
        assert factory.read_schema_version(store.url) == SCHEMA_VERSION
        assert _indexes(factory, store.url) == {"csm_outbox_due_key"}
        at = T0 + timedelta(hours=1)
        every = [(m.next_attempt_at, m.key) for m in _outbox(store).due(at, limit=10**6)]
        assert len(every) == _MANY
        assert every == sorted(every)
        paging = _outbox(store)
        assert isinstance(paging, OutboxPaging)
        pages = [(m.next_attempt_at, m.key) for m in _outbox(store).due(at, limit=70)]
        while True:
            page = paging.due_after(at, after=pages[-1], limit=70)
            pages += [(m.next_attempt_at, m.key) for m in page]
            if len(page) < 70:
                break
        assert pages == every
        assert role_of(store, "ledger").members() == ["ann", "bob"]  # the fixture's data
    finally:
        store.close()


_KEYS = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=1, max_size=6
) | st.sampled_from(["a", "a b", "a/1", "B", "é", "\U0001f600", "ключ"])
_TOKYO = timezone(timedelta(hours=9))


@pytest.fixture(params=["memory", "sqlite", "sqlite-without-row-values", "postgres"])
def new_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Store]:
    """Makes fresh stores of one kind; SQLite also as before 3.15, where ``due_after`` spells
    the row value out."""
    if request.param == "sqlite-without-row-values":
        from csmcore.storage.sqlite import SqliteStore

        monkeypatch.setattr(type(SqliteStore.dialect), "row_values", False)
        found: Callable[[], Store] = request.getfixturevalue("sqlite_factory")
        return found
    if request.param == "memory":
        return lambda: open_store("memory://")
    made: Callable[[], Store] = request.getfixturevalue(f"{request.param}_factory")
    return made


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=st.dictionaries(_KEYS, st.integers(0, 4), min_size=0, max_size=12),
    gone=st.sets(st.integers(0, 11), max_size=3),
    data=st.data(),
    cursor_in_tokyo=st.booleans(),
    at_minutes=st.integers(0, 5),
    limit=st.integers(0, 14),
)
def test_due_after_is_due_filtered_by_the_cursor(
    new_store: Callable[[], Store],
    messages: dict[str, int],
    gone: set[int],
    data: st.DataObject,
    cursor_in_tokyo: bool,
    at_minutes: int,
    limit: int,
) -> None:
    """For any cursor (a stored message's or not, in any zone, keys of any script), the page
    ``due_after`` gives is ``due``'s full list from the first message after the cursor on:
    the row value of the SQL stores and the memory store's tuple compare alike."""
    arbitrary = st.tuples(st.integers(-1, 5), st.sampled_from([0, 0, 1, 59]), _KEYS)
    stored = st.sampled_from(sorted(messages.items())).map(lambda kv: (kv[1], 0, kv[0]))
    minutes, seconds, cursor_key = data.draw(
        stored | arbitrary if messages else arbitrary, label="cursor"
    )
    after_at = T0 + timedelta(minutes=minutes, seconds=seconds)
    if cursor_in_tokyo:
        after_at = after_at.astimezone(_TOKYO)
    store = new_store()
    try:
        outbox = _outbox(store)
        assert isinstance(outbox, OutboxPaging)
        _outbox(store).put([_message(key, minutes) for key, minutes in messages.items()])
        for n, key in enumerate(sorted(messages)):
            if n in gone:  # delivered: no longer due
                _outbox(store).delivered(key, at=T0)
        at = T0 + timedelta(minutes=at_minutes)
        every = [(m.next_attempt_at, m.key) for m in _outbox(store).due(at, limit=100)]
        cursor = (after_at.astimezone(timezone.utc), cursor_key)
        expected = [p for p in every if p > cursor][:limit]
        got = [
            (m.next_attempt_at, m.key)
            for m in outbox.due_after(at, after=(after_at, cursor_key), limit=limit)
        ]
    finally:
        store.close()
    assert got == expected


def test_postgres_plans_due_and_due_after_on_the_due_index(
    postgres_factory: PostgresFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a few thousand messages (analyzed), PostgreSQL reads the pages of ``due`` and of
    ``due_after`` (a cursor inside a group tied on one instant) in ``csm_outbox_due_key``'s
    order, with no sort: with the custom plan of the first executions and with the generic
    plan a prepared statement settles on."""
    from csmcore.storage import _sql_roles

    store = postgres_factory()
    sent: list[tuple[str, list[Any]]] = []
    real = _sql_roles.SqlOutbox._query

    def recording(self: Any, statement: str, params: Any = ()) -> Any:
        sent.append((statement, list(params)))
        return real(self, statement, params)

    try:
        _outbox(store).put(_many())
        postgres_factory.raw(store.url, ["ANALYZE csm_outbox"])
        monkeypatch.setattr(_sql_roles.SqlOutbox, "_query", recording)
        at = T0 + timedelta(minutes=20)
        first = _outbox(store).due(at, limit=100)
        paging = _outbox(store)
        assert isinstance(paging, OutboxPaging)
        paging.due_after(at, after=(first[-1].next_attempt_at, first[-1].key), limit=100)
    finally:
        monkeypatch.undo()
        url = store.url
        store.close()
    assert len(sent) == 2
    for statement, params in sent:
        numbered = statement
        for n in range(1, len(params) + 1):
            numbered = numbered.replace("?", f"${n}", 1)
        literals = ", ".join(str(p) if isinstance(p, int) else f"'{p}'" for p in params)
        name = f"p_{uuid.uuid4().hex[:8]}"
        plans = {}
        for mode in ("force_custom_plan", "force_generic_plan"):
            rows = postgres_factory.raw(
                url,
                [
                    f"SET plan_cache_mode = {mode}",
                    f"PREPARE {name} AS {numbered}",
                    f"EXPLAIN EXECUTE {name}({literals})",
                ],
            )
            plans[mode] = "\n".join(r[0] for r in rows)
        for mode, plan in plans.items():
            assert "Index Scan using csm_outbox_due_key" in plan, f"{mode}:\n{plan}"
            assert "Sort" not in plan, f"{mode}:\n{plan}"
