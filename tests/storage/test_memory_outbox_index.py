"""The memory outbox's due index: ``due`` and ``due_after`` read pages from a sorted index of
the committed PENDING messages (merged with a unit of work's own changes) instead of scanning
every message. Properties: the pages equal a brute-force scan of ``list()`` after any sequence
of puts, claims, deliveries, failures and units of work committed or rolled back, and the
index holds exactly the committed PENDING messages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from csmcore.escalation import NotificationRequest
from csmcore.storage import OutboxMessage, OutboxState, role_of
from csmcore.storage._due_index import DueIndex
from csmcore.storage.memory import MemoryStore

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)
KEYS = ("a", "b", "B", "a0", "é", "k/1", "k/10", "k/2", "z", "~")
"""Keys whose code-point order differs from other orders, tied on instants often."""


class _TinyIndex(DueIndex):
    """Blocks of at most 4 items, so that a few messages split and merge blocks."""

    _LOAD = 2


def _message(key: str, minutes: int) -> OutboxMessage:
    request = NotificationRequest(
        channel="email",
        recipient="lead@example.com",
        template="warn",
        data={},
        not_before=T0 + minutes * MINUTE,
        idempotency_key=key,
        ticket_id="T-1",
    )
    return OutboxMessage.new(request, created_at=T0)


def brute_page(
    messages: list[OutboxMessage], at: datetime, after: tuple[datetime, str] | None, limit: int
) -> list[OutboxMessage]:
    """What ``due`` / ``due_after`` give, by scanning every message."""
    found = [
        m
        for m in messages
        if m.state is OutboxState.PENDING
        and m.next_attempt_at <= at
        and (after is None or (m.next_attempt_at, m.key) > after)
    ]
    found.sort(key=lambda m: (m.next_attempt_at, m.key))
    return found[:limit]


def check_pages(outbox: Any) -> None:
    """Every page ``outbox`` gives equals the scan, for instants around every message's and
    cursors at every message's position (and between)."""
    messages = outbox.list()
    instants = sorted(
        {T0 - MINUTE, T0 + 100 * MINUTE}
        | {m.next_attempt_at + d for m in messages for d in (-MINUTE, timedelta(0))}
    )
    cursors: list[tuple[datetime, str]] = [(T0 - 2 * MINUTE, "a")]
    for m in messages:
        cursors += [(m.next_attempt_at, m.key), (m.next_attempt_at, m.key + "\x01")]
    for at in instants[:: max(1, len(instants) // 6)] + instants[-1:]:
        for limit in (1, 3, 100):
            assert outbox.due(at, limit=limit) == brute_page(messages, at, None, limit)
        for after in cursors:
            for limit in (1, 100):
                got = outbox.due_after(at, after=after, limit=limit)
                assert got == brute_page(messages, at, after, limit), (at, after, limit)


class _Rollback(Exception):
    pass


operations = st.lists(
    st.tuples(
        st.sampled_from(["put", "claim", "stale claim", "delivered", "retry", "dead"]),
        st.sampled_from(KEYS),
        st.integers(-3, 12),
    ),
    min_size=1,
    max_size=6,
)


def apply(outbox: Any, operation: tuple[str, str, int]) -> None:
    """One write; one that names a missing message is skipped."""
    kind, key, minutes = operation
    at = T0 + minutes * MINUTE
    if kind == "put":
        outbox.put([_message(key, minutes)])
        return
    found = [m for m in outbox.list() if m.key == key]
    if not found:
        return
    if kind == "claim":
        outbox.claim(key, attempts=found[0].attempts, until=at)
    elif kind == "stale claim":
        assert not outbox.claim(key, attempts=found[0].attempts + 1, until=at)
    elif kind == "delivered":
        outbox.delivered(key, at=at)
    elif kind == "retry":
        outbox.failed(key, at=at, error="busy", retry_at=at + MINUTE)
    else:
        outbox.failed(key, at=at, error="gone", retry_at=None)


class OutboxIndexMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.store._due = _TinyIndex()
        self.outbox = role_of(self.store, "outbox")

    def teardown(self) -> None:
        self.store.close()

    @rule(ops=operations)
    def write(self, ops: list[tuple[str, str, int]]) -> None:
        for op in ops:
            apply(self.outbox, op)

    @rule(ops=operations, commit=st.booleans())
    def unit_of_work(self, ops: list[tuple[str, str, int]], commit: bool) -> None:
        before = self.outbox.list()
        try:
            with self.store.unit_of_work() as uow:
                inside = role_of(uow, "outbox")
                for op in ops:
                    apply(inside, op)
                    check_pages(inside)  # the unit's own writes merged with the index
                if not commit:
                    raise _Rollback
        except _Rollback:
            assert self.outbox.list() == before

    @invariant()
    def pages_equal_the_scan(self) -> None:
        check_pages(self.outbox)

    @invariant()
    def the_index_holds_the_committed_pending_messages(self) -> None:
        index = self.store._due
        expected = sorted(
            (m.next_attempt_at, m.key) for m in self.outbox.list(state=OutboxState.PENDING)
        )
        assert list(index.after(None, datetime.max.replace(tzinfo=timezone.utc))) == expected
        assert len(index) == len(expected)


TestOutboxIndex = OutboxIndexMachine.TestCase
TestOutboxIndex.settings = settings(max_examples=60, stateful_step_count=12, deadline=None)


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(st.tuples(st.booleans(), st.integers(0, 8), st.integers(0, 4)), max_size=300),
    start=st.none() | st.tuples(st.integers(-1, 9), st.integers(-1, 5)),
    at=st.integers(-1, 9),
)
def test_the_index_alone_agrees_with_a_sorted_set(
    ops: list[tuple[bool, int, int]], start: tuple[int, int] | None, at: int
) -> None:
    """Adds and discards (also of absent items) keep the blocks sorted; ``after`` reads the
    items after ``start`` up to ``at`` in order, across block boundaries."""
    index = _TinyIndex()
    kept: set[tuple[datetime, str]] = set()
    for add, minutes, n in ops:
        item = (T0 + minutes * MINUTE, f"k{n:02d}")
        if add:
            if item not in kept:  # the store never adds an item twice
                index.add(item)
            kept.add(item)
        else:
            index.discard(item)
            kept.discard(item)
        assert all(block for block in index._blocks)
        assert index._maxes == [block[-1] for block in index._blocks]
        assert sorted(kept) == [i for block in index._blocks for i in block]
    assert len(index) == len(kept)
    first = None if start is None else (T0 + start[0] * MINUTE, f"k{start[1]:02d}")
    limit = T0 + at * MINUTE
    expected = sorted(i for i in kept if (first is None or i > first) and i[0] <= limit)
    assert list(index.after(first, limit)) == expected
