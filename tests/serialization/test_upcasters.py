"""The upcaster mechanism: a payload written at an older schema version reads as the current one.

``Greeting`` is a test-only type at schema version 2: version 1 wrote ``{"message": ...}``, version
2 writes ``{"text": ..., "lang": ...}``. Version-1 documents read through ``from_document`` and
through stores come back upcast; a schema newer than the release is refused. Ticket events (their
data carries ``"schema"`` wherever it goes: ``to_data``, ticket JSON, stores) are exercised by
declaring, for the length of one test, ``ticket.commented`` at version 2 (as a later release
would), whose version 1 named the comment's author ``writer``.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import attrs
import pytest

from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import (
    from_data,
    from_document,
    schema_of,
    schema_versions,
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
from csmcore.tickets import Commented, Role, Ticket, TicketEventBase, event_from_data
from csmcore.tickets._codec import fast_event_from_data, reference_event_from_data

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


@contextmanager
def _commented_at_v2(upcaster: Any) -> Iterator[None]:
    """``ticket.commented`` at schema version 2 (upcast from 1 by ``upcaster``) inside the
    block, as a later release would declare it; declared back as it was afterwards."""
    info = type_info(tag_of(Commented))
    serializable(info.tag, version=2, aliases=info.aliases, upcasters={1: upcaster})(Commented)
    try:
        yield
    finally:
        serializable(
            info.tag, version=info.version, aliases=info.aliases, upcasters=info.upcasters
        )(Commented)
    assert schema_of(Commented) == info.version


@pytest.fixture
def commented_v2() -> Iterator[None]:
    """``ticket.commented`` at schema version 2 for one test (see ``_commented_1_to_2``)."""
    with _commented_at_v2(_commented_1_to_2):
        yield


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
    del data["schema"]
    data["writer"] = data.pop("author")
    return data


def _event_decoders(cls: type[TicketEventBase], path: str = "$") -> list[Any]:
    """Every way to read the data of a ``cls`` event, each naming ``path`` in its errors (the
    converter hooks and ``decode_event``: ``$``)."""
    return [
        lambda d: event_from_data(d, path),
        lambda d: reference_event_from_data(d, path),
        lambda d: from_data(d, TicketEventBase),
        lambda d: from_data(d, cls),
        decode_event,
    ]


@pytest.mark.usefixtures("commented_v2")
def test_kit_reads_version_1_events_upcast() -> None:
    ticket = _ticket()
    comment = ticket.events[1]
    assert encode_event(comment)["schema"] == 2
    assert decode_event(encode_event(comment)) == comment
    v1 = _v1_comment(ticket)
    assert decode_event(v1) == comment
    assert decode_event({**v1, "schema": 1}) == comment
    assert "writer" in v1  # left unchanged
    with pytest.raises(SerializationError, match=r"\$\.schema: .*version 3 is newer"):
        decode_event({**encode_event(comment), "schema": 3})


def test_events_without_upcasters_read_with_or_without_schema() -> None:
    ticket = _ticket()
    for event in ticket.events:
        data = encode_event(event)
        assert data == to_data(event)
        assert data["schema"] == schema_of(type(event))  # (ticket.created is at 2: issue 10)
        without = {k: v for k, v in data.items() if k != "schema"}  # as 0.1.0.dev0 wrote it
        for decode in _event_decoders(type(event)):
            assert decode(data) == event
            assert decode(without) == event


def test_every_event_of_a_ticket_carries_its_schema() -> None:
    ticket = _ticket()
    data = to_data(ticket)
    # ticket.created is at version 2 since issue 10 (priority_name), ticket.commented at 1
    assert [e["schema"] for e in data["events"]] == [2, 1]
    assert [e["schema"] for e in json.loads(json.dumps(data))["events"]] == [2, 1]
    assert all(to_data(e)["schema"] == schema_of(type(e)) for e in ticket.events)


@pytest.mark.usefixtures("commented_v2")
def test_event_data_carries_the_current_schema_of_its_tag() -> None:
    ticket = _ticket()
    assert schema_versions()[Commented] == 2
    assert [e["schema"] for e in to_data(ticket)["events"]] == [2, 2]  # created: 2 (issue 10)
    assert from_data(to_data(ticket), Ticket) == ticket


def test_a_ticket_json_without_schemas_reads_as_version_1() -> None:
    ticket = _ticket()
    data = json.loads(json.dumps(to_data(ticket)))
    for event in data["events"]:
        del event["schema"]
    kept = copy.deepcopy(data)
    assert from_data(data, Ticket) == ticket
    assert data == kept


@pytest.mark.usefixtures("commented_v2")
@pytest.mark.parametrize("schema", [None, 1])
def test_an_older_event_in_a_ticket_json_reads_upcast(schema: int | None) -> None:
    """Not only stores: a JSON export of tickets written before ``ticket.commented`` went to
    version 2 (with or without ``"schema"``) reads upcast, and the caller's data is left as it
    was."""
    ticket = _ticket()
    current = to_data(ticket)
    old_comment = _v1_comment(ticket)
    if schema is not None:
        old_comment["schema"] = schema
    data = json.loads(json.dumps({**current, "events": [current["events"][0], old_comment]}))
    kept = copy.deepcopy(data)
    assert from_data(data, Ticket) == ticket
    assert data == kept
    for decode in _event_decoders(Commented, "$.events[1]"):
        assert decode(data["events"][1]) == ticket.events[1]
    assert data == kept
    assert fast_event_from_data(data["events"][1]) is None  # only the full decoders upcast


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (2, "version 2 is newer than this csmcore reads \\(up to 1\\)"),
        (99, "version 99 is newer"),
        (0, "version 0 is not a whole number >= 1"),
        (True, "version True is not a whole number >= 1"),
        (1.0, "version 1.0 is not a whole number >= 1"),
        ("1", "version '1' is not a whole number >= 1"),
        (None, "version None is not a whole number >= 1"),
    ],
)
def test_a_newer_or_malformed_event_schema_is_refused_naming_the_path(
    schema: Any, message: str
) -> None:
    ticket = _ticket()
    data = to_data(ticket)
    data["events"][1]["schema"] = schema
    named = r"\.schema: 'ticket\.commented' payload " + message
    with pytest.raises(SerializationError, match=r"^\$\.events\[1\]" + named):
        from_data(data, Ticket)
    comment = data["events"][1]
    decoders = _event_decoders(Commented, "$.x[1]")
    paths = [r"\$\.x\[1\]", r"\$\.x\[1\]", r"\$", r"\$", r"\$"]
    for decode, path in zip(decoders, paths, strict=True):
        with pytest.raises(SerializationError, match=f"^{path}{named}"):
            decode(comment)
    assert fast_event_from_data(comment) is None
    assert comment["schema"] is schema  # left as it was


@pytest.mark.usefixtures("commented_v2")
def test_upcast_tagged_copies_and_says_which_version_it_gives() -> None:
    ticket = _ticket()
    current = to_data(ticket.events[1])
    assert upcast_tagged(current) is current  # nothing to do: the very same data
    v1 = _v1_comment(ticket)
    kept = copy.deepcopy(v1)
    upcast_data = upcast_tagged(v1)
    assert upcast_data == current
    assert v1 == kept
    assert upcast_tagged(upcast_data) is upcast_data  # reading it again upcasts nothing


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
    assert [row["schema"] for row in rows] == [2, 2]  # each event's current schema version

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


@pytest.mark.parametrize(
    ("upcaster", "message"),
    [
        (lambda data: [data], r"^\$\.e: the upcasters of 'commented' gave \[.*\], not a mapping"),
        (lambda data: data["nope"], r"^\$\.e\.schema: .*cannot be upcast from version 1 to 2"),
        (lambda data: {**data, "extra": 1}, r"^\$\.e: unknown keys \['extra'\]"),
    ],
)
def test_a_failing_upcaster_gets_the_same_error_on_both_paths(upcaster: Any, message: str) -> None:
    old = {"type": "commented", "at": "2025-03-03T09:00:00+00:00", "author_role": "agent"}
    with _commented_at_v2(upcaster):
        for decode in (event_from_data, reference_event_from_data):
            with pytest.raises(SerializationError, match=message):
                decode(old, "$.e")
