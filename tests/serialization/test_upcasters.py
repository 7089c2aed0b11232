"""The upcaster mechanism: a payload written at an older schema version reads as the current one.

``Greeting`` is a test-only type at schema version 2: version 1 wrote ``{"message": ...}``, version
2 writes ``{"text": ..., "lang": ...}``. Version-1 documents read through ``from_document`` and
through stores come back upcast; a schema newer than the release is refused. Stored ticket events
are exercised by declaring, for the length of one test, ``ticket.commented`` at version 2 (as a
later release would), whose version 1 named the comment's author ``writer``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import (
    from_document,
    schema_of,
    serializable,
    tag_of,
    to_data,
    to_document,
    type_info,
    upcast,
    upcast_tagged,
)
from csmcore.storage import open_store
from csmcore.storage.kit import decode_document, decode_event, encode_document, encode_event
from csmcore.tickets import Commented, Role, Ticket

TAG = "test_upcasters.greeting"
OLD_NAME = "tests.serialization.test_upcasters:Greeting"
UTC = timezone.utc


def _greeting_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 held only the message (always English)."""
    return {"text": data["message"], "lang": "en"}


@serializable(TAG, version=2, aliases=(OLD_NAME,), upcasters={1: _greeting_1_to_2})
@attrs.frozen(kw_only=True)
class Greeting:
    text: str
    lang: str


V1_DATA = {"message": "hello"}
CURRENT = Greeting(text="hello", lang="en")


# --- from_document ---------------------------------------------------------------------------


def test_the_current_document_names_the_tag_and_schema() -> None:
    doc = to_document(Greeting(text="hallo", lang="de"))
    assert doc == {"type": TAG, "schema": 2, "data": {"text": "hallo", "lang": "de"}}
    assert from_document(json.loads(json.dumps(doc)), Greeting) == Greeting(text="hallo", lang="de")
    assert schema_of(Greeting) == 2
    assert tag_of(Greeting) == TAG


@pytest.mark.parametrize(
    "doc",
    [
        {"type": TAG, "schema": 1, "data": V1_DATA},
        {"type": TAG, "data": V1_DATA},  # no schema: written before schema versions, so 1
        {"type": OLD_NAME, "data": V1_DATA},  # the alias an older release wrote
    ],
)
def test_a_version_1_document_reads_upcast(doc: dict[str, Any]) -> None:
    assert from_document(doc) == CURRENT
    assert from_document(doc, Greeting) == CURRENT
    assert doc["data"] == V1_DATA  # the caller's document is left alone


def test_upcast_runs_the_steps_from_the_stored_version() -> None:
    info = type_info(OLD_NAME)
    assert info.cls is Greeting
    assert upcast(info, V1_DATA, 1) == {"text": "hello", "lang": "en"}
    assert upcast(info, {"text": "x", "lang": "fr"}, 2) == {"text": "x", "lang": "fr"}


def test_a_schema_newer_than_this_release_is_refused() -> None:
    with pytest.raises(SerializationError, match=r"\$\.schema: .*version 3 is newer .*\(up to 2\)"):
        from_document({"type": TAG, "schema": 3, "data": {"text": "x", "lang": "en"}})
    with pytest.raises(SerializationError, match=r"\$\.schema: .*version 3 is newer"):
        upcast_tagged({"type": TAG, "schema": 3})


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([TAG, V1_DATA], r"^\$: \[.*\] is not a document"),
        ("x", r"^\$: 'x' is not a document"),
        ({"type": TAG, "data": V1_DATA, "extra": 1}, r"^\$: unknown keys \['extra'\]"),
        ({"data": V1_DATA}, r"^\$\.type: required field missing"),
        ({"type": TAG}, r"^\$\.data: required field missing"),
        ({"type": 7, "data": {}}, r"^\$\.type: 7 is not a type tag"),
        ({"type": "no.such_tag", "data": {}}, r"^\$\.type: .*'no\.such_tag' is not a known"),
        ({"type": "csmcore.gone:Thing", "data": {}}, r"^\$\.type: .*'csmcore\.gone:Thing'"),
        ({"type": TAG, "schema": "2", "data": {}}, r"^\$\.schema: '2' is not a whole number"),
        ({"type": TAG, "schema": True, "data": {}}, r"^\$\.schema: True is not a whole number"),
        ({"type": TAG, "schema": 0, "data": {}}, r"^\$\.schema: 0 is not a whole number"),
        ({"type": TAG, "schema": 2.0, "data": {}}, r"^\$\.schema: 2\.0 is not a whole number"),
        ({"type": TAG, "schema": 1, "data": ["hello"]}, r"^\$\.data: .*cannot be upcast from"),
        ({"type": TAG, "schema": 2, "data": {"text": 1}}, r"^\$\.data: cannot build Greeting"),
    ],
)
def test_malformed_documents_are_refused_naming_the_problem(doc: Any, message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        from_document(doc)


def test_from_document_checks_the_type_against_cls() -> None:
    from csmcore.calendars import BusinessCalendar

    with pytest.raises(SerializationError, match=r"\$\.type: .* names a Greeting, not a Busi"):
        from_document({"type": TAG, "data": V1_DATA}, BusinessCalendar)
    assert from_document({"type": TAG, "data": V1_DATA}, object) == CURRENT  # a base class


def test_to_document_needs_a_tag() -> None:
    @attrs.frozen
    class Untagged:
        x: int

    with pytest.raises(SerializationError, match="no type tag"):
        to_document(Untagged(x=1))
    with pytest.raises(SerializationError, match="no type tag"):
        schema_of(Untagged)
    with pytest.raises(ValidationError, match="no registered type tag"):
        encode_document(Untagged(x=1))


# --- registry errors -------------------------------------------------------------------------


def test_a_tag_or_alias_names_one_class() -> None:
    class Other:
        pass

    with pytest.raises(ValidationError, match=r"'test_upcasters\.greeting' already names Greet"):
        serializable(TAG)(Other)
    with pytest.raises(ValidationError, match="already names Greeting"):
        serializable("test_upcasters.other", aliases=(OLD_NAME,))(Other)
    with pytest.raises(ValidationError, match="already has the tag"):
        serializable("test_upcasters.greeting_again")(Greeting)
    assert type_info(TAG).cls is Greeting
    with pytest.raises(SerializationError, match="not a known csmcore type"):
        type_info("test_upcasters.other")  # nothing was registered by the refused calls


@pytest.mark.parametrize("tag", ["", "Greeting", "a..b", "a.", ".a", "a-b", "1a", "a b", 7])
def test_a_malformed_tag_is_refused(tag: Any) -> None:
    with pytest.raises(ValidationError, match="is not a type tag"):
        serializable(tag)


def test_every_older_version_needs_an_upcaster() -> None:
    with pytest.raises(ValidationError, match=r"version 3 but has no upcaster .*\[2\]"):
        serializable("test_upcasters.gappy", version=3, upcasters={1: _greeting_1_to_2})
    with pytest.raises(ValidationError, match=r"version 2 but has no upcaster .*\[1\]"):
        serializable("test_upcasters.gappy", version=2)
    for version in (0, -1, True, 1.5):
        with pytest.raises(ValidationError, match="is not a whole number >= 1"):
            serializable("test_upcasters.gappy", version=version)  # type: ignore[arg-type]


# --- stores ----------------------------------------------------------------------------------


def test_the_memory_store_keeps_the_current_version() -> None:
    store = open_store("memory://")
    try:
        store.rules.put("hello", from_document({"type": TAG, "data": V1_DATA}), expected_version=0)
        assert store.rules.get("hello").value == CURRENT
    finally:
        store.close()


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _set_document(path: Path, key: str, doc: dict[str, Any]) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "UPDATE csm_documents SET data = ? WHERE kind = 'rules' AND key = ?",
            (json.dumps(doc), key),
        )
    conn.close()


def test_version_1_documents_read_upcast_from_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    store = open_store(_sqlite_url(db))
    try:
        store.rules.put("new", Greeting(text="hej", lang="sv"), expected_version=0)
        for key in ("v1", "old", "future"):
            store.rules.put(key, Greeting(text="placeholder", lang="en"), expected_version=0)
    finally:
        store.close()
    conn = sqlite3.connect(db)
    (text,) = conn.execute("SELECT data FROM csm_documents WHERE key = 'new'").fetchone()
    written = json.loads(text)
    conn.close()
    assert written == {"type": TAG, "schema": 2, "data": {"text": "hej", "lang": "sv"}}

    _set_document(db, "v1", {"type": TAG, "schema": 1, "data": V1_DATA})
    _set_document(db, "old", {"type": OLD_NAME, "data": V1_DATA})
    _set_document(db, "future", {"type": TAG, "schema": 3, "data": {}})
    store = open_store(_sqlite_url(db))
    try:
        assert store.rules.get("v1").value == CURRENT
        assert [v.value for v in store.rules.history("old")] == [CURRENT]
        assert store.rules.get("new").value == Greeting(text="hej", lang="sv")
        with pytest.raises(SerializationError, match=r"version 3 is newer than this csmcore"):
            store.rules.get("future")
    finally:
        store.close()


def test_kit_reads_a_version_1_document() -> None:
    assert decode_document({"type": OLD_NAME, "data": V1_DATA}) == CURRENT
    assert encode_document(CURRENT) == to_document(CURRENT)


# --- stored events ---------------------------------------------------------------------------


def _commented_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """The made-up version 1 of ``ticket.commented`` called the author ``writer``."""
    out = {k: v for k, v in data.items() if k != "writer"}
    if "writer" in data:
        out["author"] = data["writer"]
    return out


@pytest.fixture
def commented_v2() -> Iterator[None]:
    """``ticket.commented`` at schema version 2 for one test, as a later release would declare
    it; declared back as it was afterwards."""
    info = type_info(tag_of(Commented))
    serializable(info.tag, version=2, aliases=info.aliases, upcasters={1: _commented_1_to_2})(
        Commented
    )
    try:
        yield
    finally:
        serializable(
            info.tag, version=info.version, aliases=info.aliases, upcasters=info.upcasters
        )(Commented)
    assert schema_of(Commented) == info.version


def _ticket() -> Ticket:
    t, _ = Ticket.create(
        at=datetime(2025, 3, 3, 9, tzinfo=UTC),
        ticket_id="T-1",
        created_by=Role.REQUESTER,
        channel="email",
        priority="normal",
        requester="ann",
    )
    t, _ = t.comment(datetime(2025, 3, 3, 10, tzinfo=UTC), Role.AGENT, author="bob")
    return t


def _v1_comment(ticket: Ticket) -> dict[str, Any]:
    """The comment of ``_ticket()`` as version 1 wrote it: ``writer``, no ``schema``."""
    data: dict[str, Any] = to_data(ticket.events[1])
    data["writer"] = data.pop("author")
    return data


@pytest.mark.usefixtures("commented_v2")
def test_kit_reads_version_1_events_upcast() -> None:
    ticket = _ticket()
    comment = ticket.events[1]
    assert encode_event(comment, with_schema=True)["schema"] == 2
    assert decode_event(encode_event(comment, with_schema=True)) == comment
    v1 = _v1_comment(ticket)
    assert decode_event(v1) == comment
    assert decode_event({**v1, "schema": 1}) == comment
    assert "writer" in v1  # left unchanged
    with pytest.raises(SerializationError, match=r"\$\.schema: .*version 3 is newer"):
        decode_event({**encode_event(comment), "schema": 3})


def test_events_without_upcasters_read_with_or_without_schema() -> None:
    ticket = _ticket()
    for event in ticket.events:
        assert encode_event(event, with_schema=True)["schema"] == 1
        assert "schema" not in encode_event(event)
        assert decode_event(encode_event(event)) == event
        assert decode_event(encode_event(event, with_schema=True)) == event


def _set_event(path: Path, seq: int, data: dict[str, Any]) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE csm_events SET data = ? WHERE seq = ?", (json.dumps(data), seq))
    conn.close()


@pytest.mark.usefixtures("commented_v2")
def test_version_1_events_read_upcast_from_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    ticket = _ticket()
    store = open_store(_sqlite_url(db))
    try:
        store.tickets.add(ticket)
    finally:
        store.close()
    conn = sqlite3.connect(db)
    rows = [json.loads(d) for (d,) in conn.execute("SELECT data FROM csm_events ORDER BY seq")]
    conn.close()
    assert [row["schema"] for row in rows] == [1, 2]  # each event's current schema version

    _set_event(db, 2, _v1_comment(ticket))
    store = open_store(_sqlite_url(db))
    try:
        assert store.tickets.get("T-1") == ticket
    finally:
        store.close()

    _set_event(db, 2, {**rows[1], "schema": 3})
    store = open_store(_sqlite_url(db))
    try:
        with pytest.raises(SerializationError, match=r"version 3 is newer than this csmcore"):
            store.tickets.get("T-1")
    finally:
        store.close()
