"""The memory store's index of plans: ``firings.due`` and ``firings.next_due`` read the
committed plans that have a ``next_due`` from a sorted index of ``(next_due, ticket_id)``
(merged with a unit of work's own plans) instead of scanning every ticket's plan. Properties:
both equal a brute-force scan of every ticket's ``planned`` after any sequence of plans,
re-plans (earlier, later, to None, from an older version that is ignored) and units of work
committed or rolled back, read on the store and inside the unit of work; the index holds
exactly the committed plans with a ``next_due``; neither read scans the plans."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from csmcore.storage import TicketPlan, role_of
from csmcore.storage._due_index import DueIndex
from csmcore.storage.memory import MemoryStore, _Tx

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)
TICKETS = ("T-1", "T-10", "T-2", "T-a", "T-B", "T-é", "T-~")
"""Ticket ids whose code-point order differs from other orders, often tied on instants."""
ZONES = (timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))
"""Instants are given in these zones; the store keeps and gives back UTC."""
FAR = datetime.max.replace(tzinfo=timezone.utc)


class _TinyIndex(DueIndex):
    """Blocks of at most 4 items, so that a few plans split and merge blocks."""

    _LOAD = 2


def plans_of(firings: Any) -> list[TicketPlan]:
    """Every ticket's plan, read one by one (no ``due`` involved)."""
    return [p for p in map(firings.planned, TICKETS) if p is not None]


def brute_due(plans: Iterable[TicketPlan], at: datetime, limit: int | None) -> list[TicketPlan]:
    found = [p for p in plans if p.next_due is not None and p.next_due <= at]
    found.sort(key=lambda p: (p.next_due, p.ticket_id))
    return found if limit is None else found[:limit]


def brute_next_due(plans: Iterable[TicketPlan]) -> datetime | None:
    dues = [p.next_due for p in plans if p.next_due is not None]
    return min(dues) if dues else None


def check_reads(firings: Any) -> None:
    """``due`` at instants around every plan's (in several zones, with several limits) and
    ``next_due`` equal the brute-force scan, and give UTC instants."""
    plans = plans_of(firings)
    instants = sorted(
        {T0 - MINUTE, T0 + 100 * MINUTE}
        | {p.next_due + d for p in plans if p.next_due is not None for d in (-MINUTE, 0 * MINUTE)}
    )
    for n, at in enumerate(instants):
        at = at.astimezone(ZONES[n % len(ZONES)])
        for limit in (None, 1, 2, 100):
            got = firings.due(at, limit=limit)
            assert got == brute_due(plans, at, limit), (at, limit)
            assert all(p.next_due.tzinfo is timezone.utc for p in got)
    first = firings.next_due()
    assert first == brute_next_due(plans)
    assert first is None or first.tzinfo is timezone.utc


class _Rollback(Exception):
    pass


operations = st.lists(
    st.tuples(
        st.sampled_from(TICKETS),
        st.integers(-1, 2),  # the version, relative to the ticket's current plan
        st.none() | st.integers(-3, 12),  # next_due in minutes from T0, None: nothing due
        st.sampled_from(ZONES),
    ),
    min_size=1,
    max_size=6,
)


def apply(firings: Any, operation: tuple[str, int, int | None, timezone]) -> None:
    """One plan: a new version (re-planned earlier, later or to None), the same version
    again, or an older one (ignored by the store)."""
    ticket_id, step, minutes, zone = operation
    kept = firings.planned(ticket_id)
    version = max(0, (0 if kept is None else kept.version) + step)
    due = None if minutes is None else (T0 + minutes * MINUTE).astimezone(zone)
    firings.plan(ticket_id, version=version, next_due=due)
    now = firings.planned(ticket_id)
    if kept is not None and version < kept.version:
        assert now == kept  # an older version never replaces a newer plan
    else:
        assert now == TicketPlan(ticket_id=ticket_id, version=version, next_due=due)


class PlansIndexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.store._plans_due = _TinyIndex()
        self.firings = role_of(self.store, "firings")

    def teardown(self) -> None:
        self.store.close()

    @rule(ops=operations)
    def plan(self, ops: list[tuple[str, int, int | None, timezone]]) -> None:
        for op in ops:
            apply(self.firings, op)

    @rule(ops=operations, commit=st.booleans())
    def unit_of_work(self, ops: list[tuple[str, int, int | None, timezone]], commit: bool) -> None:
        before = plans_of(self.firings)
        try:
            with self.store.unit_of_work() as uow:
                inside = role_of(uow, "firings")
                for op in ops:
                    apply(inside, op)
                    check_reads(inside)  # the unit's own plans merged with the index
                if not commit:
                    raise _Rollback
        except _Rollback:
            assert plans_of(self.firings) == before

    @invariant()
    def reads_equal_the_scan(self) -> None:
        check_reads(self.firings)

    @invariant()
    def the_index_holds_the_committed_plans_with_a_next_due(self) -> None:
        index = self.store._plans_due
        expected = sorted(
            (p.next_due, p.ticket_id) for p in plans_of(self.firings) if p.next_due is not None
        )
        assert list(index.after(None, FAR)) == expected
        assert len(index) == len(expected)


TestPlansIndex = PlansIndexMachine.TestCase
TestPlansIndex.settings = settings(max_examples=80, stateful_step_count=12, deadline=None)


def test_due_and_next_due_do_not_scan_the_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither read walks every ticket's plan, on the store or in a unit of work (which merges
    its own few plans with the index)."""
    store = MemoryStore()
    firings = role_of(store, "firings")
    for n in range(50):
        firings.plan(f"T-{n:02d}", version=1, next_due=T0 + (n % 7) * MINUTE)
    firings.plan("T-none", version=1, next_due=None)
    real_scan = _Tx.scan

    def scan(tx: _Tx, kind: str) -> Iterable[Any]:
        assert kind != "plans", "due / next_due scanned every plan"
        return real_scan(tx, kind)

    monkeypatch.setattr(_Tx, "scan", scan)
    assert [p.ticket_id for p in firings.due(T0 + MINUTE)] == [
        f"T-{n:02d}" for m in (0, 1) for n in range(50) if n % 7 == m
    ]
    assert firings.next_due() == T0
    with store.unit_of_work() as uow:
        mine = role_of(uow, "firings")
        mine.plan("T-00", version=2, next_due=None)  # the earliest plan leaves
        mine.plan("T-07", version=2, next_due=T0 + 20 * MINUTE)  # the next moves later
        mine.plan("T-none", version=2, next_due=T0 + 30 * MINUTE)
        assert mine.next_due() == T0  # T-14, T-21, ... are still at T0
        assert [p.ticket_id for p in mine.due(T0)] == [
            "T-14",
            "T-21",
            "T-28",
            "T-35",
            "T-42",
            "T-49",
        ]
        assert [p.ticket_id for p in mine.due(T0 + 30 * MINUTE)][-2:] == ["T-07", "T-none"]
        for n in range(14, 50, 7):
            mine.plan(f"T-{n:02d}", version=2, next_due=None)
        assert mine.next_due() == T0 + MINUTE
    assert firings.next_due() == T0 + MINUTE
    store.close()
