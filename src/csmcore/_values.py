"""Small private helpers for validating values, shared by the domain modules."""

from __future__ import annotations

import enum
from typing import TypeVar

from csmcore.errors import ValidationError

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
            f"{argument}={value!r} is not a {what or cls.__name__}; accepted: {accepted}"
        ) from None
