"""The one cattrs converter that turns csmcore objects into JSON-safe data and back.

The package documentation (:mod:`csmcore.serialization`) describes it; this module holds the
converter, its hooks for the standard types, and ``to_data`` / ``from_data``.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import BaseValidationError

from csmcore._boundary import exempt, guarded, inline, translate
from csmcore._time import require_aware
from csmcore.errors import CsmError, SerializationError

__all__ = [
    "MAX_NESTING_DEPTH",
    "check_depth",
    "converter",
    "describe_error",
    "from_data",
    "to_data",
]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
"""The shared converter. Register hooks for your own types on it if you extend csmcore."""

MAX_NESTING_DEPTH = 100
"""The deepest nesting of lists and mappings that :func:`from_data` reads (the top value is
level 1). Deeper data is refused with :class:`~csmcore.errors.SerializationError` before any
object is built, so untrusted data cannot exhaust the interpreter's stack."""

_TD_MIN_SECONDS = timedelta.min // timedelta(seconds=1)  # -86_399_999_913_600, exact
_TD_MAX_SECONDS = timedelta.max.total_seconds()  # rounds up; timedelta() refuses the excess
_TD_MIN_US = timedelta.min // timedelta(microseconds=1)
_TD_MAX_US = timedelta.max // timedelta(microseconds=1)
_DURATION_TEXT = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,6})?")
_DURATION_RANGE = (
    "between -86399999913600 and 86399999999999.999999 (the range of datetime.timedelta)"
)


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
    """A duration from its exact text form (``"90.5"``, what this release writes) or from a
    number of seconds (what releases up to 0.1 wrote; a float is read as they read it)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return _duration_from_text(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SerializationError(
            f"{_short(value)} is not a duration in seconds; expected a decimal string such as "
            "'90.5' (or a number, as releases up to 0.1 wrote)"
        )
    if (isinstance(value, float) and not math.isfinite(value)) or not (
        _TD_MIN_SECONDS <= value <= _TD_MAX_SECONDS
    ):
        raise SerializationError(_duration_range_message(value))
    try:
        return timedelta(seconds=value)
    except OverflowError as err:  # a float at the very edge of the range may round outside it
        raise SerializationError(_duration_range_message(value)) from err


def _duration_from_text(value: str) -> timedelta:
    if not _DURATION_TEXT.fullmatch(value):
        raise SerializationError(
            f"{_short(value)} is not a duration in seconds; expected a decimal string with at "
            "most 6 decimals, such as '90.5' or '-0.000001'"
        )
    whole, _, fraction = value.partition(".")
    us = abs(int(whole)) * 1_000_000 + int(fraction.ljust(6, "0") or "0")
    if whole.startswith("-"):
        us = -us
    if not _TD_MIN_US <= us <= _TD_MAX_US:
        raise SerializationError(f"{value!r} is not a duration in seconds {_DURATION_RANGE}")
    return timedelta(microseconds=us)


def _duration_range_message(value: int | float) -> str:
    shown = f"{value!r}" if isinstance(value, float) or abs(value) < 10**30 else "a huge integer"
    return f"{shown} is not a finite duration in seconds {_DURATION_RANGE}"


def _unstructure_timedelta(value: timedelta) -> str:
    """The exact text form of a duration: decimal seconds, at most 6 decimals, no trailing
    zeros (``"3600"``, ``"90.5"``, ``"-0.000001"``)."""
    us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    whole, micro = divmod(abs(us), 1_000_000)
    sign = "-" if us < 0 else ""
    if micro == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{micro:06d}".rstrip("0")


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


def _structure_attrs_factory(cls: type) -> Callable[[Any, type], Any]:
    """The default attrs hook, guarded so that data of the wrong shape gets a clear error.

    The guard costs nothing on good data: the shape is only examined once the generated hook
    has failed. Domain modules that register their own hook for a class take precedence.
    """
    inner: Callable[[Any, type], Any] = converter.gen_structure_attrs_fromdict(cls)
    name = cls.__name__

    def hook(value: Any, cl: type) -> Any:
        try:
            return inner(value, cl)
        except BaseValidationError:
            raise
        except Exception as err:
            if not isinstance(value, Mapping):
                raise SerializationError(
                    f"expected a mapping of {name} fields, got {type(value).__name__}"
                ) from err
            bad = [key for key in value if not isinstance(key, str)]
            if bad:
                raise SerializationError(
                    f"keys of a {name} mapping must be strings; got {_short(bad[0])}"
                ) from err
            raise

    return hook


def _short(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters; ``repr`` failures give the type name."""
    try:
        text = repr(value)
    except Exception:  # a repr may fail (huge int, exhausted stack); the type still helps
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _structure_enum(value: Any, cls: type[enum.Enum]) -> enum.Enum:
    """An enum member from its value; an unknown value is refused naming the values accepted
    (cattrs' own message said only "not a valid SlaMetric")."""
    try:
        return cls(value)
    except ValueError:
        accepted = ", ".join(repr(member.value) for member in cls)
        raise ValueError(f"{_short(value)} is not a {cls.__name__}; accepted: {accepted}") from None


def _structure_bool(value: Any, _: type) -> bool:
    """A flag only from a boolean: cattrs' default, ``bool(value)``, read ``"false"`` and
    ``"no"`` as True."""
    if isinstance(value, bool):
        return value
    raise ValueError(f"{_short(value)} is not a boolean; accepted: true, false (without quotes)")


converter.register_structure_hook_factory(attrs.has, _structure_attrs_factory)
converter.register_structure_hook(bool, _structure_bool)
# StrEnum too: its MRO puts str before Enum, and str's hook would be found first
for _base in (enum.Enum, enum.StrEnum, enum.IntEnum):
    converter.register_structure_hook(_base, _structure_enum)
del _base
converter.register_unstructure_hook(datetime, lambda v: v.isoformat())
converter.register_structure_hook(datetime, _structure_datetime)
converter.register_unstructure_hook(date, lambda v: v.isoformat())
converter.register_structure_hook(date, _structure_date)
converter.register_unstructure_hook(timedelta, _unstructure_timedelta)
converter.register_structure_hook(timedelta, _structure_timedelta)
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(Decimal, _structure_decimal)


@inline("to_data")
def to_data(obj: object) -> Any:
    """Turn a csmcore object into JSON-safe data (``dict``, ``list``, ``str``, numbers, ...).

    Raises :class:`~csmcore.errors.SerializationError` (with the original failure as
    ``__cause__``) for an object the converter cannot turn into data.
    """
    try:
        return converter.unstructure(obj)
    except MemoryError:
        raise
    except Exception as err:  # the public boundary (csmcore._boundary), inline
        raise translate(
            err,
            "to_data",
            kind=SerializationError,
            fallback=SerializationError,
            message=f"cannot serialise {_short(obj)}: {type(err).__name__}: {_safe_str(err)}",
        ) from err


def _safe_str(err: BaseException) -> str:
    try:
        return str(err)
    except Exception:
        return type(err).__name__


_CONTAINERS = frozenset((list, tuple, dict))


@guarded
def check_depth(data: Any, limit: int = MAX_NESTING_DEPTH) -> None:
    """Refuse ``data`` whose lists and dicts nest deeper than ``limit`` levels (the top is 1).

    Walks the data level by level without recursion, so any depth is examined safely and
    cheaply (about a tenth of the time structuring the same data takes). Raises
    :class:`~csmcore.errors.SerializationError` naming the limit.
    """
    if type(data) not in _CONTAINERS:
        return
    level: list[Any] = [data]
    depth = 1
    while True:
        below: list[Any] = []
        for node in level:
            below += [
                child
                for child in (node.values() if type(node) is dict else node)
                if type(child) in _CONTAINERS
            ]
        if not below:
            return
        if depth >= limit:
            raise SerializationError(
                f"$: data nests lists and mappings deeper than the limit of {limit} "
                f"levels (csmcore.serialization.MAX_NESTING_DEPTH)"
            )
        depth += 1
        level = below


@exempt("describes an exception for a message; it never raises")
def describe_error(err: BaseException) -> str:
    """A one-line description of a structuring failure, each leaf prefixed by its path."""
    if isinstance(err, BaseValidationError):
        return "; ".join(cattrs.transform_error(err, format_exception=_format_leaf))
    if isinstance(err, CsmError | TypeError | ValueError | KeyError):
        return str(err)
    return f"{type(err).__name__}: {_safe_str(err)}"


def _format_leaf(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, CsmError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        odd = [key for key in exc.extra_fields if not isinstance(key, str)]
        if odd:
            return f"keys must be strings; got {_short(odd[0])}"
        return f"unknown keys {sorted(exc.extra_fields)}"
    name = getattr(type_, "__name__", repr(type_))
    return f"invalid value for {name} ({exc})"


@inline("from_data")
def from_data(data: Any, cls: type[T]) -> T:
    """Rebuild an object of type ``cls`` from data made by :func:`to_data` (or by hand).

    Data may be untrusted (read from a file or a request): whatever is wrong with it, the only
    exception is :class:`~csmcore.errors.SerializationError`, naming the path of each bad value
    where it is known, with the lower-level failure as ``__cause__``. Data nested deeper than
    :data:`MAX_NESTING_DEPTH` levels is refused before anything is built.
    """
    check_depth(data)
    try:
        return converter.structure(data, cls)
    except SerializationError as err:
        if type(err) is SerializationError and not str(err).startswith("$"):
            # a failure of the top value; the lower-level failure stays the cause
            raise SerializationError(f"$: {err}") from (err.__cause__ or err)
        raise
    except MemoryError:
        raise
    except Exception as err:  # the public boundary (csmcore._boundary), inline
        raise translate(
            err,
            "from_data",
            kind=SerializationError,
            fallback=SerializationError,
            message=f"{'' if isinstance(err, BaseValidationError) else '$: '}cannot build "
            f"{getattr(cls, '__name__', cls)} from data: {_describe_safely(err)}",
        ) from err


def _describe_safely(err: BaseException) -> str:
    try:
        return describe_error(err)
    except Exception:  # describing must not fail in its turn (odd keys, huge values)
        return f"{type(err).__name__}: {_safe_str(err)}"
