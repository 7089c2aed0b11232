"""Escalation and delivery across daylight-saving changes, to the microsecond.

Every expected instant below was worked out by hand before the test was run; the comments
give it in UTC and in local time. The zone changes used:

- Europe/Berlin springs forward on Sunday 2025-03-30 at 01:00Z (02:00 CET becomes 03:00 CEST)
  and falls back on Sunday 2025-10-26 at 01:00Z (03:00 CEST becomes 02:00 CET, so 02:00-03:00
  happens twice: first CEST 00:00Z-01:00Z, then CET 01:00Z-02:00Z).
- America/New_York springs forward on Sunday 2025-03-09 at 07:00Z (02:00 EST becomes 03:00
  EDT) and falls back on Sunday 2025-11-02 at 06:00Z (02:00 EDT becomes 01:00 EST, so
  01:00-02:00 happens twice: EDT 05:00Z-06:00Z, then EST 06:00Z-07:00Z).

Conventions read from the docs: offsets and durations "count wall time" (docs/escalation.md),
and wall time is elapsed (real) time, since "business time ... never runs faster than wall
time" only holds for elapsed time; business time is real elapsed time inside open windows
(docs/calendar.md#daylight-saving-time); a window edge that does not exist moves forward to the
jump, an ambiguous one takes its first occurrence.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore import BusinessCalendar
from csmcore.clock import FixedClock
from csmcore.conditions import Eq, Field
from csmcore.errors import CsmError, NaiveDatetimeError
from csmcore.escalation import (
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    GrantPoints,
    NotificationRequest,
    Notify,
    PercentUsed,
    PointsGrantRequest,
    SetStatus,
    dry_run,
    due_firings,
    next_due,
    run_ticket,
)
from csmcore.loyalty import (
    EndOfPeriodExpiry,
    Period,
    Program,
    Purchase,
    RecoveryPolicy,
    SpendRule,
)
from csmcore.services import (
    Backoff,
    CallableNotifier,
    Dispatcher,
    EscalationEngine,
    Ledger,
    PermanentDeliveryError,
    earn_points,
)
from csmcore.sla import SlaBook, SlaPolicy, SlaTarget
from csmcore.storage import OutboxMessage, OutboxRepository, Store, open_store, role_of

from .support import US, H, M, new, rule, shown

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

BERLIN_OFFICE = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone=BERLIN)
NY_OFFICE = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone=NEW_YORK)
BERLIN_ALWAYS = BusinessCalendar.always(timezone=BERLIN)
NY_ALWAYS = BusinessCalendar.always(timezone=NEW_YORK)
# Sundays 02:30-10:00 Berlin: the opening falls in the skipped hour in March and in the
# repeated hour in October.
BERLIN_NIGHT = BusinessCalendar(timezone=BERLIN, hours={"sun": [("02:30", "10:00")]})


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def outbox(store: Store) -> OutboxRepository:
    found: OutboxRepository = role_of(store, "outbox")
    return found


def book_of(calendar: BusinessCalendar, within: timedelta, **named: BusinessCalendar) -> SlaBook:
    return SlaBook(
        calendar=calendar,
        calendars=named,
        policies=[
            SlaPolicy(
                name="std",
                position=1,
                default=True,
                targets=[SlaTarget(metric="first_reply", within=within)],
            )
        ],
    )


def utc_of(firings: list[tuple[int, str | None, int, datetime]]) -> list[tuple[int, datetime]]:
    return [(level, at.astimezone(UTC)) for level, _, _, at in firings]


# --- Business calendars over the spring-forward weekend -----------------------------------


def test_berlin_office_levels_across_spring_forward_weekend() -> None:
    # Created Friday 2025-03-28 15:00 CET (14:00Z); 4 business hours: Friday 15:00-17:00 CET
    # (2 h), then Monday 2025-03-31 09:00-11:00 CEST (07:00Z-09:00Z). Due 09:00Z (11:00 CEST).
    ticket = new(datetime(2025, 3, 28, 15, tzinfo=BERLIN))
    b = book_of(BERLIN_OFFICE, 4 * H)
    r = rule(
        PercentUsed(target="first_reply", percent=75),  # 3 h: Mon 10:00 CEST = 08:00Z
        DueOffset.after("first_reply", H),  # 1 wall hour after 09:00Z: 10:00Z (12:00 CEST)
        DueOffset.after("first_reply", 2 * H, business_hours=True),  # 13:00 CEST = 11:00Z
    )
    got = due_firings(ticket, b, [r], z(2025, 3, 28), z(2025, 4, 5))
    assert utc_of(shown(got)) == [
        (0, z(2025, 3, 31, 8)),
        (1, z(2025, 3, 31, 10)),
        (2, z(2025, 3, 31, 11)),
    ]


def test_new_york_office_due_offset_before_in_business_time_across_spring_forward() -> None:
    # Created Friday 2025-03-07 16:00 EST (21:00Z); 3 business hours: Friday 16:00-17:00 EST
    # (1 h), Monday 2025-03-10 09:00-11:00 EDT (13:00Z-15:00Z). Due 15:00Z (11:00 EDT).
    # before(2 h business): 2 business hours before 11:00 EDT Monday is 09:00 EDT = 13:00Z.
    # before(3 h business): Friday 16:00 EST = 21:00Z, the creation itself: the level fires at
    # the creation (t >= due - d as soon as the clock runs).
    ticket = new(datetime(2025, 3, 7, 21, tzinfo=UTC))
    b = book_of(NY_OFFICE, 3 * H)
    r = rule(
        DueOffset.before("first_reply", 150 * M, business_hours=True),  # Fri 16:30 EST = 21:30Z
        DueOffset.before("first_reply", 2 * H, business_hours=True),  # Mon 09:00 EDT = 13:00Z
        DueOffset.before("first_reply", 30 * M),  # wall: 14:30Z (10:30 EDT)
    )
    got = due_firings(ticket, b, [r], z(2025, 3, 7, 20), z(2025, 3, 12))
    assert utc_of(shown(got)) == [
        (0, z(2025, 3, 7, 21, 30)),
        (1, z(2025, 3, 10, 13)),
        (2, z(2025, 3, 10, 14, 30)),
    ]


# --- 24x7 calendars in a DST zone: business time is elapsed time -----------------------------


def test_always_calendar_berlin_fall_back_counts_real_hours() -> None:
    # Created Saturday 2025-10-25 23:00 CEST (21:00Z). 6 hours of a 24x7 Berlin calendar are 6
    # real hours: due 2025-10-26 03:00Z = 04:00 CET (only 5 hours later on the wall clock).
    # 50 %: 3 h: 00:00Z = 02:00 CEST (the first 02:00).
    # after(1 h wall): 04:00Z = 05:00 CET.
    ticket = new(datetime(2025, 10, 25, 23, tzinfo=BERLIN))
    b = book_of(BERLIN_ALWAYS, 6 * H)
    r = rule(
        PercentUsed(target="first_reply", percent=50),
        PercentUsed(target="first_reply", percent=100),
        DueOffset.after("first_reply", H),
    )
    got = due_firings(ticket, b, [r], z(2025, 10, 25), z(2025, 10, 28))
    assert utc_of(shown(got)) == [
        (0, z(2025, 10, 26, 0)),
        (1, z(2025, 10, 26, 3)),
        (2, z(2025, 10, 26, 4)),
    ]
    # Reported in Berlin time (the zone of start), the first is 02:00 CEST (fold 0).
    local = due_firings(
        ticket, b, [r], datetime(2025, 10, 25, tzinfo=BERLIN), datetime(2025, 10, 28, tzinfo=BERLIN)
    )
    assert [f.at.utcoffset() for f in local] == [2 * H, H, H]
    assert local[0].at.replace(tzinfo=None) == datetime(2025, 10, 26, 2, 0)


def test_wall_offset_of_one_hour_across_the_repeated_hour_is_one_elapsed_hour() -> None:
    # Berlin 24x7, created 2025-10-25 22:30 CEST (20:30Z), 4 h: due 00:30Z = 02:30 CEST (the
    # first 02:30). after(1 h wall) is one elapsed hour: 01:30Z = 02:30 CET (the second 02:30,
    # the same wall reading), not 03:30 CET (02:30Z) as wall-clock arithmetic would give.
    ticket = new(datetime(2025, 10, 25, 22, 30, tzinfo=BERLIN))
    b = book_of(BERLIN_ALWAYS, 4 * H)
    r = rule(DueOffset.after("first_reply", H), DueOffset.after("first_reply", 2 * H))
    start = datetime(2025, 10, 25, 12, tzinfo=BERLIN)
    got = due_firings(ticket, b, [r], start, start + timedelta(days=2))
    assert utc_of(shown(got)) == [(0, z(2025, 10, 26, 1, 30)), (1, z(2025, 10, 26, 2, 30))]
    first = got[0].at
    assert (first.replace(tzinfo=None), first.fold, first.utcoffset()) == (
        datetime(2025, 10, 26, 2, 30),
        1,
        H,
    )
    # The next firing after the breach, asked in Berlin time, is the same instant, in Berlin
    # time (an instant of the repeated hour never compares == to another zone's datetime in
    # Python, PEP 495: compare in one zone).
    breach = datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN)  # fold 0: 00:30Z
    found = next_due(ticket, b, [r], breach)
    assert found is not None
    assert found.astimezone(UTC) == z(2025, 10, 26, 1, 30)
    assert (found.tzinfo, found.fold) == (BERLIN, 1)


def test_new_york_repeated_hour_two_levels_at_the_same_wall_reading() -> None:
    # NY 24x7, created Saturday 2025-11-01 22:00 EDT (02:00Z Nov 2), 4 h: due 06:00Z = 01:00 EST
    # (the second 01:00). 75 % = 3 h: 05:00Z = 01:00 EDT (the first 01:00).
    ticket = new(datetime(2025, 11, 1, 22, tzinfo=NEW_YORK))
    b = book_of(NY_ALWAYS, 4 * H)
    r = rule(
        PercentUsed(target="first_reply", percent=75),
        PercentUsed(target="first_reply", percent=100),
    )
    start = datetime(2025, 11, 1, 12, tzinfo=NEW_YORK)
    got = due_firings(ticket, b, [r], start, start + timedelta(days=2))
    assert utc_of(shown(got)) == [(0, z(2025, 11, 2, 5)), (1, z(2025, 11, 2, 6))]
    assert [(f.at.hour, f.at.fold) for f in got] == [(1, 0), (1, 1)]
    # Python compares two datetimes of one ZoneInfo by their wall reading, fold ignored (PEP
    # 495): these two compare equal although an hour apart. docs/escalation.md says so; in UTC
    # they are in order.
    assert got[0].at == got[1].at
    assert got[0].at.astimezone(UTC) < got[1].at.astimezone(UTC)


def test_always_calendar_new_york_spring_forward_and_wall_offset() -> None:
    # NY 24x7, created Sunday 2025-03-09 00:30 EST (05:30Z), 2 h: due 07:30Z = 03:30 EDT (the
    # wall clock moved 3 h). after(30 min wall): 08:00Z = 04:00 EDT.
    ticket = new(datetime(2025, 3, 9, 0, 30, tzinfo=NEW_YORK))
    b = book_of(NY_ALWAYS, 2 * H)
    r = rule(PercentUsed(target="first_reply", percent=100), DueOffset.after("first_reply", 30 * M))
    got = due_firings(ticket, b, [r], z(2025, 3, 9), z(2025, 3, 10))
    assert utc_of(shown(got)) == [(0, z(2025, 3, 9, 7, 30)), (1, z(2025, 3, 9, 8))]


def test_condition_held_one_wall_hour_across_the_repeated_hour() -> None:
    # NY, rule "urgent and unassigned", held 1 h wall and 1 h business (NY 24x7 default calendar):
    # created unassigned at 01:30 EDT (05:30Z) on 2025-11-02: both fire at 06:30Z = 01:30 EST.
    # Held 90 min business on the NY office calendar: a Sunday, Monday 2025-11-03 09:00 EST
    # (14:00Z) + 90 min = 15:30Z.
    ticket = new(datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK, fold=0), priority="urgent")
    assert ticket.created_at == z(2025, 11, 2, 5, 30)
    b = book_of(NY_ALWAYS, 100 * H, office=NY_OFFICE)
    r = rule(
        ConditionHeld(duration=H),
        ConditionHeld(duration=H, business_hours=True),
        ConditionHeld(duration=90 * M, business_hours=True, calendar="office"),
        condition=Eq("assignee", None),
    )
    got = due_firings(ticket, b, [r], z(2025, 11, 2), z(2025, 11, 5))
    assert utc_of(shown(got)) == [
        (0, z(2025, 11, 2, 6, 30)),
        (1, z(2025, 11, 2, 6, 30)),
        (2, z(2025, 11, 3, 15, 30)),
    ]


def test_condition_held_in_business_time_across_spring_forward_weekend_berlin() -> None:
    # Berlin office; held 2 business hours from Friday 2025-03-28 16:00 CET (15:00Z): 1 h on
    # Friday, then Monday 09:00-10:00 CEST: 2025-03-31 08:00Z.
    ticket = new(datetime(2025, 3, 28, 16, tzinfo=BERLIN), priority="urgent")
    b = book_of(BERLIN_OFFICE, 100 * H)
    r = rule(ConditionHeld(duration=2 * H, business_hours=True), condition=Eq("assignee", None))
    got = due_firings(ticket, b, [r], z(2025, 3, 28), z(2025, 4, 2))
    assert utc_of(shown(got)) == [(0, z(2025, 3, 31, 8))]


# --- A calendar opening in the skipped and in the repeated hour ------------------------------


@pytest.mark.parametrize(
    ("created", "expected"),
    [
        # Saturday 2025-03-29 12:00Z. Sunday's 02:30 does not exist: the window opens at the
        # jump, 03:00 CEST (01:00Z); 30 business minutes later: 03:30 CEST = 01:30Z. The
        # window then holds 03:00-10:00 CEST: 7 hours.
        (z(2025, 3, 29, 12), z(2025, 3, 30, 1, 30)),
        # Saturday 2025-10-25 12:00Z. Sunday's 02:30 happens twice: the first, 02:30 CEST
        # (00:30Z); 30 business minutes later: 01:00Z = 02:00 CET (the second 02:00).
        (z(2025, 10, 25, 12), z(2025, 10, 26, 1, 0)),
    ],
)
def test_business_offset_on_a_calendar_opening_in_the_changed_hour(
    created: datetime, expected: datetime
) -> None:
    # The first-reply target runs on the 24x7 UTC default calendar, due 1 h after creation;
    # after(30 min business on "night") counts from there on the Sunday night calendar.
    ticket = new(created)
    b = book_of(BusinessCalendar.always(), H, night=BERLIN_NIGHT)
    r = rule(DueOffset.after("first_reply", 30 * M, business_hours=True, calendar="night"))
    got = due_firings(ticket, b, [r], created, created + timedelta(days=3))
    assert utc_of(shown(got)) == [(0, expected)]


def test_first_reply_on_a_calendar_opening_in_the_changed_hour() -> None:
    # Fall back: the night calendar holds 02:30 CEST (00:30Z) to 10:00 CET (09:00Z): 8.5 h.
    # A ticket created Saturday with 8 h 30 min of it is due 09:00Z, 10:00 CET, its close;
    # with 8 h 31 min, the next Sunday 2025-11-02 02:30 CET (01:30Z) + 1 min = 01:31Z.
    created = z(2025, 10, 25, 12)
    for within, due in ((510 * M, z(2025, 10, 26, 9)), (511 * M, z(2025, 11, 2, 1, 31))):
        b = book_of(BERLIN_NIGHT, within)
        r = rule(PercentUsed(target="first_reply", percent=100))
        got = due_firings(new(created), b, [r], created, created + timedelta(days=14))
        assert utc_of(shown(got)) == [(0, due)], within
    # Spring forward: 03:00 CEST (01:00Z) to 10:00 CEST (08:00Z): 7 h; 7 h of it from Saturday
    # is due at 08:00Z; 75 % (5 h 15 min) at 06:15Z (08:15 CEST).
    created = z(2025, 3, 29, 12)
    b = book_of(BERLIN_NIGHT, 7 * H)
    r = rule(
        PercentUsed(target="first_reply", percent=75),
        PercentUsed(target="first_reply", percent=100),
    )
    got = due_firings(new(created), b, [r], created, created + timedelta(days=3))
    assert utc_of(shown(got)) == [(0, z(2025, 3, 30, 6, 15)), (1, z(2025, 3, 30, 8))]


# --- Naive inputs and zones of inputs ----------------------------------------------------


def test_naive_instants_are_refused_naming_the_value() -> None:
    ticket = new(z(2025, 10, 25, 12))
    b = book_of(BERLIN_ALWAYS, H)
    r = rule(PercentUsed(target="first_reply", percent=50))
    naive = datetime(2025, 10, 26, 2, 30)
    with pytest.raises(NaiveDatetimeError, match="2025, 10, 26, 2, 30"):
        next_due(ticket, b, [r], naive)
    with pytest.raises(CsmError, match="2025, 10, 26, 2, 30"):
        due_firings(ticket, b, [r], naive, z(2025, 10, 27))
    with pytest.raises(CsmError, match="2025, 10, 26, 2, 30"):
        due_firings(ticket, b, [r], z(2025, 10, 25), naive)
    with pytest.raises(CsmError, match="2025, 10, 26, 2, 30"):
        EscalationEngine(open_store("memory://"), b, [r]).run(naive)


ZONES: list[tzinfo] = [
    UTC,
    BERLIN,
    NEW_YORK,
    ZoneInfo("Australia/Lord_Howe"),  # a half-hour DST change
    timezone(timedelta(hours=-3, minutes=-30)),
]


def _in(at: datetime, zone: tzinfo) -> datetime:
    return at.astimezone(zone)


@settings(max_examples=60, deadline=None)
@given(
    created=st.integers(min_value=-48 * 60, max_value=48 * 60).map(
        lambda m: z(2025, 10, 26, 1) + timedelta(minutes=m)
    ),
    within=st.integers(min_value=1, max_value=12 * 60).map(lambda m: timedelta(minutes=m)),
    zone=st.sampled_from(ZONES),
    calendar=st.sampled_from([BERLIN_ALWAYS, BERLIN_OFFICE, BERLIN_NIGHT, NY_ALWAYS]),
)
def test_input_zone_never_changes_a_firing_instant(
    created: datetime, within: timedelta, zone: tzinfo, calendar: BusinessCalendar
) -> None:
    # The same instants given in another zone fire at the same instants (and next_due agrees).
    b = book_of(calendar, within)
    r = rule(
        PercentUsed(target="first_reply", percent=50),
        DueOffset.after("first_reply", H),
        DueOffset.after("first_reply", 2 * H, business_hours=True),
        ConditionHeld(duration=90 * M, business_hours=True),
        name="r",
    )
    held = rule(ConditionHeld(duration=90 * M), name="h", condition=Eq("assignee", None))
    start, end = created - H, created + timedelta(days=9)
    in_utc = due_firings(new(created), b, [r, held], start, end)
    moved = due_firings(new(_in(created, zone)), b, [r, held], _in(start, zone), _in(end, zone))
    assert [(f.key, f.at.astimezone(UTC)) for f in moved] == [
        (f.key, f.at.astimezone(UTC)) for f in in_utc
    ]
    assert all(f.at.tzinfo is zone for f in moved)
    for f in in_utc:
        before = f.at - US
        expected = next_due(new(created), b, [r, held], before)
        found = next_due(new(created), b, [r, held], _in(before, zone))
        assert found is not None
        assert found.tzinfo is zone
        assert found.astimezone(UTC) == expected


# --- Held notifications and the engine's and dispatcher's wake-ups ----------------------


def _request(not_before: datetime, key: str = "k/0", calendar: str | None = None) -> OutboxMessage:
    page = NotificationRequest(
        channel="sms",
        recipient="lead",
        template="page",
        data={},
        not_before=not_before,
        idempotency_key=key,
        ticket_id="T-1",
        business_hours=True,
        calendar=calendar,
    )
    return OutboxMessage.new(page, created_at=not_before)


@pytest.mark.parametrize(
    ("not_before", "calendar", "opens"),
    [
        # Saturday 2025-03-29 10:00Z, Berlin office: Monday 2025-03-31 09:00 CEST = 07:00Z.
        (z(2025, 3, 29, 10), BERLIN_OFFICE, z(2025, 3, 31, 7)),
        # Saturday 2025-10-25 10:00Z: Monday 2025-10-27 09:00 CET = 08:00Z.
        (z(2025, 10, 25, 10), BERLIN_OFFICE, z(2025, 10, 27, 8)),
        # NY office, Saturday 2025-03-08 20:00Z: Monday 2025-03-10 09:00 EDT = 13:00Z.
        (z(2025, 3, 8, 20), NY_OFFICE, z(2025, 3, 10, 13)),
        # NY office, Saturday 2025-11-01 20:00Z: Monday 2025-11-03 09:00 EST = 14:00Z.
        (z(2025, 11, 1, 20), NY_OFFICE, z(2025, 11, 3, 14)),
        # Sunday night calendar: 03:00 CEST (01:00Z) on 2025-03-30; 02:30 CEST (00:30Z) on
        # 2025-10-26.
        (z(2025, 3, 29, 10), BERLIN_NIGHT, z(2025, 3, 30, 1)),
        (z(2025, 10, 25, 10), BERLIN_NIGHT, z(2025, 10, 26, 0, 30)),
    ],
)
@pytest.mark.parametrize("clock_zone", [UTC, BERLIN, NEW_YORK])
def test_dispatcher_holds_to_the_next_open_time_across_dst(
    not_before: datetime, calendar: BusinessCalendar, opens: datetime, clock_zone: tzinfo
) -> None:
    store = open_store("memory://")
    outbox(store).put([_request(not_before.astimezone(clock_zone))])
    sent: list[datetime] = []
    clock = FixedClock(not_before.astimezone(clock_zone))

    class Pager:
        def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
            sent.append(clock.now())

    dispatcher = Dispatcher(store, Pager(), clock=clock, calendars=calendar)
    wake = dispatcher.next_due()
    assert wake == opens
    assert dispatcher.run().held == ("k/0",)
    clock.set((opens - US).astimezone(clock_zone))
    assert dispatcher.run().held == ("k/0",)
    clock.set(wake)
    assert dispatcher.run().delivered == ("k/0",)
    assert sent == [opens]


def _failing_dispatcher(
    now: datetime, lease: timedelta = timedelta(minutes=5)
) -> tuple[Dispatcher, FixedClock, Store, list[datetime]]:
    store = open_store("memory://")
    page = NotificationRequest(
        channel="sms",
        recipient="lead",
        template="page",
        data={},
        not_before=now,
        idempotency_key="k/0",
        ticket_id="T-1",
    )
    outbox(store).put([OutboxMessage.new(page, created_at=now)])
    clock = FixedClock(now)
    leases: list[datetime] = []

    class Failing:
        def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
            leases.append(outbox(store).get(key).next_attempt_at)
            raise RuntimeError("down")

    dispatcher = Dispatcher(
        store, Failing(), clock=clock, backoff=Backoff(base=timedelta(seconds=30)), lease=lease
    )
    return dispatcher, clock, store, leases


@pytest.mark.parametrize(
    ("now", "lease_end", "retry_at"),
    [
        # 02:58 CEST (00:58Z): the 5-minute lease ends 01:03Z (02:03 CET); the 30-second retry
        # is at 00:58:30Z (02:58:30 CEST).
        (datetime(2025, 10, 26, 2, 58, tzinfo=BERLIN), z(2025, 10, 26, 1, 3), None),
        # 02:59:50 CEST (00:59:50Z): retry 30 s later at 01:00:20Z = 02:00:20 CET.
        (
            datetime(2025, 10, 26, 2, 59, 50, tzinfo=BERLIN),
            z(2025, 10, 26, 1, 4, 50),
            z(2025, 10, 26, 1, 0, 20),
        ),
        # 02:10 CET, the second 02:10 (01:10Z): lease ends 01:15Z, retry 01:10:30Z.
        (
            datetime(2025, 10, 26, 2, 10, tzinfo=BERLIN, fold=1),
            z(2025, 10, 26, 1, 15),
            z(2025, 10, 26, 1, 10, 30),
        ),
        # New York 01:58 EDT (05:58Z): lease ends 06:03Z = 01:03 EST.
        (datetime(2025, 11, 2, 1, 58, tzinfo=NEW_YORK), z(2025, 11, 2, 6, 3), None),
    ],
)
def test_dispatcher_lease_and_retry_are_elapsed_time_with_a_local_clock(
    now: datetime, lease_end: datetime, retry_at: datetime | None
) -> None:
    dispatcher, _, store, leases = _failing_dispatcher(now)
    assert dispatcher.run().retried == ("k/0",)
    assert leases == [lease_end]
    expected = now.astimezone(UTC) + timedelta(seconds=30) if retry_at is None else retry_at
    assert outbox(store).get("k/0").next_attempt_at == expected


def test_engine_and_dispatcher_wake_ups_compare_as_instants() -> None:
    # Berlin 24x7, created 2025-10-25 22:30 CEST (20:30Z), first reply 4 h: due 00:30Z (02:30
    # CEST). A level at the breach notifies, held to the Berlin office (Monday 2025-10-27
    # 09:00 CET = 08:00Z); a level 1 wall hour later at 01:30Z (02:30 CET).
    store = open_store("memory://")
    ticket = new(datetime(2025, 10, 25, 22, 30, tzinfo=BERLIN))
    store.tickets.add(ticket)
    b = book_of(BERLIN_ALWAYS, 4 * H, office=BERLIN_OFFICE)
    r = EscalationRule(
        name="page",
        condition=Field("priority") >= "normal",
        levels=[
            EscalationLevel(
                trigger=DueOffset.after("first_reply", US),
                actions=[
                    Notify(
                        channel="sms",
                        recipient="$requester",
                        template="late",
                        business_hours=True,
                        calendar="office",
                    )
                ],
            ),
            EscalationLevel(
                trigger=DueOffset.after("first_reply", H),
                actions=[Notify(channel="sms", recipient="$requester", template="later")],
            ),
        ],
    )
    engine = EscalationEngine(store, b, [r])
    assert engine.ticket_changed(ticket.id) == z(2025, 10, 26, 0, 30) + US
    local_now = datetime(2025, 10, 26, 2, 45, tzinfo=BERLIN)  # the first 02:45: 00:45Z
    run = engine.run(local_now)
    assert [p.firing.at.astimezone(UTC) for p in run.firings] == [z(2025, 10, 26, 0, 30) + US]
    wake = engine.next_due()
    assert wake == z(2025, 10, 26, 1, 30)
    clock = FixedClock(local_now)
    delivered: list[tuple[str, datetime]] = []

    class Pager:
        def deliver(self, request: NotificationRequest, *, key: str, attempt: int) -> None:
            delivered.append((request.template, clock.now().astimezone(UTC)))

    dispatcher = Dispatcher(store, Pager(), clock=clock, calendars=b)
    assert dispatcher.next_due() == z(2025, 10, 27, 8)
    # 02:30 CET (the second, 01:30Z) is after 02:45 CEST (00:45Z): the engine's wake-up is the
    # later one as an instant, though its wall reading is earlier.
    assert wake is not None
    second = datetime(2025, 10, 26, 2, 30, tzinfo=BERLIN, fold=1)
    assert engine.run(second).firings[0].firing.at.astimezone(UTC) == z(2025, 10, 26, 1, 30)
    clock.set(second)
    assert dispatcher.next_due() == z(2025, 10, 26, 1, 30)
    assert len(dispatcher.run().delivered) == 1
    assert delivered == [("later", z(2025, 10, 26, 1, 30))]
    clock.set(datetime(2025, 10, 27, 9, tzinfo=BERLIN))
    dispatcher.run()
    assert delivered[-1] == ("late", z(2025, 10, 27, 8))


# --- Orders, retries and grants computed from local instants -----------------------------


def test_dry_run_lists_firings_in_the_order_of_their_instants_across_the_repeated_hour() -> None:
    # Berlin 24x7, first reply 4 h. Ticket A created 21:30Z: due 01:30Z = 02:30 CET (the
    # second 02:30); ticket B created 20:45Z: due 00:45Z = 02:45 CEST (the first 02:45). B's
    # breach comes first, though its wall reading is later.
    b = book_of(BERLIN_ALWAYS, 4 * H)
    r = rule(PercentUsed(target="first_reply", percent=100))
    a = new(z(2025, 10, 25, 21, 30), ticket_id="A")
    bb = new(z(2025, 10, 25, 20, 45), ticket_id="B")
    start = datetime(2025, 10, 25, 12, tzinfo=BERLIN)
    end = datetime(2025, 10, 26, 12, tzinfo=BERLIN)
    got = dry_run([a, bb], b, [r], start, end)
    assert [(p.firing.ticket_id, p.firing.at.astimezone(UTC)) for p in got] == [
        ("B", z(2025, 10, 26, 0, 45)),
        ("A", z(2025, 10, 26, 1, 30)),
    ]
    # The engine lists a run's firings and its dry run in the same order.
    store = open_store("memory://")
    for ticket in (a, bb):
        store.tickets.add(ticket)
    engine = EscalationEngine(store, b, [r])
    engine.plan_all()
    assert [p.firing.ticket_id for p in engine.dry_run(start, end)] == ["B", "A"]
    assert [p.firing.ticket_id for p in engine.run(end).firings] == ["B", "A"]


def test_engine_retry_of_a_failing_ticket_is_elapsed_time_from_a_local_now() -> None:
    # A level that sets the status back to "new" raises InvalidTransition; the ticket is put off
    # by retry_failed (15 min). Run at 02:58 CEST (00:58Z): retried at 01:13Z (02:13 CET), not
    # at 03:13 CET (02:13Z) as wall arithmetic gives. Run at the second 02:10 (CET, 01:10Z):
    # retried at 01:25Z (02:25 CET), not at 02:25 CEST (00:25Z), before the run.
    for now, retry in (
        (datetime(2025, 10, 26, 2, 58, tzinfo=BERLIN), z(2025, 10, 26, 1, 13)),
        (datetime(2025, 10, 26, 2, 10, tzinfo=BERLIN, fold=1), z(2025, 10, 26, 1, 25)),
    ):
        store = open_store("memory://")
        ticket, _ = new(z(2025, 10, 25, 20)).set_status(z(2025, 10, 25, 20, 1), "open")
        store.tickets.add(ticket)
        b = book_of(BERLIN_ALWAYS, H)
        bad = EscalationRule(
            name="bad",
            condition=Field("priority") >= "normal",
            levels=[
                EscalationLevel(
                    trigger=PercentUsed(target="first_reply", percent=100),
                    actions=[SetStatus(status="new")],
                )
            ],
        )
        engine = EscalationEngine(store, b, [bad])
        engine.ticket_changed(ticket.id)
        run = engine.run(now)
        (failure,) = run.failed
        assert failure.retry_at.astimezone(UTC) == retry
        assert engine.next_due() == retry


def test_grant_points_at_a_breach_in_the_repeated_hour_with_a_local_window() -> None:
    # Berlin 24x7, first reply 4 h from 21:30Z: due 01:30Z (02:30 CET, the second). A level
    # one microsecond after the breach grants recovery points: run with Berlin instants, it
    # must see the breach (evaluated just after 01:30:00.000001Z, not an hour earlier).
    b = book_of(BERLIN_ALWAYS, 4 * H)
    grant = EscalationRule(
        name="sorry",
        condition=Field("priority") >= "normal",
        levels=[
            EscalationLevel(
                trigger=DueOffset.after("first_reply"),
                actions=[GrantPoints(policy=RecoveryPolicy(points=100))],
            )
        ],
    )
    ticket = new(z(2025, 10, 25, 21, 30))
    for start, end in (
        (z(2025, 10, 25, 21), z(2025, 10, 26, 3)),
        (datetime(2025, 10, 25, 23, tzinfo=BERLIN), datetime(2025, 10, 26, 4, tzinfo=BERLIN)),
    ):
        (done,) = run_ticket(ticket, b, [grant], start, end).firings
        assert done.firing.at.astimezone(UTC) == z(2025, 10, 26, 1, 30) + US
        (request,) = done.requests
        assert isinstance(request, PointsGrantRequest)
        assert [s.target for s in request.breaches] == ["first_reply"]


def test_dispatcher_next_due_is_utc_and_equals_the_engines_instant() -> None:
    # A message due now, asked with the clock at the second 02:10 in Berlin (CET, 01:10Z): the
    # wake-up is now, given in UTC as the engine's next_due() is, so that == holds with the
    # engine's instant (a Berlin datetime of the repeated hour never equals a UTC one).
    now = datetime(2025, 10, 26, 2, 10, tzinfo=BERLIN, fold=1)
    store = open_store("memory://")
    outbox(store).put([_request(z(2025, 10, 26, 1), key="k/0")])
    dispatcher = Dispatcher(
        store,
        CallableNotifier(lambda request, key: None),
        clock=FixedClock(now),
        calendars=BERLIN_ALWAYS,
    )
    wake = dispatcher.next_due()
    assert wake == z(2025, 10, 26, 1, 10)
    assert wake is not None
    assert wake.tzinfo is UTC


@pytest.mark.parametrize(
    ("within", "fires"),
    [
        # 50 % of 5 h from 2025-10-31 20:00Z: 22:30Z (23:30 CET, October): ann still has her
        # 100 points, the level fires.
        (5 * H, z(2025, 10, 31, 22, 30)),
        # 50 % of 7 h: 23:30Z, 00:30 CET on 1 November: her October points expired at local
        # midnight (23:00Z), half an hour before UTC's; the level never fires.
        (7 * H, None),
    ],
)
def test_member_points_expire_at_the_programs_local_midnight_for_rules(
    within: timedelta, fires: datetime | None
) -> None:
    shop = Program(
        name="shop",
        rules=[SpendRule(name="base", points=Decimal(1))],
        expiry=EndOfPeriodExpiry(period=Period.MONTH, timezone="Europe/Berlin"),
    )
    store = open_store("memory://")
    ledger = Ledger(store)
    earned = earn_points(
        ledger, shop, "ann@example.com", Purchase.of(Decimal(100)), at=z(2025, 10, 5), key="o"
    )
    assert earned is not None
    assert earned.expires_at == z(2025, 10, 31, 23)
    ticket = new(z(2025, 10, 31, 20))
    store.tickets.add(ticket)
    vip = rule(
        PercentUsed(target="first_reply", percent=50), condition=Field("member.points") >= 100
    )
    engine = EscalationEngine(store, book_of(BERLIN_ALWAYS, within), [vip], loyalty=shop)
    assert engine.ticket_changed(ticket.id) == fires


def test_grant_points_on_a_later_level_compares_the_breach_as_an_instant() -> None:
    # Berlin 24x7, first reply 4 h from 20:45Z: breach at 00:45Z (02:45 CEST, the first
    # 02:45). A level 45 wall minutes later fires at 01:30Z (02:30 CET, the second 02:30) and
    # grants for the breach: 02:45 CEST is before 02:30 CET, though its wall reading is later.
    b = book_of(BERLIN_ALWAYS, 4 * H)
    grant = EscalationRule(
        name="sorry",
        condition=Field("priority") >= "normal",
        levels=[
            EscalationLevel(
                trigger=DueOffset.after("first_reply", 45 * M),
                actions=[GrantPoints(policy=RecoveryPolicy(points=100))],
            )
        ],
    )
    ticket = new(z(2025, 10, 25, 20, 45))
    for start, end in (
        (z(2025, 10, 25, 21), z(2025, 10, 26, 3)),
        (datetime(2025, 10, 25, 23, tzinfo=BERLIN), datetime(2025, 10, 26, 4, tzinfo=BERLIN)),
    ):
        (done,) = run_ticket(ticket, b, [grant], start, end).firings
        assert done.firing.at.astimezone(UTC) == z(2025, 10, 26, 1, 30)
        (request,) = done.requests
        assert isinstance(request, PointsGrantRequest)
        assert [s.breached_at for s in request.breaches] == [z(2025, 10, 26, 0, 45)]


@settings(max_examples=40, deadline=None)
@given(
    now=st.integers(min_value=-3 * 60 * 60, max_value=3 * 60 * 60).map(
        lambda s: z(2025, 10, 26, 1) + timedelta(seconds=s)
    ),
    zone=st.sampled_from(ZONES),
    failures=st.integers(min_value=1, max_value=4),
)
def test_the_clock_zone_never_changes_a_dispatchers_schedule(
    now: datetime, zone: tzinfo, failures: int
) -> None:
    # A message failing `failures` times, each attempt as soon as due: every lease end and
    # retry instant is the same whatever zone the clock reads in.
    def schedule(tz: tzinfo) -> list[datetime]:
        dispatcher, clock, store, leases = _failing_dispatcher(now.astimezone(tz))
        seen = []
        for _ in range(failures):
            assert dispatcher.run().retried == ("k/0",)
            due = outbox(store).get("k/0").next_attempt_at
            seen.append(due)
            clock.set(due.astimezone(tz))
        return [*leases, *seen]

    assert schedule(zone) == schedule(UTC)


@settings(max_examples=30, deadline=None)
@given(
    created=st.lists(
        st.integers(min_value=-4 * 60, max_value=2 * 60).map(
            lambda m: z(2025, 10, 26, 1) + timedelta(minutes=m)
        ),
        min_size=1,
        max_size=4,
    ),
    now=st.integers(min_value=0, max_value=8 * 60).map(
        lambda m: z(2025, 10, 25, 22) + timedelta(minutes=m)
    ),
    zone=st.sampled_from(ZONES),
)
def test_the_zone_of_now_never_changes_an_engine_run(
    created: list[datetime], now: datetime, zone: tzinfo
) -> None:
    b = book_of(BERLIN_ALWAYS, 2 * H)
    r = rule(
        PercentUsed(target="first_reply", percent=50),
        DueOffset.after("first_reply", 30 * M),
    )

    def run(tz: tzinfo) -> tuple[list[tuple[object, datetime]], datetime | None]:
        store = open_store("memory://")
        engine = EscalationEngine(store, b, [r])
        for i, at in enumerate(created):
            store.tickets.add(new(at, ticket_id=f"T-{i}"))
        engine.plan_all()
        done = engine.run(now.astimezone(tz))
        return [
            (p.firing.key, p.firing.at.astimezone(UTC)) for p in done.firings
        ], engine.next_due()

    assert run(zone) == run(UTC)


def test_dispatcher_compares_a_local_not_before_with_a_local_clock_as_instants() -> None:
    # The request's not_before is the first 02:45 (CEST, 00:45Z), as an engine run with a Berlin
    # `now` writes it; the clock reads the second 02:20 (CET, 01:20Z), 35 minutes later. The
    # message is due and delivered now, and next_due() says now, not 00:45Z (in the past: a
    # host would wake at once and find it held, until 02:45 CET).
    not_before = datetime(2025, 10, 26, 2, 45, tzinfo=BERLIN)
    now = datetime(2025, 10, 26, 2, 20, tzinfo=BERLIN, fold=1)
    page = NotificationRequest(
        channel="sms",
        recipient="lead",
        template="page",
        data={},
        not_before=not_before,
        idempotency_key="k/0",
        ticket_id="T-1",
    )
    store = open_store("memory://")
    outbox(store).put([OutboxMessage.new(page, created_at=not_before)])
    sent: list[str] = []
    dispatcher = Dispatcher(
        store, CallableNotifier(lambda request, key: sent.append(key)), clock=FixedClock(now)
    )
    assert dispatcher.next_due() == z(2025, 10, 26, 1, 20)
    assert dispatcher.run().delivered == ("k/0",)
    assert sent == ["k/0"]
    # A dead letter re-queued at a local instant after not_before is due then, not at 02:45 CEST.
    failing = open_store("memory://")
    outbox(failing).put([OutboxMessage.new(page, created_at=not_before)])

    def refuse(request: NotificationRequest, key: str) -> None:
        raise PermanentDeliveryError("no")

    clock = FixedClock(now)
    dead = Dispatcher(failing, CallableNotifier(refuse), clock=clock)
    assert dead.run().dead == ("k/0",)
    again = dead.requeue("k/0", at=datetime(2025, 10, 26, 2, 25, tzinfo=BERLIN, fold=1))
    assert again.next_attempt_at == z(2025, 10, 26, 1, 25)


@pytest.mark.parametrize("business_hours", [False, True])
def test_dispatcher_next_due_orders_local_not_befores_of_the_repeated_hour_as_instants(
    business_hours: bool,
) -> None:
    # Two messages whose next_attempt_at (22:00Z the day before) is before their request's
    # not_before (an OutboxMessage may be written so; the dispatcher holds it to not_before):
    # "a" not before the first 02:45 (CEST, 00:45Z), "b" not before the second 02:20 (CET,
    # 01:20Z), both in Berlin time as an engine run with a Berlin `now` writes them. The
    # memory store keeps the requests as given. The first attempt is at 00:45Z, not 01:20Z
    # (two Berlin datetimes compare by wall reading: 02:20 < 02:45). With business hours, on a
    # calendar open all night, each is held to itself (the calendar is open then).
    early = z(2025, 10, 25, 22)
    first_0245 = datetime(2025, 10, 26, 2, 45, tzinfo=BERLIN)
    second_0220 = datetime(2025, 10, 26, 2, 20, tzinfo=BERLIN, fold=1)
    store = open_store("memory://")
    messages = []
    for key, not_before in (("a", first_0245), ("b", second_0220)):
        request = NotificationRequest(
            channel="sms",
            recipient="lead",
            template="page",
            data={},
            not_before=not_before,
            idempotency_key=key,
            ticket_id="T-1",
            business_hours=business_hours,
        )
        messages.append(
            OutboxMessage(key=key, request=request, next_attempt_at=early, created_at=early)
        )
    outbox(store).put(messages)
    clock = FixedClock(early)
    dispatcher = Dispatcher(
        store,
        CallableNotifier(lambda request, key: None),
        clock=clock,
        calendars=BERLIN_ALWAYS,
    )
    wake = dispatcher.next_due()
    assert wake == z(2025, 10, 26, 0, 45)
    assert wake is not None
    assert wake.tzinfo is UTC
    clock.set(z(2025, 10, 26, 0, 45))
    assert dispatcher.run().delivered == ("a",)


def test_a_calendar_time_target_is_elapsed_time_across_fall_back() -> None:
    # A 24 h first-reply target in calendar time (business_hours=False) on a Berlin office book,
    # created Saturday 2025-10-25 12:00 CEST (10:00Z): due Sunday 10:00Z = 11:00 CET (24 real
    # hours; the wall clock moved 23). 50 %: 22:00Z = Sunday 00:00 CEST.
    b = SlaBook(
        calendar=BERLIN_OFFICE,
        policies=[
            SlaPolicy(
                name="std",
                position=1,
                default=True,
                targets=[SlaTarget(metric="first_reply", within=24 * H, business_hours=False)],
            )
        ],
    )
    ticket = new(datetime(2025, 10, 25, 12, tzinfo=BERLIN))
    r = rule(
        PercentUsed(target="first_reply", percent=50),
        PercentUsed(target="first_reply", percent=100),
    )
    got = due_firings(ticket, b, [r], z(2025, 10, 25), z(2025, 10, 27))
    assert utc_of(shown(got)) == [(0, z(2025, 10, 25, 22)), (1, z(2025, 10, 26, 10))]
