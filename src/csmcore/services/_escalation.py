"""The escalation engine: escalation rules run against a store, each firing exactly once.

The planning is the pure domain's (:func:`csmcore.escalation.run_ticket`,
:func:`~csmcore.escalation.next_due`); this module adds durability and scheduling:

- A ticket's firings are applied in the unit of work that records them in the ``firings``
  role (unique key) and writes their notifications to the ``outbox`` role: the ticket events,
  the records and the messages commit together or not at all. A process that dies before the
  commit leaves nothing, and the next run fires the same firings again; one that dies after
  it leaves them recorded, and no run fires them again.
- Two engines may run at once against one store. The first to record a key wins; the other
  finds it taken (or the ticket's version moved, a :class:`~csmcore.errors.ConcurrencyError`),
  rolls its unit of work back, reads the ticket again and plans again.
- The ``firings`` role keeps one :class:`~csmcore.storage.TicketPlan` per ticket: the instant
  of its earliest firing not yet recorded. :meth:`EscalationEngine.run` reads only the tickets
  due (an index), and :meth:`EscalationEngine.next_due` is the earliest of all, so a host
  schedules one wake-up instead of polling.
- The ``rules`` role keeps the :class:`~csmcore.storage.PlanBasis` the plans were made from (a
  digest of the book, the rules and the loyalty program): an engine whose own basis differs
  plans every open ticket before it goes on, so a change of rules, book or program reaches
  the plans with no call from the host.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs

from csmcore._time import require_aware, shifted, to_us
from csmcore.conditions import Condition, In, Not
from csmcore.errors import (
    ConcurrencyError,
    CsmError,
    InternalError,
    StorageError,
    UnsupportedRole,
    ValidationError,
)
from csmcore.escalation import (
    EscalationRule,
    FiringKey,
    PlannedFiring,
    PlanState,
    PointsGrantRequest,
    TicketRun,
    rules_read_member,
    run_ticket,
)
from csmcore.escalation._walk import members_token
from csmcore.loyalty import MemberTimeline, Program
from csmcore.services._plan_basis import (
    BasisKeeper,
    Unread,
    digest_of,
)
from csmcore.services._requests import NoHandler, handle
from csmcore.services._rule_source import RuleSource
from csmcore.sla import SlaBook
from csmcore.storage import (
    Store,
    TicketsByRequester,
    Versioned,
    role_of,
)
from csmcore.tickets import Status, Ticket

__all__ = ["EngineRun", "EscalationEngine", "TicketFailure"]

_US = timedelta(microseconds=1)


@attrs.frozen(kw_only=True)
class TicketFailure:
    """A ticket the engine could not run: the error (its class name and message) its rules
    raised (a change its history forbids, an action refusing a value, a loop of rules), with
    nothing of that ticket written, and the instant its plan was moved to, when it is tried
    again (so that it neither stops the other tickets nor wakes the host at once)."""

    ticket_id: str
    error: str
    retry_at: datetime


@attrs.frozen(kw_only=True)
class EngineRun:
    """What :meth:`EscalationEngine.run` did: the firings applied (in order of instant, then
    ticket id, rule order and level), how many tickets it ran, how many times a ticket had
    to be planned again because another writer changed it meanwhile, and the tickets it could
    not run (:class:`TicketFailure`, by ticket id)."""

    firings: tuple[PlannedFiring, ...]
    tickets: int
    retries: int
    failed: tuple[TicketFailure, ...] = ()


class _Taken(Exception):
    """A firing key was recorded by another engine while this one planned: roll back."""


_NOT_CLOSED = Not(In("status", [Status.CLOSED]))


class EscalationEngine:
    """Run escalation rules against ``store``, each firing exactly once.

    ``book`` is the :class:`~csmcore.sla.SlaBook` the rules read. ``rules`` are the rules to
    run, in order; None reads the latest version of every rule in the store's ``rules`` role
    (sorted by key) at each call. The store must offer the ``firings`` and ``outbox`` roles
    (:class:`~csmcore.errors.UnsupportedRole` otherwise).

    ``batch_size`` tickets share one unit of work (one commit); when one of them conflicts
    with another writer, the batch is rolled back and its tickets run one unit of work each.
    ``max_retries`` bounds how often one ticket is planned again after a conflict before the
    :class:`~csmcore.errors.ConcurrencyError` is raised. ``on_applied`` (for tests and
    tracing) is called inside the unit of work after each firing's writes, before the commit.

    ``loyalty`` (a :class:`~csmcore.loyalty.Program`) lets rule conditions read the ticket's
    requester as a loyalty member (``Field("member.tier") == "gold"``, ``member.points``...):
    the engine reads the entries of everyone who was the requester from the store's
    ``ledger`` role (in the unit of work that runs the ticket) and judges each instant with
    the requester of that instant as they stood then, the tier by the program's tiers. A
    write to a member's ledger can change when the rules fire for the tickets they request or
    requested before a change of requester: call :meth:`member_changed` after it. Without
    ``loyalty`` member fields read None.

    Raises ValidationError for a rule (given in ``rules``) that names a target key no policy
    of ``book`` has: a trigger's ``target`` (the level would never fire), a ``per_target``
    key of a :class:`~csmcore.escalation.GrantPoints` action's policy (its points would never
    apply), an ``sla.<target>.<attribute>`` field of the rule's condition or of a
    :class:`~csmcore.escalation.ConditionHeld` condition (it would always read None), naming
    the rule, level, action or condition and key and the book's targets; and for a
    business-time trigger counting in a calendar name the book lacks (every run of a ticket
    would fail on it), naming it and the book's calendars. Rules read from
    the store are checked the same way by :meth:`rules`, when it reads a new set of stored
    versions (it is not called here: rules may be stored after the engine is built): the
    calls that read the rules (:meth:`run`, :meth:`dry_run`, :meth:`plan_all`,
    :meth:`ticket_changed`, and :meth:`member_changed` with ``loyalty``: without it, it reads
    no rules) raise the ValidationError, naming the
    stored key and version, before any unit of work writes, until a corrected version is
    stored (``store.rules.put(key, rule, expected_version=...)``). One bad stored rule so
    stops every rule of the engine, loudly, rather than one level silently; so does
    :meth:`next_due`, which checks that the plans are the rules' (below).

    The plans follow the rules, the book and the program by themselves. The engine's *plan
    basis* is a SHA-256 of their canonical serialized form (and of :data:`PLANNER_FORMAT`);
    the store keeps the basis the plans were made from (a :class:`~csmcore.storage.PlanBasis`
    under the reserved key :data:`~csmcore.storage.PLAN_BASIS_KEY` of the ``rules`` role).
    :meth:`run`, :meth:`dry_run`, :meth:`next_due`, :meth:`ticket_changed`,
    :meth:`member_changed` and :meth:`plan_all` read it first (one read by key; with
    ``rules=None`` it comes with the rules, read as one list of versions when the role offers
    :class:`~csmcore.storage.LatestVersions`, and only the documents whose version changed
    since the last call): when it is not the engine's (a rule version
    stored, by any process; an engine deployed with other rules, book or program; a store
    written before this release), the engine plans every ticket not closed and stores its
    basis, then goes on. A call that wrote plans reads it again as it ends (also when it
    stops with an error: before the error goes on, with a note on it if that read fails too),
    and plans every open ticket again if another engine stored a basis meanwhile. Two
    engines with different rules on one store (a rolling deploy) so plan everything in turn.
    A store without the ``rules`` role, or a book, rule or program that cannot be serialized,
    keeps no basis: call :meth:`plan_all` after changing them, as before.

    The engine remembers, for up to ``remember`` tickets (0: none), where the planner's walk
    over each stopped (a :class:`~csmcore.escalation.PlanState`, about 430 bytes), once
    the unit of work that applied its firings committed; the next run of that ticket goes on
    from there instead of walking its history from the creation. What it remembers only
    shortens the walk: a ticket changed meanwhile other than by new events after that instant
    (by another engine, another process) is walked from its creation, as by a new engine.

    >>> from datetime import datetime, timedelta, timezone
    >>> from csmcore import BusinessCalendar, SlaBook, SlaPolicy, SlaTarget, Ticket
    >>> from csmcore.conditions import Always
    >>> from csmcore.escalation import EscalationRule, EscalationLevel, PercentUsed, Notify
    >>> from csmcore.storage import open_store
    >>> book = SlaBook(calendar=BusinessCalendar.always(timezone="UTC"), policies=[SlaPolicy(
    ...     name="std", position=1, default=True,
    ...     targets=[SlaTarget(metric="first_reply", within=timedelta(hours=4))])])
    >>> rule = EscalationRule(name="warn", condition=Always(), levels=[EscalationLevel(
    ...     trigger=PercentUsed(target="first_reply", percent=50),
    ...     actions=[Notify(channel="email", recipient="lead", template="half")])])
    >>> store = open_store("memory://")
    >>> t0 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
    >>> ticket, _ = Ticket.create(at=t0, ticket_id="T-1", created_by="requester",
    ...     channel="email", priority="normal", requester="ann")
    >>> _ = store.tickets.add(ticket)
    >>> engine = EscalationEngine(store, book, [rule])
    >>> engine.ticket_changed("T-1")
    datetime.datetime(2025, 1, 6, 11, 0, tzinfo=datetime.timezone.utc)
    >>> engine.next_due()
    datetime.datetime(2025, 1, 6, 11, 0, tzinfo=datetime.timezone.utc)
    >>> [p.firing.level for p in engine.run(t0 + timedelta(hours=1)).firings]
    []
    >>> [p.firing.at.isoformat() for p in engine.run(t0 + timedelta(hours=3)).firings]
    ['2025-01-06T11:00:00+00:00']
    >>> engine.run(t0 + timedelta(hours=3)).firings  # never twice
    ()
    >>> [m.request.template for m in store.outbox.list()]
    ['half']
    >>> engine.next_due() is None
    True
    """

    def __init__(
        self,
        store: Store,
        book: SlaBook,
        rules: Iterable[EscalationRule] | None = None,
        *,
        batch_size: int = 100,
        max_retries: int = 20,
        on_applied: Callable[[PlannedFiring], None] | None = None,
        remember: int = 100_000,
        loyalty: Program | None = None,
        retry_failed: timedelta = timedelta(minutes=15),
    ) -> None:
        if not isinstance(book, SlaBook):
            raise ValidationError(f"book={book!r} is a {type(book).__name__}; expected a SlaBook")
        for name, value in (("batch_size", batch_size), ("max_retries", max_retries)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name}={value!r} is not a whole number >= 1")
        if isinstance(remember, bool) or not isinstance(remember, int) or remember < 0:
            raise ValidationError(f"remember={remember!r} is not a whole number >= 0")
        if loyalty is not None:
            if not isinstance(loyalty, Program):
                raise ValidationError(
                    f"loyalty={loyalty!r} is a {type(loyalty).__name__}; expected a "
                    "csmcore.loyalty.Program (or None)"
                )
            role_of(store, "ledger")  # UnsupportedRole now rather than at the first run
        self._loyalty = loyalty
        self._reads: tuple[tuple[EscalationRule, ...], bool] | None = None
        if not isinstance(retry_failed, timedelta) or retry_failed <= timedelta(0):
            raise ValidationError(
                f"retry_failed={retry_failed!r} is not a positive timedelta (how long a ticket "
                "whose rules raised waits before the engine tries it again)"
            )
        self._retry_failed = retry_failed
        self._remember = remember
        self._states: dict[str, PlanState] = {}
        self._states_lock = threading.Lock()
        self._store = store
        self._book = book
        self._firings = role_of(store, "firings")
        role_of(store, "outbox")
        try:  # where the plan basis is kept; without it the plans follow no change by themselves
            bases: Any = role_of(store, "rules")
        except UnsupportedRole:
            bases = None
        self._keeps_basis = bases is not None
        self._basis = BasisKeeper(
            bases,
            max_retries,
            self._digest,
            self._load,
            lambda rules, batch_size: self._plan_all(None, batch_size, rules),
        )
        self._digests: tuple[tuple[EscalationRule, ...], str | None] | None = None
        self._source = RuleSource(store, book, rules)
        self._batch_size = batch_size
        self._max_retries = max_retries
        self._on_applied = on_applied

    # --- rules -------------------------------------------------------------------------------

    def rules(self) -> tuple[EscalationRule, ...]:
        """The rules the engine runs: those given, or the latest version of each rule in the
        store's ``rules`` role, by key (values of other types there are left out).

        Stored rules are checked against the book as given rules are, once per new set of
        stored versions: raises ValidationError for a stored rule naming a target key no
        policy of the book has (a trigger's target, a ``GrantPoints`` policy's ``per_target``
        key, a condition's ``sla.<target>.*`` field), naming the stored key and version, the
        level and the key, until a corrected version is stored."""
        return self._load()[0]

    def _load(self) -> tuple[tuple[EscalationRule, ...], Versioned[Any] | Unread | None]:
        """:meth:`rules`, and the stored :class:`~csmcore.storage.PlanBasis` when reading the
        rules from the store read it too (else ``UNREAD``)."""
        return self._source.load()

    # --- the plan basis ----------------------------------------------------------------------

    def _digest(self, rules: tuple[EscalationRule, ...]) -> str | None:
        """:func:`digest_of` the engine's book, ``rules`` and program, once per rule set (by
        identity: the same stored versions give the same tuple)."""
        if not self._keeps_basis:
            return None
        known = self._digests
        if known is None or known[0] is not rules:
            known = self._digests = (rules, digest_of(self._book, rules, self._loyalty))
        return known[1]

    # --- scheduling --------------------------------------------------------------------------

    def next_due(self) -> datetime | None:
        """The exact next instant (UTC) at which any rule fires for any planned ticket, or
        None: schedule one wake-up then and call :meth:`run` with it. Planned tickets only:
        tell the engine about new and changed tickets with :meth:`ticket_changed` (or
        :meth:`plan_all`).

        When the stored plan basis is not the engine's (the rules, book or program changed),
        every open ticket is planned first, so the instant is the rules' of now. So it raises
        what planning raises: ValidationError for a stored rule the book refuses (see
        :meth:`rules`) or a reserved key holding something else, ConcurrencyError when the
        plan basis kept conflicting ``max_retries`` times, StorageError."""
        self._basis.begin()
        result: datetime | None = self._firings.next_due()
        return result

    def ticket_changed(self, ticket_id: str) -> datetime | None:
        """Plan ``ticket_id`` again (after the host created or changed it) and return its next
        firing instant (None: nothing will fire as it stands). A firing already due is
        returned as it is (in the past): :meth:`run` fires it."""
        rules, basis = self._basis.begin()
        with self._basis.writing(basis):
            due = self._plan_ids([ticket_id], rules)[0]
        if self._basis.finish(basis):  # planned again from the rules of now
            plan = self._firings.planned(ticket_id)
            due = None if plan is None else plan.next_due
        return due

    def member_changed(self, member_id: str) -> int:
        """Plan again every ticket not closed of which ``member_id`` was the requester at some
        instant (the current requester, or one before a change of requester: each instant
        reads the member who was the requester then), after a write to their ledger, when the
        rules read loyalty members, and return how many.

        The store finds them with the optional
        :class:`~csmcore.storage.TicketsByRequester` of its ``tickets`` role (the built-in
        stores select them in an index); a role without it is read in full (every ticket not
        closed, filtered in Python)."""
        if not self._loyalty:
            return 0
        rules, basis = self._basis.begin()
        with self._basis.writing(basis):
            count = self._member_changed(member_id, rules)
        if count:
            self._basis.finish(basis)
        return count

    def _member_changed(self, member_id: str, rules: tuple[EscalationRule, ...]) -> int:
        """:meth:`member_changed` with ``rules`` (a run's own, read as it started)."""
        if not self._loyalty or not self._reads_member(rules):
            return 0
        tickets = self._store.tickets
        if isinstance(tickets, TicketsByRequester):
            batches = tickets.stream_by_requester(member_id, _NOT_CLOSED, batch_size=500)
        else:
            batches = _requested_by(member_id, tickets.stream(_NOT_CLOSED, batch_size=500))
        return self._plan_batches(batches, rules)

    def plan_all(self, condition: Condition | None = None, *, batch_size: int = 500) -> int:
        """Plan every ticket matching ``condition`` (default: every ticket not closed) and
        return how many were planned: for a store whose tickets the engine never saw (after a
        change of rules, book or program the engine plans them by itself: see the class)."""
        rules, stored = self._load()
        rules, basis, planned = self._basis.settle(
            rules, stored, forced=False, batch_size=batch_size
        )
        if condition is None and planned is not None:  # the basis was another's: done
            return planned
        with self._basis.writing(basis):
            count = self._plan_all(condition, batch_size, rules)
        if count:
            self._basis.finish(basis)
        return count

    def _plan_all(
        self, condition: Condition | None, batch_size: int, rules: tuple[EscalationRule, ...]
    ) -> int:
        batches = self._store.tickets.stream(condition or _NOT_CLOSED, batch_size=batch_size)
        return self._plan_batches(batches, rules)

    def _plan_batches(
        self, batches: Iterable[list[Ticket]], rules: tuple[EscalationRule, ...]
    ) -> int:
        count = 0
        for batch in batches:
            states: dict[str, PlanState | None] = {}
            with self._store.unit_of_work() as uow:
                firings = role_of(uow, "firings")
                for ticket in batch:
                    self._plan_safely(uow, firings, ticket, rules, states)
            self._keep(states)
            count += len(batch)
        return count

    def _plan_ids(
        self, ticket_ids: Sequence[str], rules: tuple[EscalationRule, ...]
    ) -> list[datetime | None]:
        out = []
        states: dict[str, PlanState | None] = {}
        with self._store.unit_of_work() as uow:
            firings = role_of(uow, "firings")
            for ticket_id in ticket_ids:
                ticket = uow.tickets.get(ticket_id)
                out.append(self._plan_safely(uow, firings, ticket, rules, states))
        self._keep(states)
        return out

    def _plan_safely(
        self,
        uow: Any,
        firings: Any,
        ticket: Ticket,
        rules: tuple[EscalationRule, ...],
        states: dict[str, PlanState | None],
    ) -> datetime | None:
        """:meth:`_plan_one`; a ticket whose rules (or requester's ledger) raise a csmcore
        error is planned due at its creation instead, so that the next :meth:`run` tries it,
        reports it in :attr:`EngineRun.failed` and puts it off, while the others are planned."""
        try:
            members = self._members(uow, ticket, rules)
            return self._plan_one(firings, ticket, firings.keys(ticket.id), rules, states, members)
        except CsmError as err:
            if not _of_the_ticket(err):
                raise
            due = ticket.events[0].at
            firings.plan(ticket.id, version=ticket.version, next_due=due)
            states[ticket.id] = None
            return due

    def _plan_one(
        self,
        firings: Any,
        ticket: Ticket,
        fired: frozenset[FiringKey] | set[FiringKey],
        rules: tuple[EscalationRule, ...],
        states: dict[str, PlanState | None],
        members: dict[str, MemberTimeline],
    ) -> datetime | None:
        # A run over an empty window: nothing fires, the walk goes on to the next firing.
        start = _start(ticket)
        run = run_ticket(
            ticket,
            self._book,
            rules,
            start,
            start,
            fired=fired,
            plan=True,
            resume=self._states.get(ticket.id),
            members=members,
        )
        due = None if run.next_due is None else run.next_due.astimezone(start.tzinfo)
        firings.plan(ticket.id, version=ticket.version, next_due=due)
        states[ticket.id] = run.state  # None: forget an older one
        return due

    def _reads_member(self, rules: tuple[EscalationRule, ...]) -> bool:
        """:func:`~csmcore.escalation.rules_read_member`, once per rule set (by identity)."""
        known = self._reads
        if known is None or known[0] is not rules:
            known = self._reads = (rules, rules_read_member(rules))
        return known[1]

    def _members(
        self, roles: Any, ticket: Ticket, rules: tuple[EscalationRule, ...]
    ) -> dict[str, MemberTimeline]:
        """The loyalty members of everyone who was the ticket's requester (each instant reads
        the one who was the requester then), read through ``roles`` (the unit of work, or the
        store), when conditions read members and the engine has a program (else none)."""
        program = self._loyalty
        if program is None or not self._reads_member(rules):
            return {}
        ledger = role_of(roles, "ledger")
        out: dict[str, MemberTimeline] = {}
        for member_id in sorted(ticket.requesters):
            entries = ledger.read(member_id, lambda state: tuple(state.entries))
            out[member_id] = MemberTimeline(member_id, entries, program.tiers)
        return out

    def _keep(self, states: dict[str, PlanState | None]) -> None:
        """Remember where each ticket's walk stopped (after its unit of work committed)."""
        if not self._remember or not states:
            return
        with self._states_lock:
            kept = self._states
            for ticket_id, state in states.items():
                kept.pop(ticket_id, None)
                if state is not None:
                    kept[ticket_id] = state
            over = len(kept) - self._remember
            if over > 0:  # forget the least recently kept
                for ticket_id in list(itertools.islice(kept, over)):
                    del kept[ticket_id]

    # --- running -----------------------------------------------------------------------------

    def run(self, now: datetime) -> EngineRun:
        """Fire everything due at or before ``now`` for the planned tickets due by then.

        Each ticket's firings are applied in order, their events appended with the expected
        version, recorded and their requests handled (notifications to the outbox) in one
        unit of work, and the ticket planned again.

        A ticket whose rules raise a csmcore error (an action making a change its history
        forbids, a value an action refuses, :class:`~csmcore.escalation.EscalationLoop`) does
        not stop the others: its unit of work is rolled back (nothing of it is written), the
        run goes on, the ticket is listed in :attr:`EngineRun.failed` and its plan moved to
        ``now + retry_failed`` (it is tried again then, or as soon as the host changes the
        ticket). Any other exception (a bug in an action, the backend failing:
        StorageError) stops the run, as before.

        The rules are read once, as the run starts (:meth:`rules`), and kept to its end: a
        rule stored meanwhile applies from the next run. When the stored plan basis is not
        the engine's (the rules, book or program changed since the plans were made), every
        open ticket is planned again first, so what a new rule version moved earlier fires
        in this run; when another engine stored a basis during the run, the run ends by
        planning every open ticket again with the rules stored now.

        Raises NaiveDatetimeError for a naive ``now``, ConcurrencyError when a ticket (or the
        plan basis) kept conflicting ``max_retries`` times, ValidationError (before anything
        is written) when a rule read from the store names a target key the book lacks (see
        :meth:`rules`) or the reserved key of the plan basis holds something else.
        """
        require_aware(now, "now")
        rules, basis = self._basis.begin()
        plans = self._firings.due(now)
        applied: list[PlannedFiring] = []
        failed: list[TicketFailure] = []
        retries = 0
        ids = [p.ticket_id for p in plans]
        read: dict[str, int] = {}  # the version of each ticket as its last attempt read it
        # a run stopped by an error reads the basis again before the error goes on
        with self._basis.writing(basis if ids else None):
            for start in range(0, len(ids), self._batch_size):
                batch = ids[start : start + self._batch_size]
                try:
                    applied.extend(self._run_batch(batch, now, rules))
                    continue
                except (_Taken, ConcurrencyError):
                    retries += 1
                except CsmError as err:
                    if not _of_the_ticket(err):
                        raise
                for ticket_id in batch:  # one at a time after a conflict or a failing ticket
                    try:
                        firings, tries = self._run_alone(ticket_id, now, rules, read)
                    except CsmError as err:
                        if not _of_the_ticket(err):
                            raise
                        failed.append(self._put_off(ticket_id, err, now, read.get(ticket_id)))
                        continue
                    applied.extend(firings)
                    retries += tries
        if ids:
            self._basis.finish(basis)
        order = {rule.name: i for i, rule in enumerate(rules)}
        applied.sort(  # by instant: datetimes of one zone compare by wall reading (fold ignored)
            key=lambda p: (
                to_us(p.firing.at),
                p.firing.ticket_id,
                order.get(p.firing.rule, -1),
                p.firing.level,
            )
        )
        return EngineRun(
            firings=tuple(applied),
            tickets=len(ids),
            retries=retries,
            failed=tuple(sorted(failed, key=lambda f: f.ticket_id)),
        )

    def _put_off(
        self, ticket_id: str, err: CsmError, now: datetime, version: int | None
    ) -> TicketFailure:
        """Move the plan of a ticket whose rules raised ``err`` on its ``version`` to
        ``now + retry_failed`` (in a unit of work of its own: the failed one was rolled back).
        The plan is the failed version's: a host that changed and planned the ticket since
        keeps its newer plan (the ticket is tried again as planned then)."""
        retry_at = shifted(now, self._retry_failed)  # elapsed time, across a DST change too
        with self._store.unit_of_work() as uow:
            ticket = uow.tickets.get(ticket_id)
            role_of(uow, "firings").plan(
                ticket_id,
                version=ticket.version if version is None else version,
                next_due=retry_at.astimezone(_start(ticket).tzinfo),
            )
        with self._states_lock:
            self._states.pop(ticket_id, None)
        return TicketFailure(
            ticket_id=ticket_id, error=f"{type(err).__name__}: {err}", retry_at=retry_at
        )

    def _run_alone(
        self,
        ticket_id: str,
        now: datetime,
        rules: tuple[EscalationRule, ...],
        read: dict[str, int] | None = None,
    ) -> tuple[list[PlannedFiring], int]:
        for attempt in range(self._max_retries):
            try:
                return self._run_batch([ticket_id], now, rules, read), attempt
            except (_Taken, ConcurrencyError) as err:
                if attempt + 1 == self._max_retries:
                    raise ConcurrencyError(
                        f"ticket {ticket_id!r} kept changing under the escalation engine: "
                        f"{self._max_retries} attempts conflicted; run it again"
                    ) from err
        raise AssertionError("unreachable")  # pragma: no cover

    def _run_batch(
        self,
        ticket_ids: Sequence[str],
        now: datetime,
        rules: tuple[EscalationRule, ...],
        read: dict[str, int] | None = None,
    ) -> list[PlannedFiring]:
        applied: list[PlannedFiring] = []
        states: dict[str, PlanState | None] = {}
        granted: set[str] = set()  # members whose ledger the firings wrote to
        watch = self._loyalty is not None and self._reads_member(rules)
        with self._store.unit_of_work() as uow:
            firings = role_of(uow, "firings")
            for ticket_id in ticket_ids:
                ticket = uow.tickets.get(ticket_id)
                if read is not None:
                    read[ticket_id] = ticket.version
                fired = firings.keys(ticket_id)
                members = self._members(uow, ticket, rules)
                current, resume = ticket, self._states.get(ticket_id)
                while True:
                    # One walk fires what is due and finds the next firing after ``now``.
                    run = run_ticket(
                        current,
                        self._book,
                        rules,
                        _start(ticket),
                        now,
                        fired=fired,
                        plan=True,
                        resume=resume,
                        members=members,
                    )
                    applied.extend(self._apply(uow, firings, current, run, now))
                    if watch:  # rules read members: the granted ones' tickets re-plan
                        granted.update(_members_granted(run))
                    # A firing that wrote to the requester's ledger (GrantPoints) changed the
                    # member the walk read: walk again with the member as written, so what
                    # now holds fires in this run and the plan is not the stale member's.
                    if not members or not run.firings:
                        break
                    again = self._members(uow, run.ticket, rules)
                    if members_token(again) == members_token(members):
                        break
                    members, current, resume = again, run.ticket, None
                    fired = {*fired, *(p.firing.key for p in run.firings)}
                due = run.next_due
                firings.plan(
                    ticket_id,
                    version=run.ticket.version,
                    next_due=None if due is None else due.astimezone(_start(ticket).tzinfo),
                )
                states[ticket_id] = run.state  # None: forget an older one
        self._keep(states)  # committed: the next run goes on from here
        for member_id in sorted(granted):  # their other tickets read the member as written
            self._member_changed(member_id, rules)  # the run's rules, not a newer read
        return applied

    def _apply(
        self, uow: Any, firings: Any, ticket: Ticket, run: TicketRun, now: datetime
    ) -> list[PlannedFiring]:
        version = ticket.version
        for planned in run.firings:
            if not firings.record(planned.firing, recorded_at=now):
                raise _Taken(planned.firing.key_text)
            if planned.events:
                version = uow.tickets.append(
                    ticket.id, planned.events, expected_version=version
                ).version
            for request in planned.requests:
                handle(uow, request, now)
            if self._on_applied is not None:
                self._on_applied(planned)
        return list(run.firings)

    # --- dry run -----------------------------------------------------------------------------

    def dry_run(self, start: datetime, end: datetime) -> list[PlannedFiring]:
        """What :meth:`run` would fire at instants ``start < at <= end`` for the planned
        tickets (those due by ``end``), in order, changing nothing: no event, record or
        message is written (the plans are made again first when the stored plan basis is
        not the engine's, as by :meth:`run`)."""
        require_aware(start, "start")
        require_aware(end, "end")
        rules, _ = self._basis.begin()
        order = {rule.name: i for i, rule in enumerate(rules)}
        out: list[PlannedFiring] = []
        for plan in self._firings.due(end):
            ticket = self._store.tickets.get(plan.ticket_id)
            fired = self._firings.keys(plan.ticket_id)
            members = self._members(self._store, ticket, rules)
            out.extend(
                run_ticket(
                    ticket, self._book, rules, start, end, fired=fired, members=members
                ).firings
            )
        out.sort(  # by instant: datetimes of one zone compare by wall reading (fold ignored)
            key=lambda p: (
                to_us(p.firing.at),
                p.firing.ticket_id,
                order[p.firing.rule],
                p.firing.level,
            )
        )
        return out


def _requested_by(member_id: str, batches: Iterable[list[Ticket]]) -> Iterator[list[Ticket]]:
    """The tickets of ``batches`` of which ``member_id`` was the requester at some instant (for
    a ``tickets`` role without :class:`~csmcore.storage.TicketsByRequester`)."""
    for batch in batches:
        found = [t for t in batch if member_id in t.requesters]
        if found:
            yield found


def _members_granted(run: TicketRun) -> set[str]:
    """The members whose ledger the firings of ``run`` asked to write to (GrantPoints)."""
    return {
        request.member_id
        for planned in run.firings
        for request in planned.requests
        if isinstance(request, PointsGrantRequest)
    }


def _of_the_ticket(err: CsmError) -> bool:
    """Whether ``err`` is about one ticket (its rules or data, its requester's ledger found
    corrupt when conditions read the member), not the store, a conflict with another writer, a
    bug or the engine's setup: such a ticket is set aside (and reported) and the run goes on,
    so one customer's broken data never holds up the escalations of the others."""
    return not isinstance(err, StorageError | ConcurrencyError | InternalError | NoHandler)


def _start(ticket: Ticket) -> datetime:
    """Just before the ticket's first event: a ticket's firings are never before it."""
    return ticket.events[0].at - _US
