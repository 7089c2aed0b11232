"""Composable, serialisable predicates over tickets.

A condition answers one question about a :class:`~csmcore.tickets.Ticket`: ``cond.matches(t)``.
SLA policies use them to pick the policy that applies, escalation rules to decide when to fire.
Conditions are immutable values; ``&``, ``|`` and ``~`` combine them, and they round-trip through
:func:`csmcore.serialization.to_data` / :func:`~csmcore.serialization.from_data` to JSON-safe data.

>>> from csmcore.conditions import Field, HasTags
>>> urgent_vip = (Field("priority") >= "high") & HasTags({"vip"})
>>> urgent_vip
All(Compare('priority', '>=', <Priority.HIGH: 'high'>), HasTags(['vip']))

Every condition is checked when it is built: an unknown field name, an operator a field does not
support, or a value of the wrong type (``Field("priority") == "hgh"``) raises
:class:`~csmcore.errors.ValidationError` there and then, never later while evaluating.

Fields and the ticket attribute each one reads (``FIELDS`` gives the kind of each):

=================  ===========  =================================================================
field              kind         reads
=================  ===========  =================================================================
``status``         enum         ``ticket.status`` (a :class:`~csmcore.tickets.Status` category)
``status_name``    str          ``ticket.status_name`` (custom name, else the category value)
``priority``       enum         ``ticket.priority``; ``<``/``>`` compare by ``Priority.rank``
``channel``        enum         ``ticket.channel``
``created_by``     enum         ``ticket.created_by`` (a :class:`~csmcore.tickets.Role`)
``group``          str          ``ticket.group`` (None when unassigned)
``assignee``       str          ``ticket.assignee`` (None when unassigned)
``requester``      str          ``ticket.requester``
``subject``        str          ``ticket.subject``
``tags``           tags         ``ticket.tags`` (only through :class:`HasTags`)
``merged``         bool         ``ticket.merged_into is not None``
``fields.<name>``  custom       ``ticket.fields.get(name)`` (None when unset)
=================  ===========  =================================================================

Operators by kind: ``Eq`` and ``In`` on every kind but ``tags``; ``Compare`` on ``priority`` and
custom fields (numbers compare with numbers, strings with strings; anything else, including an
unset field, does not match). Custom field values are compared with their type: ``True`` does not
equal ``1``, while ``1`` equals ``1.0``.

Serialised form: ``{"op": "eq" | "in" | "cmp" | "tags" | "all" | "any" | "not" | "always" |
"never", ...}``; malformed data raises :class:`~csmcore.errors.SerializationError` naming the path
(``$.conditions[1].value``).
"""

from __future__ import annotations

import math
import operator as _operator
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs

from csmcore._values import check_identifier, check_text, coerce_enum
from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import converter, serializable
from csmcore.tickets import Channel, Priority, Role, Status

if TYPE_CHECKING:
    from csmcore.tickets import Ticket

__all__ = [
    "FIELDS",
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
    "field_kind",
]

Scalar: TypeAlias = str | int | float | bool | None

FIELDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "status": "enum",
        "status_name": "str",
        "priority": "enum",
        "channel": "enum",
        "created_by": "enum",
        "group": "str",
        "assignee": "str",
        "requester": "str",
        "subject": "str",
        "tags": "tags",
        "merged": "bool",
    }
)
"""Known field names and their kind; custom fields are ``"fields.<name>"`` of kind ``"custom"``."""

CUSTOM_PREFIX: Final = "fields."
"""The prefix of custom field names: ``"fields.plan"`` reads ``ticket.fields.get("plan")``."""

_ENUMS: Final[dict[str, type[Status] | type[Priority] | type[Channel] | type[Role]]] = {
    "status": Status,
    "priority": Priority,
    "channel": Channel,
    "created_by": Role,
}
_COMPARISONS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": _operator.lt,
    "<=": _operator.le,
    ">": _operator.gt,
    ">=": _operator.ge,
}


def field_kind(name: object) -> str:
    """The kind of field ``name`` (see :data:`FIELDS`); ValidationError for an unknown one."""
    if isinstance(name, str):
        kind = FIELDS.get(name)
        if kind is not None:
            return kind
        if name.startswith(CUSTOM_PREFIX) and len(name) > len(CUSTOM_PREFIX):
            check_text(name, "field")
            return "custom"
    raise ValidationError(
        f"field={name!r} is not a ticket field; accepted: {', '.join(FIELDS)}, "
        "or 'fields.<name>' for a custom field"
    )


def _getter(name: str) -> Callable[[Ticket], Any]:
    if name == "merged":
        return _is_merged
    if name.startswith(CUSTOM_PREFIX):
        custom = name[len(CUSTOM_PREFIX) :]
        return lambda ticket: ticket.fields.get(custom)
    return _operator.attrgetter(name)


def _is_merged(ticket: Ticket) -> bool:
    return ticket.merged_into is not None


def _typed_key(value: Scalar) -> tuple[str, Scalar]:
    """A key under which equal custom values of comparable type collide (1 and 1.0, not True)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    return ("0", None)


def _check_value(field: str, kind: str, value: Any, argument: str) -> Any:
    """Validate (and for enums coerce) one value for ``field``; raise ValidationError if wrong."""
    if kind == "enum":
        return coerce_enum(_ENUMS[field], value, argument, what=f"{field} value")
    if isinstance(value, str) and kind in ("str", "custom"):
        return check_text(value, argument)
    if kind == "str":
        if value is None:
            return value
        raise ValidationError(f"{argument}={value!r} for field {field!r} must be a string or None")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValidationError(f"{argument}={value!r} for field {field!r} must be True or False")
    if kind == "custom":
        if value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        raise ValidationError(
            f"{argument}={value!r} for custom field {field!r} must be a string, a finite number, "
            "a bool or None"
        )
    raise ValidationError(
        f"field {field!r} holds tags; match tags with HasTags(...), not with {argument}"
    )


def _plain(value: Any) -> Scalar:
    return value.value if isinstance(value, Status | Priority | Channel | Role) else value


# --------------------------------------------------------------------------------------------
# The base class and the combinators
# --------------------------------------------------------------------------------------------


class Condition:
    """A predicate over a ticket. Subclasses are immutable attrs values.

    ``a & b`` is ``All(a, b)``, ``a | b`` is ``AnyOf(a, b)`` and ``~a`` is ``Not(a)``.
    """

    __slots__ = ()

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


def _conditions(value: Iterable[Any]) -> tuple[Condition, ...]:
    items = tuple(value)
    for position, item in enumerate(items):
        if not isinstance(item, Condition):
            raise ValidationError(
                f"conditions[{position}]={item!r} is not a Condition; build one with Field(...), "
                "Eq, In, Compare, HasTags, All, AnyOf, Not, Always or Never"
            )
    return items


@serializable("condition.all", aliases=("csmcore.conditions:All",))
@attrs.frozen(init=False)
class All(Condition):
    """Matches when every one of ``conditions`` matches (``All()`` matches everything)."""

    conditions: tuple[Condition, ...]

    def __init__(self, *conditions: Condition) -> None:
        self.__attrs_init__(conditions=_conditions(conditions))

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
class AnyOf(Condition):
    """Matches when at least one of ``conditions`` matches (``AnyOf()`` matches nothing)."""

    conditions: tuple[Condition, ...]

    def __init__(self, *conditions: Condition) -> None:
        self.__attrs_init__(conditions=_conditions(conditions))

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
@attrs.frozen
class Not(Condition):
    """Matches exactly when ``condition`` does not."""

    condition: Condition = attrs.field(validator=_check_condition)

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

    def matches(self, ticket: Ticket) -> bool:
        """Always True."""
        return True


@serializable("condition.never", aliases=("csmcore.conditions:Never",))
@attrs.frozen
class Never(Condition):
    """Matches no ticket."""

    def matches(self, ticket: Ticket) -> bool:
        """Always False."""
        return False


# --------------------------------------------------------------------------------------------
# Leaves
# --------------------------------------------------------------------------------------------


def _check_field(_: object, __: object, value: Any) -> None:
    field_kind(value)


@serializable("condition.eq", aliases=("csmcore.conditions:Eq",))
@attrs.frozen
class Eq(Condition):
    """Matches when ``field`` equals ``value`` (``Eq("assignee", None)``: unassigned).

    Enum fields accept the enum or its string value (stored as the enum member).
    """

    field: str = attrs.field(validator=_check_field)
    value: Any = attrs.field(eq=False)
    _key: Any = attrs.field(init=False, repr=False)
    _get: Callable[[Ticket], Any] = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        kind = field_kind(self.field)
        value = _check_value(self.field, kind, self.value, "value")
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "_key", _typed_key(value) if kind == "custom" else value)
        object.__setattr__(self, "_get", _getter(self.field))

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
    _get: Callable[[Ticket], Any] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _custom: bool = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        kind = field_kind(self.field)
        checked = [
            _check_value(self.field, kind, v, f"values[{i}]") for i, v in enumerate(self.values)
        ]
        values = frozenset(checked)
        keys = frozenset(_typed_key(v) for v in checked) if kind == "custom" else values
        if len(keys) != len(values):
            # A custom field tells True from 1 and False from 0, but a set of values cannot
            # hold both: one would be lost on the way to storage or to SQL.
            booleans = {v for v in checked if isinstance(v, bool)}
            numbers = {v for v in checked if isinstance(v, int | float) and not isinstance(v, bool)}
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
        object.__setattr__(self, "_get", _getter(self.field))
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
    _get: Callable[[Ticket], Any] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _test: Callable[[Any, Any], bool] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _rhs: Any = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        kind = field_kind(self.field)
        value = self.value
        if self.field == "priority":
            value = _check_value("priority", "enum", value, "value")
            rhs: Any = value.rank
        elif kind == "custom":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise ValidationError(
                    f"value={value!r}: a comparison on {self.field!r} needs a number or a string"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise ValidationError(f"value={value!r} is not a finite number")
            if isinstance(value, str):
                check_text(value, "value")
            rhs = value
        else:
            raise ValidationError(
                f"field {self.field!r} cannot be compared with {self.op!r}; comparisons are "
                "accepted on 'priority' and on custom fields ('fields.<name>')"
            )
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "_rhs", rhs)
        object.__setattr__(self, "_get", _getter(self.field))
        object.__setattr__(self, "_test", _COMPARISONS[self.op])

    @property
    def operator(self) -> str:
        """The comparison operator, as ``op``."""
        return self.op

    def matches(self, ticket: Ticket) -> bool:
        """True when the ticket's field compares as asked with the value."""
        actual = self._get(ticket)
        rhs = self._rhs
        if self.field == "priority":
            return self._test(actual.rank, rhs)
        if isinstance(rhs, str):
            return isinstance(actual, str) and self._test(actual, rhs)
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        return self._test(actual, rhs)

    def __repr__(self) -> str:
        return f"Compare({self.field!r}, {self.op!r}, {self.value!r})"


def _tag_set(value: object) -> frozenset[str]:
    tags = frozenset((value,)) if isinstance(value, str) else None
    if tags is None:
        if not isinstance(value, Iterable):
            raise ValidationError(f"tags={value!r} is not a tag or a collection of tags")
        tags = frozenset(value)
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
        """True when every tag is on the ticket."""
        return self.tags <= ticket.tags

    def __repr__(self) -> str:
        return f"HasTags({sorted(self.tags)!r})"


# --------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Serialization
# --------------------------------------------------------------------------------------------

_OPS: Final = ("eq", "in", "cmp", "tags", "all", "any", "not", "always", "never")


def _sorted_values(values: Iterable[Any]) -> list[Scalar]:
    return sorted((_plain(v) for v in values), key=lambda v: (type(v).__name__, str(v)))


def unstructure_condition(condition: Condition) -> dict[str, Any]:
    """The JSON-safe data of ``condition`` (what :func:`csmcore.to_data` returns for it)."""
    kind = type(condition)
    if kind is Eq:
        return {"op": "eq", "field": condition.field, "value": _plain(condition.value)}  # type: ignore[attr-defined]
    if kind is In:
        return {
            "op": "in",
            "field": condition.field,  # type: ignore[attr-defined]
            "values": _sorted_values(condition.values),  # type: ignore[attr-defined]
        }
    if kind is Compare:
        return {
            "op": "cmp",
            "field": condition.field,  # type: ignore[attr-defined]
            "cmp": condition.op,  # type: ignore[attr-defined]
            "value": _plain(condition.value),  # type: ignore[attr-defined]
        }
    if kind is HasTags:
        return {"op": "tags", "tags": sorted(condition.tags)}  # type: ignore[attr-defined]
    if kind is All or kind is AnyOf:
        return {
            "op": "all" if kind is All else "any",
            "conditions": [unstructure_condition(c) for c in condition.conditions],  # type: ignore[attr-defined]
        }
    if kind is Not:
        return {"op": "not", "condition": unstructure_condition(condition.condition)}  # type: ignore[attr-defined]
    if kind is Always:
        return {"op": "always"}
    if kind is Never:
        return {"op": "never"}
    raise SerializationError(
        f"cannot serialise {condition!r}: only the built-in condition classes are serialisable"
    )


_KEYS: Final[dict[str, frozenset[str]]] = {
    "eq": frozenset({"field", "value"}),
    "in": frozenset({"field", "values"}),
    "cmp": frozenset({"field", "cmp", "value"}),
    "tags": frozenset({"tags"}),
    "all": frozenset({"conditions"}),
    "any": frozenset({"conditions"}),
    "not": frozenset({"condition"}),
    "always": frozenset(),
    "never": frozenset(),
}


def structure_condition(data: Any, path: str = "$") -> Condition:
    """Build a condition from data; SerializationError names the path of a bad value."""
    if not isinstance(data, Mapping):
        raise SerializationError(f"{path}: {data!r} is not a mapping with an 'op' key")
    op = data.get("op")
    keys = _KEYS.get(op) if isinstance(op, str) else None
    if keys is None:
        raise SerializationError(f"{path}.op: {op!r} is not a condition; accepted: {list(_OPS)}")
    extra = set(data) - keys - {"op"}
    if extra:
        raise SerializationError(
            f"{path}: unknown keys {sorted(extra)} for op {op!r}; accepted: {sorted(keys)}"
        )
    for key in sorted(keys):
        if key not in data:
            raise SerializationError(f"{path}.{key}: required field missing")
    if op in ("all", "any"):
        items = data["conditions"]
        if not isinstance(items, list):
            raise SerializationError(f"{path}.conditions: {items!r} is not a list")
        parts = [structure_condition(c, f"{path}.conditions[{i}]") for i, c in enumerate(items)]
        return All(*parts) if op == "all" else AnyOf(*parts)
    if op == "not":
        return Not(structure_condition(data["condition"], f"{path}.condition"))
    if op == "always":
        return Always()
    if op == "never":
        return Never()
    try:
        if op == "tags":
            if not isinstance(data["tags"], list):
                raise SerializationError(f"{path}.tags: {data['tags']!r} is not a list of tags")
            return HasTags(data["tags"])
        if op == "in":
            if not isinstance(data["values"], list):
                raise SerializationError(f"{path}.values: {data['values']!r} is not a list")
            return In(data["field"], data["values"])
        if op == "cmp":
            return Compare(data["field"], data["cmp"], data["value"])
        return Eq(data["field"], data["value"])
    except SerializationError:
        raise
    except ValidationError as err:
        raise SerializationError(f"{path}: {err}") from err


def _is_condition_class(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, Condition)


def _structure_hook(data: Any, cls: Any) -> Condition:
    condition = structure_condition(data)
    if cls is not Condition and not isinstance(condition, cls):
        raise SerializationError(f"$.op: {data.get('op')!r} does not build a {cls.__name__}")
    return condition


converter.register_unstructure_hook_func(_is_condition_class, unstructure_condition)
converter.register_structure_hook_func(_is_condition_class, _structure_hook)
