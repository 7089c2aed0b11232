"""The roles of the SQL stores: :class:`SqlTickets` and :class:`SqlDocuments` (the primitives
behind :mod:`csmcore.storage.base`), bound to a store or to one unit of work."""

from __future__ import annotations

import builtins
import itertools
import json
import reprlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from csmcore import conditions as cd
from csmcore._boundary import guard_class
from csmcore._time import from_us, to_us
from csmcore.errors import ConcurrencyError, NotFound, StorageError, ValidationError
from csmcore.escalation import Firing, FiringKey
from csmcore.storage import _sql as sql
from csmcore.storage import kit as c
from csmcore.storage._sql import Cursor, compile_condition, dump_json, summary_row
from csmcore.storage._sql_ledger import SqlTxLedger
from csmcore.storage.base import (
    DocumentRepositoryBase,
    FiringRepositoryBase,
    OutboxPagingBase,
    TicketRepositoryBase,
)
from csmcore.storage.ledger import LEDGER
from csmcore.storage.protocols import (
    FiringRecord,
    OutboxMessage,
    OutboxState,
    TicketPlan,
    Versioned,
)
from csmcore.storage.roles import BUILTIN_ROLES, ESCALATION_ROLES, storage_role
from csmcore.tickets import Ticket, TicketEvent

if TYPE_CHECKING:
    from csmcore.storage._sql_store import SqlStore

__all__ = ["SqlDocuments", "SqlFirings", "SqlOutbox", "SqlRoles", "SqlTickets"]

_T = TypeVar("_T")

_MAX_INTEGER = 2**63 - 1
"""The largest integer both backends store; no version or page size can exceed it."""

_TICKET_COLUMNS = (
    "status",
    "status_name",
    "priority",
    "priority_rank",
    "channel",
    "grp",
    "assignee",
    "requester",
    "created_by",
    "subject",
    "merged_into",
    "fields",
)

_ID = attrgetter("id")

_CHANGING = attrgetter(
    "status", "status_name", "priority", "group", "assignee", "requester", "merged_into", "fields"
)
"""The summary attributes events can change (the others come from TicketCreated)."""


class SqlRoles:
    """The roles bound to one unit of work."""

    roles: ClassVar[frozenset[str]] = BUILTIN_ROLES | ESCALATION_ROLES | {LEDGER.name}
    """The roles a unit of work offers: those of its store."""

    def __init__(self, store: SqlStore, cur: Cursor) -> None:
        self.ended = False
        self.aborted = False
        """Set when a conflict with another writer (a deadlock, a serialization failure) hit
        one of its operations: the backend may hold the unit of work's locks for the other
        writer, so the unit of work is rolled back as a whole."""
        self.written: list[Ticket] = []
        """Tickets written in this unit of work, for the cache once it commits."""
        self.latest: dict[str, Ticket] = {}
        """The latest state of each ticket this unit of work read or wrote: what its own
        transaction sees, so an append to it needs no second read of the history."""
        self.tickets = SqlTickets(store, cur, self)
        self.calendars = SqlDocuments(store, cur, "calendars", self)
        self.policies = SqlDocuments(store, cur, "policies", self)
        self.rules = SqlDocuments(store, cur, "rules", self)
        self.firings = SqlFirings(store, cur, self)
        self.outbox = SqlOutbox(store, cur, self)
        self.ledger = SqlTxLedger(store, cur, self)


@guard_class(fallback=StorageError)
class _Bound:
    def __init__(self, store: SqlStore, cur: Cursor | None, roles: SqlRoles | None = None) -> None:
        self._store = store
        self._uow = cur
        self._roles = roles

    def _tx(self, *, write: bool) -> AbstractContextManager[Cursor]:
        self._check_open()
        tx = self._store.tx(self._uow, write=write)
        return tx if self._roles is None else self._aborting(tx)

    def _run(self, work: Callable[[Cursor], _T], *, write: bool) -> _T:
        self._check_open()
        try:
            return self._store.run(self._uow, work, write=write)
        except ConcurrencyError as err:
            self._conflicted(err)
            raise

    def _run_one(self, statement: str, params: Sequence[Any] = ()) -> int:
        """One writing statement (see :meth:`SqlStore.run_one`); its row count."""
        self._check_open()
        try:
            return self._store.run_one(self._uow, statement, params)
        except ConcurrencyError as err:
            self._conflicted(err)
            raise

    def _query(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._check_open()
        try:
            return self._store.query_once(self._uow, statement, params)
        except ConcurrencyError as err:
            self._conflicted(err)
            raise

    @contextmanager
    def _aborting(self, tx: AbstractContextManager[Cursor]) -> Iterator[Cursor]:
        try:
            with tx as cur:
                yield cur
        except ConcurrencyError as err:
            self._conflicted(err)
            raise

    def _conflicted(self, err: ConcurrencyError) -> None:
        """Mark the unit of work aborted when ``err`` is the backend's conflict (a deadlock, a
        serialization failure), not a stale version."""
        if self._roles is not None and isinstance(err.__cause__, self._store.conflict_errors):
            self._roles.aborted = True

    def _check_open(self) -> None:
        if self._roles is not None:
            c.check_unit_open(self._roles.ended, self._roles.aborted)


class SqlTickets(_Bound, TicketRepositoryBase):
    """:class:`~csmcore.storage.protocols.TicketRepository` over SQL."""

    _INSERT_TICKET = (
        "INSERT INTO csm_tickets (id, version, "
        + ", ".join(_TICKET_COLUMNS)
        + ") VALUES (?, ?, "
        + ", ".join("?" * len(_TICKET_COLUMNS))
        + ")"
    )
    _INSERT_EVENT = "INSERT INTO csm_events (ticket_id, seq, data) VALUES (?, ?, ?)"
    _INSERT_TAG = "INSERT INTO csm_ticket_tags (ticket_id, tag) VALUES (?, ?)"
    _SELECT_HISTORY = "SELECT data FROM csm_events WHERE ticket_id = ? ORDER BY seq"
    _BUMP_VERSION = "UPDATE csm_tickets SET version = ? WHERE id = ? AND version = ?"

    def _remember(self, tickets: list[Ticket]) -> None:
        """Cache tickets just written: now if committed, else when the unit of work commits."""
        if self._roles is None:
            self._store.cache.put(tickets)
        else:
            self._roles.written.extend(tickets)
            for ticket in tickets:
                self._roles.latest[ticket.id] = ticket

    def _add_many(self, batch: list[Ticket]) -> int:
        if not batch:
            return 0
        # rows in id order: two writers adding the same ids lock them in the same order, so
        # one waits for the other (and then finds the ids taken) instead of a deadlock
        batch = sorted(batch, key=_ID)
        ticket_rows = [(t.id, t.version, *summary_row(t)) for t in batch]
        tag_rows = [(t.id, tag) for t in batch for tag in sorted(t.tags)]
        event_rows = [
            (t.id, seq, sql._event_json(e)) for t in batch for seq, e in enumerate(t.events, 1)
        ]
        requester_rows = [row for t in batch for row in sql.requester_rows(None, t)]
        try:
            with self._tx(write=True) as cur:
                # Ids taken already are found first: a failing row inside psycopg's pipelined
                # executemany makes it log a warning (the result is the same).
                taken = self._taken([t.id for t in batch], cur.query)
                if taken is not None:
                    raise c.ticket_exists(taken)
                cur.run_many(self._INSERT_TICKET, ticket_rows)
                if tag_rows:
                    cur.run_many(self._INSERT_TAG, tag_rows)
                cur.run_many(self._INSERT_EVENT, event_rows)
                cur.run_many(sql.INSERT_REQUESTER, requester_rows)
            self._remember(batch)
        except StorageError as err:
            if self._store.is_unique_violation(err.__cause__):  # another writer's row
                taken = self._taken([t.id for t in batch])
                failure = (
                    c.conflict(f"one of the tickets {reprlib.repr([t.id for t in batch])}")
                    if taken is None
                    else c.ticket_exists(taken)
                )
                raise failure from err.__cause__
            raise
        return len(batch)

    def _taken(
        self,
        ids: list[str],
        query: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]] | None = None,
    ) -> str | None:
        """The first of the sorted ``ids`` that repeats or is stored (None: neither, now),
        read with ``query`` (a transaction's) or on its own."""
        for previous, current in itertools.pairwise(ids):
            if previous == current:
                return current
        clause, params = self._store.dialect.in_list("id", ids)
        rows = (query or self._query)(f"SELECT MIN(id) FROM csm_tickets WHERE {clause}", params)
        return rows[0][0] if rows and rows[0][0] is not None else None

    def _get(self, ticket_id: str) -> Ticket:
        rows = self._query(self._SELECT_HISTORY, [ticket_id])
        if not rows:
            raise c.no_ticket(ticket_id)
        ticket = sql._history([r[0] for r in rows])
        if self._roles is None:  # a committed state (inside a unit of work it may not be)
            self._store.cache.put([ticket])
        else:
            self._roles.latest[ticket_id] = ticket
        return ticket

    def _append(
        self, ticket_id: str, new_events: tuple[TicketEvent, ...], expected_version: int
    ) -> Ticket:
        # A history only grows, so a cached committed ticket at the expected version is the
        # stored one as long as the store is still at that version: apply the events to it
        # before taking any lock, and let the guarded UPDATE below confirm the version.
        current = None
        if self._roles is not None:
            # What this unit of work read or wrote last is what its transaction sees.
            seen = self._roles.latest.get(ticket_id)
            if seen is not None and seen.version == expected_version:
                current = seen
        if current is None:
            current = self._store.cache.get(ticket_id, expected_version)
        updated: Ticket | None = None
        if current is not None:
            try:
                updated = c.apply_all(current, new_events)
            except ValidationError:
                # maybe the events only fail on this version, and the store is past it: decide
                # below, after reading the stored history (a stale version is reported first)
                current = None

        def work(cur: Cursor) -> Ticket:
            if current is None or updated is None:
                stored = self._stored(cur, ticket_id, expected_version)
                return self._write_append(cur, stored, c.apply_all(stored, new_events))
            return self._write_append(cur, current, updated)

        try:
            updated = self._run(work, write=True)
            self._remember([updated])
        except StorageError as err:
            if self._store.is_unique_violation(err.__cause__):  # another writer's row
                raise c.conflict(f"ticket {ticket_id!r}") from err.__cause__
            raise
        return updated

    def _stored(self, cur: Cursor, ticket_id: str, expected_version: int) -> Ticket:
        """The stored ticket, read in one statement (its version and history agree), after
        checking that it exists and is at ``expected_version``."""
        rows = cur.query(self._SELECT_HISTORY, [ticket_id])
        if not rows:
            raise c.no_ticket(ticket_id)
        c.check_expected(ticket_id, len(rows), expected_version)
        return sql._history([r[0] for r in rows])

    def _write_append(self, cur: Cursor, current: Ticket, updated: Ticket) -> Ticket:
        """Write the events ``updated`` has beyond ``current`` and return ``updated``;
        ConcurrencyError (and nothing written) unless the store is still at
        ``current.version``."""
        ticket_id, version = current.id, current.version
        # set only the columns that changed: fewer index entries to rewrite
        changes: list[tuple[str, Any]] = []
        if _CHANGING(current) != _CHANGING(updated):
            before, after = summary_row(current), summary_row(updated)
            changes = [
                (col, new)
                for col, old, new in zip(_TICKET_COLUMNS, before, after, strict=True)
                if old != new
            ]
        if changes:
            assignments = "".join(f", {col} = ?" for col, _ in changes)
            bump = f"UPDATE csm_tickets SET version = ?{assignments} WHERE id = ? AND version = ?"
            params = [updated.version, *(v for _, v in changes), ticket_id, version]
        else:
            bump = self._BUMP_VERSION
            params = [updated.version, ticket_id, version]
        rows = [
            (ticket_id, seq, sql._event_json(e))
            for seq, e in enumerate(updated.events[version:], version + 1)
        ]
        combined = self._store.dialect.bump_and_insert(bump) if len(rows) == 1 else None
        if combined is not None:
            changed = cur.run(combined, [*params, rows[0][1], rows[0][2]])
        else:
            changed = cur.run(bump, params)
        if changed != 1:
            # the store has moved on: a cached ticket that is no longer the latest, or (on
            # PostgreSQL at read committed) a writer that committed after the history was read
            found = cur.query("SELECT version FROM csm_tickets WHERE id = ?", [ticket_id])
            if not found:
                raise c.no_ticket(ticket_id)
            c.check_expected(ticket_id, int(found[0][0]), version)
            raise c.conflict(f"ticket {ticket_id!r}")
        if combined is None:
            if len(rows) == 1:
                cur.run(self._INSERT_EVENT, rows[0])
            else:
                cur.run_many(self._INSERT_EVENT, rows)
        if current.tags is not updated.tags and current.tags != updated.tags:
            for tag in sorted(current.tags - updated.tags):
                cur.run(
                    "DELETE FROM csm_ticket_tags WHERE ticket_id = ? AND tag = ?", [ticket_id, tag]
                )
            added = [(ticket_id, tag) for tag in sorted(updated.tags - current.tags)]
            if added:
                cur.run_many(self._INSERT_TAG, added)
        requesters = sql.requester_rows(current, updated)  # [] unless an event can set one
        if requesters:
            cur.run_many(sql.INSERT_REQUESTER, requesters)
        return updated

    def _pages(
        self, condition: cd.Condition, page: int, requester: str | None = None
    ) -> Iterator[list[Ticket]]:
        """Matching tickets in id order, page by page (keyset pagination on id); only those of
        which ``requester`` was the requester at some instant, unless it is None.

        Each page is read with one statement, which picks the page's ids and reads their
        histories together: a writer committing in the middle cannot make the condition see one
        state of a ticket and the history another (PostgreSQL at read committed gives each
        statement, not each transaction, its own snapshot).
        """
        compiled = compile_condition(condition, self._store.dialect)
        where, selected = compiled.sql, list(compiled.params)
        if requester is not None:
            where = (
                f"({where}) AND t.id IN (SELECT r.ticket_id FROM csm_ticket_requesters r "
                "WHERE r.requester = ?)"
            )
            selected.append(requester)
        after: str | None = None
        while True:
            keyset = "" if after is None else " AND t.id > ?"
            params = [
                *selected,
                *([] if after is None else [after]),
                min(page, _MAX_INTEGER),
            ]
            rows = self._query(
                f"SELECT p.id, e.data FROM (SELECT t.id FROM csm_tickets t "
                f"WHERE {where}{keyset} ORDER BY t.id LIMIT ?) p "
                "LEFT JOIN csm_events e ON e.ticket_id = p.id ORDER BY p.id, e.seq",
                params,
            )
            if not rows:
                return
            texts: dict[str, list[str]] = {}
            for ticket_id, data in rows:
                found = texts.setdefault(ticket_id, [])
                if data is not None:  # a ticket row without events would be damage: skipped
                    found.append(data)
            after = rows[-1][0]
            tickets = [sql._history(found) for found in texts.values() if found]
            if not compiled.exact:
                tickets = [t for t in tickets if condition.matches(t)]
            if tickets:
                yield tickets
            if len(texts) < page:
                return

    def _find(self, condition: cd.Condition, limit: int | None) -> list[Ticket]:
        found: list[Ticket] = []
        page = 500 if limit is None else min(max(limit, 1), 500)
        for tickets in self._pages(condition, page):
            found.extend(tickets)
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    def _stream(
        self, condition: cd.Condition, batch_size: int, requester: str | None = None
    ) -> Iterator[list[Ticket]]:
        pending: list[Ticket] = []
        for tickets in self._pages(condition, batch_size, requester):
            pending.extend(tickets)
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                pending = pending[batch_size:]
        if pending:
            yield pending

    def _stream_by_requester(
        self, requester: str, condition: cd.Condition, batch_size: int
    ) -> Iterator[list[Ticket]]:
        """Selected in ``csm_ticket_requesters`` (an index by requester); a requester too long
        for it (never a member id) in Python."""
        if not sql.indexed_requester(requester):
            return super()._stream_by_requester(requester, condition, batch_size)
        return self._stream(condition, batch_size, requester)

    def _count(self, condition: cd.Condition) -> int:
        compiled = compile_condition(condition, self._store.dialect)
        if compiled.exact:
            rows = self._query(
                f"SELECT COUNT(*) FROM csm_tickets t WHERE {compiled.sql}", compiled.params
            )
            return int(rows[0][0])
        return sum(len(batch) for batch in self._pages(condition, 500))


class SqlDocuments(_Bound, DocumentRepositoryBase[Any]):
    """:class:`~csmcore.storage.protocols.VersionedRepository` over SQL."""

    def __init__(
        self, store: SqlStore, cur: Cursor | None, kind: str, roles: SqlRoles | None = None
    ) -> None:
        super().__init__(store, cur, roles)
        self._kind = kind
        self.role = storage_role(kind)

    def _latest(self, cur: Cursor, key: str) -> int:
        rows = cur.query(
            "SELECT MAX(version) FROM csm_documents WHERE kind = ? AND key = ?", [self._kind, key]
        )
        return int(rows[0][0] or 0)

    def _put(self, key: str, value: Any, expected_version: int) -> Versioned[Any]:
        data = dump_json(c.encode_document(value))  # ASCII: NUL and surrogates are escaped
        try:
            with self._tx(write=True) as cur:
                c.check_expected(key, self._latest(cur, key), expected_version, kind=self._kind)
                cur.run(
                    "INSERT INTO csm_documents (kind, key, version, data) VALUES (?, ?, ?, ?)",
                    [self._kind, key, expected_version + 1, data],
                )
        except StorageError as err:
            if self._store.is_unique_violation(err.__cause__):  # another writer's row
                raise c.conflict(f"{self._kind} {key!r}") from err.__cause__
            raise
        return Versioned(key=key, version=expected_version + 1, value=value)

    def _get(self, key: str, version: int | None) -> Versioned[Any]:
        if version is None:
            rows = self._query(
                "SELECT version, data FROM csm_documents WHERE kind = ? AND key = ? "
                "ORDER BY version DESC LIMIT 1",
                [self._kind, key],
            )
        else:
            # the version asked for and the latest, in one statement (one snapshot)
            rows = self._query(
                "SELECT version, data FROM csm_documents WHERE kind = ? AND key = ? "
                "AND version IN (?, (SELECT MAX(version) FROM csm_documents "
                "WHERE kind = ? AND key = ?)) ORDER BY version DESC",
                [self._kind, key, min(version, _MAX_INTEGER), self._kind, key],
            )
            if rows and int(rows[-1][0]) != version:
                raise c.no_document(self._kind, key, version, latest=int(rows[0][0]))
            rows = rows[-1:]
        if not rows:
            raise c.no_document(self._kind, key)
        number, data = rows[0]
        return Versioned(key=key, version=int(number), value=c.decode_document(json.loads(data)))

    def _history(self, key: str) -> list[Versioned[Any]]:
        rows = self._query(
            "SELECT version, data FROM csm_documents WHERE kind = ? AND key = ? ORDER BY version",
            [self._kind, key],
        )
        return [
            Versioned(key=key, version=int(n), value=c.decode_document(json.loads(d)))
            for n, d in rows
        ]

    def _keys(self) -> list[str]:
        rows = self._query(
            "SELECT DISTINCT key FROM csm_documents WHERE kind = ? ORDER BY key", [self._kind]
        )
        return [r[0] for r in rows]

    def _latest_versions(self) -> dict[str, int]:
        rows = self._query(
            "SELECT key, MAX(version) FROM csm_documents WHERE kind = ? GROUP BY key ORDER BY key",
            [self._kind],
        )
        return {r[0]: int(r[1]) for r in rows}


def _us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)


def _at(us: int | None) -> datetime | None:
    return None if us is None else from_us(int(us))


_FIRING_COLUMNS = "rule, rule_version, level, ticket_id, target, cycle, at_us, recorded_us"


def _firing_record(row: Sequence[Any]) -> FiringRecord:
    rule, version, level, ticket_id, target, cycle, at_us, recorded_us = row
    firing = Firing(
        rule=rule,
        rule_version=int(version),
        level=int(level),
        ticket_id=ticket_id,
        target=target,
        cycle=int(cycle),
        at=from_us(int(at_us)),
    )
    return FiringRecord(firing=firing, recorded_at=from_us(int(recorded_us)))


class SqlFirings(_Bound, FiringRepositoryBase):
    """:class:`~csmcore.storage.protocols.FiringRepository` over ``csm_firings`` and
    ``csm_ticket_plans``. ``record`` is ``INSERT ... ON CONFLICT DO NOTHING``: on PostgreSQL
    a second transaction inserting the same key waits for the first and then inserts nothing."""

    def _record(self, record: FiringRecord) -> bool:
        f = record.firing
        row = [
            f.key_text,
            f.rule,
            f.rule_version,
            f.level,
            f.ticket_id,
            f.target,
            f.cycle,
            to_us(f.at),
            to_us(record.recorded_at),
        ]
        count = self._run_one(
            f"INSERT INTO csm_firings (key, {_FIRING_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            row,
        )
        return count == 1

    def _keys(self, ticket_id: str) -> frozenset[FiringKey]:
        rows = self._query(
            "SELECT rule, rule_version, level, ticket_id, target, cycle FROM csm_firings "
            "WHERE ticket_id = ?",
            [ticket_id],
        )
        return frozenset((r[0], int(r[1]), int(r[2]), r[3], r[4], int(r[5])) for r in rows)

    def _list(self, ticket_id: str | None, limit: int | None) -> builtins.list[FiringRecord]:
        where, params = ("WHERE ticket_id = ? ", [ticket_id]) if ticket_id is not None else ("", [])
        tail = "" if limit is None else f" LIMIT {min(limit, _MAX_INTEGER):d}"
        rows = self._query(
            f"SELECT {_FIRING_COLUMNS} FROM csm_firings {where}ORDER BY at_us, key{tail}", params
        )
        return [_firing_record(r) for r in rows]

    def _plan(self, plan: TicketPlan) -> None:
        params = [plan.ticket_id, min(plan.version, _MAX_INTEGER), _us(plan.next_due)]
        self._run_one(
            "INSERT INTO csm_ticket_plans (ticket_id, version, next_due_us) VALUES (?, ?, ?) "
            "ON CONFLICT (ticket_id) DO UPDATE SET version = excluded.version, "
            "next_due_us = excluded.next_due_us "
            "WHERE csm_ticket_plans.version <= excluded.version",
            params,
        )

    def _planned(self, ticket_id: str) -> TicketPlan | None:
        rows = self._query(
            "SELECT version, next_due_us FROM csm_ticket_plans WHERE ticket_id = ?", [ticket_id]
        )
        if not rows:
            return None
        return TicketPlan(ticket_id=ticket_id, version=int(rows[0][0]), next_due=_at(rows[0][1]))

    def _due(self, at: datetime, limit: int | None) -> builtins.list[TicketPlan]:
        tail = "" if limit is None else f" LIMIT {min(limit, _MAX_INTEGER):d}"
        rows = self._query(
            "SELECT ticket_id, version, next_due_us FROM csm_ticket_plans "
            f"WHERE next_due_us <= ? ORDER BY next_due_us, ticket_id{tail}",
            [to_us(at)],
        )
        return [TicketPlan(ticket_id=r[0], version=int(r[1]), next_due=_at(r[2])) for r in rows]

    def _next_due(self) -> datetime | None:
        rows = self._query("SELECT MIN(next_due_us) FROM csm_ticket_plans")
        return _at(rows[0][0]) if rows else None


_OUTBOX_COLUMNS = (
    "key, state, attempts, next_attempt_us, created_us, delivered_us, last_error, request"
)


def _no_message(key: str) -> NotFound:
    return NotFound(f"no outbox message with key {key!r}")


def _message(row: Sequence[Any]) -> OutboxMessage:
    key, state, attempts, next_us, created_us, delivered_us, error, request = row
    return OutboxMessage(
        key=key,
        request=c.decode_document(json.loads(request)),
        state=OutboxState(state),
        attempts=int(attempts),
        next_attempt_at=from_us(int(next_us)),
        created_at=from_us(int(created_us)),
        delivered_at=_at(delivered_us),
        last_error=error,
    )


class SqlOutbox(_Bound, OutboxPagingBase):
    """:class:`~csmcore.storage.protocols.OutboxRepository` over ``csm_outbox``."""

    def _put(self, messages: builtins.list[OutboxMessage]) -> int:
        rows = [
            [
                m.key,
                m.state.value,
                m.attempts,
                to_us(m.next_attempt_at),
                to_us(m.created_at),
                _us(m.delivered_at),
                m.last_error,
                dump_json(c.encode_document(m.request)),
            ]
            for m in messages
        ]

        statement = (
            f"INSERT INTO csm_outbox ({_OUTBOX_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
        )
        if len(rows) == 1:
            return self._run_one(statement, rows[0])
        return self._run(lambda cur: sum(cur.run(statement, row) for row in rows), write=True)

    def _due(self, at: datetime, limit: int) -> builtins.list[OutboxMessage]:
        rows = self._query(
            f"SELECT {_OUTBOX_COLUMNS} FROM csm_outbox WHERE state = 'pending' AND "
            "next_attempt_us <= ? ORDER BY next_attempt_us, key "
            f"LIMIT {min(limit, _MAX_INTEGER):d}",
            [to_us(at)],
        )
        return [_message(r) for r in rows]

    def _due_after(
        self, at: datetime, after_at: datetime, after_key: str, limit: int
    ) -> builtins.list[OutboxMessage]:
        # (next_attempt_us, key) > (after, after_key): as a row value, the index on
        # (state, next_attempt_us, key) starts the page at the cursor, also inside a group of
        # messages tied on one instant; keys compare by code point as in _due (SQLite's BINARY
        # collation, PostgreSQL's "C")
        after_us = to_us(after_at)
        if self._store.dialect.row_values:
            where, params = "(next_attempt_us, key) > (?, ?)", [after_us, after_key]
        else:  # an SQLite before 3.15: the tied group is scanned
            where = "next_attempt_us >= ? AND (next_attempt_us > ? OR key > ?)"
            params = [after_us, after_us, after_key]
        rows = self._query(
            f"SELECT {_OUTBOX_COLUMNS} FROM csm_outbox WHERE state = 'pending' AND {where} "
            f"AND next_attempt_us <= ? ORDER BY next_attempt_us, key "
            f"LIMIT {min(limit, _MAX_INTEGER):d}",
            [*params, to_us(at)],
        )
        return [_message(r) for r in rows]

    def _exists(self, cur: Cursor, key: str) -> None:
        if not cur.query("SELECT 1 FROM csm_outbox WHERE key = ?", [key]):
            raise _no_message(key)

    def _claim(self, key: str, attempts: int, until: datetime) -> bool:
        if attempts >= _MAX_INTEGER:
            self._get(key)
            return False

        def work(cur: Cursor) -> bool:
            count = cur.run(
                "UPDATE csm_outbox SET attempts = ?, next_attempt_us = ? "
                "WHERE key = ? AND state = 'pending' AND attempts = ?",
                [attempts + 1, to_us(until), key, attempts],
            )
            if count == 0:
                self._exists(cur, key)
            return count == 1

        return self._run(work, write=True)

    def _update(
        self,
        key: str,
        state: OutboxState,
        next_attempt_at: datetime | None,
        delivered_at: datetime | None,
        error: str | None,
    ) -> None:
        sets = ["state = ?"]
        params: list[Any] = [state.value]
        for column, value in (
            ("next_attempt_us", _us(next_attempt_at)),
            ("delivered_us", _us(delivered_at)),
            ("last_error", error),
        ):
            if value is not None:
                sets.append(f"{column} = ?")
                params.append(value)

        def work(cur: Cursor) -> None:
            if (
                cur.run(f"UPDATE csm_outbox SET {', '.join(sets)} WHERE key = ?", [*params, key])
                == 0
            ):
                raise _no_message(key)

        self._run(work, write=True)

    def _get(self, key: str) -> OutboxMessage:
        rows = self._query(f"SELECT {_OUTBOX_COLUMNS} FROM csm_outbox WHERE key = ?", [key])
        if not rows:
            raise _no_message(key)
        return _message(rows[0])

    def _list(self, state: OutboxState | None, limit: int | None) -> builtins.list[OutboxMessage]:
        where, params = ("WHERE state = ? ", [state.value]) if state is not None else ("", [])
        tail = "" if limit is None else f" LIMIT {min(limit, _MAX_INTEGER):d}"
        rows = self._query(
            f"SELECT {_OUTBOX_COLUMNS} FROM csm_outbox {where}ORDER BY created_us, key{tail}",
            params,
        )
        return [_message(r) for r in rows]
