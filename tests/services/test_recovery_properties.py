"""Properties of service recovery on a real ledger: whatever breaches arrive and however
often compensation runs, each (ticket, target, cycle) is granted at most once, the cap per
period is never exceeded, and a second run at the same instant changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.loyalty import Period, RecoveryPolicy, period_bounds
from csmcore.services import Ledger, compensate
from csmcore.sla import SlaMetric, SlaState, SlaStatus
from csmcore.storage import open_store
from csmcore.tickets import Ticket
from tests.loyalty.program_support import utc

START = utc(2026, 1, 1)
TARGETS = {"first_reply": SlaMetric.FIRST_REPLY, "next_reply": SlaMetric.NEXT_REPLY}


def ticket(ticket_id: str) -> Ticket:
    created, _ = Ticket.create(
        at=START,
        ticket_id=ticket_id,
        created_by="requester",
        channel="email",
        priority="normal",
        requester="ann",
    )
    return created


def breach(target: str, cycle: int, when: datetime) -> SlaStatus:
    return SlaStatus(
        policy="std",
        policy_version=1,
        target=target,
        metric=TARGETS[target],
        cycle=cycle,
        state=SlaState.BREACHED,
        at=when,
        started_at=when - timedelta(hours=1),
        due_at=when,
        within=timedelta(hours=1),
        elapsed=timedelta(hours=1),
        paused=timedelta(0),
        breached_at=when,
    )


breaches = st.lists(
    st.tuples(
        st.sampled_from(["T-1", "T-2"]),
        st.sampled_from(sorted(TARGETS)),
        st.integers(1, 3),
        st.integers(0, 90 * 24),  # hours after START
    ),
    max_size=15,
)


@settings(max_examples=60, deadline=None)
@given(
    breaches,
    st.lists(st.integers(0, 100 * 24), min_size=1, max_size=6),
    st.integers(0, 400),
    st.sampled_from([None, 150, 400]),
)
def test_each_breach_is_granted_once_and_the_cap_holds(
    found: list[tuple[str, str, int, int]], runs: list[int], points: int, cap: int | None
) -> None:
    policy = RecoveryPolicy(points=points, cap=cap, period=Period.MONTH)
    ledger = Ledger(open_store("memory://"))
    tickets = {"T-1": ticket("T-1"), "T-2": ticket("T-2")}
    statuses = [
        (ticket_id, breach(target, cycle, START + timedelta(hours=hours)))
        for ticket_id, target, cycle, hours in found
    ]
    for hours in sorted(runs):
        now = START + timedelta(hours=hours)
        for ticket_id, each in tickets.items():
            results = [s for t, s in statuses if t == ticket_id]
            compensate(ledger, policy, each, results, now)
            assert compensate(ledger, policy, each, results, now) == []
    entries = ledger.entries("ann")
    keys = [e.key for e in entries]
    assert len(keys) == len(set(keys))
    assert all(e.points > 0 for e in entries)
    if cap is not None:
        per_month: dict[datetime, int] = {}
        for e in entries:
            month = period_bounds(e.at, Period.MONTH)[0]
            per_month[month] = per_month.get(month, 0) + e.points
        assert all(total <= cap for total in per_month.values())
    assert ledger.verify("ann").ok
