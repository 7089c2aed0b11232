"""Service recovery, the pure part: which breached target cycles are owed points, how many,
under a cap, and never twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta

from csmcore.errors import ValidationError
from csmcore.loyalty import (
    RecoveryGrant,
    RecoveryPolicy,
    RollingExpiry,
    recovery_grants,
    recovery_key,
)
from csmcore.sla import SlaMetric, SlaTarget
from csmcore.tickets import Role, Ticket
from tests.loyalty.program_support import Entry, earn
from tests.sla.support import at, book, new

H = timedelta(hours=1)
SLA = book(
    SlaTarget(metric=SlaMetric.FIRST_REPLY, within=2 * H, business_hours=False),
    SlaTarget(metric=SlaMetric.NEXT_REPLY, within=H, business_hours=False),
)


def breached_ticket() -> Ticket:
    """T-1 (ann@example.com), 6 Jan 2025: first reply due 12:00, answered 12:30 (breached
    at 12:00); next reply cycle 1 from 13:00 due 14:00, answered 13:30 (achieved); cycle 2
    from 15:00 due 16:00, answered 17:00 (breached at 16:00)."""
    ticket = new(at(6, 10))
    ticket, _ = ticket.comment(at(6, 12, 30), Role.AGENT)
    ticket, _ = ticket.comment(at(6, 13), Role.REQUESTER)
    ticket, _ = ticket.comment(at(6, 13, 30), Role.AGENT)
    ticket, _ = ticket.comment(at(6, 15), Role.REQUESTER)
    ticket, _ = ticket.comment(at(6, 17), Role.AGENT)
    return ticket


def grants(
    policy: RecoveryPolicy, when: object, entries: list[Entry] | None = None
) -> list[RecoveryGrant]:
    ticket = breached_ticket()
    return recovery_grants(
        policy,
        member_id="ann@example.com",
        ticket_id=ticket.id,
        results=SLA.evaluate(ticket, when),  # type: ignore[arg-type]
        at=when,  # type: ignore[arg-type]
        entries=entries or [],
    )


def test_each_breached_cycle_is_owed_its_points() -> None:
    policy = RecoveryPolicy(points=100, per_target={"first_reply": 250})
    owed = grants(policy, at(6, 18))
    assert [(g.target, g.cycle, g.points, g.key, g.breached_at) for g in owed] == [
        ("first_reply", 1, 250, "sla-recovery:T-1:first_reply:1", at(6, 12)),
        ("next_reply", 2, 100, "sla-recovery:T-1:next_reply:2", at(6, 16)),
    ]


def test_only_breaches_up_to_the_instant_count() -> None:
    policy = RecoveryPolicy(points=100)
    # at 15:30 only the first reply had breached (next reply cycle 2 is due at 16:00)
    assert [g.target for g in grants(policy, at(6, 15, 30))] == ["first_reply"]


def test_a_key_already_in_the_ledger_is_not_granted_again() -> None:
    policy = RecoveryPolicy(points=100)
    done = Entry(
        kind="earn",
        at=at(6, 18),
        points=100,
        reason="sla_breach",
        key=recovery_key("T-1", "first_reply", 1),
    )
    assert [g.target for g in grants(policy, at(6, 19), [done])] == ["next_reply"]


def test_a_target_worth_zero_is_left_out() -> None:
    policy = RecoveryPolicy(points=100, per_target={"next_reply": 0})
    assert [g.target for g in grants(policy, at(6, 18))] == ["first_reply"]


def test_the_cap_counts_breach_points_of_the_month() -> None:
    policy = RecoveryPolicy(points=100, cap=300, period="month")
    # 150 already granted for breaches in January 2025, 500 for purchases (not counted):
    # 150 left: 100 for the first reply, 50 for next reply cycle 2
    entries = [
        earn(at(2, 9), 150, reason="sla_breach"),
        earn(at(3, 9), 500, reason="purchase"),
    ]
    owed = grants(policy, at(6, 18), entries)
    assert [(g.target, g.points, g.capped) for g in owed] == [
        ("first_reply", 100, False),
        ("next_reply", 50, True),
    ]
    # with the cap reached nothing is owed (no grant of 0 points)
    entries.append(earn(at(4, 9), 150, reason="sla_breach"))
    assert grants(policy, at(6, 18), entries) == []


def test_recovery_points_expire_per_the_policy() -> None:
    policy = RecoveryPolicy(points=100, expiry=RollingExpiry(after=relativedelta(months=6)))
    assert {g.expires_at for g in grants(policy, at(6, 18))} == {
        at(6, 18) + relativedelta(months=6)
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"points": -1}, "points=-1 must be zero or more"),
        ({"points": 1.5}, "points=1.5"),
        ({"points": 1, "per_target": {"first_reply": -5}}, "per_target['first_reply']=-5"),
        ({"points": 1, "per_target": ["first_reply"]}, "per_target="),
        ({"points": 1, "cap": -1}, "cap=-1"),
        ({"points": 1, "period": "week"}, "period='week' is not a Period"),
        ({"points": 1, "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"points": 1, "expiry": "never"}, "expiry="),
    ],
)
def test_bad_recovery_policies_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("(", r"\(")):
        RecoveryPolicy(**kwargs)  # type: ignore[arg-type]
