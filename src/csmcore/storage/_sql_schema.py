"""The SQL adapters' schema steps: the statements that take a store from each version to the
next (:func:`standard_migrations`, in each dialect's types) and the work done in Python after
some of them (:data:`DATA_MIGRATIONS`). The layout and :data:`~csmcore.storage._sql.SCHEMA_VERSION`
are described in :mod:`csmcore.storage._sql`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from csmcore.errors import CsmError
from csmcore.storage._sql import (
    INSERT_REQUESTER,
    Cursor,
    _history,
    fields_json,
    indexed_requester,
)


def standard_migrations(
    text: str, without_rowid: str = "", json_type: str = "TEXT", big: str = "INTEGER"
) -> tuple[tuple[str, ...], ...]:
    """The schema, as steps: ``[n]`` takes a store from version n to n + 1 (and, after its
    statements, :data:`DATA_MIGRATIONS` ``[n]`` fills what they added).

    ``text`` is the column type for strings (it must compare and sort by code point, like
    Python's ``str``); ``without_rowid`` is appended to tables clustered on their key;
    ``json_type`` is the type of the ``fields`` column; ``big`` an integer type of 64 bits.
    """
    return (
        (
            f"CREATE TABLE csm_meta (name {text} PRIMARY KEY, value {text} NOT NULL)",
            f"""CREATE TABLE csm_tickets (
                id {text} PRIMARY KEY,
                version INTEGER NOT NULL,
                status {text} NOT NULL,
                status_name {text} NOT NULL,
                priority {text} NOT NULL,
                priority_rank INTEGER NOT NULL,
                channel {text} NOT NULL,
                grp {text},
                assignee {text},
                requester {text} NOT NULL,
                created_by {text} NOT NULL,
                subject {text} NOT NULL,
                merged_into {text}){without_rowid}""",
            f"""CREATE TABLE csm_ticket_tags (
                ticket_id {text} NOT NULL,
                tag {text} NOT NULL,
                PRIMARY KEY (tag, ticket_id)){without_rowid}""",
            f"""CREATE TABLE csm_events (
                ticket_id {text} NOT NULL,
                seq INTEGER NOT NULL,
                data {text} NOT NULL,
                PRIMARY KEY (ticket_id, seq)){without_rowid}""",
            f"""CREATE TABLE csm_documents (
                kind {text} NOT NULL,
                key {text} NOT NULL,
                version INTEGER NOT NULL,
                data {text} NOT NULL,
                PRIMARY KEY (kind, key, version)){without_rowid}""",
        ),
        (
            "CREATE INDEX csm_tickets_status_priority ON csm_tickets (status, priority_rank)",
            "CREATE INDEX csm_ticket_tags_ticket ON csm_ticket_tags (ticket_id)",
        ),
        (),  # 3: rows name types by tag and carry their schema (old rows read as schema 1)
        (f"ALTER TABLE csm_tickets ADD COLUMN fields {json_type} NOT NULL DEFAULT '{{}}'",),
        (
            f"""CREATE TABLE csm_ledger (
                member_id {text} NOT NULL,
                seq INTEGER NOT NULL,
                key {text} NOT NULL,
                data {text} NOT NULL,
                PRIMARY KEY (member_id, seq)){without_rowid}""",
            "CREATE UNIQUE INDEX csm_ledger_key ON csm_ledger (member_id, key)",
        ),
        (),  # 5: a Decimal in csm_tickets.fields carries its bounds (fields rewritten)
        (
            f"""CREATE TABLE csm_firings (
                key {text} PRIMARY KEY,
                ticket_id {text} NOT NULL,
                rule {text} NOT NULL,
                rule_version {big} NOT NULL,
                level {big} NOT NULL,
                target {text},
                cycle {big} NOT NULL,
                at_us {big} NOT NULL,
                recorded_us {big} NOT NULL){without_rowid}""",
            "CREATE INDEX csm_firings_ticket ON csm_firings (ticket_id)",
            f"""CREATE TABLE csm_ticket_plans (
                ticket_id {text} PRIMARY KEY,
                version {big} NOT NULL,
                next_due_us {big}){without_rowid}""",
            "CREATE INDEX csm_ticket_plans_due ON csm_ticket_plans (next_due_us)",
            f"""CREATE TABLE csm_outbox (
                key {text} PRIMARY KEY,
                state {text} NOT NULL,
                attempts {big} NOT NULL,
                next_attempt_us {big} NOT NULL,
                created_us {big} NOT NULL,
                delivered_us {big},
                last_error {text},
                request {text} NOT NULL){without_rowid}""",
            "CREATE INDEX csm_outbox_due ON csm_outbox (state, next_attempt_us)",
        ),
        (  # 8: the due index ends with the key, so a cursor page (due_after) starts in it
            "CREATE INDEX csm_outbox_due_key ON csm_outbox (state, next_attempt_us, key)",
            "DROP INDEX csm_outbox_due",
        ),
        (  # 9: every requester each ticket had (filled from the histories)
            f"""CREATE TABLE csm_ticket_requesters (
                requester {text} NOT NULL,
                ticket_id {text} NOT NULL,
                PRIMARY KEY (requester, ticket_id)){without_rowid}""",
        ),
    )


def backfill_fields(cur: Cursor) -> None:
    """Migration steps 3 -> 4 and 5 -> 6: write each ticket's current custom fields into
    ``csm_tickets.fields``, 500 tickets at a time (a history that no longer decodes is left
    with ``{}``: the ticket cannot be read anyway)."""
    after = ""
    while True:
        rows = cur.query(
            "SELECT p.id, e.data FROM (SELECT id FROM csm_tickets WHERE id > ? ORDER BY id "
            "LIMIT 500) p JOIN csm_events e ON e.ticket_id = p.id ORDER BY p.id, e.seq",
            [after],
        )
        if not rows:
            return
        texts: dict[str, list[str]] = {}
        for ticket_id, data in rows:
            texts.setdefault(ticket_id, []).append(data)
        updates = []
        for ticket_id, found in texts.items():
            try:
                fields = _history(found).fields
            except CsmError:
                continue
            if fields:
                updates.append((fields_json(fields), ticket_id))
        if updates:
            cur.run_many("UPDATE csm_tickets SET fields = ? WHERE id = ?", updates)
        after = rows[-1][0]


def backfill_requesters(cur: Cursor) -> None:
    """Migration step 8 -> 9: write every requester of each ticket (``Ticket.requesters``, read
    from its history) into ``csm_ticket_requesters``, 500 tickets at a time; a history that no
    longer decodes keeps its current requester (the ticket cannot be read anyway)."""
    after = ""
    while True:
        rows = cur.query(
            "SELECT p.id, p.requester, e.data FROM (SELECT id, requester FROM csm_tickets "
            "WHERE id > ? ORDER BY id LIMIT 500) p JOIN csm_events e ON e.ticket_id = p.id "
            "ORDER BY p.id, e.seq",
            [after],
        )
        if not rows:
            return
        texts: dict[str, tuple[str, list[str]]] = {}
        for ticket_id, requester, data in rows:
            texts.setdefault(ticket_id, (requester, []))[1].append(data)
        inserts: list[tuple[str, str]] = []
        for ticket_id, (requester, found) in texts.items():
            try:
                requesters: tuple[str, ...] = _history(found).requesters
            except CsmError:
                requesters = (requester,)
            inserts.extend((r, ticket_id) for r in requesters if indexed_requester(r))
        cur.run_many(INSERT_REQUESTER, inserts)
        after = rows[-1][0]


DATA_MIGRATIONS: Mapping[int, Callable[[Cursor], None]] = {
    3: backfill_fields,
    5: backfill_fields,
    8: backfill_requesters,
}
"""Work done in Python after the statements of a migration step (by the step's number)."""
