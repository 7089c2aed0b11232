"""Conditions SQL cannot take in one piece (deep nesting, long OR lists, many tags) give the
memory store's answers on SQLite and PostgreSQL (issue 11)."""

from __future__ import annotations

import pytest

from csmcore import conditions as cd
from csmcore.storage._sql_store import SqlStore
from csmcore.storage.memory import MemoryStore
from csmcore.storage.protocols import Store
from csmcore.testing.builders import make_ticket
from tests.guard import hang_guard
from tests.storage.conftest import PostgresFactory, SqliteFactory

_MANY_TAGS = frozenset(f"tag{i:04d}" for i in range(1200))


def _fill(store: Store) -> None:
    store.tickets.add(make_ticket("T-1", tags=set(_MANY_TAGS), group="g0"))
    store.tickets.add(make_ticket("T-2", tags={"tag0001", "tag0002"}, group="g1"))
    store.tickets.add(make_ticket("T-3", subject="three", group="g997"))


def _deep_not(depth: int) -> cd.Condition:
    cond: cd.Condition = cd.Eq("group", "g1")
    for _ in range(depth):
        cond = cd.Not(cond)
    return cond


def _deep_mixed(depth: int) -> cd.Condition:
    cond: cd.Condition = cd.HasTags({"tag0001"})
    for level in range(depth):
        cond = cd.AnyOf(cd.Eq("group", f"g{level}"), cd.Not(cond)) if level % 2 else cd.All(cond)
    return cond


CASES = {
    "not-44": _deep_not(44),
    "not-45": _deep_not(45),
    "not-200": _deep_not(200),
    "mixed-120": _deep_mixed(120),
    "anyof-998": cd.AnyOf(*(cd.Eq("group", f"g{i}") for i in range(998))),
    "anyof-5000": cd.AnyOf(*(cd.Eq("group", f"g{i}") for i in range(5000))),
    "all-3000": cd.All(*(cd.Not(cd.Eq("group", f"x{i}")) for i in range(3000))),
    "hastags-993": cd.HasTags(sorted(_MANY_TAGS)[:993]),
    "hastags-1200": cd.HasTags(_MANY_TAGS),
    "hastags-1201": cd.HasTags(_MANY_TAGS | {"other"}),
    "hastags-9": cd.HasTags(sorted(_MANY_TAGS)[:9]),
    "anyof-hastags": cd.AnyOf(*(cd.HasTags({t, "tag0002"}) for t in sorted(_MANY_TAGS)[:1000])),
}


def _answers(store: Store) -> dict[str, tuple[int, list[str]]]:
    return {
        name: (store.tickets.count(cond), [t.id for t in store.tickets.find(cond)])
        for name, cond in CASES.items()
    }


def _expected() -> dict[str, tuple[int, list[str]]]:
    memory = MemoryStore()
    _fill(memory)
    return _answers(memory)


def test_sqlite_answers_as_the_memory_store(sqlite_factory: SqliteFactory) -> None:
    store = sqlite_factory()
    _fill(store)
    assert _answers(store) == _expected()


def test_postgres_answers_as_the_memory_store(postgres_factory: PostgresFactory) -> None:
    store = postgres_factory()
    _fill(store)
    assert _answers(store) == _expected()


def test_postgres_has_tags_with_400_tags_is_one_subquery(postgres_factory: PostgresFactory) -> None:
    # regression: 100 tags took 2 s and 200 tags 20 s in the planner, one EXISTS per tag. The
    # work the planner is given is counted here (speed is in benchmarks/bench_limits.py).
    from csmcore.storage import _sql

    store = postgres_factory()
    assert isinstance(store, SqlStore)
    _fill(store)
    tags = sorted(_MANY_TAGS)[:400]
    compiled = _sql.compile_condition(cd.HasTags(tags), store.dialect)
    assert compiled.exact
    assert compiled.sql.count("SELECT") == 1  # one counting subquery, not 400 EXISTS
    with hang_guard():
        assert store.tickets.count(cd.HasTags(tags)) == 1
        assert [t.id for t in store.tickets.find(cd.HasTags(tags))] == ["T-1"]


@pytest.mark.parametrize("factory", ["sqlite_factory", "postgres_factory"])
def test_long_lists_stay_pushed_down(factory: str, request: pytest.FixtureRequest) -> None:
    from csmcore.storage import _sql

    make = request.getfixturevalue(factory)
    store = make()
    dialect = store.dialect
    assert _sql.compile_condition(CASES["anyof-5000"], dialect).exact
    assert _sql.compile_condition(CASES["hastags-1200"], dialect).exact
    assert _sql.compile_condition(_deep_not(_sql.MAX_SQL_DEPTH), dialect).exact
    assert not _sql.compile_condition(_deep_not(_sql.MAX_SQL_DEPTH + 1), dialect).exact


def test_a_condition_over_the_parameter_limit_is_filtered_in_python(
    sqlite_factory: SqliteFactory,
) -> None:
    # an old SQLite build allows 999 parameters: the store reads its limit and stays under it
    store = sqlite_factory()
    _fill(store)
    dialect = type(store.dialect)()  # type: ignore[attr-defined]
    dialect.max_params = 500
    store.dialect = dialect  # type: ignore[attr-defined]
    from csmcore.storage import _sql

    cond = CASES["anyof-998"]
    assert not _sql.compile_condition(cond, store.dialect).exact  # type: ignore[attr-defined]
    assert _answers(store) == _expected()
