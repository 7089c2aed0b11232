"""Builders and strategies shared by the KPI tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from csmcore.kpi import TicketMetrics
from csmcore.sla import SlaState
from csmcore.tickets import Channel, FrozenMap, Priority, Role, Status

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)  # a Monday
H = timedelta(hours=1)
M = timedelta(minutes=1)


def metrics(ticket_id: str = "T-1", **changes: Any) -> TicketMetrics:
    """A TicketMetrics record with plain defaults (an open email ticket created at T0)."""
    values: dict[str, Any] = {
        "ticket_id": ticket_id,
        "at": T0 + timedelta(days=2),
        "created_at": T0,
        "created_by": Role.REQUESTER,
        "channel": Channel.EMAIL,
        "priority": Priority.NORMAL,
        "group": None,
        "assignee": None,
        "tags": frozenset(),
        "fields": FrozenMap(),
        "status": Status.OPEN,
    }
    values.update(changes)
    return TicketMetrics(**values)


_durations = st.none() | st.integers(0, 10**6).map(lambda s: timedelta(seconds=s))


@st.composite
def metric_records(draw: st.DrawFn) -> TicketMetrics:
    """Random metric records: few distinct dimension values, so groups have several members."""
    solved = draw(st.booleans())
    replies = draw(st.integers(0, 3))
    rated = draw(st.booleans())
    effort = draw(st.booleans())
    return metrics(
        draw(st.text("abc", min_size=1, max_size=3)),
        created_at=T0 + timedelta(hours=draw(st.integers(0, 24 * 60))),
        channel=draw(st.sampled_from([Channel.EMAIL, Channel.CHAT, Channel.WEB])),
        priority=draw(st.sampled_from([Priority.LOW, Priority.HIGH])),
        group=draw(st.sampled_from([None, "tier1", "tier2"])),
        tags=draw(st.frozensets(st.sampled_from(["vip", "bug"]))),
        status=Status.SOLVED if solved else draw(st.sampled_from([Status.OPEN, Status.PENDING])),
        first_reply=draw(_durations),
        full_resolution=draw(_durations) if solved else None,
        requester_wait=draw(_durations) if solved else None,
        replies=replies,
        reopens=draw(st.integers(0, 2)),
        one_touch=(replies == 1) if solved else None,
        two_touch=(replies == 2) if solved else None,
        csat_score=draw(st.integers(1, 5)) if rated else None,
        csat_scale=5 if rated else None,
        ces_score=draw(st.integers(1, 7)) if effort else None,
        ces_scale=7 if effort else None,
        sla=tuple(
            (name, draw(st.sampled_from(list(SlaState))))
            for name in draw(st.sets(st.sampled_from(["first reply", "resolution"])))
        ),
        at=T0 + timedelta(days=61),
    )
