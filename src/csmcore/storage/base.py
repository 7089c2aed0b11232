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
import builtins
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar, Generic, TypeVar

import attrs

from csmcore._boundary import exempt, guard_class, guard_iter
from csmcore._time import in_range_us, require_aware
from csmcore._values import check_iterable
from csmcore.conditions import Condition
from csmcore.errors import CsmError, StorageError, ValidationError
from csmcore.escalation import Firing, FiringKey
from csmcore.storage import kit
from csmcore.storage.protocols import (
    FiringRecord,
    OutboxMessage,
    OutboxState,
    TicketPlan,
    Versioned,
)
from csmcore.storage.roles import BUILTIN_ROLES, StorageRole, role_of
from csmcore.tickets import Ticket, TicketEvent

__all__ = [
    "DocumentRepositoryBase",
    "FiringRepositoryBase",
    "OutboxPagingBase",
    "OutboxRepositoryBase",
    "StoreBase",
    "TicketRepositoryBase",
    "updated_message",
]

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
    what they raise through :meth:`translate_error`. It also offers the optional
    :class:`~csmcore.storage.protocols.TicketsByRequester` through ``_stream_by_requester``,
    which defaults to ``_stream`` filtered in Python."""

    __slots__ = ()

    def add(self, ticket: Ticket) -> Ticket:
        """See :meth:`csmcore.storage.protocols.TicketRepository.add`."""
        return self._call(self._add, kit.check_ticket(ticket))

    def add_many(self, tickets: Iterable[Ticket]) -> int:
        """See :meth:`csmcore.storage.protocols.TicketRepository.add_many`."""
        check_iterable(tickets, "tickets", "an iterable of Ticket")
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

    def stream_by_requester(
        self, requester: str, condition: Condition, *, batch_size: int = 500
    ) -> Iterator[list[Ticket]]:
        """See :meth:`csmcore.storage.protocols.TicketsByRequester.stream_by_requester` (an
        optional protocol every role built on this class offers). The arguments are checked
        at the call; ``_stream_by_requester`` may be a generator."""
        kit.check_requester(requester)
        kit.check_positive(batch_size, "batch_size")
        kit.check_condition(condition)
        return guard_iter(
            self._translated(
                iter(self._call(self._stream_by_requester, requester, condition, batch_size))
            ),
            f"{type(self).__name__}.stream_by_requester",
            fallback=StorageError,
        )

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

    def _stream_by_requester(
        self, requester: str, condition: Condition, batch_size: int
    ) -> Iterator[list[Ticket]]:
        """The tickets ``_stream`` gives for ``condition`` of which ``requester`` was the
        requester at some instant, in id order, in non-empty lists of at most ``batch_size``.
        By default ``_stream`` filtered in Python (every matching ticket is read): override it
        to select in the backend."""
        batch: list[Ticket] = []
        for found in self._stream(condition, batch_size):
            for ticket in found:
                if requester in ticket.requesters:
                    batch.append(ticket)
                    if len(batch) == batch_size:
                        yield batch
                        batch = []
        if batch:
            yield batch


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

    def latest_versions(self) -> dict[str, int]:
        """See :meth:`csmcore.storage.protocols.LatestVersions.latest_versions`."""
        return self._call(self._latest_versions)

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

    def _latest_versions(self) -> dict[str, int]:
        """Every key with at least one version, sorted, and its latest version. This default
        reads :meth:`_keys` and the latest version of each; override it to read one list."""
        return {key: self._get(key, None).version for key in self._keys()}


def check_instant(value: object, argument: str) -> datetime:
    """An aware datetime in csmcore's range of instants, else ValidationError (or
    NaiveDatetimeError) naming ``argument``."""
    require_aware(value, argument)  # type: ignore[arg-type]
    assert isinstance(value, datetime)
    in_range_us(value, argument)
    return value


def _utc(value: object, argument: str) -> datetime:
    """:func:`check_instant`, then the same instant in UTC: the escalation roles hand their
    primitives UTC instants only, so every store gives them back in UTC."""
    checked = check_instant(value, argument)
    return checked if checked.tzinfo is timezone.utc else checked.astimezone(timezone.utc)


def _utc_message(message: OutboxMessage, index: int) -> OutboxMessage:
    """``message`` with its own instants in UTC (its request is kept as given)."""
    instants = (message.created_at, message.next_attempt_at, message.delivered_at)
    if all(t is None or t.tzinfo is timezone.utc for t in instants):
        return message
    delivered = message.delivered_at
    return attrs.evolve(
        message,
        created_at=_utc(message.created_at, f"messages[{index}].created_at"),
        next_attempt_at=_utc(message.next_attempt_at, f"messages[{index}].next_attempt_at"),
        delivered_at=None
        if delivered is None
        else _utc(delivered, f"messages[{index}].delivered_at"),
    )


class FiringRepositoryBase(_Translating, abc.ABC):
    """The ``firings`` role (:class:`~csmcore.storage.protocols.FiringRepository`): checks
    arguments, then calls the primitives ``_record``, ``_keys``, ``_list``, ``_plan``,
    ``_planned``, ``_due`` and ``_next_due``."""

    __slots__ = ()

    def record(self, firing: Firing, *, recorded_at: datetime) -> bool:
        """See :meth:`csmcore.storage.protocols.FiringRepository.record`."""
        if not isinstance(firing, Firing):
            raise ValidationError(
                f"firing={firing!r} is a {type(firing).__name__}; expected a Firing"
            )
        kit.check_id(firing.ticket_id, "firing.ticket_id")
        at = _utc(firing.at, "firing.at")
        if firing.at.tzinfo is not timezone.utc:
            firing = attrs.evolve(firing, at=at)
        record = FiringRecord(firing=firing, recorded_at=_utc(recorded_at, "recorded_at"))
        return self._call(self._record, record)

    def keys(self, ticket_id: str) -> frozenset[FiringKey]:
        """See :meth:`csmcore.storage.protocols.FiringRepository.keys`."""
        return self._call(self._keys, kit.check_id(ticket_id, "ticket_id"))

    def list(
        self, *, ticket_id: str | None = None, limit: int | None = None
    ) -> builtins.list[FiringRecord]:
        """See :meth:`csmcore.storage.protocols.FiringRepository.list`."""
        if ticket_id is not None:
            kit.check_id(ticket_id, "ticket_id")
        limit = kit.check_limit(limit)
        if limit == 0:
            return []
        return self._call(self._list, ticket_id, limit)

    def plan(self, ticket_id: str, *, version: int, next_due: datetime | None) -> None:
        """See :meth:`csmcore.storage.protocols.FiringRepository.plan`."""
        kit.check_id(ticket_id, "ticket_id")
        kit.check_version(version, "version")
        if next_due is not None:
            next_due = _utc(next_due, "next_due")
        self._call(self._plan, TicketPlan(ticket_id=ticket_id, version=version, next_due=next_due))

    def planned(self, ticket_id: str) -> TicketPlan | None:
        """See :meth:`csmcore.storage.protocols.FiringRepository.planned`."""
        return self._call(self._planned, kit.check_id(ticket_id, "ticket_id"))

    def due(self, at: datetime, *, limit: int | None = None) -> builtins.list[TicketPlan]:
        """See :meth:`csmcore.storage.protocols.FiringRepository.due`."""
        at = _utc(at, "at")
        limit = kit.check_limit(limit)
        if limit == 0:
            return []
        return self._call(self._due, at, limit)

    def next_due(self) -> datetime | None:
        """See :meth:`csmcore.storage.protocols.FiringRepository.next_due`."""
        return self._call(self._next_due)

    @abc.abstractmethod
    def _record(self, record: FiringRecord) -> bool:
        """Insert ``record`` unless its key exists; True when inserted."""

    @abc.abstractmethod
    def _keys(self, ticket_id: str) -> frozenset[FiringKey]:
        """The recorded keys of a ticket."""

    @abc.abstractmethod
    def _list(self, ticket_id: str | None, limit: int | None) -> builtins.list[FiringRecord]:
        """Records by firing instant, then :attr:`~csmcore.escalation.Firing.key_text` (the
        key as compact JSON, compared as a string: level 10 before level 9)."""

    @abc.abstractmethod
    def _plan(self, plan: TicketPlan) -> None:
        """Insert the schedule of ``plan.ticket_id``, or replace it when the stored one was
        planned from the same or an older version (atomically: a newer one is kept)."""

    @abc.abstractmethod
    def _planned(self, ticket_id: str) -> TicketPlan | None:
        """The schedule of a ticket."""

    @abc.abstractmethod
    def _due(self, at: datetime, limit: int | None) -> builtins.list[TicketPlan]:
        """Schedules with ``next_due <= at`` (``at`` in UTC) by (next_due, ticket_id)."""

    @abc.abstractmethod
    def _next_due(self) -> datetime | None:
        """The earliest next_due, in UTC."""


class OutboxRepositoryBase(_Translating, abc.ABC):
    """The ``outbox`` role (:class:`~csmcore.storage.protocols.OutboxRepository`): checks
    arguments, then calls the primitives ``_put``, ``_due``, ``_claim``, ``_update``,
    ``_get`` and ``_list``."""

    __slots__ = ()

    def put(self, messages: Sequence[OutboxMessage]) -> int:
        """See :meth:`csmcore.storage.protocols.OutboxRepository.put`."""
        if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
            raise ValidationError(f"messages={messages!r} is not a sequence of OutboxMessage")
        checked: dict[str, OutboxMessage] = {}
        for index, message in enumerate(messages):
            if not isinstance(message, OutboxMessage):
                raise ValidationError(
                    f"messages[{index}]={message!r} is a {type(message).__name__}; expected "
                    "an OutboxMessage"
                )
            kit.check_id(message.key, f"messages[{index}].key")
            kit.encode_document(message)  # refuses what a store could not keep
            checked.setdefault(message.key, _utc_message(message, index))
        if not checked:
            return 0
        return self._call(self._put, builtins.list(checked.values()))

    def due(self, at: datetime, *, limit: int = 100) -> builtins.list[OutboxMessage]:
        """See :meth:`csmcore.storage.protocols.OutboxRepository.due`."""
        at = _utc(at, "at")
        checked = kit.check_version(limit, "limit")  # a whole number >= 0, not None
        if checked == 0:
            return []
        return self._call(self._due, at, checked)

    def claim(self, key: str, *, attempts: int, until: datetime) -> bool:
        """See :meth:`csmcore.storage.protocols.OutboxRepository.claim`."""
        kit.check_id(key, "key")
        kit.check_version(attempts, "attempts")
        until = _utc(until, "until")
        return self._call(self._claim, key, attempts, until)

    def delivered(self, key: str, *, at: datetime) -> None:
        """See :meth:`csmcore.storage.protocols.OutboxRepository.delivered`."""
        kit.check_id(key, "key")
        at = _utc(at, "at")
        self._call(self._update, key, OutboxState.DELIVERED, at, at, None)

    def failed(self, key: str, *, at: datetime, error: str, retry_at: datetime | None) -> None:
        """See :meth:`csmcore.storage.protocols.OutboxRepository.failed`."""
        kit.check_id(key, "key")
        check_instant(at, "at")
        if not isinstance(error, str):
            raise ValidationError(f"error={error!r} is a {type(error).__name__}; expected text")
        if retry_at is None:
            self._call(self._update, key, OutboxState.DEAD, None, None, error)
        else:
            retry_at = _utc(retry_at, "retry_at")
            self._call(self._update, key, OutboxState.PENDING, retry_at, None, error)

    def get(self, key: str) -> OutboxMessage:
        """See :meth:`csmcore.storage.protocols.OutboxRepository.get`."""
        return self._call(self._get, kit.check_id(key, "key"))

    def list(
        self, *, state: OutboxState | None = None, limit: int | None = None
    ) -> builtins.list[OutboxMessage]:
        """See :meth:`csmcore.storage.protocols.OutboxRepository.list`."""
        if state is not None:
            try:
                state = OutboxState(state)
            except ValueError:
                raise ValidationError(
                    f"state={state!r} is not an outbox state; expected one of "
                    f"{[s.value for s in OutboxState]} or None"
                ) from None
        checked = kit.check_limit(limit)
        if checked == 0:
            return []
        return self._call(self._list, state, checked)

    @abc.abstractmethod
    def _put(self, messages: builtins.list[OutboxMessage]) -> int:
        """Insert the messages (distinct keys) whose key is absent; how many were new."""

    @abc.abstractmethod
    def _due(self, at: datetime, limit: int) -> builtins.list[OutboxMessage]:
        """PENDING messages due at ``at`` (in UTC) by (next_attempt_at, key)."""

    @abc.abstractmethod
    def _claim(self, key: str, attempts: int, until: datetime) -> bool:
        """The optimistic claim; NotFound for an unknown key."""

    @abc.abstractmethod
    def _update(
        self,
        key: str,
        state: OutboxState,
        next_attempt_at: datetime | None,
        delivered_at: datetime | None,
        error: str | None,
    ) -> None:
        """Set the state (and next_attempt_at unless None, delivered_at, last_error unless
        None); NotFound for an unknown key."""

    @abc.abstractmethod
    def _get(self, key: str) -> OutboxMessage:
        """The message, or NotFound."""

    @abc.abstractmethod
    def _list(self, state: OutboxState | None, limit: int | None) -> builtins.list[OutboxMessage]:
        """Messages by (created_at, key)."""


class OutboxPagingBase(OutboxRepositoryBase):
    """:class:`OutboxRepositoryBase` that also offers the optional
    :class:`~csmcore.storage.protocols.OutboxPaging` (``due_after``, a cursor through the due
    messages): implement the primitive ``_due_after`` as well. An adapter whose outbox is built
    on :class:`OutboxRepositoryBase` alone does not offer it, and the dispatcher pages with
    ``due`` as before."""

    __slots__ = ()

    def due_after(
        self, at: datetime, *, after: tuple[datetime, str], limit: int = 100
    ) -> builtins.list[OutboxMessage]:
        """See :meth:`csmcore.storage.protocols.OutboxPaging.due_after`."""
        at = _utc(at, "at")
        if not isinstance(after, tuple) or len(after) != 2:
            raise ValidationError(
                f"after={after!r} is not a (next_attempt_at, key) pair: a tuple of an aware "
                "datetime and a message key"
            )
        after_at = _utc(after[0], "after[0]")
        after_key = kit.check_id(after[1], "after[1]")
        checked = kit.check_version(limit, "limit")  # a whole number >= 0, not None
        if checked == 0:
            return []
        return self._call(self._due_after, at, after_at, after_key, checked)

    @abc.abstractmethod
    def _due_after(
        self, at: datetime, after_at: datetime, after_key: str, limit: int
    ) -> builtins.list[OutboxMessage]:
        """PENDING messages due at ``at`` with ``(next_attempt_at, key) > (after_at,
        after_key)``, by (next_attempt_at, key); ``at`` and ``after_at`` are in UTC."""


def updated_message(
    message: OutboxMessage,
    state: OutboxState,
    next_attempt_at: datetime | None,
    delivered_at: datetime | None,
    error: str | None,
) -> OutboxMessage:
    """``message`` after :meth:`OutboxRepositoryBase._update` (for stores keeping objects)."""
    import attrs

    changes: dict[str, Any] = {"state": state}
    if next_attempt_at is not None:
        changes["next_attempt_at"] = next_attempt_at
    if delivered_at is not None:
        changes["delivered_at"] = delivered_at
    if error is not None:
        changes["last_error"] = error
    return attrs.evolve(message, **changes)


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
