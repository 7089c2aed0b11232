"""The fast event encoders and decoders in csmcore.tickets agree with the generic reference ones.

Storage encodes and decodes every event through the fast paths; the reference functions
(``reference_event_to_data`` / ``reference_event_from_data``) are the field-by-field
originals. These tests prove, on random events and tickets and on random corruptions of their
data, that the fast paths give the same data, the same events and the same errors.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore._time import to_us
from csmcore.errors import SerializationError
from csmcore.serialization import from_data, schema_of, to_data, type_info
from csmcore.storage import open_store
from csmcore.testing import strategies as cst
from csmcore.tickets import (
    Assigned,
    Channel,
    Commented,
    FieldsChanged,
    Merged,
    Priority,
    PriorityChanged,
    Reopened,
    RequesterChanged,
    Role,
    Status,
    StatusChanged,
    TagsChanged,
    Ticket,
    TicketCreated,
    TicketEventBase,
    event_from_data,
    event_spec,
    event_to_data,
)
from csmcore.tickets._codec import (
    fast_event_from_data,
    reference_event_from_data,
    reference_event_to_data,
)
from csmcore.tickets._events import BUILT_IN_EVENTS

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)

# Every name an event type is read by: its tag and the names older releases wrote.
_EVENT_NAMES = sorted(
    name
    for cls in BUILT_IN_EVENTS
    for name in (event_spec(cls).tag, *type_info(event_spec(cls).tag).aliases)
)

# -- strategies -------------------------------------------------------------------------------

_texts = cst.names(max_size=8)
_optional = st.none() | _texts
_status_names = st.none() | st.sampled_from(["Awaiting Vendor", "Parked", "x"])


@st.composite
def _created(draw: st.DrawFn) -> TicketCreated:
    status = draw(st.sampled_from(list(Status)))
    name = draw(_status_names | st.just(status.value))
    base = draw(cst.ticket_created())
    return attrs.evolve(base, status=status, status_name=name)


@st.composite
def _tag_change(draw: st.DrawFn) -> TagsChanged:
    added = draw(st.frozensets(cst.tags(), max_size=3))
    removed = draw(st.frozensets(cst.tags(), max_size=3))
    return TagsChanged(
        at=draw(cst.instants()), actor=draw(_optional), added=added, removed=removed - added
    )


@st.composite
def _comment(draw: st.DrawFn) -> Commented:
    role = draw(st.sampled_from(list(Role)))
    return Commented(
        at=draw(cst.instants()),
        actor=draw(_optional),
        author_role=role,
        public=draw(st.booleans()),
        author=draw(_optional),
        on_behalf_of_requester=role is not Role.REQUESTER and draw(st.booleans()),
    )


@st.composite
def _status_change(draw: st.DrawFn) -> StatusChanged:
    status = draw(st.sampled_from(list(Status)))
    name = draw(_status_names | st.just(status.value))
    return StatusChanged(
        at=draw(cst.instants()), actor=draw(_optional), status=status, status_name=name
    )


def events() -> st.SearchStrategy[TicketEventBase]:
    """Every event class, with every optional field both set and unset."""
    at = cst.instants()
    return st.one_of(
        _created(),
        _status_change(),
        st.builds(
            PriorityChanged, at=at, actor=_optional, priority=st.sampled_from(list(Priority))
        ),
        st.builds(Assigned, at=at, actor=_optional, assignee=_optional, group=_optional),
        _comment(),
        _tag_change(),
        st.builds(
            FieldsChanged,
            at=at,
            actor=_optional,
            changes=st.dictionaries(
                cst.names(max_size=5), st.none() | cst.field_values(), max_size=4
            ),
        ),
        st.builds(Merged, at=at, actor=_optional, into=cst.ticket_ids()),
        st.builds(
            Reopened,
            at=at,
            actor=_optional,
            status=st.sampled_from([Status.OPEN, Status.PENDING, Status.ON_HOLD]),
        ),
    )


# Values that break some rule somewhere, or are valid in an unusual spelling.
_ODD_VALUES: list[Any] = [
    None,
    "",
    " vip",
    "x",
    0,
    1,
    True,
    False,
    1.5,
    float("nan"),
    [],
    ["vip"],
    ["vip", ""],
    ["a", "a"],
    # text no store can keep: the fast decoders must refuse it exactly as the reference does
    "x\x00",
    "caf\u00e9\ud800",
    ["v\x00"],
    {"plan": "\x00"},
    {"pl\udc00an": 1},
    {},
    {"plan": "gold"},
    {"": 1},
    {"plan": float("inf")},
    {"plan": [1]},
    "open",
    "new",
    "solved",
    "closed",
    "requester",
    "agent",
    "urgent",
    "email",
    "2025-03-03T09:00:00",
    "2025-03-03T09:00:00+02:00",
    "2025-03-03T09:00:00Z",
    "2025-13-03T09:00:00+00:00",
    "Awaiting Vendor",
]
_KEYS = sorted(
    {a.name for cls in BUILT_IN_EVENTS for a in attrs.fields(cls) if a.init}
    | {"type", "schema", "bogus"}
)


@st.composite
def corrupted(draw: st.DrawFn) -> dict[str, Any]:
    """The data of a random event with one to three keys dropped, added or changed."""
    data = dict(reference_event_to_data(draw(events())))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(data)) | st.sampled_from(_KEYS))
        action = draw(st.sampled_from(["drop", "set", "type"]))
        if action == "drop":
            data.pop(key, None)
        elif action == "type":
            data["type"] = draw(st.sampled_from([*_EVENT_NAMES, "nope", 3, None]))
        else:
            data[key] = draw(st.sampled_from(_ODD_VALUES))
    return data


def outcome(decode: Any, data: Any) -> tuple[str, Any]:
    try:
        return ("ok", decode(data))
    except SerializationError as err:
        return ("error", str(err))


# -- writing ------------------------------------------------------------------------------------


@given(events())
def test_fast_encoder_gives_the_reference_data_key_for_key(event: TicketEventBase) -> None:
    fast = event_to_data(event)
    reference = reference_event_to_data(event)
    assert fast == reference
    assert list(fast) == list(reference)  # same key order: the stored JSON text is identical
    assert [type(v) for v in fast.values()] == [type(v) for v in reference.values()]
    assert json.dumps(to_data(event)) == json.dumps(reference)


@given(cst.tickets(max_events=10))
def test_ticket_data_is_the_reference_data_of_its_events(ticket: Ticket) -> None:
    data = to_data(ticket)
    assert data == {
        "id": ticket.id,
        "events": [reference_event_to_data(e) for e in ticket.events],
    }
    assert from_data(json.loads(json.dumps(data)), Ticket) == ticket


def _samples() -> list[TicketEventBase]:
    return [
        TicketCreated(
            at=T0,
            ticket_id="T-1",
            created_by=Role.AGENT,
            channel=Channel.PHONE,
            priority=Priority.HIGH,
            requester="ada",
        ),
        StatusChanged(at=T0, status=Status.OPEN),
        PriorityChanged(at=T0, priority=Priority.LOW),
        PriorityChanged(at=T0, priority=Priority.URGENT, priority_name="1 - Critical"),
        Assigned(at=T0, assignee=None, group="tech"),
        Commented(at=T0, author_role=Role.BOT),
        TagsChanged(at=T0, added={"vip"}),
        FieldsChanged(at=T0, changes={"plan": "gold"}),
        Merged(at=T0, into="T-2"),
        Reopened(at=T0),
        TicketCreated(
            at=T0,
            actor="ops",
            ticket_id="T-1",
            created_by=Role.REQUESTER,
            channel=Channel.EMAIL,
            priority=Priority.NORMAL,
            requester="ada",
            subject="Printer",
            group="tech",
            assignee="grace",
            status=Status.ON_HOLD,
            status_name="Awaiting Vendor",
            tags={"vip", "billing"},
            fields={"plan": "gold", "seats": 3},
        ),
        StatusChanged(at=T0, status=Status.NEW, status_name="new"),
        Commented(at=T0, author_role=Role.REQUESTER, public=False, author="ada"),
        Commented(at=T0, author_role=Role.AGENT, on_behalf_of_requester=True),
        TagsChanged(at=T0, added={"a"}, removed={"b"}),
        Reopened(at=T0, status=Status.PENDING),
        Reopened(at=T0, status=Status.OPEN, status_name="Escalated"),
        RequesterChanged(at=T0, requester="bob@example.com"),
        RequesterChanged(at=T0, actor="ops", requester="Zoë"),
    ]


def test_every_event_class_has_a_fast_encoder_naming_every_field() -> None:
    samples = _samples()
    assert {type(e) for e in samples} == set(BUILT_IN_EVENTS)
    for event in samples:
        fast = event_to_data(event)
        fields = [a.name for a in attrs.fields(type(event)) if a.init]
        assert list(fast) == ["type", *fields, "schema"]
        assert fast["schema"] == schema_of(type(event))
        # issue 10 added status_name to Reopened, priority_name to TicketCreated and
        # PriorityChanged: version 2 of their tags; the others are at version 1
        bumped = isinstance(event, Reopened | TicketCreated | PriorityChanged)
        assert fast["schema"] == (2 if bumped else 1)
        assert fast == reference_event_to_data(event)


# -- reading ------------------------------------------------------------------------------------


@given(events())
def test_fast_decoder_rebuilds_the_event_without_the_fallback(event: TicketEventBase) -> None:
    data = json.loads(json.dumps(reference_event_to_data(event)))
    fast = fast_event_from_data(data)
    assert fast is not None  # stored data never needs the slow path
    assert type(fast) is type(event)
    reference = reference_event_from_data(data, "$")
    assert fast == event == reference
    assert fast.at.tzinfo is timezone.utc
    # _at_us takes no part in equality: check it on both decoders' events by itself.
    assert fast._at_us == reference._at_us == event._at_us == to_us(event.at)


@given(corrupted())
def test_corrupted_data_gets_the_reference_result_or_error(data: dict[str, Any]) -> None:
    fast = outcome(lambda d: event_from_data(d, "$.events[3]"), data)
    reference = outcome(lambda d: reference_event_from_data(d, "$.events[3]"), data)
    if fast[0] == "ok" and reference[0] == "ok":
        assert type(fast[1]) is type(reference[1])
        assert fast[1] == reference[1]
    else:
        assert fast == reference
    # and the fast decoder alone never accepts what the reference refuses
    if reference[0] == "error":
        assert fast_event_from_data(data) is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "commented", "at": T0.isoformat(), "author_role": "boss"}, "author_role='boss'"),
        ({"type": "merged", "at": T0.isoformat()}, r"\$.events\[0\].into: required field missing"),
        ({"type": "merged", "at": T0.isoformat(), "into": "X", "y": 1}, "unknown keys \\['y'\\]"),
        ({"type": "merged", "at": "2025-03-03T09:00:00", "into": "X"}, "naive"),
        ({"type": "tags_changed", "at": T0.isoformat(), "added": "vip"}, "not a list of tags"),
        (
            {"type": "reopened", "at": T0.isoformat(), "status": "new"},
            "cannot be reopened|reopened to",
        ),
    ],
)
def test_malformed_event_data_names_the_path(data: dict[str, Any], message: str) -> None:
    with pytest.raises(SerializationError, match=r"\$\.events\[0\]") as info:
        from_data({"id": "T-1", "events": [data]}, Ticket)
    assert info.match(message)


def test_an_instant_in_another_offset_is_read_and_stored_in_utc() -> None:
    data = {"type": "merged", "at": "2025-03-03T11:00:00+02:00", "into": "X"}
    event = from_data(data, TicketEventBase)
    assert event == Merged(at=T0, into="X")
    assert event.at.tzinfo is timezone.utc


def test_a_string_subclass_value_is_still_accepted() -> None:
    class Name(str):
        pass

    data = {"type": "merged", "at": T0.isoformat(), "into": Name("X"), "actor": Name("ops")}
    assert from_data(data, TicketEventBase) == Merged(at=T0, into="X", actor="ops")


def test_every_single_odd_value_in_every_field_gets_the_reference_outcome() -> None:
    cases = 0
    for event in _samples():
        base = reference_event_to_data(event)
        for key in [*base, "bogus"]:
            variants: list[dict[str, Any]] = [{k: v for k, v in base.items() if k != key}]
            variants += [{**base, key: value} for value in _ODD_VALUES]
            for data in variants:
                fast = outcome(lambda d: event_from_data(d, "$"), data)
                reference = outcome(lambda d: reference_event_from_data(d, "$"), data)
                assert fast[0] == reference[0], data
                if fast[0] == "ok":
                    assert type(fast[1]) is type(reference[1])
                assert fast[1] == reference[1], data
                if reference[0] == "error":
                    assert fast_event_from_data(data) is None, data
                cases += 1
    assert cases > 2000


def test_a_store_refuses_a_corrupted_event_row(tmp_path: Path) -> None:
    """Rows read back from a database are outside data: the fast decoder still checks them."""
    ticket, _ = Ticket.create(
        at=T0,
        ticket_id="T-1",
        created_by=Role.REQUESTER,
        channel=Channel.EMAIL,
        priority=Priority.NORMAL,
        requester="ada",
    )
    ticket, _ = ticket.comment(T0, Role.AGENT)
    path = tmp_path / "store.db"
    store = open_store(f"sqlite:///{path}")
    try:
        store.tickets.add(ticket)
        assert store.tickets.get("T-1") == ticket
        with sqlite3.connect(path) as db:
            db.execute(
                "UPDATE csm_events SET data = ? WHERE ticket_id = 'T-1' AND seq = 2",
                [json.dumps({"type": "commented", "at": T0.isoformat(), "author_role": "boss"})],
            )
        fresh = open_store(f"sqlite:///{path}")  # no cached copy of the ticket
        try:
            with pytest.raises(SerializationError, match="author_role='boss'"):
                fresh.tickets.get("T-1")
        finally:
            fresh.close()
    finally:
        store.close()


@given(events(), st.data())
def test_every_name_of_the_type_reads_the_same_event_on_both_paths(
    event: TicketEventBase, data: st.DataObject
) -> None:
    written = reference_event_to_data(event)
    assert written["type"] == event_spec(type(event)).tag
    names = (written["type"], *type_info(written["type"]).aliases)
    old = {**written, "type": data.draw(st.sampled_from(names))}
    fast = fast_event_from_data(old)
    assert fast is not None
    assert fast == reference_event_from_data(old) == event


@given(events())
def test_events_have_no_private_attrs_field(event: TicketEventBase) -> None:
    plain = attrs.asdict(event, recurse=False)
    assert not [name for name in plain if name.startswith("_")]
    assert event._at_us == to_us(event.at)
