"""The condition trees :func:`csmcore.testing.strategies.conditions` draws: leaves on every
kind of ticket field, combined with and / or / not. ``parts`` gives the value strategies
(names, tags, custom field names and values, custom status names) of the public module."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import strategies as st

from csmcore import conditions as cd
from csmcore.tickets import Channel, Priority, Role, Status

__all__ = ["condition_strategies", "keeps_every_value", "leaf", "tree"]

Parts = Mapping[str, Callable[[], st.SearchStrategy[Any]]]


def keeps_every_value(values: list[object]) -> bool:
    """False when a boolean and a number equal to it are both in ``values`` (In refuses that)."""
    booleans = {v for v in values if isinstance(v, bool)}
    numbers = {v for v in values if isinstance(v, int | float) and not isinstance(v, bool)}
    return not booleans & numbers


_FIELDS_FOR_CONDITIONS = (
    "status",
    "status_name",
    "priority",
    "channel",
    "group",
    "assignee",
    "requester",
    "created_by",
    "subject",
)


_ENUM_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "status": st.sampled_from(list(Status)),
    "priority": st.sampled_from(list(Priority)),
    "channel": st.sampled_from(list(Channel)),
    "created_by": st.sampled_from(list(Role)),
}

# Strategies derived from a part are built once per part strategy (the parts' factories return
# the same object each time) and not at every draw: Hypothesis validates and analyses each new
# strategy object, which made drawing conditions slow (see _derive.reuse).


@functools.lru_cache(maxsize=64)
def _or_none(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


@functools.lru_cache(maxsize=64)
def _value_lists(values: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(values, max_size=3).filter(keeps_every_value)


def _not_bool(value: object) -> bool:
    return not isinstance(value, bool)


@functools.lru_cache(maxsize=64)
def _comparable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return values.filter(_not_bool)


def _values_for(field: str, parts: Parts) -> st.SearchStrategy[Any]:
    if field in _ENUM_VALUES:
        return _ENUM_VALUES[field]
    if field in ("group", "assignee"):
        return _or_none(parts["names"]())
    if field == "status_name":
        return parts["status_names"]()
    return parts["names"]()


_LEAF_KINDS = ("eq", "in", "cmp", "tags", "merged", "custom", "const")


@st.composite
def leaf(draw: st.DrawFn, parts: Parts, kinds: tuple[str, ...] = _LEAF_KINDS) -> cd.Condition:
    """One leaf condition of one of ``kinds``."""
    kind = draw(st.sampled_from(kinds))
    if kind == "tags":
        return cd.HasTags(draw(st.frozensets(parts["tags"](), max_size=2)))
    if kind == "merged":
        return cd.Eq("merged", draw(st.booleans()))
    if kind == "const":
        return draw(st.sampled_from((cd.Always(), cd.Never())))
    if kind == "custom":
        name = "fields." + draw(parts["field_names"]())
        return cd.Eq(name, draw(parts["field_values"]()))
    if kind == "cmp":
        field = draw(st.sampled_from(("priority", "fields.seats", "fields.plan")))
        op = draw(st.sampled_from(("<", "<=", ">", ">=")))
        if field == "priority":
            value: Any = draw(_ENUM_VALUES["priority"])
        else:
            value = draw(_comparable(parts["field_values"]()))
        return cd.Compare(field, op, value)
    field = draw(st.sampled_from(_FIELDS_FOR_CONDITIONS))
    if kind == "in":
        values = draw(_value_lists(_values_for(field, parts)))
        return cd.In(field, values)
    return cd.Eq(field, draw(_values_for(field, parts)))


def _below_limit(parts: list[cd.Condition]) -> bool:
    """True when a node over ``parts`` stays within ``MAX_CONDITION_DEPTH``."""
    return all(part.depth < cd.MAX_CONDITION_DEPTH for part in parts)


def tree(max_leaves: int, parts: Parts) -> st.SearchStrategy[cd.Condition]:
    """Leaves combined with All, AnyOf and Not, at most ``max_leaves`` leaves and at most
    ``MAX_CONDITION_DEPTH`` levels."""
    return st.recursive(
        leaf(parts),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3)
            .filter(_below_limit)
            .map(lambda cs: cd.All(*cs)),
            st.lists(inner, min_size=1, max_size=3)
            .filter(_below_limit)
            .map(lambda cs: cd.AnyOf(*cs)),
            inner.filter(lambda c: c.depth < cd.MAX_CONDITION_DEPTH).map(cd.Not),
        ),
        max_leaves=max_leaves,
    )


def condition_strategies(
    max_leaves: int, parts: Parts
) -> dict[type[cd.Condition], st.SearchStrategy[Any]]:
    """A strategy per condition class, for ``conditions(kinds=...)``."""
    lists = st.lists(tree(max(1, max_leaves // 2), parts), max_size=3)
    return {
        cd.Eq: leaf(parts, ("eq", "merged", "custom")),
        cd.In: leaf(parts, ("in",)),
        cd.Compare: leaf(parts, ("cmp",)),
        cd.HasTags: leaf(parts, ("tags",)),
        cd.Always: st.just(cd.Always()),
        cd.Never: st.just(cd.Never()),
        cd.All: lists.map(lambda cs: cd.All(*cs)),
        cd.AnyOf: lists.map(lambda cs: cd.AnyOf(*cs)),
        cd.Not: tree(max_leaves, parts).map(cd.Not),
    }
