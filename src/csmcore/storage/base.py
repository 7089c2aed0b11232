"""Base classes for storage adapters: the public methods check their arguments once, here, and
call the primitives an adapter implements.

Subclass :class:`TicketRepositoryBase` for the ``tickets`` role and
:class:`DocumentRepositoryBase` for each document role (``calendars``, ``policies``,
``rules``). The public methods (``add``, ``get``, ``put`` ...) refuse bad arguments with the
messages every built-in store gives (through :mod:`csmcore.storage.kit`), refuse a document of
the wrong type for its role (:meth:`csmcore.storage.roles.StorageRole.check_value`), and only
then call the primitive (``_add``, ``_get``, ``_put`` ...), which receives checked arguments:
a ticket id or key every store can keep, a whole version, a tuple of events, a condition.
The primitives raise what the protocol documents (``NotFound``, ``ConcurrencyError``,
``InvalidTransition``); any other exception a primitive raises goes through the role's
``translate_error`` (by default, that of the store the role belongs to:
:meth:`StoreBase.translate_error`), the one place where an adapter turns its driver's errors
into ``StorageError`` or ``ValidationError``. The public method raises the translation with the
driver error as ``__cause__``, or the original exception when ``translate_error`` returns None
(an error that is not the backend's).

The memory, SQLite and PostgreSQL stores are built on these classes.

>>> from csmcore.storage import open_store
>>> store = open_store("memory://")
>>> isinstance(store.tickets, TicketRepositoryBase)
True
>>> isinstance(store.policies, DocumentRepositoryBase)
True
>>> store.tickets.get("")
Traceback (most recent call last):
...
csmcore.errors.ValidationError: ticket_id='' is not a non-empty string
>>> store.close()
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from csmcore._boundary import exempt, guard_class, guard_iter
from csmcore.conditions import Condition
from csmcore.errors import CsmError, StorageError
from csmcore.storage import kit
from csmcore.storage.protocols import Versioned
from csmcore.storage.roles import BUILTIN_ROLES, StorageRole, role_of
from csmcore.tickets import Ticket, TicketEvent

__all__ = ["DocumentRepositoryBase", "StoreBase", "TicketRepositoryBase"]

T = TypeVar("T")
R = TypeVar("R")


class _Translating:
    """Runs primitives and translates what they raise (see the module documentation)."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # every role class, the adapters' too, runs behind the public boundary: what its
        # public methods raise below reaches callers as a CsmError (StorageError by default)
        super().__init_subclass__(**kwargs)
        guard_class(cls, fallback=StorageError)

    @exempt("a hook that returns an error for the role's own use; it raises nothing")
    def translate_error(self, err: BaseException) -> CsmError | None:
        """The :class:`~csmcore.errors.CsmError` that ``err``, raised by a primitive, stands
        for, or None to let ``err`` through unchanged. By default the ``translate_error`` of
        the store in the role's ``_store`` attribute (the convention of the built-in stores),
        else None. Override it to translate in the role itself."""
        store = getattr(self, "_store", None)
        translate = getattr(store, "translate_error", None)
        return None if translate is None else translate(err)

    def _call(self, primitive: Callable[..., R], *args: Any) -> R:
        try:
            return primitive(*args)
        except CsmError:
            raise
        except Exception as err:
            translated = self.translate_error(err)
            if translated is None:
                raise
            raise translated from err

    def _translated(self, batches: Iterator[list[Ticket]]) -> Iterator[list[Ticket]]:
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except CsmError:
                raise
            except Exception as err:
                translated = self.translate_error(err)
                if translated is None:
                    raise
                raise translated from err
            yield batch


class TicketRepositoryBase(_Translating, abc.ABC):
    """The ``tickets`` role (:class:`~csmcore.storage.protocols.TicketRepository`): checks
    arguments, then calls the primitives ``_add_many``, ``_get``, ``_append``, ``_find``,
    ``_stream`` and ``_count`` (and ``_add``, which defaults to ``_add_many``), translating
    what they raise through :meth:`translate_error`."""

    __slots__ = ()

    def add(self, ticket: Ticket) -> Ticket:
        """See :meth:`csmcore.storage.protocols.TicketRepository.add`."""
        return self._call(self._add, kit.check_ticket(ticket))

    def add_many(self, tickets: Iterable[Ticket]) -> int:
        """See :meth:`csmcore.storage.protocols.TicketRepository.add_many`."""
        return self._call(self._add_many, [kit.check_ticket(t) for t in tickets])

    def get(self, ticket_id: str) -> Ticket:
        """See :meth:`csmcore.storage.protocols.TicketRepository.get`."""
        return self._call(self._get, kit.check_id(ticket_id, "ticket_id"))

    def append(
        self, ticket_id: str, events: Sequence[TicketEvent], *, expected_version: int
    ) -> Ticket:
        """See :meth:`csmcore.storage.protocols.TicketRepository.append`."""
        kit.check_id(ticket_id, "ticket_id")
        new_events = kit.check_events(events)
        kit.check_version(expected_version)
        return self._call(self._append, ticket_id, new_events, expected_version)

    def find(self, condition: Condition, *, limit: int | None = None) -> list[Ticket]:
        """See :meth:`csmcore.storage.protocols.TicketRepository.find`."""
        kit.check_condition(condition)
        limit = kit.check_limit(limit)
        if limit == 0:
            return []
        return self._call(self._find, condition, limit)

    def stream(self, condition: Condition, *, batch_size: int = 500) -> Iterator[list[Ticket]]:
        """See :meth:`csmcore.storage.protocols.TicketRepository.stream`. The arguments are
        checked at the call; ``_stream`` may be a generator."""
        kit.check_positive(batch_size, "batch_size")
        kit.check_condition(condition)
        return guard_iter(
            self._translated(iter(self._call(self._stream, condition, batch_size))),
            f"{type(self).__name__}.stream",
            fallback=StorageError,
        )

    def count(self, condition: Condition) -> int:
        """See :meth:`csmcore.storage.protocols.TicketRepository.count`."""
        return self._call(self._count, kit.check_condition(condition))

    # --- primitives ------------------------------------------------------------------------

    def _add(self, ticket: Ticket) -> Ticket:
        """Store one new, checked ticket and return it (by default through ``_add_many``)."""
        self._add_many([ticket])
        return ticket

    @abc.abstractmethod
    def _add_many(self, tickets: list[Ticket]) -> int:
        """Store checked new tickets, all or nothing, and return how many."""

    @abc.abstractmethod
    def _get(self, ticket_id: str) -> Ticket:
        """The ticket ``ticket_id`` (a checked id), or NotFound."""

    @abc.abstractmethod
    def _append(
        self, ticket_id: str, events: tuple[TicketEvent, ...], expected_version: int
    ) -> Ticket:
        """Append checked, non-empty ``events`` at ``expected_version`` (a whole number)."""

    @abc.abstractmethod
    def _find(self, condition: Condition, limit: int | None) -> list[Ticket]:
        """Matching tickets in id order; ``limit`` is None or at least 1."""

    @abc.abstractmethod
    def _stream(self, condition: Condition, batch_size: int) -> Iterator[list[Ticket]]:
        """Matching tickets in id order, in non-empty lists of at most ``batch_size``."""

    @abc.abstractmethod
    def _count(self, condition: Condition) -> int:
        """How many tickets match."""


class DocumentRepositoryBase(_Translating, abc.ABC, Generic[T]):
    """A document role (:class:`~csmcore.storage.protocols.VersionedRepository`): checks the
    key, the versions and the value's type for :attr:`role`, then calls the primitives
    ``_put``, ``_get``, ``_history`` and ``_keys``, translating what they raise through
    :meth:`translate_error`.

    Set ``role`` (a :class:`~csmcore.storage.roles.StorageRole`) in the subclass or the
    instance, for example ``self.role = storage_role("policies")``.
    """

    __slots__ = ()

    role: StorageRole
    """The document role this repository plays; decides which values ``put`` accepts."""

    def put(self, key: str, value: T, *, expected_version: int) -> Versioned[T]:
        """See :meth:`csmcore.storage.protocols.VersionedRepository.put`."""
        kit.check_id(key, "key")
        kit.check_version(expected_version)
        self.role.check_value(value)
        return self._call(self._put, key, value, expected_version)

    def get(self, key: str, *, version: int | None = None) -> Versioned[T]:
        """See :meth:`csmcore.storage.protocols.VersionedRepository.get`."""
        kit.check_id(key, "key")
        if version is not None:
            kit.check_positive(version, "version")
        return self._call(self._get, key, version)

    def history(self, key: str) -> list[Versioned[T]]:
        """See :meth:`csmcore.storage.protocols.VersionedRepository.history`."""
        return self._call(self._history, kit.check_id(key, "key"))

    def keys(self) -> list[str]:
        """See :meth:`csmcore.storage.protocols.VersionedRepository.keys`."""
        return self._call(self._keys)

    # --- primitives ------------------------------------------------------------------------

    @abc.abstractmethod
    def _put(self, key: str, value: T, expected_version: int) -> Versioned[T]:
        """Store ``value`` (of the role's type) as version ``expected_version + 1`` of
        ``key``; ConcurrencyError (nothing written) when the latest version differs."""

    @abc.abstractmethod
    def _get(self, key: str, version: int | None) -> Versioned[T]:
        """The latest (``version`` None) or the given version (>= 1) of ``key``, or
        NotFound."""

    @abc.abstractmethod
    def _history(self, key: str) -> list[Versioned[T]]:
        """Every version of ``key``, oldest first."""

    @abc.abstractmethod
    def _keys(self) -> list[str]:
        """Every key with at least one version, sorted."""


@guard_class(fallback=StorageError)
class StoreBase:
    """What a store built on these classes shares: the roles it offers and the translation of
    its backend's errors.

    ``roles`` lists the names of the roles the store offers (the built-in roles by default);
    add the name of an optional role, and an attribute of that name, to offer it.
    """

    roles: ClassVar[frozenset[str]] = BUILTIN_ROLES
    """The names of the roles this store offers (see :mod:`csmcore.storage.roles`)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # every store class, the adapters' too, runs behind the public boundary (see
        # csmcore._boundary): a failure below reaches callers as a CsmError, StorageError for
        # what is neither a wrong type nor a wrong value
        super().__init_subclass__(**kwargs)
        guard_class(cls, fallback=StorageError)

    def role(self, name: str) -> Any:
        """The role ``name`` of this store; :class:`~csmcore.errors.UnsupportedRole` when the
        store does not offer it (see :func:`csmcore.storage.roles.role_of`)."""
        return role_of(self, name)

    @exempt("a hook that returns an error for the roles' use; it raises nothing")
    def translate_error(self, err: BaseException) -> CsmError | None:
        """The :class:`~csmcore.errors.CsmError` a backend error ``err`` stands for (raised
        with ``err`` as ``__cause__``), or None for an error that is not the backend's. The
        role base classes call it for whatever a primitive raises that is not a ``CsmError``.
        The default translates nothing; the SQL stores translate their driver's errors here."""
        return None
