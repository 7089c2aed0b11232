"""Properties of planning over random timelines: each (level, target cycle) fires at most
once; asking every step of the way (knowing only the events so far) gives the same firings
as asking once at the end; no firing is due before its instant."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from csmcore.conditions import Eq, Field
from csmcore.escalation import (
    ConditionHeld,
    DueOffset,
    EscalationRule,
    Firing,
    PercentUsed,
    due_firings,
    next_due,
)
from csmcore.sla import SlaTarget
from csmcore.tickets import Role, Status, Ticket
from tests.escalation.support import US, H, M, at, book, new, rule

BOOK = book(
    SlaTarget(metric="first_reply", within=2 * H),
    SlaTarget(metric="next_reply", within=H, business_hours=False),
    SlaTarget(metric="agent_work", within=6 * H, priority="normal"),
    SlaTarget(metric="agent_work", within=2 * H, priority="urgent"),
)
RULES = [
    rule(
        PercentUsed(target="first_reply", percent=50),
        PercentUsed(target="first_reply", percent=100),
        DueOffset.before("agent_work", 30 * M, business_hours=True),
        DueOffset.after("agent_work", H),
        PercentUsed(target="next_reply", percent=75),
        PercentUsed(target="agent_work", percent=150),
        name="targets",
    ),
    rule(
        ConditionHeld(duration=20 * M),
        ConditionHeld(duration=2 * H, business_hours=True),
        condition=Eq("assignee", None),
        name="unassigned",
    ),
    rule(
        ConditionHeld(duration=10 * M, condition=Field("sla.next_reply.remaining_minutes") < 15),
        condition=Field("sla.max_percent") > 60,
        name="moving",
    ),
]
START = at(6, 8)

STEPS = st.sampled_from(
    ["agent", "requester", "note", "pending", "open", "urgent", "normal", "assign", "unassign"]
)


def build(steps: list[tuple[int, str]]) -> Ticket:
    ticket = new(at(6, 8, 30))
    when = ticket.created_at
    for minutes, kind in steps:
        when = when + timedelta(minutes=minutes)
        if kind == "agent":
            ticket, _ = ticket.comment(when, Role.AGENT)
        elif kind == "requester":
            ticket, _ = ticket.comment(when, Role.REQUESTER)
        elif kind == "note":
            ticket, _ = ticket.comment(when, Role.AGENT, public=False)
        elif kind in ("pending", "open"):
            ticket, _ = ticket.set_status(when, Status(kind))
        elif kind in ("urgent", "normal"):
            ticket, _ = ticket.set_priority(when, kind)
        elif kind == "assign":
            ticket, _ = ticket.assign(when, "bob")
        else:
            ticket, _ = ticket.assign(when, None)
    return ticket


TIMELINES = st.lists(st.tuples(st.integers(0, 240), STEPS), max_size=8).map(build)


def everything(ticket: Ticket, end: datetime) -> list[Firing]:
    return due_firings(ticket, BOOK, RULES, START, end)


@given(TIMELINES)
def test_a_level_never_fires_twice_for_a_cycle(ticket: Ticket) -> None:
    keys = [f.key for f in everything(ticket, at(9, 0))]
    assert len(keys) == len(set(keys))


@given(TIMELINES, st.integers(20, 180))
def test_stepwise_catch_up_equals_one_late_run(ticket: Ticket, step: int) -> None:
    # Each step knows only the events up to its end, as an engine running then would.
    end = at(8, 0)
    once = everything(ticket, end)
    stepwise: list[Firing] = []
    low = START
    while low < end:
        high = min(low + timedelta(minutes=step), end)
        known = ticket.as_of(high) if high >= ticket.created_at else ticket
        if high >= ticket.created_at:
            stepwise += due_firings(known, BOOK, RULES, low, high)
        low = high
    assert stepwise == once
    assert [f.at for f in once] == sorted(f.at for f in once)


@given(TIMELINES)
def test_no_firing_is_due_before_its_instant(ticket: Ticket) -> None:
    for firing in everything(ticket, at(8, 0)):
        before = due_firings(ticket, BOOK, RULES, START, firing.at - US)
        assert firing.key not in {f.key for f in before}
        assert firing.key in {f.key for f in due_firings(ticket, BOOK, RULES, START, firing.at)}


@given(TIMELINES)
def test_next_due_is_the_first_firing_after_an_instant(ticket: Ticket) -> None:
    firings = everything(ticket, at(20, 0))
    for after in (START, at(6, 10), at(6, 16, 59), at(7, 9)):
        later = [f.at for f in firings if f.at > after]
        assert next_due(ticket, BOOK, RULES, after) == (later[0] if later else None)


def test_stepwise_every_minute_of_a_busy_morning() -> None:
    ticket = build(
        [
            (10, "requester"),
            (5, "pending"),
            (30, "open"),
            (20, "urgent"),
            (15, "agent"),
            (10, "assign"),
            (5, "requester"),
            (40, "unassign"),
        ]
    )
    end = at(6, 14)
    stepwise: list[Firing] = []
    low = START
    while low < end:
        high = low + M
        if high >= ticket.created_at:
            stepwise += due_firings(ticket.as_of(high), BOOK, RULES, low, high)
        low = high
    once = everything(ticket, end)
    assert stepwise == once
    assert len(once) >= 3


_ = EscalationRule


def _percent_reached(ticket: Ticket, when: datetime, target: str, cycle: int, percent: int) -> bool:
    status = BOOK.evaluate(ticket, when).get(target, cycle)
    return (
        status is not None
        and status.stopped_at is None
        and status.elapsed * 100 >= status.within * percent
    )


@given(TIMELINES)
def test_percent_levels_fire_exactly_when_the_sla_says_the_share_is_used(ticket: Ticket) -> None:
    # An oracle independent of the planner: SlaBook.evaluate at the firing instant and one
    # microsecond before it (the "targets" rule matches every ticket).
    percents = {0: 50, 1: 100, 4: 75, 5: 150}
    for firing in everything(ticket, at(9, 0)):
        if firing.rule != "targets" or firing.level not in percents:
            continue
        assert firing.target is not None
        share = percents[firing.level]
        assert _percent_reached(ticket, firing.at, firing.target, firing.cycle, share)
        assert not _percent_reached(ticket, firing.at - US, firing.target, firing.cycle, share)


@given(TIMELINES)
def test_after_due_levels_fire_an_hour_after_the_breach(ticket: Ticket) -> None:
    for firing in everything(ticket, at(9, 0)):
        if (firing.rule, firing.level) != ("targets", 3):
            continue
        status = BOOK.evaluate(ticket, firing.at).get("agent_work", firing.cycle)
        assert status is not None
        assert status.breached_at is not None
        assert firing.at == max(status.breached_at + H, status.breached_at + US)
