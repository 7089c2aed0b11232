"""Every csmcore type round-trips through the document envelope, and through the names the
previous release wrote (its module-path aliases)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import csmcore.testing.strategies  # noqa: F401  (registers the strategies for st.from_type)
from csmcore.serialization import (
    from_document,
    registered_types,
    schema_of,
    tag_of,
    to_data,
    to_document,
    type_info,
)
from csmcore.storage.kit import decode_document, encode_document

CSMCORE_TYPES = sorted(
    (tag, cls) for tag, cls in registered_types().items() if cls.__module__.startswith("csmcore.")
)


def test_every_csmcore_type_keeps_its_module_path_as_an_alias() -> None:
    assert len(CSMCORE_TYPES) >= 25
    for tag, cls in CSMCORE_TYPES:
        info = type_info(tag)
        assert any(":" in alias for alias in info.aliases), tag
        assert all(type_info(alias) is info for alias in info.aliases)
        assert tag_of(cls) == tag
        assert ":" not in tag


values: st.SearchStrategy[Any] = st.sampled_from(CSMCORE_TYPES).flatmap(
    lambda item: st.from_type(item[1])
)


@settings(max_examples=150, deadline=None)
@given(values)
def test_every_type_round_trips_through_its_document(value: Any) -> None:
    doc = json.loads(json.dumps(to_document(value)))
    assert doc == {
        "type": tag_of(type(value)),
        "schema": schema_of(type(value)),
        "data": doc["data"],
    }
    assert from_document(doc) == value
    assert from_document(doc, type(value)) == value
    assert decode_document(json.loads(json.dumps(encode_document(value)))) == value
    for alias in type_info(doc["type"]).aliases:
        assert from_document({"type": alias, "data": to_data(value)}) == value
