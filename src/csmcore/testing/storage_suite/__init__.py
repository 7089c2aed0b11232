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
- ``"crash"``: a writer process killed (SIGKILL) while it holds the adapter's lock, inside a
  unit of work or in the middle of ``add_many``, blocks the other writers for at most
  ``crash_recovery_seconds`` (10) and leaves every committed write whole and none of its
  uncommitted ones (:class:`CrashTests`, which needs ``processes`` too).

Some checks need to reach the backend behind the adapter's back: to change the schema version
it recorded, to break it, or to count what a query read. The factory returned by
``store_factory`` offers that by also having the methods of a hook protocol; a store without
one says why in ``opt_out`` under the hook's capability name:

- ``"schema"``: :class:`SchemaAccess` (schema version recorded, newer or missing refused);
- ``"migrations"``: :class:`OldSchemas` (older schemas migrate forward when opened);
- ``"faults"``: :class:`BackendFaults` (driver errors become ``StorageError``);
- ``"ledger faults"``: :class:`LedgerFaults` (the backend refusing one ledger entry: the write
  raises ``StorageError`` and leaves nothing half written, no idempotency key used; checked by
  :class:`LedgerTests` and :class:`LedgerUnitOfWorkTests`);
- ``"pushdown"``: :class:`PushdownProbe` (queries select in the backend where it says so).

A hook that is neither given nor opted out of FAILS its checks, with a message naming the hook
to provide and the ``opt_out`` key to declare instead: a store never passes a check silently.
An ``opt_out`` key that names no capability, or a reason left empty, fails every test.

Class attributes tune or extend some checks: ``opener`` (``"module:function"``, the opener
writer processes use when ``open_store`` cannot find the adapter there), ``pushed_down``
(conditions the store promises to select in its backend), ``racers`` / ``race_rounds`` /
``race_reads`` / ``writers`` (how hard the races run), ``escalation_racers`` /
``escalation_race_rounds`` (the races of :class:`FiringTests` and :class:`OutboxTests`),
``crash_recovery_seconds`` (how long a
killed writer's lock may block the others), ``agreement_examples`` / ``agreement_steps`` (the
state machine), ``fuzz_examples`` (how many malformed calls each fuzz check draws).

The suite is a set of test class groups, one per storage role or concern, so an adapter runs
exactly what it implements. :class:`StorageSuite` is all of them; :data:`GROUPS` maps each
group's name to its classes:

- ``"roles"``: :class:`RoleTests` (the store offers every required role, each satisfying its
  protocol, and refuses the others with :class:`~csmcore.errors.UnsupportedRole`);
- ``"tickets"``: :class:`TicketTests`, :class:`QueryTests` (conditions, pages, push-down
  through :class:`PushdownProbe`), :class:`ResultTests` (every matching ticket once, in id
  order, in full batches, also inside a unit of work; and ``stream_by_requester`` where the
  role offers the optional :class:`~csmcore.storage.TicketsByRequester`, skipped saying so
  where it does not), :class:`TextTests` (odd text, longest and refused ids);
- ``"messages"``: :class:`MessageTests` (the shared errors carry the messages of
  :mod:`csmcore.storage.kit`);
- ``"documents"``: :class:`VersionedTests` (versions, keys, text in documents; and
  ``latest_versions`` where the role offers the optional :class:`~csmcore.storage.LatestVersions`,
  skipped saying so where it does not) and
  :class:`DocumentRoleTests` (each document role holds its own type; ``document_roles`` names
  the roles to check);
- ``"units of work"``: :class:`UnitOfWorkTests`;
- ``"durability"``: :class:`DurabilityTests`;
- ``"schema"``: :class:`SchemaTests` (schema versions and migrations);
- ``"faults"``: :class:`FaultTests`;
- ``"races"``: :class:`ConcurrencyTests` (threads and processes);
- ``"crash"``: :class:`CrashTests` (writer processes killed while holding the lock);
- ``"agreement"``: :class:`AgreementTests` (a state machine against the memory reference);
- ``"ledger"``: :class:`LedgerTests`, for a store offering the optional ``ledger`` role (entries
  kept exactly, idempotent writes, atomic transfers, no overdraw between threads, connections
  and processes, and a Hypothesis state machine proving conservation, balances equal to the
  replay of the entries at any instant, retries changing nothing and refunds restoring the same
  lots; with :class:`LedgerFaults`, a backend refusing one entry of a write leaves nothing half
  written). It is not part of :class:`StorageSuite` (the role is optional): add it yourself;
- ``"ledger in units of work"``: :class:`LedgerUnitOfWorkTests`, for a store that also offers
  the ``ledger`` role inside its units of work (entries of a rolled-back unit of work leave
  nothing, committed ones are kept and seen by other handles, idempotency keys hold across
  both paths, concurrent units of work never overdraw); not part of :class:`StorageSuite`;
- ``"firings"`` and ``"outbox"``: :class:`FiringTests` and :class:`OutboxTests`, for a store
  offering those optional roles (see below); not part of :class:`StorageSuite` either.
- ``"fuzz"``: :class:`StoreFuzzTests` (malformed input to the tickets and document roles
  answered with a ``CsmError`` within the hang detector's limit, nothing stored changed by a
  refused call, durations stored exactly or refused before anything is written; see
  :mod:`csmcore.testing.fuzz` and ``fuzz_examples``).

Compose the groups of the roles your store offers (each class brings the shared fixtures)::

    class TestMyStore(RoleTests, TicketTests, QueryTests, VersionedTests,
                      DocumentRoleTests, UnitOfWorkTests):
        @pytest.fixture
        def store_factory(self, tmp_path): ...

A store that offers an optional role (declared in :mod:`csmcore.storage.roles`) adds the group
that ships with that role (:data:`OPTIONAL_GROUPS`): :class:`LedgerTests` for ``ledger`` (and
:class:`LedgerUnitOfWorkTests` when its units of work offer it too), :class:`FiringTests` for
``firings`` (escalation firings recorded once, the per-ticket schedule) and
:class:`OutboxTests` for ``outbox`` (idempotent puts, due order, optimistic claims with one
winner among concurrent dispatchers, retries and dead letters; and ``due_after`` where the
role offers the optional :class:`~csmcore.storage.OutboxPaging`, skipped saying so where it
does not). ``FiringTests`` and ``OutboxTests`` also write through a unit of work, so the
store's units of work must offer those roles too (listed in their own ``roles``). Nothing
checks that a store runs the groups of the roles it offers: add them yourself::

    class TestMyStore(StorageSuite, LedgerTests, LedgerUnitOfWorkTests, FiringTests, OutboxTests):
        ...

The data comes from :mod:`csmcore.testing.builders`.
"""

from __future__ import annotations

from csmcore.testing.builders import make_ticket
from csmcore.testing.storage_suite._agreement import AgreementTests
from csmcore.testing.storage_suite._base import (
    CAPABILITIES,
    HUGE_NUMBERS,
    ODD_FIELD_VALUES,
    BackendFaults,
    LedgerFaults,
    OldSchemas,
    PushdownProbe,
    SchemaAccess,
    StoreFactory,
    StoreFixtures,
)
from csmcore.testing.storage_suite._contract import RESULT_CONDITIONS, MessageTests, ResultTests
from csmcore.testing.storage_suite._documents import (
    DOCUMENT_TEXTS,
    JOINED_SURROGATES,
    DocumentRoleTests,
    VersionedTests,
)
from csmcore.testing.storage_suite._escalation import FiringTests, OutboxTests
from csmcore.testing.storage_suite._fuzz import StoreFuzzTests
from csmcore.testing.storage_suite._ledger import LedgerTests
from csmcore.testing.storage_suite._ledger_uow import LedgerUnitOfWorkTests
from csmcore.testing.storage_suite._races import ConcurrencyTests, CrashTests
from csmcore.testing.storage_suite._roles import RoleTests
from csmcore.testing.storage_suite._schema import FaultTests, SchemaTests
from csmcore.testing.storage_suite._text import (
    LONG_TEXTS,
    LONGEST_ID_CHARACTERS,
    ODD_TEXTS,
    REFUSED_IDS,
    TextTests,
)
from csmcore.testing.storage_suite._tickets import (
    QueryTests,
    TicketTests,
    query_conditions,
    query_tickets,
)
from csmcore.testing.storage_suite._units import DurabilityTests, UnitOfWorkTests

__all__ = [
    "CAPABILITIES",
    "DOCUMENT_TEXTS",
    "GROUPS",
    "HUGE_NUMBERS",
    "JOINED_SURROGATES",
    "LONGEST_ID_CHARACTERS",
    "LONG_TEXTS",
    "ODD_FIELD_VALUES",
    "ODD_TEXTS",
    "OPTIONAL_GROUPS",
    "REFUSED_IDS",
    "RESULT_CONDITIONS",
    "AgreementTests",
    "BackendFaults",
    "ConcurrencyTests",
    "CrashTests",
    "DocumentRoleTests",
    "DurabilityTests",
    "FaultTests",
    "FiringTests",
    "LedgerFaults",
    "LedgerTests",
    "LedgerUnitOfWorkTests",
    "MessageTests",
    "OldSchemas",
    "OutboxTests",
    "PushdownProbe",
    "QueryTests",
    "ResultTests",
    "RoleTests",
    "SchemaAccess",
    "SchemaTests",
    "StorageSuite",
    "StoreFactory",
    "StoreFixtures",
    "StoreFuzzTests",
    "TextTests",
    "TicketTests",
    "UnitOfWorkTests",
    "VersionedTests",
    "make_ticket",
    "query_conditions",
    "query_tickets",
]

GROUPS: dict[str, tuple[type[StoreFixtures], ...]] = {
    "roles": (RoleTests,),
    "tickets": (TicketTests, QueryTests, ResultTests, TextTests),
    "messages": (MessageTests,),
    "documents": (VersionedTests, DocumentRoleTests),
    "units of work": (UnitOfWorkTests,),
    "durability": (DurabilityTests,),
    "schema": (SchemaTests,),
    "faults": (FaultTests,),
    "races": (ConcurrencyTests,),
    "crash": (CrashTests,),
    "agreement": (AgreementTests,),
    "ledger": (LedgerTests,),
    "ledger in units of work": (LedgerUnitOfWorkTests,),
    "firings": (FiringTests,),
    "outbox": (OutboxTests,),
    "fuzz": (StoreFuzzTests,),
}
"""The suite's test class groups by name; :class:`StorageSuite` inherits every class here but
those of optional roles (:data:`OPTIONAL_GROUPS`)."""

OPTIONAL_GROUPS: dict[str, tuple[type[StoreFixtures], ...]] = {
    name: GROUPS[name] for name in ("ledger", "firings", "outbox")
}
"""The groups of the optional roles, by role name: a store that offers the role adds its
group to its test class (they are not part of :class:`StorageSuite`). A store whose units of
work offer the ``ledger`` role too adds ``GROUPS["ledger in units of work"]``."""


class StorageSuite(
    RoleTests,
    TicketTests,
    QueryTests,
    ResultTests,
    TextTests,
    MessageTests,
    VersionedTests,
    DocumentRoleTests,
    UnitOfWorkTests,
    DurabilityTests,
    SchemaTests,
    FaultTests,
    ConcurrencyTests,
    CrashTests,
    AgreementTests,
    StoreFuzzTests,
):
    """The whole conformance suite. Subclass it and override ``store_factory``."""
