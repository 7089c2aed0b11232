"""The condition classes: the base, the combinators, the leaves and the :class:`Field`
builder. Leaves read their field through the subject registry (:mod:`._subjects`)."""

from __future__ import annotations

import enum
import math
import operator as _operator
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Final, TypeAlias

import attrs

from csmcore._boundary import guard_class
from csmcore._values import (
    as_utc,
    check_identifier,
    check_int,
    check_text,
    coerce_enum,
    field_value_from_data,
    field_value_to_data,
    show,
)
from csmcore.conditions._subjects import SubjectField, field_kind, resolve_field, subjects
from csmcore.errors import NaiveDatetimeError, ValidationError, invalid_type
from csmcore.serialization import serializable

__all__ = [
    "MAX_CONDITION_DEPTH",
    "All",
    "Always",
    "AnyOf",
    "Compare",
    "Condition",
    "Eq",
    "Field",
    "HasTags",
    "In",
    "Never",
    "Not",
    "Scalar",
    "plain",
]

Ticket: TypeAlias = Any
"""Whatever subject a condition matches (a :class:`~csmcore.tickets.Ticket` for the ticket
fields); conditions read it only through the readers its subject registered."""

Scalar: TypeAlias = str | int | float | bool | Decimal | datetime | None

MAX_CONDITION_DEPTH: Final = 32
"""The deepest nesting of conditions csmcore builds or reads: a leaf (``Eq``, ``HasTags``,
``Always``, ...) is 1 level, and ``All``, ``AnyOf`` and ``Not`` add one to their deepest part.

A deeper condition is refused with :class:`~csmcore.errors.ValidationError` when it is built
(each node records its depth, computed from its parts, so the check costs the same at any depth)
and with :class:`~csmcore.errors.SerializationError` when read from data. The limit keeps every
accepted condition readable: each level is at most two levels of data (``{"op": "all",
"conditions": [...]}``), so a condition of 32 levels inside a stored SLA book (7 levels of
envelope, book, policies, targets and timer) stays within the 100 levels of data that
:data:`csmcore.serialization.MAX_NESTING_DEPTH` allows. And ``hash``, ``==``, ``repr``,
``matches``, ``to_data`` and the stores, which walk a condition recursively, stay far from
Python's recursion limit.
"""

_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": _operator.lt,
    "<=": _operator.le,
    ">": _operator.gt,
    ">=": _operator.ge,
}


def _comparable() -> str:
    """The fields ``Compare`` accepts, for messages: "'priority' and on custom fields (...)"."""
    ordered = [repr(f.name) for s in subjects() for f in s.fields.values() if f.order is not None]
    prefixes = [f"'{s.custom_prefix}<name>'" for s in subjects() if s.custom_prefix]
    text = ", ".join(ordered) or "no named field"
    if prefixes:
        text += f" and on custom fields ({', '.join(prefixes)})"
    return text


def _typed_key(value: Scalar) -> tuple[str, Scalar]:
    """A key under which equal custom values of comparable type collide (1, 1.0 and
    Decimal("1"), not True; datetimes by instant)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float | Decimal):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, datetime):
        return ("d", value)
    return ("0", None)


def _custom_scalar(value: Any, argument: str, field: str) -> Any:
    """A Decimal or datetime value for a custom field (or its JSON form), checked; None when
    ``value`` is neither."""
    if type(value) is dict:
        value = field_value_from_data(value, argument)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationError(
                f"{argument}={value!r} for custom field {field!r} is not a finite number",
                field=argument,
                value=value,
            )
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise NaiveDatetimeError(argument, value)
        return as_utc(value)
    return None


def _check_value(spec: SubjectField, value: Any, argument: str) -> Any:
    """Validate (and for enums coerce) one value for the field; raise ValidationError if wrong."""
    field = spec.name
    kind = spec.kind
    if type(value) is int or (isinstance(value, int) and not isinstance(value, bool)):
        check_int(value, argument)  # before any message prints it (a huge int cannot be)
    if kind == "enum":
        assert spec.values is not None
        return coerce_enum(spec.values, value, argument, what=f"{field} value")
    if isinstance(value, str) and kind in ("str", "custom"):
        return check_text(value, argument)
    if kind == "str":
        if value is None:
            return value
        raise ValidationError(
            f"{argument}={show(value)} for field {field!r} must be a string or None"
        )
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValidationError(f"{argument}={show(value)} for field {field!r} must be True or False")
    if kind == "custom":
        if value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        scalar = _custom_scalar(value, argument, field)
        if scalar is not None:
            return scalar
        raise ValidationError(
            f"{argument}={show(value)} for custom field {field!r} must be a string, a finite "
            "number, a bool, an aware datetime or None",
            field=argument,
            value=value,
        )
    raise ValidationError(
        f"field {field!r} holds tags; match tags with HasTags(...), not with {argument}"
    )


def plain(value: Any) -> Any:
    """A condition value as JSON-safe data: an enum member's value, a datetime or Decimal in
    the tagged form of custom field values (``{"$datetime": ...}``, ``{"$decimal": ...}``),
    anything else unchanged."""
    if isinstance(value, enum.Enum):
        return value.value
    return field_value_to_data(value)


# --------------------------------------------------------------------------------------------
# The base class and the combinators
# --------------------------------------------------------------------------------------------


@guard_class
class Condition:
    """A predicate over a subject (a ticket). Subclasses are immutable attrs values.

    ``a & b`` is ``All(a, b)``, ``a | b`` is ``AnyOf(a, b)`` and ``~a`` is ``Not(a)``. Each
    class names its ``data_op`` (the ``"op"`` of its serialised form) and its ``children``
    (the conditions it combines); code that walks conditions dispatches on the class through a
    :class:`~csmcore.conditions.ConditionVisitor`.
    """

    __slots__ = ()

    data_op: ClassVar[str] = ""
    """The ``"op"`` of the serialised form (``"eq"``, ``"all"``, ...)."""

    @property
    def children(self) -> tuple[Condition, ...]:
        """The conditions this one combines (none for a leaf)."""
        return ()

    @property
    def depth(self) -> int:
        """How many levels of conditions this one nests: 1 for a leaf, one more than its
        deepest part for ``All``, ``AnyOf`` and ``Not`` (which record it when built); at most
        :data:`MAX_CONDITION_DEPTH`.

        >>> Not(All(Eq("merged", True), Not(Always()))).depth
        4
        """
        children = self.children
        return _depth_of(children, self) if children else 1

    _depth: ClassVar[int] = 1
    """The depth of a leaf; ``All``, ``AnyOf`` and ``Not`` keep their own in a slot."""

    def matches(self, ticket: Ticket) -> bool:
        """True when ``ticket`` satisfies the condition."""
        raise NotImplementedError

    def __and__(self, other: Condition) -> All:
        if not isinstance(other, Condition):
            return NotImplemented
        left = self.conditions if type(self) is All else (self,)
        right = other.conditions if type(other) is All else (other,)
        return All(*left, *right)

    def __or__(self, other: Condition) -> AnyOf:
        if not isinstance(other, Condition):
            return NotImplemented
        left = self.conditions if type(self) is AnyOf else (self,)
        right = other.conditions if type(other) is AnyOf else (other,)
        return AnyOf(*left, *right)

    def __invert__(self) -> Condition:
        return Not(self)


_RECORDED: set[type] = set()
"""The classes whose ``_depth`` is their depth: the built-in leaves (1) and ``All``, ``AnyOf``
and ``Not`` (recorded when built). Other classes answer through :attr:`Condition.depth`."""


def _depth_of(parts: tuple[Condition, ...], node: object) -> int:
    """One more than the deepest of ``parts``; ValidationError beyond the limit."""
    depth = 0
    recorded = _RECORDED
    for part in parts:
        below = part._depth if type(part) in recorded else part.depth
        if below > depth:
            depth = below
    depth += 1
    if depth > MAX_CONDITION_DEPTH:
        raise _too_deep(node, depth)
    return depth


def _too_deep(node: object, depth: int) -> ValidationError:
    return ValidationError(
        f"{type(node).__name__}(...) would nest conditions {depth} levels deep; the limit is "
        f"{MAX_CONDITION_DEPTH} levels (csmcore.conditions.MAX_CONDITION_DEPTH)",
        field="conditions",
    )


def _conditions(value: Iterable[Any], node: object) -> tuple[tuple[Condition, ...], int]:
    """The parts of ``node`` (an All or AnyOf) checked, and its depth (one loop for both)."""
    items = tuple(value)
    depth = 0
    recorded = _RECORDED
    for position, item in enumerate(items):
        if type(item) in recorded:
            below = item._depth
        elif isinstance(item, Condition):
            below = item.depth
        else:
            raise ValidationError(
                f"conditions[{position}]={show(item)} is not a Condition; build one with "
                "Field(...), Eq, In, Compare, HasTags, All, AnyOf, Not, Always or Never"
            )
        if below > depth:
            depth = below
    depth += 1
    if depth > MAX_CONDITION_DEPTH:
        raise _too_deep(node, depth)
    return items, depth


@attrs.frozen(init=False)
class _Combination(Condition):
    """What ``All`` and ``AnyOf`` share: their parts and the depth recorded when built. Each
    keeps its own ``__init__``, so that the boundary names it (it guards the methods a class
    defines itself)."""

    conditions: tuple[Condition, ...]
    _depth: int = attrs.field(eq=False, repr=False, hash=False, alias="depth")  # type: ignore[misc]

    @property
    def children(self) -> tuple[Condition, ...]:
        """The combined conditions."""
        return self.conditions

    @property
    def depth(self) -> int:
        """See :attr:`Condition.depth`."""
        return self._depth


@serializable("condition.all", aliases=("csmcore.conditions:All",))
@attrs.frozen(init=False)
class All(_Combination):
    """Matches when every one of ``conditions`` matches (``All()`` matches everything)."""

    data_op: ClassVar[str] = "all"

    def __init__(self, *conditions: Condition) -> None:
        parts, depth = _conditions(conditions, self)
        self.__attrs_init__(conditions=parts, depth=depth)

    def matches(self, ticket: Ticket) -> bool:
        """True when every condition matches ``ticket``."""
        for condition in self.conditions:  # noqa: SIM110 - a plain loop is ~1.5x faster than all()
            if not condition.matches(ticket):
                return False
        return True

    def __repr__(self) -> str:
        return f"All({', '.join(map(repr, self.conditions))})"


@serializable("condition.any", aliases=("csmcore.conditions:AnyOf",))
@attrs.frozen(init=False)
class AnyOf(_Combination):
    """Matches when at least one of ``conditions`` matches (``AnyOf()`` matches nothing)."""

    data_op: ClassVar[str] = "any"

    def __init__(self, *conditions: Condition) -> None:
        parts, depth = _conditions(conditions, self)
        self.__attrs_init__(conditions=parts, depth=depth)

    def matches(self, ticket: Ticket) -> bool:
        """True when some condition matches ``ticket``."""
        for condition in self.conditions:  # noqa: SIM110 - a plain loop is ~1.5x faster than any()
            if condition.matches(ticket):
                return True
        return False

    def __repr__(self) -> str:
        return f"AnyOf({', '.join(map(repr, self.conditions))})"


def _check_condition(_: object, __: object, value: Any) -> None:
    if not isinstance(value, Condition):
        raise ValidationError(f"condition={value!r} is not a Condition")


@serializable("condition.not", aliases=("csmcore.conditions:Not",))
@attrs.frozen(init=False)
class Not(Condition):
    """Matches exactly when ``condition`` does not."""

    condition: Condition
    _depth: int = attrs.field(eq=False, repr=False, hash=False, alias="depth")  # type: ignore[misc]
    data_op: ClassVar[str] = "not"

    def __init__(self, condition: Condition) -> None:
        kind = type(condition)
        if kind in _RECORDED:  # the usual case, spelled out: Not is built often
            depth = condition._depth + 1
            if depth > MAX_CONDITION_DEPTH:
                raise _too_deep(self, depth)
        else:
            _check_condition(None, None, condition)
            depth = _depth_of((condition,), self)
        self.__attrs_init__(condition=condition, depth=depth)

    @property
    def children(self) -> tuple[Condition, ...]:
        """The negated condition."""
        return (self.condition,)

    @property
    def depth(self) -> int:
        """See :attr:`Condition.depth`."""
        return self._depth

    def matches(self, ticket: Ticket) -> bool:
        """True when the inner condition does not match ``ticket``."""
        return not self.condition.matches(ticket)

    def __invert__(self) -> Condition:
        return self.condition

    def __repr__(self) -> str:
        return f"Not({self.condition!r})"


@serializable("condition.always", aliases=("csmcore.conditions:Always",))
@attrs.frozen
class Always(Condition):
    """Matches every ticket."""

    data_op: ClassVar[str] = "always"

    def matches(self, ticket: Ticket) -> bool:
        """Always True."""
        return True


@serializable("condition.never", aliases=("csmcore.conditions:Never",))
@attrs.frozen
class Never(Condition):
    """Matches no ticket."""

    data_op: ClassVar[str] = "never"

    def matches(self, ticket: Ticket) -> bool:
        """Always False."""
        return False


# --------------------------------------------------------------------------------------------
# Leaves
# --------------------------------------------------------------------------------------------


def _check_field(_: object, __: object, value: Any) -> None:
    resolve_field(value)


@serializable("condition.eq", aliases=("csmcore.conditions:Eq",))
@attrs.frozen
class Eq(Condition):
    """Matches when ``field`` equals ``value`` (``Eq("assignee", None)``: unassigned).

    Enum fields accept the enum or its string value (stored as the enum member).
    """

    field: str = attrs.field(validator=_check_field)
    value: Any = attrs.field(eq=False)
    _key: Any = attrs.field(init=False, repr=False)
    _get: Callable[[Any], Any] = attrs.field(init=False, eq=False, repr=False, hash=False)
    data_op: ClassVar[str] = "eq"

    def __attrs_post_init__(self) -> None:
        spec = resolve_field(self.field)
        value = _check_value(spec, self.value, "value")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "_key", _typed_key(value) if spec.kind == "custom" else value)
        object.__setattr__(self, "_get", spec.read)

    @property
    def operator(self) -> str:
        """``"=="``."""
        return "=="

    def matches(self, ticket: Ticket) -> bool:
        """True when the ticket's field equals the value."""
        actual = self._get(ticket)
        if type(self._key) is tuple:
            return _typed_key(actual) == self._key
        return bool(actual == self._key)

    def __repr__(self) -> str:
        return f"Eq({self.field!r}, {self.value!r})"


def _values(value: object) -> tuple[object, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValidationError(
            f"values={value!r} is not a collection of values; pass a list, tuple or set"
        )
    return tuple(value)


@serializable("condition.in", aliases=("csmcore.conditions:In",))
@attrs.frozen
class In(Condition):
    """Matches when ``field`` equals one of ``values`` (an empty collection matches nothing)."""

    field: str = attrs.field(validator=_check_field)
    values: frozenset[Any] = attrs.field(eq=False, converter=_values)
    _keys: frozenset[Any] = attrs.field(init=False, repr=False)
    _get: Callable[[Any], Any] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _custom: bool = attrs.field(init=False, eq=False, repr=False, hash=False)
    data_op: ClassVar[str] = "in"

    def __attrs_post_init__(self) -> None:
        spec = resolve_field(self.field)
        kind = spec.kind
        checked = [_check_value(spec, v, f"values[{i}]") for i, v in enumerate(self.values)]
        values = frozenset(checked)
        keys = frozenset(_typed_key(v) for v in checked) if kind == "custom" else values
        if len(keys) != len(values):
            # A custom field tells True from 1 and False from 0, but a set of values cannot
            # hold both: one would be lost on the way to storage or to SQL.
            booleans = {v for v in checked if isinstance(v, bool)}
            numbers = {
                v
                for v in checked
                if isinstance(v, int | float | Decimal) and not isinstance(v, bool)
            }
            clash = sorted(
                {repr(v) for v in booleans if v in numbers}
                | {repr(v) for v in numbers if v in booleans}
            )
            raise ValidationError(
                f"values={list(self.values)!r} hold a boolean and a number equal to it "
                f"({', '.join(clash)}); one In cannot keep both, use AnyOf(In({self.field!r}, "
                f"[...booleans]), In({self.field!r}, [...numbers]))"
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_get", spec.read)
        object.__setattr__(self, "_custom", kind == "custom")

    @property
    def operator(self) -> str:
        """``"in"``."""
        return "in"

    @property
    def value(self) -> frozenset[Any]:
        """The same as :attr:`values` (for uniform inspection of leaves)."""
        return self.values

    def matches(self, ticket: Ticket) -> bool:
        """True when the ticket's field is one of the values."""
        actual = self._get(ticket)
        if self._custom:
            return _typed_key(actual) in self._keys
        return actual in self._keys

    def __repr__(self) -> str:
        shown = sorted(self.values, key=lambda v: (type(v).__name__, str(v)))
        return f"In({self.field!r}, {shown!r})"


def _check_op(_: object, __: object, value: Any) -> None:
    if not isinstance(value, str):
        raise invalid_type("op", value, f"a comparison, one of {list(_COMPARISONS)}")
    if value not in _COMPARISONS:
        raise ValidationError(f"op={value!r} is not a comparison; accepted: {list(_COMPARISONS)}")


@serializable("condition.cmp", aliases=("csmcore.conditions:Compare",))
@attrs.frozen
class Compare(Condition):
    """Matches when ``field <op> value`` holds, ``op`` one of ``<``, ``<=``, ``>``, ``>=``.

    ``priority`` compares by :attr:`~csmcore.tickets.Priority.rank`; a custom field compares
    numbers with numbers and strings with strings. An unset field never matches.
    """

    field: str = attrs.field(validator=_check_field)
    op: str = attrs.field(validator=_check_op)
    value: Any = attrs.field()
    _get: Callable[[Any], Any] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _test: Callable[[Any, Any], bool] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _rhs: Any = attrs.field(init=False, eq=False, repr=False, hash=False)
    _order: Callable[[Any], Any] | None = attrs.field(init=False, eq=False, repr=False, hash=False)
    data_op: ClassVar[str] = "cmp"

    def __attrs_post_init__(self) -> None:
        spec = resolve_field(self.field)
        kind = spec.kind
        value = self.value
        if spec.order is not None:
            value = _check_value(spec, value, "value")
            rhs: Any = spec.order(value)
        elif kind == "custom":
            scalar = _custom_scalar(value, "value", self.field)
            if scalar is not None:
                value = scalar
            elif isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValidationError(
                    f"value={show(value)}: a comparison on {self.field!r} needs a number or a "
                    "string (or an aware datetime)",
                    field="value",
                    value=value,
                )
            elif isinstance(value, int):
                check_int(value, "value")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValidationError(
                    f"value={value!r} is not a finite number", field="value", value=value
                )
            if isinstance(value, str):
                check_text(value, "value")
            rhs = value
        else:
            raise ValidationError(
                f"field {self.field!r} cannot be compared with {self.op!r}; comparisons are "
                f"accepted on {_comparable()}"
            )
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "_rhs", rhs)
        object.__setattr__(self, "_get", spec.read)
        object.__setattr__(self, "_test", _COMPARISONS[self.op])
        object.__setattr__(self, "_order", spec.order)

    @property
    def operator(self) -> str:
        """The comparison operator, as ``op``."""
        return self.op

    def matches(self, ticket: Ticket) -> bool:
        """True when the ticket's field compares as asked with the value."""
        actual = self._get(ticket)
        rhs = self._rhs
        order = self._order
        if order is not None:
            return self._test(order(actual), rhs)
        if isinstance(rhs, str):
            return isinstance(actual, str) and self._test(actual, rhs)
        if isinstance(rhs, datetime):
            return isinstance(actual, datetime) and self._test(actual, rhs)
        if isinstance(actual, bool) or not isinstance(actual, int | float | Decimal):
            return False
        return self._test(actual, rhs)

    def __repr__(self) -> str:
        return f"Compare({self.field!r}, {self.op!r}, {self.value!r})"


def _tag_set(value: object) -> frozenset[str]:
    tags = frozenset((value,)) if isinstance(value, str) else None
    if tags is None:
        if not isinstance(value, Iterable):
            raise ValidationError(f"tags={value!r} is not a tag or a collection of tags")
        items = list(value)
        for tag in items:
            if not isinstance(tag, str):
                raise invalid_type("tags", tag, "a tag (a non-empty string without edge spaces)")
        tags = frozenset(items)
    for tag in tags:
        if not isinstance(tag, str) or not tag or tag != tag.strip():
            raise ValidationError(
                f"tags holds {tag!r}; a tag is a non-empty string without surrounding whitespace"
            )
        check_identifier(tag, "tag")
    return tags


@serializable("condition.tags", aliases=("csmcore.conditions:HasTags",))
@attrs.frozen
class HasTags(Condition):
    """Matches when the ticket carries every one of ``tags`` (a string is one tag).

    ``HasTags(())`` matches every ticket.
    """

    tags: frozenset[str] = attrs.field(converter=_tag_set)
    data_op: ClassVar[str] = "tags"

    @property
    def field(self) -> str:
        """``"tags"``."""
        return "tags"

    @property
    def operator(self) -> str:
        """``"has_all"``: every tag must be present."""
        return "has_all"

    @property
    def value(self) -> frozenset[str]:
        """The same as :attr:`tags`."""
        return self.tags

    def matches(self, ticket: Ticket) -> bool:
        """True when every tag is on the ticket (its ``tags`` attribute)."""
        tags: frozenset[str] = ticket.tags
        return self.tags <= tags

    def __repr__(self) -> str:
        return f"HasTags({sorted(self.tags)!r})"


# --------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------


@guard_class
class Field:
    """Builds leaf conditions with Python operators: ``Field("priority") >= "high"``.

    ``==`` gives :class:`Eq`, ``!=`` gives ``Not(Eq(...))``, ``<``/``<=``/``>``/``>=`` give
    :class:`Compare`, :meth:`is_in` gives :class:`In` and :meth:`contains` (for ``"tags"``)
    gives :class:`HasTags`. The name is checked at once (ValidationError if unknown).
    """

    __slots__ = ("kind", "name")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, name: str) -> None:
        self.kind = field_kind(name)
        self.name = name

    def __repr__(self) -> str:
        return f"Field({self.name!r})"

    def __eq__(self, value: object) -> Eq:  # type: ignore[override]
        return Eq(self.name, value)

    def __ne__(self, value: object) -> Not:  # type: ignore[override]
        return Not(Eq(self.name, value))

    def __lt__(self, value: object) -> Compare:
        return Compare(self.name, "<", value)

    def __le__(self, value: object) -> Compare:
        return Compare(self.name, "<=", value)

    def __gt__(self, value: object) -> Compare:
        return Compare(self.name, ">", value)

    def __ge__(self, value: object) -> Compare:
        return Compare(self.name, ">=", value)

    def is_in(self, values: Iterable[object]) -> In:
        """``In(name, values)``."""
        return In(self.name, values)

    def contains(self, *tags: str) -> HasTags:
        """``HasTags(tags)``; only for the ``"tags"`` field."""
        if self.name != "tags":
            raise ValidationError(
                f"Field({self.name!r}).contains(...) is only for 'tags'; use == or is_in"
            )
        return HasTags(frozenset(tags))


_RECORDED.update((All, AnyOf, Not, Always, Never, Eq, In, Compare, HasTags))
