"""Per-ticket metrics derived from a ticket's history (:class:`TicketMetrics`).

Each convention follows Zendesk's native duration metrics ("About native Support time duration
metrics", support.zendesk.com/hc/en-us/articles/4408834848154) unless
``docs/kpi-reference.md`` says otherwise. A metric whose events have not happened is None,
never zero.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

import attrs

from csmcore._time import require_aware
from csmcore.calendars import BusinessCalendar
from csmcore.errors import InvalidType, ValidationError
from csmcore.kpi._satisfaction import SatisfactionRated, SurveyKind
from csmcore.sla import SlaBook, SlaState
from csmcore.tickets import (
    Assigned,
    Channel,
    Commented,
    FieldValue,
    FrozenMap,
    Merged,
    Priority,
    Reopened,
    Role,
    Status,
    StatusChanged,
    Ticket,
    TicketCreated,
)

__all__ = ["DURATION_METRICS", "TicketMetrics", "sla_outcome", "ticket_metrics"]

DURATION_METRICS: Final = (
    "first_reply",
    "first_resolution",
    "full_resolution",
    "requester_wait",
    "agent_wait",
    "on_hold",
)
"""The duration metrics of a :class:`TicketMetrics`; each has a ``<name>_business`` twin."""

_SOLVED: Final = frozenset({Status.SOLVED, Status.CLOSED})
_ZERO: Final = timedelta()
_DURATION_FIELDS: Final = (*DURATION_METRICS, *(f"{m}_business" for m in DURATION_METRICS))
_KINDS: Final = (
    ("channel", Channel),
    ("priority", Priority),
    ("status", Status),
    ("created_by", Role),
    ("tags", frozenset),
    ("sla", tuple),
)
_REQUESTER_WAITS: Final = frozenset({Status.NEW, Status.OPEN, Status.ON_HOLD})


@attrs.frozen(kw_only=True)
class TicketMetrics:
    """What one ticket's history says at instant :attr:`at` (built by :func:`ticket_metrics`;
    building one by hand, e.g. from another tool's export, checks the dimension types, aware
    instants, durations (None or >= 0) and counts (>= 0): ValidationError or InvalidType).

    Dimensions (for grouping): ``ticket_id``, ``created_at``, ``created_by``, ``channel``,
    ``priority``, ``group``, ``assignee``, ``tags``, ``fields`` and ``status`` as they stood at
    ``at``.

    Durations (``timedelta``, calendar time; each ``*_business`` twin counts only the open time
    of the calendar given, and is None without one): ``first_reply``, ``first_resolution``,
    ``full_resolution`` (to the latest resolution), ``requester_wait`` (new, open, on-hold),
    ``agent_wait`` (pending), ``on_hold``. The three status totals are None until the ticket is
    solved or closed (they are totals over the ticket's unresolved life).

    Counts: ``replies`` (public agent comments, the description of an agent-created ticket not
    included), ``reopens``, ``agent_stations`` and ``group_stations`` (how many assignees and
    groups the ticket passed through), ``reassignments`` (``agent_stations - 1``, at least 0).
    ``one_touch`` / ``two_touch``: solved with exactly one / two replies (None while unsolved).

    Satisfaction: the latest CSAT rating ``csat_score`` on ``1..csat_scale`` and the latest CES
    answer ``ces_score`` on ``1..ces_scale`` (None when not rated). ``sla``: each SLA target's
    outcome as ``(target, state)`` pairs (:func:`sla_outcome`), empty without a book.
    """

    # Fields most KPIs read come first: they share the first cache lines of the object.
    priority: Priority
    channel: Channel
    status: Status
    first_reply: timedelta | None = None
    full_resolution: timedelta | None = None
    csat_score: int | None = None
    csat_scale: int | None = None
    sla: tuple[tuple[str, SlaState], ...] = ()
    first_resolution: timedelta | None = None
    one_touch: bool | None = None
    two_touch: bool | None = None
    reopens: int = 0
    ces_score: int | None = None
    ces_scale: int | None = None
    requester_wait: timedelta | None = None
    agent_wait: timedelta | None = None
    on_hold: timedelta | None = None
    group: str | None
    assignee: str | None
    created_by: Role
    tags: frozenset[str]
    fields: FrozenMap[str, FieldValue]
    created_at: datetime
    at: datetime
    solved_at: datetime | None = None
    ticket_id: str
    first_reply_business: timedelta | None = None
    first_resolution_business: timedelta | None = None
    full_resolution_business: timedelta | None = None
    requester_wait_business: timedelta | None = None
    agent_wait_business: timedelta | None = None
    on_hold_business: timedelta | None = None
    first_reply_at: datetime | None = None
    first_resolved_at: datetime | None = None
    replies: int = 0
    agent_stations: int = 0
    group_stations: int = 0

    def __attrs_post_init__(self) -> None:
        for name, cls in _KINDS:
            value = getattr(self, name)
            if not isinstance(value, cls):
                raise InvalidType(
                    f"{name}={value!r} ({type(value).__name__}) is not a {cls.__name__}",
                    field=name,
                    value=value,
                )
        for name in ("at", "created_at"):
            require_aware(getattr(self, name), name)
        for name in _DURATION_FIELDS:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, timedelta) or value < _ZERO):
                raise ValidationError(
                    f"{name}={value!r} is not a timedelta >= 0 or None", field=name, value=value
                )
        for name in ("replies", "reopens", "agent_stations", "group_stations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValidationError(
                    f"{name}={value!r} is not a whole number >= 0", field=name, value=value
                )

    @property
    def reassignments(self) -> int:
        """How many times the ticket moved to another agent after its first one."""
        return max(self.agent_stations - 1, 0)

    @property
    def solved(self) -> bool:
        """True when the ticket was solved or closed at :attr:`at`."""
        return self.status in _SOLVED

    @property
    def age(self) -> timedelta:
        """Time from creation to :attr:`at`."""
        return self.at - self.created_at


def sla_outcome(states: list[SlaState]) -> SlaState:
    """One target's outcome over its cycles: BREACHED if any cycle breached, else the state of
    a cycle still running (ACTIVE before PAUSED), else ACHIEVED."""
    if SlaState.BREACHED in states:
        return SlaState.BREACHED
    if SlaState.ACTIVE in states:
        return SlaState.ACTIVE
    if SlaState.PAUSED in states:
        return SlaState.PAUSED
    return SlaState.ACHIEVED


def _status_of(event: Any) -> Status | None:
    if isinstance(event, StatusChanged | Reopened):
        return event.status
    if isinstance(event, Merged):
        return Status.CLOSED
    return None


def ticket_metrics(
    ticket: Ticket,
    at: datetime | None = None,
    *,
    calendar: BusinessCalendar | None = None,
    book: SlaBook | None = None,
) -> TicketMetrics:
    """The :class:`TicketMetrics` of ``ticket`` at instant ``at`` (default: its last event),
    reading only the events at or before ``at``.

    ``calendar`` gives the business-time twins (None: they are None); ``book`` gives the SLA
    outcome per target (:meth:`SlaBook.evaluate` at ``at``). Raises NaiveDatetimeError for a
    naive ``at``, ValidationError for one before the ticket was created, InvalidType for a
    ticket, calendar or book of the wrong type.

    >>> from datetime import datetime, timedelta, timezone
    >>> from csmcore.testing.builders import make_ticket
    >>> t0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
    >>> t, _ = make_ticket("T-1", at=t0).comment(t0 + timedelta(minutes=30), "agent")
    >>> m = ticket_metrics(t)
    >>> m.first_reply, m.first_resolution, m.replies
    (datetime.timedelta(seconds=1800), None, 1)
    """
    if not isinstance(ticket, Ticket):
        raise InvalidType(f"ticket={ticket!r} is not a Ticket", field="ticket", value=ticket)
    if calendar is not None and not isinstance(calendar, BusinessCalendar):
        raise InvalidType(
            f"calendar={calendar!r} is not a BusinessCalendar", field="calendar", value=calendar
        )
    if book is not None and not isinstance(book, SlaBook):
        raise InvalidType(f"book={book!r} is not an SlaBook", field="book", value=book)
    if at is None:
        at = ticket.updated_at
    else:
        require_aware(at, "at")
        ticket = ticket.as_of(at)
    events = ticket.events
    created = events[0]
    assert isinstance(created, TicketCreated)
    t0 = created.at
    elapsed: Callable[[datetime, datetime], timedelta] | None = (
        None if calendar is None else calendar.elapsed
    )

    status = created.status
    since = t0
    spans: dict[Status, list[tuple[datetime, datetime]]] = {
        s: [] for s in (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD)
    }
    first_resolved: datetime | None = t0 if status in _SOLVED else None
    # the latest move into solved or closed, a merge included (it closes): ticket.solved_at
    # for the built-in events, found here in the same walk that finds first_resolved
    latest: datetime | None = first_resolved
    # An agent-created ticket's first comment is its description. Zendesk shifts first reply to
    # the second public agent comment only "if the ticket is created by an agent and the first
    # comment is public" (support.zendesk.com/hc/en-us/articles/4408834848154): a description
    # that is an internal note, or the requester's words logged on their behalf, is no reply
    # anyway, and the next public agent comment is the first reply.
    description_pending = created.created_by is Role.AGENT
    first_reply_at: datetime | None = None
    replies = 0
    agent = created.assignee
    group = created.group
    agent_stations = 1 if agent is not None else 0
    group_stations = 1 if group is not None else 0
    csat: SatisfactionRated | None = None
    ces: SatisfactionRated | None = None

    for event in events[1:]:
        new_status = _status_of(event)
        if new_status is not None and new_status is not status:
            if status in spans and event.at > since:
                spans[status].append((since, event.at))
            if new_status in _SOLVED and status not in _SOLVED:
                latest = event.at
                if first_resolved is None:
                    first_resolved = event.at
            status, since = new_status, event.at
        elif isinstance(event, Commented):
            if event.is_agent_reply:
                if description_pending:
                    description_pending = False  # the agent's public description: no reply
                else:
                    replies += 1
                    if first_reply_at is None:
                        first_reply_at = event.at
            else:
                description_pending = False
        elif isinstance(event, Assigned):
            if event.assignee is not None and event.assignee != agent:
                agent_stations += 1
            if event.group is not None and event.group != group:
                group_stations += 1
            agent, group = event.assignee, event.group
        elif isinstance(event, SatisfactionRated):
            if event.kind is SurveyKind.CSAT:
                csat = event
            else:
                ces = event
    if status in spans and at > since:
        spans[status].append((since, at))

    solved = ticket.status in _SOLVED

    def both(end: datetime | None) -> tuple[timedelta | None, timedelta | None]:
        if end is None:
            return None, None
        return end - t0, None if elapsed is None else elapsed(t0, end)

    def total(statuses: frozenset[Status]) -> tuple[timedelta | None, timedelta | None]:
        if not solved:
            return None, None
        chosen = [span for s in statuses for span in spans[s]]
        wall = sum((b - a for a, b in chosen), timedelta())
        if elapsed is None:
            return wall, None
        return wall, sum((elapsed(a, b) for a, b in chosen), timedelta())

    fr, fr_b = both(first_reply_at)
    fres, fres_b = both(first_resolved)
    full, full_b = both(latest)
    rw, rw_b = total(_REQUESTER_WAITS)
    aw, aw_b = total(frozenset({Status.PENDING}))
    oh, oh_b = total(frozenset({Status.ON_HOLD}))

    outcome: tuple[tuple[str, SlaState], ...] = ()
    if book is not None:
        by_target: dict[str, list[SlaState]] = {}
        for st in book.evaluate(ticket, at):
            by_target.setdefault(st.target, []).append(st.state)
        outcome = tuple((name, sla_outcome(states)) for name, states in by_target.items())

    return TicketMetrics(
        ticket_id=ticket.id,
        at=at,
        created_at=t0,
        created_by=created.created_by,
        channel=created.channel,
        priority=ticket.priority,
        group=ticket.group,
        assignee=ticket.assignee,
        tags=ticket.tags,
        fields=ticket.fields,
        status=ticket.status,
        first_reply_at=first_reply_at,
        first_resolved_at=first_resolved,
        solved_at=latest,
        first_reply=fr,
        first_resolution=fres,
        full_resolution=full,
        requester_wait=rw,
        agent_wait=aw,
        on_hold=oh,
        first_reply_business=fr_b,
        first_resolution_business=fres_b,
        full_resolution_business=full_b,
        requester_wait_business=rw_b,
        agent_wait_business=aw_b,
        on_hold_business=oh_b,
        replies=replies,
        reopens=ticket.reopens,
        agent_stations=agent_stations,
        group_stations=group_stations,
        one_touch=(replies == 1) if solved else None,
        two_touch=(replies == 2) if solved else None,
        csat_score=None if csat is None else csat.score,
        csat_scale=None if csat is None else csat.scale,
        ces_score=None if ces is None else ces.score,
        ces_scale=None if ces is None else ces.scale,
        sla=outcome,
    )
