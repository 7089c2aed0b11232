"""Storage protocols: one :class:`typing.Protocol` per storage role.

An adapter is anything that satisfies :class:`Store`. Its roles are

- :class:`TicketRepository`: tickets with their full event history. Writes carry an expected
  version (the number of events the writer last saw); a stale one raises
  :class:`~csmcore.errors.ConcurrencyError`, so concurrent writers never lose an event.
- :class:`VersionedRepository`: versioned documents. Every ``put`` creates a new version; an old
  version is never overwritten and stays readable. Each document role is typed:
  :class:`CalendarRepository` holds business calendars, :class:`PolicyRepository` SLA policies
  and :class:`RuleRepository` escalation rules; a value of another type is refused with
  :class:`~csmcore.errors.ValidationError` before anything is written.
- :class:`UnitOfWork`: the same roles inside one transaction. Everything written through it becomes
  visible together when the ``with`` block ends normally; if the block raises, nothing is written.

The roles are declared in :mod:`csmcore.storage.roles`, which also says which roles a store
offers (roles added after this release are optional).

Every method documents what it raises. Errors of the backend driver (a locked file, a lost
connection, ...) are raised as :class:`~csmcore.errors.StorageError` with the driver error as
``__cause__``; a driver error caused by a value (text it cannot encode, a number out of range)
as :class:`~csmcore.errors.ValidationError`, again with the driver error as ``__cause__``.
Instants are stored in UTC and come back as aware datetimes.

Ticket ids and document keys must be text every store can keep: a non-empty string of at most
255 characters (:data:`csmcore.storage.kit.MAX_ID_LENGTH`, the domain's limit for ticket ids and
tags) without NUL (``"\\x00"``) or lone surrogates (U+D800..U+DFFF); anything else raises
:class:`~csmcore.errors.ValidationError` naming the argument, on every store alike, and writes
nothing. Whole numbers (versions, ``limit``, ``batch_size``) may be arbitrarily large, also
beyond what a backend's integers hold: an ``expected_version`` above the stored one raises
:class:`~csmcore.errors.ConcurrencyError`, a ``version`` above the latest
:class:`~csmcore.errors.NotFound`, and a ``limit`` or ``batch_size`` above the number of
matching tickets returns them all, never an ``OverflowError`` or a driver error.

Outside a unit of work, reads see committed states only. ``get`` returns one whole committed
state of a ticket; ``find``, ``stream`` and ``count`` read at most one page (500 tickets, or
``batch_size``) per snapshot, so every ticket they return is one committed state that matches
the condition, even while other writers append; successive pages may see successive states of
the store.
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Final, Generic, Protocol, TypeVar, runtime_checkable

import attrs

from csmcore._boundary import guard_class
from csmcore._time import require_aware
from csmcore._values import instance_of
from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Condition
from csmcore.errors import ValidationError
from csmcore.escalation import Firing, FiringKey, NotificationRequest
from csmcore.serialization import serializable
from csmcore.sla import SlaPolicy
from csmcore.tickets import Ticket, TicketEvent

__all__ = [
    "PLAN_BASIS_KEY",
    "CalendarRepository",
    "FiringRecord",
    "FiringRepository",
    "LatestVersions",
    "OutboxMessage",
    "OutboxPaging",
    "OutboxRepository",
    "OutboxState",
    "PlanBasis",
    "PolicyRepository",
    "Roles",
    "RuleRepository",
    "Store",
    "TicketPlan",
    "TicketRepository",
    "TicketsByRequester",
    "UnitOfWork",
    "Versioned",
    "VersionedRepository",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@guard_class
@attrs.frozen(kw_only=True)
class Versioned(Generic[T]):
    """One stored version of a versioned document.

    ``version`` counts from 1 and grows by one with every ``put`` of the same ``key``.
    """

    key: str
    version: int
    value: T


@runtime_checkable
class TicketRepository(Protocol):
    """Tickets with their event history.

    A ticket's ``version`` is the number of its events. Every ticket id is unique in a store.
    """

    def add(self, ticket: Ticket) -> Ticket:
        """Store a new ticket with all its events and return it.

        Raises :class:`~csmcore.errors.ConcurrencyError` if a ticket with the same id exists
        (someone else created it first), :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...

    def add_many(self, tickets: Iterable[Ticket]) -> int:
        """Store many new tickets at once (bulk load) and return how many were stored.

        All or nothing: if one id already exists (or repeats), raises
        :class:`~csmcore.errors.ConcurrencyError` naming that id
        (:func:`csmcore.storage.kit.ticket_exists`) and stores none of them. A store that
        locks rows takes them in id order, so two writers adding the same ids in different
        orders never deadlock: one waits for the other.
        Raises :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...

    def get(self, ticket_id: str) -> Ticket:
        """Return the ticket with its full history.

        Raises :class:`~csmcore.errors.NotFound` naming the id when there is no such ticket,
        :class:`~csmcore.errors.ValidationError` for an id that is not a non-empty string no
        store could keep (see the module documentation),
        :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...

    def append(
        self, ticket_id: str, events: Sequence[TicketEvent], *, expected_version: int
    ) -> Ticket:
        """Append ``events`` to the ticket and return the new ticket.

        ``expected_version`` is the version the caller last saw (``ticket.version``).
        Raises :class:`~csmcore.errors.NotFound` when there is no such ticket,
        :class:`~csmcore.errors.ConcurrencyError` when the stored version differs from
        ``expected_version`` (nothing is written), :class:`~csmcore.errors.InvalidTransition`
        when an event is not valid on the ticket (nothing is written), and
        :class:`~csmcore.errors.ValidationError` for an empty ``events``, a negative version
        or an id no store could keep, :class:`~csmcore.errors.StorageError` on a backend
        failure. A stale ``expected_version`` is reported as ConcurrencyError before anything
        else about the events, also when another writer commits at the same moment: an
        InvalidTransition always means the events cannot follow the version the caller named.
        """
        ...

    def find(self, condition: Condition, *, limit: int | None = None) -> list[Ticket]:
        """Return the tickets that match ``condition``, ordered by id, at most ``limit`` of them.

        Raises :class:`~csmcore.errors.ValidationError` for a negative ``limit`` or a
        ``condition`` that is not a :class:`~csmcore.conditions.Condition`,
        :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...

    def stream(self, condition: Condition, *, batch_size: int = 500) -> Iterator[list[Ticket]]:
        """Yield the tickets that match ``condition`` in id order, as non-empty lists.

        Each list holds at most ``batch_size`` tickets; memory use stays bounded by it.
        Raises :class:`~csmcore.errors.ValidationError` when ``batch_size < 1`` or
        ``condition`` is not a :class:`~csmcore.conditions.Condition` (at the call, not at the
        first batch), :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...

    def count(self, condition: Condition) -> int:
        """Return how many tickets match ``condition``.

        Raises :class:`~csmcore.errors.ValidationError` when ``condition`` is not a condition,
        :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...


@runtime_checkable
class VersionedRepository(Protocol[T]):
    """Documents (policies, calendars, rules) kept in every version they ever had."""

    def put(self, key: str, value: T, *, expected_version: int) -> Versioned[T]:
        """Store ``value`` as the next version of ``key`` and return it.

        ``expected_version`` is the latest version the caller saw (0 for a new key).
        Raises :class:`~csmcore.errors.ConcurrencyError` when the latest stored version differs
        (nothing is written), :class:`~csmcore.errors.ValidationError` for a key no store could
        keep, a negative version, a ``value`` of a type the role does not hold (the message
        names the role, the value's type and what the role accepts), or a ``value`` that cannot
        be serialised or would not come back unchanged (the message says why); nothing is
        written then either,
        :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...

    def get(self, key: str, *, version: int | None = None) -> Versioned[T]:
        """Return the latest version of ``key``, or the given ``version``.

        Raises :class:`~csmcore.errors.NotFound` naming the key (and version) when absent,
        :class:`~csmcore.errors.ValidationError` for a key no store could keep or a ``version``
        below 1,
        :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...

    def history(self, key: str) -> list[Versioned[T]]:
        """Return every version of ``key``, oldest first (an empty list for an unknown key).

        Raises :class:`~csmcore.errors.ValidationError` for a key no store could keep,
        :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...

    def keys(self) -> list[str]:
        """Return every key that has at least one version, sorted by code point (Python's
        ``str`` order).

        Raises :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...


@runtime_checkable
class LatestVersions(Protocol):
    """Optional, for a document role (:class:`VersionedRepository`) that lists the latest
    version of every key in one read.

    :class:`csmcore.services.EscalationEngine` with rules from the store reads the ``rules``
    role at every call (the rules, and the plan basis kept there): with
    :meth:`latest_versions` it reads one list and only the documents whose version changed
    since its last call (one read each), instead of :meth:`VersionedRepository.keys` and a
    read of every key. A role without it works as before. Roles built on
    :class:`csmcore.storage.base.DocumentRepositoryBase` offer it (reading ``keys`` and every
    key unless the adapter overrides ``_latest_versions``); the built-in stores read one
    list, in and out of units of work.
    """

    def latest_versions(self) -> dict[str, int]:
        """The latest version of every key that has one (what :meth:`VersionedRepository.get`
        gives as ``version`` for each of :meth:`VersionedRepository.keys`), keys sorted as
        ``keys`` sorts them (by code point), in a unit of work with its own puts.

        Raises :class:`~csmcore.errors.StorageError` on a backend failure.
        """
        ...


@runtime_checkable
class CalendarRepository(VersionedRepository[BusinessCalendar], Protocol):
    """The ``calendars`` role: :class:`~csmcore.calendars.BusinessCalendar` values, versioned.

    ``put`` refuses any other value with :class:`~csmcore.errors.ValidationError`.
    """


@runtime_checkable
class PolicyRepository(VersionedRepository[SlaPolicy], Protocol):
    """The ``policies`` role: :class:`~csmcore.sla.SlaPolicy` values, versioned.

    ``put`` refuses any other value with :class:`~csmcore.errors.ValidationError`.
    """


@runtime_checkable
class RuleRepository(VersionedRepository[Any], Protocol):
    """The ``rules`` role: escalation rules, versioned.

    It holds :class:`~csmcore.escalation.EscalationRule` values but accepts any csmcore type
    that has a registered serialization tag (:func:`csmcore.serialization.tag_of`), as it did
    before escalation rules had their own type; the escalation engine reads only the
    ``EscalationRule`` values there. ``put`` refuses other values with
    :class:`~csmcore.errors.ValidationError`.
    """


@runtime_checkable
class Roles(Protocol):
    """The required roles shared by a :class:`Store` and a :class:`UnitOfWork`.

    Optional roles (added after this release) are not part of this protocol: a store lists the
    roles it offers in a ``roles`` attribute (a set of role names) and callers reach an optional
    role with :func:`csmcore.storage.roles.role_of`, which raises
    :class:`~csmcore.errors.UnsupportedRole` when the store lacks it. A store without a
    ``roles`` attribute offers the required roles only.
    """

    @property
    def tickets(self) -> TicketRepository:
        """Tickets with their event history."""
        ...

    @property
    def calendars(self) -> CalendarRepository:
        """Business calendars (:class:`~csmcore.calendars.BusinessCalendar`), versioned."""
        ...

    @property
    def policies(self) -> PolicyRepository:
        """SLA policies (:class:`~csmcore.sla.SlaPolicy`), versioned."""
        ...

    @property
    def rules(self) -> RuleRepository:
        """Escalation rules, versioned (any csmcore type with a serialization tag, for now)."""
        ...


@runtime_checkable
class UnitOfWork(Roles, Protocol):
    """The roles of a store inside one transaction (see :meth:`Store.unit_of_work`)."""


@runtime_checkable
class Store(Roles, Protocol):
    """A storage backend: the roles, a unit of work, and ``close``.

    Each call on the store's own roles is its own transaction. Use one store object from many
    threads freely; open one store per process.
    """

    @property
    def url(self) -> str:
        """The URL that opens this store again with :func:`csmcore.storage.open_store`."""
        ...

    def unit_of_work(self) -> AbstractContextManager[UnitOfWork]:
        """Return a context manager whose roles write in one transaction.

        Leaving the ``with`` block normally commits everything; leaving it with an exception
        writes nothing and re-raises the exception. Other writers to the same ticket or key
        wait (or fail with :class:`~csmcore.errors.ConcurrencyError` on a stale version).
        Raises :class:`~csmcore.errors.StorageError` when a unit of work is already open on this
        store in the same thread, or when the commit fails.

        A conflict with a concurrent writer that the backend resolves by ending one transaction
        (a deadlock, a serialization failure) raises :class:`~csmcore.errors.ConcurrencyError`
        and aborts the whole unit of work: its roles then raise StorageError, and leaving the
        block normally raises ConcurrencyError instead of committing; run it again. Once the
        block has ended, every method of its roles raises
        :class:`~csmcore.errors.StorageError` (or ValidationError for a bad argument, which is
        checked first) and writes nothing.
        """
        ...

    def close(self) -> None:
        """Release connections and files. Closing twice is harmless; using a closed store
        raises :class:`~csmcore.errors.StorageError`."""
        ...


# --------------------------------------------------------------------------------------------
# Optional roles of escalation: ``firings`` and ``outbox``
# --------------------------------------------------------------------------------------------


def _aware(_: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        if not isinstance(value, datetime):
            raise ValidationError(
                f"{attribute.name}={value!r} is a {type(value).__name__}; expected an aware "
                "datetime"
            )
        require_aware(value, attribute.name)


def _count(_: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{attribute.name}={value!r} is not a whole number >= 0")


@serializable("escalation.firing_record", aliases=("csmcore.storage:FiringRecord",))
@attrs.frozen(kw_only=True)
class FiringRecord:
    """A firing as the ``firings`` role keeps it: the :class:`~csmcore.escalation.Firing`
    (rule, rule version, level, ticket, target, cycle and the instant it was due) and the
    instant an engine recorded it (``recorded_at``, the ``now`` of its run)."""

    firing: Firing = attrs.field(validator=instance_of(Firing, "an escalation Firing"))
    recorded_at: datetime = attrs.field(validator=_aware)

    @property
    def key(self) -> FiringKey:
        """The firing's key (``Firing.key``)."""
        return self.firing.key


@serializable("escalation.ticket_plan", aliases=("csmcore.storage:TicketPlan",))
@attrs.frozen(kw_only=True)
class TicketPlan:
    """The ``firings`` role's schedule entry for one ticket: ``next_due`` is the earliest
    instant at which a firing not yet recorded is due (None: none will fire as the ticket
    stands), planned from the ticket at ``version``."""

    ticket_id: str
    version: int = attrs.field(validator=_count)
    next_due: datetime | None = attrs.field(validator=_aware)


PLAN_BASIS_KEY: Final = "csmcore.escalation.plan_basis"
"""The key of the ``rules`` role under which the escalation engine keeps its
:class:`PlanBasis`: reserved, no rule may be stored under it."""

_HEX = frozenset("0123456789abcdef")


def _digest(_: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or len(value) != 64 or not set(value) <= _HEX:
        raise ValidationError(
            f"{attribute.name}={value!r} is not a SHA-256 digest (64 lower-case hex digits)"
        )


@serializable("escalation.plan_basis", aliases=("csmcore.storage:PlanBasis",))
@attrs.frozen(kw_only=True)
class PlanBasis:
    """What the plans of the ``firings`` role were made from, as the escalation engine keeps
    it in the ``rules`` role under :data:`PLAN_BASIS_KEY`: ``digest`` is the SHA-256 (hex) of
    the canonical serialized form of the SLA book, the rules in order, the loyalty program
    (or its absence) and the planner's format; ``complete`` is False while an engine plans
    every open ticket from it (a crash leaves it False, and the next engine plans again)."""

    digest: str = attrs.field(validator=_digest)
    complete: bool = attrs.field(validator=instance_of(bool, "True or False"))


class OutboxState(enum.StrEnum):
    """Where an outbox message stands: waiting to be (re)delivered, delivered, or given up."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


@serializable("escalation.outbox_message", aliases=("csmcore.storage:OutboxMessage",))
@attrs.frozen(kw_only=True)
class OutboxMessage:
    """One notification in the transactional outbox.

    ``key`` is the request's ``idempotency_key`` (unique in the outbox); ``attempts`` counts
    delivery attempts claimed so far; a PENDING message is due when ``next_attempt_at`` is
    reached (never before ``request.not_before``); ``delivered_at`` is set once DELIVERED;
    ``last_error`` says why the last attempt failed.

    >>> from datetime import datetime, timezone
    >>> from csmcore.escalation import NotificationRequest
    >>> at = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
    >>> request = NotificationRequest(channel="email", recipient="ann", template="warn",
    ...     data={}, not_before=at, idempotency_key="k/0", ticket_id="T-1")
    >>> message = OutboxMessage.new(request, created_at=at)
    >>> message.state, message.attempts, message.next_attempt_at == at
    (<OutboxState.PENDING: 'pending'>, 0, True)
    """

    key: str
    request: NotificationRequest = attrs.field(
        validator=instance_of(NotificationRequest, "a NotificationRequest")
    )
    state: OutboxState = attrs.field(default=OutboxState.PENDING, converter=OutboxState)
    attempts: int = attrs.field(default=0, validator=_count)
    next_attempt_at: datetime = attrs.field(validator=_aware)
    created_at: datetime = attrs.field(validator=_aware)
    delivered_at: datetime | None = attrs.field(default=None, validator=_aware)
    last_error: str | None = None

    @classmethod
    def new(cls, request: NotificationRequest, *, created_at: datetime) -> OutboxMessage:
        """A PENDING message for ``request``, keyed by its idempotency key, due at its
        ``not_before``."""
        return cls(
            key=request.idempotency_key,
            request=request,
            next_attempt_at=request.not_before,
            created_at=created_at,
        )


@runtime_checkable
class FiringRepository(Protocol):
    """The optional ``firings`` role: each firing recorded once, and the schedule of tickets.

    A firing is recorded under its key (:attr:`csmcore.escalation.Firing.key`, unique in the
    store). An engine records it in the same unit of work as the ticket events and outbox
    messages its actions give, so the three commit together or not at all; a second engine
    recording the same key finds it taken (``record`` returns False, after waiting for the
    first engine's unit of work to end) and rolls its own back.

    The schedule holds a :class:`TicketPlan` per ticket: the earliest instant a firing not yet
    recorded is due. ``due`` and ``next_due`` read it, so an engine finds the tickets to run
    without reading the others.

    Methods raise :class:`~csmcore.errors.ValidationError` for a bad argument (a naive
    datetime, an id no store could keep, a negative limit) and
    :class:`~csmcore.errors.StorageError` on a backend failure.
    """

    def record(self, firing: Firing, *, recorded_at: datetime) -> bool:
        """Record ``firing``; True when it is new, False when its key was recorded already
        (nothing changes then)."""
        ...

    def keys(self, ticket_id: str) -> frozenset[FiringKey]:
        """The keys recorded for ``ticket_id`` (empty for an unknown ticket)."""
        ...

    def list(
        self, *, ticket_id: str | None = None, limit: int | None = None
    ) -> builtins.list[FiringRecord]:
        """Records (of one ticket, or all), ordered by the firing instant, then by
        :attr:`~csmcore.escalation.Firing.key_text` (the key as compact JSON text, compared as
        a string), at most ``limit``."""
        ...

    def plan(self, ticket_id: str, *, version: int, next_due: datetime | None) -> None:
        """Set the schedule of ``ticket_id``: planned from ``version``, next due at
        ``next_due`` (None: nothing due). It replaces a schedule planned from the same or an
        older version, never one planned from a newer version (a writer that read the ticket
        before another one changed and planned it must not put back its older plan); the
        comparison and the write are one atomic step."""
        ...

    def planned(self, ticket_id: str) -> TicketPlan | None:
        """The schedule of ``ticket_id``, or None when it was never planned."""
        ...

    def due(self, at: datetime, *, limit: int | None = None) -> builtins.list[TicketPlan]:
        """Schedules with ``next_due <= at``, earliest first (then by ticket id); ``at`` may
        be in any zone and is compared as an instant."""
        ...

    def next_due(self) -> datetime | None:
        """The earliest ``next_due`` of all schedules (UTC), or None."""
        ...


@runtime_checkable
class OutboxRepository(Protocol):
    """The optional ``outbox`` role: notifications written in the unit of work that fired
    them, delivered later (at least once) by a dispatcher.

    Messages are keyed by ``key`` (the request's idempotency key). Methods raise
    :class:`~csmcore.errors.NotFound` for an unknown key where they name one,
    :class:`~csmcore.errors.ValidationError` for a bad argument and
    :class:`~csmcore.errors.StorageError` on a backend failure.
    """

    def put(self, messages: Sequence[OutboxMessage]) -> int:
        """Insert ``messages``; a key already present is left as it is (idempotent). Returns
        how many were new."""
        ...

    def due(self, at: datetime, *, limit: int = 100) -> builtins.list[OutboxMessage]:
        """PENDING messages with ``next_attempt_at <= at``, oldest ``next_attempt_at`` first
        (then by key), at most ``limit``; ``at`` may be in any zone and is compared as an
        instant."""
        ...

    def claim(self, key: str, *, attempts: int, until: datetime) -> bool:
        """Claim a PENDING message for one delivery attempt: only when its stored
        ``attempts`` still equals ``attempts`` (optimistic), set ``attempts + 1`` and
        ``next_attempt_at = until`` (a lease: if the claimer dies, the message is due again
        then). False when someone else claimed it first or it is no longer PENDING."""
        ...

    def delivered(self, key: str, *, at: datetime) -> None:
        """Mark the message DELIVERED at ``at``."""
        ...

    def failed(self, key: str, *, at: datetime, error: str, retry_at: datetime | None) -> None:
        """Record a failed attempt: ``last_error = error``; PENDING again at ``retry_at``, or
        DEAD when ``retry_at`` is None."""
        ...

    def get(self, key: str) -> OutboxMessage:
        """The message ``key``."""
        ...

    def list(
        self, *, state: OutboxState | None = None, limit: int | None = None
    ) -> builtins.list[OutboxMessage]:
        """Messages (in ``state``, or all), by ``created_at`` then key."""
        ...


@runtime_checkable
class OutboxPaging(Protocol):
    """Optional, for an ``outbox`` role that pages through the due messages with a cursor.

    Messages held to business hours (or by ``not_before``) stay due, so a dispatcher that pages
    with :meth:`OutboxRepository.due` alone reads ever longer prefixes: O(H^2 / batch) rows for
    H held messages. :class:`csmcore.services.Dispatcher` uses :meth:`due_after` when the role
    offers it (``isinstance(role, OutboxPaging)``) and reads each due message about once; a role
    without it works as before. The built-in stores offer it, in and out of units of work.
    """

    def due_after(
        self, at: datetime, *, after: tuple[datetime, str], limit: int = 100
    ) -> builtins.list[OutboxMessage]:
        """What :meth:`OutboxRepository.due` gives for ``at``, from the first message after
        ``after`` on: PENDING messages with ``next_attempt_at <= at`` whose
        ``(next_attempt_at, key)`` comes after ``after`` = ``(next_attempt_at, key)`` (an
        aware instant, compared as an instant, then the key, compared by code point as
        ``due`` orders keys), in ``due``'s order, at most ``limit``. ``after`` need not be a
        stored message's (the message may have moved since it was read)."""
        ...


@runtime_checkable
class TicketsByRequester(Protocol):
    """Optional, for a ``tickets`` role that finds tickets by any requester they ever had.

    Escalation conditions read the member who was a ticket's requester at each instant
    (:attr:`~csmcore.tickets.Ticket.requesters`), so a write to the ledger of someone who asked
    a ticket before a change of requester can move that ticket's firings.
    :meth:`csmcore.services.EscalationEngine.member_changed` finds such tickets with
    :meth:`stream_by_requester` when the role offers it (``isinstance(role,
    TicketsByRequester)``); a role without it is read with ``stream`` over every ticket not
    closed, filtered in Python. Roles built on :class:`csmcore.storage.base.TicketRepositoryBase`
    offer it (filtering ``stream`` in Python unless the adapter selects in its backend); the
    built-in SQL stores select in an index of every requester, in and out of units of work.
    """

    def stream_by_requester(
        self, requester: str, condition: Condition, *, batch_size: int = 500
    ) -> Iterator[list[Ticket]]:
        """What :meth:`TicketRepository.stream` gives for ``condition``, keeping only the
        tickets of which ``requester`` was the requester at some instant (``requester in
        ticket.requesters``: the current one, or one before a change of requester), in id
        order, in non-empty lists of at most ``batch_size``.

        Raises :class:`~csmcore.errors.ValidationError` when ``requester`` is not a ticket id
        a store can keep (a requester is stored like an id), ``batch_size < 1`` or
        ``condition`` is not a :class:`~csmcore.conditions.Condition` (at the call),
        :class:`~csmcore.errors.StorageError` on a backend failure."""
        ...
