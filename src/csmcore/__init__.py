"""csmcore: customer service management primitives.

Business calendars, tickets, SLA policies, escalation rules, loyalty points and KPI calculations
as small, typed, immutable objects with pluggable storage. See the README and ``docs/``.
"""

from __future__ import annotations

from csmcore import errors, serialization
from csmcore.calendars import WEEKDAYS, BusinessCalendar, CountryHolidays
from csmcore.clock import Clock, FixedClock, SystemClock
from csmcore.errors import (
    CalendarError,
    ConcurrencyError,
    CsmError,
    IdempotencyConflict,
    InsufficientPoints,
    InvalidTransition,
    NaiveDatetimeError,
    NoBusinessTimeError,
    NotFound,
    SchemaVersionError,
    SerializationError,
    StorageError,
    UnknownTimezoneError,
    ValidationError,
)
from csmcore.serialization import from_data, to_data

__version__ = "0.1.0.dev0"

__all__ = [
    "WEEKDAYS",
    "BusinessCalendar",
    "CalendarError",
    "Clock",
    "ConcurrencyError",
    "CountryHolidays",
    "CsmError",
    "FixedClock",
    "IdempotencyConflict",
    "InsufficientPoints",
    "InvalidTransition",
    "NaiveDatetimeError",
    "NoBusinessTimeError",
    "NotFound",
    "SchemaVersionError",
    "SerializationError",
    "StorageError",
    "SystemClock",
    "UnknownTimezoneError",
    "ValidationError",
    "__version__",
    "errors",
    "from_data",
    "serialization",
    "to_data",
]
