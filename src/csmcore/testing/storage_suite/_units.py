"""Units of work and durability (:class:`UnitOfWorkTests`, :class:`DurabilityTests`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from csmcore import conditions as cd
from csmcore.calendars import BusinessCalendar
from csmcore.errors import (
    ConcurrencyError,
    CsmError,
    StorageError,
)
from csmcore.storage import open_store
from csmcore.storage.protocols import LatestVersions, Store, TicketsByRequester, UnitOfWork
from csmcore.testing.builders import T0, make_comment, make_policy, make_ticket
from csmcore.testing.storage_suite._base import (
    StoreFixtures,
)


def _document_calls(kind: str, role: Any, value: object) -> dict[str, Callable[[], object]]:
    """Every method of the document ``role``, with valid arguments (``latest_versions`` too
    where the role offers the optional :class:`~csmcore.storage.LatestVersions`)."""
    calls: dict[str, Callable[[], object]] = {
        f"{kind}.put": lambda: role.put("d", value, expected_version=0),
        f"{kind}.get": lambda: role.get("c"),
        f"{kind}.history": lambda: role.history("c"),
        f"{kind}.keys": lambda: role.keys(),
    }
    if isinstance(role, LatestVersions):
        calls[f"{kind}.latest_versions"] = lambda: role.latest_versions()
    return calls


def _read(call: Callable[[], Any]) -> Any:
    """``call()``, or what it raised (a csmcore error) as text, for a check's message."""
    try:
        return call()
    except CsmError as err:
        return f"raised {type(err).__name__}: {err}"


class UnitOfWorkTests(StoreFixtures):
    """Atomic groups of writes across roles."""

    def test_writes_become_visible_together(self, store: Store) -> None:
        cal = BusinessCalendar.always()
        with store.unit_of_work() as uow:
            uow.tickets.add(make_ticket("T-1"))
            uow.tickets.append("T-1", [make_comment(T0, "x")], expected_version=1)
            uow.calendars.put("c", cal, expected_version=0)
            assert uow.tickets.get("T-1").version == 2, "a unit of work reads its own writes"
            assert uow.tickets.count(cd.Always()) == 1, (
                "count() inside a unit of work must count the unit's own new tickets"
            )
        assert store.tickets.get("T-1").version == 2
        assert store.calendars.get("c").value == cal

    def test_an_exception_leaves_nothing_written(self, store: Store) -> None:
        store.tickets.add(make_ticket("T-0"))

        class Boom(Exception):
            pass

        def write_then_fail() -> None:
            with store.unit_of_work() as uow:
                uow.tickets.add(make_ticket("T-1"))
                uow.tickets.append("T-0", [make_comment(T0, "x")], expected_version=1)
                uow.calendars.put("c", BusinessCalendar.always(), expected_version=0)
                uow.policies.put("p", make_policy("p"), expected_version=0)
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
                uow.tickets.append("T-1", [make_comment(T0, "x")], expected_version=7)
            uow.tickets.append("T-1", [make_comment(T0, "y")], expected_version=1)
        assert store.tickets.get("T-1").version == 2
        assert store.tickets.get("T-0").version == 1

    def test_a_failed_add_many_inside_writes_none_of_its_tickets(self, store: Store) -> None:
        """``add_many`` is all or nothing inside a unit of work too: when one id is taken (or
        repeats), none of the batch is left in the unit of work, which goes on and commits
        its other writes (a failed call is undone on its own, as a savepoint would)."""
        store.tickets.add(make_ticket("T-0"))
        with store.unit_of_work() as uow:
            uow.tickets.add(make_ticket("T-1"))
            with pytest.raises(ConcurrencyError, match="T-0"):
                uow.tickets.add_many([make_ticket("T-2"), make_ticket("T-0"), make_ticket("T-3")])
            with pytest.raises(ConcurrencyError, match="T-4"):
                uow.tickets.add_many([make_ticket("T-4"), make_ticket("T-5"), make_ticket("T-4")])
            inside = [t.id for t in uow.tickets.find(cd.Always())]
        after = [t.id for t in store.tickets.find(cd.Always())]
        assert (inside, after) == (["T-0", "T-1"], ["T-0", "T-1"]), (
            "an add_many refused inside a unit of work must leave none of its tickets there, "
            "also those before the id that failed (undo the failed call on its own, e.g. in a "
            f"savepoint); inside the unit of work: {inside}, after its commit: {after}"
        )

    def test_a_unit_of_work_reads_its_own_documents(self, store: Store) -> None:
        """Inside a unit of work the document roles read the unit's own versions: ``get``
        (latest and by version), ``history`` and ``keys``, as its ``tickets`` do."""
        old, new = make_policy("standard"), make_policy("urgent")
        store.policies.put("p", old, expected_version=0)
        with store.unit_of_work() as uow:
            uow.policies.put("p", new, expected_version=1)
            uow.policies.put("q", old, expected_version=0)
            # each read on its own: one that raises (NotFound from a role reading only the
            # committed versions) is reported with the others, under the message below
            seen = {
                "get": _read(lambda: (uow.policies.get("p").version, uow.policies.get("p").value)),
                "get(version=2)": _read(lambda: uow.policies.get("p", version=2).value),
                "history": _read(lambda: [v.version for v in uow.policies.history("p")]),
                "keys": _read(uow.policies.keys),
            }
        assert seen == {
            "get": (2, new),
            "get(version=2)": new,
            "history": [1, 2],
            "keys": ["p", "q"],
        }, "the document roles of a unit of work must read the unit's own versions"

    def test_store_roles_refuse_while_a_unit_of_work_is_open(self, store: Store) -> None:
        with store.unit_of_work() as uow:
            uow.tickets.add(make_ticket("T-1"))
            with pytest.raises(StorageError, match="unit of work"):
                store.tickets.add(make_ticket("T-2"))
        assert store.tickets.count(cd.Always()) == 1

    def test_roles_of_an_ended_unit_of_work_refuse(self, store: Store) -> None:
        """Every method of every role of a unit of work that has ended (committed, or left
        with an exception) raises StorageError saying so, also while a newer unit of work is
        open in the same thread, and writes nothing."""
        calendar = BusinessCalendar.always()
        store.tickets.add(make_ticket("T-0"))
        store.calendars.put("c", calendar, expected_version=0)
        with store.unit_of_work() as committed:
            committed.tickets.add(make_ticket("T-1"))

        class Boom(Exception):
            pass

        with pytest.raises(Boom), store.unit_of_work() as failed:
            raise Boom

        def calls(uow: UnitOfWork) -> dict[str, Callable[[], object]]:
            tickets = uow.tickets
            found: dict[str, Callable[[], object]] = {
                "tickets.add": lambda: tickets.add(make_ticket("T-9")),
                "tickets.add_many": lambda: tickets.add_many([make_ticket("T-9")]),
                "tickets.get": lambda: tickets.get("T-0"),
                "tickets.append": lambda: tickets.append(
                    "T-0", [make_comment(T0, "late")], expected_version=1
                ),
                "tickets.find": lambda: tickets.find(cd.Always()),
                "tickets.stream": lambda: list(tickets.stream(cd.Always())),
                "tickets.count": lambda: tickets.count(cd.Always()),
            }
            if isinstance(tickets, TicketsByRequester):
                found["tickets.stream_by_requester"] = lambda: list(
                    tickets.stream_by_requester("ann", cd.Always())
                )
            for kind, value in (("calendars", calendar), ("policies", make_policy("p"))):
                found |= _document_calls(kind, getattr(uow, kind), value)
            return found

        def refused(uow: UnitOfWork) -> list[str]:
            """The methods that did not raise StorageError saying the unit of work ended."""
            accepted = []
            for name, call in calls(uow).items():
                try:
                    call()
                except StorageError as err:
                    if "ended" not in str(err):
                        accepted.append(f"{name} ({err})")
                else:
                    accepted.append(name)
            return accepted

        assert refused(committed) == [], "these methods of an ended unit of work ran"
        assert refused(failed) == [], "these methods of an ended unit of work ran"
        with store.unit_of_work() as current:
            assert refused(committed) == [], "these ran while a newer unit of work was open"
            current.tickets.add(make_ticket("T-2"))
        assert [t.id for t in store.tickets.find(cd.Always())] == ["T-0", "T-1", "T-2"]
        assert store.tickets.get("T-0").version == 1
        assert store.calendars.keys() == ["c"]
        assert store.policies.keys() == []


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
            other.tickets.append("T-1", [make_comment(T0, "other")], expected_version=1)
            with pytest.raises(ConcurrencyError):
                store.tickets.append("T-1", [make_comment(T0, "stale")], expected_version=1)
            mine = store.tickets.append("T-1", [make_comment(T0, "mine")], expected_version=2)
            assert [getattr(e, "author", None) for e in mine.events] == [None, "other", "mine"]

            class Abort(Exception):
                pass

            def append_then_abort() -> None:
                with store.unit_of_work() as uow:
                    uow.tickets.append("T-1", [make_comment(T0, "rolled back")], expected_version=3)
                    raise Abort

            with pytest.raises(Abort):
                append_then_abort()
            other.tickets.append("T-1", [make_comment(T0, "other again")], expected_version=3)
            final = store.tickets.append("T-1", [make_comment(T0, "last")], expected_version=4)
            authors = [getattr(e, "author", None) for e in final.events]
            assert authors == [None, "other", "mine", "other again", "last"]
            assert other.tickets.get("T-1") == final
        finally:
            other.close()

    def test_handles_see_each_others_document_versions(self, store: Store) -> None:
        """A handle reads the document versions another handle committed, after it read the
        documents itself: ``keys``, ``get`` and (where offered) ``latest_versions`` keep
        nothing from before. An escalation engine takes other engines' rule changes this way."""
        self.require("reopen")
        other = open_store(store.url)
        try:
            calendar = BusinessCalendar.always()
            store.calendars.put("c", calendar, expected_version=0)
            role = store.calendars

            def seen() -> dict[str, object]:
                got: dict[str, object] = {
                    "keys()": role.keys(),
                    "get('c').version": role.get("c").version,
                }
                if isinstance(role, LatestVersions):
                    got["latest_versions()"] = role.latest_versions()
                return got

            seen()  # this handle has now read them
            other.calendars.put("c", calendar, expected_version=1)
            other.calendars.put("d", calendar, expected_version=0)
            got = seen()
            expected = {
                "keys()": ["c", "d"],
                "get('c').version": 2,
                "latest_versions()": {"c": 2, "d": 1},
            }
            assert got == {name: expected[name] for name in got}, (
                "a handle must read the document versions another handle committed (keep "
                f"nothing from its own earlier reads); after the other handle's puts it read {got}"
            )
        finally:
            other.close()

    def test_closed_store_refuses(self, store: Store) -> None:
        store.close()
        with pytest.raises(StorageError, match="closed"):
            store.tickets.get("T-1")
