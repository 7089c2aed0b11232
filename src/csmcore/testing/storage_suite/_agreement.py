"""The state machine that compares a store with the memory reference (:class:`AgreementTests`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar, cast

from hypothesis import HealthCheck, settings
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
from csmcore.calendars import BusinessCalendar
from csmcore.errors import (
    CsmError,
)
from csmcore.storage.memory import MemoryStore
from csmcore.storage.protocols import Store
from csmcore.testing import strategies as cs
from csmcore.testing.builders import make_comment, make_ticket
from csmcore.testing.storage_suite._base import (
    StoreFactory,
    StoreFixtures,
)
from csmcore.tickets import FieldsChanged

CUSTOM_NAMES = ("made_sla", "seats", "plan", 'a"b%', "é")
"""Custom field names the agreement tests query: plain, ones that need escaping in a JSON path
or key, non-ASCII."""

CUSTOM_VALUES: tuple[str | int | float | bool, ...] = (
    True,
    False,
    0,
    1,
    -1,
    0.0,
    1.0,
    -0.0,
    2.5,
    -2.5,
    0.1,
    2**53,
    2**53 + 1,
    float(2**53),
    2.0**60,
    2**60,
    2**63 - 1,
    2**63,
    -(2**63),
    2**70,
    1e23,
    10**23,
    1.7976931348623157e308,
    5e-324,
    "",
    "a",
    "A",
    "b",
    "é",
    "1",
    "true",
    "a\\b",
    'x"y',
)
"""Values that tell types apart (True/1, 1/1.0, "1"/1), numbers at the edges of what backends
hold exactly (2**53, 64 bits, floats whose shortest text is another integer: 1e23), and strings
that order differently by locale than by code point."""


def custom_values() -> st.SearchStrategy[str | int | float | bool]:
    """A custom field value, mostly from :data:`CUSTOM_VALUES` so that values collide."""
    others = cast("st.SearchStrategy[str | int | float | bool]", cs.field_values())  # no None
    return st.sampled_from(CUSTOM_VALUES) | others


def custom_fields() -> st.SearchStrategy[dict[str, Any]]:
    """Custom fields (a None value unsets the field when changed)."""
    return st.dictionaries(
        st.sampled_from(CUSTOM_NAMES), st.none() | custom_values(), max_size=len(CUSTOM_NAMES)
    )


@st.composite
def custom_conditions(draw: st.DrawFn, depth: int = 2) -> cd.Condition:
    """Conditions on custom fields: Eq (None included), In, Compare, under All/AnyOf/Not."""
    field = "fields." + draw(st.sampled_from(CUSTOM_NAMES))
    kind = draw(st.sampled_from(["eq", "in", "cmp", "all", "any", "not"] if depth else ["eq"]))
    if kind == "eq":
        return cd.Eq(field, draw(st.none() | custom_values()))
    if kind == "in":
        values = draw(st.lists(st.none() | custom_values(), max_size=4))
        booleans = [v for v in values if isinstance(v, bool)]
        kept = [v for v in values if isinstance(v, bool) or v not in booleans]
        return cd.In(field, kept)
    if kind == "cmp":
        value = draw(custom_values().filter(lambda v: not isinstance(v, bool)))
        return cd.Compare(field, draw(st.sampled_from(["<", "<=", ">", ">="])), value)
    parts = draw(st.lists(custom_conditions(depth - 1), max_size=3))
    if kind == "all":
        return cd.All(*parts)
    if kind == "any":
        return cd.AnyOf(*parts)
    return cd.Not(parts[0] if parts else cd.Eq(field, None))


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

    @rule(target=ids, fields=custom_fields())
    def add_with_fields(self, fields: dict[str, Any]) -> str:
        set_ = {k: v for k, v in fields.items() if v is not None}
        ticket = make_ticket(f"F{next(self.counter)}", fields=set_)
        self.both(lambda s: s.tickets.add(ticket))
        return ticket.id

    @rule(ticket_id=ids, changes=custom_fields())
    def change_fields(self, ticket_id: str, changes: dict[str, Any]) -> None:
        current = self.reference.tickets.get(ticket_id)
        if current.merged_into is not None or not changes:
            return
        event = FieldsChanged(at=current.updated_at, actor="agent", changes=changes)
        self.both(lambda s: s.tickets.append(ticket_id, [event], expected_version=current.version))

    @rule(condition=custom_conditions())
    def find_by_custom_fields(self, condition: cd.Condition) -> None:
        self.both(lambda s: s.tickets.find(condition))
        self.both(lambda s: s.tickets.count(condition))
        self.both(lambda s: list(s.tickets.stream(condition, batch_size=2)))

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
        late = make_comment(current.created_at - timedelta(seconds=1), "late")
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
