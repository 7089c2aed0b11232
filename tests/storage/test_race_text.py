"""Text that a driver cannot store, on every store (memory, SQLite, PostgreSQL).

(The ``test_race_`` prefix only keeps this module inside the file pattern of the helper that
wrote it; these checks belong with the conformance suite's ticket and document tests.)

- Ticket ids and document keys with NUL or a lone surrogate are refused with ValidationError
  naming the argument, the same way on every store, and nothing is written.
- Inside a document's JSON value, NUL and lone surrogates are ordinary characters: JSON escapes
  them, so every store returns exactly the value it was given. The one exception is a high
  surrogate directly followed by a low one, which JSON reads back as the single character the
  pair stands for: every store refuses it (ValidationError), the memory store included.
- If such text reaches a SQL driver anyway (here through a back door, past the validators), the
  driver's error comes out as a ValidationError with the driver's error as its cause, never as
  a raw UnicodeEncodeError or psycopg error, and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csmcore.conditions import Always
from csmcore.errors import CsmError, NotFound, ValidationError
from csmcore.sla import Metric, SlaPolicy, SlaTarget
from csmcore.storage import Store, open_store
from csmcore.testing.storage_suite import T0, make_ticket
from csmcore.tickets import Commented, Role, Ticket

StoreFactory = Callable[[], Store]

BAD_TEXT = ["k\x00", "\x00", "k\ud800", "\udfff", "é\udc80x"]
"""Keys no store can keep: NUL, lone surrogates (high, low, after other non-ASCII text)."""


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def stores(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    """Fresh stores of every kind (PostgreSQL: skipped without the DSN, required with it);
    every store built is closed after the test."""
    if request.param == "memory":
        factory: StoreFactory = lambda: open_store("memory://")  # noqa: E731
    else:
        factory = request.getfixturevalue(f"{request.param}_factory")
    built: list[Store] = []

    def build() -> Store:
        store = factory()
        built.append(store)
        return store

    yield build
    for store in built:
        store.close()


def _policy(name: str, target: str = "first reply") -> SlaPolicy:
    return SlaPolicy(
        name=name,
        position=1,
        default=True,
        targets=[
            SlaTarget(metric=Metric.FIRST_REPLY, within=timedelta(hours=1), name=target),
        ],
    )


@pytest.mark.parametrize("bad", BAD_TEXT)
def test_keys_and_ids_no_store_can_keep_are_refused(stores: StoreFactory, bad: str) -> None:
    store = stores()
    policy = _policy("ok")
    refusals: list[Callable[[], object]] = [
        lambda: store.policies.put(bad, policy, expected_version=0),
        lambda: store.policies.get(bad),
        lambda: store.policies.get(bad, version=1),
        lambda: store.policies.history(bad),
        lambda: store.calendars.put(bad, policy, expected_version=0),
        lambda: store.tickets.get(bad),
        lambda: store.tickets.append(
            bad, [Commented(at=T0, author_role=Role.AGENT)], expected_version=1
        ),
    ]
    for call in refusals:
        with pytest.raises(ValidationError, match="cannot be stored") as info:
            call()
        assert repr(bad) in str(info.value)
        assert ("key=" in str(info.value)) or ("ticket_id=" in str(info.value))
    assert store.policies.keys() == []
    assert store.calendars.keys() == []


def test_the_same_key_with_valid_text_is_fine(stores: StoreFactory) -> None:
    store = stores()
    key = "clé ✓ 𝄞"  # non-ASCII and a character outside the BMP (a valid surrogate pair in UTF-16)
    store.policies.put(key, _policy("ok"), expected_version=0)
    assert store.policies.keys() == [key]
    assert store.policies.get(key).value == _policy("ok")
    with pytest.raises(NotFound):
        store.tickets.get(key)


ODD_NAMES = [
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\udc00\ud800",  # low then high: not a pair
    "\ud83d\x00\ude00",
    "\x00😀\ud83d",
    "\u2028\u2029\x7f\ufeff",
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_nul_and_lone_surrogates_inside_a_document_round_trip(
    stores: StoreFactory, name: str
) -> None:
    store = stores()
    policy = _policy(name, target=f"<{name}>")
    store.policies.put("p", policy, expected_version=0)
    store.policies.put("p", _policy("plain"), expected_version=1)
    got = store.policies.get("p", version=1).value
    assert got == policy
    assert got.name == name  # character for character
    assert got.targets[0].name == f"<{name}>"
    assert [v.value for v in store.policies.history("p")] == [policy, _policy("plain")]
    # and it survives a reopen where the store has one
    if not store.url.startswith("memory:"):
        again = open_store(store.url)
        try:
            assert again.policies.get("p", version=1).value == policy
        finally:
            again.close()


@pytest.mark.parametrize("joined", ["\ud83d\ude00", "a\udbff\udfffb", "\ud800\udc00\ud800"])
def test_surrogates_side_by_side_are_refused(stores: StoreFactory, joined: str) -> None:
    store = stores()
    with pytest.raises(ValidationError, match="side by side"):
        store.policies.put("p", _policy(joined), expected_version=0)
    with pytest.raises(ValidationError, match="side by side"):
        store.policies.put("p", _policy("ok", target=joined), expected_version=0)
    assert store.policies.keys() == []


def _survives_json(text: str) -> bool:
    decoded: object = json.loads(json.dumps(text))
    return decoded == text


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.lists(  # not st.text(), which never draws surrogates
        st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "é", "😀"])
        | st.characters(),
        min_size=1,
    )
    .map("".join)
    .filter(lambda s: bool(s.strip()))
)
def test_any_text_in_a_document_round_trips_or_is_refused(stores: StoreFactory, name: str) -> None:
    """Property: whatever characters a document holds, every store returns exactly them, or
    (only when JSON could not give them back) refuses them and writes nothing."""
    store = stores()
    policy = _policy(name)
    if _survives_json(name):
        store.policies.put("p", policy, expected_version=0)
        assert store.policies.get("p").value.name == name
    else:
        with pytest.raises(ValidationError, match="side by side"):
            store.policies.put("p", policy, expected_version=0)
        assert store.policies.keys() == []
    store.close()


def _smuggle(ticket: Ticket, **values: Any) -> Ticket:
    """``ticket`` with creation values its validators would refuse (a back door: no caller can
    build this through the public API)."""
    for name, value in values.items():
        object.__setattr__(ticket.events[0], name, value)
    return ticket


@pytest.mark.parametrize(
    "values",
    [{"requester": "ann\ud800"}, {"subject": "x\udfffy"}, {"subject": "x\x00y"}],
    ids=["high-surrogate", "low-surrogate", "nul"],
)
def test_text_that_reaches_the_driver_becomes_a_validation_error(
    stores: StoreFactory, values: dict[str, str]
) -> None:
    store = stores()
    if store.url.startswith("memory:"):
        pytest.skip("the memory store keeps objects: there is no driver to refuse text")
    if store.url.startswith("sqlite:") and "\x00" in "".join(values.values()):
        pytest.skip("SQLite keeps NUL in text; only the validators keep it out")
    bad = _smuggle(make_ticket("T-bad"), **values)
    with pytest.raises(ValidationError, match=r"cannot store|refused a value") as info:
        store.tickets.add_many([make_ticket("T-good"), bad])
    cause = info.value.__cause__
    assert cause is not None
    assert not isinstance(cause, CsmError)  # the driver's own error, kept as the cause
    assert store.tickets.count(Always()) == 0  # nothing half-written
