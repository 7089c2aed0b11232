"""Escalation engine processes for the crash and concurrency tests, and the scenario they run.

Kept apart from the test modules so that a spawned child imports csmcore only (no pytest):
the scenario (book, rules, tickets) is built here, the same in every process.
"""

from __future__ import annotations

import os
import signal
from datetime import datetime, timedelta, timezone
from typing import Any

from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Always, Eq
from csmcore.escalation import (
    AddNote,
    AddTags,
    ConditionHeld,
    EscalationLevel,
    EscalationRule,
    GrantPoints,
    Notify,
    PercentUsed,
    PlannedFiring,
    SetPriority,
)
from csmcore.loyalty import RecoveryPolicy
from csmcore.services import EscalationEngine
from csmcore.sla import SlaBook, SlaPolicy, SlaTarget
from csmcore.testing._workers import open_url
from csmcore.tickets import Channel, Priority, Role, Ticket

T0 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
"""When the scenario's first ticket is created (a Monday)."""

BOOK = SlaBook(
    calendar=BusinessCalendar.always(timezone="UTC"),
    policies=[
        SlaPolicy(
            name="std",
            position=1,
            default=True,
            targets=[SlaTarget(metric="first_reply", within=timedelta(hours=4))],
        )
    ],
)
"""First reply within four hours, around the clock."""

RECOVERY_POINTS = 100
"""What each ticket's requester is granted when its first reply breaches."""

RULES = (
    EscalationRule(
        name="first-reply",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=50),
                actions=[
                    Notify(channel="email", recipient="lead", template="half"),
                    AddTags(tags={"half"}),
                ],
            ),
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=100),
                actions=[
                    SetPriority(priority="urgent"),
                    Notify(channel="email", recipient="manager", template="breach"),
                    AddNote(text="Escalated to the manager"),
                    GrantPoints(policy=RecoveryPolicy(points=RECOVERY_POINTS)),
                ],
            ),
        ],
    ),
    EscalationRule(
        name="unassigned",
        condition=Eq("assignee", None),
        levels=[
            EscalationLevel(
                trigger=ConditionHeld(duration=timedelta(minutes=30)),
                actions=[Notify(channel="chat", recipient="dispatch", template="unassigned")],
            )
        ],
    ),
)
"""Three firings per ticket (30 minutes, 2 hours and 4 hours after creation), four
notifications (one a ``ticket_note``), three ticket events (tags, priority, note), and
:data:`RECOVERY_POINTS` loyalty points to the ticket's requester at the breach."""


def scenario_tickets(count: int) -> list[Ticket]:
    """``count`` tickets ``E-0000``..., created a minute apart from :data:`T0`."""
    out = []
    for n in range(count):
        ticket, _ = Ticket.create(
            at=T0 + timedelta(minutes=n),
            ticket_id=f"E-{n:04d}",
            created_by=Role.REQUESTER,
            channel=Channel.EMAIL,
            priority=Priority.NORMAL,
            requester=f"customer{n}@example.com",
        )
        out.append(ticket)
    return out


def engine_worker(
    url: str,
    now: datetime,
    start: Any = None,
    kill_after: int | None = None,
    batch_size: int = 5,
) -> list[str]:
    """Run one engine pass over the store at ``url`` at ``now`` (after waiting for ``start``,
    an event shared with sibling processes) and return the key texts of the firings it
    applied. With ``kill_after``, the process kills itself (SIGKILL) inside the unit of work
    right after applying its ``kill_after``-th firing, before the commit."""
    store = open_url(url)
    applied = 0

    def hook(planned: PlannedFiring) -> None:
        nonlocal applied
        applied += 1
        if kill_after is not None and applied >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    try:
        engine = EscalationEngine(store, BOOK, RULES, batch_size=batch_size, on_applied=hook)
        if start is not None:
            start.wait(timeout=60)
        run = engine.run(now)
        return [p.firing.key_text for p in run.firings]
    finally:
        store.close()
