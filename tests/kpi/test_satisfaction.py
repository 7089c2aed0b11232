"""The satisfaction rating event: declared once, stored by every store, validated; NPS answers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given, settings

from csmcore.errors import InvalidType, NaiveDatetimeError, SerializationError, ValidationError
from csmcore.kpi import NpsAnswer, SatisfactionRated, SurveyKind, nps_answers
from csmcore.serialization import from_data, tag_of, to_data
from csmcore.storage import Store
from csmcore.testing import strategies as cs
from csmcore.testing.builders import make_ticket
from csmcore.tickets import Status, Ticket, TicketEventBase, event_from_data, event_types
from tests.kpi.support import T0, H
from tests.stores import (  # noqa: F401 - fixtures
    STORES,
    _postgres_check,
    memory_store,
    postgres_dsn,
    postgres_factory,
    postgres_store,
    sqlite_store,
)


def rated() -> Ticket:
    ticket = make_ticket("R-1", at=T0, status=Status.SOLVED)
    return ticket.apply(SatisfactionRated(at=T0 + H, score=2, comment="slow", actor="ann"))


def test_declared_with_the_ticket_event_registry() -> None:
    assert tag_of(SatisfactionRated) == "ticket.satisfaction_rated"
    assert SatisfactionRated in event_types()
    event = rated().events[-1]
    assert event_from_data(json.loads(json.dumps(to_data(event)))) == event
    assert to_data(event) == {
        "type": "ticket.satisfaction_rated",
        "at": "2025-03-03T10:00:00+00:00",
        "actor": "ann",
        "scale": 5,
        "score": 2,
        "kind": "csat",
        "comment": "slow",
        "schema": 1,
    }
    assert from_data(to_data(rated()), Ticket) == rated()


def test_it_changes_nothing_of_the_state_and_is_accepted_after_closing() -> None:
    ticket = make_ticket("R-2", at=T0, status=Status.CLOSED)
    after = ticket.apply(SatisfactionRated(at=T0 + H, score=7, scale=7, kind="ces"))
    assert after.status is Status.CLOSED
    assert after.version == 2
    event = after.events[-1]
    assert isinstance(event, SatisfactionRated)
    assert event.kind is SurveyKind.CES


@pytest.mark.parametrize("store_fixture", STORES)
def test_every_store_keeps_it(store_fixture: str, request: pytest.FixtureRequest) -> None:
    store: Store = request.getfixturevalue(store_fixture)
    store.tickets.add(rated())
    assert store.tickets.get("R-1") == rated()


@settings(max_examples=40)
@given(cs.ticket_events(types=[SatisfactionRated]))
def test_the_derived_strategy_draws_valid_ratings(event: TicketEventBase) -> None:
    assert isinstance(event, SatisfactionRated)
    assert 1 <= event.score <= event.scale
    assert from_data(to_data(event), SatisfactionRated) == event


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"score": 0}, ValidationError, r"score=0 is outside 1\.\.10"),
        ({"score": 6}, ValidationError, r"score=6 is above scale=5"),
        ({"score": 3, "scale": 1}, ValidationError, r"scale=1 is outside 2\.\.10"),
        ({"score": 3, "scale": 11}, ValidationError, r"scale=11 is outside 2\.\.10"),
        ({"score": 4.5}, InvalidType, "not a whole number"),
        ({"score": True}, InvalidType, "not a whole number"),
        ({"score": 3, "kind": "nps"}, ValidationError, "not a SurveyKind"),
        ({"score": 3, "comment": 5}, InvalidType, "comment=5"),
    ],
)
def test_bad_ratings(kwargs: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        SatisfactionRated(at=T0, **kwargs)  # type: ignore[arg-type]


def test_bad_rating_data_names_the_path() -> None:
    with pytest.raises(SerializationError, match="score=9 is above scale=5"):
        event_from_data({"type": "ticket.satisfaction_rated", "at": T0.isoformat(), "score": 9})


def test_nps_answers_accept_tuples_and_refuse_anything_else() -> None:
    answers = list(nps_answers([("acme", 9, T0), NpsAnswer(customer="beta", score=0, at=T0)]))
    assert [(a.customer, a.score) for a in answers] == [("acme", 9), ("beta", 0)]
    with pytest.raises(InvalidType, match=r"answers\[0\]"):
        list(nps_answers([("acme", 9)]))  # type: ignore[list-item]
    with pytest.raises(ValidationError, match=r"score=11 is outside 0\.\.10"):
        list(nps_answers([("acme", 11, T0)]))
    with pytest.raises(NaiveDatetimeError):
        list(nps_answers([("acme", 5, T0.replace(tzinfo=None))]))
    with pytest.raises(InvalidType, match="customer=7"):
        NpsAnswer(customer=7, score=5, at=T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidType, match="is not a datetime"):
        NpsAnswer(customer="a", score=5, at="2025-01-01")  # type: ignore[arg-type]
    assert T0 + timedelta() == answers[1].at
