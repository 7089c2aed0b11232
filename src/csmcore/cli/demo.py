"""A simulated support desk for ``csmcore demo``: a few weeks of tickets, deterministic by seed.

Requesters write in by weekday and hour (busiest on weekday mornings, a trickle at weekends);
agents answer within business hours after a delay that depends on the priority; some tickets
wait on the requester (pending), some are escalated to a higher priority, most are solved and
later closed, a few are reopened, and about four in ten requesters answer a satisfaction survey
(lower scores after slower resolutions). Everything is built with the public ticket API, so the SLA
engine and the report see ordinary histories.

>>> from datetime import datetime, timezone
>>> desk = simulate(seed=3, weeks=1)
>>> len(desk.tickets) > 50, desk.end.isoformat()
(True, '2025-03-09T23:00:00+00:00')
>>> simulate(seed=3, weeks=1).tickets == desk.tickets   # same seed, same desk
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import attrs
from dateutil.relativedelta import relativedelta

from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Always
from csmcore.errors import ValidationError
from csmcore.escalation import (
    DueOffset,
    EscalationLevel,
    EscalationRule,
    Firing,
    Notify,
    PercentUsed,
    due_firings,
)
from csmcore.kpi import SatisfactionRated
from csmcore.loyalty import LedgerEntry, RecoveryPolicy, RollingExpiry
from csmcore.services import Ledger, compensate
from csmcore.sla import SlaBook
from csmcore.tickets import Role, Status, Ticket

__all__ = [
    "DEMO_START",
    "DEMO_ZONE",
    "Desk",
    "DeskActivity",
    "demo_calendar",
    "demo_recovery",
    "demo_rules",
    "run_jobs",
    "simulate",
]

DEMO_ZONE = "Europe/Berlin"
"""The simulated desk's time zone."""
DEMO_START = datetime(2025, 3, 3, tzinfo=ZoneInfo(DEMO_ZONE))
"""Monday 3 March 2025, 00:00 in Berlin: the first day simulated."""

_CHANNELS = (("email", 50), ("web", 25), ("phone", 15), ("chat", 10))
_PRIORITIES = (("low", 20), ("normal", 55), ("high", 20), ("urgent", 5))
# Median first-reply delay in business minutes, by priority.
_REPLY_MINUTES = {"urgent": 25, "high": 90, "normal": 200, "low": 420}
# Median business minutes of work to solve, by priority.
_SOLVE_MINUTES = {"urgent": 240, "high": 600, "normal": 1200, "low": 2400}
_GROUPS = {"email": "L1", "web": "L1", "phone": "Phone", "chat": "Chat"}
_AGENTS = {"L1": ("ana", "ben", "chen"), "Phone": ("dora", "eli"), "Chat": ("finn", "gia")}


def demo_calendar() -> BusinessCalendar:
    """The desk's hours: Monday to Friday, 08:00 to 18:00 in Berlin."""
    return BusinessCalendar.weekly("08:00", "18:00", days="mon-fri", timezone=DEMO_ZONE)


def _hourly_rate(day: int, hour: int) -> float:
    """Expected arrivals in one hour: weekday office hours peak, evenings and weekends low."""
    if day >= 5:
        return 0.4
    if 9 <= hour < 12:
        return 4.0
    if 13 <= hour < 17:
        return 3.0
    if 7 <= hour < 20:
        return 1.2
    return 0.2


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by Knuth's multiplication method (fine for small means)."""
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _minutes(rng: random.Random, median: float) -> timedelta:
    """A log-normal delay around ``median`` minutes (sigma 0.8)."""
    return timedelta(seconds=round(60 * max(1.0, rng.lognormvariate(math.log(median), 0.8))))


@attrs.frozen(kw_only=True)
class Desk:
    """The simulated desk: its tickets (histories up to :attr:`end`) and calendar."""

    tickets: tuple[Ticket, ...]
    calendar: BusinessCalendar
    start: datetime
    end: datetime


def _arrivals(rng: random.Random, start: datetime, end: datetime) -> Iterator[datetime]:
    """Arrival instants from ``start`` to ``end``, hour by real (UTC) hour: stepping the local
    wall clock would draw one hour twice when the clocks go forward and skip one when they go
    back."""
    zone = start.tzinfo
    hour = start.astimezone(timezone.utc)
    while hour < end:
        local = hour.astimezone(zone)
        for _ in range(_poisson(rng, _hourly_rate(local.weekday(), local.hour))):
            yield hour + timedelta(seconds=rng.randrange(3600))
        hour += timedelta(hours=1)


def _life(rng: random.Random, ticket: Ticket, calendar: BusinessCalendar, end: datetime) -> Ticket:
    """Play one ticket's life after creation; events after ``end`` are not played."""
    priority = str(ticket.priority)
    group = _GROUPS[str(ticket.channel)]
    agent = rng.choice(_AGENTS[group])
    at = ticket.created_at

    def step(when: datetime) -> bool:
        nonlocal at
        if when >= end:
            return False
        at = when
        return True

    if rng.random() < 0.03:  # never answered within the period
        return ticket
    if not step(calendar.add(at, timedelta(minutes=rng.randrange(1, 30)))):
        return ticket
    ticket, _ = ticket.assign(at, assignee=agent, group=group, actor=agent)
    ticket, _ = ticket.set_status(at, Status.OPEN, actor=agent)
    if rng.random() < 0.08 and priority in ("low", "normal", "high"):
        raised = {"low": "normal", "normal": "high", "high": "urgent"}[priority]
        if step(at + _minutes(rng, 60)):
            ticket, _ = ticket.set_priority(at, raised, actor="supervisor")
            priority = raised
    if not step(calendar.add(at, _minutes(rng, _REPLY_MINUTES[priority]))):
        return ticket
    ticket, _ = ticket.comment(at, Role.AGENT, author=agent)
    if rng.random() < 0.3:  # waits on the requester
        ticket, _ = ticket.set_status(at, Status.PENDING, actor=agent)
        if not step(at + _minutes(rng, 600)):
            return ticket
        ticket, _ = ticket.comment(at, Role.REQUESTER, author=ticket.requester)
        ticket, _ = ticket.set_status(at, Status.OPEN, actor=agent)
        if not step(calendar.add(at, _minutes(rng, _REPLY_MINUTES[priority]))):
            return ticket
        ticket, _ = ticket.comment(at, Role.AGENT, author=agent)
    if not step(calendar.add(at, _minutes(rng, _SOLVE_MINUTES[priority]))):
        return ticket
    ticket, _ = ticket.set_status(at, Status.SOLVED, actor=agent)
    if rng.random() < 0.4 and step(at + _minutes(rng, 240)):  # answers the survey
        # Slower resolutions draw lower scores: a fast one is mostly 4-5, a slow one 1-4.
        fast = calendar.elapsed(ticket.created_at, at) < timedelta(minutes=_SOLVE_MINUTES[priority])
        weights = (2, 3, 10, 35, 50) if fast else (15, 20, 25, 25, 15)
        score = rng.choices((1, 2, 3, 4, 5), weights)[0]
        ticket = ticket.apply(SatisfactionRated(at=at, actor=ticket.requester, score=score))
    if rng.random() < 0.05 and step(at + _minutes(rng, 1440)):
        ticket, _ = ticket.comment(at, Role.REQUESTER, author=ticket.requester)
        if ticket.status is Status.SOLVED:
            ticket, _ = ticket.reopen(at, actor=ticket.requester)
        if not step(calendar.add(at, _minutes(rng, _SOLVE_MINUTES[priority] / 2))):
            return ticket
        ticket, _ = ticket.set_status(at, Status.SOLVED, actor=agent)
    if rng.random() < 0.7 and step(at + timedelta(days=3)):
        ticket, _ = ticket.set_status(at, Status.CLOSED, actor="system")
    return ticket


def simulate(*, seed: int = 1, weeks: int = 4) -> Desk:
    """A desk of ``weeks`` weeks from :data:`DEMO_START`, deterministic for a given ``seed``.

    Raises :class:`~csmcore.errors.ValidationError` for ``weeks`` outside 1..52.
    """
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= 52:
        raise ValidationError(f"weeks={weeks!r} is not accepted; expected an integer 1 to 52")
    rng = random.Random(seed)
    calendar = demo_calendar()
    start = DEMO_START
    end = start + timedelta(weeks=weeks)
    tickets = []
    for number, created in enumerate(sorted(_arrivals(rng, start, end)), start=1):
        channel = _pick(rng, _CHANNELS)
        ticket, _ = Ticket.create(
            at=created,
            ticket_id=f"DEMO-{number:05d}",
            created_by=Role.REQUESTER,
            channel=channel,
            priority=_pick(rng, _PRIORITIES),
            requester=f"customer-{rng.randrange(1, 400):03d}",
            subject=f"Request {number}",
        )
        tickets.append(_life(rng, ticket, calendar, end))
    utc_end = end.astimezone(ZoneInfo("UTC"))
    return Desk(tickets=tuple(tickets), calendar=calendar, start=start, end=utc_end)


# -- what the desk's jobs do with its history: escalations and service recovery ----------------


def demo_rules() -> tuple[EscalationRule, ...]:
    """The desk's escalation rules: warn the group at 75 % of the first-reply target, and tell
    the support manager (during business hours) when a resolution target is breached."""
    return (
        EscalationRule(
            name="first-reply-at-risk",
            condition=Always(),
            levels=[
                EscalationLevel(
                    trigger=PercentUsed(target="first_reply", percent=75),
                    actions=[
                        Notify(channel="email", recipient="$group", template="first-reply-at-risk")
                    ],
                )
            ],
        ),
        EscalationRule(
            name="resolution-breached",
            condition=Always(),
            levels=[
                EscalationLevel(
                    trigger=DueOffset.after("total_resolution"),
                    actions=[
                        Notify(
                            channel="email",
                            recipient="support-manager",
                            template="resolution-breached",
                            business_hours=True,
                        )
                    ],
                )
            ],
        ),
    )


def demo_recovery() -> RecoveryPolicy:
    """Service recovery: 100 points per breached target cycle (50 for a first reply), at most
    300 points per customer per calendar month in Berlin, expiring after a year."""
    return RecoveryPolicy(
        points=100,
        per_target={"first_reply": 50},
        cap=300,
        period="month",
        timezone=DEMO_ZONE,
        expiry=RollingExpiry(after=relativedelta(years=1)),
    )


@attrs.frozen(kw_only=True)
class DeskActivity:
    """What the desk's jobs did over the period: the escalation firings (in order) and the
    service-recovery grants written to the ledger."""

    firings: tuple[Firing, ...]
    grants: tuple[LedgerEntry, ...]


def run_jobs(desk: Desk, book: SlaBook, ledger: Ledger) -> DeskActivity:
    """Play the desk's jobs over its history: every escalation firing of :func:`demo_rules`
    (notifications only, so the histories are unchanged and the firings exact), and a nightly
    service-recovery run (:func:`~csmcore.services.compensate` at each local midnight and at the
    end) that grants points for the breaches of the day before."""
    rules = demo_rules()
    firings: list[Firing] = []
    for ticket in desk.tickets:
        firings.extend(due_firings(ticket, book, rules, desk.start, desk.end))
    firings.sort(key=lambda f: (f.at, f.ticket_id, f.rule, f.level))
    policy = demo_recovery()
    grants: list[LedgerEntry] = []
    zone = ZoneInfo(DEMO_ZONE)
    nights: list[datetime] = []
    day = desk.start.astimezone(zone).date() + timedelta(days=1)
    while (night := datetime.combine(day, datetime.min.time(), tzinfo=zone)) < desk.end:
        nights.append(night)
        day += timedelta(days=1)
    nights.append(desk.end)
    for night in nights:
        for ticket in desk.tickets:
            if ticket.created_at < night:
                results = book.evaluate(ticket, night)
                grants.extend(compensate(ledger, policy, ticket, results, night))
    return DeskActivity(firings=tuple(firings), grants=tuple(grants))
