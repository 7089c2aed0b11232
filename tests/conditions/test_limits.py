"""The documented limits of conditions (issue 11): nesting depth and integer size, checked when
a condition is built and when it is read, so that hash, repr, matches, to_data and the stores
never meet a condition they cannot handle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore._values import MAX_INT_DIGITS
from csmcore.conditions import (
    MAX_CONDITION_DEPTH,
    All,
    AnyOf,
    Compare,
    Condition,
    Eq,
    In,
    Not,
    structure_condition,
)
from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import MAX_NESTING_DEPTH, from_data, to_data
from csmcore.testing.builders import make_ticket
from csmcore.testing.strategies import conditions

WRAPS: dict[str, Callable[[Condition], Condition]] = {
    "not": Not,
    "all": lambda c: All(c),
    "any": lambda c: AnyOf(Eq("merged", True), c),
}
LEAF = Eq("group", "g1")


def _chain(ops: list[str]) -> Condition:
    condition: Condition = LEAF
    for op in ops:
        condition = WRAPS[op](condition)
    return condition


def _data_chain(op: str, levels: int) -> dict[str, Any]:
    data: dict[str, Any] = {"op": "eq", "field": "group", "value": "g1"}
    for _ in range(levels):
        data = {"op": "not", "condition": data} if op == "not" else {"op": op, "conditions": [data]}
    return data


# -- depth ------------------------------------------------------------------------------------


def test_the_depth_limit_fits_the_data_nesting_limit() -> None:
    # each condition level is at most two levels of data; 7 levels of a stored SLA book above
    assert 2 * MAX_CONDITION_DEPTH + 7 <= MAX_NESTING_DEPTH


@pytest.mark.parametrize("op", sorted(WRAPS))
def test_2000_levels_built_directly_are_refused_at_the_limit(op: str) -> None:
    condition: Condition = LEAF
    refused = []
    for _ in range(2000):
        try:
            condition = WRAPS[op](condition)
        except ValidationError as err:
            refused.append(str(err))
    assert condition.depth == MAX_CONDITION_DEPTH
    assert len(refused) == 2000 - (MAX_CONDITION_DEPTH - 1)
    assert all("33 levels deep; the limit is 32 levels" in text for text in refused)


@pytest.mark.parametrize("op", ["not", "all", "any"])
def test_2000_levels_read_from_data_are_refused(op: str) -> None:
    data = _data_chain(op, 2000)
    with pytest.raises(SerializationError, match="MAX_NESTING_DEPTH"):
        from_data(data, Condition)
    with pytest.raises(SerializationError, match="MAX_CONDITION_DEPTH") as info:
        structure_condition(data)
    assert str(info.value).startswith("$.condition" if op == "not" else "$.conditions[0]")


@pytest.mark.parametrize("op", ["not", "all", "any"])
def test_one_level_too_deep_in_data_is_refused_with_its_path(op: str) -> None:
    data = _data_chain(op, MAX_CONDITION_DEPTH)  # within MAX_NESTING_DEPTH of data
    with pytest.raises(SerializationError, match="MAX_CONDITION_DEPTH"):
        from_data(data, Condition)
    assert from_data(_data_chain(op, MAX_CONDITION_DEPTH - 1), Condition).depth == 32


@pytest.mark.parametrize("op", sorted(WRAPS))
def test_a_condition_at_the_limit_works_everywhere(op: str) -> None:
    condition = _chain([op] * (MAX_CONDITION_DEPTH - 1))
    assert condition.depth == MAX_CONDITION_DEPTH
    again = from_data(to_data(condition), Condition)
    assert again == condition
    assert hash(again) == hash(condition)
    assert repr(again) == repr(condition)
    ticket = make_ticket("T-1", group="g1")
    assert again.matches(ticket) == condition.matches(ticket)


@given(st.lists(st.sampled_from(sorted(WRAPS)), max_size=2 * MAX_CONDITION_DEPTH))
def test_a_chain_is_built_exactly_when_within_the_limit(ops: list[str]) -> None:
    if len(ops) + 1 > MAX_CONDITION_DEPTH:
        with pytest.raises(ValidationError, match="MAX_CONDITION_DEPTH"):
            _chain(ops)
        return
    condition = _chain(ops)
    assert condition.depth == len(ops) + 1
    again = from_data(to_data(condition), Condition)
    assert again == condition
    assert hash(again) == hash(condition)


@given(conditions(max_leaves=12))
def test_every_accepted_condition_round_trips_and_hashes(condition: Condition) -> None:
    assert 1 <= condition.depth <= MAX_CONDITION_DEPTH
    again = from_data(to_data(condition), Condition)
    assert again == condition
    assert hash(again) == hash(condition)
    assert again.depth == condition.depth
    assert repr(again)  # (equal conditions may differ in repr: a datetime's fold)


# -- integer size -----------------------------------------------------------------------------

LARGEST = 10**MAX_INT_DIGITS - 1  # 640 nines
HUGE = [10**5000, -(10**5000), LARGEST + 1, -LARGEST - 1]
HUGE_IDS = ["10**5000", "-10**5000", "10**640", "-10**640"]
BUILDERS: list[Callable[[int], Condition]] = [
    lambda n: Eq("fields.order", n),
    lambda n: In("fields.order", [1, n]),
    lambda n: Compare("fields.order", "<", n),
    lambda n: Eq("status", n),
    lambda n: Eq("group", n),
    lambda n: Compare("priority", ">", n),
]


@pytest.mark.parametrize("number", HUGE, ids=HUGE_IDS)
@pytest.mark.parametrize("build", BUILDERS, ids=["eq", "in", "cmp", "enum", "str", "priority"])
def test_integers_of_more_than_640_digits_are_refused_when_built(
    build: Callable[[int], Condition], number: int
) -> None:
    with pytest.raises(ValidationError) as info:
        build(number)
    message = str(info.value)
    assert "is outside the integers of at most 640 digits" in message
    digits = len(str(abs(number))) if abs(number) < 10**4000 else 5001
    assert f"<an integer of {digits} digits>" in message


@pytest.mark.parametrize("number", [LARGEST, -LARGEST, 2**63, -(2**70), 0])
def test_integers_up_to_640_digits_are_kept(number: int) -> None:
    for build in BUILDERS[:3]:
        condition = build(number)
        assert from_data(to_data(condition), Condition) == condition
        assert str(number) in repr(condition)
        assert hash(condition) == hash(build(number))


@pytest.mark.parametrize("number", [LARGEST + 1, 10**4000], ids=["10**640", "10**4000"])
def test_integers_of_more_than_640_digits_are_refused_when_read(number: int) -> None:
    data = {"op": "cmp", "field": "fields.order", "cmp": ">", "value": number}
    with pytest.raises(SerializationError, match=r"^\$: value=<an integer of \d+ digits> is out"):
        from_data(data, Condition)
