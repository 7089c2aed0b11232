"""The ``tickets`` role: writes, reads and queries (:class:`TicketTests`, :class:`QueryTests`)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csmcore import conditions as cd
from csmcore.calendars import BusinessCalendar
from csmcore.errors import (
    ConcurrencyError,
    InvalidTransition,
    NotFound,
    ValidationError,
)
from csmcore.storage.memory import MemoryStore
from csmcore.storage.protocols import Store
from csmcore.testing import strategies as cs
from csmcore.testing.builders import T0, make_comment, make_ticket
from csmcore.testing.storage_suite._agreement import (
    CUSTOM_NAMES,
    CUSTOM_VALUES,
    custom_conditions,
)
from csmcore.testing.storage_suite._base import (
    HUGE_NUMBERS,
    ODD_FIELD_VALUES,
    PushdownProbe,
    StoreFactory,
    StoreFixtures,
    property_settings,
    same_value,
)
from csmcore.tickets import (
    FieldsChanged,
    Priority,
    Status,
    StatusMap,
    Ticket,
)


class TicketTests(StoreFixtures):
    """The ticket repository: add, get, append with expected versions, find, stream, count."""

    def test_add_then_get_returns_an_equal_ticket(self, store: Store) -> None:
        counter = itertools.count()

        @property_settings
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            ident = st.just(f"p{next(counter)}-").flatmap(lambda p: cs.ticket_ids(prefix=p))
            ticket = data.draw(cs.tickets(ticket_id=ident))
            assert store.tickets.add(ticket) == ticket
            loaded = store.tickets.get(ticket.id)
            assert loaded == ticket
            assert loaded.version == ticket.version
            assert loaded.status == ticket.status
            assert loaded.tags == ticket.tags

        check()

    def test_append_one_event_at_a_time_rebuilds_the_same_ticket(self, store: Store) -> None:
        counter = itertools.count()

        @property_settings
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            ident = st.just(f"a{next(counter)}")
            ticket = data.draw(cs.tickets(ticket_id=ident, max_events=6))
            first = Ticket.from_events(ticket.events[:1])
            store.tickets.add(first)
            for version, event in enumerate(ticket.events[1:], 1):
                store.tickets.append(ticket.id, [event], expected_version=version)
            assert store.tickets.get(ticket.id) == ticket

        check()

    def test_get_unknown_id_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound, match="'nope'"):
            store.tickets.get("nope")

    def test_add_existing_id_raises_and_keeps_the_original(self, store: Store) -> None:
        original = make_ticket("T-1", requester="ann")
        store.tickets.add(original)
        with pytest.raises(ConcurrencyError, match="T-1"):
            store.tickets.add(make_ticket("T-1", requester="bob"))
        assert store.tickets.get("T-1") == original

    def test_add_many_is_all_or_nothing(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-2"))
        batch = [make_ticket("T-1"), make_ticket("T-2"), make_ticket("T-3")]
        with pytest.raises(ConcurrencyError):
            store.tickets.add_many(batch)
        assert store.tickets.count(cd.Always()) == 1
        with pytest.raises(ConcurrencyError):
            store.tickets.add_many([make_ticket("T-4"), make_ticket("T-4")])
        assert store.tickets.count(cd.Always()) == 1
        assert store.tickets.add_many([make_ticket("T-1"), make_ticket("T-3")]) == 2
        assert [t.id for t in store.tickets.find(cd.Always())] == ["T-1", "T-2", "T-3"]

    def test_append_returns_the_new_ticket_and_stores_it(self, store: Store) -> None:
        ticket = store.tickets.add(make_ticket("T-1"))
        changed, event = ticket.set_priority(T0 + timedelta(minutes=1), Priority.URGENT)
        tagged, tag_event = changed.tag(T0 + timedelta(minutes=2), add=["vip"])
        result = store.tickets.append("T-1", [event, tag_event], expected_version=1)
        assert result == tagged
        assert result.version == 3
        assert store.tickets.get("T-1") == tagged

    def test_stale_expected_version_raises_and_writes_nothing(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-1"))
        store.tickets.append("T-1", [make_comment(T0, "first")], expected_version=1)
        for stale in (0, 1, 3):
            with pytest.raises(ConcurrencyError, match="version 2"):
                store.tickets.append("T-1", [make_comment(T0, "late")], expected_version=stale)
        assert store.tickets.get("T-1").version == 2

    def test_append_to_unknown_ticket_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound, match="'ghost'"):
            store.tickets.append("ghost", [make_comment(T0, "x")], expected_version=1)

    def test_invalid_transition_writes_nothing(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-1"))
        valid = make_comment(T0 + timedelta(hours=1), "ok")
        too_early = make_comment(T0 - timedelta(hours=1), "before creation")
        with pytest.raises(InvalidTransition):
            store.tickets.append("T-1", [valid, too_early], expected_version=1)
        assert store.tickets.get("T-1").version == 1

    @pytest.mark.parametrize(
        ("events", "version"),
        [
            ([], 1),
            ("not events", 1),
            ([make_comment(T0, "x")], -1),
            ([make_comment(T0, "x")], True),
        ],
    )
    def test_bad_append_arguments_raise_validation_error(
        self, store: Store, events: Any, version: Any
    ) -> None:
        store.tickets.add(make_ticket("T-1"))
        with pytest.raises(ValidationError):
            store.tickets.append("T-1", events, expected_version=version)
        assert store.tickets.get("T-1").version == 1

    def test_bad_arguments_raise_validation_error(self, store: Store) -> None:
        with pytest.raises(ValidationError, match="Ticket"):
            store.tickets.add("T-1")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="ticket_id"):
            store.tickets.get("")
        with pytest.raises(ValidationError, match="limit"):
            store.tickets.find(cd.Always(), limit=-1)
        with pytest.raises(ValidationError, match="batch_size"):
            store.tickets.stream(cd.Always(), batch_size=0)
        # Not a condition: refused at the call, even on an empty store and with limit=0.
        for call in (
            lambda: store.tickets.find("priority"),  # type: ignore[arg-type]
            lambda: store.tickets.find(None, limit=0),  # type: ignore[arg-type]
            lambda: store.tickets.stream("priority"),  # type: ignore[arg-type]
            lambda: store.tickets.count(lambda ticket: True),  # type: ignore[arg-type]
        ):
            with pytest.raises(ValidationError, match="Condition"):
                call()

    def test_queries_agree_with_condition_matches(self, store: Store) -> None:
        counter = itertools.count()
        stored: dict[str, Ticket] = {}

        @property_settings
        @given(data=st.data())
        def check(data: st.DataObject) -> None:
            prefix = f"q{next(counter)}-"
            batch = data.draw(
                st.lists(
                    cs.tickets(ticket_id=cs.ticket_ids(prefix=prefix), max_events=5),
                    max_size=4,
                    unique_by=lambda t: t.id,
                )
            )
            if data.draw(st.booleans(), label="bulk"):
                store.tickets.add_many(batch)
            else:  # created, then every change appended: the summary is kept up to date
                for ticket in batch:
                    store.tickets.add(Ticket.from_events(ticket.events[:1]))
                    for version, event in enumerate(ticket.events[1:], 1):
                        store.tickets.append(ticket.id, [event], expected_version=version)
            stored.update((t.id, t) for t in batch)
            condition = data.draw(cs.conditions())
            expected = [stored[i] for i in sorted(stored) if condition.matches(stored[i])]
            assert store.tickets.find(condition) == expected
            assert store.tickets.count(condition) == len(expected)
            size = data.draw(st.integers(1, 4))
            batches = list(store.tickets.stream(condition, batch_size=size))
            assert all(0 < len(b) <= size for b in batches)
            assert [t for b in batches for t in b] == expected
            limit = data.draw(st.integers(0, 5))
            assert store.tickets.find(condition, limit=limit) == expected[:limit]

        check()

    def test_queries_see_appended_changes(self, store: Store) -> None:
        ticket = store.tickets.add(make_ticket("T-1", tags={"a", "b"}, assignee="ann"))
        at = T0 + timedelta(minutes=1)
        changed, e1 = ticket.tag(at, add=["c"], remove=["a"])
        changed, e2 = changed.set_priority(at, Priority.URGENT)
        changed, e3 = changed.assign(at, assignee=None, group="tier2")
        changed, e4 = changed.set_status(at, "solved")
        changed, e5 = changed.merge_into(at, "T-9")
        store.tickets.append("T-1", [e1, e2, e3, e4, e5], expected_version=1)
        store.tickets.add(make_ticket("T-2", tags={"a"}))
        expectations = {
            cd.HasTags({"a"}): ["T-2"],
            cd.HasTags({"b", "c"}): ["T-1"],
            cd.Compare("priority", ">", Priority.HIGH): ["T-1"],
            cd.Eq("assignee", None): ["T-1", "T-2"],
            cd.Eq("assignee", "ann"): [],
            cd.Not(cd.Eq("assignee", "ann")): ["T-1", "T-2"],
            cd.Eq("group", "tier2"): ["T-1"],
            cd.Eq("status", "closed"): ["T-1"],
            cd.Eq("merged", True): ["T-1"],
            cd.Eq("merged", False): ["T-2"],
        }
        for condition, ids in expectations.items():
            assert [t.id for t in store.tickets.find(condition)] == ids, condition
            assert store.tickets.count(condition) == len(ids), condition

    def test_a_merged_ticket_reads_back_solved_at_the_merge(self, store: Store) -> None:
        """A merge closes a ticket, so it sets ``solved_at`` as closing does (kept from an
        earlier solve); a store reading its tickets from the history gets that for free, one
        keeping derived values of its own must keep this one too."""
        at = T0 + timedelta(minutes=1)
        merged, _ = make_ticket("M-1").merge_into(at, "T-9")
        solved, _ = make_ticket("M-2").set_status(at, Status.SOLVED)
        solved_merged, event = solved.merge_into(at + timedelta(minutes=1), "T-9")
        store.tickets.add(merged)
        store.tickets.add(solved)
        store.tickets.append("M-2", [event], expected_version=2)
        expected = {"M-1": at, "M-2": at}
        assert (merged.solved_at, solved_merged.solved_at) == (at, at)
        for ticket_id, solved_at in expected.items():
            assert store.tickets.get(ticket_id).solved_at == solved_at, ticket_id
        found = store.tickets.find(cd.Eq("merged", True))
        assert {t.id: t.solved_at for t in found} == expected
        streamed = [t for b in store.tickets.stream(cd.Eq("status", "closed")) for t in b]
        assert {t.id: t.solved_at for t in streamed} == expected

    def test_ids_sort_by_code_point(self, store: Store) -> None:
        ids = ["b", "B", "a", "ä", "z", "中", "Z1", "Z10", "Z2", "😀"]
        store.tickets.add_many([make_ticket(i) for i in ids])
        assert [t.id for t in store.tickets.find(cd.Always())] == sorted(ids)

    def test_stream_yields_full_batches_in_id_order(self, store: Store) -> None:
        store.tickets.add_many([make_ticket(f"T-{n:03d}") for n in range(23)])
        batches = list(store.tickets.stream(cd.Always(), batch_size=10))
        assert [len(b) for b in batches] == [10, 10, 3]
        assert [t.id for b in batches for t in b] == [f"T-{n:03d}" for n in range(23)]
        assert list(store.tickets.stream(cd.Never(), batch_size=10)) == []

    def test_huge_whole_numbers_behave_like_any_large_number(self, store: Store) -> None:
        tickets = [make_ticket(f"T-{n}") for n in range(3)]
        store.tickets.add_many(tickets)
        calendar = BusinessCalendar.always()
        store.calendars.put("k", calendar, expected_version=0)
        comment = [make_comment(T0, "x")]
        for huge in HUGE_NUMBERS:
            number = str(huge)
            assert list(store.tickets.stream(cd.Always(), batch_size=huge)) == [tickets]
            assert store.tickets.find(cd.Always(), limit=huge) == tickets
            assert store.tickets.find(cd.Eq("requester", "ann"), limit=huge) == tickets
            with pytest.raises(ConcurrencyError, match=number):
                store.tickets.append("T-0", comment, expected_version=huge)
            with pytest.raises(NotFound, match="'ghost'"):
                store.tickets.append("ghost", comment, expected_version=huge)
            with pytest.raises(ConcurrencyError, match=number):
                store.calendars.put("k", calendar, expected_version=huge)
            with pytest.raises(ConcurrencyError, match=number):
                store.calendars.put("new", calendar, expected_version=huge)
            with pytest.raises(NotFound, match=number):
                store.calendars.get("k", version=huge)
            with pytest.raises(NotFound, match="'new'"):
                store.calendars.get("new", version=huge)
            for refused in (
                lambda n=-huge: store.tickets.append("T-0", comment, expected_version=n),
                lambda n=-huge: store.tickets.find(cd.Always(), limit=n),
                lambda n=-huge: store.tickets.stream(cd.Always(), batch_size=n),
                lambda n=-huge: store.calendars.put("k", calendar, expected_version=n),
                lambda n=-huge: store.calendars.get("k", version=n),
            ):
                with pytest.raises(ValidationError, match=number):
                    refused()
        with store.unit_of_work() as uow:
            huge = HUGE_NUMBERS[-1]
            assert list(uow.tickets.stream(cd.Always(), batch_size=huge)) == [tickets]
            assert uow.tickets.find(cd.Always(), limit=huge) == tickets
            with pytest.raises(ConcurrencyError):
                uow.tickets.append("T-0", comment, expected_version=huge)
            with pytest.raises(ConcurrencyError):
                uow.calendars.put("k", calendar, expected_version=huge)
            with pytest.raises(NotFound):
                uow.calendars.get("k", version=huge)
        assert store.tickets.find(cd.Always()) == tickets
        assert [v.version for v in store.calendars.history("k")] == [1]
        assert store.calendars.keys() == ["k"]

    def test_custom_field_values_come_back_with_their_type_and_value(self, store: Store) -> None:
        ticket = store.tickets.add(make_ticket("T-1", fields=ODD_FIELD_VALUES))
        changes = {f"{name}+": value for name, value in ODD_FIELD_VALUES.items()}
        changed = ticket.apply(FieldsChanged(at=T0, changes=changes))
        store.tickets.append("T-1", changed.events[-1:], expected_version=1)
        loaded = store.tickets.get("T-1")
        assert loaded == changed
        expected = {**ODD_FIELD_VALUES, **changes}
        expected = {k: v for k, v in expected.items() if v is not None}
        assert set(loaded.fields) == set(expected)
        different = [k for k, v in expected.items() if not same_value(loaded.fields[k], v)]
        assert different == [], [(k, loaded.fields[k], expected[k]) for k in different]
        for name in ("big", "beyond int64", "escapes"):
            assert store.tickets.find(cd.Eq(f"fields.{name}", ODD_FIELD_VALUES[name])) == [loaded]
        counter = itertools.count()

        @property_settings
        @given(
            value=st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
            | cs.text()
            | st.booleans()
        )
        def check(value: str | int | float | bool) -> None:
            ticket_id = f"P-{next(counter)}"
            store.tickets.add(make_ticket(ticket_id, fields={"value": value}))
            back = store.tickets.get(ticket_id).fields["value"]
            assert same_value(back, value), (back, value)

        check()


# --------------------------------------------------------------------------------------------
# Fixed tickets and conditions for the query checks
# --------------------------------------------------------------------------------------------

_NASTY = "x'); DROP TABLE csm_tickets; --"
"""A value that breaks a query built by pasting values into its text."""


def query_tickets() -> list[Ticket]:
    """Fixed tickets that tell partial matches apart for every kind of condition.

    Random programs rarely draw a ticket with only one of two queried tags, a custom field of
    the other type, or a value full of quotes and wildcards, so a store that translates a
    condition slightly wrong (a multi-tag ``HasTags`` cut down to its first tag, ``5 == True``,
    a ``LIKE`` pattern, locale ordering) could pass them; it cannot pass :data:`QUERY_CONDITIONS`
    over these.
    """
    later = T0 + timedelta(minutes=1)
    opened = make_ticket("Q-open", priority="low").set_status(later, "open")[0]
    vendor = StatusMap(custom={"Awaiting Vendor": Status.ON_HOLD})
    waiting = make_ticket("Q-vendor", created_by="agent", subject="Printer on fire")
    waiting = waiting.set_status(later, "Awaiting Vendor", vendor)[0]
    merged = make_ticket("Q-merged", tags={"a"}).merge_into(later, "Q-a")[0]
    return [
        make_ticket("Q-none", priority="low"),
        make_ticket("Q-a", priority="normal", tags={"a"}, fields={"plan": "gold"}),
        make_ticket("Q-b", priority="high", tags={"b"}, fields={"plan": "silver", "seats": 5}),
        make_ticket(
            "Q-ab",
            priority="urgent",
            channel="phone",
            group="billing",
            tags={"a", "b"},
            fields={"seats": 12, "vip": True, "plan": "Gold"},
        ),
        make_ticket("Q-c", priority="normal", assignee="zoe", tags={"c"}, fields={"seats": 5.0}),
        make_ticket("Q-bob", requester="bob", fields={"vip": 1, "plan": None, "seats": 9.5}),
        make_ticket("Q-nasty", requester=_NASTY, tags={_NASTY}, fields={"plan": "ägold"}),
        make_ticket("Q-pct", requester="a%", subject="100% done", fields={"seats": True}),
        make_ticket("Q-under", requester="a_c", group="Billing", fields={"plan": "a\\b"}),
        make_ticket("Q-abc", requester="abc", assignee="Zoe", fields={"seats": -1}),
        opened,
        waiting,
        merged,
    ]


def query_conditions() -> list[cd.Condition]:
    """Conditions over :func:`query_tickets`: every condition class, every field, both value
    types of custom fields, literal quotes and wildcards, and/or/not around all of them."""
    return [
        cd.Always(),
        cd.Never(),
        cd.HasTags({"a", "b"}),
        cd.HasTags({"a"}),
        cd.HasTags({"b", "c"}),
        cd.HasTags(set()),
        cd.HasTags({_NASTY}),
        cd.Not(cd.HasTags({"a", "b"})),
        cd.Eq("priority", "normal"),
        cd.In("priority", ["low", "urgent"]),
        cd.Compare("priority", ">=", "high"),
        cd.Compare("priority", "<", "normal"),
        cd.Eq("channel", "phone"),
        cd.Eq("created_by", "agent"),
        cd.Eq("group", "billing"),
        cd.Eq("group", None),
        cd.In("group", ["Billing", None]),
        cd.Eq("assignee", "zoe"),
        cd.Eq("requester", "bob"),
        cd.Eq("requester", _NASTY),
        cd.Eq("requester", "a%"),
        cd.Eq("requester", "a_c"),
        cd.In("requester", [_NASTY, "ann"]),
        cd.In("requester", []),
        cd.Eq("subject", "Printer on fire"),
        cd.Eq("subject", ""),
        cd.Eq("status", "open"),
        cd.In("status", ["new"]),
        cd.Eq("status", "closed"),
        cd.Eq("status_name", "Awaiting Vendor"),
        cd.Eq("status_name", "on-hold"),
        cd.Eq("priority_name", "high"),
        cd.In("priority_name", ["1 - Critical", "low"]),
        cd.Eq("merged", True),
        cd.Eq("merged", False),
        cd.Eq("fields.plan", "gold"),
        cd.Eq("fields.plan", None),
        cd.Eq("fields.plan", "a\\b"),
        cd.Eq("fields.seats", 5),
        cd.Eq("fields.seats", 1),
        cd.Eq("fields.seats", True),
        cd.Compare("fields.seats", ">", 6),
        cd.Compare("fields.seats", "<=", 5),
        cd.Compare("fields.plan", "<", "gold"),
        cd.Compare("fields.plan", ">=", "a"),
        cd.Eq("fields.vip", True),
        cd.Eq("fields.vip", 1),
        cd.In("fields.plan", ["gold", "silver"]),
        cd.In("fields.seats", [5, None]),
        cd.In("fields.vip", [False, 1.0]),
        cd.Eq("fields.seats", 9.5),
        cd.Compare("fields.seats", ">", 5.0),
        cd.Compare("fields.seats", "<", 0),
        cd.Compare("fields.plan", ">", "Gold"),
        cd.Not(cd.In("fields.plan", ["gold", "ägold", None])),
        cd.All(cd.HasTags({"a"}), cd.Not(cd.HasTags({"b"}))),
        cd.All(),
        cd.AnyOf(),
        cd.AnyOf(cd.Eq("priority", "urgent"), cd.HasTags({"c"})),
        cd.Not(cd.AnyOf(cd.Eq("fields.seats", 5), cd.Eq("channel", "phone"))),
        cd.All(cd.Not(cd.Eq("fields.plan", "gold")), cd.Compare("priority", "<=", "normal")),
        cd.Not(cd.Eq("assignee", None)) & cd.Eq("merged", False),
    ]


def custom_field_tickets() -> list[Ticket]:
    """Tickets holding each of :data:`CUSTOM_VALUES` under each of :data:`CUSTOM_NAMES`, a few
    with two fields, and one with none (in id order)."""
    tickets = [make_ticket("C-none")]
    for i, name in enumerate(CUSTOM_NAMES):
        for j, value in enumerate(CUSTOM_VALUES):
            other = CUSTOM_NAMES[(i + 1) % len(CUSTOM_NAMES)]
            fields = {name: value} if j % 4 else {name: value, other: CUSTOM_VALUES[-j]}
            tickets.append(make_ticket(f"C-{i}-{j:02d}", fields=fields))
    return sorted(tickets, key=lambda t: t.id)


def _uncovered(conditions: list[cd.Condition]) -> list[str]:
    """Condition classes of :mod:`csmcore.conditions` and ticket fields no condition uses."""
    nodes = [node for condition in conditions for node in cd.walk(condition)]
    kinds = {
        obj
        for obj in vars(cd).values()
        if isinstance(obj, type) and issubclass(obj, cd.Condition) and obj is not cd.Condition
    }
    used_fields = {getattr(node, "field", None) for node in nodes}
    if any(isinstance(node, cd.HasTags) for node in nodes):
        used_fields.add("tags")
    missing = [k.__name__ for k in kinds - {type(node) for node in nodes}]
    missing += [f for f in cd.FIELDS if f not in used_fields]
    if not any(isinstance(f, str) and f.startswith(cd.CUSTOM_PREFIX) for f in used_fields):
        missing.append("fields.<name>")
    return sorted(missing)


class QueryTests(StoreFixtures):
    """``find``, ``count`` and ``stream`` for every kind of condition: the same tickets as the
    memory reference, and selected in the backend wherever the store says it does."""

    pushed_down: ClassVar[Sequence[cd.Condition]] = ()
    """Conditions the store's documentation promises to select in the backend: the
    :class:`PushdownProbe` must claim each of them (and they are then checked like every other
    condition it claims)."""

    def test_every_condition_kind_agrees_with_the_memory_reference(self, store: Store) -> None:
        tickets = query_tickets()
        conditions = query_conditions()
        assert _uncovered(conditions) == [], "the fixed conditions miss a kind"
        store.tickets.add_many(tickets)
        reference = MemoryStore()
        reference.tickets.add_many(tickets)
        try:
            for condition in conditions:
                expected = reference.tickets.find(condition)
                assert [t.id for t in expected] == sorted(
                    t.id for t in tickets if condition.matches(t)
                ), condition
                assert store.tickets.find(condition) == expected, condition
                assert store.tickets.count(condition) == len(expected), condition
                streamed = [t for b in store.tickets.stream(condition, batch_size=2) for t in b]
                assert streamed == expected, condition
                assert store.tickets.find(condition, limit=1) == expected[:1], condition
        finally:
            reference.close()

    def test_custom_field_conditions_agree_with_matches(self, store: Store) -> None:
        """Random conditions on custom fields of every value type (Eq with None, In, Compare,
        under All / AnyOf / Not) select exactly what ``matches`` selects, after adds and after
        appends that change, retype and unset fields."""
        tickets = {t.id: t for t in custom_field_tickets()}
        store.tickets.add_many(list(tickets.values()))
        for number, ticket in enumerate(list(tickets.values())[::7]):
            name = CUSTOM_NAMES[number % len(CUSTOM_NAMES)]
            value = None if number % 3 == 0 else CUSTOM_VALUES[number % len(CUSTOM_VALUES)]
            event = FieldsChanged(at=ticket.updated_at, actor="agent", changes={name: value})
            tickets[ticket.id] = store.tickets.append(
                ticket.id, [event], expected_version=ticket.version
            )
        stored = sorted(tickets.values(), key=lambda t: t.id)

        def agree(condition: cd.Condition, *, count_only: bool = False) -> None:
            expected = [t.id for t in stored if condition.matches(t)]
            if not count_only:
                assert [t.id for t in store.tickets.find(condition)] == expected, condition
            assert store.tickets.count(condition) == len(expected), condition

        for name in CUSTOM_NAMES:  # every value against every value, each operator
            field = f"fields.{name}"
            agree(cd.Eq(field, None))
            for value in CUSTOM_VALUES:
                agree(cd.Eq(field, value))
                if not isinstance(value, bool):
                    for op in ("<", ">="):  # the others differ where Eq is checked
                        agree(cd.Compare(field, op, value), count_only=True)

        @settings(
            max_examples=100,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(condition=custom_conditions())
        def check(condition: cd.Condition) -> None:
            agree(condition)

        check()

    def test_pushes_down_where_it_claims_to(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        probe: PushdownProbe = self.hook(store_factory, PushdownProbe)
        tickets = query_tickets()
        store.tickets.add_many(tickets)
        unclaimed = [c for c in self.pushed_down if not probe.pushes_down(store, c)]
        assert unclaimed == [], "pushed_down lists conditions the store does not select itself"
        conditions = [*query_conditions(), *self.pushed_down]
        claimed = [c for c in conditions if probe.pushes_down(store, c)]
        if not claimed:
            pytest.fail(
                f"{type(self).__name__}'s PushdownProbe claims none of the conditions; a store "
                "that selects nothing in its backend declares opt_out = {'pushdown': '<why>'}",
                pytrace=False,
            )
        for condition in claimed:
            expected = sorted(t.id for t in tickets if condition.matches(t))
            with probe.reads(store) as reads:
                assert [t.id for t in store.tickets.find(condition)] == expected, condition
                assert reads() == len(expected), f"find read other tickets for {condition!r}"
            with probe.reads(store) as reads:
                streamed = list(store.tickets.stream(condition, batch_size=3))
                assert [t.id for b in streamed for t in b] == expected, condition
                assert reads() == len(expected), f"stream read other tickets for {condition!r}"
            with probe.reads(store) as reads:
                assert store.tickets.count(condition) == len(expected), condition
                assert reads() == 0, f"count read tickets for {condition!r}"


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------
