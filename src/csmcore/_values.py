"""Small private helpers for validating values, shared by the domain modules."""

from __future__ import annotations

import enum
from typing import Final, TypeVar

from csmcore.errors import ErrorCode, ValidationError

E = TypeVar("E", bound=enum.Enum)


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
            f"{argument}={value!r} is not a {what or cls.__name__}; accepted: {accepted}",
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
