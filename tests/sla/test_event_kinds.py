"""The engine classifies events by a table; an event type it does not know is "some event"."""

from __future__ import annotations

from typing import Any, cast

import attrs
import pytest

from csmcore.conditions import Eq
from csmcore.sla import CustomTimer, SlaBook, SlaMetric, SlaPolicy, SlaTarget
from csmcore.tickets import Role, Status, Ticket, TicketEventBase
from tests.sla.support import CAL, H, at, book, new


@attrs.frozen(kw_only=True)
class Escalated(TicketEventBase):
    """An event type of the test's own, unknown to csmcore's engine."""

    level: int


def _books() -> list[SlaBook]:
    plain = book(
        SlaTarget(metric=SlaMetric.FIRST_REPLY, within=2 * H),
        SlaTarget(metric=SlaMetric.NEXT_REPLY, within=4 * H),
        SlaTarget(metric=SlaMetric.AGENT_WORK, within=8 * H),
        SlaTarget(metric=SlaMetric.PERIODIC_UPDATE, within=8 * H),
    )
    custom = SlaBook(
        policies=[
            SlaPolicy(
                name="open",
                position=1,
                condition=Eq("status", "open"),
                targets=[SlaTarget(metric=SlaMetric.TOTAL_RESOLUTION, within=16 * H)],
            ),
            SlaPolicy(
                name="std",
                position=2,
                default=True,
                targets=[
                    SlaTarget(metric=SlaMetric.FIRST_REPLY, within=H),
                    SlaTarget(
                        metric=SlaMetric.CUSTOM,
                        name="vendor",
                        within=3 * H,
                        timer=CustomTimer(
                            start=Eq("status", "open"),
                            pause=Eq("status", "pending"),
                            stop_on=["solved"],
                        ),
                    ),
                ],
            ),
        ],
        calendar=CAL,
    )
    return [plain, custom]


def _add(ticket: Ticket, event: Escalated) -> Ticket:
    # Ticket.apply is typed with the built-in event union; at run time it takes any event.
    return ticket.apply(cast(Any, event))


def _history(with_unknown: bool) -> Ticket:
    ticket = new(at(6, 9))
    if with_unknown:
        ticket = _add(ticket, Escalated(at=at(6, 9, 30), level=1))
    ticket, _ = ticket.set_status(at(6, 10), Status.OPEN)
    if with_unknown:
        ticket = _add(ticket, Escalated(at=at(6, 11), level=2))
    ticket, _ = ticket.comment(at(6, 12), Role.AGENT)
    ticket, _ = ticket.comment(at(6, 13), Role.REQUESTER)
    if with_unknown:
        ticket = _add(ticket, Escalated(at=at(6, 14), level=3))
    ticket, _ = ticket.set_status(at(7, 10), Status.PENDING)
    return ticket


@pytest.mark.parametrize("sla", _books(), ids=["built-in targets", "conditions and a timer"])
def test_an_unknown_event_type_replays_as_some_event(sla: SlaBook) -> None:
    plain, mixed = _history(False), _history(True)
    assert any(isinstance(cast(object, event), Escalated) for event in mixed.events)
    for moment in (at(6, 9, 30), at(6, 11), at(6, 14), at(7, 9), at(8, 12)):
        assert sla.evaluate(mixed, moment) == sla.evaluate(plain, moment)
    assert sla.next_change(mixed, at(6, 9)) == sla.next_change(plain, at(6, 9))
