"""The CsmError family: one root, each subclass also the matching builtin (DESIGN.md)."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime

import pytest

import csmcore
from csmcore import errors
from csmcore.errors import (
    CalendarError,
    ConcurrencyError,
    CsmError,
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

# (class, the builtin / csmcore bases it must also be) from DESIGN.md > Conventions > Errors.
FAMILY: list[tuple[type[CsmError], tuple[type[BaseException], ...]]] = [
    (ValidationError, (ValueError,)),
    (NaiveDatetimeError, (ValidationError, ValueError)),
    (UnknownTimezoneError, (ValidationError, ValueError)),
    (CalendarError, (ValidationError, ValueError)),
    (SerializationError, (ValidationError, ValueError)),
    (InvalidTransition, (ValidationError, ValueError)),
    (InvalidType, (ValidationError, ValueError, TypeError)),
    (NoBusinessTimeError, (ArithmeticError,)),
    (NotFound, (LookupError,)),
    (InsufficientPoints, (ValueError,)),
    (LedgerCorrupt, (ValueError,)),
    (ConcurrencyError, ()),
    (IdempotencyConflict, ()),
    (StorageError, ()),
    (SchemaVersionError, (StorageError,)),
    (UnsupportedRole, (StorageError,)),
    (LimitError, (ValidationError, ValueError)),
    (InternalError, (RuntimeError,)),
]


@pytest.mark.parametrize(("cls", "bases"), FAMILY, ids=[cls.__name__ for cls, _ in FAMILY])
def test_each_error_is_a_csm_error_and_its_builtin(
    cls: type[CsmError], bases: tuple[type[BaseException], ...]
) -> None:
    assert issubclass(cls, CsmError)
    assert issubclass(cls, Exception)
    for base in bases:
        assert issubclass(cls, base)
    error = NaiveDatetimeError("at", None) if cls is NaiveDatetimeError else cls("boom")
    # ``except <builtin>`` in code that does not know csmcore still catches it.
    catchers: tuple[type[BaseException], ...] = (CsmError, *bases)
    for base in catchers:
        with pytest.raises(base):
            raise error
    assert cls.__doc__  # documented


def test_concurrency_and_idempotency_are_not_value_errors() -> None:
    # They mean "retry / reconcile", not "your input is malformed".
    assert not issubclass(ConcurrencyError, ValueError)
    assert not issubclass(IdempotencyConflict, ValueError)
    assert not issubclass(NoBusinessTimeError, ValueError)


def test_the_family_is_complete_and_exported() -> None:
    listed = {cls.__name__ for cls, _ in FAMILY} | {"CsmError", "ErrorCode"}
    assert set(errors.__all__) == listed
    for name in errors.__all__:
        assert getattr(csmcore, name) is getattr(errors, name)
        assert name in csmcore.__all__


def test_naive_datetime_error_names_the_argument_and_the_fix() -> None:
    value = datetime(2025, 1, 6, 9)
    error = NaiveDatetimeError("start", value)
    assert error.argument == "start"
    assert error.value is value
    message = str(error)
    assert message.startswith("start=datetime.datetime(2025, 1, 6, 9, 0) is a naive datetime")
    assert "start.replace(tzinfo=ZoneInfo(" in message  # says what would be accepted


@pytest.mark.parametrize(
    "error",
    [
        NaiveDatetimeError("end", datetime(2025, 1, 6)),
        ValidationError("x=1 is bad"),
        NotFound("ticket 7"),
        SchemaVersionError("v9"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_survive_pickling_and_copying(error: CsmError) -> None:
    # Worker processes (multiprocessing, xdist) send exceptions back pickled.
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
    if isinstance(error, NaiveDatetimeError):
        clone = pickle.loads(pickle.dumps(error))
        assert isinstance(clone, NaiveDatetimeError)
        assert (clone.argument, clone.value) == (error.argument, error.value)


def test_an_integer_too_long_to_print_is_described_alike_by_every_message() -> None:
    # invalid_type said "<an integer of 16610 bits>", the value checks "<... 5001 digits>"
    from csmcore._values import show
    from csmcore.errors import invalid_type

    err = invalid_type("ticket", 10**5000, "a Ticket")
    assert str(err) == f"ticket={show(10**5000)} is a int; expected a Ticket"
    assert "<an integer of 5001 digits>" in str(err)
