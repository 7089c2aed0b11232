"""Applying firings (pure): ticket events with the rule as actor, notification requests,
re-planning after a change, the dry run."""

from __future__ import annotations

import pytest

from csmcore import BusinessCalendar
from csmcore.conditions import Always, Eq, Field
from csmcore.errors import InvalidTransition, ValidationError
from csmcore.escalation import (
    NOTE_CHANNEL,
    AddNote,
    AddTags,
    Assign,
    ConditionHeld,
    EscalationLevel,
    EscalationLoop,
    EscalationRule,
    NotificationRequest,
    Notify,
    PercentUsed,
    RemoveTags,
    SetPriority,
    SetStatus,
    apply_firing,
    dry_run,
    due_firings,
    run_ticket,
)
from csmcore.sla import SlaBook, SlaPolicy, SlaTarget
from csmcore.tickets import (
    Assigned,
    Commented,
    PriorityChanged,
    Role,
    Status,
    StatusChanged,
    TagsChanged,
)
from tests.escalation.support import CAL, H, M, at, new

BERLIN = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="Europe/Berlin")
TARGETS = (
    SlaTarget(metric="total_resolution", within=8 * H, priority="normal"),
    SlaTarget(metric="total_resolution", within=2 * H, priority="urgent"),
)
BOOK = SlaBook(
    policies=[SlaPolicy(name="std", position=1, default=True, targets=TARGETS)],
    calendar=CAL,
    calendars={"berlin": BERLIN},
)


def one_level(*actions: object, percent: int = 50, name: str = "r") -> EscalationRule:
    return EscalationRule(
        name=name,
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="total_resolution", percent=percent), actions=actions
            )
        ],
    )


def test_actions_append_ordinary_events_with_the_rule_as_actor() -> None:
    rule = one_level(
        SetPriority(priority="high"),
        Assign(agent="bob", group="L2"),
        AddTags(tags={"late"}),
        SetStatus(status="open"),
        AddNote(text="Escalated: half the resolution time is gone"),
    )
    ticket = new(at(6, 9))
    [firing] = due_firings(ticket, BOOK, [rule], at(6, 0), at(7, 0))
    assert firing.at == at(6, 13)
    changed, done = apply_firing(ticket, firing, rule, BOOK)
    kinds = [type(e) for e in done.events]
    assert kinds == [PriorityChanged, Assigned, TagsChanged, StatusChanged, Commented]
    assert all(e.actor == "escalation:r" and e.at == at(6, 13) for e in done.events)
    assert changed.events[-len(done.events) :] == done.events
    assert (changed.priority.value, changed.assignee, changed.group) == ("high", "bob", "L2")
    assert "late" in changed.tags
    assert changed.status is Status.OPEN
    note = done.events[-1]
    assert isinstance(note, Commented)
    assert not note.public
    assert note.author_role is Role.SYSTEM
    [request] = done.requests
    assert request.channel == NOTE_CHANNEL
    assert request.data["text"].startswith("Escalated")


def test_actions_that_change_nothing_make_no_event() -> None:
    rule = one_level(
        SetPriority(priority="normal"), RemoveTags(tags="absent"), SetStatus(status="new")
    )
    ticket = new(at(6, 9))
    [firing] = due_firings(ticket, BOOK, [rule], at(6, 0), at(7, 0))
    changed, done = apply_firing(ticket, firing, rule, BOOK)
    assert done.events == ()
    assert changed is ticket


def test_notify_resolves_the_recipient_and_holds_to_business_hours() -> None:
    rule = one_level(
        Notify(channel="email", recipient="$assignee", template="warn", data={"n": 1}),
        Notify(channel="email", recipient="$requester", template="warn"),
        Notify(
            channel="sms", recipient="+49", template="page", business_hours=True, calendar="berlin"
        ),
        percent=100,
    )
    ticket = new(at(6, 9))  # due Mon 17:00 UTC = 18:00 Berlin: Berlin is closed
    [firing] = due_firings(ticket, BOOK, [rule], at(6, 0), at(7, 0))
    _, done = apply_firing(ticket, firing, rule, BOOK)
    # No assignee: that notification is skipped.
    assert [r.recipient for r in done.requests] == ["ann@example.com", "+49"]
    requester, page = done.requests
    assert isinstance(page, NotificationRequest)
    assert requester.not_before == at(6, 17)
    assert page.not_before == at(7, 8)  # Tue 09:00 Berlin
    # The request says it asked for business hours, and of which calendar: a dispatcher
    # holds its retries to that calendar too.
    assert (page.business_hours, page.calendar) == (True, "berlin")
    assert (requester.business_hours, requester.calendar) == (False, None)
    assert requester.data["rule"] == "r"
    assert requester.data["cycle"] == 1
    keys = {r.idempotency_key for r in done.requests}
    assert len(keys) == 2
    _, again = apply_firing(ticket, firing, rule, BOOK)
    assert {r.idempotency_key for r in again.requests} == keys  # stable across runs


def test_notify_a_late_run_reaches_the_requester_at_the_firing_instant() -> None:
    # ann asked at 09:00; the level fires at 17:00 (100 %); bob became the requester on
    # Tuesday. A run made only after that notifies ann, as a run on time did (the points
    # GrantPoints gives go to her too), while "$group" reads the group the level's own Assign
    # just set, although its event is stamped at Tuesday's change (the history went on).
    rule = one_level(
        Assign(group="tier2"),
        Notify(channel="email", recipient="$requester", template="sorry"),
        Notify(channel="email", recipient="$group", template="escalated"),
        percent=100,
    )
    ticket = new(at(6, 9))
    on_time = run_ticket(ticket, BOOK, [rule], at(6, 0), at(6, 18))
    moved, _ = ticket.change_requester(at(7, 10), "bob")
    late = run_ticket(moved, BOOK, [rule], at(6, 0), at(7, 12))
    for run in (on_time, late):
        (done,) = run.firings
        assert done.firing.at == at(6, 17)
        assert [r.recipient for r in done.requests] == ["ann@example.com", "tier2"]


def test_run_ticket_plans_again_after_a_change() -> None:
    # Level 0 makes the ticket urgent at 13:00; resolution is then 2 h, already 4 h used:
    # level 1 (100 %) fires at once, at 13:00, instead of at 17:00.
    rule = EscalationRule(
        name="r",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="total_resolution", percent=50),
                actions=[SetPriority(priority="urgent")],
            ),
            EscalationLevel(
                trigger=PercentUsed(target="total_resolution", percent=100),
                actions=[AddTags(tags="breached")],
            ),
        ],
    )
    ticket = new(at(6, 9))
    planned = due_firings(ticket, BOOK, [rule], at(6, 0), at(7, 0))
    assert [f.at for f in planned] == [at(6, 13), at(6, 17)]
    run = run_ticket(ticket, BOOK, [rule], at(6, 0), at(7, 0))
    assert [(p.firing.level, p.at) for p in run.firings] == [(0, at(6, 13)), (1, at(6, 13))]
    assert "breached" in run.ticket.tags
    assert run.ticket.priority.value == "urgent"
    # Already recorded firings are skipped:
    again = run_ticket(
        run.ticket, BOOK, [rule], at(6, 0), at(7, 0), fired={p.firing.key for p in run.firings}
    )
    assert again.firings == ()
    assert again.ticket is run.ticket


def test_late_events_are_stamped_after_the_last_one() -> None:
    rule = one_level(AddTags(tags="late"))
    ticket = new(at(6, 9))
    ticket, _ = ticket.comment(at(6, 15), Role.REQUESTER)  # after the 13:00 firing
    [firing] = due_firings(ticket, BOOK, [rule], at(6, 0), at(7, 0))
    _, done = apply_firing(ticket, firing, rule, BOOK)
    assert done.at == at(6, 15)
    assert done.events[0].at == at(6, 15)


def test_a_forbidden_change_raises() -> None:
    rule = one_level(SetStatus(status="new"), percent=10)
    ticket = new(at(6, 9))
    ticket, _ = ticket.set_status(at(6, 9, 30), Status.OPEN)
    [firing] = due_firings(ticket, BOOK, [rule], at(6, 0), at(7, 0))
    with pytest.raises(InvalidTransition):
        apply_firing(ticket, firing, rule, BOOK)


def test_a_merged_ticket_takes_no_event_from_an_action() -> None:
    # A merged ticket takes no further event: a held level on it (an unassigned ticket merged
    # away stays unassigned) fires, and its actions change nothing instead of raising, which
    # would stop every run of an engine at this ticket.
    rule = EscalationRule(
        name="unassigned",
        condition=Eq("assignee", None),
        levels=[
            EscalationLevel(
                trigger=ConditionHeld(duration=H),
                actions=[
                    SetPriority(priority="urgent"),
                    Assign(agent="bob"),
                    AddTags(tags={"stale"}),
                    RemoveTags(tags={"vip"}),
                    AddNote(text="nobody took it"),
                    Notify(channel="email", recipient="lead", template="stale"),
                ],
            )
        ],
    )
    ticket = new(at(6, 9))
    ticket, _ = ticket.tag(at(6, 9, 5), add={"vip"})
    ticket, _ = ticket.merge_into(at(6, 9, 30), "T-2")
    run = run_ticket(ticket, BOOK, [rule], at(6, 0), at(7, 0))
    [done] = run.firings
    assert done.firing.at == at(6, 10)
    assert done.events == ()
    assert run.ticket is ticket
    assert [r.template for r in done.requests] == ["stale"]


def test_a_firing_of_another_rule_is_refused() -> None:
    rule = one_level(AddTags(tags="x"))
    ticket = new(at(6, 9))
    [firing] = due_firings(ticket, BOOK, [rule], at(6, 0), at(7, 0))
    with pytest.raises(ValidationError, match="is not of rule"):
        apply_firing(ticket, firing, one_level(AddTags(tags="x"), name="other"), BOOK)


def test_rules_that_feed_each_other_stop_at_the_bound() -> None:
    flip = EscalationRule(
        name="flip",
        condition=Field("tags").contains("a"),
        levels=[EscalationLevel(trigger=ConditionHeld(duration=M), actions=[RemoveTags(tags="a")])],
    )
    flop = EscalationRule(
        name="flop",
        condition=~Field("tags").contains("a"),
        levels=[EscalationLevel(trigger=ConditionHeld(duration=M), actions=[AddTags(tags="a")])],
    )
    with pytest.raises(EscalationLoop, match="max_firings=20"):
        run_ticket(new(at(6, 9)), BOOK, [flip, flop], at(6, 0), at(7, 0), max_firings=20)


def test_dry_run_lists_in_order_and_changes_nothing() -> None:
    rule = one_level(AddTags(tags="late"))
    first = new(at(6, 11), ticket_id="T-2")
    second = new(at(6, 9), ticket_id="T-1")
    third = new(at(6, 9), ticket_id="T-3", priority="urgent")
    listed = dry_run([first, second, third], BOOK, [rule], at(6, 0), at(7, 0))
    assert [(p.firing.ticket_id, p.firing.at) for p in listed] == [
        ("T-3", at(6, 10)),
        ("T-1", at(6, 13)),
        ("T-2", at(6, 15)),
    ]
    assert all(p.events and p.events[0].actor == "escalation:r" for p in listed)
    assert second.tags == frozenset()
    assert len(second.events) == 1


def test_duplicate_rule_names_are_refused() -> None:
    rule = one_level(AddTags(tags="x"))
    with pytest.raises(ValidationError, match="given twice"):
        due_firings(new(at(6, 9)), BOOK, [rule, rule], at(6, 0), at(7, 0))
