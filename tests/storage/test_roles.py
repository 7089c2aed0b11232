"""The role registry: typed document roles, optional roles declared later, and stores that do or
do not offer them. The extra role below is declared in this module alone, as a later csmcore
(escalation firings, the outbox, the loyalty ledger) will declare its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Protocol, runtime_checkable

import pytest

import csmcore
from csmcore.calendars import BusinessCalendar
from csmcore.errors import CsmError, StorageError, UnsupportedRole, ValidationError
from csmcore.storage import open_store
from csmcore.storage.memory import MemoryStore
from csmcore.storage.protocols import Store
from csmcore.storage.roles import (
    BUILTIN_ROLES,
    ESCALATION_ROLES,
    StorageRole,
    declare_role,
    offered_roles,
    role_of,
    storage_role,
    storage_roles,
)
from csmcore.testing.builders import make_policy


@runtime_checkable
class NoteLog(Protocol):
    """An optional role made up for this test: notes appended to a log."""

    def append(self, note: str) -> int: ...

    def notes(self) -> list[str]: ...


NOTES = declare_role(StorageRole(name="test_notes", protocol=NoteLog))


class _Notes:
    def __init__(self) -> None:
        self._notes: list[str] = []

    def append(self, note: str) -> int:
        self._notes.append(note)
        return len(self._notes)

    def notes(self) -> list[str]:
        return list(self._notes)


class NotingStore(MemoryStore):
    """A store that offers the optional role on top of the built-in ones."""

    roles: ClassVar[frozenset[str]] = BUILTIN_ROLES | {"test_notes"}

    def __init__(self) -> None:
        super().__init__()
        self.test_notes = _Notes()


class TodaysStore:
    """A third-party store written before roles were declared: no ``roles`` attribute."""

    def __init__(self) -> None:
        self._inner = MemoryStore()
        self.tickets = self._inner.tickets
        self.calendars = self._inner.calendars
        self.policies = self._inner.policies
        self.rules = self._inner.rules
        self.url = "today://"
        self.unit_of_work = self._inner.unit_of_work

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def memory() -> Iterator[Store]:
    store = open_store("memory://")
    yield store
    store.close()


def test_the_builtin_roles_are_declared_required_and_typed() -> None:
    names = [r.name for r in storage_roles()]
    assert names[:4] == ["tickets", "calendars", "policies", "rules"]
    assert all(storage_role(n).required for n in BUILTIN_ROLES)
    assert storage_role("calendars").value_type is BusinessCalendar
    assert storage_role("policies").value_type is csmcore.SlaPolicy
    assert not NOTES.required
    assert storage_role("test_notes") is NOTES


def test_every_builtin_store_offers_every_builtin_role(memory: Store) -> None:
    # the optional ledger role is offered by the store and inside its units of work too
    assert offered_roles(memory) == BUILTIN_ROLES | ESCALATION_ROLES | {"ledger"}
    with memory.unit_of_work() as uow:
        assert offered_roles(uow) == BUILTIN_ROLES | ESCALATION_ROLES | {"ledger"}
        assert role_of(uow, "calendars") is uow.calendars
        assert role_of(uow, "firings") is uow.firings  # type: ignore[attr-defined]


def test_the_escalation_roles_are_declared_optional() -> None:
    assert {"firings", "outbox"} == ESCALATION_ROLES
    assert not any(storage_role(n).required for n in ESCALATION_ROLES)


def test_a_store_that_lacks_an_optional_role_says_so(memory: Store) -> None:
    with pytest.raises(UnsupportedRole) as info:
        role_of(memory, "test_notes")
    message = str(info.value)
    assert "MemoryStore at memory://" in message  # the store
    assert "'test_notes'" in message  # the role
    assert (
        "['calendars', 'firings', 'ledger', 'outbox', 'policies', 'rules', 'tickets']" in message
    )  # what it offers
    assert isinstance(info.value, StorageError)
    assert isinstance(info.value, CsmError)
    assert csmcore.UnsupportedRole is UnsupportedRole


def test_a_store_listing_a_role_it_has_no_attribute_for_says_so() -> None:
    """An adapter bug: ``roles`` lists the role, but the store has nothing by that name."""

    class Forgetful(MemoryStore):
        roles: ClassVar[frozenset[str]] = BUILTIN_ROLES | {"test_notes"}

    store = Forgetful()
    with pytest.raises(UnsupportedRole) as info:
        role_of(store, "test_notes")
    message = str(info.value)
    assert "Forgetful at memory://" in message
    assert "'test_notes'" in message
    assert "lists the role" in message
    assert "no attribute" in message


def test_a_store_that_offers_an_optional_role_gives_it() -> None:
    store = NotingStore()
    notes = role_of(store, "test_notes")
    assert isinstance(notes, NoteLog)
    assert notes.append("hello") == 1
    assert store.role("test_notes").notes() == ["hello"]
    assert store.role("tickets") is store.tickets


def test_a_store_written_before_roles_keeps_working() -> None:
    store = TodaysStore()
    assert isinstance(store, Store)
    assert offered_roles(store) == BUILTIN_ROLES
    assert role_of(store, "policies") is store.policies
    with pytest.raises(UnsupportedRole, match="TodaysStore at today://"):
        role_of(store, "test_notes")
    store.close()


def test_unknown_role_names_are_refused(memory: Store) -> None:
    with pytest.raises(ValidationError, match="'nope' is not a declared storage role"):
        role_of(memory, "nope")


def test_a_role_is_declared_once() -> None:
    assert declare_role(StorageRole(name="test_notes", protocol=NoteLog)) == NOTES
    with pytest.raises(ValidationError, match="already declared"):
        declare_role(StorageRole(name="test_notes", protocol=NoteLog, required=True))
    with pytest.raises(ValidationError, match="identifier"):
        declare_role(StorageRole(name="not a name", protocol=NoteLog))


def test_wrong_types_are_refused_with_the_role_the_type_and_what_is_accepted(
    memory: Store,
) -> None:
    with pytest.raises(ValidationError) as info:
        memory.policies.put("x", BusinessCalendar.always(), expected_version=0)  # type: ignore[arg-type]
    assert str(info.value).startswith(
        "the policies role holds csmcore.sla.SlaPolicy values; value=BusinessCalendar(timezone="
    )
    assert str(info.value).endswith("is a csmcore.calendars.BusinessCalendar")
    with pytest.raises(ValidationError, match=r"the calendars role holds .*SlaPolicy"):
        memory.calendars.put("x", make_policy(), expected_version=0)  # type: ignore[arg-type]
    assert memory.policies.keys() == memory.calendars.keys() == []
    assert memory.rules.put("r", make_policy(), expected_version=0).version == 1
