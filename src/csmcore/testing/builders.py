"""Builders of tickets, SLA policies and books with sensible defaults, for tests.

Every argument has a default, so a test names only what it is about. The storage conformance
suite (:mod:`csmcore.testing.storage_suite`) builds its data with them, and so can your tests.
This module imports only csmcore (no pytest, no Hypothesis).

>>> ticket = make_ticket("T-1", priority="high")
>>> ticket.id, ticket.priority.value, ticket.created_at == T0
('T-1', 'high', True)
>>> policy = make_policy("gold", within=timedelta(minutes=30))
>>> policy.name, policy.targets[0].within
('gold', datetime.timedelta(seconds=1800))
>>> book = make_book(policy)
>>> [p.name for p in book.policies]
['gold']
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from csmcore.calendars import BusinessCalendar
from csmcore.sla import SlaBook, SlaMetric, SlaPolicy, SlaTarget
from csmcore.tickets import Channel, Commented, Priority, Role, Ticket

__all__ = ["T0", "make_book", "make_comment", "make_policy", "make_ticket"]

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
"""The default instant of the builders: Monday 3 March 2025, 09:00 UTC."""


def make_ticket(ticket_id: str, *, at: datetime = T0, **changes: Any) -> Ticket:
    """A new ticket created at ``at`` (aware) by its requester ``"ann"`` by email, at normal
    priority; ``changes`` override any argument of :meth:`~csmcore.tickets.Ticket.create`.

    Raises what ``Ticket.create`` raises for a bad argument
    (:class:`~csmcore.errors.ValidationError` and its subclasses).

    >>> make_ticket("T-2", tags={"vip"}).tags
    frozenset({'vip'})
    """
    arguments: dict[str, Any] = {
        "at": at,
        "ticket_id": ticket_id,
        "created_by": Role.REQUESTER,
        "channel": Channel.EMAIL,
        "priority": Priority.NORMAL,
        "requester": "ann",
    }
    arguments.update(changes)
    return Ticket.create(**arguments)[0]


def make_comment(at: datetime = T0, author: str = "agent") -> Commented:
    """A comment by an agent named ``author`` at ``at`` (aware).

    >>> make_comment(author="bob").author
    'bob'
    """
    return Commented(at=at, author_role=Role.AGENT, author=author)


def make_policy(
    name: str = "standard",
    target: str = "first reply",
    *,
    within: timedelta = timedelta(hours=1),
    position: int = 1,
    default: bool = True,
) -> SlaPolicy:
    """An SLA policy ``name`` with one first-reply target named ``target``, due ``within``
    business time; the default policy at ``position`` unless told otherwise.

    Raises :class:`~csmcore.sla.SlaError` for a bad name, position or duration.

    >>> make_policy("silver", target="reply").targets[0].name
    'reply'
    """
    return SlaPolicy(
        name=name,
        position=position,
        default=default,
        targets=[SlaTarget(metric=SlaMetric.FIRST_REPLY, within=within, name=target)],
    )


def make_book(*policies: SlaPolicy, calendar: BusinessCalendar | None = None) -> SlaBook:
    """An SLA book of ``policies`` (one :func:`make_policy` when none are given), measured on
    ``calendar`` (by default one that is always open).

    Raises :class:`~csmcore.sla.SlaError` for policies that do not make a book (two defaults,
    the same position twice, ...).

    >>> make_book().calendar == BusinessCalendar.always()
    True
    """
    return SlaBook(
        policies=list(policies) or [make_policy()],
        calendar=BusinessCalendar.always() if calendar is None else calendar,
    )
