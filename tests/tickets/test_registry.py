"""An event type declared in this test module alone (``ticket.test_rated``) is a full citizen:
it folds into tickets, round-trips through the converter and every built-in store, and has a
derived Hypothesis strategy; nothing in csmcore was edited for it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore._time import to_us
from csmcore.errors import InvalidTransition, SerializationError, ValidationError
from csmcore.serialization import from_data, tag_of, to_data, type_info
from csmcore.storage import Store
from csmcore.testing import _registered_types
from csmcore.testing import strategies as cs
from csmcore.tickets import (
    Channel,
    Priority,
    Role,
    Status,
    Ticket,
    TicketEventBase,
    TicketState,
    event_from_data,
    event_spec,
    event_to_data,
    event_type,
    event_types,
)
from tests.stores import (  # noqa: F401 - fixtures
    STORES,
    _postgres_check,
    memory_store,
    postgres_dsn,
    postgres_factory,
    postgres_store,
    sqlite_store,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def _non_negative(_: object, __: object, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"score={value!r} is not a whole number >= 0")


@event_type("ticket.test_rated", aliases=("test_rated",))
@attrs.frozen(kw_only=True)
class Rated(TicketEventBase):
    """The requester rated the help they got: ``score`` lands in the custom field "rating"."""

    score: int = attrs.field(validator=_non_negative)
    remark: str | None = attrs.field(default=None)

    def check(self, state: TicketState, ticket_id: str) -> str | None:
        if state.status not in (Status.SOLVED, Status.CLOSED):
            return (
                f"only a solved or closed ticket can be rated; this one is {state.status.value!r}"
            )
        return None

    def fold(self, state: TicketState) -> TicketState:
        return state.replace(fields={**state.fields, "rating": self.score})


def rated_ticket(ticket_id: str = "T-1") -> Ticket:
    ticket, _ = Ticket.create(
        at=T0,
        ticket_id=ticket_id,
        created_by=Role.REQUESTER,
        channel=Channel.WEB,
        priority=Priority.NORMAL,
        requester="ada",
        fields={"plan": "gold"},
    )
    ticket, _ = ticket.comment(T0 + timedelta(minutes=5), Role.AGENT)
    ticket, _ = ticket.set_status(T0 + timedelta(minutes=10), Status.SOLVED)
    return ticket.apply(Rated(at=T0 + timedelta(minutes=20), score=4, remark="quick"))


def test_the_declaration_is_all_the_registry_needs() -> None:
    assert tag_of(Rated) == "ticket.test_rated"
    assert type_info("test_rated").cls is Rated
    assert Rated in event_types()
    assert event_spec(Rated).names == ("at", "actor", "score", "remark")
    assert Rated in _registered_types()


def test_it_folds_into_the_ticket_and_its_rule_is_enforced() -> None:
    ticket = rated_ticket()
    assert ticket.fields == {"plan": "gold", "rating": 4}
    assert ticket.status is Status.SOLVED
    assert ticket.version == 4
    assert ticket.as_of(T0 + timedelta(minutes=15)).fields == {"plan": "gold"}
    opened = Ticket.from_events(ticket.events[:2])
    with pytest.raises(InvalidTransition, match="only a solved or closed ticket can be rated"):
        opened.apply(Rated(at=T0 + timedelta(hours=1), score=1))
    with pytest.raises(ValidationError, match="score=-1"):
        Rated(at=T0, score=-1)
    assert attrs.asdict(Rated(at=T0, score=1)) == {
        "at": T0,
        "actor": None,
        "score": 1,
        "remark": None,
    }


def test_it_round_trips_through_the_converter() -> None:
    ticket = rated_ticket()
    data = json.loads(json.dumps(to_data(ticket)))
    assert data["events"][-1] == {
        "type": "ticket.test_rated",
        "at": "2025-03-03T09:20:00+00:00",
        "actor": None,
        "score": 4,
        "remark": "quick",
        "schema": 1,
    }
    assert from_data(data, Ticket) == ticket
    event: TicketEventBase = ticket.events[-1]
    assert from_data(to_data(event), Rated) == event
    assert from_data(to_data(event), TicketEventBase) == event
    assert event_from_data({**event_to_data(event), "type": "test_rated"}) == event
    with pytest.raises(SerializationError, match=r"\$.score: required field missing"):
        event_from_data({"type": "ticket.test_rated", "at": T0.isoformat()})
    with pytest.raises(SerializationError, match="score=-2"):
        event_from_data({"type": "ticket.test_rated", "at": T0.isoformat(), "score": -2})


@pytest.mark.parametrize("store_fixture", STORES)
def test_every_built_in_store_keeps_it(store_fixture: str, request: pytest.FixtureRequest) -> None:
    store: Store = request.getfixturevalue(store_fixture)
    ticket = rated_ticket()
    store.tickets.add(Ticket.from_events(ticket.events[:3]))
    after = store.tickets.append("T-1", [ticket.events[-1]], expected_version=3)
    assert after == ticket
    assert store.tickets.get("T-1") == ticket
    assert store.tickets.get("T-1").fields["rating"] == 4
    store.tickets.add(rated_ticket("T-2"))
    assert store.tickets.get("T-2") == rated_ticket("T-2")


@settings(max_examples=50)
@given(cs.ticket_events(types=[Rated]))
def test_its_derived_strategy_draws_valid_events(event: TicketEventBase) -> None:
    assert type(event) is Rated
    assert attrs.evolve(event) == event  # every validator accepts it
    assert from_data(to_data(event), Rated) == event


@settings(max_examples=30)
@given(st.data())
def test_the_default_event_strategy_includes_it(data: st.DataObject) -> None:
    drawn = data.draw(st.lists(cs.ticket_events(), min_size=1, max_size=20))
    assert all(type(e) in event_types() for e in drawn)


@event_type("ticket.test_noted")
@attrs.frozen(kw_only=True)
class Noted(TicketEventBase):
    """An event with its own __attrs_post_init__ that does not call the base class's."""

    note: str

    def __attrs_post_init__(self) -> None:
        if not self.note.strip():
            raise ValidationError("note= is blank")


def test_an_own_post_init_still_gets_the_instant_in_microseconds() -> None:
    ticket = rated_ticket().apply(Noted(at=T0 + timedelta(hours=1), note="called back"))
    assert ticket.events[-1]._at_us == to_us(T0 + timedelta(hours=1))
    assert from_data(to_data(ticket), Ticket) == ticket
    with pytest.raises(ValidationError, match="note= is blank"):
        Noted(at=T0, note=" ")


def test_a_declaration_must_be_an_attrs_event_class() -> None:
    with pytest.raises(ValidationError, match="not an attrs subclass of TicketEventBase"):
        event_type("ticket.test_plain")(type("Plain", (), {}))
    with pytest.raises(ValidationError, match="already names"):

        @event_type("ticket.test_rated")
        @attrs.frozen(kw_only=True)
        class Other(TicketEventBase):
            pass


@pytest.mark.parametrize("name", ["schema", "type"])
def test_a_field_may_not_take_a_key_the_data_reserves(name: str) -> None:
    cls = attrs.make_class(
        "Clashing", {name: attrs.field(default=None)}, bases=(TicketEventBase,), frozen=True
    )
    with pytest.raises(ValidationError, match=f"Clashing has a field named '{name}'"):
        event_type("ticket.test_clashing")(cls)
    with pytest.raises(SerializationError, match="not a known csmcore type"):
        type_info("ticket.test_clashing")  # nothing was registered


_unused: Callable[..., object] = postgres_dsn  # the fixture chain of postgres_factory


def test_a_fold_cannot_leave_a_state_of_the_wrong_kind() -> None:
    # what a declared event's fold returns goes through TicketState.replace, which checks each
    # slot: a requester of None or a status given as a bare string would otherwise reach
    # Ticket.requester / Ticket.status and the stores as they are
    from csmcore.errors import InvalidType

    state = TicketState(list(rated_ticket()._state))
    assert state.replace(status="open").status is Status.OPEN  # the value is taken too
    assert state.replace(priority="urgent").priority is Priority.URGENT
    assert state.replace(requester="bob", assignee=None).requester == "bob"
    paris = datetime(2025, 3, 3, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    assert state.replace(solved_at=paris).solved_at == T0 + timedelta(hours=1)  # in UTC
    assert state.replace(reopens=2).reopens == 2
    for changes, message in (
        ({"requester": None}, "requester=None is a NoneType; expected a non-empty string"),
        ({"requester": ""}, "requester=''"),
        ({"assignee": 7}, "assignee=7 is a int; expected a non-empty string or None"),
        ({"status": "done"}, "status='done'"),
        ({"priority": 3}, "priority=3"),
        ({"solved_at": datetime(2025, 3, 3)}, "solved_at=datetime.datetime"),
        ({"reopens": -1}, "reopens=-1"),
        ({"reopens": True}, "reopens=True"),
    ):
        with pytest.raises((InvalidType, ValidationError), match=re.escape(message)):
            state.replace(**changes)


def test_an_event_type_whose_declaration_was_withdrawn_gets_no_strategy() -> None:
    # A test (or a doctest) may declare an event type and withdraw the declaration afterwards;
    # its tag stays in the serialization registry. Registering the strategies (as importing
    # csmcore.testing.strategies does, in whatever order tests run) must not ask for one for
    # it: that raised InvalidArgument when the strategies were first imported after such a test.
    from csmcore.tickets import _declare

    @attrs.frozen(kw_only=True)
    class Withdrawn(TicketEventBase):
        note: str

    cls = event_type("test.registry.withdrawn")(Withdrawn)
    assert cls in _registered_types()
    _declare._SPECS.pop(cls)
    _declare._ENCODE.pop(cls, None)
    _declare._BY_NAME.pop("test.registry.withdrawn")
    assert cls not in event_types()
    assert cls not in _registered_types()
    cs.register_types()  # raised InvalidArgument: no strategy for Withdrawn
