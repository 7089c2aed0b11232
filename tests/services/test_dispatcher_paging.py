"""Dispatcher paging: a run reads each due message about once. Messages held to business hours
(or by not_before) stay due, so paging by ever larger ``due`` prefixes read O(H^2 / batch_size)
rows per run and per next_due(); an outbox role that offers
:class:`~csmcore.storage.OutboxPaging` is read with a cursor instead. A role that offers only
:class:`~csmcore.storage.OutboxRepository` (a third-party adapter written before it) still works,
with the same messages in the same order. Either way: the due set, each message once, oldest
``next_attempt_at`` first, then by key."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.clock import FixedClock
from csmcore.errors import StorageError
from csmcore.escalation import NotificationRequest
from csmcore.services import Backoff, Dispatcher
from csmcore.storage import (
    OutboxMessage,
    OutboxPaging,
    OutboxRepository,
    OutboxState,
    Store,
    open_store,
    role_of,
)
from tests.services.test_dispatcher import CAL, MON_9, Recorder, S, outbox, put, request

SATURDAY_NIGHT = datetime(2025, 1, 11, 23, tzinfo=MON_9.tzinfo)  # the calendar is closed


class Counting:
    """An outbox role with only the methods of :class:`OutboxRepository` (the fallback path),
    counting the rows its reads of due messages return."""

    def __init__(self, role: OutboxRepository) -> None:
        self.role = role
        self.rows = 0
        self.calls = 0

    def _count(self, found: builtins.list[OutboxMessage]) -> builtins.list[OutboxMessage]:
        self.rows += len(found)
        self.calls += 1
        return found

    def put(self, messages: Sequence[OutboxMessage]) -> int:
        return self.role.put(messages)

    def due(self, at: datetime, *, limit: int = 100) -> builtins.list[OutboxMessage]:
        return self._count(self.role.due(at, limit=limit))

    def claim(self, key: str, *, attempts: int, until: datetime) -> bool:
        return self.role.claim(key, attempts=attempts, until=until)

    def delivered(self, key: str, *, at: datetime) -> None:
        self.role.delivered(key, at=at)

    def failed(self, key: str, *, at: datetime, error: str, retry_at: datetime | None) -> None:
        self.role.failed(key, at=at, error=error, retry_at=retry_at)

    def get(self, key: str) -> OutboxMessage:
        return self.role.get(key)

    def list(
        self, *, state: OutboxState | None = None, limit: int | None = None
    ) -> builtins.list[OutboxMessage]:
        return self.role.list(state=state, limit=limit)


class CountingPaged(Counting):
    """The same over a role that also offers :class:`OutboxPaging` (the cursor path)."""

    def due_after(
        self, at: datetime, *, after: tuple[datetime, str], limit: int = 100
    ) -> builtins.list[OutboxMessage]:
        role = self.role
        assert isinstance(role, OutboxPaging)
        return self._count(role.due_after(at, after=after, limit=limit))


def counting(store: Store, *, paged: bool) -> Counting:
    role = outbox(store)
    if paged:
        assert isinstance(role, OutboxPaging), f"{type(role).__name__} offers no due_after"
        return CountingPaged(role)
    return Counting(role)


def test_the_built_in_roles_offer_paging_and_the_fallback_is_a_plain_outbox(store: Store) -> None:
    assert isinstance(outbox(store), OutboxPaging)
    with store.unit_of_work() as uow:
        assert isinstance(role_of(uow, "outbox"), OutboxPaging)
    plain = Counting(outbox(store))
    assert isinstance(plain, OutboxRepository)
    assert not isinstance(plain, OutboxPaging)
    assert isinstance(CountingPaged(outbox(store)), OutboxPaging)


HELD = 600
BATCH = 10


def night_of_held(store: Store) -> list[str]:
    """HELD messages held to business hours (due, but the calendar is closed) and three plain
    ones, all due at the same instant (ties, as when a calendar's next open time is the
    not_before of many), the plain ones last by key; the plain keys."""
    held = [
        OutboxMessage.new(
            request(f"held/{n:04d}", business_hours=True, not_before=SATURDAY_NIGHT),
            created_at=SATURDAY_NIGHT - timedelta(hours=1) + n * S,
        )
        for n in range(HELD)
    ]
    plain = [
        OutboxMessage.new(
            request(f"plain/{n}", not_before=SATURDAY_NIGHT), created_at=SATURDAY_NIGHT
        )
        for n in range(3)
    ]
    outbox(store).put(held + plain)
    return [m.key for m in plain]


def test_a_run_reads_each_held_message_about_once(store: Store) -> None:
    plain = night_of_held(store)
    clock = FixedClock(SATURDAY_NIGHT)
    role = counting(store, paged=True)
    dispatcher = Dispatcher(role, Recorder(clock), clock=clock, calendars=CAL, batch_size=BATCH)
    assert dispatcher.next_due() == SATURDAY_NIGHT  # the plain ones can go now
    # pages of BATCH rows up to the first plain message, not ever longer prefixes
    assert role.rows <= HELD + 1 + BATCH, role.rows
    role.rows = 0
    done = dispatcher.run()
    assert done.delivered == tuple(plain)
    assert len(done.held) == HELD
    assert role.rows <= HELD + len(plain) + BATCH, role.rows  # quadratic paging: ~18,000
    role.rows = 0
    assert dispatcher.next_due() == datetime(2025, 1, 13, 9, tzinfo=MON_9.tzinfo)  # Monday
    assert role.rows <= HELD + BATCH, role.rows


def test_without_paging_the_fallback_gives_the_same_run(make_store: Callable[[], Store]) -> None:
    outcomes = []
    for paged in (True, False):
        store = make_store()
        plain = night_of_held(store)
        clock = FixedClock(SATURDAY_NIGHT)
        role = counting(store, paged=paged)
        dispatcher = Dispatcher(role, Recorder(clock), clock=clock, calendars=CAL, batch_size=BATCH)
        outcomes.append((dispatcher.next_due(), dispatcher.run(), dispatcher.next_due()))
        assert outcomes[-1][1].delivered == tuple(plain)
        if not paged:  # today's paging: each page reads every message given before it
            assert role.rows > HELD * HELD // (2 * BATCH)
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("paged", [True, False])
def test_a_message_attempted_during_the_run_is_not_given_again(
    make_store: Callable[[], Store], paged: bool
) -> None:
    # Each attempt takes an hour of the clock and fails: its retry (30 s later) is due again
    # before the run's next page, after the cursor. It must not be attempted twice in one run.
    store = make_store()
    clock = FixedClock(MON_9)
    keys = ["a", "b", "c", "d"]
    outbox(store).put([OutboxMessage.new(request(k), created_at=MON_9) for k in keys])

    class Slow(Recorder):
        def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
            self.clock.advance(timedelta(hours=1))
            super().deliver(request, key=key, attempt=attempt)

    notifier = Slow(clock, fail=10)
    dispatcher = Dispatcher(
        counting(store, paged=paged),
        notifier,
        clock=clock,
        backoff=Backoff(base=30 * S, factor=1, cap=30 * S),
        batch_size=1,
    )
    done = dispatcher.run()
    assert done.retried == tuple(keys)
    assert [key for key, _, _ in notifier.calls] == keys


@pytest.mark.parametrize("paged", [True, False])
def test_a_message_written_behind_the_cursor_during_a_run_is_not_lost(
    make_store: Callable[[], Store], paged: bool
) -> None:
    # An engine commits a message while a run pages through the queue: its not_before is the
    # firing instant, before the message the run read last. A run may leave it (the cursor is
    # past it; without a cursor, the last page was read before it was written), but never
    # forever and never twice: next_due() says now, and the next run delivers it.
    store = make_store()
    role = counting(store, paged=paged)
    role.put(
        [
            OutboxMessage.new(request(f"m{n}", not_before=MON_9 + n * S), created_at=MON_9)
            for n in range(7)
        ]
    )
    clock = FixedClock(MON_9 + 10 * S)

    class Writing(Recorder):
        def deliver(self, request_: NotificationRequest, *, key: str, attempt: int) -> None:
            super().deliver(request_, key=key, attempt=attempt)
            if key == "m2":
                role.put([OutboxMessage.new(request("late", not_before=MON_9), created_at=MON_9)])

    notifier = Writing(clock)
    dispatcher = Dispatcher(role, notifier, clock=clock, batch_size=2)
    first = dispatcher.run().delivered
    assert [key for key in first if key != "late"] == [f"m{n}" for n in range(7)]
    if "late" not in first:
        assert paged  # without a cursor the page after m2's re-reads the head of the queue
        assert dispatcher.next_due() == clock.now()
        assert dispatcher.run().delivered == ("late",)
    assert dispatcher.run().delivered == ()
    assert sorted(key for key, _, _ in notifier.calls) == ["late", *(f"m{n}" for n in range(7))]


def test_a_cursor_that_does_not_advance_is_refused(store: Store) -> None:
    # A broken role whose due_after gives the cursor's message again would page forever.
    outbox(store).put([OutboxMessage.new(request(k), created_at=MON_9) for k in "ab"])

    class Stuck(CountingPaged):
        def due_after(
            self, at: datetime, *, after: tuple[datetime, str], limit: int = 100
        ) -> builtins.list[OutboxMessage]:
            return self._count(self.role.due(at, limit=limit))

    clock = FixedClock(MON_9 - timedelta(hours=1))
    dispatcher = Dispatcher(Stuck(outbox(store)), Recorder(clock), clock=clock, batch_size=1)
    with pytest.raises(StorageError, match=r"Stuck.due_after\(after=.*'a'\).*not after the cursor"):
        dispatcher.next_due()


# --- property: the due set, each once, in order, on both paths ----------------------------

KEYS = ["a", "B", "b", "a/1", "é", "ключ", "\U0001f600", "z" * 40, "Z", "0"]


@settings(max_examples=120, deadline=None)
@given(
    specs=st.lists(
        st.tuples(
            st.sampled_from(KEYS),
            st.integers(min_value=0, max_value=6),  # next_attempt_at, hours after MON_9
            st.sampled_from(["plain", "business", "not_before", "delivered", "dead"]),
        ),
        unique_by=lambda spec: spec[0],
        max_size=len(KEYS),
    ),
    now=st.integers(min_value=0, max_value=7),
    batch_size=st.integers(min_value=1, max_value=5),
    paged=st.booleans(),
)
def test_pending_gives_the_due_set_once_in_order(
    specs: list[tuple[str, int, str]], now: int, batch_size: int, paged: bool
) -> None:
    store = open_store("memory://")
    try:
        at = MON_9 + timedelta(hours=now)
        night = SATURDAY_NIGHT + timedelta(hours=now)  # held messages: the calendar is closed
        messages = []
        for key, hours, kind in specs:
            base = night if kind == "business" else MON_9
            message = OutboxMessage.new(
                request(
                    key,
                    business_hours=kind == "business",
                    not_before=base + timedelta(hours=hours + (24 if kind == "not_before" else 0)),
                ),
                created_at=MON_9,
            )
            messages.append(
                OutboxMessage(
                    key=key,
                    request=message.request,
                    next_attempt_at=base + timedelta(hours=hours),
                    created_at=MON_9,
                )
            )
        outbox(store).put(messages)
        for key, _, kind in specs:
            if kind == "delivered":
                outbox(store).delivered(key, at=MON_9)
            elif kind == "dead":
                outbox(store).failed(key, at=MON_9, error="x", retry_at=None)
        pending = [
            (m.next_attempt_at, m.key)
            for m, (_, _, kind) in zip(messages, specs, strict=True)
            if kind not in ("delivered", "dead")
        ]
        late = night + timedelta(hours=7)  # every pending message is due
        for until in (at, night, late):
            role = counting(store, paged=paged)
            clock = FixedClock(until)
            dispatcher = Dispatcher(
                role, Recorder(clock), clock=clock, calendars=CAL, batch_size=batch_size
            )
            found = [(m.next_attempt_at, m.key) for m in dispatcher._pending(lambda: until)]  # noqa: B023
            due = sorted(pair for pair in pending if pair[0] <= until)
            assert found == due
            if paged:
                # each due message read once, plus at most one page that ends the paging
                assert role.rows <= len(due) + batch_size
        done = dispatcher.run()  # late: every pending message attempted or held, each once
        assert sorted(done.delivered + done.held) == sorted(key for _, key in pending)
    finally:
        store.close()


def test_a_sqlite_page_after_a_cursor_starts_in_the_index_inside_a_tied_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Messages tied on one instant (a business-time trigger fires at the calendar's opening)
    # are ordered by key: a page after a cursor in the middle of them must start there in the
    # index (schema 8: the due index ends with the key, and the cursor is a row value), not
    # scan and sort the group before it. The statement due_after runs is explained on the file.
    from csmcore.storage import _sql_roles

    path = tmp_path / "outbox.db"
    store = open_store(f"sqlite:///{path}")
    try:
        put(store, *(request(f"tied/{i:04d}") for i in range(300)))
        ran: list[tuple[str, list[object]]] = []
        query = _sql_roles.SqlOutbox._query

        def recording(self: object, statement: str, params: list[object]) -> object:
            ran.append((statement, params))
            return query(self, statement, params)  # type: ignore[arg-type]

        monkeypatch.setattr(_sql_roles.SqlOutbox, "_query", recording)
        role = role_of(store, "outbox")
        assert isinstance(role, OutboxPaging)
        page = role.due_after(MON_9, after=(MON_9, "tied/0149"), limit=10)
        assert [m.key for m in page] == [f"tied/{i:04d}" for i in range(150, 160)]
    finally:
        store.close()
    (statement, params) = ran[-1]
    with sqlite3.connect(path) as raw:
        plan = " ".join(row[-1] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params))
    assert "csm_outbox_due_key" in plan
    assert "(next_attempt_us,key)>(?,?)" in plan.replace(" ", "")  # the range starts at the cursor
    assert "TEMP B-TREE" not in plan  # no sort
