"""The one cattrs converter that turns csmcore objects into JSON-safe data and back.

The package documentation (:mod:`csmcore.serialization`) describes it; this module holds the
converter, its hooks for the standard types, and ``to_data`` / ``from_data``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import cattrs
from cattrs.errors import BaseValidationError

from csmcore._time import require_aware
from csmcore.errors import CsmError, SerializationError

__all__ = ["converter", "describe_error", "from_data", "to_data"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
"""The shared converter. Register hooks for your own types on it if you extend csmcore."""


def _structure_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        return require_aware(value, "datetime")
    if not isinstance(value, str):
        raise SerializationError(f"{value!r} is not an ISO 8601 datetime string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise SerializationError(f"{value!r} is not an ISO 8601 datetime string") from err
    return require_aware(parsed, "datetime")


def _structure_date(value: Any, _: type) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise SerializationError(f"{value!r} is not an ISO 8601 date string (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise SerializationError(f"{value!r} is not an ISO 8601 date string (YYYY-MM-DD)") from err


def _structure_timedelta(value: Any, _: type) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SerializationError(f"{value!r} is not a duration in seconds (a number)")
    return timedelta(seconds=value)


def _unstructure_timedelta(value: timedelta) -> int | float:
    whole, micro = divmod(value // timedelta(microseconds=1), 1_000_000)
    return whole if micro == 0 else whole + micro / 1_000_000


def _structure_decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SerializationError(f"{value!r} is not a decimal string such as '12.50'")
    try:
        number = Decimal(value)
    except ArithmeticError as err:
        raise SerializationError(f"{value!r} is not a decimal string such as '12.50'") from err
    if not number.is_finite():  # NaN / Infinity are no amount of money or points
        raise SerializationError(f"{value!r} is not a finite decimal; expected e.g. '12.50'")
    return number


converter.register_unstructure_hook(datetime, lambda v: v.isoformat())
converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook(date, lambda v: v.isoformat())
converter.register_structure_hook(date, _structure_date)
converter.register_unstructure_hook(timedelta, _unstructure_timedelta)
converter.register_structure_hook(timedelta, _structure_timedelta)
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, _structure_decimal)


def to_data(obj: object) -> Any:
    """Turn a csmcore object into JSON-safe data (``dict``, ``list``, ``str``, numbers, ...)."""
    try:
        return converter.unstructure(obj)
    except CsmError:
        raise
    except (TypeError, ValueError) as err:
        raise SerializationError(f"cannot serialise {obj!r}: {err}") from err


def describe_error(err: BaseException) -> str:
    if isinstance(err, BaseValidationError):
        return "; ".join(cattrs.transform_error(err, format_exception=_format_leaf))
    return str(err)


def _format_leaf(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, CsmError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown keys {sorted(exc.extra_fields)}"
    name = getattr(type_, "__name__", repr(type_))
    return f"invalid value for {name} ({exc})"


def from_data(data: Any, cls: type[T]) -> T:
    """Rebuild an object of type ``cls`` from data made by :func:`to_data` (or by hand).

    Raises :class:`~csmcore.errors.SerializationError` naming the path of each bad value.
    """
    try:
        return converter.structure(data, cls)
    except SerializationError:
        raise
    except (BaseValidationError, CsmError, TypeError, ValueError, KeyError) as err:
        raise SerializationError(
            f"cannot build {getattr(cls, '__name__', cls)} from data: {describe_error(err)}"
        ) from err
