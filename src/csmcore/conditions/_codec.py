"""The serialised form of conditions: ``{"op": ..., ...}``. Encoding dispatches through a
:class:`~csmcore.conditions.ConditionVisitor` and decoding through a table keyed by ``"op"``;
:func:`register_condition_codec` adds a new kind of node to both."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from csmcore._boundary import guarded
from csmcore._values import show
from csmcore.conditions._dispatch import ConditionVisitor
from csmcore.conditions._nodes import (
    MAX_CONDITION_DEPTH,
    All,
    Always,
    AnyOf,
    Compare,
    Condition,
    Eq,
    HasTags,
    In,
    Never,
    Not,
    Scalar,
    plain,
)
from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import converter

__all__ = ["register_condition_codec", "structure_condition", "unstructure_condition"]

Decoder = Callable[[Mapping[str, Any], str], Condition]


def _not_serialisable(condition: Condition) -> Exception:
    return SerializationError(
        f"cannot serialise {show(condition)}: only the built-in condition classes are serialisable"
    )


unstructure_condition: Final = ConditionVisitor[dict[str, Any]](
    "unstructure_condition", missing=_not_serialisable
)
"""The JSON-safe data of a condition (what :func:`csmcore.to_data` returns for it)."""

_DECODERS: dict[str, tuple[frozenset[str], Decoder]] = {}


@guarded
def register_condition_codec(
    cls: type[Condition],
    *,
    keys: Iterable[str],
    encode: Callable[[Any], dict[str, Any]],
    decode: Decoder,
) -> None:
    """Make conditions of ``cls`` serialisable: ``encode(node)`` returns ``{"op":
    cls.data_op, ...}`` with exactly ``keys`` besides ``"op"``; ``decode(data, path)`` builds
    the node from such data (SerializationError naming ``path`` when malformed; a
    ValidationError it raises is reported with the path too)."""
    if not cls.data_op:
        raise ValidationError(f"{cls.__qualname__} declares no data_op")
    unstructure_condition.register(cls)(encode)
    _DECODERS[cls.data_op] = (frozenset(keys), decode)


def _sorted_values(values: Iterable[Any]) -> list[Scalar]:
    return sorted((plain(v) for v in values), key=lambda v: (type(v).__name__, str(v)))


class _Level(threading.local):
    """How deep :func:`structure_condition` is in the data it reads, in this thread."""

    value = 0


_LEVEL: Final = _Level()


@guarded
def structure_condition(data: Any, path: str = "$") -> Condition:
    """Build a condition from data; SerializationError names the path of a bad value.

    Data nesting conditions deeper than :data:`~csmcore.conditions.MAX_CONDITION_DEPTH` is
    refused when that level is reached, before anything below it is read.
    """
    level = _LEVEL.value
    if level >= MAX_CONDITION_DEPTH:
        raise SerializationError(
            f"{path}: conditions nest deeper than the limit of {MAX_CONDITION_DEPTH} levels "
            "(csmcore.conditions.MAX_CONDITION_DEPTH)"
        )
    _LEVEL.value = level + 1
    try:
        return _structure_condition(data, path)
    finally:
        _LEVEL.value = level


def _structure_condition(data: Any, path: str) -> Condition:
    if not isinstance(data, Mapping):
        raise SerializationError(f"{path}: {data!r} is not a mapping with an 'op' key")
    op = data.get("op")
    found = _DECODERS.get(op) if isinstance(op, str) else None
    if found is None:
        raise SerializationError(
            f"{path}.op: {op!r} is not a condition; accepted: {list(_DECODERS)}"
        )
    keys, decode = found
    extra = set(data) - keys - {"op"}
    if extra:
        raise SerializationError(
            f"{path}: unknown keys {sorted(extra, key=repr)} for op {op!r}; "
            f"accepted: {sorted(keys)}"
        )
    for key in sorted(keys):
        if key not in data:
            raise SerializationError(f"{path}.{key}: required field missing")
    try:
        return decode(data, path)
    except SerializationError:
        raise
    except ValidationError as err:
        raise SerializationError(f"{path}: {err}") from err


def _list(data: Mapping[str, Any], key: str, path: str, what: str) -> list[Any]:
    value = data[key]
    if not isinstance(value, list):
        raise SerializationError(f"{path}.{key}: {value!r} is not a {what}")
    return value


def _parts(data: Mapping[str, Any], path: str) -> list[Condition]:
    items = _list(data, "conditions", path, "list")
    return [structure_condition(c, f"{path}.conditions[{i}]") for i, c in enumerate(items)]


register_condition_codec(
    Eq,
    keys=("field", "value"),
    encode=lambda c: {"op": "eq", "field": c.field, "value": plain(c.value)},
    decode=lambda d, p: Eq(d["field"], d["value"]),
)
register_condition_codec(
    In,
    keys=("field", "values"),
    encode=lambda c: {"op": "in", "field": c.field, "values": _sorted_values(c.values)},
    decode=lambda d, p: In(d["field"], _list(d, "values", p, "list")),
)
register_condition_codec(
    Compare,
    keys=("field", "cmp", "value"),
    encode=lambda c: {"op": "cmp", "field": c.field, "cmp": c.op, "value": plain(c.value)},
    decode=lambda d, p: Compare(d["field"], d["cmp"], d["value"]),
)
register_condition_codec(
    HasTags,
    keys=("tags",),
    encode=lambda c: {"op": "tags", "tags": sorted(c.tags)},
    decode=lambda d, p: HasTags(_list(d, "tags", p, "list of tags")),
)
register_condition_codec(
    All,
    keys=("conditions",),
    encode=lambda c: {"op": "all", "conditions": [unstructure_condition(x) for x in c.conditions]},
    decode=lambda d, p: All(*_parts(d, p)),
)
register_condition_codec(
    AnyOf,
    keys=("conditions",),
    encode=lambda c: {"op": "any", "conditions": [unstructure_condition(x) for x in c.conditions]},
    decode=lambda d, p: AnyOf(*_parts(d, p)),
)
register_condition_codec(
    Not,
    keys=("condition",),
    encode=lambda c: {"op": "not", "condition": unstructure_condition(c.condition)},
    decode=lambda d, p: Not(structure_condition(d["condition"], f"{p}.condition")),
)
register_condition_codec(
    Always, keys=(), encode=lambda c: {"op": "always"}, decode=lambda d, p: Always()
)
register_condition_codec(
    Never, keys=(), encode=lambda c: {"op": "never"}, decode=lambda d, p: Never()
)


def _is_condition_class(cls: Any) -> bool:
    return isinstance(cls, type) and issubclass(cls, Condition)


def _structure_hook(data: Any, cls: Any) -> Condition:
    condition = structure_condition(data)
    if cls is not Condition and not isinstance(condition, cls):
        raise SerializationError(f"$.op: {data.get('op')!r} does not build a {cls.__name__}")
    return condition


converter.register_unstructure_hook_func(_is_condition_class, unstructure_condition)
converter.register_structure_hook_func(_is_condition_class, _structure_hook)
