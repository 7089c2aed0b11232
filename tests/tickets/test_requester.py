"""Issue 10: the requester can change (RequesterChanged / Ticket.change_requester)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from csmcore.conditions import Eq
from csmcore.errors import ErrorCode, InvalidTransition, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.tickets import (
    RequesterChanged,
    Status,
    Ticket,
    event_from_data,
    event_to_data,
)
from tests.tickets.support import MIN, T0, new_ticket


def test_change_requester_updates_the_current_requester_and_keeps_the_original() -> None:
    ticket, event = new_ticket().change_requester(T0 + MIN, "bob", actor="ops")
    assert event == RequesterChanged(at=T0 + MIN, actor="ops", requester="bob")
    assert ticket.requester == "bob"
    assert ticket.created.requester == "ada"
    assert ticket.as_of(T0).requester == "ada"
    assert Ticket.from_events(ticket.events) == ticket
    assert Ticket.from_events(ticket.events).requester == "bob"
    same, _ = ticket.change_requester(T0 + 2 * MIN, "bob")  # repeating is a no-op
    assert same._state == ticket._state


def test_conditions_on_requester_read_the_current_one() -> None:
    ticket, _ = new_ticket().change_requester(T0 + MIN, "bob")
    assert Eq("requester", "bob").matches(ticket)
    assert not Eq("requester", "ada").matches(ticket)
    assert Eq("requester", "ada").matches(ticket.as_of(T0))


def test_requester_can_change_on_a_closed_ticket_but_not_after_a_merge() -> None:
    closed, _ = new_ticket().set_status(T0 + MIN, Status.CLOSED)
    changed, _ = closed.change_requester(T0 + 2 * MIN, "bob")
    assert (changed.requester, changed.status) == ("bob", Status.CLOSED)
    merged, _ = new_ticket().merge_into(T0 + MIN, "T-2")
    with pytest.raises(InvalidTransition) as raised:
        merged.change_requester(T0 + 2 * MIN, "bob")
    assert (raised.value.code, raised.value.event_index) == (ErrorCode.AFTER_MERGE, 2)


@pytest.mark.parametrize("bad", ["", None, 3, "a\x00"])
def test_requester_is_checked(bad: object) -> None:
    with pytest.raises(ValidationError) as raised:
        new_ticket().change_requester(T0 + MIN, bad)  # type: ignore[arg-type]
    assert raised.value.field == "requester"


def test_requester_changed_round_trips() -> None:
    event = RequesterChanged(at=T0, actor="ops", requester="Zoë")
    data = event_to_data(event)
    assert data == {
        "type": "ticket.requester_changed",
        "at": T0.isoformat(),
        "actor": "ops",
        "requester": "Zoë",
        "schema": 1,
    }
    assert event_from_data(json.loads(json.dumps(data))) == event
    ticket, _ = new_ticket().change_requester(T0 + MIN, "bob")
    assert from_data(json.loads(json.dumps(to_data(ticket))), Ticket).requester == "bob"


def test_sla_policy_selection_follows_the_requester_at_each_instant() -> None:
    from csmcore.calendars import BusinessCalendar
    from csmcore.sla import SlaBook, SlaMetric, SlaPolicy, SlaTarget

    hour = timedelta(hours=1)
    book = SlaBook(
        policies=[
            SlaPolicy(
                name="standard",
                position=10,
                default=True,
                targets=[SlaTarget(metric=SlaMetric.FIRST_REPLY, within=4 * hour)],
            ),
            SlaPolicy(
                name="vip",
                position=1,
                condition=Eq("requester", "vip"),
                targets=[SlaTarget(metric=SlaMetric.FIRST_REPLY, within=hour)],
            ),
        ],
        calendar=BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC"),
    )
    ticket, _ = new_ticket().change_requester(T0 + 3 * hour, "vip")
    at = T0 + 2 * hour  # before the change: the standard policy applies
    expected = [(s.policy, s.due_at) for s in book.evaluate(ticket.as_of(at), at)]
    assert expected == [("standard", T0 + 4 * hour)]
    assert [(s.policy, s.due_at) for s in book.evaluate(ticket, at)] == expected


def test_sql_stores_find_a_ticket_by_its_current_requester(tmp_path: Path) -> None:
    from csmcore.storage import open_store

    ticket = new_ticket()
    changed, event = ticket.change_requester(T0 + MIN, "bob")
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        store.tickets.add(ticket)
        store.tickets.append(ticket.id, [event], expected_version=ticket.version)
        assert store.tickets.get(ticket.id) == changed
        assert [t.id for t in store.tickets.find(Eq("requester", "bob"))] == ["T-1"]
        assert [t.id for t in store.tickets.find(Eq("requester", "ada"))] == []
    finally:
        store.close()
