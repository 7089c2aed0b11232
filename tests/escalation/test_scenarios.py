"""Timelines with their firings worked out by hand (calendar: Mon-Fri 09:00-17:00 UTC;
2025-01-06 is a Monday)."""

from __future__ import annotations

import pytest

from csmcore import BusinessCalendar
from csmcore.conditions import Eq, Field
from csmcore.errors import NotFound
from csmcore.escalation import (
    ConditionHeld,
    DueOffset,
    PercentUsed,
    due_firings,
    next_due,
    run_ticket,
)
from csmcore.sla import SlaBook, SlaPolicy, SlaTarget
from csmcore.tickets import Role, Status, Ticket
from tests.escalation.support import CAL, US, H, M, at, book, new, rule, shown

FIRST_REPLY_4H = SlaTarget(metric="first_reply", within=4 * H)


def test_servicenow_percentages_in_business_time() -> None:
    # Created Mon 15:00; 4 business hours: 2 h on Monday (to 17:00), then Tuesday from 09:00.
    ticket = new(at(6, 15))
    rules = rule(
        PercentUsed(target="first_reply", percent=50),
        PercentUsed(target="first_reply", percent=75),
        PercentUsed(target="first_reply", percent=100),
    )
    got = due_firings(ticket, book(FIRST_REPLY_4H), [rules], at(6, 0), at(10, 0))
    assert shown(got) == [
        (0, "first_reply", 1, at(6, 17)),  # 2 h used exactly at closing time
        (1, "first_reply", 1, at(7, 10)),
        (2, "first_reply", 1, at(7, 11)),  # 100 %: the due instant (still on time)
    ]
    assert next_due(ticket, book(FIRST_REPLY_4H), [rules], at(6, 17)) == at(7, 10)


def test_offsets_before_and_after_due() -> None:
    # Due Tue 11:00: the SLA reports breached_at = 11:00 and the cycle breached from one
    # microsecond later. Offsets after due count from breached_at; none fires before the
    # cycle is breached.
    ticket = new(at(6, 15))
    rules = rule(
        DueOffset.before("first_reply", 30 * M),
        DueOffset.after("first_reply"),
        DueOffset.after("first_reply", H, business_hours=True),
    )
    got = due_firings(ticket, book(FIRST_REPLY_4H), [rules], at(6, 0), at(10, 0))
    assert shown(got) == [
        (0, "first_reply", 1, at(7, 10, 30)),
        (1, "first_reply", 1, at(7, 11) + US),
        (2, "first_reply", 1, at(7, 12)),
    ]


def test_business_offsets_never_fire_at_night_or_on_weekends_zammad_4432() -> None:
    # Created Fri 14:00, first reply within 2 business hours: breached_at Fri 16:00.
    ticket = new(at(10, 14))
    target = SlaTarget(metric="first_reply", within=2 * H)
    rules = rule(
        DueOffset.after("first_reply", 2 * H, business_hours=True),
        DueOffset.after("first_reply", 3 * H),  # wall time: Friday evening
    )
    got = due_firings(ticket, book(target), [rules], at(10, 0), at(14, 0))
    assert shown(got) == [
        (1, "first_reply", 1, at(10, 19)),
        (0, "first_reply", 1, at(13, 10)),  # Monday 10:00, not Friday 18:00
    ]


def test_levels_on_different_clocks_fire_each_at_its_own_instant() -> None:
    # First reply within 2 business hours. Each pair of levels on one target below was
    # refused before (its numbers decrease), yet which level of a pair fires first depends on
    # the ticket, and each fires at its own instant.
    target = SlaTarget(metric="first_reply", within=2 * H)
    rules = rule(
        DueOffset.before("first_reply", 30 * M, business_hours=True),
        DueOffset.before("first_reply", H),
        DueOffset.after("first_reply", H),
        DueOffset.after("first_reply", 30 * M, business_hours=True),
        ConditionHeld(duration=3 * H),  # held from the creation (the rule matches always)
        ConditionHeld(duration=150 * M, business_hours=True),
    )
    # Created Tue 09:00: due and breached_at Tue 11:00; all within opening hours.
    tuesday = [
        (1, "first_reply", 1, at(7, 10)),  # 1 wall hour before 11:00
        (0, "first_reply", 1, at(7, 10, 30)),  # 30 business minutes before 11:00
        (3, "first_reply", 1, at(7, 11, 30)),  # 30 business minutes after the breach
        (5, None, 1, at(7, 11, 30)),  # 2.5 business hours from 09:00
        (2, "first_reply", 1, at(7, 12)),  # 1 wall hour after the breach
        (4, None, 1, at(7, 12)),  # 3 wall hours from 09:00
    ]
    early = new(at(7, 9))
    got = due_firings(early, book(target), [rules], at(7, 0), at(14, 0))
    assert shown(got) == tuesday
    # Created Fri 15:00: due and breached_at Fri 17:00 (the budget used up at closing time).
    friday = [
        (1, "first_reply", 1, at(10, 16)),
        (0, "first_reply", 1, at(10, 16, 30)),
        (2, "first_reply", 1, at(10, 18)),  # wall time runs on over the weekend
        (4, None, 1, at(10, 18)),
        (3, "first_reply", 1, at(13, 9, 30)),  # business time resumes on Monday
        (5, None, 1, at(13, 9, 30)),  # Fri 15:00-17:00, then Mon 09:00-09:30
    ]
    late = new(at(10, 15))
    got = due_firings(late, book(target), [rules], at(10, 0), at(14, 0))
    assert shown(got) == friday
    assert next_due(late, book(target), [rules], at(10, 18)) == at(13, 9, 30)
    # applied in the order of their instants, each at its own instant
    run = run_ticket(late, book(target), [rules], at(10, 0), at(14, 0))
    assert [(p.firing.level, p.at) for p in run.firings] == [(f[0], f[3]) for f in friday]
    assert run.ticket.tags == {f"level{i}" for i in range(6)}
    # run in two windows, the first ending between the wall and the business levels after
    # the breach: the second fires the rest
    first = run_ticket(late, book(target), [rules], at(10, 0), at(10, 18, 30), plan=True)
    assert [p.firing.level for p in first.firings] == [1, 0, 2, 4]
    assert first.next_due == at(13, 9, 30)
    second = run_ticket(first.ticket, book(target), [rules], at(10, 18, 30), at(14, 0))
    assert [(p.firing.level, p.at) for p in second.firings] == [
        (3, at(13, 9, 30)),
        (5, at(13, 9, 30)),
    ]


def test_a_trigger_counts_in_the_calendar_it_names_not_the_books_default() -> None:
    # The book's default calendar is 24/7; "office" is Mon-Fri 09:00-17:00 UTC. Created Fri
    # 14:00, first reply within 2 h (24/7): due and breached_at Fri 16:00.
    book_ = SlaBook(
        policies=[
            SlaPolicy(
                name="std",
                position=1,
                default=True,
                targets=[SlaTarget(metric="first_reply", within=2 * H)],
            )
        ],
        calendar=BusinessCalendar.always(timezone="UTC"),
        calendars={"office": CAL},
    )
    ticket = new(at(10, 14))
    rules = rule(
        # 1 office hour before the due time (Fri 15:00-16:00): Fri 15:00
        DueOffset.before("first_reply", H, business_hours=True, calendar="office"),
        # 2 business hours of the default (24/7) calendar after the breach: Fri 18:00
        DueOffset.after("first_reply", 2 * H, business_hours=True),
        # 3 office hours after the breach (Fri 16:00-17:00, Mon 09:00-11:00): Mon 11:00
        DueOffset.after("first_reply", 3 * H, business_hours=True, calendar="office"),
        # new (the rule's condition) for 4 office hours from Fri 14:00 (3 h on Friday,
        # Mon 09:00-10:00): Mon 10:00
        ConditionHeld(duration=4 * H, business_hours=True, calendar="office"),
        # new for 4 h of the default calendar: Fri 18:00
        ConditionHeld(duration=4 * H, condition=Eq("status", "new"), business_hours=True),
        condition=Eq("status", "new"),
    )
    got = due_firings(ticket, book_, [rules], at(10, 0), at(14, 0))
    assert shown(got) == [
        (0, "first_reply", 1, at(10, 15)),
        (1, "first_reply", 1, at(10, 18)),
        (4, None, 1, at(10, 18)),
        (3, None, 1, at(13, 10)),
        (2, "first_reply", 1, at(13, 11)),
    ]
    assert next_due(ticket, book_, [rules], at(10, 18)) == at(13, 10)
    # a calendar name the book does not know is refused, naming the known ones
    unknown = rule(DueOffset.after("first_reply", H, business_hours=True, calendar="moon"))
    with pytest.raises(NotFound, match=r"calendar 'moon' is not in this book; known: \['office'\]"):
        due_firings(ticket, book_, [unknown], at(10, 0), at(14, 0))


def test_each_target_plans_on_its_own_zammad_5177() -> None:
    # The first reply is met early; the resolution target still escalates.
    ticket = new(at(6, 9))
    ticket, _ = ticket.comment(at(6, 9, 20), Role.AGENT)
    targets = (
        SlaTarget(metric="first_reply", within=H),
        SlaTarget(metric="total_resolution", within=8 * H),
    )
    rules = rule(
        PercentUsed(target="first_reply", percent=50),
        PercentUsed(target="total_resolution", percent=50),
    )
    got = due_firings(ticket, book(*targets), [rules], at(6, 0), at(8, 0))
    assert shown(got) == [(1, "total_resolution", 1, at(6, 13))]


def test_a_pause_moves_the_firing() -> None:
    # Agent work (paused while pending), 4 business hours; 1 h, then pending 10:00-14:00.
    ticket = new(at(6, 9))
    ticket, _ = ticket.set_status(at(6, 10), Status.PENDING)
    ticket, _ = ticket.set_status(at(6, 14), Status.OPEN)
    target = SlaTarget(metric="agent_work", within=4 * H)
    rules = rule(PercentUsed(target="agent_work", percent=75))
    got = due_firings(ticket, book(target), [rules], at(6, 0), at(8, 0))
    assert shown(got) == [(0, "agent_work", 1, at(6, 16))]  # 1 h + 2 h after 14:00


def test_a_priority_change_that_passes_a_threshold_fires_at_the_change() -> None:
    targets = (
        SlaTarget(metric="total_resolution", within=8 * H, priority="normal"),
        SlaTarget(metric="total_resolution", within=2 * H, priority="urgent"),
    )
    ticket = new(at(6, 9))
    ticket, _ = ticket.set_priority(at(6, 10), "urgent")  # 1 h used of now 2 h: 50 % at once
    rules = rule(
        PercentUsed(target="total_resolution", percent=50),
        PercentUsed(target="total_resolution", percent=100),
    )
    got = due_firings(ticket, book(*targets), [rules], at(6, 0), at(8, 0))
    assert shown(got) == [
        (0, "total_resolution", 1, at(6, 10)),
        (1, "total_resolution", 1, at(6, 11)),
    ]


def test_held_for_restarts_when_the_condition_flips() -> None:
    # Urgent and unassigned for 30 minutes (wall time).
    urgent_unassigned = (Field("priority") == "urgent") & Eq("assignee", None)
    ticket = new(at(6, 9), priority="urgent")
    ticket, _ = ticket.assign(at(6, 9, 20), "bob")  # episode 1 ends after 20 min
    ticket, _ = ticket.assign(at(6, 9, 40), None)  # episode 2 begins
    ticket, _ = ticket.assign(at(6, 10, 30), "bob")  # after it fired at 10:10
    ticket, _ = ticket.assign(at(6, 11), None)  # episode 3
    rules = rule(ConditionHeld(duration=30 * M), condition=urgent_unassigned)
    got = due_firings(ticket, book(FIRST_REPLY_4H), [rules], at(6, 0), at(7, 0))
    assert shown(got) == [(0, None, 2, at(6, 10, 10)), (0, None, 3, at(6, 11, 30))]


def test_pending_for_five_business_days() -> None:
    # 5 business days of an 8-hour calendar: 40 business hours from Mon 12:00.
    ticket = new(at(6, 9))
    ticket, _ = ticket.set_status(at(6, 12), Status.PENDING)
    rules = rule(
        ConditionHeld(duration=40 * H, business_hours=True),
        condition=Field("status") == "pending",
    )
    got = due_firings(ticket, book(FIRST_REPLY_4H), [rules], at(6, 0), at(20, 0))
    assert shown(got) == [(0, None, 1, at(13, 12))]


def test_a_moving_sla_number_in_a_condition_is_met_at_the_exact_microsecond() -> None:
    target = SlaTarget(metric="first_reply", within=4 * H, business_hours=False)
    ticket = new(at(6, 9))
    rules = rule(ConditionHeld(duration=30 * M), condition=Field("sla.first_reply.percent") > 50)
    got = due_firings(ticket, book(target), [rules], at(6, 0), at(7, 0))
    assert shown(got) == [(0, None, 1, at(6, 11, 30) + US)]  # > 50 % from 11:00:00.000001


def test_any_breached_and_max_percent() -> None:
    targets = (
        SlaTarget(metric="first_reply", within=H, business_hours=False),
        SlaTarget(metric="total_resolution", within=10 * H, business_hours=False),
    )
    ticket = new(at(6, 9))
    breached = rule(ConditionHeld(duration=M), condition=Eq("sla.any_breached", True), name="b")
    busy = rule(ConditionHeld(duration=M), condition=Field("sla.max_percent") >= 80, name="m")
    got = due_firings(ticket, book(*targets), [breached, busy], at(6, 0), at(7, 0))
    assert [(f.rule, f.at) for f in got] == [
        ("m", at(6, 9, 49)),  # first reply 80 % used at 9:48
        ("b", at(6, 10, 1) + US),  # breached at 10:00:00.000001
    ]


def test_a_rule_condition_gates_levels_and_a_late_match_fires_then() -> None:
    ticket = new(at(6, 9))
    ticket, _ = ticket.tag(at(6, 12), add={"vip"})
    target = SlaTarget(metric="first_reply", within=4 * H)
    rules = rule(
        PercentUsed(target="first_reply", percent=50), condition=Field("tags").contains("vip")
    )
    got = due_firings(ticket, book(target), [rules], at(6, 0), at(7, 0))
    assert shown(got) == [(0, "first_reply", 1, at(6, 12))]


def test_a_stopped_cycle_does_not_fire_and_each_reply_cycle_fires_once() -> None:
    target = SlaTarget(metric="next_reply", within=H, business_hours=False)
    ticket = new(at(6, 9))
    ticket, _ = ticket.comment(at(6, 9, 10), Role.AGENT)
    ticket, _ = ticket.comment(at(6, 9, 30), Role.REQUESTER)  # cycle 1: 75 % at 10:15
    ticket, _ = ticket.comment(at(6, 10, 20), Role.AGENT)
    ticket, _ = ticket.comment(at(6, 11), Role.REQUESTER)  # cycle 2: answered at 11:30
    ticket, _ = ticket.comment(at(6, 11, 30), Role.AGENT)
    rules = rule(PercentUsed(target="next_reply", percent=75))
    got = due_firings(ticket, book(target), [rules], at(6, 0), at(7, 0))
    assert shown(got) == [(0, "next_reply", 1, at(6, 10, 15))]


def test_targets_of_one_key_told_apart_by_a_condition_count_in_their_own_clock() -> None:
    # Two first-reply targets of two hours: business time for chat tickets (listed first),
    # wall time for the others. An email ticket created Mon 16:30 is due at 18:30 by the wall
    # clock, so half its time is used at 17:30; a chat ticket created then at Tue 09:30.
    targets = (
        SlaTarget(metric="first_reply", within=2 * H, condition=Eq("channel", "chat")),
        SlaTarget(metric="first_reply", within=2 * H, business_hours=False),
    )
    rules = rule(PercentUsed(target="first_reply", percent=50))
    email = new(at(6, 16, 30))
    got = due_firings(email, book(*targets), [rules], at(6, 0), at(8, 0))
    assert shown(got) == [(0, "first_reply", 1, at(6, 17, 30))]
    chat, _ = Ticket.create(
        at=at(6, 16, 30),
        ticket_id="T-2",
        created_by=Role.REQUESTER,
        channel="chat",
        priority="normal",
        requester="ann@example.com",
    )
    got = due_firings(chat, book(*targets), [rules], at(6, 0), at(8, 0))
    assert shown(got) == [(0, "first_reply", 1, at(7, 9, 30))]
