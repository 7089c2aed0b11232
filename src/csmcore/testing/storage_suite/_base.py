"""The fixtures, hooks and capability rules every group of the conformance suite shares."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar, Protocol, runtime_checkable

import pytest
from hypothesis import HealthCheck, settings

from csmcore import conditions as cd
from csmcore.errors import CsmError, StorageError
from csmcore.storage import open_store
from csmcore.storage.protocols import Store

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
class LedgerFaults(Protocol):
    """Hook for the fault checks of :class:`LedgerTests` and :class:`LedgerUnitOfWorkTests`:
    make the backend refuse one ledger entry, so a write fails half way through."""

    def fail_ledger_entry(self, url: str, member_id: str, seq: int) -> None:
        """From now until :meth:`heal_ledger`, make the backend of the store at ``url`` (which
        stays open) fail, in the driver, whenever the store writes entry ``seq`` of member
        ``member_id`` (on the store or in a unit of work), e.g. with a trigger that raises;
        writing every other entry keeps working. Several calls add up."""
        ...

    def heal_ledger(self, url: str) -> None:
        """Undo every :meth:`fail_ledger_entry` of ``url``, changing nothing else."""
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


def property_settings(test: Callable[..., None]) -> Callable[..., None]:
    """Settings for the suite's property tests, on top of the active Hypothesis profile: fewer
    examples (each one writes to a real backend) and fixtures shared across examples."""
    current = settings.default
    examples = 30 if current is None else min(current.max_examples, 30)
    return settings(
        max_examples=examples,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        deadline=None,
    )(test)


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


def same_value(a: object, b: object) -> bool:
    """Equal, of the same type, and (for floats) with the same sign."""
    if type(a) is not type(b) or a != b:
        return False
    return not isinstance(a, float) or math.copysign(1.0, a) == math.copysign(1.0, b)  # type: ignore[arg-type]


HOOK_CAPABILITIES: dict[Any, str] = {
    SchemaAccess: "schema",
    OldSchemas: "migrations",
    BackendFaults: "faults",
    LedgerFaults: "ledger faults",
    PushdownProbe: "pushdown",
}
"""The capability name under which a store opts out of each hook."""

CAPABILITIES = ("reopen", "processes", "crash", *HOOK_CAPABILITIES.values())
"""Every key ``opt_out`` accepts."""


def hook_members(protocol: Any) -> str:
    """The names a hook protocol asks for, for messages."""
    names = set(getattr(protocol, "__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
    return ", ".join(sorted(names))


class StoreFixtures:
    """The fixtures every suite class shares. Override :meth:`store_factory`."""

    opt_out: ClassVar[Mapping[str, str]] = {}
    """Capability name (``"reopen"``, ``"processes"``, ``"crash"``, ``"schema"``,
    ``"migrations"``, ``"faults"``, ``"ledger faults"``, ``"pushdown"``) to the reason this
    store lacks it (a non-empty sentence)."""

    opener: ClassVar[str | None] = None
    """The opener of the store's URL scheme as ``"module:function"``, when child processes
    cannot find it through :func:`~csmcore.storage.open_store` (an adapter registered at run
    time, e.g. in a test module): the ``processes`` and ``crash`` checks' writer processes
    import it and call it with the URL. None: they call ``open_store(url)``."""

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
        capability = HOOK_CAPABILITIES[protocol]
        self.require(capability)
        if not isinstance(factory, protocol):
            pytest.fail(
                f"{type(self).__name__}'s store_factory has no {protocol.__name__} hook: give "
                f"the object store_factory returns the members of "
                f"csmcore.testing.storage_suite.{protocol.__name__} ({hook_members(protocol)}), "
                f"or declare opt_out = {{{capability!r}: '<why the store cannot>'}}",
                pytrace=False,
            )
        return factory


def assert_driver_cause(error: BaseException) -> None:
    """Fail unless ``error`` is caused by a driver (or encoder) error, not by a CsmError."""
    cause = error.__cause__
    advice = "raise the CsmError from the driver's (or the encoder's) error"
    assert cause is not None, f"{error!r} has no __cause__: {advice}"
    assert not isinstance(cause, CsmError), f"{error!r} is caused by {cause!r}: {advice}"


class _Rollback(Exception):
    """Raised inside a unit of work to roll it back."""


def check_ended_units_refuse(
    store: Store,
    role: Callable[[Any], Any],
    calls: Callable[[Any], Mapping[str, Callable[[], object]]],
) -> None:
    """Every call ``calls(role(uow))`` names, on the role of a unit of work that has ended
    (committed, or rolled back), raises StorageError saying the unit of work ended, also while
    a newer unit of work is open in the same thread (for an optional role, as
    ``UnitOfWorkTests`` checks for the required ones)."""
    with store.unit_of_work() as uow:
        committed = role(uow)
    try:
        with store.unit_of_work() as uow:
            rolled_back = role(uow)
            raise _Rollback
    except _Rollback:
        pass
    accepted: dict[str, list[str]] = {}
    for label, ended in (("committed", committed), ("rolled back", rolled_back)):
        for newer in (False, True):
            where = f"{label}{' (a newer one open)' if newer else ''}"
            with store.unit_of_work() if newer else contextlib.nullcontext():
                for name, call in calls(ended).items():
                    try:
                        call()
                    except StorageError as err:
                        if "ended" not in str(err):
                            accepted.setdefault(name, []).append(f"{where}: {err}")
                    except Exception as err:
                        accepted.setdefault(name, []).append(f"{where}: {err!r}")
                    else:
                        accepted.setdefault(name, []).append(f"{where}: no error")
    assert accepted == {}, (
        "every method of a role of a unit of work that has ended must raise StorageError('this "
        "unit of work has ended; open a new one') and write nothing (a write there would be "
        f"lost silently); these did not, by method: {accepted}"
    )
