"""The storage conformance suite: prove an adapter right by subclassing these test classes.

Needs ``pip install 'csmcore[testing]'``. In a test module of your adapter::

    import uuid

    import pytest
    from csmcore.testing.storage_suite import StorageSuite

    class TestMyStore(StorageSuite):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: MyStore(tmp_path / f"{uuid.uuid4().hex}.db")

``store_factory`` is the one fixture to override: it returns a callable that builds a fresh,
empty, open store each time it is called (the suite closes what it builds). Then run pytest.

Capabilities are declared by flags. A store that cannot do something says so explicitly, with a
reason, in ``opt_out``; the tests that need it are skipped with that reason (and nothing else is):

- ``"reopen"``: ``open_store(store.url)`` opens another handle on the same data (durability,
  several connections in one process, schema versions).
- ``"processes"``: other processes can open ``store.url`` and write concurrently.

Some checks need to reach the backend behind the adapter's back: to change the schema version
it recorded, to break it, or to count what a query read. The factory returned by
``store_factory`` offers that by also having the methods of a hook protocol; a store without
one says why in ``opt_out`` under the hook's capability name:

- ``"schema"``: :class:`SchemaAccess` (schema version recorded, newer or missing refused);
- ``"migrations"``: :class:`OldSchemas` (older schemas migrate forward when opened);
- ``"faults"``: :class:`BackendFaults` (driver errors become ``StorageError``);
- ``"pushdown"``: :class:`PushdownProbe` (queries select in the backend where it says so).

A hook that is neither given nor opted out of FAILS its checks, with a message naming the hook
to provide and the ``opt_out`` key to declare instead: a store never passes a check silently.
An ``opt_out`` key that names no capability, or a reason left empty, fails every test.

Class attributes tune or extend some checks: ``pushed_down`` (conditions the store promises to
select in its backend), ``racers`` / ``race_rounds`` / ``race_reads`` / ``writers`` (how hard
the races run), ``agreement_examples`` / ``agreement_steps`` (the state machine).

The classes can also be used one by one (:class:`TicketTests`, :class:`QueryTests`,
:class:`VersionedTests`, :class:`UnitOfWorkTests`, :class:`DurabilityTests`,
:class:`TextTests`, :class:`SchemaTests`, :class:`FaultTests`, :class:`ConcurrencyTests`,
:class:`AgreementTests`); :class:`StorageSuite` is all of them.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import random
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    rule,
)

from csmcore import conditions as cd
from csmcore._values import text_problem
from csmcore.calendars import BusinessCalendar
from csmcore.errors import (
    ConcurrencyError,
    CsmError,
    InvalidTransition,
    NotFound,
    SchemaVersionError,
    StorageError,
    ValidationError,
)
from csmcore.sla import SlaMetric, SlaPolicy, SlaTarget
from csmcore.storage import open_store
from csmcore.storage.kit import KINDS, MAX_ID_LENGTH
from csmcore.storage.memory import MemoryStore
from csmcore.storage.protocols import Store, VersionedRepository
from csmcore.testing import strategies as cs
from csmcore.testing._workers import (
    T0,
    _comment,
    append_worker,
    in_process,
    race_once,
    race_worker,
)
from csmcore.tickets import (
    Assigned,
    Channel,
    Commented,
    FieldsChanged,
    Merged,
    Priority,
    PriorityChanged,
    Role,
    Status,
    StatusChanged,
    StatusMap,
    TagsChanged,
    Ticket,
    TicketEvent,
)

__all__ = [
    "AgreementTests",
    "BackendFaults",
    "ConcurrencyTests",
    "DurabilityTests",
    "FaultTests",
    "OldSchemas",
    "PushdownProbe",
    "QueryTests",
    "SchemaAccess",
    "SchemaTests",
    "StorageSuite",
    "StoreFactory",
    "TextTests",
    "TicketTests",
    "UnitOfWorkTests",
    "VersionedTests",
]

StoreFactory = Callable[[], Store]
"""Builds a fresh, empty, open store each time it is called."""


@runtime_checkable
class SchemaAccess(Protocol):
    """Hook for :class:`SchemaTests`: the schema version a store records, read and written
    directly in the backend, without the adapter.

    A store factory that also has these members lets the suite check that a new store records
    :attr:`schema_version`, that a store recording a newer version (or none) is refused with
    :class:`~csmcore.errors.SchemaVersionError` and left untouched, and, with
    :class:`OldSchemas`, that older stores migrate forward when opened. Each method receives
    the URL of a store the suite has closed.
    """

    schema_version: int
    """The schema version this adapter writes, counted from 1."""

    def read_schema_version(self, url: str) -> int | None:
        """The version recorded at ``url``, or None when none is recorded."""
        ...

    def write_schema_version(self, url: str, version: int | None) -> None:
        """Record ``version`` at ``url`` (None: remove the record), changing nothing else."""
        ...

    def schema_layout(self, url: str) -> Hashable:
        """A description of the layout at ``url`` (for SQL: tables, columns and indexes) that
        two stores share exactly when their schemas are the same; data does not count."""
        ...


@runtime_checkable
class OldSchemas(Protocol):
    """Hook for the migration check of :class:`SchemaTests`, next to :class:`SchemaAccess`."""

    def write_old_schema(self, url: str, version: int) -> None:
        """Turn the store at ``url`` into what this adapter wrote at schema ``version`` (less
        than the current one): the same content, the older layout, ``version`` recorded."""
        ...


@runtime_checkable
class BackendFaults(Protocol):
    """Hook for :class:`FaultTests`: ways to make the backend fail under the adapter."""

    def unreachable_url(self) -> str:
        """A URL of this adapter whose backend cannot be opened or reached."""
        ...

    def break_backend(self, url: str) -> None:
        """Damage the backend of the store at ``url`` (which stays open) so that reading a
        ticket fails in the driver, e.g. by dropping a table."""
        ...


@runtime_checkable
class PushdownProbe(Protocol):
    """Hook for :class:`QueryTests`: see whether a store selects tickets in its backend where it
    says it does."""

    def pushes_down(self, store: Store, condition: cd.Condition) -> bool:
        """True when ``store`` claims its backend selects exactly the tickets matching
        ``condition``: ``find`` and ``stream`` then read only those, ``count`` reads none."""
        ...

    def reads(self, store: Store) -> AbstractContextManager[Callable[[], int]]:
        """Count the tickets ``store`` reads from its backend while the block runs; the
        callable it gives returns the count so far."""
        ...


def _property(test: Callable[..., None]) -> Callable[..., None]:
    """Settings for the suite's property tests, on top of the active Hypothesis profile: fewer
    examples (each one writes to a real backend) and fixtures shared across examples."""
    current = settings.default
    examples = 30 if current is None else min(current.max_examples, 30)
    return settings(
        max_examples=examples,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        deadline=None,
    )(test)


def make_ticket(ticket_id: str, *, at: datetime = T0, **changes: Any) -> Ticket:
    """A new ticket with sensible defaults (``changes`` override ``Ticket.create`` arguments)."""
    arguments: dict[str, Any] = {
        "at": at,
        "ticket_id": ticket_id,
        "created_by": Role.REQUESTER,
        "channel": Channel.EMAIL,
        "priority": Priority.NORMAL,
        "requester": "ann",
    }
    arguments.update(changes)
    return Ticket.create(**arguments)[0]


HUGE_NUMBERS = (2**31, 2**63 - 1, 2**63, 2**64, 2**70)
"""Whole numbers at and beyond the integer limits of backends (32 and 64 bits)."""

ODD_FIELD_VALUES: dict[str, str | int | float | bool | None] = {
    "int": 5,
    "float": 5.0,
    "true": True,
    "one": 1,
    "none": None,
    "big": 2**70,
    "negative big": -(2**70),
    "int64 max": 2**63 - 1,
    "beyond int64": 2**64 + 1,
    "max float": 1.7976931348623157e308,
    "min subnormal": 5e-324,
    "negative zero": -0.0,
    "third": 1 / 3,
    "escapes": 'quote " backslash \\ newline \n tab \t \u2028 \U0001f600',
}
"""Custom field values that a careless encoder changes: a bool that becomes 1, 5.0 that becomes
5, an integer beyond 64 bits, the sign of zero, the last digit of a float, escapes."""


def _same_value(a: object, b: object) -> bool:
    """Equal, of the same type, and (for floats) with the same sign."""
    if type(a) is not type(b) or a != b:
        return False
    return not isinstance(a, float) or math.copysign(1.0, a) == math.copysign(1.0, b)  # type: ignore[arg-type]


def _policy(name: str, target: str = "first reply") -> SlaPolicy:
    """An SLA policy carrying ``name`` and ``target`` as text (a versioned document)."""
    return SlaPolicy(
        name=name,
        position=1,
        default=True,
        targets=[SlaTarget(metric=SlaMetric.FIRST_REPLY, within=timedelta(hours=1), name=target)],
    )


_CAPABILITIES: dict[Any, str] = {
    SchemaAccess: "schema",
    OldSchemas: "migrations",
    BackendFaults: "faults",
    PushdownProbe: "pushdown",
}
"""The capability name under which a store opts out of each hook."""

CAPABILITIES = ("reopen", "processes", *_CAPABILITIES.values())
"""Every key ``opt_out`` accepts."""


def _members(protocol: Any) -> str:
    """The names a hook protocol asks for, for messages."""
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
    return ", ".join(sorted(names))


class StoreFixtures:
    """The fixtures every suite class shares. Override :meth:`store_factory`."""

    opt_out: ClassVar[Mapping[str, str]] = {}
    """Capability name (``"reopen"``, ``"processes"``, ``"schema"``, ``"migrations"``,
    ``"faults"``, ``"pushdown"``) to the reason this store lacks it (a non-empty sentence)."""

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Override: return a callable that builds a fresh, empty, open store."""
        raise NotImplementedError(
            f"{type(self).__name__} must override the store_factory fixture "
            "(see csmcore.testing.storage_suite)"
        )

    @pytest.fixture
    def stores(self, store_factory: StoreFactory) -> Iterator[StoreFactory]:
        """Like ``store_factory``, but closes every store it built when the test ends."""
        self.check_opt_out()
        built: list[Store] = []

        def build() -> Store:
            store = store_factory()
            built.append(store)
            return store

        yield build
        for store in built:
            store.close()

    @pytest.fixture
    def store(self, stores: StoreFactory) -> Store:
        """A fresh, empty store, closed after the test."""
        return stores()

    def check_opt_out(self) -> None:
        """Fail the running test when ``opt_out`` has a key that names no capability or a
        reason that is empty."""
        name = type(self).__name__
        unknown = sorted(set(self.opt_out) - set(CAPABILITIES))
        if unknown:
            pytest.fail(
                f"{name}.opt_out has the keys {unknown}, which name no capability; the keys "
                f"are {', '.join(map(repr, CAPABILITIES))}",
                pytrace=False,
            )
        blank = sorted(
            k for k, v in self.opt_out.items() if not isinstance(v, str) or not v.strip()
        )
        if blank:
            pytest.fail(
                f"{name}.opt_out gives no reason for {blank}; say in a sentence why the store "
                "cannot offer it (pytest shows it with the skipped tests)",
                pytrace=False,
            )

    def require(self, capability: str) -> None:
        """Skip the running test, with the declared reason, when the store opted out."""
        self.check_opt_out()
        if capability in self.opt_out:
            pytest.skip(
                f"{type(self).__name__} opts out of {capability!r}: {self.opt_out[capability]}"
            )

    def reopen(self, store: Store) -> Store:
        """Another handle on ``store``'s data (needs the ``reopen`` capability)."""
        self.require("reopen")
        return open_store(store.url)

    def hook(self, factory: StoreFactory, protocol: Any) -> Any:
        """``factory`` when it implements the hook ``protocol`` (:class:`SchemaAccess`, ...).

        Skips the running test, with the declared reason, when the store opts out of the hook's
        capability; fails it, saying which hook to provide or which opt-out to declare, when
        the factory has neither."""
        capability = _CAPABILITIES[protocol]
        self.require(capability)
        if not isinstance(factory, protocol):
            pytest.fail(
                f"{type(self).__name__}'s store_factory has no {protocol.__name__} hook: give "
                f"the object store_factory returns the members of "
                f"csmcore.testing.storage_suite.{protocol.__name__} ({_members(protocol)}), "
                f"or declare opt_out = {{{capability!r}: '<why the store cannot>'}}",
                pytrace=False,
            )
        return factory


class TicketTests(StoreFixtures):
    """The ticket repository: add, get, append with expected versions, find, stream, count."""

    def test_add_then_get_returns_an_equal_ticket(self, store: Store) -> None:
        counter = itertools.count()

        @_property
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

        @_property
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
        store.tickets.append("T-1", [_comment(T0, "first")], expected_version=1)
        for stale in (0, 1, 3):
            with pytest.raises(ConcurrencyError, match="version 2"):
                store.tickets.append("T-1", [_comment(T0, "late")], expected_version=stale)
        assert store.tickets.get("T-1").version == 2

    def test_append_to_unknown_ticket_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound, match="'ghost'"):
            store.tickets.append("ghost", [_comment(T0, "x")], expected_version=1)

    def test_invalid_transition_writes_nothing(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-1"))
        valid = _comment(T0 + timedelta(hours=1), "ok")
        too_early = _comment(T0 - timedelta(hours=1), "before creation")
        with pytest.raises(InvalidTransition):
            store.tickets.append("T-1", [valid, too_early], expected_version=1)
        assert store.tickets.get("T-1").version == 1

    @pytest.mark.parametrize(
        ("events", "version"),
        [([], 1), ("not events", 1), ([_comment(T0, "x")], -1), ([_comment(T0, "x")], True)],
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

        @_property
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
        comment = [_comment(T0, "x")]
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
        different = [k for k, v in expected.items() if not _same_value(loaded.fields[k], v)]
        assert different == [], [(k, loaded.fields[k], expected[k]) for k in different]
        for name in ("big", "beyond int64", "escapes"):
            assert store.tickets.find(cd.Eq(f"fields.{name}", ODD_FIELD_VALUES[name])) == [loaded]
        counter = itertools.count()

        @_property
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
            assert _same_value(back, value), (back, value)

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
        cd.All(cd.HasTags({"a"}), cd.Not(cd.HasTags({"b"}))),
        cd.All(),
        cd.AnyOf(),
        cd.AnyOf(cd.Eq("priority", "urgent"), cd.HasTags({"c"})),
        cd.Not(cd.AnyOf(cd.Eq("fields.seats", 5), cd.Eq("channel", "phone"))),
        cd.All(cd.Not(cd.Eq("fields.plan", "gold")), cd.Compare("priority", "<=", "normal")),
        cd.Not(cd.Eq("assignee", None)) & cd.Eq("merged", False),
    ]


def _leaves(condition: cd.Condition) -> Iterator[cd.Condition]:
    yield condition
    if isinstance(condition, cd.All | cd.AnyOf):
        for part in condition.conditions:
            yield from _leaves(part)
    elif isinstance(condition, cd.Not):
        yield from _leaves(condition.condition)


def _uncovered(conditions: list[cd.Condition]) -> list[str]:
    """Condition classes of :mod:`csmcore.conditions` and ticket fields no condition uses."""
    nodes = [node for condition in conditions for node in _leaves(condition)]
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

        @_property
        @given(text=cs.text(max_size=40), key=cs.text(min_size=1, max_size=20))
        def check(text: str, key: str) -> None:
            self._round_trip(store, [(text, _key(key, next(counter)))])

        check()

    def test_ids_tags_and_keys_of_the_longest_length_are_kept(self, store: Store) -> None:
        at = T0 + timedelta(minutes=1)
        calendars = [BusinessCalendar.always(), BusinessCalendar.weekly("09:00", "17:00")]
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
                for version, calendar in enumerate(calendars):
                    assert documents.put(longest, calendar, expected_version=version).key == longest
                assert documents.get(longest).value == calendars[-1]
                assert documents.get(longest, version=1).value == calendars[0]
                assert [v.value for v in documents.history(longest)] == calendars
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
                refused, [_comment(T0, "x")], expected_version=1
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
                _assert_driver_cause(err)
                with pytest.raises(NotFound):
                    store.tickets.get("T-good")
            else:  # the backend keeps it (the memory store keeps the objects themselves)
                assert store.tickets.get("T-good") == good
                assert store.tickets.get("T-bad") == bad  # kept means it reads back

    def test_text_the_domain_refuses_never_reaches_the_store(self, store: Store) -> None:
        kept = store.tickets.add(make_ticket("T-kept"))

        @_property
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


DOCUMENT_TEXTS = (
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\udc00\ud800",  # low then high: not a pair
    "\ud83d\x00\ude00",
    "\x00\U0001f600\ud83d",
    "\u2028\u2029\x7f\ufeff",
    'quote " backslash \\ slash / controls \x01\x1f',
)
"""Text a document keeps exactly although no ticket may hold it: JSON escapes NUL and lone
surrogates."""

JOINED_SURROGATES = ("\ud83d\ude00", "a\udbff\udfffb", "\ud800\udc00\ud800")
"""A high surrogate directly followed by a low one: JSON reads the pair back as the one character
it stands for, so every store refuses it in a document."""


def _survives_json(text: str) -> bool:
    decoded: object = json.loads(json.dumps(text))
    return decoded == text


def _document_text() -> st.SearchStrategy[str]:
    """Any text, surrogates and NUL included (``st.text()`` never draws surrogates)."""
    odd = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\u00e9", "\U0001f600"])
    return (
        st.lists(odd | st.characters(), min_size=1, max_size=12)
        .map("".join)
        .filter(lambda text: bool(text.strip()))
    )


class VersionedTests(StoreFixtures):
    """Versioned documents: calendars, policies, rules."""

    def test_nul_and_lone_surrogates_inside_a_document_round_trip(self, store: Store) -> None:
        policies = {
            f"p{n}": _policy(text, target=f"<{text}>") for n, text in enumerate(DOCUMENT_TEXTS)
        }
        plain = _policy("plain")
        for key, policy in policies.items():
            store.policies.put(key, policy, expected_version=0)
            store.policies.put(key, plain, expected_version=1)
        handles = [store] if "reopen" in self.opt_out else [store, open_store(store.url)]
        try:
            for handle in handles:
                for key, policy in policies.items():
                    got = handle.policies.get(key, version=1).value
                    assert got == policy
                    assert (got.name, got.targets[0].name) == (policy.name, f"<{policy.name}>")
                    assert [v.value for v in handle.policies.history(key)] == [policy, plain]
        finally:
            for handle in handles[1:]:
                handle.close()

    def test_surrogates_side_by_side_in_a_document_are_refused(self, store: Store) -> None:
        for joined in JOINED_SURROGATES:
            for policy in (_policy(joined), _policy("ok", target=joined)):
                with pytest.raises(ValidationError):
                    store.policies.put("p", policy, expected_version=0)
                with store.unit_of_work() as uow, pytest.raises(ValidationError):
                    uow.policies.put("p", policy, expected_version=0)
        assert store.policies.keys() == []

    def test_any_text_in_a_document_round_trips_or_is_refused(self, store: Store) -> None:
        counter = itertools.count()

        @_property
        @given(text=_document_text())
        def check(text: str) -> None:
            key = f"d{next(counter)}"
            policy = _policy(text)
            if _survives_json(text):
                store.policies.put(key, policy, expected_version=0)
                assert store.policies.get(key).value.name == text
            else:
                with pytest.raises(ValidationError):
                    store.policies.put(key, policy, expected_version=0)
                assert store.policies.history(key) == []

        check()

    def test_every_version_stays_readable(self, store: Store) -> None:
        v1 = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
        v2 = BusinessCalendar.weekly("08:00", "16:00", timezone="Europe/Berlin")
        first = store.calendars.put("support", v1, expected_version=0)
        second = store.calendars.put("support", v2, expected_version=1)
        assert (first.version, second.version) == (1, 2)
        assert store.calendars.get("support").value == v2
        assert store.calendars.get("support").version == 2
        assert store.calendars.get("support", version=1).value == v1
        assert [v.value for v in store.calendars.history("support")] == [v1, v2]
        assert store.calendars.keys() == ["support"]

    def test_round_trips_any_calendar(self, store: Store) -> None:
        counter = itertools.count()

        @_property
        @given(calendar=cs.calendars())
        def check(calendar: BusinessCalendar) -> None:
            key = f"cal-{next(counter)}"
            store.calendars.put(key, calendar, expected_version=0)
            assert store.calendars.get(key).value == calendar

        check()

    def test_stale_version_raises_and_writes_nothing(self, store: Store) -> None:
        cal = BusinessCalendar.always()
        store.calendars.put("k", cal, expected_version=0)
        for stale in (0, 2):
            with pytest.raises(ConcurrencyError, match="version 1"):
                store.calendars.put("k", cal, expected_version=stale)
        assert len(store.calendars.history("k")) == 1

    def test_missing_keys_and_versions_raise_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound, match="'nope'"):
            store.calendars.get("nope")
        store.calendars.put("k", BusinessCalendar.always(), expected_version=0)
        with pytest.raises(NotFound, match="no version 5"):
            store.calendars.get("k", version=5)
        assert store.calendars.history("nope") == []

    def test_roles_are_separate(self, store: Store) -> None:
        store.calendars.put("same", BusinessCalendar.always(), expected_version=0)
        assert store.policies.keys() == []
        assert store.rules.keys() == []
        with pytest.raises(NotFound):
            store.policies.get("same")

    def test_bad_arguments_raise_validation_error(self, store: Store) -> None:
        with pytest.raises(ValidationError, match="key"):
            store.calendars.put("", BusinessCalendar.always(), expected_version=0)
        with pytest.raises(ValidationError, match="expected_version"):
            store.calendars.put("k", BusinessCalendar.always(), expected_version=-1)
        with pytest.raises(ValidationError, match="csmcore"):
            store.calendars.put("k", {"not": "a domain object"}, expected_version=0)
        with pytest.raises(ValidationError, match="version"):
            store.calendars.get("k", version=0)
        assert store.calendars.keys() == []


class UnitOfWorkTests(StoreFixtures):
    """Atomic groups of writes across roles."""

    def test_writes_become_visible_together(self, store: Store) -> None:
        cal = BusinessCalendar.always()
        with store.unit_of_work() as uow:
            uow.tickets.add(make_ticket("T-1"))
            uow.tickets.append("T-1", [_comment(T0, "x")], expected_version=1)
            uow.calendars.put("c", cal, expected_version=0)
            assert uow.tickets.get("T-1").version == 2  # a unit of work reads its own writes
            assert uow.tickets.count(cd.Always()) == 1
        assert store.tickets.get("T-1").version == 2
        assert store.calendars.get("c").value == cal

    def test_an_exception_leaves_nothing_written(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-0"))

        class Boom(Exception):
            pass

        def write_then_fail() -> None:
            with store.unit_of_work() as uow:
                uow.tickets.add(make_ticket("T-1"))
                uow.tickets.append("T-0", [_comment(T0, "x")], expected_version=1)
                uow.calendars.put("c", BusinessCalendar.always(), expected_version=0)
                uow.policies.put("p", BusinessCalendar.always(), expected_version=0)
                raise Boom

        with pytest.raises(Boom):
            write_then_fail()
        assert [t.id for t in store.tickets.find(cd.Always())] == ["T-0"]
        assert store.tickets.get("T-0").version == 1
        assert store.calendars.keys() == []
        assert store.policies.keys() == []

    @pytest.mark.parametrize(
        "error",
        [
            OverflowError("the caller's own overflow"),
            UnicodeEncodeError("ascii", "é", 0, 1, "the caller's own encoding"),
            KeyError("the caller's own key"),
        ],
        ids=["OverflowError", "UnicodeEncodeError", "KeyError"],
    )
    def test_the_callers_own_errors_come_out_unchanged(
        self, store: Store, error: Exception
    ) -> None:
        """An error the caller's code raises inside a unit of work is the caller's: it is not
        translated as if the backend had refused a value, and nothing is written."""

        def write_then_fail() -> None:
            with store.unit_of_work() as uow:
                uow.tickets.add(make_ticket("T-1"))
                raise error

        with pytest.raises(type(error)) as raised:
            write_then_fail()
        assert raised.value is error
        assert store.tickets.count(cd.Always()) == 0

    def test_a_failed_operation_inside_does_not_spoil_the_rest(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-0"))
        with store.unit_of_work() as uow:
            uow.tickets.add(make_ticket("T-1"))
            with pytest.raises(ConcurrencyError):
                uow.tickets.add(make_ticket("T-0"))
            with pytest.raises(ConcurrencyError):
                uow.tickets.append("T-1", [_comment(T0, "x")], expected_version=7)
            uow.tickets.append("T-1", [_comment(T0, "y")], expected_version=1)
        assert store.tickets.get("T-1").version == 2
        assert store.tickets.get("T-0").version == 1

    def test_store_roles_refuse_while_a_unit_of_work_is_open(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.tickets.add(make_ticket("T-1"))
            with pytest.raises(StorageError, match="unit of work"):
                store.tickets.add(make_ticket("T-2"))
        assert store.tickets.count(cd.Always()) == 1

    def test_roles_of_an_ended_unit_of_work_refuse(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            pass
        with pytest.raises(StorageError, match="ended"):
            uow.tickets.add(make_ticket("T-1"))
        assert store.tickets.count(cd.Always()) == 0


class DurabilityTests(StoreFixtures):
    """Data survives closing the store (needs ``reopen``)."""

    def test_committed_data_survives_close(self, store: Store) -> None:
        self.require("reopen")
        ticket = store.tickets.add(make_ticket("T-1", tags={"vip"}))
        cal = BusinessCalendar.weekly("09:00", "17:00")
        store.calendars.put("c", cal, expected_version=0)
        url = store.url
        store.close()
        again = open_store(url)
        try:
            assert again.tickets.get("T-1") == ticket
            assert again.tickets.count(cd.HasTags(frozenset({"vip"}))) == 1
            assert again.calendars.get("c").value == cal
        finally:
            again.close()

    def test_handles_always_see_each_others_writes(self, store: Store) -> None:
        self.require("reopen")
        other = open_store(store.url)
        try:
            store.tickets.add(make_ticket("T-1"))
            assert store.tickets.get("T-1").version == 1  # the first handle has now read it
            other.tickets.append("T-1", [_comment(T0, "other")], expected_version=1)
            with pytest.raises(ConcurrencyError):
                store.tickets.append("T-1", [_comment(T0, "stale")], expected_version=1)
            mine = store.tickets.append("T-1", [_comment(T0, "mine")], expected_version=2)
            assert [getattr(e, "author", None) for e in mine.events] == [None, "other", "mine"]

            class Abort(Exception):
                pass

            def append_then_abort() -> None:
                with store.unit_of_work() as uow:
                    uow.tickets.append("T-1", [_comment(T0, "rolled back")], expected_version=3)
                    raise Abort

            with pytest.raises(Abort):
                append_then_abort()
            other.tickets.append("T-1", [_comment(T0, "other again")], expected_version=3)
            final = store.tickets.append("T-1", [_comment(T0, "last")], expected_version=4)
            authors = [getattr(e, "author", None) for e in final.events]
            assert authors == [None, "other", "mine", "other again", "last"]
            assert other.tickets.get("T-1") == final
        finally:
            other.close()

    def test_closed_store_refuses(self, store: Store) -> None:
        store.close()
        with pytest.raises(StorageError, match="closed"):
            store.tickets.get("T-1")


def _fill(store: Store) -> tuple[Ticket, BusinessCalendar]:
    """Write a ticket with some history and a calendar; return them."""
    store.tickets.add(make_ticket("S-1", tags={"vip"}, fields={"plan": "gold"}))
    ticket = store.tickets.append("S-1", [_comment(T0, "kept")], expected_version=1)
    calendar = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
    store.calendars.put("support", calendar, expected_version=0)
    return ticket, calendar


def _check_filled(url: str, ticket: Ticket, calendar: BusinessCalendar) -> None:
    """Open ``url`` and check that what :func:`_fill` wrote is there, readable and queryable."""
    again = open_store(url)
    try:
        assert again.tickets.get(ticket.id) == ticket
        assert again.tickets.find(cd.HasTags({"vip"})) == [ticket]
        assert again.tickets.count(cd.Eq("fields.plan", "gold")) == 1
        assert again.calendars.get("support").value == calendar
        again.tickets.append(ticket.id, [_comment(T0, "after")], expected_version=2)
    finally:
        again.close()


class SchemaTests(StoreFixtures):
    """Schema versions: recorded, migrated forward when opened, a newer one refused.

    Needs ``reopen`` and the :class:`SchemaAccess` hook (:class:`OldSchemas` too once there is
    more than one schema version).
    """

    def access(self, factory: StoreFactory) -> SchemaAccess:
        """The factory's :class:`SchemaAccess` (skips without ``reopen``; fails without the hook
        unless ``schema`` is opted out of)."""
        self.require("reopen")
        found: SchemaAccess = self.hook(factory, SchemaAccess)
        return found

    def test_a_new_store_records_the_schema_version(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        access = self.access(store_factory)
        assert access.schema_version >= 1
        ticket, calendar = _fill(store)
        url = store.url
        store.close()
        assert access.read_schema_version(url) == access.schema_version
        _check_filled(url, ticket, calendar)
        assert access.read_schema_version(url) == access.schema_version

    def test_a_store_written_by_a_newer_version_is_refused_untouched(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        access = self.access(store_factory)
        ticket, calendar = _fill(store)
        url = store.url
        store.close()
        layout = access.schema_layout(url)
        for newer in (access.schema_version + 1, access.schema_version + 97):
            access.write_schema_version(url, newer)
            with pytest.raises(SchemaVersionError) as info:
                open_store(url).close()
            message = str(info.value)
            assert str(newer) in message, f"the message should name version {newer}: {message}"
            assert "newer" in message.lower(), f"the message should say why: {message}"
            assert access.read_schema_version(url) == newer
            assert access.schema_layout(url) == layout
        access.write_schema_version(url, access.schema_version)
        _check_filled(url, ticket, calendar)

    def test_a_store_without_a_recorded_version_is_refused_untouched(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        access = self.access(store_factory)
        ticket, calendar = _fill(store)
        url = store.url
        store.close()
        access.write_schema_version(url, None)
        assert access.read_schema_version(url) is None
        layout = access.schema_layout(url)
        with pytest.raises(SchemaVersionError):
            open_store(url).close()
        assert access.read_schema_version(url) is None
        assert access.schema_layout(url) == layout
        access.write_schema_version(url, access.schema_version)
        _check_filled(url, ticket, calendar)

    def test_an_older_schema_migrates_forward_when_opened(
        self, store_factory: StoreFactory, stores: StoreFactory
    ) -> None:
        access = self.access(store_factory)
        if access.schema_version == 1:
            pytest.skip(f"{type(self).__name__}: schema version 1 is the first; none is older")
        old: OldSchemas = self.hook(store_factory, OldSchemas)
        fresh = stores()
        fresh.close()
        current = access.schema_layout(fresh.url)
        for version in range(1, access.schema_version):
            store = stores()
            ticket, calendar = _fill(store)
            url = store.url
            store.close()
            old.write_old_schema(url, version)
            assert access.read_schema_version(url) == version
            _check_filled(url, ticket, calendar)
            assert access.read_schema_version(url) == access.schema_version
            assert access.schema_layout(url) == current, f"migrated from version {version}"


def _assert_driver_cause(error: BaseException) -> None:
    cause = error.__cause__
    advice = "raise the CsmError from the driver's (or the encoder's) error"
    assert cause is not None, f"{error!r} has no __cause__: {advice}"
    assert not isinstance(cause, CsmError), f"{error!r} is caused by {cause!r}: {advice}"


class FaultTests(StoreFixtures):
    """Backend failures reach callers as :class:`~csmcore.errors.StorageError` with the driver's
    error as ``__cause__`` (needs the :class:`BackendFaults` hook)."""

    def test_an_unreachable_backend_raises_storage_error(self, store_factory: StoreFactory) -> None:
        faults: BackendFaults = self.hook(store_factory, BackendFaults)

        def open_and_count() -> None:
            store = open_store(faults.unreachable_url())
            try:
                store.tickets.count(cd.Always())
            finally:
                store.close()

        with pytest.raises(StorageError) as info:
            open_and_count()
        _assert_driver_cause(info.value)

    def test_a_failing_backend_raises_storage_error(
        self, store_factory: StoreFactory, store: Store
    ) -> None:
        faults: BackendFaults = self.hook(store_factory, BackendFaults)
        store.tickets.add(make_ticket("T-1"))
        faults.break_backend(store.url)
        with pytest.raises(StorageError) as info:
            store.tickets.get("T-1")
        _assert_driver_cause(info.value)


def _race_threads(handles: list[Store], ticket_id: str) -> list[str]:
    """Each handle appends :func:`~csmcore.testing._workers.race_events` at expected version 1
    from its own thread, all released together; the outcomes, sorted."""
    start = threading.Barrier(len(handles))
    results: list[str] = []

    def race(worker: int) -> None:
        start.wait()
        results.append(race_once(handles[worker], ticket_id, worker))

    threads = [threading.Thread(target=race, args=(w,)) for w in range(len(handles))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)


def _one_winner(writers: int) -> list[str]:
    return sorted(["won"] + ["conflict"] * (writers - 1))


def _torn(found: list[Ticket], condition: cd.Condition) -> list[str]:
    """What is wrong with ``found`` as a result of a query for ``condition``."""
    problems = [f"{t.id} at version {t.version} does not match" for t in found]
    problems = [p for p, t in zip(problems, found, strict=True) if not condition.matches(t)]
    ids = [t.id for t in found]
    if ids != sorted(set(ids)):
        problems.append(f"ids not strictly ascending: {ids}")
    return problems


def _run_processes(jobs: list[tuple[Callable[..., Any], tuple[Any, ...]]], ctx: Any) -> list[Any]:
    """Run each ``(target, args)`` in its own spawned process; return their results in order of
    completion. Fails the test if one raised or did not finish in time."""
    results = ctx.Queue()
    procs = [ctx.Process(target=in_process, args=(t, a, results)) for t, a in jobs]
    for proc in procs:
        proc.start()
    try:
        outcomes = [results.get(timeout=120) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():  # stuck: end it, or it would keep the test run from exiting
                proc.terminate()
                proc.join(timeout=5)
    failed = [detail for status, detail in outcomes if status == "error"]
    assert failed == [], f"a writer process failed: {failed}"
    return [detail for _, detail in outcomes]


class ConcurrencyTests(StoreFixtures):
    """Concurrent writers: no lost event; one winner per expected version."""

    writers: ClassVar[int] = 4
    """Concurrent writers (threads, processes) in the lost-event checks."""
    appends_per_writer: ClassVar[int] = 10
    racers: ClassVar[int] = 3
    """Writers racing with the same expected version."""
    race_rounds: ClassVar[int] = 100
    """Rounds of that race between threads, each on a new ticket (so no handle has it cached);
    process races run a tenth as many."""
    race_reads: ClassVar[int] = 120
    """Queries made while writers append, in the torn-read check; the check also waits until
    the writers have committed a quarter as many appends."""

    def _authors(self, store: Store, ticket_id: str) -> list[str]:
        events = store.tickets.get(ticket_id).events[1:]
        return sorted(e.author for e in events if isinstance(e, Commented) and e.author)

    def _expected_authors(self) -> list[str]:
        return sorted(
            f"w{w}-{n}" for w in range(self.writers) for n in range(self.appends_per_writer)
        )

    def test_threads_never_lose_an_event(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-1"))
        handles = [self._handle(store) for _ in range(self.writers)]
        errors: list[BaseException] = []

        def work(worker: int) -> None:
            mine = handles[worker]
            try:
                for n in range(self.appends_per_writer):
                    while True:
                        version = mine.tickets.get("T-1").version
                        try:
                            mine.tickets.append(
                                "T-1", [_comment(T0, f"w{worker}-{n}")], expected_version=version
                            )
                            break
                        except ConcurrencyError:
                            continue
            except BaseException as err:  # reported below
                errors.append(err)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(self.writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for handle in handles:
            if handle is not store:
                handle.close()
        assert errors == []
        assert self._authors(store, "T-1") == self._expected_authors()
        assert store.tickets.get("T-1").version == 1 + self.writers * self.appends_per_writer

    def test_threads_with_the_same_expected_version_have_one_winner(self, store: Store) -> None:
        """Of several writers appending at the same expected version, exactly one wins and every
        other one gets ConcurrencyError, never an InvalidTransition about the winner's events."""
        handles = [self._handle(store) for _ in range(self.racers)]
        outcomes: list[list[str]] = []
        try:
            for round_ in range(self.race_rounds):
                ticket_id = f"R-{round_:03d}"
                store.tickets.add(make_ticket(ticket_id))
                outcomes.append(_race_threads(handles, ticket_id))
                assert store.tickets.get(ticket_id).version == 2
        finally:
            for handle in handles:
                if handle is not store:
                    handle.close()
        assert [o for o in outcomes if o != _one_winner(self.racers)] == []

    def test_queries_never_return_half_of_a_concurrent_append(self, store: Store) -> None:
        """Writers keep flipping the priority of a few tickets between high and low while a
        reader queries for ``priority == 'high'``: every ticket a query returns must be one
        whole committed state that matches (a summary and a history read at different moments
        would let a ticket selected as high come back low)."""
        high = cd.Eq("priority", "high")
        count = 12
        store.tickets.add_many(
            make_ticket(f"T-{n:02d}", priority="high" if n % 2 else "low") for n in range(count)
        )
        handles = [self._handle(store) for _ in range(self.racers)]
        stop = threading.Event()
        written: list[str] = []
        failures: list[BaseException] = []

        def flip(worker: int) -> None:
            mine = handles[worker]
            rnd = random.Random(worker)
            try:
                while not stop.is_set():
                    ticket = mine.tickets.get(f"T-{rnd.randrange(count):02d}")
                    new = Priority.LOW if ticket.priority is Priority.HIGH else Priority.HIGH
                    at = ticket.updated_at + timedelta(seconds=1)
                    try:
                        mine.tickets.append(
                            ticket.id,
                            [PriorityChanged(at=at, priority=new)],
                            expected_version=ticket.version,
                        )
                        written.append(ticket.id)
                    except ConcurrencyError:  # another writer got there first
                        pass
            except BaseException as err:  # reported below
                failures.append(err)

        threads = [threading.Thread(target=flip, args=(w,)) for w in range(self.racers)]
        for thread in threads:
            thread.start()
        problems: list[str] = []
        reads = 0
        # Writers normally pass the bar in well under a second; the deadline turns writers that
        # make no progress (every append refused, say) into a failure instead of a hang.
        deadline = time.monotonic() + 120
        try:
            while (
                not failures
                and (reads < self.race_reads or len(written) < self.race_reads // 4)
                and time.monotonic() < deadline
            ):
                if reads % 2:
                    problems += _torn(store.tickets.find(high), high)
                else:
                    for batch in store.tickets.stream(high, batch_size=4):
                        problems += _torn(batch, high)
                        assert 0 < len(batch) <= 4
                reads += 1
        finally:
            stop.set()
            for thread in threads:
                thread.join()
            for handle in handles:
                if handle is not store:
                    handle.close()
        assert failures == []
        assert problems == []
        assert len(written) >= self.race_reads // 4, (
            f"the writers landed {len(written)} appends in 120 s; is every append refused?"
        )
        assert sum(t.version - 1 for t in store.tickets.find(cd.Always())) == len(written)

    def _handle(self, store: Store) -> Store:
        """A separate connection when the store can reopen, else the store itself."""
        return store if "reopen" in self.opt_out else open_store(store.url)

    def test_processes_never_lose_an_event(self, store: Store) -> None:
        self.require("processes")
        store.tickets.add(make_ticket("T-1"))
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(self.writers)
        _run_processes(
            [
                (append_worker, (store.url, "T-1", w, self.appends_per_writer, start))
                for w in range(self.writers)
            ],
            ctx,
        )
        assert self._authors(store, "T-1") == self._expected_authors()

    def test_processes_with_the_same_expected_version_have_one_winner(self, store: Store) -> None:
        self.require("processes")
        ids = [f"R-{n:02d}" for n in range(max(self.race_rounds // 10, 1))]
        store.tickets.add_many([make_ticket(i) for i in ids])
        ctx = multiprocessing.get_context("spawn")
        start = ctx.Barrier(self.racers)
        results = _run_processes(
            [(race_worker, (store.url, ids, w, start)) for w in range(self.racers)], ctx
        )
        outcomes = [sorted(one) for one in zip(*results, strict=True)]
        assert [o for o in outcomes if o != _one_winner(self.racers)] == []
        assert all(store.tickets.get(i).version == 2 for i in ids)


# --------------------------------------------------------------------------------------------
# Stateful agreement with the memory reference
# --------------------------------------------------------------------------------------------


class _Agreement(RuleBasedStateMachine):
    """Drive a store and the memory reference with the same operations; they must agree."""

    factory: ClassVar[StoreFactory]

    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.subject = type(self).factory()
        self.reference = MemoryStore()
        self.counter = itertools.count()

    def teardown(self) -> None:
        self.subject.close()
        self.reference.close()

    def both(self, call: Callable[[Store], Any]) -> Any:
        """Run ``call`` on both stores; the results, or the error types, must be equal."""
        outcomes = []
        for store in (self.subject, self.reference):
            try:
                outcomes.append(("ok", call(store)))
            except CsmError as err:
                outcomes.append(("error", type(err)))
        assert outcomes[0] == outcomes[1], f"store {outcomes[0]!r} != reference {outcomes[1]!r}"
        return outcomes[1][1]

    @initialize()
    def start(self) -> None:
        assert self.subject.tickets.count(cd.Always()) == 0

    @rule(target=ids, data=st.data())
    def add(self, data: st.DataObject) -> str:
        ticket = data.draw(cs.tickets(ticket_id=st.just(f"T{next(self.counter)}"), max_events=4))
        self.both(lambda s: s.tickets.add(ticket))
        return ticket.id

    @rule(ticket_id=ids, data=st.data())
    def add_again(self, ticket_id: str, data: st.DataObject) -> None:
        ticket = data.draw(cs.tickets(ticket_id=st.just(ticket_id), max_events=1))
        self.both(lambda s: s.tickets.add(ticket))

    @rule(ticket_id=ids, data=st.data())
    def append(self, ticket_id: str, data: st.DataObject) -> None:
        current = self.reference.tickets.get(ticket_id)
        if current.merged_into is not None:
            return
        events = [data.draw(cs.next_events(ticket=current))]
        after = current.apply(events[0])
        if after.merged_into is None and data.draw(st.booleans()):
            events.append(data.draw(cs.next_events(ticket=after)))
        version = data.draw(
            st.sampled_from([current.version, current.version, current.version - 1])
        )
        self.both(lambda s: s.tickets.append(ticket_id, events, expected_version=version))

    @rule(ticket_id=ids, data=st.data())
    def append_out_of_order(self, ticket_id: str, data: st.DataObject) -> None:
        current = self.reference.tickets.get(ticket_id)
        late = _comment(current.created_at - timedelta(seconds=1), "late")
        self.both(lambda s: s.tickets.append(ticket_id, [late], expected_version=current.version))

    @rule(ticket_id=st.one_of(ids, st.just("missing")))
    def get(self, ticket_id: str) -> None:
        self.both(lambda s: s.tickets.get(ticket_id))

    @rule(condition=cs.conditions(), limit=st.none() | st.integers(0, 3))
    def find(self, condition: cd.Condition, limit: int | None) -> None:
        self.both(lambda s: s.tickets.find(condition, limit=limit))
        self.both(lambda s: s.tickets.count(condition))

    @rule(condition=cs.conditions(), size=st.integers(1, 3))
    def stream(self, condition: cd.Condition, size: int) -> None:
        self.both(lambda s: list(s.tickets.stream(condition, batch_size=size)))

    @rule(key=st.sampled_from(["a", "b"]), calendar=cs.calendars(), stale=st.booleans())
    def put_calendar(self, key: str, calendar: BusinessCalendar, stale: bool) -> None:
        latest = len(self.reference.calendars.history(key))
        version = latest + 1 if stale else latest
        self.both(lambda s: s.calendars.put(key, calendar, expected_version=version))

    @rule(key=st.sampled_from(["a", "b"]), version=st.none() | st.integers(1, 3))
    def get_calendar(self, key: str, version: int | None) -> None:
        self.both(lambda s: s.calendars.get(key, version=version))

    @rule(data=st.data(), fail=st.booleans())
    def unit_of_work(self, data: st.DataObject, fail: bool) -> None:
        ticket = data.draw(cs.tickets(ticket_id=st.just(f"U{next(self.counter)}"), max_events=3))

        class Abort(Exception):
            pass

        def run(store: Store) -> bool:
            try:
                with store.unit_of_work() as uow:
                    uow.tickets.add(ticket)
                    uow.rules.put(ticket.id, BusinessCalendar.always(), expected_version=0)
                    if fail:
                        raise Abort
            except Abort:
                return False
            return True

        self.both(run)

    @rule(ticket_id=consumes(ids))
    def forget(self, ticket_id: str) -> None:
        """Stop drawing this id (keeps the bundle small); the ticket stays stored."""

    @invariant()
    def same_contents(self) -> None:
        self.both(lambda s: s.tickets.find(cd.Always()))
        self.both(lambda s: [s.calendars.history(key) for key in list(s.calendars.keys())])
        self.both(lambda s: s.rules.keys())


class AgreementTests(StoreFixtures):
    """A Hypothesis state machine: the store always agrees with the memory reference."""

    agreement_examples: ClassVar[int] = 15
    """How many random programs to run (each on a fresh store)."""
    agreement_steps: ClassVar[int] = 25
    """How many operations each program makes at most."""

    def test_agrees_with_the_memory_reference(self, stores: StoreFactory) -> None:
        machine: Any = type("Agreement", (_Agreement,), {"factory": staticmethod(stores)})
        machine.TestCase.settings = settings(
            max_examples=self.agreement_examples,
            stateful_step_count=self.agreement_steps,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        machine.TestCase().runTest()


class StorageSuite(
    TicketTests,
    QueryTests,
    TextTests,
    VersionedTests,
    UnitOfWorkTests,
    DurabilityTests,
    SchemaTests,
    FaultTests,
    ConcurrencyTests,
    AgreementTests,
):
    """The whole conformance suite. Subclass it and override ``store_factory``."""
