"""The state machine that compares a store with the memory reference (:class:`AgreementTests`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, ClassVar

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
from csmcore.testing.builders import make_comment
from csmcore.testing.storage_suite._base import (
    StoreFactory,
    StoreFixtures,
)


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
