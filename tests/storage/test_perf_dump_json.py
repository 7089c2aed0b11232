"""The SQL stores' JSON writer (a prebuilt C encoder, for speed) writes exactly what
``json.dumps`` with compact separators writes, for any JSON-safe data."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from csmcore.storage._sql import _ENCODER, dump_json

_TEXT = st.lists(
    st.sampled_from(["\x00", "\ud800", "\udfff", "é", "😀", '"', "\\", "\n"]) | st.characters()
).map("".join)  # st.text() never draws surrogates

_JSON: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(_JSON)
def test_dump_json_writes_what_json_dumps_writes(data: Any) -> None:
    text = dump_json(data)
    assert text == json.dumps(data, separators=(",", ":"))
    assert text == _ENCODER.encode(data)
    assert text.isascii()  # NUL and surrogates escaped: every driver can store it


def test_dump_json_escapes_what_drivers_refuse() -> None:
    assert dump_json({"k\x00": ["\ud800", "é"]}) == '{"k\\u0000":["\\ud800","\\u00e9"]}'
