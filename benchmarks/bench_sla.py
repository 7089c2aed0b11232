"""SLA evaluation throughput: every target of many realistic tickets on a business calendar.

Builds N tickets (default 100,000) of about six events each (creation, agent reply, pending,
requester comment, agent reply, solve; some priority changes and internal notes), a book of
two policies (a conditional one for chat, a default one) with three targets each (first reply
per priority, next reply, agent work) on a Monday-Friday 09:00-17:00 Europe/Berlin calendar,
then times ``SlaBook.evaluate`` over all of them and prints tickets/s (best of 3), by wall
clock and by this process's CPU time (the latter is steadier on a busy machine). Statuses
convert their datetimes and timedeltas on first access, so it also times evaluation plus
reading ``state`` and ``due_at``, and plus reading every field.

    python benchmarks/bench_sla.py [N]
"""

from __future__ import annotations

import random
import sys
import time
from datetime import datetime, timedelta, timezone

import attrs

from csmcore import BusinessCalendar
from csmcore.conditions import Eq
from csmcore.sla import Metric, SlaBook, SlaPolicy, SlaStatus, SlaTarget
from csmcore.tickets import Priority, Role, Status, Ticket

H = timedelta(hours=1)
FIELDS = tuple(field.name for field in attrs.fields(SlaStatus))


def targets(scale: float) -> list[SlaTarget]:
    out = [
        SlaTarget(metric=Metric.FIRST_REPLY, within=timedelta(hours=h * scale), priority=p)
        for p, h in (("urgent", 1), ("high", 2), ("normal", 4), ("low", 8))
    ]
    out.append(SlaTarget(metric=Metric.NEXT_REPLY, within=8 * H * scale, warn_at=[0.75]))
    out.append(SlaTarget(metric=Metric.AGENT_WORK, within=16 * H * scale))
    return out


def make_book() -> SlaBook:
    cal = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="Europe/Berlin")
    return SlaBook(
        policies=[
            SlaPolicy(
                name="chat", position=1, condition=Eq("channel", "chat"), targets=targets(0.5)
            ),
            SlaPolicy(name="std", position=2, default=True, targets=targets(1.0)),
        ],
        calendar=cal,
    )


def make_tickets(n: int, seed: int = 7) -> list[Ticket]:
    rng = random.Random(seed)
    base = datetime(2025, 1, 6, tzinfo=timezone.utc)
    out = []
    for i in range(n):
        when = base + timedelta(minutes=rng.randrange(0, 60 * 24 * 300))
        ticket, _ = Ticket.create(
            at=when,
            ticket_id=f"T{i}",
            created_by=Role.REQUESTER,
            channel=rng.choice(["email", "web", "chat"]),
            priority=rng.choice(list(Priority)),
            requester="r",
        )

        def step(minutes: int) -> datetime:
            nonlocal when
            when += timedelta(minutes=rng.randrange(1, minutes))
            return when

        ticket, _ = ticket.comment(step(600), Role.AGENT)
        if rng.random() < 0.3:
            ticket, _ = ticket.comment(step(60), Role.AGENT, public=False)
        ticket, _ = ticket.set_status(step(60), Status.PENDING)
        ticket, _ = ticket.comment(step(2000), Role.REQUESTER)
        if rng.random() < 0.2:
            ticket, _ = ticket.set_priority(step(60), rng.choice(list(Priority)))
        ticket, _ = ticket.comment(step(900), Role.AGENT)
        ticket, _ = ticket.set_status(step(3000), Status.SOLVED)
        out.append(ticket)
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    book = make_book()
    tickets = make_tickets(n)
    events = sum(len(t.events) for t in tickets)
    instant = datetime(2026, 1, 1, tzinfo=timezone.utc)
    book.evaluate(tickets[0], instant)  # warm the calendar timeline
    best = cpu = float("inf")
    statuses = 0
    for _ in range(3):
        start, start_cpu = time.perf_counter(), time.process_time()
        statuses = sum(len(book.evaluate(t, instant)) for t in tickets)
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    print(f"tickets: {n:,}  events/ticket: {events / n:.1f}  statuses: {statuses:,}")
    print(f"SlaBook.evaluate: {n / best:,.0f} tickets/s ({best * 1e6 / n:.1f} us/ticket)")
    # CPU time of this process: less sensitive than wall time to other work on the machine.
    print(f"  by CPU time:    {n / cpu:,.0f} tickets/s ({cpu * 1e6 / n:.1f} us/ticket)")
    # Statuses convert their instants and durations on first access; reading them costs extra.
    for label, names in (("state + due_at", ("state", "due_at")), ("every field", FIELDS)):
        cpu = float("inf")
        for _ in range(3):
            start_cpu = time.process_time()
            for t in tickets:
                for status in book.evaluate(t, instant):
                    for name in names:
                        getattr(status, name)
            cpu = min(cpu, time.process_time() - start_cpu)
        print(f"  reading {label + ':':16}{n / cpu:,.0f} tickets/s by CPU time")


if __name__ == "__main__":
    main()
