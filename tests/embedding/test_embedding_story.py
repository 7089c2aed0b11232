"""A small help desk and shop backend embedding csmcore, written from the documentation only.

One week in Berlin (Monday 11 to Tuesday 19 May 2026, with Ascension Day on Thursday 14 May a
holiday): six tickets, purchases, a redemption and a return, the escalation engine woken at
the instants it asks for (as `docs/escalation.md`, "What a host does", recommends), the outbox
delivered through a callable notifier, then a KPI summary by priority and channel in business
hours and a staffing plan from the arrivals. Every figure asserted is worked out by hand in the
comments next to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from csmcore import BusinessCalendar, staffing
from csmcore.clock import FixedClock
from csmcore.conditions import Always, Field
from csmcore.escalation import (
    AddTags,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    GrantPoints,
    NotificationRequest,
    Notify,
    PercentUsed,
)
from csmcore.loyalty import (
    Multiplier,
    Period,
    Program,
    Purchase,
    RecoveryPolicy,
    RollingExpiry,
    SpendRule,
    Tier,
    TierPolicy,
)
from csmcore.services import (
    CallableNotifier,
    Dispatcher,
    EscalationEngine,
    Ledger,
    earn_points,
    return_points,
    tier_of,
)
from csmcore.services.kpi import summarize
from csmcore.sla import SlaBook, SlaMetric, SlaPolicy, SlaTarget
from csmcore.storage import OutboxRepository, open_store, role_of
from csmcore.tickets import Priority, Role, Status, Ticket

BERLIN = ZoneInfo("Europe/Berlin")
UTC = timezone.utc
H = timedelta(hours=1)
US = timedelta(microseconds=1)


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant of May 2026, Berlin wall time (CEST, UTC+2)."""
    return datetime(2026, 5, day, hour, minute, tzinfo=BERLIN)


# --- configuration: what the shop's help desk would keep in its settings -----------------

CALENDAR = BusinessCalendar.weekly(
    "09:00",
    "17:00",
    days="mon-fri",
    timezone="Europe/Berlin",
    holidays=[date(2026, 5, 14), date(2026, 5, 25)],  # Ascension Day, Whit Monday
)

FIRST_REPLY = {"urgent": 1 * H, "high": 2 * H, "normal": 4 * H, "low": 8 * H}
RESOLUTION = {"high": 16 * H, "normal": 24 * H, "low": 40 * H}  # business hours
URGENT_RESOLUTION = 24 * H  # wall time: urgent tickets are worked around the clock

BOOK = SlaBook(
    calendar=CALENDAR,
    policies=[
        SlaPolicy(
            name="standard",
            position=1,
            default=True,
            targets=[
                *(
                    SlaTarget(metric=SlaMetric.FIRST_REPLY, within=d, priority=p)
                    for p, d in FIRST_REPLY.items()
                ),
                *(
                    SlaTarget(metric=SlaMetric.TOTAL_RESOLUTION, within=d, priority=p)
                    for p, d in RESOLUTION.items()
                ),
                SlaTarget(
                    metric=SlaMetric.TOTAL_RESOLUTION,
                    within=URGENT_RESOLUTION,
                    priority="urgent",
                    business_hours=False,
                ),
            ],
        )
    ],
)

RECOVERY = RecoveryPolicy(
    points=100,  # per breached target cycle
    per_target={"first_reply": 50},
    cap=300,
    period="month",
    timezone="Europe/Berlin",
    expiry=RollingExpiry(after=relativedelta(months=6), timezone="Europe/Berlin"),
)

PAGE_MANAGER = EscalationRule(
    name="page-manager",
    condition=Field("priority") >= "high",
    levels=[
        EscalationLevel(
            trigger=PercentUsed(target="total_resolution", percent=75),
            actions=[
                Notify(
                    channel="email",
                    recipient="manager@shop.example",
                    template="page_manager",
                    data={"percent": 75},
                    business_hours=True,
                )
            ],
        )
    ],
)

BREACH_RECOVERY = EscalationRule(
    name="breach-recovery",
    condition=Always(),
    levels=[
        EscalationLevel(
            trigger=DueOffset.after("first_reply"),
            actions=[
                GrantPoints(policy=RECOVERY),
                Notify(channel="email", recipient="$requester", template="sorry_points"),
            ],
        ),
        EscalationLevel(
            trigger=DueOffset.after("total_resolution"),
            actions=[GrantPoints(policy=RECOVERY)],
        ),
    ],
)

GOLD_CARE = EscalationRule(
    name="gold-care",
    condition=Field("member.tier") == "gold",
    levels=[
        EscalationLevel(
            trigger=PercentUsed(target="first_reply", percent=50),
            actions=[
                AddTags(tags={"gold"}),
                Notify(channel="chat", recipient="$group", template="gold_waiting"),
            ],
        )
    ],
)

PROGRAM = Program(
    name="shop",
    rules=[SpendRule(name="base", points=Decimal(1))],  # 1 point per euro, rounded down
    multipliers=[Multiplier(name="gold x2", factor=Decimal(2), tiers={"gold"})],
    expiry=RollingExpiry(after=relativedelta(months=12), timezone="Europe/Berlin"),
    tiers=TierPolicy(
        tiers=[Tier(name="silver", threshold=300), Tier(name="gold", threshold=1000)],
        qualification=Period.YEAR,
        timezone="Europe/Berlin",
    ),
)


# --- the host ------------------------------------------------------------------------------


@dataclass
class Sent:
    at: datetime
    channel: str
    recipient: str
    template: str
    ticket_id: str | None


@dataclass
class Desk:
    """The help desk process: a store, the engine, the dispatcher and a simulated clock."""

    path: Path
    sent: list[Sent] = field(default_factory=list)
    wakes: list[datetime] = field(default_factory=list)
    fired: list[tuple[str, int, str, str | None, datetime]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clock = FixedClock(berlin(4, 0).astimezone(UTC))
        self.start()

    def start(self) -> None:
        """Open the store and build the services (at start-up, and again after a restart)."""
        self.store = open_store(f"sqlite:///{self.path}")
        # Optional roles are not on the Store protocol: a typed host reaches them by role_of.
        self.outbox: OutboxRepository = role_of(self.store, "outbox")
        self.ledger = Ledger(self.store)
        self.engine = EscalationEngine(
            self.store, BOOK, [PAGE_MANAGER, BREACH_RECOVERY, GOLD_CARE], loyalty=PROGRAM
        )
        notifier = CallableNotifier(self._deliver)
        self.dispatcher = Dispatcher(
            self.store, {"email": notifier, "chat": notifier}, clock=self.clock, calendars=BOOK
        )

    def _deliver(self, request: NotificationRequest, key: str) -> None:
        self.sent.append(
            Sent(
                self.clock.now(),
                request.channel,
                request.recipient,
                request.template,
                request.ticket_id,
            )
        )

    def restart(self, instant: datetime) -> None:
        """The process stops and starts again: nothing but the SQLite file survives."""
        self.at(instant)
        self.store.close()
        self.start()

    # Time passes: wake the engine at each instant it asked for, and the dispatcher at each
    # wake-up and at each held message's not_before, up to `until` (inclusive).
    def advance(self, until: datetime) -> None:
        while True:
            due = self.engine.next_due()
            held = [
                m.next_attempt_at
                for m in self.outbox.list()
                if m.state.value == "pending" and m.next_attempt_at is not None
            ]
            candidates = [t for t in [due, *held] if t is not None and t <= until]
            if not candidates:
                break
            now = max(min(candidates), self.clock.now())
            self.clock.set(now)
            if due is not None and due <= now:
                self.wakes.append(now)
                run = self.engine.run(now)
                assert run.failed == ()
                for p in run.firings:
                    f = p.firing
                    self.fired.append((f.rule, f.level, f.ticket_id, f.target, f.at))
            self.dispatcher.run()
        self.clock.set(max(until, self.clock.now()))
        self.dispatcher.run()

    def at(self, instant: datetime) -> datetime:
        self.advance(instant)
        return instant

    def open_ticket(
        self,
        instant: datetime,
        ticket_id: str,
        *,
        channel: str,
        priority: str,
        requester: str,
        group: str | None = None,
    ) -> None:
        ticket, _ = Ticket.create(
            at=self.at(instant),
            ticket_id=ticket_id,
            created_by=Role.REQUESTER,
            channel=channel,
            priority=priority,
            requester=requester,
            group=group,
        )
        self.store.tickets.add(ticket)
        self.engine.ticket_changed(ticket_id)

    def change(
        self, ticket_id: str, instant: datetime, step: Callable[[Ticket, datetime], Ticket]
    ) -> None:
        self.at(instant)
        ticket = self.store.tickets.get(ticket_id)
        changed = step(ticket, instant)
        new_events = changed.events[ticket.version :]
        self.store.tickets.append(ticket_id, list(new_events), expected_version=ticket.version)
        self.engine.ticket_changed(ticket_id)

    def reply(self, ticket_id: str, instant: datetime) -> None:
        self.change(ticket_id, instant, lambda t, at: t.comment(at, Role.AGENT, author="eve")[0])

    def solve(self, ticket_id: str, instant: datetime) -> None:
        self.change(ticket_id, instant, lambda t, at: t.set_status(at, Status.SOLVED)[0])

    def buy(self, member: str, instant: datetime, amount: str, key: str) -> str:
        entry = earn_points(
            self.ledger, PROGRAM, member, Purchase.of(Decimal(amount)), at=self.at(instant), key=key
        )
        assert entry is not None
        self.engine.member_changed(member)
        return entry.entry_id


def test_a_week_at_the_shop_help_desk(tmp_path: Path) -> None:
    desk = Desk(tmp_path / "desk.db")
    ledger = desk.ledger

    # The week before: Ann spends 1,200 EUR (gold from then on, 1,000 points earned in 2026),
    # Bob 250 EUR (no tier: silver needs 300).
    desk.buy("ann@shop.example", berlin(4, 10), "1200.00", "order-1")
    bob_order = desk.buy("bob@shop.example", berlin(4, 11), "250.00", "order-2")
    # Monday 08:00: Cy spends 400 EUR (silver).
    desk.buy("cy@shop.example", berlin(11, 8), "400.00", "order-3")
    assert tier_of(ledger, PROGRAM, "ann@shop.example", berlin(11, 8)).tier == "gold"
    assert tier_of(ledger, PROGRAM, "cy@shop.example", berlin(11, 8)).tier == "silver"
    assert tier_of(ledger, PROGRAM, "bob@shop.example", berlin(11, 8)).tier is None

    # T-1 (Bob, normal, email): Monday 09:30, reply 10:30, solved 15:30. Nothing fires.
    desk.open_ticket(
        berlin(11, 9, 30), "T-1", channel="email", priority="normal", requester="bob@shop.example"
    )
    desk.reply("T-1", berlin(11, 10, 30))
    # T-2 (Ann, gold, high, web, group "orders"): Monday 10:00; first reply due 12:00 (two
    # business hours), so gold-care's 50 % level fires at 11:00; the reply comes at 11:45.
    desk.open_ticket(
        berlin(11, 10),
        "T-2",
        channel="web",
        priority="high",
        requester="ann@shop.example",
        group="orders",
    )
    desk.reply("T-2", berlin(11, 11, 45))
    desk.solve("T-1", berlin(11, 15, 30))
    # Tuesday 12:00: Ann buys for 100 EUR as a gold member: twice the points.
    desk.buy("ann@shop.example", berlin(12, 12), "100.00", "order-4")
    # T-3 (Cy, urgent, email): Tuesday 16:00; first reply due 17:00 (one business hour) and
    # missed: breach-recovery fires one microsecond after 17:00 (50 points, an apology).
    # Resolution: 24 wall hours, 75 % at Wednesday 10:00 (the manager is paged then).
    desk.open_ticket(
        berlin(12, 16), "T-3", channel="email", priority="urgent", requester="cy@shop.example"
    )
    desk.reply("T-3", berlin(13, 9, 30))
    # T-2 is solved Wednesday 09:30: 7 + 8 + 0.5 = 15.5 of its 16 business hours.
    desk.solve("T-2", berlin(13, 9, 30))
    # Wednesday 12:00: Ann redeems 500 points.
    desk.at(berlin(13, 12))
    ledger.redeem("ann@shop.example", 500, at=berlin(13, 12), key="basket-1")
    desk.engine.member_changed("ann@shop.example")
    desk.solve("T-3", berlin(13, 15))
    # T-4 (Bob, high, web): Wednesday 16:30. First reply due Friday 10:30 (half an hour on
    # Wednesday, Thursday is a holiday); answered Friday 10:00. Resolution, 16 business hours:
    # 0.5 (Wed) + 8 (Fri) + 7.5 (Mon) -> due Monday 18 May 16:30; 75 % (12 h) at Monday 12:30.
    desk.open_ticket(
        berlin(13, 16, 30), "T-4", channel="web", priority="high", requester="bob@shop.example"
    )
    # T-5 (Ann, urgent, chat): Wednesday 18:00, after hours. First reply due Friday 10:00 (the
    # next open hour), answered at 09:15, before gold-care's 50 % (09:30). Resolution, 24 wall
    # hours: 75 % on Thursday 12:00, a holiday, so the page waits for Friday 09:00; breached
    # Thursday 18:00 (+1 us): 100 points.
    desk.open_ticket(
        berlin(13, 18), "T-5", channel="chat", priority="urgent", requester="ann@shop.example"
    )
    # The help desk is redeployed on the holiday morning: a new process, the same file. The
    # engine's plans and the outbox are in the store, so nothing is lost or repeated.
    desk.restart(berlin(14, 8))
    ledger = desk.ledger
    desk.reply("T-5", berlin(15, 9, 15))
    desk.reply("T-4", berlin(15, 10))
    desk.solve("T-5", berlin(15, 11))
    # Friday 12:00: Bob returns the 250 EUR order; its 250 points are clawed back.
    desk.at(berlin(15, 12))
    returned = return_points(ledger, PROGRAM, bob_order, at=berlin(15, 12), key="return-2")
    desk.engine.member_changed("bob@shop.example")
    assert returned.points == -250
    # T-6 (Dan, not a member, low, email): Friday 16:00, first reply due Monday 16:00
    # (1 + 7 business hours), answered Monday 11:00; still open at the report.
    desk.open_ticket(
        berlin(15, 16), "T-6", channel="email", priority="low", requester="dan@example.org"
    )
    desk.reply("T-6", berlin(18, 11))
    # T-4 breaches its resolution on Monday 16:30 (+1 us): 100 points to Bob; solved Tuesday.
    desk.solve("T-4", berlin(19, 10))
    report_at = desk.at(berlin(19, 12))

    # --- escalations: every firing, at its exact instant ---------------------------------
    assert sorted(desk.fired, key=lambda f: f[4]) == [
        ("gold-care", 0, "T-2", "first_reply", berlin(11, 11)),
        ("page-manager", 0, "T-2", "total_resolution", berlin(12, 14)),  # 7 + 5 business h
        ("breach-recovery", 0, "T-3", "first_reply", berlin(12, 17) + US),
        ("page-manager", 0, "T-3", "total_resolution", berlin(13, 10)),
        ("page-manager", 0, "T-5", "total_resolution", berlin(14, 12)),
        ("breach-recovery", 1, "T-5", "total_resolution", berlin(14, 18) + US),
        ("page-manager", 0, "T-4", "total_resolution", berlin(18, 12, 30)),
        ("breach-recovery", 1, "T-4", "total_resolution", berlin(18, 16, 30) + US),
    ]
    # The engine woke exactly at those instants (and never for nothing).
    assert desk.wakes == sorted({f[4] for f in desk.fired})
    assert "gold" in desk.store.tickets.get("T-2").tags
    assert "gold" not in desk.store.tickets.get("T-5").tags

    # --- notifications: what the notifier got, and when ----------------------------------
    assert [(s.at, s.channel, s.recipient, s.template, s.ticket_id) for s in desk.sent] == [
        (berlin(11, 11), "chat", "orders", "gold_waiting", "T-2"),
        (berlin(12, 14), "email", "manager@shop.example", "page_manager", "T-2"),
        (berlin(12, 17) + US, "email", "cy@shop.example", "sorry_points", "T-3"),
        (berlin(13, 10), "email", "manager@shop.example", "page_manager", "T-3"),
        # fired on the holiday at 12:00, held to the next open instant
        (berlin(15, 9), "email", "manager@shop.example", "page_manager", "T-5"),
        (berlin(18, 12, 30), "email", "manager@shop.example", "page_manager", "T-4"),
    ]

    # --- loyalty balances ------------------------------------------------------------------
    # Ann: 1,200 + 200 (gold x2) + 100 (T-5 resolution breach) - 500 redeemed = 1,000.
    ann = ledger.balance("ann@shop.example", report_at)
    assert (ann.active, ann.spent, ann.lifetime) == (1000, 500, 1500)
    # Bob: 250 - 250 (the return) + 100 (T-4 resolution breach) = 100.
    bob = ledger.balance("bob@shop.example", report_at)
    assert (bob.active, bob.lifetime) == (100, 100)
    # Cy: 400 + 50 (T-3 first reply breach).
    assert ledger.balance("cy@shop.example", report_at).active == 450
    grants = [
        (e.member_id, e.points, e.key, e.at)
        for member in ("ann@shop.example", "bob@shop.example", "cy@shop.example")
        for e in ledger.entries(member)
        if e.reason == "sla_breach"
    ]
    assert grants == [
        ("ann@shop.example", 100, "sla-recovery:T-5:total_resolution:1", berlin(14, 18) + US),
        ("bob@shop.example", 100, "sla-recovery:T-4:total_resolution:1", berlin(18, 16, 30) + US),
        ("cy@shop.example", 50, "sla-recovery:T-3:first_reply:1", berlin(12, 17) + US),
    ]
    for member in ("ann@shop.example", "bob@shop.example", "cy@shop.example"):
        assert ledger.verify(member).ok

    # --- KPIs by priority and channel, in business hours -----------------------------------
    report = summarize(
        desk.store, at=report_at, calendar=CALENDAR, book=BOOK, business=True,
        by=["priority", "channel"],
    )  # fmt: skip
    groups = report.results()
    assert sorted((str(p), str(c)) for p, c in groups) == [
        ("high", "web"),
        ("low", "email"),
        ("normal", "email"),
        ("urgent", "chat"),
        ("urgent", "email"),
    ]
    high_web = groups[(Priority.HIGH, "web")]
    # first replies: T-2 1 h 45, T-4 0.5 + 1 = 1 h 30 -> mean 1 h 37 min 30 s
    assert high_web.tickets == 2
    assert high_web.first_reply.mean == timedelta(hours=1, minutes=37, seconds=30)
    # resolution: T-2 7 + 8 + 0.5 = 15.5 h, T-4 0.5 + 8 + 8 + 1 = 17.5 h -> mean 16.5 h
    assert high_web.full_resolution.mean == timedelta(hours=16, minutes=30)
    assert high_web.sla["total_resolution"].achieved == 1
    assert high_web.sla["total_resolution"].breached == 1
    urgent_chat = groups[(Priority.URGENT, "chat")]
    # T-5: created after hours, answered Friday 09:15, solved 11:00 -> 15 min and 2 h
    assert urgent_chat.first_reply.mean == timedelta(minutes=15)
    assert urgent_chat.full_resolution.mean == timedelta(hours=2)
    total = report.total()
    assert total.tickets == 6
    # first replies in business hours: 1, 1.75, 1.5, 1.5, 0.25, 3 -> median 1.5 h
    assert total.first_reply.median == timedelta(hours=1, minutes=30)
    # first reply: T-3 breached, 5 achieved; resolution: T-4 and T-5 breached, T-1..T-3
    # achieved, T-6 still running (excluded): 8 achieved of 11 judged
    assert (total.sla["first_reply"].achieved, total.sla["first_reply"].breached) == (5, 1)
    assert (
        total.sla["total_resolution"].achieved,
        total.sla["total_resolution"].breached,
    ) == (3, 2)
    assert total.sla_overall.rate == 8 / 11
    assert total.backlog.count == 1  # T-6

    # --- staffing from the arrivals of the week --------------------------------------------
    tickets = list(desk.store.tickets.find(Always()))
    forecast = staffing.arrival_forecast(
        tickets, timezone="Europe/Berlin", start=date(2026, 5, 11), end=date(2026, 5, 18)
    )
    assert forecast.days_observed == (1, 1, 1, 1, 1, 1, 1)
    plans = staffing.staffing_plan(
        forecast,
        handle_time=timedelta(minutes=20),
        answer_within=timedelta(hours=1),
        service_level=0.8,
    )
    busy = [(p.weekday, p.start, p.arrivals, p.plan.raw_agents) for p in plans if p.arrivals]
    # One ticket an hour, 20 minutes each: a third of an erlang; one agent answers
    # 1 - (1/3) e^(-(1 - 1/3) * 3) = 95.5 % within the hour.
    assert busy == [
        (0, time(9), 1.0, 1),
        (0, time(10), 1.0, 1),
        (1, time(16), 1.0, 1),
        (2, time(16), 1.0, 1),
        (2, time(18), 1.0, 1),
        (4, time(16), 1.0, 1),
    ]
    desk.store.close()
