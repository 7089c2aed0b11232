"""Structured error details: every reason code a ticket raises, with the ticket id, the event
index and the offending value, so an importer can classify rejects without parsing messages."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from csmcore.errors import CalendarError as _CalendarError
from csmcore.errors import (
    ConcurrencyError,
    CsmError,
    ErrorCode,
    IdempotencyConflict,
    InsufficientPoints,
    InternalError,
    InvalidTransition,
    InvalidType,
    LedgerCorrupt,
    LimitError,
    NaiveDatetimeError,
    NoBusinessTimeError,
    NotFound,
    SchemaVersionError,
    SerializationError,
    StorageError,
    UnknownTimezoneError,
    UnsupportedRole,
    ValidationError,
)
from csmcore.tickets import (
    Commented,
    Merged,
    Refusal,
    Reopened,
    Status,
    StatusChanged,
    StatusMap,
    Ticket,
    TicketCreated,
    TicketEventBase,
    TicketState,
    event_from_data,
    event_type,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def created(ticket_id: str = "T-1", **overrides: Any) -> TicketCreated:
    kwargs: dict[str, Any] = {
        "at": T0,
        "ticket_id": ticket_id,
        "created_by": "requester",
        "channel": "email",
        "priority": "normal",
        "requester": "ada",
    }
    kwargs.update(overrides)
    return TicketCreated(**kwargs)


def apply_all(ticket: Ticket, events: list[Any]) -> Ticket:
    for event in events:
        ticket = ticket.apply(event)
    return ticket


def refused(events: list[Any], ticket_id: str = "T-1") -> CsmError:
    """The error rebuilding ``events`` raises, checked to be the same on every path."""
    with pytest.raises(CsmError) as from_events:
        Ticket.from_events(events)
    with pytest.raises(CsmError) as constructed:
        Ticket(id=ticket_id, events=events)
    assert constructed.value.details() == from_events.value.details()
    assert str(constructed.value) == str(from_events.value)
    if len(events) > 1 and isinstance(events[0], TicketCreated):
        # apply() one by one gives the same error at the same index
        with pytest.raises(CsmError) as applied:
            apply_all(Ticket.from_events(events[:1]), events[1:])
        assert applied.value.details() == from_events.value.details()
    return from_events.value


TRANSITIONS: list[tuple[ErrorCode, list[Any], int]] = [
    (
        ErrorCode.OUT_OF_ORDER,
        [
            created(),
            Commented(at=T0 + 2 * MIN, author_role="agent"),
            Commented(at=T0 + MIN, author_role="agent"),
        ],
        2,
    ),
    (
        ErrorCode.AFTER_MERGE,
        [created(), Merged(at=T0 + MIN, into="T-2"), Reopened(at=T0 + 2 * MIN)],
        2,
    ),
    (
        ErrorCode.TICKET_CLOSED,
        [
            created(),
            StatusChanged(at=T0 + MIN, status="closed"),
            Commented(at=T0 + 2 * MIN, author_role="requester"),
        ],
        2,
    ),
    (
        ErrorCode.BACK_TO_NEW,
        [
            created(),
            StatusChanged(at=T0 + MIN, status="open"),
            StatusChanged(at=T0 + 2 * MIN, status="new"),
        ],
        2,
    ),
    (ErrorCode.NOT_REOPENABLE, [created(), Reopened(at=T0 + MIN)], 1),
    (ErrorCode.ALREADY_CREATED, [created(), created(at=T0 + MIN)], 1),
    (ErrorCode.MERGE_INTO_SELF, [created(), Merged(at=T0 + MIN, into="T-1")], 1),
]


@pytest.mark.parametrize(
    ("code", "events", "index"), TRANSITIONS, ids=[str(code) for code, _, _ in TRANSITIONS]
)
def test_each_transition_refusal_has_its_code_ticket_index_and_event(
    code: ErrorCode, events: list[Any], index: int
) -> None:
    error = refused(events)
    assert isinstance(error, InvalidTransition)
    assert error.code == code
    assert error.code == code.value  # a plain string too
    assert error.ticket_id == "T-1"
    assert error.event_index == index
    assert error.value is events[index]
    assert str(error).startswith("ticket 'T-1': cannot apply ")  # messages as they were


def test_first_event_not_created() -> None:
    event = Commented(at=T0, author_role="agent")
    with pytest.raises(InvalidTransition) as raised:
        Ticket(id="T-1", events=[event])
    assert raised.value.details() == {
        "code": "not_created_first",
        "ticket_id": "T-1",
        "event_index": 0,
        "field": None,
        "value": event,
    }
    with pytest.raises(InvalidTransition) as raised:
        Ticket.from_events([event])
    assert (raised.value.code, raised.value.event_index) == ("not_created_first", 0)


def test_empty_history_and_id_mismatch_and_not_an_event() -> None:
    with pytest.raises(ValidationError) as raised:
        Ticket.from_events([])
    assert raised.value.code == ErrorCode.EMPTY_HISTORY
    with pytest.raises(ValidationError) as raised:
        Ticket(id="T-1", events=[])
    assert (raised.value.code, raised.value.ticket_id) == (ErrorCode.EMPTY_HISTORY, "T-1")
    with pytest.raises(ValidationError) as raised:
        Ticket(id="T-9", events=[created()])
    assert raised.value.details() == {
        "code": "ticket_id_mismatch",
        "ticket_id": "T-9",
        "event_index": 0,
        "field": None,
        "value": "T-1",
    }
    error = refused([created(), "not an event"])
    assert (error.code, error.event_index, error.value) == ("not_an_event", 1, "not an event")


def test_value_errors_name_field_and_value() -> None:
    with pytest.raises(ValidationError) as raised:
        created(channel="fax")
    assert raised.value.details() == {
        "code": "unknown_name",
        "ticket_id": None,
        "event_index": None,
        "field": "channel",
        "value": "fax",
    }
    with pytest.raises(ValidationError) as raised:
        StatusMap().category("Waiting")
    assert (raised.value.code, raised.value.value) == (ErrorCode.UNKNOWN_NAME, "Waiting")
    with pytest.raises(ValidationError) as raised:
        created(fields={"amount": float("nan")})
    assert (raised.value.code, raised.value.field) == (ErrorCode.INVALID_FIELD_VALUE, "amount")
    with pytest.raises(ValidationError) as raised:
        created(fields={"amount": [1]})
    assert (raised.value.code, raised.value.field, raised.value.value) == (
        ErrorCode.INVALID_FIELD_VALUE,
        "amount",
        [1],
    )
    with pytest.raises(ValidationError) as raised:
        created(subject="a\x00b")
    assert (raised.value.code, raised.value.field) == (ErrorCode.UNSTORABLE_TEXT, "subject")
    with pytest.raises(ValidationError) as raised:
        created(ticket_id="x" * 256)
    assert (raised.value.code, raised.value.field) == (ErrorCode.UNSTORABLE_TEXT, "ticket_id")
    with pytest.raises(ValidationError) as raised:
        created(requester="")
    assert raised.value.details()["code"] == "invalid_value"
    assert (raised.value.field, raised.value.value) == ("requester", "")
    naive = datetime(2025, 1, 1)
    with pytest.raises(NaiveDatetimeError) as naive_raised:
        created(at=naive)
    assert (naive_raised.value.code, naive_raised.value.field) == ("naive_datetime", "at")
    assert naive_raised.value.value is naive


def test_decoding_keeps_field_and_value_under_malformed_data() -> None:
    with pytest.raises(SerializationError) as raised:
        event_from_data({"type": "ticket.priority_changed", "at": T0.isoformat(), "priority": "x"})
    assert (raised.value.code, raised.value.field, raised.value.value) == (
        ErrorCode.MALFORMED_DATA,
        "priority",
        "x",
    )


@event_type("test.frozen_check")
@attrs.frozen(kw_only=True)
class _Freeze(TicketEventBase):
    """A declared event that refuses with a code of its own, or with a plain reason."""

    coded: bool = True

    def check(self, state: TicketState, ticket_id: str) -> str | None:
        if self.coded:
            return Refusal("frozen tickets take nothing", code="ticket_frozen")
        return "plain reason"


def test_declared_events_refuse_with_their_own_code_or_the_default() -> None:
    ticket = Ticket.from_events([created()])
    with pytest.raises(InvalidTransition) as raised:
        ticket.apply(_Freeze(at=T0))
    assert (raised.value.code, raised.value.event_index) == ("ticket_frozen", 1)
    assert str(raised.value).endswith("frozen tickets take nothing")
    with pytest.raises(InvalidTransition) as raised:
        ticket.apply(_Freeze(at=T0, coded=False))
    assert raised.value.code == ErrorCode.INVALID_TRANSITION


DEFAULTS: list[tuple[type[CsmError], ErrorCode]] = [
    (CsmError, ErrorCode.INVALID_VALUE),
    (ValidationError, ErrorCode.INVALID_VALUE),
    (InvalidType, ErrorCode.INVALID_TYPE),
    (UnknownTimezoneError, ErrorCode.UNKNOWN_TIMEZONE),
    (_CalendarError, ErrorCode.INVALID_CALENDAR),
    (NoBusinessTimeError, ErrorCode.NO_BUSINESS_TIME),
    (SerializationError, ErrorCode.MALFORMED_DATA),
    (InvalidTransition, ErrorCode.INVALID_TRANSITION),
    (NotFound, ErrorCode.NOT_FOUND),
    (ConcurrencyError, ErrorCode.VERSION_CONFLICT),
    (IdempotencyConflict, ErrorCode.IDEMPOTENCY_CONFLICT),
    (InsufficientPoints, ErrorCode.INSUFFICIENT_POINTS),
    (StorageError, ErrorCode.STORAGE_FAILURE),
    (SchemaVersionError, ErrorCode.SCHEMA_VERSION),
    (UnsupportedRole, ErrorCode.UNSUPPORTED_ROLE),
    (LedgerCorrupt, ErrorCode.LEDGER_CORRUPT),
    (LimitError, ErrorCode.LIMIT_EXCEEDED),
    (InternalError, ErrorCode.INTERNAL_FAILURE),
]


@pytest.mark.parametrize(("cls", "code"), DEFAULTS, ids=[c.__name__ for c, _ in DEFAULTS])
def test_each_error_class_has_a_default_code(cls: type[CsmError], code: ErrorCode) -> None:
    error = cls("boom")
    assert error.code is code
    assert error.details() == {
        "code": code.value,
        "ticket_id": None,
        "event_index": None,
        "field": None,
        "value": None,
    }


def test_every_code_is_covered_by_a_test() -> None:
    tested = {code for code, _, _ in TRANSITIONS} | {code for _, code in DEFAULTS}
    tested |= {
        ErrorCode.NOT_CREATED_FIRST,
        ErrorCode.EMPTY_HISTORY,
        ErrorCode.TICKET_ID_MISMATCH,
        ErrorCode.NOT_AN_EVENT,
        ErrorCode.UNKNOWN_NAME,
        ErrorCode.INVALID_FIELD_VALUE,
        ErrorCode.UNSTORABLE_TEXT,
        ErrorCode.NAIVE_DATETIME,
    }
    assert tested == set(ErrorCode)


def test_details_survive_pickling_and_copying() -> None:
    error = refused(
        [
            created(),
            StatusChanged(at=T0 + MIN, status=Status.CLOSED),
            Commented(at=T0 + 2 * MIN, author_role="agent"),
        ]
    )
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is InvalidTransition
        assert str(clone) == str(error)
        assert clone.details() == error.details()
