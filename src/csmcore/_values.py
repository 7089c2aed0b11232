"""Small private helpers for validating values, shared by the domain modules."""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

from csmcore import errors as _errors
from csmcore.errors import (
    ErrorCode,
    InvalidType,
    SerializationError,
    ValidationError,
    invalid_type,
)

E = TypeVar("E", bound=enum.Enum)
UTC: Final = timezone.utc


def coerce_enum(
    cls: type[E],
    value: object,
    argument: str,
    *,
    what: str | None = None,
    error: type[ValidationError] = ValidationError,
) -> E:
    """``value`` as a member of ``cls`` (members and their values are accepted).

    Raises ``error`` naming ``argument``, the value and every accepted value.
    """
    if isinstance(value, cls):
        return value
    try:
        return cls(value)
    except (ValueError, TypeError):
        accepted = ", ".join(repr(member.value) for member in cls)
        raise error(
            f"{argument}={show(value)} is not a {what or cls.__name__}; accepted: {accepted}",
            code=ErrorCode.UNKNOWN_NAME,
            field=argument,
            value=value,
        ) from None


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can.

    Two things are refused everywhere so that every store keeps exactly what it is given:
    NUL (``"\\x00"``), which PostgreSQL text cannot hold, and lone surrogates
    (U+D800..U+DFFF), which are not characters and cannot be encoded as UTF-8.
    """
    if value.isascii():
        return "it contains NUL ('\\x00')" if "\x00" in value else None
    if "\x00" in value:
        return "it contains NUL ('\\x00')"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"it contains the lone surrogate {value[exc.start]!r} at index {exc.start}"
    return None


def check_text(value: str, argument: str, *, error: type[ValidationError] = ValidationError) -> str:
    """``value`` unchanged, or ``error`` naming ``argument`` when no store could keep it.

    >>> check_text("héllo ✓", "subject")
    'héllo ✓'
    >>> check_text("a\\x00b", "subject")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.ValidationError: subject='a\\x00b' cannot be stored: it contains NUL ...
    """
    problem = text_problem(value)
    if problem is not None:
        raise error(
            f"{argument}={value!r} cannot be stored: {problem}; text must be valid Unicode "
            "without NUL characters",
            code=ErrorCode.UNSTORABLE_TEXT,
            field=argument,
            value=value,
        )
    return value


MAX_IDENTIFIER_LENGTH: Final = 255
"""The longest ticket id, tag or store key, in characters.

Identifiers are indexed by every SQL store, and an index entry has a size limit (PostgreSQL's
B-tree refuses entries over about 2,700 bytes); 255 characters are at most 1,020 bytes of UTF-8,
so every store can keep and find any identifier the domain accepts. Jira labels have the same
limit.
"""


def check_identifier(
    value: str, argument: str, *, error: type[ValidationError] = ValidationError
) -> str:
    """``value`` unchanged when it is storable text of at most 255 characters, else ``error``.

    >>> check_identifier("T-1", "ticket_id")
    'T-1'
    >>> check_identifier("x" * 256, "ticket_id")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.ValidationError: ticket_id=... is 256 characters long; ...
    """
    if len(value) > MAX_IDENTIFIER_LENGTH:
        raise error(
            f"{argument}={value[:40]!r}... is {len(value)} characters long; ticket ids, tags "
            f"and store keys are at most {MAX_IDENTIFIER_LENGTH} characters",
            code=ErrorCode.UNSTORABLE_TEXT,
            field=argument,
            value=value,
        )
    return check_text(value, argument, error=error)


# The integer range and ``show`` live in csmcore.errors (the bottom layer: every message
# needs them, and csmcore._time and csmcore._boundary may not import this module); the names
# here are the ones the domain modules import.
MAX_INT_DIGITS: Final = _errors.MAX_INT_DIGITS
MAX_INT: Final = _errors.MAX_INT
MIN_INT: Final = _errors.MIN_INT
INT_RANGE_TEXT: Final = _errors.INT_RANGE_TEXT
show = _errors.show


def check_iterable(value: object, argument: str, accepted: str) -> Iterable[Any]:
    """``value`` when it is an iterable other than text (``str``, ``bytes``), else
    :class:`~csmcore.errors.InvalidType` naming ``argument``, the value and ``accepted``.

    >>> check_iterable(None, "tickets", "an iterable of Ticket")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.InvalidType: tickets=None is a NoneType; expected an iterable of Ticket
    """
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise invalid_type(argument, value, accepted)
    return value


def frozen_set(value: Iterable[Any], argument: str, accepted: str) -> frozenset[Any]:
    """``frozenset(value)``; for an item that cannot be in a set (a list, a dict), an
    :class:`~csmcore.errors.InvalidType` naming ``argument``, the item and what is
    ``accepted`` instead of Python's ``unhashable type``.

    >>> sorted(frozen_set(["a", "b", "a"], "tags", "tags (strings)"))
    ['a', 'b']
    >>> frozen_set(["a", ["b"]], "tags", "tags (strings)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.InvalidType: tags holds ['b'], a list; expected tags (strings)
    """
    try:
        return frozenset(value)
    except TypeError as err:
        for item in value if isinstance(value, Collection) else ():
            try:
                hash(item)
            except TypeError:
                raise InvalidType(
                    f"{argument} holds {show(item)}, a {type(item).__name__}; expected {accepted}",
                    field=argument,
                    value=value,
                ) from err
        raise InvalidType(
            f"{argument}={show(value)} holds an item that cannot be in a set; expected {accepted}",
            field=argument,
            value=value,
        ) from err


def int_problem(value: int) -> str | None:
    """Why the integer ``value`` cannot be kept, or None when it has at most 640 digits."""
    if MIN_INT <= value <= MAX_INT:
        return None
    return f"is outside the {INT_RANGE_TEXT}"


def check_int(
    value: int,
    argument: str,
    *,
    code: ErrorCode = ErrorCode.INVALID_VALUE,
) -> int:
    """``value`` unchanged when it has at most :data:`MAX_INT_DIGITS` digits, else
    ValidationError naming ``argument``, the value's size and the accepted range.

    >>> check_int(2**70, "value")
    1180591620717411303424
    >>> check_int(10**640, "value")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.ValidationError: value=<an integer of 641 digits> is outside the integers ...
    """
    if MIN_INT <= value <= MAX_INT:
        return value
    raise ValidationError(
        f"{argument}={show(value)} is outside the {INT_RANGE_TEXT}",
        code=code,
        field=argument,
        value=value,
    )


def as_utc(value: datetime) -> datetime:
    """``value`` (aware) in UTC, as a plain ``datetime`` (not a subclass)."""
    at = value.astimezone(UTC)
    if type(at) is not datetime:  # a subclass (pandas.Timestamp...): keep a plain datetime
        at = datetime(at.year, at.month, at.day, at.hour, at.minute, at.second, at.microsecond, UTC)
    return at


# -- the JSON form of custom field values --------------------------------------------------

DATETIME_KEY: Final = "$datetime"
DECIMAL_KEY: Final = "$decimal"


def field_value_to_data(value: Any) -> Any:
    """The JSON-safe form of a custom field value: itself for a string, number, bool or None;
    ``{"$datetime": "<ISO 8601, UTC>"}`` for a datetime; ``{"$decimal": "<str(value)>"}`` for
    a Decimal (exact: ``Decimal("1.10")`` keeps its trailing zero)."""
    kind = type(value)
    if kind is datetime:
        return {DATETIME_KEY: value.isoformat()}
    if kind is Decimal:
        return {DECIMAL_KEY: str(value)}
    return value


def field_value_from_data(value: Any, argument: str = "value") -> Any:
    """The custom field value of its JSON form (the inverse of :func:`field_value_to_data`);
    ValidationError naming ``argument`` for a mapping that is not one of the two forms."""
    if type(value) is not dict:
        return value
    if len(value) == 1:
        if DATETIME_KEY in value:
            text = value[DATETIME_KEY]
            if isinstance(text, str):
                try:
                    at = datetime.fromisoformat(text)
                except ValueError:
                    pass
                else:
                    if at.tzinfo is not None:
                        return at if at.tzinfo is UTC else as_utc(at)
        elif DECIMAL_KEY in value:
            text = value[DECIMAL_KEY]
            if isinstance(text, str):
                try:
                    number = Decimal(text)
                except InvalidOperation:
                    pass
                else:
                    if number.is_finite():
                        return number
    raise ValidationError(
        f"{argument}={value!r} is not a custom field value; a mapping must be "
        '{"$datetime": "<aware ISO 8601>"} or {"$decimal": "<finite number>"}',
        code=ErrorCode.INVALID_FIELD_VALUE,
        field=argument,
        value=value,
    )


def instance_of(cls: type, accepted: str) -> Any:
    """An attrs validator: the value must be an instance of ``cls``, else
    :class:`~csmcore.errors.InvalidType` naming the attribute and saying ``accepted``."""

    def check(_: object, attribute: Any, value: object) -> None:
        if not isinstance(value, cls):
            raise invalid_type(attribute.alias or attribute.name, value, accepted)

    return check


def is_bool(_: object, attribute: Any, value: object) -> None:
    """An attrs validator: the value must be a ``bool`` (``0`` and ``1`` are not)."""
    if type(value) is not bool:
        raise invalid_type(attribute.alias or attribute.name, value, "True or False")


def check_keys(
    data: Mapping[Any, Any],
    accepted: Collection[str],
    required: Iterable[str],
    *,
    unknown: str = "unknown keys",
    where: str = "",
) -> None:
    """Check the keys of ``data``, a mapping read at ``$``: SerializationError for a key not
    ``accepted`` (``"$: unknown keys [...]; accepted: [...]"``, with ``unknown`` for the
    first words and ``where`` after the list), else for the first ``required`` key missing
    (``"$.<key>: required field missing"``)."""
    extra = set(data) - set(accepted)
    if extra:
        raise SerializationError(
            f"$: {unknown} {sorted(extra, key=repr)}{where}; accepted: {sorted(accepted)}"
        )
    for key in required:
        if key not in data:
            raise SerializationError(f"$.{key}: required field missing")
