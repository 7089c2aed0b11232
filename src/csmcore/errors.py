"""The csmcore exception family.

Every error csmcore raises on purpose is a :class:`CsmError`. Each subclass also derives from the
matching builtin exception, so ``except ValueError`` keeps working in code that does not know about
csmcore. Messages name the offending value and say what would have been accepted.
"""

from __future__ import annotations

__all__ = [
    "CalendarError",
    "ConcurrencyError",
    "CsmError",
    "IdempotencyConflict",
    "InsufficientPoints",
    "InvalidTransition",
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


class CsmError(Exception):
    """Root of every exception raised on purpose by csmcore."""


class ValidationError(CsmError, ValueError):
    """A value given to csmcore is not acceptable; the message says which and what is accepted."""


class NaiveDatetimeError(ValidationError):
    """A naive ``datetime`` (no ``tzinfo``) was passed where an aware one is required.

    ``argument`` names the parameter that was naive.
    """

    def __init__(self, argument: str, value: object) -> None:
        self.argument = argument
        self.value = value
        super().__init__(
            f"{argument}={value!r} is a naive datetime; csmcore needs timezone-aware datetimes "
            f"(for example {argument}.replace(tzinfo=ZoneInfo('Europe/Berlin')) "
            f"or datetime.now(timezone.utc))"
        )

    def __reduce__(self) -> tuple[type[NaiveDatetimeError], tuple[str, object]]:
        # pickle / copy rebuild from (argument, value), not from the formatted message
        return type(self), (self.argument, self.value)


class UnknownTimezoneError(ValidationError):
    """A time zone name is not in the IANA database (or not a fixed ``+HH:MM`` offset)."""


class CalendarError(ValidationError):
    """A business calendar definition is invalid (bad window, overlap, no open time...)."""


class NoBusinessTimeError(CsmError, ArithmeticError):
    """Business-time arithmetic ran out of open time within its bounded search horizon."""


class SerializationError(ValidationError):
    """Data could not be turned into a csmcore object (or back); the message names the path."""


class InvalidTransition(ValidationError):
    """A change is not allowed in the current state (e.g. commenting on a closed ticket)."""


class NotFound(CsmError, LookupError):
    """The requested object does not exist."""


class ConcurrencyError(CsmError):
    """A write carried an expected version that is no longer current."""


class IdempotencyConflict(CsmError):
    """An idempotency key was reused with a different payload."""


class InsufficientPoints(CsmError, ValueError):
    """A redemption asked for more points than the balance allows."""


class StorageError(CsmError):
    """A storage backend failed; the driver error is chained as ``__cause__``."""


class SchemaVersionError(StorageError):
    """A store was written by a newer csmcore than this one, or its schema is unknown."""


class UnsupportedRole(StorageError):
    """A store was asked for a storage role it does not offer (an optional role its adapter
    does not implement); the message names the store, the role and the roles it offers."""
