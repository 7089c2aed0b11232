"""The csmcore exception family.

Every error csmcore raises on purpose is a :class:`CsmError`. Each subclass also derives from the
matching builtin exception, so ``except ValueError`` keeps working in code that does not know about
csmcore. Messages name the offending value and say what would have been accepted.

Besides the message, every error carries structured details for programs (an importer counting
and classifying rejects, say) that must not parse text: ``code`` (a stable reason code, an
:class:`ErrorCode` member, which is also a plain ``str``), and, where the raiser knows them,
``ticket_id``, ``event_index`` (the 0-based position of the offending event in the ticket's
history), ``field`` (the argument or field name) and ``value`` (the offending value). Unknown
details are None (``value`` too: check ``code``).
"""

from __future__ import annotations

import enum
from typing import Any, Final

MAX_INT_DIGITS: Final = 640
"""The most decimal digits of an integer csmcore keeps (in a custom field, a condition, a
version or a limit): integers from ``-(10**640 - 1)`` to ``10**640 - 1``.

Python refuses to turn an integer of more digits than ``sys.get_int_max_str_digits()`` into
text (4,300 by default, and never less than 640 when limited: ``sys.int_info``), so a larger
integer could not be printed in a message, a ``repr`` or the JSON every store writes. 640
digits hold under every setting. Integers beyond 64 bits stay exact: the stores keep them in
JSON and compare them in Python where SQL would compare them as floats.
"""
MAX_INT: Final = 10**MAX_INT_DIGITS - 1
"""The largest integer csmcore keeps (640 nines)."""
MIN_INT: Final = -MAX_INT
"""The smallest integer csmcore keeps."""
INT_RANGE_TEXT: Final = (
    f"integers of at most {MAX_INT_DIGITS} digits (csmcore._values.MAX_INT_DIGITS)"
)


def show(value: object, limit: int = 200) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters; an integer of more than
    :data:`MAX_INT_DIGITS` digits (which Python may refuse to print) is described by its size
    instead, and a failing ``repr`` by the type's name.

    >>> show(2**70)
    '1180591620717411303424'
    >>> show(-(10**5000))
    '-<an integer of 5001 digits>'
    """
    if type(value) is int:
        number = abs(value)
        if number <= MAX_INT:
            return str(value)
        digits = max(1, int((number.bit_length() - 1) * 0.30103))  # log10(2) digits per bit
        if number.bit_length() > 1_000_000:  # counting exactly would take a while: estimate
            size = f"about {digits} digits"
        else:
            while 10**digits <= number:
                digits += 1
            size = f"{digits} digits"
        return f"{'-' if value < 0 else ''}<an integer of {size}>"
    try:
        text = repr(value)
    except Exception:  # repr may fail (a huge int inside a container, an odd class)
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "CalendarError",
    "ConcurrencyError",
    "CsmError",
    "ErrorCode",
    "IdempotencyConflict",
    "InsufficientPoints",
    "InternalError",
    "InvalidTransition",
    "InvalidType",
    "LedgerCorrupt",
    "LimitError",
    "NaiveDatetimeError",
    "NoBusinessTimeError",
    "NotFound",
    "SchemaVersionError",
    "SerializationError",
    "StorageError",
    "UnknownTimezoneError",
    "UnsupportedRole",
    "ValidationError",
]


class ErrorCode(enum.StrEnum):
    """The stable reason codes of :attr:`CsmError.code` (values never change once released).

    Each error class has a default code (the first group below); a raiser that knows more gives
    a more precise one (the ticket groups). A ``StrEnum``: ``err.code == "ticket_closed"`` holds.
    Declared event types may refuse with codes of their own (plain strings).
    """

    # -- the default of each error class
    INVALID_VALUE = "invalid_value"
    """ValidationError: a value is not acceptable."""
    INVALID_TYPE = "invalid_type"
    """InvalidType: a value of a type the argument does not accept."""
    NAIVE_DATETIME = "naive_datetime"
    """NaiveDatetimeError: a datetime without tzinfo."""
    UNKNOWN_TIMEZONE = "unknown_timezone"
    """UnknownTimezoneError."""
    INVALID_CALENDAR = "invalid_calendar"
    """CalendarError."""
    NO_BUSINESS_TIME = "no_business_time"
    """NoBusinessTimeError."""
    MALFORMED_DATA = "malformed_data"
    """SerializationError: data could not be decoded (or encoded)."""
    INVALID_TRANSITION = "invalid_transition"
    """InvalidTransition without a more precise code (a declared event's refusal)."""
    NOT_FOUND = "not_found"
    """NotFound."""
    VERSION_CONFLICT = "version_conflict"
    """ConcurrencyError."""
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"
    """IdempotencyConflict."""
    INSUFFICIENT_POINTS = "insufficient_points"
    """InsufficientPoints."""
    STORAGE_FAILURE = "storage_failure"
    """StorageError."""
    SCHEMA_VERSION = "schema_version"
    """SchemaVersionError."""
    UNSUPPORTED_ROLE = "unsupported_role"
    """UnsupportedRole."""
    LEDGER_CORRUPT = "ledger_corrupt"
    """LedgerCorrupt: a loyalty ledger's stored entries break one of its invariants."""
    LIMIT_EXCEEDED = "limit_exceeded"
    """LimitError: input beyond a documented limit (nesting depth, size)."""
    INTERNAL_FAILURE = "internal_failure"
    """InternalError: an unexpected failure inside csmcore (a bug: report it)."""

    # -- InvalidTransition: why an event may not follow a ticket's history
    OUT_OF_ORDER = "out_of_order"
    """The event happens before the ticket's last event (``value``: the event)."""
    AFTER_MERGE = "after_merge"
    """The ticket was merged; nothing may follow."""
    TICKET_CLOSED = "ticket_closed"
    """A comment, status change or merge on a closed ticket (reopen it first)."""
    BACK_TO_NEW = "back_to_new"
    """A status change back to 'new'."""
    NOT_REOPENABLE = "not_reopenable"
    """A reopen of a ticket that is neither solved nor closed."""
    ALREADY_CREATED = "already_created"
    """A second TicketCreated."""
    NOT_CREATED_FIRST = "not_created_first"
    """A history whose first event is not a TicketCreated."""
    MERGE_INTO_SELF = "merge_into_self"
    """A ticket merged into itself."""

    # -- ValidationError raised by tickets
    EMPTY_HISTORY = "empty_history"
    """A ticket built from no events."""
    TICKET_ID_MISMATCH = "ticket_id_mismatch"
    """``Ticket(id=...)`` differs from its TicketCreated's ``ticket_id``."""
    NOT_AN_EVENT = "not_an_event"
    """Something that is not a declared ticket event was given as one."""
    UNKNOWN_NAME = "unknown_name"
    """A name that is not one of the accepted ones: an enum value (channel, role, priority,
    status), a status or priority name a map does not know (``value``: the name)."""
    INVALID_FIELD_VALUE = "invalid_field_value"
    """A custom field value of a type custom fields cannot hold, or not finite (``field``: the
    field name, ``value``: the value)."""
    UNSTORABLE_TEXT = "unstorable_text"
    """Text that no store could keep (NUL, lone surrogates) or an identifier over 255
    characters."""


class CsmError(Exception):
    """Root of every exception raised on purpose by csmcore.

    ``CsmError(message, *, code=None, ticket_id=None, event_index=None, field=None,
    value=None)``: the structured details (see the module documentation) are keyword-only
    attributes; ``code`` defaults to the class's :attr:`default_code`.
    """

    default_code: ErrorCode = ErrorCode.INVALID_VALUE
    """The ``code`` of an instance raised without one."""

    code: str
    ticket_id: str | None
    event_index: int | None
    field: str | None
    value: Any

    def __init__(
        self,
        *args: object,
        code: str | None = None,
        ticket_id: str | None = None,
        event_index: int | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(*args)
        self.code = self.default_code if code is None else code
        self.ticket_id = ticket_id
        self.event_index = event_index
        self.field = field
        self.value = value

    def details(self) -> dict[str, Any]:
        """The structured details as a dict: ``code``, ``ticket_id``, ``event_index``,
        ``field``, ``value`` (for logs and reject reports)."""
        return {
            "code": str(self.code),
            "ticket_id": self.ticket_id,
            "event_index": self.event_index,
            "field": self.field,
            "value": self.value,
        }


class ValidationError(CsmError, ValueError):
    """A value given to csmcore is not acceptable; the message says which and what is accepted."""


class InvalidType(ValidationError, TypeError):
    """A value of the wrong type was given (``SlaBook(calendar=0)``, ``HasTags([["a"]])``).

    Both a :class:`ValidationError` (so a ``ValueError``) and a ``TypeError``: code that catches
    either keeps working. The message names the argument, the value, its type and what is
    accepted; ``field`` is the argument and ``value`` the offending value.
    """

    default_code = ErrorCode.INVALID_TYPE


def _shown(value: object) -> str:
    """``repr(value)``, or a description when it cannot be printed (an integer of thousands
    of digits, whose ``repr`` Python refuses; a failing ``__repr__``)."""
    if type(value) is int and value.bit_length() > 2000:  # about 600 digits, always printable
        return show(value)  # "<an integer of 5001 digits>", as every other message says
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def invalid_type(argument: str, value: object, accepted: str) -> InvalidType:
    """The :class:`InvalidType` for ``argument=value``, which should have been ``accepted``."""
    return InvalidType(
        f"{argument}={_shown(value)} is a {type(value).__name__}; expected {accepted}",
        field=argument,
        value=value,
    )


class LimitError(ValidationError):
    """Input goes beyond a documented limit of csmcore (nesting depth, size); the public
    boundary also raises it for input nested deeper than Python can follow
    (``RecursionError``, kept as ``__cause__``)."""

    default_code = ErrorCode.LIMIT_EXCEEDED


class InternalError(CsmError, RuntimeError):
    """An unexpected failure inside csmcore, caught at the public boundary: a bug, never a
    verdict on the input. The original exception is the ``__cause__``; please report it with
    the traceback."""

    default_code = ErrorCode.INTERNAL_FAILURE


class NaiveDatetimeError(ValidationError):
    """A naive ``datetime`` (no ``tzinfo``) was passed where an aware one is required.

    ``argument`` names the parameter that was naive.
    """

    default_code = ErrorCode.NAIVE_DATETIME

    def __init__(self, argument: str, value: object) -> None:
        super().__init__(
            f"{argument}={value!r} is a naive datetime; csmcore needs timezone-aware datetimes "
            f"(for example {argument}.replace(tzinfo=ZoneInfo('Europe/Berlin')) "
            f"or datetime.now(timezone.utc))",
            field=argument,
            value=value,
        )
        self.argument = argument

    def __reduce__(self) -> tuple[type[NaiveDatetimeError], tuple[str, object]]:
        # pickle / copy rebuild from (argument, value), not from the formatted message
        return type(self), (self.argument, self.value)


class UnknownTimezoneError(ValidationError):
    """A time zone name is not in the IANA database (or not a fixed ``+HH:MM`` offset)."""

    default_code = ErrorCode.UNKNOWN_TIMEZONE


class CalendarError(ValidationError):
    """A business calendar definition is invalid (bad window, overlap, no open time...)."""

    default_code = ErrorCode.INVALID_CALENDAR


class NoBusinessTimeError(CsmError, ArithmeticError):
    """Business-time arithmetic ran out of open time within its bounded search horizon."""

    default_code = ErrorCode.NO_BUSINESS_TIME


class SerializationError(ValidationError):
    """Data could not be turned into a csmcore object (or back); the message names the path."""

    default_code = ErrorCode.MALFORMED_DATA


class InvalidTransition(ValidationError):
    """A change is not allowed in the current state (e.g. commenting on a closed ticket)."""

    default_code = ErrorCode.INVALID_TRANSITION


class NotFound(CsmError, LookupError):
    """The requested object does not exist."""

    default_code = ErrorCode.NOT_FOUND


class ConcurrencyError(CsmError):
    """A write carried an expected version that is no longer current."""

    default_code = ErrorCode.VERSION_CONFLICT


class IdempotencyConflict(CsmError):
    """An idempotency key was reused with a different payload."""

    default_code = ErrorCode.IDEMPOTENCY_CONFLICT


class InsufficientPoints(CsmError, ValueError):
    """A redemption asked for more points than the balance allows."""

    default_code = ErrorCode.INSUFFICIENT_POINTS


class LedgerCorrupt(CsmError, ValueError):
    """A loyalty ledger's entries break one of its invariants (found by ``verify`` or when
    stored entries are replayed); the message names the member, the entry and the rule."""

    default_code = ErrorCode.LEDGER_CORRUPT


class StorageError(CsmError):
    """A storage backend failed; the driver error is chained as ``__cause__``."""

    default_code = ErrorCode.STORAGE_FAILURE


class SchemaVersionError(StorageError):
    """A store was written by a newer csmcore than this one, or its schema is unknown."""

    default_code = ErrorCode.SCHEMA_VERSION


class UnsupportedRole(StorageError):
    """A store was asked for a storage role it does not offer (an optional role its adapter
    does not implement); the message names the store, the role and the roles it offers."""

    default_code = ErrorCode.UNSUPPORTED_ROLE
