"""Worked SLA scenarios: calendar, targets, an event timeline, expected due times and states.

The calendar in most scenarios is Monday-Friday 09:00-17:00 UTC; 2025-01-06 is a Monday.
Each scenario cites the documented behaviour of an established product it follows, or says it
is a decision of DESIGN.md ("Semantics decided for SLAs").
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from csmcore.sla import (
    OnChange,
    OnReopen,
    SlaBook,
    SlaMetric,
    SlaPolicy,
    SlaState,
    SlaTarget,
)
from csmcore.tickets import Priority, Role, Status
from tests.sla.support import CAL, H, at, book, new, one

US = timedelta(microseconds=1)

# -- first reply ------------------------------------------------------------------------------


def test_first_reply_counts_business_hours_and_ignores_notes_and_bots() -> None:
    # Zendesk, "Defining SLA policies": first reply time runs from creation to the first
    # public comment by an agent; internal notes do not fulfil it. Bot replies are not agent
    # replies (DESIGN.md).
    sla = book(SlaTarget(metric=SlaMetric.FIRST_REPLY, within=2 * H))
    ticket = new(at(6, 16))
    ticket, _ = ticket.comment(at(6, 16, 30), Role.AGENT, public=False)
    ticket, _ = ticket.comment(at(6, 16, 40), Role.BOT)
    status = one(sla.evaluate(ticket, at(7, 9, 15)), "first_reply")
    assert status.state is SlaState.ACTIVE
    assert status.due_at == at(7, 10)  # 1 h on Monday, 1 h on Tuesday
    assert status.elapsed == timedelta(minutes=75)
    assert status.remaining == timedelta(minutes=45)
    assert status.percent_used == pytest.approx(62.5)
    ticket, _ = ticket.comment(at(7, 9, 30), Role.AGENT)
    done = one(sla.evaluate(ticket, at(8, 12)), "first_reply")
    assert done.state is SlaState.ACHIEVED
    assert done.achieved_at == at(7, 9, 30)
    assert done.elapsed == timedelta(minutes=90)


def test_first_reply_breaches_at_due_time_and_a_late_reply_does_not_unbreach() -> None:
    sla = book(SlaTarget(metric=SlaMetric.FIRST_REPLY, within=2 * H))
    ticket = new(at(6, 10))
    assert one(sla.evaluate(ticket, at(6, 11, 59)), "first_reply").state is SlaState.ACTIVE
    # Issue 10: the due instant itself is on time; one microsecond later is late.
    assert one(sla.evaluate(ticket, at(6, 12)), "first_reply").state is SlaState.ACTIVE
    breached = one(sla.evaluate(ticket, at(6, 12) + US), "first_reply")
    assert breached.state is SlaState.BREACHED
    assert breached.breached_at == at(6, 12)
    ticket, _ = ticket.comment(at(6, 13), Role.AGENT)
    late = one(sla.evaluate(ticket, at(6, 14)), "first_reply")
    assert late.state is SlaState.BREACHED
    assert late.stopped_at == at(6, 13)
    assert late.remaining == -H


def test_agent_created_ticket_has_no_first_reply_target() -> None:
    # Zendesk: a ticket an agent creates with a public comment has already been answered by
    # an agent; first reply time does not apply. The requester's later comment starts a next
    # reply cycle instead.
    sla = book(
        SlaTarget(metric=SlaMetric.FIRST_REPLY, within=2 * H),
        SlaTarget(metric=SlaMetric.NEXT_REPLY, within=4 * H),
    )
    ticket = new(at(6, 10), created_by=Role.AGENT)
    assert sla.evaluate(ticket, at(6, 16)) == ()
    ticket, _ = ticket.comment(at(6, 11), Role.REQUESTER)
    statuses = sla.evaluate(ticket, at(6, 12))
    assert [s.target for s in statuses] == ["next_reply"]
    assert statuses[0].due_at == at(6, 15)


def test_requester_comment_logged_by_agent_counts_as_requester() -> None:
    # An agent logging the requester's phone call is not an agent reply (DESIGN.md).
    sla = book(
        SlaTarget(metric=SlaMetric.FIRST_REPLY, within=2 * H),
        SlaTarget(metric=SlaMetric.NEXT_REPLY, within=H),
    )
    ticket = new(at(6, 10))
    ticket, _ = ticket.comment(at(6, 10, 30), Role.AGENT, on_behalf_of_requester=True)
    assert one(sla.evaluate(ticket, at(6, 11)), "first_reply").state is SlaState.ACTIVE
    ticket, _ = ticket.comment(at(6, 11), Role.AGENT)
    ticket, _ = ticket.comment(at(6, 12), Role.AGENT, on_behalf_of_requester=True)
    cycle = one(sla.evaluate(ticket, at(6, 12, 30)), "next_reply")
    assert cycle.started_at == at(6, 12)
    assert cycle.due_at == at(6, 13)


# -- next reply, periodic and pausable update ---------------------------------------------------


def test_next_reply_has_a_cycle_per_unanswered_requester_comment() -> None:
    # Zendesk: next reply time runs from the oldest unanswered end-user comment to the next
    # public agent reply; each exchange is a new cycle.
    sla = book(SlaTarget(metric=SlaMetric.NEXT_REPLY, within=H, business_hours=False))
    ticket = new(at(6, 10))
    ticket, _ = ticket.comment(at(6, 10, 5), Role.AGENT)
    ticket, _ = ticket.comment(at(6, 11), Role.REQUESTER)
    ticket, _ = ticket.comment(at(6, 11, 10), Role.REQUESTER)  # same cycle: oldest counts
    ticket, _ = ticket.comment(at(6, 11, 30), Role.AGENT)
    ticket, _ = ticket.comment(at(6, 20), Role.REQUESTER)
    statuses = sla.evaluate(ticket, at(6, 22))
    first, second = one(statuses, "next_reply", 1), one(statuses, "next_reply", 2)
    assert (first.state, first.started_at, first.achieved_at) == (
        SlaState.ACHIEVED,
        at(6, 11),
        at(6, 11, 30),
    )
    assert (second.state, second.started_at, second.breached_at) == (
        SlaState.BREACHED,
        at(6, 20),
        at(6, 21),
    )


def test_periodic_update_runs_while_pending_but_pausable_update_pauses() -> None:
    # Zendesk: periodic update is the time between public agent comments; pausable update is
    # the same but does not count time in pending.
    sla = book(
        SlaTarget(metric=SlaMetric.PERIODIC_UPDATE, within=4 * H),
        SlaTarget(metric=SlaMetric.PAUSABLE_UPDATE, within=4 * H),
    )
    ticket = new(at(6, 9))
    ticket, _ = ticket.comment(at(6, 10), Role.AGENT)
    ticket, _ = ticket.set_status(at(6, 11), Status.PENDING)
    statuses = sla.evaluate(ticket, at(6, 13))
    periodic = one(statuses, "periodic_update")
    pausable = one(statuses, "pausable_update")
    assert (periodic.state, periodic.due_at) == (SlaState.ACTIVE, at(6, 14))
    assert pausable.state is SlaState.PAUSED
    assert pausable.elapsed == H
    assert pausable.paused == 2 * H
    assert pausable.due_at == at(6, 16)  # if it resumed now: 3 h left
    ticket, _ = ticket.set_status(at(6, 14), Status.OPEN)
    statuses = sla.evaluate(ticket, at(6, 15))
    assert one(statuses, "periodic_update").state is SlaState.BREACHED
    assert one(statuses, "pausable_update").due_at == at(6, 17)
    ticket, _ = ticket.comment(at(6, 16), Role.AGENT)  # ends cycle 1, starts cycle 2
    statuses = sla.evaluate(ticket, at(6, 16))
    assert one(statuses, "pausable_update", 1).state is SlaState.ACHIEVED
    assert one(statuses, "pausable_update", 2).due_at == at(7, 12)


# -- requester wait, agent work, total resolution ------------------------------------------------


def test_requester_wait_and_agent_work_pause_by_status() -> None:
    # Zendesk: requester wait time counts new, open and on-hold; agent work time counts new
    # and open; total resolution counts every unsolved status.
    sla = book(
        SlaTarget(metric=SlaMetric.REQUESTER_WAIT, within=8 * H),
        SlaTarget(metric=SlaMetric.AGENT_WORK, within=8 * H),
        SlaTarget(metric=SlaMetric.TOTAL_RESOLUTION, within=16 * H),
    )
    ticket = new(at(6, 9))
    ticket, _ = ticket.set_status(at(6, 10), Status.PENDING)
    ticket, _ = ticket.set_status(at(6, 12), Status.ON_HOLD)
    ticket, _ = ticket.set_status(at(6, 15), Status.OPEN)
    ticket, _ = ticket.set_status(at(6, 16), Status.SOLVED)
    statuses = sla.evaluate(ticket, at(7, 9))
    wait = one(statuses, "requester_wait")
    work = one(statuses, "agent_work")
    total = one(statuses, "total_resolution")
    assert (wait.elapsed, wait.paused) == (5 * H, 2 * H)
    assert (work.elapsed, work.paused) == (2 * H, 5 * H)
    assert (total.elapsed, total.paused) == (7 * H, timedelta(0))
    assert {s.state for s in statuses} == {SlaState.ACHIEVED}
    assert work.achieved_at == at(6, 16)


def test_ticket_created_paused_starts_with_zero_elapsed() -> None:
    # DESIGN.md: a ticket created already paused starts with zero elapsed.
    sla = book(SlaTarget(metric=SlaMetric.AGENT_WORK, within=2 * H))
    ticket = new(at(6, 9), status=Status.PENDING)
    status = one(sla.evaluate(ticket, at(6, 15)), "agent_work")
    assert (status.state, status.elapsed, status.paused) == (SlaState.PAUSED, timedelta(0), 6 * H)
    assert status.due_at == at(6, 17)
    assert sla.next_change(ticket, at(6, 15)) is None


def test_pause_outside_business_hours_adds_no_business_time() -> None:
    # DESIGN.md: pauses that fall outside business hours add no business time.
    sla = book(SlaTarget(metric=SlaMetric.AGENT_WORK, within=8 * H))
    ticket = new(at(10, 13))  # Friday
    ticket, _ = ticket.set_status(at(10, 18), Status.PENDING)
    ticket, _ = ticket.set_status(at(13, 8), Status.OPEN)  # Monday before opening
    status = one(sla.evaluate(ticket, at(13, 10)), "agent_work")
    assert status.paused == timedelta(0)
    assert status.elapsed == 5 * H
    assert status.due_at == at(13, 13)  # exactly as without the pause


def test_pause_after_breach_does_not_unbreach() -> None:
    # ServiceNow: a task SLA that has breached keeps "has breached" when later paused.
    sla = book(SlaTarget(metric=SlaMetric.AGENT_WORK, within=H))
    ticket = new(at(6, 9))
    ticket, _ = ticket.set_status(at(6, 11), Status.PENDING)
    status = one(sla.evaluate(ticket, at(6, 12)), "agent_work")
    assert (status.state, status.breached_at, status.elapsed) == (
        SlaState.BREACHED,
        at(6, 10),
        2 * H,
    )


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (OnReopen.PAUSE, [(SlaState.ACTIVE, 3 * H, 16 * H)]),
        (
            OnReopen.NEW_CYCLE,
            [(SlaState.ACHIEVED, 2 * H, timedelta(0)), (SlaState.ACTIVE, H, 0 * H)],
        ),
    ],
)
def test_reopen_pauses_or_starts_a_new_cycle(
    rule: OnReopen, expected: list[tuple[SlaState, timedelta, timedelta]]
) -> None:
    # Zendesk total resolution time spans reopens (the solved time is not counted); the other
    # choice starts a new resolution cycle at the reopen, as ServiceNow does for a new SLA.
    sla = book(
        SlaTarget(
            metric=SlaMetric.TOTAL_RESOLUTION, within=8 * H, business_hours=False, on_reopen=rule
        )
    )
    ticket = new(at(6, 9))
    ticket, _ = ticket.set_status(at(6, 11), Status.SOLVED)
    ticket, _ = ticket.reopen(at(7, 3))
    statuses = sla.evaluate(ticket, at(7, 4))
    assert [(s.state, s.elapsed, s.paused) for s in statuses] == expected


# -- priority and policy changes ------------------------------------------------------------------


def per_priority(metric: SlaMetric, **hours: float) -> list[SlaTarget]:
    return [
        SlaTarget(metric=metric, within=timedelta(hours=h), priority=p) for p, h in hours.items()
    ]


def test_priority_change_reapplies_targets_from_the_original_start() -> None:
    # Zendesk: when priority changes, the SLA target for the new priority applies, measured
    # from the original start (time already elapsed is kept).
    sla = book(*per_priority(SlaMetric.AGENT_WORK, normal=8, high=4, urgent=1))
    ticket = new(at(6, 9))
    ticket, _ = ticket.set_priority(at(6, 11), Priority.HIGH)
    high = one(sla.evaluate(ticket, at(6, 11)), "agent_work")
    assert (high.due_at, high.elapsed, high.within) == (at(6, 13), 2 * H, 4 * H)
    ticket, _ = ticket.set_priority(at(6, 12), Priority.URGENT)
    urgent = one(sla.evaluate(ticket, at(6, 12)), "agent_work")
    # Already 3 h used of a 1 h target: breached at the change, never before it.
    assert (urgent.state, urgent.breached_at) == (SlaState.BREACHED, at(6, 12))
    assert one(sla.evaluate(ticket, at(6, 11, 59)), "agent_work").state is SlaState.ACTIVE
    ticket, _ = ticket.set_priority(at(6, 13), Priority.NORMAL)
    assert one(sla.evaluate(ticket, at(6, 14)), "agent_work").state is SlaState.BREACHED


def test_priority_change_can_restart_the_clock() -> None:
    targets = [
        SlaTarget(
            metric=SlaMetric.AGENT_WORK,
            within=timedelta(hours=h),
            priority=p,
            on_change=OnChange.RESTART,
        )
        for p, h in (("normal", 8), ("high", 4))
    ]
    sla = book(*targets)
    ticket = new(at(6, 9))
    ticket, _ = ticket.set_priority(at(6, 11), Priority.HIGH)
    status = one(sla.evaluate(ticket, at(6, 12)), "agent_work")
    assert (status.started_at, status.elapsed, status.due_at) == (at(6, 11), H, at(6, 15))


def test_policies_are_tried_by_position_and_the_default_is_the_fallback() -> None:
    from csmcore.conditions import Eq

    vip = SlaPolicy(
        name="vip",
        position=2,
        condition=Eq("priority", "urgent"),
        targets=[SlaTarget(metric=SlaMetric.FIRST_REPLY, within=H)],
    )
    fallback = SlaPolicy(
        name="std",
        position=1,
        default=True,
        targets=[SlaTarget(metric=SlaMetric.FIRST_REPLY, within=4 * H)],
    )
    sla = SlaBook(policies=[fallback, vip], calendar=CAL)
    urgent = one(sla.evaluate(new(at(6, 9), priority=Priority.URGENT), at(6, 9)), "first_reply")
    normal = one(sla.evaluate(new(at(6, 9)), at(6, 9)), "first_reply")
    assert (urgent.policy, urgent.due_at) == ("vip", at(6, 10))
    assert (normal.policy, normal.due_at) == ("std", at(6, 13))


def test_new_policy_version_applies_at_the_next_event_and_is_recorded() -> None:
    # Zendesk versioning: an edited policy applies to a ticket when the ticket is next updated.
    v1 = SlaPolicy(
        name="std",
        position=1,
        default=True,
        targets=[SlaTarget(metric=SlaMetric.AGENT_WORK, within=8 * H)],
    )
    v2 = SlaPolicy(
        name="std",
        position=1,
        default=True,
        version=2,
        effective_from=at(6, 12),
        targets=[SlaTarget(metric=SlaMetric.AGENT_WORK, within=4 * H)],
    )
    sla = SlaBook(policies=[v1, v2], calendar=CAL)
    ticket = new(at(6, 9))
    before = one(sla.evaluate(ticket, at(6, 14)), "agent_work")
    assert (before.policy_version, before.due_at) == (1, at(6, 17))
    ticket, _ = ticket.tag(at(6, 14), add=["x"])
    after = one(sla.evaluate(ticket, at(6, 14)), "agent_work")
    assert (after.policy_version, after.state) == (2, SlaState.BREACHED)


# -- next_change ----------------------------------------------------------------------------


def test_next_change_finds_warning_then_breach_across_a_weekend() -> None:
    sla = book(SlaTarget(metric=SlaMetric.AGENT_WORK, within=4 * H, warn_at=[0.5]))
    ticket = new(at(10, 15))  # Friday 15:00: 2 h today, 2 h on Monday
    assert sla.next_change(ticket, at(10, 15)) == at(10, 17)
    assert one(sla.evaluate(ticket, at(10, 17)), "agent_work").warning == 0.5
    assert one(sla.evaluate(ticket, at(10, 16, 59)), "agent_work").warning is None
    assert sla.next_change(ticket, at(10, 17)) == at(13, 11) + US  # late after due_at
    assert sla.next_change(ticket, at(13, 11) + US) is None


def test_next_change_sees_later_events_that_change_state() -> None:
    sla = book(SlaTarget(metric=SlaMetric.AGENT_WORK, within=4 * H))
    ticket = new(at(6, 9))
    ticket, _ = ticket.tag(at(6, 10), add=["noise"])  # changes nothing
    ticket, _ = ticket.set_status(at(6, 11), Status.PENDING)  # pauses
    assert sla.next_change(ticket, at(6, 9)) == at(6, 11)
