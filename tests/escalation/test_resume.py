"""The planner's shortcuts against their plain definitions, over random timelines.

``run_ticket`` resumes one walk after each firing (undoing the visit of an instant when an
action appended events at it) instead of planning the whole history again; with ``plan=True``
it goes on to the next firing instead of walking the new ticket from its creation. These
properties compare it with the plain loop it replaces (``due_firings`` again after every
firing that changed the ticket, as the first release did) and with :func:`next_due`. The SLA
side: :class:`~csmcore.sla.TicketEvaluator` against :meth:`SlaBook.evaluate`, and
:meth:`SlaStatus.microseconds` against the status's fields.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import example, given
from hypothesis import strategies as st

from csmcore.conditions import Eq, Field
from csmcore.escalation import (
    AddNote,
    ConditionHeld,
    EscalationLevel,
    EscalationRule,
    FiringKey,
    PercentUsed,
    PlannedFiring,
    SetPriority,
    TicketRun,
    apply_firing,
    due_firings,
    next_due,
    run_ticket,
)
from csmcore.tickets import Ticket
from tests.escalation.support import US, M, at, new
from tests.escalation.test_properties import BOOK, RULES, START, TIMELINES, build

# Rules whose actions change what other rules read: a priority change re-selects targets,
# so firings move; a note at the firing instant is an event at the walk's instant.
FEEDBACK = [
    *RULES,
    EscalationRule(
        name="raise",
        condition=Eq("priority", "normal"),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=75),
                actions=[SetPriority(priority="urgent")],
            )
        ],
    ),
    EscalationRule(
        name="noted",
        condition=Field("sla.max_percent") > 90,
        levels=[
            EscalationLevel(
                trigger=ConditionHeld(duration=5 * M), actions=[AddNote(text="over 90 %")]
            )
        ],
    ),
]


def plain_run(ticket: Ticket, start: datetime, end: datetime) -> TicketRun:
    """The loop ``run_ticket`` replaces: plan the whole history again after each firing."""
    by_name = {r.name: r for r in FEEDBACK}
    done: set[FiringKey] = set()
    applied: list[PlannedFiring] = []
    pending = due_firings(ticket, BOOK, FEEDBACK, start, end)
    while pending:
        firing = pending.pop(0)
        ticket, planned = apply_firing(ticket, firing, by_name[firing.rule], BOOK)
        done.add(firing.key)
        applied.append(planned)
        if planned.events:
            pending = [
                f for f in due_firings(ticket, BOOK, FEEDBACK, start, end) if f.key not in done
            ]
    return TicketRun(ticket=ticket, firings=tuple(applied))


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ENDS = st.sampled_from([at(6, 9), at(6, 12), at(6, 17, 30), at(7, 10), at(9, 0)])


@given(TIMELINES, ENDS)
def test_run_ticket_equals_planning_again_after_each_firing(ticket: Ticket, end: datetime) -> None:
    fast = run_ticket(ticket, BOOK, FEEDBACK, START, end, plan=True)
    plain = plain_run(ticket, START, end)
    assert fast.firings == plain.firings
    assert fast.ticket == plain.ticket
    done = {p.firing.key for p in fast.firings}
    assert fast.next_due == next_due(fast.ticket, BOOK, FEEDBACK, START, fired=done)
    assert fast.next_due is None or fast.next_due > end


@given(TIMELINES, ENDS, st.sampled_from([at(6, 8), at(6, 11), at(7, 9)]))
def test_a_run_in_two_windows_equals_one_run(ticket: Ticket, end: datetime, cut: datetime) -> None:
    if cut >= end:
        return
    first = run_ticket(ticket, BOOK, FEEDBACK, START, cut)
    done = {p.firing.key for p in first.firings}
    second = run_ticket(first.ticket, BOOK, FEEDBACK, cut, end, fired=done)
    whole = run_ticket(ticket, BOOK, FEEDBACK, START, end)
    assert [p.firing for p in first.firings + second.firings] == [p.firing for p in whole.firings]


INSTANTS = st.lists(
    st.integers(-60, 3 * 24 * 60).map(lambda m: at(6, 8, 30) + timedelta(minutes=m, seconds=7)),
    min_size=1,
    max_size=12,
)


@given(TIMELINES, INSTANTS)
def test_evaluator_equals_evaluate_at_instants_in_any_order(
    ticket: Ticket, instants: list[datetime]
) -> None:
    judge = BOOK.evaluator(ticket)
    for when in instants:
        if when < ticket.created_at:
            continue
        assert judge.at(when) == BOOK.evaluate(ticket, when)


@given(TIMELINES, INSTANTS)
def test_microseconds_are_the_fields_in_microseconds(
    ticket: Ticket, instants: list[datetime]
) -> None:
    for when in instants:
        for status in BOOK.evaluate(ticket, when):
            m = status.microseconds()  # read before any field converts
            assert (m.elapsed * US, m.paused * US, m.within * US) == (
                status.elapsed,
                status.paused,
                status.within,
            )
            assert EPOCH + m.started * US == status.started_at
            assert EPOCH + m.due * US == status.due_at
            assert (None if m.breached is None else EPOCH + m.breached * US) == (status.breached_at)
            assert (None if m.stopped is None else EPOCH + m.stopped * US) == status.stopped_at
            assert status.microseconds() == m  # and after they converted


CUTS = st.lists(
    st.sampled_from([at(6, 9), at(6, 10, 30), at(6, 13), at(7, 9), at(7, 16)]),
    min_size=1,
    max_size=4,
).map(sorted)


def _known(ticket: Ticket, base: Ticket, low: datetime, high: datetime) -> Ticket:
    """``base`` (what the engine's runs made of the ticket) with the host's events of
    ``ticket`` in ``low < at <= high`` appended."""
    for event in ticket.events:
        if low < event.at <= high:
            base = base.apply(event)
    return base


@given(TIMELINES, CUTS)
# An agent reply at 10:31 arrives after the run at 10:30 walked on to 10:48 to find its next
# firing: the state is stale for it, and resuming from it would miss the reply's effects.
@example(build([(121, "agent")]), [at(6, 10, 30), at(6, 13)])
def test_resuming_from_the_last_run_equals_walking_from_the_creation(
    ticket: Ticket, cuts: list[datetime]
) -> None:
    # An engine running at each cut, the host's events arriving in between: resuming each
    # run from the state of the one before gives what walking from the creation gives.
    done: set[FiringKey] = set()
    state = None
    low = START
    current = ticket.as_of(ticket.created_at)
    for cut in cuts:
        if cut <= low:
            continue
        current = _known(ticket, current, max(low, ticket.created_at), cut)
        resumed = run_ticket(current, BOOK, FEEDBACK, low, cut, fired=done, plan=True, resume=state)
        walked = run_ticket(current, BOOK, FEEDBACK, low, cut, fired=done, plan=True)
        assert resumed.firings == walked.firings
        assert resumed.ticket == walked.ticket
        assert resumed.next_due == walked.next_due
        done |= {p.firing.key for p in resumed.firings}
        state = resumed.state
        current = resumed.ticket
        low = cut


def test_a_state_is_ignored_for_another_rule_set_or_a_rewritten_history() -> None:
    ticket = build([(20, "requester"), (30, "assign"), (200, "agent")])
    first = run_ticket(ticket.as_of(at(6, 9)), BOOK, FEEDBACK, START, at(6, 9), plan=True)
    assert first.state is not None
    # Another rule set: the state does not apply, the walk starts from the creation.
    other = run_ticket(ticket, BOOK, RULES, START, at(7, 9), resume=first.state)
    assert other.firings == run_ticket(ticket, BOOK, RULES, START, at(7, 9)).firings
    # A different ticket (not the same history): ignored too.
    stranger = build([(5, "agent")])
    alone = run_ticket(stranger, BOOK, FEEDBACK, START, at(7, 9), resume=first.state)
    assert alone.firings == run_ticket(stranger, BOOK, FEEDBACK, START, at(7, 9)).firings


def test_a_state_of_another_ticket_of_the_same_shape_is_ignored() -> None:
    # Same creation instant, one event each: only the ticket id tells them apart.
    urgent = new(at(6, 8, 30), priority="urgent", assignee="bob", ticket_id="X")
    normal = new(at(6, 8, 30), priority="normal", ticket_id="Y")
    first = run_ticket(urgent, BOOK, FEEDBACK, START, at(6, 9, 50))
    assert first.state is not None
    resumed = run_ticket(normal, BOOK, FEEDBACK, START, at(7, 12), resume=first.state)
    assert resumed.firings == run_ticket(normal, BOOK, FEEDBACK, START, at(7, 12)).firings
    assert any(p.firing.rule == "unassigned" for p in resumed.firings)


def test_a_state_of_a_window_that_started_later_is_ignored() -> None:
    # A run from an instant after the first firing passes over it without applying it; a run
    # from before must still apply it, whatever the state says.
    ticket = build([(20, "requester"), (30, "assign"), (200, "agent")])
    first = run_ticket(ticket, BOOK, FEEDBACK, START, at(6, 12)).firings[0].firing.at
    late = run_ticket(ticket, BOOK, FEEDBACK, first, first)
    assert late.firings == ()
    again = run_ticket(late.ticket, BOOK, FEEDBACK, START, at(6, 12), resume=late.state)
    assert again.firings == run_ticket(late.ticket, BOOK, FEEDBACK, START, at(6, 12)).firings
    assert again.firings[0].firing.at == first
