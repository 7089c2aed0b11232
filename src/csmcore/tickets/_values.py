"""Values and field checks shared by ticket events: :class:`FrozenMap`, custom fields, tags,
and the attrs converters and validators of event fields."""

from __future__ import annotations

import enum
import math
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    ValuesView,
)
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Final, Generic, TypeAlias, TypeVar

from csmcore._boundary import guard_class
from csmcore._time import MAX_INSTANT, MIN_INSTANT, in_range_us, require_aware
from csmcore._values import (
    DATETIME_KEY,
    DECIMAL_KEY,
    MAX_INT,
    MIN_INT,
    as_utc,
    check_identifier,
    check_text,
    field_value_from_data,
    field_value_to_data,
    frozen_set,
    int_problem,
    show,
)
from csmcore.errors import ErrorCode, ValidationError, invalid_type
from csmcore.tickets._enums import PRIORITY_VALUES, STATUS_VALUES, coerce

__all__ = [
    "DATETIME_KEY",
    "DECIMAL_KEY",
    "EMPTY_FIELDS",
    "UTC",
    "FieldValue",
    "FrozenMap",
    "boolean",
    "check_field_value",
    "check_priority_name",
    "check_status_name",
    "field_map",
    "field_value_from_data",
    "field_value_to_data",
    "fields_from_data",
    "fields_to_data",
    "identifier",
    "instant",
    "optional_text",
    "sort_key",
    "string",
    "tag_set",
    "text",
    "to_added",
    "to_changes",
    "to_fields",
    "to_removed",
    "to_tags",
]

UTC: Final = timezone.utc

FieldValue: TypeAlias = str | int | float | bool | Decimal | datetime | None
"""A custom field value: a string, a number (int, float, ``decimal.Decimal``; finite), a
boolean, an aware datetime (kept in UTC), or None (unset)."""

_K = TypeVar("_K")
_V = TypeVar("_V")


@guard_class
class FrozenMap(Mapping[_K, _V], Generic[_K, _V]):
    """An immutable, hashable mapping; equal to any mapping with the same items.

    Keys keep the order given (csmcore sorts them when it builds one).
    """

    __slots__ = ("_data", "_hash", "_plain")

    def __init__(self, data: Mapping[_K, _V] | Iterable[tuple[_K, _V]] = ()) -> None:
        self._data: dict[_K, _V] = dict(data)
        self._hash: int | None = None
        # True when known to hold no datetime or Decimal (set by field_map): JSON as it is
        self._plain = False

    def __getitem__(self, key: _K) -> _V:
        return self._data[key]

    def __iter__(self) -> Iterator[_K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def get(self, key: _K, default: Any = None) -> Any:
        """The value for ``key``, or ``default`` when it is absent."""
        return self._data.get(key, default)

    # The views of the inner dict (read-only, like every dict view): the Mapping mixins'
    # pure-Python views made ``None in fields.values()`` (each TicketCreated folded) about
    # 1.7 µs for 19 fields; the dict's own view takes 0.5 µs.
    def keys(self) -> KeysView[_K]:
        """A read-only view of the keys."""
        return self._data.keys()

    def values(self) -> ValuesView[_V]:
        """A read-only view of the values."""
        return self._data.values()

    def items(self) -> ItemsView[_K, _V]:
        """A read-only view of the ``(key, value)`` pairs."""
        return self._data.items()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FrozenMap):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def to_dict(self) -> dict[_K, _V]:
        """A new plain ``dict`` with the same items."""
        return dict(self._data)


EMPTY_FIELDS: Final[FrozenMap[str, FieldValue]] = FrozenMap()
EMPTY_FIELDS._plain = True


_FIELDS_HOLD: Final = (
    "strings, finite numbers (int of at most 640 digits, float, Decimal), booleans, aware "
    "datetimes or None"
)


def _field_error(name: str, value: object, argument: str, why: str) -> ValidationError:
    return ValidationError(
        f"{argument}[{name!r}]={show(value)} {why}; custom fields hold {_FIELDS_HOLD}",
        code=ErrorCode.INVALID_FIELD_VALUE,
        field=name,
        value=value,
    )


def _check_other(name: str, value: object, argument: str) -> FieldValue:
    """A field value of a type other than the common exact str, int, bool, None."""
    if isinstance(value, str):
        return check_text(value, f"{argument}[{name!r}]")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        problem = int_problem(value)
        if problem is not None:
            raise _field_error(name, value, argument, problem)
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _field_error(name, value, argument, "is not a finite number")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _field_error(name, value, argument, "is not a finite number")
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _field_error(name, value, argument, "is a naive datetime")
        return value if value.tzinfo is UTC and type(value) is datetime else as_utc(value)
    raise _field_error(name, value, argument, f"is a {type(value).__name__}")


def check_field_value(name: str, value: object, argument: str) -> FieldValue:
    """One custom field value, checked; ValidationError naming ``argument[name]``.

    An aware datetime is converted to UTC (as event instants are), so that it compares and
    round-trips exactly; a naive one, a NaN or infinite number, or another type is refused.
    """
    if type(value) is str:
        if value.isascii() and "\x00" not in value:
            return value
    elif (
        value is None
        or (type(value) is int and MIN_INT <= value <= MAX_INT)
        or type(value) is bool
        or (type(value) is float and math.isfinite(value))
    ):
        return value
    return _check_other(name, value, argument)


def field_map(value: object, argument: str) -> FrozenMap[str, FieldValue]:
    """A mapping of custom fields, checked and sorted by name."""
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"{argument}={value!r} is a {type(value).__name__}; expected a mapping of "
            "field name to value",
            field=argument,
            value=value,
        )
    if not value:
        return EMPTY_FIELDS
    try:
        names = sorted(value)
    except TypeError:  # keys of mixed types: the loop below names the bad one
        names = sorted(value, key=sort_key)
    items = []
    plain = True
    for name in names:
        if type(name) is not str or not name or not name.isascii() or "\x00" in name:
            if not isinstance(name, str) or not name:
                raise ValidationError(
                    f"{argument} has the key {name!r}; custom field names are non-empty strings",
                    field=argument,
                    value=name,
                )
            check_text(name, f"{argument} key")
        checked = check_field_value(name, value[name], argument)
        if type(checked) is datetime or type(checked) is Decimal:
            plain = False
        items.append((name, checked))
    fields = FrozenMap(items)
    fields._plain = plain
    return fields


def fields_to_data(fields: FrozenMap[str, FieldValue]) -> dict[str, Any]:
    """The JSON-safe form of a map of custom fields (see :func:`field_value_to_data`)."""
    data = fields.to_dict()
    if fields._plain:
        return data
    for name, value in data.items():
        kind = type(value)
        if kind is datetime or kind is Decimal:
            data[name] = field_value_to_data(value)
    return data


def fields_from_data(data: Mapping[str, Any], argument: str) -> dict[str, Any]:
    """``data`` (a JSON object of custom fields) with tagged values decoded; unchecked."""
    out = None
    for name, value in data.items():
        if type(value) is dict:
            if out is None:
                out = dict(data)
            out[name] = field_value_from_data(value, f"{argument}[{name!r}]")
    return dict(data) if out is None else out


def to_fields(value: object) -> FrozenMap[str, FieldValue]:
    """Converter of ``fields``."""
    return field_map(value, "fields")


def to_changes(value: object) -> FrozenMap[str, FieldValue]:
    """Converter of ``changes``."""
    return field_map(value, "changes")


def sort_key(value: object) -> tuple[str, str]:
    """A sort key that orders keys of mixed types (by type name, then text)."""
    return (type(value).__name__, str(value))


_E = TypeVar("_E", bound=enum.Enum)


def custom_names(value: object, kind: type[_E], by_value: Mapping[str, _E]) -> FrozenMap[str, _E]:
    """The ``custom`` names of a :class:`PriorityMap` or :class:`StatusMap` (``kind``, whose
    members ``by_value`` names): each a non-empty storable string mapped to a category, a
    category's own value only to itself; sorted. The errors name ``"custom"`` and the bad
    value as their ``field`` and ``value``."""
    noun = kind.__name__.lower()
    if isinstance(value, FrozenMap):
        value = value.to_dict()
    if not isinstance(value, Mapping):
        raise ValidationError(
            f"custom={value!r} is not a mapping of custom {noun} name to {noun} category",
            field="custom",
            value=value,
        )
    items = []
    for name in sorted(value, key=sort_key):
        if not isinstance(name, str) or not name:
            raise ValidationError(
                f"custom {noun} name {name!r} is not a non-empty string",
                field="custom",
                value=name,
            )
        check_text(name, f"custom {noun} name")
        category = coerce(kind, value[name], f"custom[{name!r}]")
        if name in by_value and by_value[name] is not category:
            raise ValidationError(
                f"custom[{name!r}]={category.value!r}: {name!r} is the name of the category "
                f"{name!r} itself and cannot map to another one",
                field="custom",
                value=name,
            )
        items.append((name, category))
    return FrozenMap(items)


def tag_set(value: object, argument: str) -> frozenset[str]:
    """A collection of tags, checked (a bare string is refused)."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(
            f"{argument}={value!r} is not a collection of tags; pass e.g. "
            f"{{'vip', 'billing'}} (a bare string is not accepted)"
        )
    tags = frozen_set(value, argument, "tags (non-empty strings)")
    for tag in tags:
        if not isinstance(tag, str) or not tag or tag != tag.strip():
            raise ValidationError(
                f"{argument} holds {tag!r}; a tag is a non-empty string without leading or "
                "trailing whitespace"
            )
        check_identifier(tag, f"{argument} tag")
    return tags


def to_tags(value: object) -> frozenset[str]:
    """Converter of ``tags``."""
    return tag_set(value, "tags")


def to_added(value: object) -> frozenset[str]:
    """Converter of ``added``."""
    return tag_set(value, "added")


def to_removed(value: object) -> frozenset[str]:
    """Converter of ``removed``."""
    return tag_set(value, "removed")


def instant(value: object) -> datetime:
    """Converter of ``at``: an aware instant in UTC (NaiveDatetimeError for a naive one,
    ValidationError for one outside ``[MIN_INSTANT, MAX_INSTANT)``)."""
    if type(value) is datetime and value.tzinfo is UTC and MIN_INSTANT <= value < MAX_INSTANT:
        return value
    in_range_us(require_aware(value, "at"), "at")  # type: ignore[arg-type]
    return value.astimezone(UTC)  # type: ignore[attr-defined,no-any-return]


def text(argument: str, rule: Callable[[str, str], str] = check_text) -> Any:
    """A validator for non-empty, storable text."""

    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, str):
            raise invalid_type(argument, value, "a non-empty string")
        if not value:
            raise ValidationError(
                f"{argument}={value!r} is not a non-empty string", field=argument, value=value
            )
        rule(value, argument)

    return check


def identifier(argument: str) -> Any:
    """A validator for a ticket id: non-empty, storable, at most 255 characters."""
    return text(argument, check_identifier)


def optional_text(argument: str) -> Any:
    """A validator for None or non-empty, storable text."""

    def check(_: object, __: object, value: object) -> None:
        if value is not None and (not isinstance(value, str) or not value):
            raise ValidationError(
                f"{argument}={value!r} is neither None nor a non-empty string",
                field=argument,
                value=value,
            )
        if value is not None:
            check_text(value, argument)

    return check


def boolean(argument: str) -> Any:
    """A validator for a bool."""

    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, bool):
            raise ValidationError(
                f"{argument}={value!r} is not a bool (True or False)", field=argument, value=value
            )

    return check


def string(argument: str) -> Any:
    """A validator for storable text, empty allowed."""

    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, str):
            raise ValidationError(
                f"{argument}={value!r} is not a string", field=argument, value=value
            )
        check_text(value, argument)

    return check


def check_status_name(instance: Any, _: object, value: object) -> None:
    """Validator of ``status_name``: None, or a custom name not naming another category."""
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise ValidationError(f"status_name={value!r} is neither None nor a non-empty string")
    check_text(value, "status_name")
    status = instance.status
    if value in STATUS_VALUES and value != status.value:
        raise ValidationError(
            f"status_name={value!r} names the category {value!r} but status is "
            f"{status.value!r}; a custom name must not be another category's value"
        )


def check_priority_name(instance: Any, _: object, value: object) -> None:
    """Validator of ``priority_name``: None, or a custom name not naming another category."""
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise ValidationError(
            f"priority_name={value!r} is neither None nor a non-empty string",
            field="priority_name",
            value=value,
        )
    check_text(value, "priority_name")
    priority = instance.priority
    if value in PRIORITY_VALUES and value != priority.value:
        raise ValidationError(
            f"priority_name={value!r} names the category {value!r} but priority is "
            f"{priority.value!r}; a custom name must not be another category's value",
            field="priority_name",
            value=value,
        )
