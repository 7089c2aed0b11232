"""Dispatcher: delivery at least once from the outbox (memory, SQLite, PostgreSQL), leases,
retries with backoff, dead letters and re-queueing, holding to business hours and not_before,
and bad arguments."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from csmcore import BusinessCalendar
from csmcore.clock import FixedClock
from csmcore.errors import NaiveDatetimeError, NotFound, ValidationError
from csmcore.escalation import NotificationRequest
from csmcore.services import (
    Backoff,
    CallableNotifier,
    Dispatcher,
    PermanentDeliveryError,
)
from csmcore.storage import (
    OutboxMessage,
    OutboxRepository,
    OutboxState,
    Store,
    open_store,
    role_of,
)

MON_9 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
S = timedelta(seconds=1)
CAL = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC")
BACKOFF = Backoff(base=30 * S, factor=2, cap=timedelta(minutes=4))


def request(
    key: str = "k/0",
    *,
    not_before: datetime = MON_9,
    channel: str = "email",
    business_hours: bool = False,
    calendar: str | None = None,
) -> NotificationRequest:
    return NotificationRequest(
        channel=channel,
        recipient="lead@example.com",
        template="warn",
        data={"percent": 75},
        not_before=not_before,
        idempotency_key=key,
        ticket_id="T-1",
        business_hours=business_hours,
        calendar=calendar,
    )


def outbox(store: Store) -> OutboxRepository:
    """The store's outbox role, typed."""
    role: OutboxRepository = role_of(store, "outbox")
    return role


def put(store: Store, *requests: NotificationRequest, at: datetime = MON_9) -> None:
    outbox(store).put([OutboxMessage.new(r, created_at=at) for r in requests])


class Recorder:
    """A notifier that records (key, attempt, instant) and fails while told to."""

    def __init__(self, clock: FixedClock, *, fail: int = 0, error: Exception | None = None):
        self.clock = clock
        self.calls: list[tuple[str, int, datetime]] = []
        self.delivered: list[tuple[str, int, datetime]] = []
        self.fail = fail
        self.error = error or ConnectionError("server away")

    def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
        self.calls.append((key, attempt, self.clock.now()))
        if self.fail:
            self.fail -= 1
            raise self.error
        self.delivered.append((key, attempt, self.clock.now()))


class Crash(BaseException):
    """A dispatcher process dying in the middle of an attempt."""


def test_delivers_a_due_message_once_with_its_key(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request("a/0"), request("b/0", not_before=MON_9 + S))
    notifier = Recorder(clock)
    dispatcher = Dispatcher(store, notifier, clock=clock)
    run = dispatcher.run()
    assert run.delivered == ("a/0",)
    assert notifier.calls == [("a/0", 1, MON_9)]
    stored = outbox(store).get("a/0")
    assert stored.state is OutboxState.DELIVERED
    assert stored.delivered_at == MON_9
    assert stored.attempts == 1
    assert dispatcher.run().delivered == ()  # not before b's not_before, a never again
    clock.advance(S)
    assert dispatcher.run().delivered == ("b/0",)
    assert [c[0] for c in notifier.calls] == ["a/0", "b/0"]


def test_routes_by_channel_and_a_channel_without_notifier_fails(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request("mail/0"), request("chat/0", channel="chat"))
    mail = Recorder(clock)
    dispatcher = Dispatcher(store, {"email": mail}, clock=clock, max_attempts=1)
    run = dispatcher.run()
    assert run.delivered == ("mail/0",)
    assert run.dead == ("chat/0",)
    dead = outbox(store).get("chat/0")
    assert dead.last_error is not None
    assert "no notifier for channel 'chat'" in dead.last_error
    assert "['email']" in dead.last_error


def test_retries_with_backoff_then_dead_letters_and_requeues(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request())
    notifier = Recorder(clock, fail=10)
    dispatcher = Dispatcher(store, notifier, clock=clock, backoff=BACKOFF, max_attempts=4)
    expected_delays = [30 * S, 60 * S, 120 * S]
    for attempt, delay in enumerate(expected_delays, start=1):
        assert dispatcher.run().retried == ("k/0",)
        stored = outbox(store).get("k/0")
        assert stored.state is OutboxState.PENDING
        assert stored.attempts == attempt
        assert stored.next_attempt_at == clock.now() + delay
        assert stored.last_error == "ConnectionError: server away"
        clock.advance(delay - timedelta(microseconds=1))
        assert dispatcher.run().retried == ()  # not a microsecond early
        clock.advance(timedelta(microseconds=1))
    assert dispatcher.run().dead == ("k/0",)
    assert [m.key for m in dispatcher.dead_letters()] == ["k/0"]
    assert dispatcher.dead_letters()[0].attempts == 4
    assert [c[1] for c in notifier.calls] == [1, 2, 3, 4]
    clock.advance(timedelta(days=1))
    assert dispatcher.run() == type(dispatcher.run())()  # dead letters are left alone
    # Re-queued: one more attempt; failing it, dead again.
    requeued = dispatcher.requeue("k/0")
    assert requeued.state is OutboxState.PENDING
    assert requeued.next_attempt_at == clock.now()
    assert dispatcher.run().dead == ("k/0",)
    assert outbox(store).get("k/0").attempts == 5
    notifier.fail = 0
    dispatcher.requeue("k/0")
    assert dispatcher.run().delivered == ("k/0",)
    assert dispatcher.dead_letters() == []


def test_requeue_refuses_what_is_not_dead(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request())
    dispatcher = Dispatcher(store, Recorder(clock), clock=clock)
    with pytest.raises(ValidationError, match="'k/0' is pending; only a dead message"):
        dispatcher.requeue("k/0")
    with pytest.raises(NotFound, match="nope"):
        dispatcher.requeue("nope")
    dispatcher.run()
    with pytest.raises(ValidationError, match="is delivered"):
        dispatcher.requeue("k/0")


def test_requeue_is_never_before_not_before(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request())
    dispatcher = Dispatcher(
        store, Recorder(clock, fail=1, error=PermanentDeliveryError("x")), clock=clock
    )
    assert dispatcher.run().dead == ("k/0",)
    again = dispatcher.requeue("k/0", at=MON_9 - timedelta(days=1))
    assert again.next_attempt_at == MON_9
    with pytest.raises(NaiveDatetimeError):
        dispatcher.requeue("k/0", at=datetime(2025, 1, 6))


def test_a_permanent_error_dead_letters_at_once(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request())
    notifier = Recorder(clock, fail=1, error=PermanentDeliveryError("no such template"))
    dispatcher = Dispatcher(store, notifier, clock=clock, max_attempts=5)
    assert dispatcher.run().dead == ("k/0",)
    dead = outbox(store).get("k/0")
    assert (dead.state, dead.attempts) == (OutboxState.DEAD, 1)
    assert dead.last_error == "PermanentDeliveryError: no such template"


def test_a_crashed_attempt_keeps_its_lease_then_is_delivered_again(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request())
    delivered: list[int] = []

    def crash_after_sending(req: NotificationRequest, key: str) -> None:
        delivered.append(1)
        raise Crash

    first = Dispatcher(
        store, CallableNotifier(crash_after_sending), clock=clock, lease=timedelta(minutes=5)
    )
    with pytest.raises(Crash):
        first.run()
    notifier = Recorder(clock)
    second = Dispatcher(store, notifier, clock=clock, lease=timedelta(minutes=5))
    clock.advance(timedelta(minutes=5) - S)
    assert second.run().delivered == ()  # the lease holds
    clock.advance(S)
    assert second.run().delivered == ("k/0",)  # at least once: delivered again
    assert notifier.calls == [("k/0", 2, clock.now())]
    assert outbox(store).get("k/0").attempts == 2


def test_a_crashed_last_attempt_gets_one_more(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request())
    calls: list[int] = []

    def fail_then_crash(req: NotificationRequest, key: str) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise Crash
        raise ConnectionError("down")

    dispatcher = Dispatcher(
        store, CallableNotifier(fail_then_crash), clock=clock, max_attempts=2, backoff=BACKOFF
    )
    assert dispatcher.run().retried == ("k/0",)
    clock.advance(30 * S)
    with pytest.raises(Crash):
        dispatcher.run()
    clock.advance(timedelta(minutes=5))
    assert dispatcher.run().dead == ("k/0",)
    assert outbox(store).get("k/0").attempts == 3
    assert len(calls) == 3


def test_two_dispatchers_never_attempt_one_message_at_once(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request("a/0"), request("b/0"))
    inner_runs = []
    second = Dispatcher(store, Recorder(clock), clock=clock)

    def deliver(req: NotificationRequest, key: str) -> None:
        inner_runs.append(second.run())  # another dispatcher runs while this one delivers

    first = Dispatcher(store, CallableNotifier(deliver), clock=clock)
    run = first.run()
    # While 'a' was out with the first, the second took only 'b'.
    assert inner_runs[0].delivered == ("b/0",)
    assert run.delivered == ("a/0",)
    assert run.lost == ("b/0",)


def test_an_attempt_that_outlived_its_lease_leaves_the_outcome_to_the_next(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request())
    second = Dispatcher(store, Recorder(clock), clock=clock, lease=timedelta(minutes=1))

    def slow_then_fail(req: NotificationRequest, key: str) -> None:
        clock.advance(timedelta(minutes=2))
        assert second.run().delivered == ("k/0",)
        raise TimeoutError("took too long")

    first = Dispatcher(
        store, CallableNotifier(slow_then_fail), clock=clock, lease=timedelta(minutes=1)
    )
    assert first.run().lost == ("k/0",)
    stored = outbox(store).get("k/0")
    assert stored.state is OutboxState.DELIVERED
    assert stored.last_error is None


def test_business_hours_hold_a_late_first_delivery_without_spending_an_attempt(
    store: Store,
) -> None:
    mon_18 = MON_9 + timedelta(hours=9)
    clock = FixedClock(mon_18)
    # Held messages first in line (batch_size=1) must not hide the one behind them.
    put(
        store,
        request("held-1/0", business_hours=True),
        request("held-2/0", business_hours=True),
        request("plain/0", not_before=MON_9 + S),
    )
    notifier = Recorder(clock)
    dispatcher = Dispatcher(store, notifier, clock=clock, calendars=CAL, batch_size=1)
    run = dispatcher.run()
    assert run.held == ("held-1/0", "held-2/0")
    assert run.delivered == ("plain/0",)
    assert outbox(store).get("held-1/0").attempts == 0
    clock.set(MON_9 + timedelta(days=1) - S)
    assert dispatcher.run().delivered == ()
    clock.advance(S)
    assert dispatcher.run().delivered == ("held-1/0", "held-2/0")


def test_business_hours_hold_retries_and_leases_to_the_next_open_time(store: Store) -> None:
    before_close = datetime(2025, 1, 6, 16, 59, 50, tzinfo=timezone.utc)
    clock = FixedClock(before_close)
    put(store, request(business_hours=True, not_before=MON_9))
    notifier = Recorder(clock, fail=1)
    dispatcher = Dispatcher(store, notifier, clock=clock, backoff=BACKOFF, calendars=CAL)
    assert dispatcher.run().retried == ("k/0",)
    # 30 s after 16:59:50 is past closing: the retry waits for Tuesday 09:00.
    assert outbox(store).get("k/0").next_attempt_at == MON_9 + timedelta(days=1)
    # The lease of a crashed attempt ends at an open time too.
    put(store, request("crash/0", business_hours=True))

    def crash(req: NotificationRequest, key: str) -> None:
        raise Crash

    with pytest.raises(Crash):
        Dispatcher(store, CallableNotifier(crash), clock=clock, calendars=CAL).run(limit=1)
    assert outbox(store).get("crash/0").next_attempt_at == MON_9 + timedelta(days=1)


def test_business_hours_take_the_calendar_from_a_book_or_a_function(store: Store) -> None:
    from csmcore import SlaBook, SlaPolicy, SlaTarget

    night = BusinessCalendar.weekly("20:00", "23:00", days="mon-sun", timezone="UTC")
    book = SlaBook(
        calendar=CAL,
        calendars={"night": night},
        policies=[
            SlaPolicy(
                name="p",
                position=1,
                default=True,
                targets=[SlaTarget(metric="first_reply", within=timedelta(hours=1))],
            )
        ],
    )
    clock = FixedClock(MON_9)
    put(
        store,
        request("day/0", business_hours=True),
        request("night/0", business_hours=True, calendar="night"),
    )
    dispatcher = Dispatcher(store, Recorder(clock), clock=clock, calendars=book)
    run = dispatcher.run()
    assert (run.delivered, run.held) == (("day/0",), ("night/0",))
    clock.set(MON_9 + timedelta(hours=11))
    assert Dispatcher(
        store, Recorder(clock), clock=clock, calendars=lambda name: night
    ).run().delivered == ("night/0",)


def test_business_hours_without_a_calendar_dead_letter_with_the_reason(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, request(business_hours=True, calendar="support"))
    notifier = Recorder(clock)
    assert Dispatcher(store, notifier, clock=clock).run().dead == ("k/0",)
    assert notifier.calls == []
    error = outbox(store).get("k/0").last_error
    assert error is not None
    assert "calendar 'support'" in error
    assert "no calendars=" in error


def test_run_limit_counts_attempts(store: Store) -> None:
    clock = FixedClock(MON_9)
    put(store, *(request(f"m{i}/0") for i in range(5)))
    dispatcher = Dispatcher(store, Recorder(clock), clock=clock, batch_size=2)
    assert len(dispatcher.run(limit=3).delivered) == 3
    assert len(dispatcher.run().delivered) == 2
    assert dispatcher.attempt("m0/0") == "not_due"
    for bad in (-1, True, 1.5):
        with pytest.raises(ValidationError, match="limit="):
            dispatcher.run(limit=bad)  # type: ignore[arg-type]


def test_attempt_one_message() -> None:
    store = open_store("memory://")
    clock = FixedClock(MON_9)
    put(store, request(), request("later/0", not_before=MON_9 + S))
    dispatcher = Dispatcher(outbox(store), Recorder(clock), clock=clock)  # the role itself
    assert dispatcher.attempt("later/0") == "not_due"
    assert dispatcher.attempt("k/0") == "delivered"
    with pytest.raises(NotFound):
        dispatcher.attempt("missing")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts=0 is not a whole number >= 1"),
        ({"max_attempts": True}, "max_attempts=True"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"lease": timedelta(0)}, r"lease=datetime.timedelta\(0\) is not a positive"),
        ({"lease": 5}, "lease=5"),
        ({"backoff": "fast"}, "backoff='fast' is not a Backoff"),
        ({"calendars": 3}, "calendars=3 is not a SlaBook"),
        ({"clock": object()}, "has no now()"),
        ({"notifiers": print}, "has no deliver"),
        ({"notifiers": {"email": 1}}, r"notifiers\['email'\]=1 has no deliver"),
    ],
)
def test_bad_dispatcher_arguments(kwargs: dict[str, object], message: str) -> None:
    clock = FixedClock(MON_9)
    arguments: dict[str, object] = {"notifiers": Recorder(clock), "clock": clock, **kwargs}
    with pytest.raises(ValidationError, match=message):
        Dispatcher(open_store("memory://"), **arguments)  # type: ignore[arg-type]


def test_a_naive_clock_is_refused() -> None:
    store = open_store("memory://")
    put(store, request())
    naive = FixedClock(MON_9)
    naive._now = datetime(2025, 1, 6, 9)
    with pytest.raises(NaiveDatetimeError, match=r"clock.now\(\)"):
        Dispatcher(store, Recorder(naive), clock=naive).run()


def test_backoff_delays() -> None:
    backoff = Backoff(base=10 * S, factor=3, cap=100 * S)
    assert [backoff.plain(n) for n in (1, 2, 3, 4, 50)] == [
        10 * S,
        30 * S,
        90 * S,
        100 * S,
        100 * S,
    ]
    jittered = Backoff(base=10 * S, factor=3, cap=100 * S, jitter=1, seed=7)
    delays = [jittered.delay(n, "k") for n in range(1, 6)]
    assert delays == [jittered.delay(n, "k") for n in range(1, 6)]  # deterministic
    assert 10 * S <= delays[0] < 30 * S
    assert delays[-1] == 100 * S  # nothing left to spread into at the cap
    assert {jittered.delay(1, f"k{i}") for i in range(20)} != {delays[0]}  # spread by key
    assert Backoff(seed=1, jitter=1).delay(1, "k") != Backoff(seed=2, jitter=1).delay(1, "k")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base": timedelta(0)}, r"base=datetime.timedelta\(0\) is not a positive"),
        ({"cap": 5}, "cap=5"),
        ({"factor": 0.5}, "factor=0.5 is not a number >= 1"),
        ({"factor": float("nan")}, "factor=nan"),
        ({"jitter": 1.5}, "jitter=1.5 is not a number from 0 to 1"),
        ({"jitter": True}, "jitter=True"),
        ({"base": 10 * S, "cap": S}, "is below base"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_bad_backoff_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises((ValidationError, TypeError), match=message):
        Backoff(**kwargs)  # type: ignore[arg-type]


def test_bad_backoff_attempt() -> None:
    with pytest.raises(ValidationError, match="attempt=0"):
        Backoff().plain(0)


def test_outbox_messages_stored_before_business_hours_existed_still_read() -> None:
    from csmcore.serialization import from_document, to_document

    message = OutboxMessage.new(request(), created_at=MON_9)
    document = to_document(message)
    for name in ("business_hours", "calendar"):
        del document["data"]["request"][name]
    old = from_document(document)
    assert old == message
    assert (old.request.business_hours, old.request.calendar) == (False, None)


@pytest.mark.parametrize("adapter", ["sqlite", "postgres"])
def test_dispatchers_on_several_connections_deliver_each_message_once(
    adapter: str, request: pytest.FixtureRequest
) -> None:
    import threading
    from collections import Counter

    store: Store = request.getfixturevalue(f"{adapter}_factory")()
    handles = [open_store(store.url) for _ in range(4)]
    try:
        put(store, *(request_for(i) for i in range(60)))
        clock = FixedClock(MON_9)
        lock = threading.Lock()
        sent: list[str] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(len(handles))

        def record(req: NotificationRequest, key: str) -> None:
            with lock:
                sent.append(key)

        def work(handle: Store) -> None:
            try:
                dispatcher = Dispatcher(handle, CallableNotifier(record), clock=clock, batch_size=7)
                barrier.wait(30)
                dispatcher.run()
            except BaseException as err:  # reported below
                errors.append(err)

        threads = [threading.Thread(target=work, args=(h,)) for h in handles]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []
        # No attempt failed or died, so the claims alone make each delivery happen once.
        assert Counter(sent) == Counter(f"m{i}/0" for i in range(60))
        assert all(m.state is OutboxState.DELIVERED for m in outbox(store).list())
        assert {m.attempts for m in outbox(store).list()} == {1}
    finally:
        for handle in handles:
            handle.close()
        store.close()


def request_for(index: int) -> NotificationRequest:
    return request(f"m{index}/0")


def test_next_due_is_the_first_instant_a_run_attempts_something(store: Store) -> None:
    clock = FixedClock(MON_9)
    notifier = Recorder(clock, fail=1)
    dispatcher = Dispatcher(
        store, {"email": notifier, "sms": notifier}, clock=clock, backoff=BACKOFF, calendars=CAL
    )
    assert dispatcher.next_due() is None  # nothing pending
    friday_evening = datetime(2025, 1, 10, 18, tzinfo=timezone.utc)
    put(
        store,
        request("later/0", not_before=MON_9 + 90 * S),
        request("weekend/0", not_before=friday_evening, business_hours=True),
    )
    assert dispatcher.next_due() == MON_9 + 90 * S
    put(store, request("now/0"))
    assert dispatcher.next_due() == MON_9  # one can go now
    assert dispatcher.run().retried == ("now/0",)  # fails once: retried after 30 s
    assert dispatcher.next_due() == MON_9 + 30 * S
    clock.set(MON_9 + 30 * S)
    assert dispatcher.run().delivered == ("now/0",)
    assert dispatcher.next_due() == MON_9 + 90 * S
    clock.set(MON_9 + 90 * S)
    assert dispatcher.run().delivered == ("later/0",)
    # held to business hours: Friday 18:00 waits for Monday 09:00
    assert dispatcher.next_due() == datetime(2025, 1, 13, 9, tzinfo=timezone.utc)
    clock.set(datetime(2025, 1, 11, 12, tzinfo=timezone.utc))  # a Saturday run holds it
    assert dispatcher.run().held == ("weekend/0",)
    assert dispatcher.next_due() == datetime(2025, 1, 13, 9, tzinfo=timezone.utc)
    clock.set(datetime(2025, 1, 13, 9, tzinfo=timezone.utc))
    assert dispatcher.run().delivered == ("weekend/0",)
    assert dispatcher.next_due() is None


def test_next_due_of_a_message_whose_calendar_is_unknown_is_its_due_instant(
    store: Store,
) -> None:
    # such a message is dead-lettered at its first attempt, with the reason: next_due says
    # when that attempt happens rather than hiding the message
    clock = FixedClock(MON_9)
    put(store, request("lost/0", not_before=MON_9 + S, business_hours=True, calendar="nope"))
    dispatcher = Dispatcher(store, Recorder(clock), clock=clock)  # no calendars at all
    assert dispatcher.next_due() == MON_9 + S
    clock.set(MON_9 + S)
    assert dispatcher.run().dead == ("lost/0",)
    assert dispatcher.next_due() is None


# Open on Monday 6 January 2025 from 09:00 to 09:01, then closed until 2040: past the
# calendar's search horizon (BusinessCalendar.search_horizon_days), so next_open raises
# NoBusinessTimeError from any instant after 09:01.
FAR = BusinessCalendar.weekly(
    "09:00",
    "17:00",
    days="mon-fri",
    timezone="UTC",
    closures=[(MON_9 + 60 * S, datetime(2040, 1, 1, tzinfo=timezone.utc))],
)


def test_a_calendar_that_opens_past_its_horizon_neither_crashes_a_run_nor_stalls_the_outbox(
    store: Store,
) -> None:
    # open now, but the lease (and a retry) would end in the long closure: the lease ends
    # when it would without a calendar, the retry is due then and held like any other
    clock = FixedClock(MON_9)
    put(store, request("held/0", business_hours=True), request("plain/0"))
    notifier = Recorder(clock, fail=1)
    dispatcher = Dispatcher(store, notifier, clock=clock, backoff=BACKOFF, calendars=FAR)
    run = dispatcher.run()
    assert (run.retried, run.delivered) == (("held/0",), ("plain/0",))
    assert outbox(store).get("held/0").next_attempt_at == MON_9 + 30 * S
    clock.set(MON_9 + 30 * S)
    assert dispatcher.run().delivered == ("held/0",)  # still open at 09:00:30
    put(store, request("late/0", business_hours=True, not_before=MON_9 + 50 * S))
    clock.set(MON_9 + 50 * S)
    assert dispatcher.run().delivered == ("late/0",)  # lease end 09:05:50 is closed


def test_next_due_with_a_calendar_that_opens_past_its_horizon(store: Store) -> None:
    # next_due neither raises (a host loop would die) nor hides the other messages; the held
    # message counts at the end of the horizon searched, where the search can go on
    clock = FixedClock(MON_9 + 120 * S)
    put(store, request("held/0", business_hours=True))
    dispatcher = Dispatcher(store, Recorder(clock), clock=clock, calendars=FAR)
    horizon = timedelta(days=BusinessCalendar.search_horizon_days)
    assert dispatcher.next_due() == MON_9 + 120 * S + horizon
    assert dispatcher.run().held == ("held/0",)
    put(store, request("plain/0", not_before=MON_9 + 3600 * S))
    assert dispatcher.next_due() == MON_9 + 3600 * S


def test_next_due_is_never_past_the_last_supported_instant(store: Store) -> None:
    # Thursday 29 December 9998 23:59:59.999999 is the last instant csmcore supports: held to
    # business hours, the message would open on the 30th, which no clock reaches
    last = datetime(9998, 12, 29, 23, 59, 59, 999999, tzinfo=timezone.utc)
    clock = FixedClock(MON_9)
    put(store, request("last/0", not_before=last))
    dispatcher = Dispatcher(store, Recorder(clock), clock=clock, calendars=CAL)
    assert dispatcher.next_due() == last
    put(store, request("held/0", not_before=last, business_hours=True))
    assert dispatcher.next_due() == last
    clock.set(last)
    assert dispatcher.run().delivered == ("last/0",)
    assert dispatcher.run().held == ("held/0",)
    assert dispatcher.next_due() == last


def test_next_due_of_a_message_claimed_by_a_dispatcher_that_died_is_its_lease_end(
    store: Store,
) -> None:
    clock = FixedClock(MON_9)
    put(store, request("crash/0"), request("later/0", not_before=MON_9 + 600 * S))

    def crash(req: NotificationRequest, key: str) -> None:
        raise Crash

    with pytest.raises(Crash):
        Dispatcher(store, CallableNotifier(crash), clock=clock).run(limit=1)
    notifier = Recorder(clock)
    dispatcher = Dispatcher(store, notifier, clock=clock)
    lease_end = MON_9 + timedelta(minutes=5)  # the default lease
    assert outbox(store).get("crash/0").next_attempt_at == lease_end
    assert dispatcher.next_due() == lease_end  # not now: the claim holds until then
    clock.set(lease_end - timedelta(microseconds=1))
    assert dispatcher.run().delivered == ()
    clock.set(lease_end)
    assert dispatcher.run().delivered == ("crash/0",)
    assert notifier.calls == [("crash/0", 2, lease_end)]  # its second attempt
    assert dispatcher.next_due() == MON_9 + 600 * S


def test_next_due_pages_past_held_messages_that_come_first(store: Store) -> None:
    # three messages held to Monday's opening come first in next_attempt_at order; with
    # batch_size=1 next_due still finds the plain one due on Sunday behind them
    saturday = datetime(2025, 1, 11, 10, tzinfo=timezone.utc)
    clock = FixedClock(saturday)
    put(
        store,
        *(request(f"held-{n}/0", not_before=saturday, business_hours=True) for n in range(3)),
        request("sunday/0", not_before=saturday + timedelta(days=1)),
    )
    dispatcher = Dispatcher(store, Recorder(clock), clock=clock, calendars=CAL, batch_size=1)
    assert dispatcher.next_due() == saturday + timedelta(days=1)
    assert dispatcher.run().held == ("held-0/0", "held-1/0", "held-2/0")
    clock.set(saturday + timedelta(days=1))
    assert dispatcher.run().delivered == ("sunday/0",)
    assert dispatcher.next_due() == datetime(2025, 1, 13, 9, tzinfo=timezone.utc)
