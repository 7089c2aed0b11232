"""The engine notices by itself that its plans were made from other rules, another book or
another loyalty program (issue 13, "the exact next instant any rule will fire"): it keeps a
fingerprint of what the plans are made from (a :class:`~csmcore.storage.PlanBasis`) in the
``rules`` role and plans every open ticket again when its own differs, before it runs, lists
what is due, or plans a ticket. No ``plan_all`` after a change.

The book: first reply within four hours, around the clock. ``warn(p)`` notifies at ``p`` % of
it: a ticket created at T0 is 25 % used at T0 + 1 h, 75 % at T0 + 3 h."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csmcore import BusinessCalendar
from csmcore.conditions import Always
from csmcore.errors import StorageError, ValidationError
from csmcore.escalation import EscalationLevel, EscalationRule, Notify, PercentUsed
from csmcore.services import EscalationEngine
from csmcore.sla import SlaTarget
from csmcore.storage import (
    PLAN_BASIS_KEY,
    LatestVersions,
    PlanBasis,
    Store,
    offered_roles,
    open_store,
    role_of,
)
from csmcore.testing._engine_workers import T0, scenario_tickets
from tests.escalation.support import book
from tests.old_stores import opened_copy

H = timedelta(hours=1)
M = timedelta(minutes=1)
ALWAYS = BusinessCalendar.always(timezone="UTC")
BOOK = book(SlaTarget(metric="first_reply", within=4 * H), calendar=ALWAYS)


def warn(*percents: int, name: str = "warn") -> EscalationRule:
    return EscalationRule(
        name=name,
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=percent),
                actions=[Notify(channel="email", recipient="lead", template=f"{name}-{percent}")],
            )
            for percent in percents
        ],
    )


@pytest.fixture
def planned(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the tickets the engine plans outside a run (plan_all, the basis check,
    ticket_changed, member_changed), in order."""
    calls: list[str] = []
    original = EscalationEngine._plan_one

    def spy(self: EscalationEngine, firings: Any, ticket: Any, *args: Any) -> Any:
        calls.append(ticket.id)
        return original(self, firings, ticket, *args)

    monkeypatch.setattr(EscalationEngine, "_plan_one", spy)
    return calls


def _fired(run: Any) -> list[tuple[str, str, datetime]]:
    return [(p.firing.ticket_id, p.firing.rule, p.firing.at) for p in run.firings]


def _other_handle(make_store: Callable[[], Store], store: Store) -> Store:
    """Another handle on the same data (SQLite, PostgreSQL), or the store itself (memory)."""
    if store.url.startswith("memory"):
        return store
    return open_store(store.url)


def test_a_stored_version_firing_earlier_fires_at_its_instant_without_plan_all(
    make_store: Callable[[], Store], store: Store
) -> None:
    store.rules.put("warn", warn(75), expected_version=0)
    store.tickets.add_many(scenario_tickets(1))
    engine = EscalationEngine(store, BOOK)  # rules=None: the stored versions
    engine.plan_all()
    assert engine.next_due() == T0 + 3 * H
    host = _other_handle(make_store, store)  # the host, in another process
    try:
        host.rules.put("warn", warn(25), expected_version=1)
    finally:
        if host is not store:
            host.close()
    assert engine.next_due() == T0 + H  # not the old plan's T0 + 3 h
    assert _fired(engine.run(T0 + H)) == [("E-0000", "warn", T0 + H)]


def _reads(monkeypatch: pytest.MonkeyPatch, store: Store) -> list[str]:
    """The keys read with ``get`` from the store's ``rules`` role from now on, in order."""
    keys: list[str] = []
    cls = type(store.rules)
    original = cls.get

    def spy(self: Any, key: str, **options: Any) -> Any:
        keys.append(key)
        return original(self, key, **options)

    monkeypatch.setattr(cls, "get", spy)
    return keys


def test_stored_rules_are_read_again_only_when_their_version_changed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With rules from the store, a call lists the role's latest versions
    (``LatestVersions``) and reads only the documents whose version it has not read."""
    store.rules.put("early", warn(25, name="early"), expected_version=0)
    store.rules.put("warn", warn(75), expected_version=0)
    store.tickets.add_many(scenario_tickets(1))
    engine = EscalationEngine(store, BOOK)
    engine.plan_all()
    assert engine.next_due() == T0 + H  # reads the basis plan_all stored
    reads = _reads(monkeypatch, store)
    assert engine.next_due() == T0 + H
    assert reads == []
    store.rules.put("early", warn(50, name="early"), expected_version=1)
    assert engine.next_due() == T0 + 2 * H  # the new version, planned from
    assert reads == ["early"]
    reads.clear()
    assert engine.next_due() == T0 + 2 * H
    assert reads in ([], [PLAN_BASIS_KEY])  # the basis the engine stored as it planned
    reads.clear()
    engine.next_due()
    assert reads == []


def test_a_rules_role_without_latest_versions_is_read_key_by_key(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A third-party ``rules`` role that does not offer ``latest_versions``: every key is
    read at every call, and a new version is followed as with the built-in stores."""

    class KeyByKey:
        """The built-in role behind the four methods of VersionedRepository only."""

        def __init__(self, inner: Any) -> None:
            self.put, self.get, self.history, self.keys = (
                inner.put,
                inner.get,
                inner.history,
                inner.keys,
            )

    monkeypatch.setattr(store, "rules", KeyByKey(store.rules))
    assert not isinstance(store.rules, LatestVersions)
    store.rules.put("warn", warn(75), expected_version=0)
    store.tickets.add_many(scenario_tickets(1))
    engine = EscalationEngine(store, BOOK)
    engine.plan_all()
    reads: list[str] = []
    get = store.rules.get

    def spy(key: str, **options: Any) -> Any:
        reads.append(key)
        return get(key, **options)

    monkeypatch.setattr(store.rules, "get", spy)
    assert engine.next_due() == T0 + 3 * H
    assert sorted(reads) == sorted([PLAN_BASIS_KEY, "warn"])
    store.rules.put("warn", warn(25), expected_version=1)
    assert engine.next_due() == T0 + H


def test_a_new_stored_rule_fires_on_a_ticket_planned_with_nothing_due(store: Store) -> None:
    store.tickets.add_many(scenario_tickets(2))
    engine = EscalationEngine(store, BOOK)
    assert engine.plan_all() == 2
    assert engine.next_due() is None
    store.rules.put("warn", warn(75), expected_version=0)
    assert _fired(engine.run(T0 + 4 * H)) == [
        ("E-0000", "warn", T0 + 3 * H),
        ("E-0001", "warn", T0 + 3 * H + M),
    ]
    assert engine.next_due() is None


def test_a_restart_with_other_given_rules_plans_again(
    make_store: Callable[[], Store], store: Store
) -> None:
    store.tickets.add_many(scenario_tickets(1))
    EscalationEngine(store, BOOK, [warn(75)]).plan_all()
    other = _other_handle(make_store, store)
    try:
        deployed = EscalationEngine(other, BOOK, [warn(75), warn(25, name="early")])
        assert deployed.next_due() == T0 + H
        assert _fired(deployed.run(T0 + H)) == [("E-0000", "early", T0 + H)]
        assert deployed.next_due() == T0 + 3 * H
    finally:
        if other is not store:
            other.close()


def test_another_book_plans_again(store: Store) -> None:
    store.tickets.add_many(scenario_tickets(1))
    EscalationEngine(store, BOOK, [warn(75)]).plan_all()
    shorter = book(SlaTarget(metric="first_reply", within=2 * H), calendar=ALWAYS)
    assert EscalationEngine(store, shorter, [warn(75)]).next_due() == T0 + 90 * M


def test_a_basis_stored_while_a_ticket_is_planned_is_followed(store: Store) -> None:
    """Another engine plans every ticket from new rules (and stores their basis) after this
    one read the old rules and before it writes its plan: the call ends by planning again."""
    store.rules.put("warn", warn(75), expected_version=0)
    store.tickets.add_many(scenario_tickets(1))
    engine, other = EscalationEngine(store, BOOK), EscalationEngine(store, BOOK)
    engine.plan_all()
    original = engine._plan_ids

    def late(ticket_ids: Any, rules: Any) -> Any:
        store.rules.put("warn", warn(25), expected_version=1)
        assert other.next_due() == T0 + H
        return original(ticket_ids, rules)  # the rules read before: 75 %

    engine._plan_ids = late  # type: ignore[method-assign]
    assert engine.ticket_changed("E-0000") == T0 + H
    assert other.next_due() == engine.next_due() == T0 + H


def test_a_basis_stored_while_the_engine_runs_is_followed(store: Store) -> None:
    store.rules.put("warn", warn(10, 75), expected_version=0)
    store.tickets.add_many(scenario_tickets(1))
    engine, other = EscalationEngine(store, BOOK), EscalationEngine(store, BOOK)
    engine.plan_all()
    firings = engine._firings

    class Late:
        def __getattr__(self, name: str) -> Any:
            return getattr(firings, name)

        def due(self, at: datetime) -> Any:
            store.rules.put("warn", warn(10, 25), expected_version=1)
            assert other.next_due() == T0 + 24 * M
            return firings.due(at)

    engine._firings = Late()
    run = engine.run(T0 + 30 * M)  # with the rules read before: 10 % and 75 %
    assert _fired(run) == [("E-0000", "warn", T0 + 24 * M)]
    engine._firings = firings
    assert other.next_due() == engine.next_due() == T0 + H  # 25 %, not 75 %


def _plans(store: Store) -> dict[str, datetime | None]:
    firings = role_of(store, "firings")
    found = {}
    for ticket in scenario_tickets(3):
        plan = firings.planned(ticket.id)
        found[ticket.id] = None if plan is None else plan.next_due
    return found


def test_a_run_stopped_by_an_error_still_follows_a_basis_stored_meanwhile(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run whose second batch wrote a plan from the old rules (another engine planned every
    ticket from a new version meanwhile) and whose third batch raised: the run checks the
    basis before the error goes on, so no plan stays the old rules'."""
    store.rules.put("warn", warn(10, 75), expected_version=0)
    store.tickets.add_many(scenario_tickets(3))
    engine = EscalationEngine(store, BOOK, batch_size=1)
    other = EscalationEngine(store, BOOK)
    engine.plan_all()
    run_batch = engine._run_batch
    calls = itertools.count(1)

    def batch(*args: Any) -> Any:
        call = next(calls)
        if call == 2:
            store.rules.put("warn", warn(10, 25), expected_version=1)
            other.next_due()  # plans every ticket from 10 % and 25 %
        if call == 3:
            raise StorageError("the disk went away")
        return run_batch(*args)

    monkeypatch.setattr(engine, "_run_batch", batch)
    with pytest.raises(StorageError, match="disk went away"):
        engine.run(T0 + 30 * M)
    # E-0001 ran with the old rules (10 %, then 75 %) after the re-plan; planned again since
    assert _plans(store)["E-0001"] == T0 + M + H
    found = _plans(store)
    EscalationEngine(store, BOOK).plan_all()  # every ticket planned again, from the rules of now
    assert _plans(store) == found


def test_a_failed_check_after_an_error_is_noted_on_the_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.rules.put("warn", warn(10, 75), expected_version=0)
    store.tickets.add_many(scenario_tickets(2))
    engine = EscalationEngine(store, BOOK, batch_size=1)
    engine.plan_all()

    def batch(*args: Any) -> Any:
        raise StorageError("the disk went away")

    def finish(version: int | None) -> bool:
        raise StorageError("still gone")

    monkeypatch.setattr(engine, "_run_batch", batch)
    monkeypatch.setattr(engine._basis, "finish", finish)
    with pytest.raises(StorageError, match="disk went away") as caught:
        engine.run(T0 + 30 * M)
    assert any("still gone" in note and "plan_all()" in note for note in caught.value.__notes__)


def test_a_basis_left_incomplete_is_planned_again(store: Store, planned: list[str]) -> None:
    """An engine died while planning from a basis: the next one plans every ticket again."""
    from csmcore.services._plan_basis import digest_of

    store.tickets.add_many(scenario_tickets(1))
    digest = digest_of(BOOK, (warn(75),), None)
    assert digest is not None
    store.rules.put(PLAN_BASIS_KEY, PlanBasis(digest=digest, complete=False), expected_version=0)
    assert EscalationEngine(store, BOOK, [warn(75)]).next_due() == T0 + 3 * H
    assert planned == ["E-0000"]
    assert [v.value.complete for v in store.rules.history(PLAN_BASIS_KEY)] == [False, True]


@pytest.mark.parametrize("meanwhile", [75, 25])
def test_an_engine_planning_meanwhile(store: Store, planned: list[str], meanwhile: int) -> None:
    """While one engine plans every ticket from its basis, another plans from the same basis
    (it is done: the first one's plans were its own too) or from another one (the first
    one plans again after it)."""
    store.tickets.add_many(scenario_tickets(1))
    engine = EscalationEngine(store, BOOK, [warn(75)])
    other = EscalationEngine(store, BOOK, [warn(meanwhile)])
    original = engine._plan_all
    turns: list[datetime | None] = []

    def interleaved(*args: Any) -> int:
        if not turns:
            turns.append(other.next_due())
        return original(*args)

    engine._plan_all = interleaved  # type: ignore[method-assign,assignment]
    assert engine.next_due() == T0 + 3 * H
    assert turns == [T0 + 3 * H if meanwhile == 75 else T0 + H]
    assert planned == ["E-0000"] * (2 if meanwhile == 75 else 3)
    assert store.rules.get(PLAN_BASIS_KEY).value.complete
    planned.clear()
    engine.next_due()
    assert planned == []


def test_nothing_changed_plans_nothing(store: Store, planned: list[str]) -> None:
    store.rules.put("warn", warn(75), expected_version=0)
    store.tickets.add_many(scenario_tickets(3))
    engine = EscalationEngine(store, BOOK)
    assert engine.plan_all() == 3
    assert planned == ["E-0000", "E-0001", "E-0002"]
    planned.clear()
    for _ in range(2):
        assert engine.next_due() == T0 + 3 * H
        assert engine.run(T0 + H).firings == ()
        assert engine.dry_run(T0, T0 + H) == []
    again = EscalationEngine(store, BOOK, [warn(75)])  # the same rules, given
    assert again.next_due() == T0 + 3 * H
    assert engine.ticket_changed("E-0001") == T0 + 3 * H + M
    assert planned == ["E-0001"]


def test_two_engines_store_the_basis_once(store: Store, planned: list[str]) -> None:
    store.tickets.add_many(scenario_tickets(2))
    first = EscalationEngine(store, BOOK, [warn(75)])
    second = EscalationEngine(store, BOOK, [warn(75)])
    assert first.next_due() == second.next_due() == T0 + 3 * H
    assert planned == ["E-0000", "E-0001"]  # by the first only
    history = store.rules.history(PLAN_BASIS_KEY)
    assert [v.value.complete for v in history] == [False, True]
    assert len({v.value.digest for v in history}) == 1
    assert EscalationEngine(store, BOOK).rules() == ()  # the basis is no rule
    assert first.plan_all() == second.plan_all() == 2  # planned, the basis left as it is
    assert store.rules.history(PLAN_BASIS_KEY) == history


def test_engines_on_several_handles_at_once_plan_from_one_basis(
    make_store: Callable[[], Store], store: Store
) -> None:
    """Engines of the same rules in several threads, each on its own store handle, find no
    basis at once: each one answers the new rules' instant, and only their basis is stored."""
    import threading

    store.tickets.add_many(scenario_tickets(3))
    EscalationEngine(store, BOOK, [warn(75)]).plan_all()
    handles = [_other_handle(make_store, store) for _ in range(3)]
    answers: list[object] = []
    start = threading.Barrier(len(handles))

    def work(handle: Store) -> None:
        engine = EscalationEngine(handle, BOOK, [warn(25)])
        start.wait()
        try:
            answers.append(engine.next_due())
        except Exception as err:  # reported below
            answers.append(err)

    threads = [threading.Thread(target=work, args=(h,)) for h in handles]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        for handle in handles:
            if handle is not store:
                handle.close()
    assert answers == [T0 + H] * 3
    history = store.rules.history(PLAN_BASIS_KEY)
    assert history[-1].value.complete
    assert len({v.value.digest for v in history[2:]}) == 1  # after the first engine's two
    assert EscalationEngine(store, BOOK, [warn(25)]).next_due() == T0 + H


def test_an_engine_whose_book_cannot_be_serialized_keeps_no_basis(
    store: Store, planned: list[str]
) -> None:
    """A calendar whose holidays are a custom container cannot be serialized: the engine
    plans as before this release (only when told) and stores nothing in the rules role."""
    from datetime import date

    class Holidays:
        def __contains__(self, day: object) -> bool:
            return day == date(2025, 12, 25)

    every_day = {day: [("00:00", "24:00")] for day in ("mon", "tue", "wed", "thu", "fri")}
    odd = book(
        SlaTarget(metric="first_reply", within=4 * H),
        calendar=BusinessCalendar(
            timezone="UTC", hours={**every_day, "sat": [], "sun": []}, holidays=Holidays()
        ),
    )
    store.tickets.add_many(scenario_tickets(1))
    EscalationEngine(store, odd, [warn(75)]).plan_all()
    planned.clear()
    changed = EscalationEngine(store, odd, [warn(25)])
    assert changed.next_due() == T0 + 3 * H  # nothing tells it: as before
    assert planned == []
    assert store.rules.keys() == []
    assert changed.plan_all() == 1
    assert changed.next_due() == T0 + H


def test_engines_with_other_rules_plan_in_turn(store: Store, planned: list[str]) -> None:
    """A rolling deploy: each engine plans every ticket with its own rules when the other
    one planned last."""
    store.tickets.add_many(scenario_tickets(1))
    old = EscalationEngine(store, BOOK, [warn(75)])
    new = EscalationEngine(store, BOOK, [warn(25)])
    assert old.next_due() == T0 + 3 * H
    assert new.next_due() == T0 + H
    assert old.next_due() == T0 + 3 * H
    assert planned == ["E-0000"] * 3


def test_a_changed_program_plans_again(store: Store, planned: list[str]) -> None:
    from decimal import Decimal

    from csmcore.loyalty import Program, SpendRule

    store.tickets.add_many(scenario_tickets(1))
    program = Program(name="shop", rules=[SpendRule(name="base", points=Decimal(1))])
    EscalationEngine(store, BOOK, [warn(75)], loyalty=program).plan_all()
    planned.clear()
    EscalationEngine(store, BOOK, [warn(75)], loyalty=program).next_due()
    assert planned == []
    richer = attrs.evolve(program, rules=[SpendRule(name="base", points=Decimal(2))])
    EscalationEngine(store, BOOK, [warn(75)], loyalty=richer).next_due()
    assert planned == ["E-0000"]
    EscalationEngine(store, BOOK, [warn(75)]).next_due()  # no program at all
    assert planned == ["E-0000"] * 2


def test_a_store_of_the_previous_release_is_planned_once(
    tmp_path: Path, planned: list[str]
) -> None:
    """The fixture of commit e31c18b holds plans an engine made with the rule ``gold`` and no
    basis: the first call plans every open ticket once, with the rules of now."""
    from tests.escalation.support import GOLD, at
    from tests.escalation.support import MEMBER_BOOK as GOLD_BOOK
    from tests.escalation.support import SHOP as PROGRAM

    with opened_copy("main_e31c18b_requesters", tmp_path) as store:
        assert role_of(store, "firings").next_due() is None  # the fixture's plans: none due
        assert store.rules.keys() == []  # no basis (nor rule) stored
        anyone = attrs.evolve(GOLD, name="anyone", condition=Always())
        engine = EscalationEngine(store, GOLD_BOOK, [GOLD, anyone], loyalty=PROGRAM)
        assert engine.next_due() == at(6, 11)  # 50 % of 2 business hours from Monday 10:00
        assert sorted(planned) == ["T-1", "T-2", "T-4"]  # T-3 is closed
        assert engine.next_due() == at(6, 11)
        assert sorted(planned) == ["T-1", "T-2", "T-4"]
        fired = engine.run(at(6, 11))
        assert {(p.firing.ticket_id, p.firing.rule) for p in fired.firings} == {
            ("T-1", "anyone"),
            ("T-2", "anyone"),
            ("T-4", "anyone"),
        }


def test_a_rule_stored_under_the_reserved_key_is_refused(store: Store) -> None:
    store.rules.put(PLAN_BASIS_KEY, warn(75), expected_version=0)
    store.tickets.add_many(scenario_tickets(1))
    engine = EscalationEngine(store, BOOK, [warn(75)])
    with pytest.raises(ValidationError, match="reserved"):
        engine.next_due()


class _WithoutRules:
    """A store whose adapter does not offer the ``rules`` role (the other roles delegated)."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.roles = offered_roles(inner) - {"rules"}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_store_without_the_rules_role_keeps_its_plans_until_plan_all(
    planned: list[str],
) -> None:
    inner = open_store("memory://")
    inner.tickets.add_many(scenario_tickets(1))
    store: Any = _WithoutRules(inner)
    EscalationEngine(store, BOOK, [warn(75)]).plan_all()
    changed = EscalationEngine(store, BOOK, [warn(25)])
    assert changed.next_due() == T0 + 3 * H  # as before: nothing tells it the plans are old
    assert changed.plan_all() == 1
    assert changed.next_due() == T0 + H
    assert inner.rules.keys() == []


def test_the_basis_is_the_same_in_another_process() -> None:
    """The digest hashes the canonical serialized form: a set of tags or strings iterates in
    another order under another hash seed, and must not change it."""
    import subprocess
    import sys

    code = (
        "from csmcore.services._plan_basis import digest_of\n"
        "from tests.services.test_engine_plan_basis import BOOK, warn\n"
        "from csmcore.testing._engine_workers import RULES\n"
        "print(digest_of(BOOK, (*RULES, warn(75)), None))\n"
    )
    found = set()
    for seed in ("1", "2", "3"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env={**__import__("os").environ, "PYTHONHASHSEED": seed},
        )
        found.add(out.stdout.strip())
    assert len(found) == 1
    assert len(found.pop()) == 64


# -- the property: as if plan_all were called after every change ----------------------------

PERCENTS = st.sampled_from([10, 25, 40, 60, 75, 100, 125])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("store"), st.sampled_from(["a", "b"]), PERCENTS),
        st.tuples(st.just("run"), st.integers(5, 120), st.booleans()),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(STEPS)
def test_firings_equal_those_of_an_engine_told_every_change(steps: list[tuple[Any, ...]]) -> None:
    subject, reference = open_store("memory://"), open_store("memory://")
    for store in (subject, reference):
        store.tickets.add_many(scenario_tickets(3))
    told = EscalationEngine(reference, BOOK)
    told.plan_all()
    engine = EscalationEngine(subject, BOOK)
    engine.plan_all()
    versions = {"a": 0, "b": 0}
    now = T0
    for step in steps:
        if step[0] == "store":
            _, key, percent = step
            for store in (subject, reference):
                store.rules.put(key, warn(percent, name=key), expected_version=versions[key])
            versions[key] += 1
            told.plan_all()
        else:
            _, minutes, restart = step
            now += minutes * M
            if restart:
                engine = EscalationEngine(subject, BOOK)
            assert engine.next_due() == told.next_due()
            assert _fired(engine.run(now)) == _fired(told.run(now))
    assert engine.next_due() == told.next_due()
