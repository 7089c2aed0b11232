"""The ``tickets`` role with odd text, the longest ids and refused ids (:class:`TextTests`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore import conditions as cd
from csmcore._values import text_problem
from csmcore.calendars import BusinessCalendar
from csmcore.errors import (
    NotFound,
    ValidationError,
)
from csmcore.storage.kit import KINDS, MAX_ID_LENGTH
from csmcore.storage.protocols import Store, VersionedRepository
from csmcore.testing import strategies as cs
from csmcore.testing.builders import T0, make_comment, make_policy, make_ticket
from csmcore.testing.storage_suite._base import (
    StoreFactory,
    StoreFixtures,
    assert_driver_cause,
    property_settings,
)
from csmcore.tickets import (
    Assigned,
    Commented,
    FieldsChanged,
    Merged,
    Role,
    Status,
    StatusChanged,
    StatusMap,
    TagsChanged,
    Ticket,
    TicketEvent,
)

LONG_TEXTS = (
    "".join(f"{n} \u00e9\u4e2d\U0001f600\u05e9\u0627\r\n\t e\u0301 " for n in range(6_000)),
    "\U0001f600" * 25_000,
)
"""Long texts: 100,000 characters of mixed planes and scripts, and one astral character
repeated (100,000 bytes of UTF-8)."""

ODD_TEXTS = (
    "plain ascii",
    "\u00dcn\u00efc\u00f6d\u00e9 \u2713 \u4e2d\u6587 \u65e5\u672c\u8a9e \ud55c\uad6d\uc5b4",
    "\U0001d518\U0001d52b\U0001d526 \U0001d11e \U0001f600 \U00020000",  # astral planes
    "e\u0301",  # e + combining acute: must not become the precomposed "\u00e9"
    "\u00e9",
    "a\u0308\u0301\u20dd\u0489",  # stacked combining marks
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u202eevil\u202c \u200f",  # RTL
    "\U0001f469\u200d\U0001f469\u200d\U0001f467 \U0001f3f3\ufe0f\u200d\U0001f308",  # ZWJ
    "\U0001f44d\U0001f3fd \U0001f1e9\U0001f1ea",  # skin tone, flag
    "line\r\nline",  # not normalised to "\n"
    "cr\ronly",
    "\n",
    "\u2028\u2029\u0085",
    "tab\tvt\x0bff\x0c",
    "\ufeffbom",
    "\ufffe\uffff\U0010ffff\ue000\U000f0000",  # noncharacters and private use
    "\x01\x1f\x7f\x80\x9f",  # controls
    "  spaced  ",
    "quote ' \" ` \\ % _ ; --",
    " ",
)
"""Text every store must keep exactly: any Unicode the domain accepts."""

LONGEST_ID_CHARACTERS = ("k", "\u00e9", "\u4e2d", "\U0001f600")
"""Characters of one to four bytes in UTF-8; :data:`~csmcore.storage.kit.MAX_ID_LENGTH` (255)
of the last are 1,020 bytes, which an index entry of the backend must hold."""

REFUSED_IDS = {
    "nul": "k\x00",
    "only-nul": "\x00",
    "high-surrogate": "k\ud800",
    "low-surrogate": "\udfff",
    "surrogate-after-non-ascii": "\u00e9\udc80x",
    "256-ascii": "k" * (MAX_ID_LENGTH + 1),
    "256-astral": "\U0001f600" * (MAX_ID_LENGTH + 1),
}
"""Ticket ids and document keys no store may accept: NUL, lone surrogates, one character over
the limit."""


def _key(text: str, n: int) -> str:
    """A non-empty piece of ``text`` usable in ids, tags, field names and keys: the ids and tags
    :func:`_text_ticket` makes of it (two characters longer) stay within the limit."""
    suffix = f"-{n}"
    piece = text[: MAX_ID_LENGTH - 2 - len(suffix)].strip() or "k"
    return f"{piece}{suffix}"


def _text_ticket(ticket_id: str, text: str, key: str) -> Ticket:
    """A ticket carrying ``text`` in every free-text place of its events (``key`` where the text
    names something: tags, field names)."""
    name = text or "-"  # places that need a non-empty string
    at = T0 + timedelta(minutes=1)
    status_names = {s.value for s in Status}
    created = make_ticket(
        ticket_id,
        requester=name,
        subject=text,
        group=name,
        assignee=name,
        actor=name,
        tags={key},
        fields={key: text, "plain": name},
    ).created
    events: list[TicketEvent] = [
        created,
        Commented(at=at, author_role=Role.AGENT, author=name, actor=name),
        StatusChanged(
            at=at, status=Status.OPEN, status_name=None if name in status_names else name
        ),
        FieldsChanged(at=at, changes={"note": text}),
        TagsChanged(at=at, added={f"{key}+"}),
        Merged(at=at, into=f"{key}>"),
    ]
    return Ticket.from_events(events)


def _text_conditions(ticket: Ticket, key: str) -> list[cd.Condition]:
    text = ticket.subject
    name = ticket.requester
    return [
        cd.Eq("requester", name),
        cd.Eq("subject", text),
        cd.Eq("group", name),
        cd.In("assignee", [name, "nobody"]),
        cd.Eq("status_name", ticket.status_name),
        cd.HasTags({key, f"{key}+"}),
        cd.Eq(f"fields.{key}", text),
        cd.Eq("fields.note", text),
        cd.Compare("fields.note", ">=", text),
    ]


def _text_positions(text: str) -> dict[str, Callable[[], object]]:
    """Every place text enters a ticket, an event or a condition, each filled with ``text``."""
    at = T0 + timedelta(minutes=1)
    return {
        "ticket_id": lambda: make_ticket(text),
        "requester": lambda: make_ticket("T-x", requester=text),
        "subject": lambda: make_ticket("T-x", subject=text),
        "group": lambda: make_ticket("T-x", group=text),
        "assignee": lambda: make_ticket("T-x", assignee=text),
        "actor": lambda: make_ticket("T-x", actor=text),
        "tag": lambda: make_ticket("T-x", tags={text}),
        "field name": lambda: make_ticket("T-x", fields={text: 1}),
        "field value": lambda: make_ticket("T-x", fields={"plan": text}),
        "custom status": lambda: StatusMap(custom={text: Status.OPEN}),
        "status name": lambda: StatusChanged(at=at, status=Status.OPEN, status_name=text),
        "comment author": lambda: Commented(at=at, author_role=Role.AGENT, author=text),
        "assignee change": lambda: Assigned(at=at, assignee=text, group=None),
        "tag change": lambda: TagsChanged(at=at, added={text}),
        "field change": lambda: FieldsChanged(at=at, changes={"plan": text}),
        "merge target": lambda: Merged(at=at, into=text),
        "Eq": lambda: cd.Eq("requester", text),
        "In": lambda: cd.In("group", ["ok", text]),
        "Compare": lambda: cd.Compare("fields.plan", ">", text),
        "HasTags": lambda: cd.HasTags({"ok", text}),
        "condition field": lambda: cd.Eq(f"fields.{text}", 1),
    }


def _refused_text() -> st.SearchStrategy[str]:
    """Text with at least one character the domain refuses (NUL, a lone surrogate)."""
    bad = st.just("\x00") | st.characters(categories=["Cs"])
    return st.builds(lambda a, b, c: a + b + c, cs.text(max_size=5), bad, cs.text(max_size=5))


class TextTests(StoreFixtures):
    """Any text a ticket accepts comes back from the store exactly, and is found exactly; text
    the domain refuses cannot be built into anything a store is given."""

    def _round_trip(self, store: Store, texts: list[tuple[str, str]]) -> None:
        """Store a ticket per ``(text, key)`` (whole and event by event), then read and query."""
        stored: list[Ticket] = []
        for text, key in texts:
            whole = _text_ticket(f"W {key}", text, key)
            store.tickets.add(whole)
            stepwise = _text_ticket(f"S {key}", text, key)
            store.tickets.add(Ticket.from_events(stepwise.events[:1]))
            for version, event in enumerate(stepwise.events[1:], 1):
                store.tickets.append(stepwise.id, [event], expected_version=version)
            calendar = BusinessCalendar.weekly("09:00", "17:00")
            assert store.calendars.put(key, calendar, expected_version=0).key == key
            stored += [whole, stepwise]
        every = sorted(store.tickets.find(cd.Always()), key=lambda t: t.id)
        for ticket in stored:
            loaded = store.tickets.get(ticket.id)
            assert loaded == ticket
            assert (loaded.subject, loaded.fields["note"]) == (ticket.subject,) * 2
            assert ticket in every
        for text, key in texts:
            assert store.calendars.get(key).key == key
            assert key in list(store.calendars.keys())
            for condition in _text_conditions(_text_ticket("-", text, key), key):
                expected = [t for t in every if condition.matches(t)]
                assert store.tickets.find(condition) == expected, condition
                assert store.tickets.count(condition) == len(expected), condition

    def test_odd_text_round_trips_exactly(self, store: Store) -> None:
        self._round_trip(store, [(text, _key(text, n)) for n, text in enumerate(ODD_TEXTS)])

    def test_very_long_text_round_trips_exactly(self, store: Store) -> None:
        self._round_trip(store, [(text, _key(text, n)) for n, text in enumerate(LONG_TEXTS)])

    def test_any_text_the_domain_accepts_round_trips_exactly(self, store: Store) -> None:
        counter = itertools.count()

        @property_settings
        @given(text=cs.text(max_size=40), key=cs.text(min_size=1, max_size=20))
        def check(text: str, key: str) -> None:
            self._round_trip(store, [(text, _key(key, next(counter)))])

        check()

    def test_ids_tags_and_keys_of_the_longest_length_are_kept(self, store: Store) -> None:
        at = T0 + timedelta(minutes=1)
        calendars = [BusinessCalendar.always(), BusinessCalendar.weekly("09:00", "17:00")]
        policies = [make_policy("first"), make_policy("second")]
        stored: list[Ticket] = []
        keys: list[str] = []
        for char in LONGEST_ID_CHARACTERS:
            longest = char * MAX_ID_LENGTH
            other = char * (MAX_ID_LENGTH - 1)
            store.tickets.add(make_ticket(longest, tags={longest, f"{other}t"}))
            events: list[TicketEvent] = [
                TagsChanged(at=at, added={f"{other}u"}),
                Merged(at=at, into=f"{other}m"),
            ]
            ticket = store.tickets.append(longest, events, expected_version=1)
            bulk = make_ticket(f"{other}b", tags={longest})
            assert store.tickets.add_many([bulk]) == 1
            assert store.tickets.get(longest) == ticket
            assert store.tickets.get(bulk.id) == bulk
            assert store.tickets.find(cd.HasTags({longest, f"{other}u"})) == [ticket]
            assert store.tickets.count(cd.HasTags({longest})) == 2
            assert store.tickets.find(cd.HasTags({f"{other}t"}), limit=1) == [ticket]
            for kind in KINDS:
                documents = getattr(store, kind)
                values = policies if kind == "policies" else calendars
                for version, value in enumerate(values):
                    assert documents.put(longest, value, expected_version=version).key == longest
                assert documents.get(longest).value == values[-1]
                assert documents.get(longest, version=1).value == values[0]
                assert [v.value for v in documents.history(longest)] == values
            stored += [ticket, bulk]
            keys.append(longest)
        assert store.tickets.find(cd.Always()) == sorted(stored, key=lambda t: t.id)
        for kind in KINDS:
            assert getattr(store, kind).keys() == sorted(keys)

    @pytest.mark.parametrize("refused", list(REFUSED_IDS.values()), ids=list(REFUSED_IDS))
    def test_ids_and_keys_no_store_can_keep_are_refused(self, store: Store, refused: str) -> None:
        kept = store.tickets.add(make_ticket("T-kept"))
        store.calendars.put("kept", BusinessCalendar.always(), expected_version=0)
        calls: dict[str, Callable[[], object]] = {
            "tickets.get": lambda: store.tickets.get(refused),
            "tickets.append": lambda: store.tickets.append(
                refused, [make_comment(T0, "x")], expected_version=1
            ),
        }
        for kind in KINDS:
            documents: VersionedRepository[Any] = getattr(store, kind)
            calls |= {
                f"{kind}.put": partial(
                    documents.put, refused, BusinessCalendar.always(), expected_version=0
                ),
                f"{kind}.get": partial(documents.get, refused),
                f"{kind}.get(version=1)": partial(documents.get, refused, version=1),
                f"{kind}.history": partial(documents.history, refused),
            }
        for name, call in calls.items():
            with pytest.raises(ValidationError) as info:
                call()
            message = str(info.value)
            argument = "ticket_id=" if name.startswith("tickets.") else "key="
            assert f"{argument}{refused[:40]!r}" in message, f"{name}: name the value: {message}"
        assert store.tickets.find(cd.Always()) == [kept]
        assert store.calendars.keys() == ["kept"]
        assert store.policies.keys() == store.rules.keys() == []
        # nor can a ticket, an event or a condition carry it
        at = T0 + timedelta(minutes=1)
        for build in (
            lambda: make_ticket(refused),
            lambda: make_ticket("T-x", tags={refused}),
            lambda: TagsChanged(at=at, added={refused}),
            lambda: Merged(at=at, into=refused),
            lambda: cd.HasTags({refused}),
        ):
            with pytest.raises(ValidationError):
                build()

    def test_text_past_the_validators_is_kept_or_refused_writing_nothing(
        self, stores: StoreFactory
    ) -> None:
        """Text the validators refuse, forced into a ticket through a back door (no caller can
        build it through the public API): a store whose backend refuses it raises
        ValidationError with the backend's error as ``__cause__`` and writes nothing."""
        for values in ({"requester": "ann\ud800"}, {"subject": "x\udfffy"}, {"subject": "x\x00y"}):
            store = stores()
            good = make_ticket("T-good")
            bad = make_ticket("T-bad")
            for name, value in values.items():
                object.__setattr__(bad.events[0], name, value)
            try:
                store.tickets.add_many([good, bad])
            except ValidationError as err:
                assert_driver_cause(err)
                with pytest.raises(NotFound):
                    store.tickets.get("T-good")
            else:  # the backend keeps it (the memory store keeps the objects themselves)
                assert store.tickets.get("T-good") == good
                assert store.tickets.get("T-bad") == bad  # kept means it reads back

    def test_text_the_domain_refuses_never_reaches_the_store(self, store: Store) -> None:
        kept = store.tickets.add(make_ticket("T-kept"))

        @property_settings
        @given(text=_refused_text())
        def check(text: str) -> None:
            assert text_problem(text) is not None  # the domain's own rule refuses it
            accepted = []
            for place, build in _text_positions(text).items():
                try:
                    build()
                except ValidationError:
                    continue
                accepted.append(place)
            assert accepted == [], f"text={text!r} was accepted"

        check()
        assert store.tickets.find(cd.Always()) == [kept]
