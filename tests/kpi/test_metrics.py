"""TicketMetrics from hand-worked histories (expected numbers worked out in the comments)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from csmcore.calendars import BusinessCalendar
from csmcore.errors import InvalidType, NaiveDatetimeError, ValidationError
from csmcore.kpi import SatisfactionRated, SurveyKind, ticket_metrics
from csmcore.sla import SlaState
from csmcore.testing.builders import make_book, make_policy, make_ticket
from csmcore.tickets import (
    Assigned,
    Commented,
    Merged,
    Reopened,
    Role,
    Status,
    StatusChanged,
    Ticket,
)
from tests.kpi.support import T0, H, M, metrics

# Monday to Friday, 09:00-17:00 UTC; T0 is Monday 2025-03-03 09:00 UTC.
CAL = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC")
TUE = T0 + timedelta(days=1)


def timeline_a() -> Ticket:
    """A requester's email ticket, solved, reopened, reassigned, solved again, then rated."""
    ticket = make_ticket("A", at=T0)  # Mon 09:00 NEW
    for event in [
        Assigned(at=T0 + 30 * M, assignee="grace", group="tier1"),  # station 1 / 1
        Commented(at=T0 + H, author_role=Role.AGENT, author="grace"),  # first reply, 1h
        StatusChanged(at=T0 + H, status=Status.PENDING),  # NEW 09:00-10:00
        Commented(at=T0 + 7 * H, author_role=Role.REQUESTER),
        StatusChanged(at=T0 + 7 * H, status=Status.OPEN),  # PENDING 10:00-16:00
        StatusChanged(at=T0 + 7 * H + 30 * M, status=Status.ON_HOLD),  # OPEN 16:00-16:30
        StatusChanged(at=TUE + H, status=Status.SOLVED),  # ON_HOLD Mon 16:30 - Tue 10:00
        Reopened(at=TUE + 2 * H, status=Status.OPEN),  # SOLVED Tue 10:00-11:00 (no wait)
        Assigned(at=TUE + 2 * H, assignee="alan", group="tier2"),  # station 2 / 2
        Commented(at=TUE + 3 * H, author_role=Role.AGENT, author="alan"),  # second reply
        StatusChanged(at=TUE + 4 * H, status=Status.SOLVED),  # OPEN Tue 11:00-13:00
        SatisfactionRated(at=TUE + 5 * H, score=4, comment="quick"),
        SatisfactionRated(at=TUE + 5 * H, score=6, scale=7, kind=SurveyKind.CES),
    ]:
        ticket = ticket.apply(event)
    return ticket


def test_timeline_a_in_calendar_and_business_time() -> None:
    m = ticket_metrics(timeline_a(), TUE + 6 * H, calendar=CAL)
    # first reply: Mon 09:00 -> Mon 10:00 = 1h, all of it open business time
    assert (m.first_reply, m.first_reply_business) == (H, H)
    # first resolution: Mon 09:00 -> Tue 10:00 = 25h; business: Mon 8h + Tue 1h = 9h
    assert (m.first_resolution, m.first_resolution_business) == (25 * H, 9 * H)
    # full resolution (latest solve): Mon 09:00 -> Tue 13:00 = 28h; business 8h + 4h = 12h
    assert (m.full_resolution, m.full_resolution_business) == (28 * H, 12 * H)
    # requester wait = new 1h + open 30m + on-hold 17h30m + open 2h = 21h;
    # business: 1h + 30m + (Mon 16:30-17:00 30m + Tue 09:00-10:00 1h) + 2h = 5h
    assert (m.requester_wait, m.requester_wait_business) == (21 * H, 5 * H)
    # agent wait = pending Mon 10:00-16:00 = 6h, all business time
    assert (m.agent_wait, m.agent_wait_business) == (6 * H, 6 * H)
    # on hold = Mon 16:30 -> Tue 10:00 = 17h30m; business 1h30m
    assert (m.on_hold, m.on_hold_business) == (17 * H + 30 * M, H + 30 * M)
    assert (m.replies, m.reopens, m.agent_stations, m.group_stations) == (2, 1, 2, 2)
    assert m.reassignments == 1
    assert (m.one_touch, m.two_touch) == (False, True)
    assert (m.csat_score, m.csat_scale, m.ces_score, m.ces_scale) == (4, 5, 6, 7)
    assert m.first_reply_at == T0 + H
    assert m.first_resolved_at == TUE + H
    assert m.solved_at == TUE + 4 * H
    assert m.solved
    assert (m.assignee, m.group, m.status) == ("alan", "tier2", Status.SOLVED)


def test_as_of_an_earlier_instant_only_earlier_events_count() -> None:
    # Monday 18:00: replied once, on hold since 16:30, never solved
    m = ticket_metrics(timeline_a(), T0 + 9 * H, calendar=CAL)
    assert m.first_reply == H
    assert m.first_resolution is None
    assert m.first_resolution_business is None
    assert m.full_resolution is None
    # the status totals are defined once the ticket is solved: None, never a partial zero
    assert m.requester_wait is None
    assert m.agent_wait is None
    assert m.on_hold is None
    assert m.one_touch is None
    assert m.two_touch is None
    assert m.csat_score is None
    assert m.ces_score is None
    assert (m.replies, m.agent_stations, m.status) == (1, 1, Status.ON_HOLD)
    assert m.age == 9 * H


def test_without_a_calendar_the_business_twins_are_none() -> None:
    m = ticket_metrics(timeline_a())
    assert m.first_reply == H
    assert m.first_reply_business is None
    assert m.at == timeline_a().updated_at


def test_an_agent_created_ticket_counts_the_second_public_agent_comment() -> None:
    # Zendesk: for a ticket created by an agent the first public agent comment is the
    # description; first reply ends at the next one (here 40 minutes after creation).
    ticket = make_ticket("B", at=T0, created_by=Role.AGENT)
    ticket = ticket.apply(Commented(at=T0, author_role=Role.AGENT))  # the description
    ticket = ticket.apply(Commented(at=T0 + 10 * M, author_role=Role.REQUESTER))
    ticket = ticket.apply(Commented(at=T0 + 40 * M, author_role=Role.AGENT))
    m = ticket_metrics(ticket)
    assert m.first_reply == 40 * M
    assert m.replies == 1


def test_notes_bots_and_comments_for_the_requester_are_no_reply() -> None:
    ticket = make_ticket("C", at=T0)
    ticket = ticket.apply(Commented(at=T0 + 5 * M, author_role=Role.AGENT, public=False))
    ticket = ticket.apply(Commented(at=T0 + 6 * M, author_role=Role.BOT))
    ticket = ticket.apply(
        Commented(at=T0 + 7 * M, author_role=Role.AGENT, on_behalf_of_requester=True)
    )
    m = ticket_metrics(ticket)
    assert m.first_reply is None
    assert m.replies == 0


def test_solved_with_one_reply_is_one_touch_and_with_none_is_neither() -> None:
    one = make_ticket("D", at=T0).apply(Commented(at=T0 + M, author_role=Role.AGENT))
    one = one.apply(StatusChanged(at=T0 + 2 * M, status=Status.SOLVED))
    m = ticket_metrics(one)
    assert (m.one_touch, m.two_touch, m.first_resolution) == (True, False, 2 * M)
    none = make_ticket("E", at=T0).apply(StatusChanged(at=T0 + M, status=Status.SOLVED))
    m = ticket_metrics(none)
    assert (m.one_touch, m.two_touch, m.first_reply) == (False, False, None)
    # solved at once, never waited: the totals are real zeros, not None
    assert m.agent_wait == timedelta()
    assert m.on_hold == timedelta()
    assert m.requester_wait == M


def test_a_ticket_created_solved_is_resolved_at_creation() -> None:
    m = ticket_metrics(make_ticket("F", at=T0, status=Status.SOLVED))
    assert m.first_resolution == timedelta()
    assert m.full_resolution == timedelta()


def test_sla_outcome_per_target_from_the_book() -> None:
    book = make_book(make_policy(within=2 * H))
    answered = ticket_metrics(timeline_a(), TUE + 6 * H, book=book)
    assert answered.sla == (("first reply", SlaState.ACHIEVED),)
    silent = ticket_metrics(make_ticket("G", at=T0), T0 + 3 * H, book=book)
    assert silent.sla == (("first reply", SlaState.BREACHED),)
    waiting = ticket_metrics(make_ticket("H", at=T0), T0 + H, book=book)
    assert waiting.sla == (("first reply", SlaState.ACTIVE),)
    assert ticket_metrics(make_ticket("I", at=T0)).sla == ()


def test_later_rating_replaces_the_earlier_one() -> None:
    ticket = make_ticket("J", at=T0, status=Status.SOLVED)
    ticket = ticket.apply(SatisfactionRated(at=T0 + H, score=1))
    ticket = ticket.apply(SatisfactionRated(at=T0 + 2 * H, score=5))
    assert ticket_metrics(ticket).csat_score == 5
    assert ticket_metrics(ticket, T0 + H).csat_score == 1


def test_bad_inputs() -> None:
    ticket = make_ticket("K", at=T0)
    with pytest.raises(NaiveDatetimeError):
        ticket_metrics(ticket, T0.replace(tzinfo=None))
    with pytest.raises(ValidationError, match="before ticket 'K' was created"):
        ticket_metrics(ticket, T0 - H)
    with pytest.raises(InvalidType, match="is not a Ticket"):
        ticket_metrics("K")  # type: ignore[arg-type]
    with pytest.raises(InvalidType, match="is not a BusinessCalendar"):
        ticket_metrics(ticket, calendar="UTC")  # type: ignore[arg-type]
    with pytest.raises(InvalidType, match="is not an SlaBook"):
        ticket_metrics(ticket, book=object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"channel": "email"}, InvalidType, "channel='email'"),
        ({"at": T0.replace(tzinfo=None)}, NaiveDatetimeError, "at"),
        ({"first_reply": -M}, ValidationError, "first_reply=.* is not a timedelta >= 0"),
        ({"on_hold_business": 5}, ValidationError, "on_hold_business=5"),
        ({"replies": -1}, ValidationError, "replies=-1"),
        ({"reopens": True}, ValidationError, "reopens=True"),
    ],
)
def test_hand_built_metrics_are_checked(
    changes: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        metrics("X", **changes)


def test_a_merge_is_the_latest_resolution() -> None:
    # A merge closes the ticket: first and full resolution both end there (the ticket's own
    # solved_at stays None, as nothing set it to solved).
    merged = make_ticket("M", at=T0).apply(Merged(at=T0 + 2 * H, into="N"))
    m = ticket_metrics(merged, calendar=CAL)
    assert (m.first_resolution, m.full_resolution) == (2 * H, 2 * H)
    assert (m.first_resolution_business, m.full_resolution_business) == (2 * H, 2 * H)
    assert m.solved_at == T0 + 2 * H
    # solved, reopened, then merged: the latest resolution is the merge, 5h after creation
    again = make_ticket("R", at=T0)
    for event in [
        StatusChanged(at=T0 + H, status=Status.SOLVED),
        Reopened(at=T0 + 2 * H, status=Status.OPEN),
        Merged(at=T0 + 5 * H, into="N"),
    ]:
        again = again.apply(event)
    m = ticket_metrics(again)
    assert (m.first_resolution, m.full_resolution, m.solved_at) == (H, 5 * H, T0 + 5 * H)
    # requester wait: new 1h + open 3h; agent wait none
    assert (m.requester_wait, m.agent_wait) == (4 * H, timedelta())
