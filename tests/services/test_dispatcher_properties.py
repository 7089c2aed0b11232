"""Dispatcher properties: with a notifier that fails at random and dispatchers that die at
random points (before the notifier, or after it delivered but before the outcome is stored),
every message ends delivered at least once or dead after exactly its attempts, none is lost,
none is delivered before not_before or outside business hours when it asked for them, and
retries wait the backoff. Backoff delays never decrease and never pass the cap."""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore import BusinessCalendar
from csmcore.clock import FixedClock
from csmcore.escalation import NotificationRequest
from csmcore.services import Backoff, Dispatcher
from csmcore.storage import OutboxMessage, OutboxState, open_store
from tests.services.test_dispatcher import outbox

T0 = datetime(2025, 1, 6, 8, tzinfo=timezone.utc)  # a Monday, an hour before opening
CAL = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC")
LEASE = timedelta(minutes=10)
S = timedelta(seconds=1)


class Crash(BaseException):
    """The dispatcher process dies."""


@dataclass
class Attempt:
    attempt: int
    at: datetime
    outcome: str  # "ok", "fail", "crash-before", "crash-after"


@dataclass
class World:
    """The notifier's view: every call, and what each did."""

    clock: FixedClock
    plan: st.DataObject
    log: dict[str, list[Attempt]] = field(default_factory=dict)
    crashes_left: int = 6

    def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
        choices = ["ok", "fail"] + (["crash-before", "crash-after"] if self.crashes_left else [])
        outcome = self.plan.draw(st.sampled_from(choices), label=f"{key}#{attempt}")
        self.log.setdefault(key, []).append(Attempt(attempt, self.clock.now(), outcome))
        if outcome.startswith("crash"):
            self.crashes_left -= 1
            raise Crash
        if outcome == "fail":
            raise ConnectionError("refused")


messages = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=48 * 60),  # not_before, minutes after T0
        st.booleans(),  # business hours only
    ),
    min_size=1,
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(
    specs=messages,
    max_attempts=st.integers(min_value=1, max_value=4),
    base_s=st.integers(min_value=1, max_value=600),
    factor=st.sampled_from([1, 1.5, 2, 3]),
    jitter=st.sampled_from([0, 0.5, 1]),
    plan=st.data(),
)
def test_every_message_is_delivered_or_dead_after_its_attempts_never_early(
    specs: list[tuple[int, bool]],
    max_attempts: int,
    base_s: int,
    factor: float,
    jitter: float,
    plan: st.DataObject,
) -> None:
    store = open_store("memory://")
    clock = FixedClock(T0)
    backoff = Backoff(base=base_s * S, factor=factor, cap=timedelta(hours=1), jitter=jitter)
    requests = {}
    for index, (minutes, business_hours) in enumerate(specs):
        not_before = T0 + timedelta(minutes=minutes)
        if business_hours:
            not_before = CAL.next_open(not_before)
        request = NotificationRequest(
            channel="email",
            recipient="lead@example.com",
            template="t",
            data={},
            not_before=not_before,
            idempotency_key=f"m{index}/0",
            ticket_id=f"T-{index}",
            business_hours=business_hours,
        )
        requests[request.idempotency_key] = request
    outbox(store).put([OutboxMessage.new(r, created_at=T0) for r in requests.values()])
    world = World(clock, plan)

    def dispatcher() -> Dispatcher:
        return Dispatcher(
            store,
            world,
            clock=clock,
            backoff=backoff,
            max_attempts=max_attempts,
            lease=LEASE,
            calendars=CAL,
            batch_size=plan.draw(st.integers(min_value=1, max_value=3), label="batch"),
        )

    def pending() -> bool:
        return any(m.state is OutboxState.PENDING for m in outbox(store).list())

    steps = plan.draw(st.integers(min_value=0, max_value=40), label="random steps")
    for _ in range(steps):
        with contextlib.suppress(Crash):  # the process died; a new dispatcher takes over
            dispatcher().run()
        clock.advance(plan.draw(st.sampled_from([S, 5 * 60 * S, LEASE, 3 * 3600 * S])))
    # Then dispatchers keep coming every three hours (past any lease and backoff); crashes
    # stop, failures do not (each message still fails at most its attempts).
    world.crashes_left = 0
    for _ in range(200):
        if not pending():
            break
        dispatcher().run()
        clock.advance(timedelta(hours=3))
    final = {m.key: m for m in outbox(store).list()}
    assert set(final) == set(requests)  # never lost
    for key, message in final.items():
        request = requests[key]
        attempts = world.log.get(key, [])
        assert message.state in (OutboxState.DELIVERED, OutboxState.DEAD), message
        assert message.attempts == len(attempts)  # every claim reached the notifier
        assert [a.attempt for a in attempts] == list(range(1, len(attempts) + 1))
        for a in attempts:
            assert a.at >= request.not_before  # never early
            if request.business_hours:
                assert CAL.is_open(a.at)
        if message.state is OutboxState.DELIVERED:
            assert attempts[-1].outcome == "ok"
            assert message.delivered_at == attempts[-1].at
        else:
            assert attempts[-1].outcome == "fail"
            crashes = [a.attempt for a in attempts if a.outcome.startswith("crash")]
            # Exactly max_attempts attempts, and one more for each final attempt that died.
            assert len(attempts) == max(max_attempts, max(crashes, default=0) + 1)
            assert all(a.outcome != "ok" for a in attempts)
        # A failed attempt followed by another waited at least its backoff delay.
        for previous, following in itertools.pairwise(attempts):
            if previous.outcome == "fail":
                assert following.at - previous.at >= backoff.delay(previous.attempt, key)
            elif previous.outcome.startswith("crash"):
                assert following.at - previous.at >= LEASE


@settings(max_examples=300)
@given(
    base_us=st.integers(min_value=1, max_value=10**9),
    factor=st.floats(min_value=1, max_value=10),
    cap_factor=st.integers(min_value=1, max_value=10_000),
    jitter=st.floats(min_value=0, max_value=1),
    seed=st.integers(min_value=0, max_value=2**32),
    key=st.text(max_size=20),
)
def test_backoff_never_decreases_and_never_passes_the_cap(
    base_us: int, factor: float, cap_factor: int, jitter: float, seed: int, key: str
) -> None:
    base = timedelta(microseconds=base_us)
    backoff = Backoff(base=base, factor=factor, cap=base * cap_factor, jitter=jitter, seed=seed)
    delays = [backoff.delay(n, key) for n in range(1, 40)]
    assert all(base <= d <= backoff.cap for d in delays)
    assert delays == sorted(delays)
    plain = [backoff.plain(n) for n in range(1, 40)]
    assert all(p <= d for p, d in zip(plain, delays, strict=True))


@settings(max_examples=150, deadline=None)
@given(
    specs=messages,
    max_attempts=st.integers(min_value=1, max_value=4),
    base_s=st.integers(min_value=1, max_value=4 * 3600),
    batch_size=st.integers(min_value=1, max_value=3),
    plan=st.data(),
)
def test_a_host_waking_only_at_next_due_attempts_each_message_at_its_first_possible_instant(
    specs: list[tuple[int, bool]],
    max_attempts: int,
    base_s: int,
    batch_size: int,
    plan: st.DataObject,
) -> None:
    # The host never polls: it sleeps until dispatcher.next_due() and runs then. Each wake-up
    # attempts something, a run a microsecond earlier attempts nothing, every first attempt
    # is at the request's not_before held to open time, every retry at its backoff held to
    # open time, and when next_due() is None every message is delivered or dead.
    store = open_store("memory://")
    clock = FixedClock(T0)
    backoff = Backoff(base=base_s * S, factor=2, cap=timedelta(hours=6), jitter=0)
    held: set[str] = set()
    requests = []
    for index, (minutes, business_hours) in enumerate(specs):
        if business_hours:
            held.add(f"m{index}/0")
        requests.append(
            NotificationRequest(
                channel="email",
                recipient="lead@example.com",
                template="t",
                data={},
                not_before=T0 + timedelta(minutes=minutes),
                idempotency_key=f"m{index}/0",
                ticket_id=f"T-{index}",
                business_hours=business_hours,
            )
        )
    outbox(store).put([OutboxMessage.new(r, created_at=T0) for r in requests])
    calls: list[tuple[str, int, datetime]] = []

    class Flaky:
        def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
            calls.append((key, attempt, clock.now()))
            if plan.draw(st.booleans(), label=f"{key}#{attempt} fails"):
                raise ConnectionError("refused")

    dispatcher = Dispatcher(
        store,
        Flaky(),
        clock=clock,
        backoff=backoff,
        max_attempts=max_attempts,
        calendars=CAL,
        batch_size=batch_size,  # held messages first in line must not hide the others
    )
    expected = {
        r.idempotency_key: CAL.next_open(r.not_before) if r.business_hours else r.not_before
        for r in requests
    }  # the instant each message can next be attempted
    for _ in range(10 * len(requests) * max_attempts):
        wake = dispatcher.next_due()
        if wake is None:
            break
        assert wake >= clock.now()
        assert wake == min(expected.values())
        if wake > clock.now():
            clock.set(wake - timedelta(microseconds=1))
            early = dispatcher.run()
            assert early.delivered == early.retried == early.dead == ()
        clock.set(wake)
        before = len(calls)
        run = dispatcher.run()
        attempted = calls[before:]
        assert attempted, f"woken at {wake} for nothing"
        for key, attempt, at in attempted:
            assert at == expected[key] == wake
            message = outbox(store).get(key)
            if message.state is OutboxState.PENDING:
                retry = wake + backoff.delay(attempt, key)
                expected[key] = CAL.next_open(retry) if key in held else retry
            else:
                del expected[key]
        assert set(run.delivered) | set(run.retried) | set(run.dead) == {k for k, _, _ in attempted}
    assert dispatcher.next_due() is None
    assert expected == {}
    assert {m.state for m in outbox(store).list()} <= {OutboxState.DELIVERED, OutboxState.DEAD}
