"""Issue 11: conditions given arguments of the wrong type raise InvalidType (a TypeError)."""

from __future__ import annotations

import pytest

from csmcore.conditions import Compare, HasTags
from csmcore.errors import InvalidType


def test_has_tags_with_a_non_string_tag_is_invalid_type() -> None:
    with pytest.raises(InvalidType, match=r"^tags=\['a'\] is a list; expected a tag") as info:
        HasTags([["a"]])
    assert isinstance(info.value, TypeError)
    assert info.value.field == "tags"


def test_compare_with_an_op_of_the_wrong_type_is_invalid_type() -> None:
    with pytest.raises(InvalidType, match=r"^op=\[\] is a list; expected a comparison") as info:
        Compare("priority", [], "high")  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    assert info.value.field == "op"
