"""Escalation engine: planning every ticket and one engine pass at a busy instant, next to
evaluating the same tickets' SLAs alone (issue 13).

Run from the repository root::

    .venv/bin/python benchmarks/bench_escalation.py            # 100,000 open tickets
    .venv/bin/python benchmarks/bench_escalation.py --quick    # 10,000 tickets, a smoke run
    .venv/bin/python benchmarks/bench_escalation.py 50000      # any number of tickets

The workload: N open tickets created over the eight hours before a busy instant (a Tuesday
17:00 UTC), by email or chat, at four priorities, a third of them assigned, a quarter with an
agent reply, judged against a book of one policy (first reply 4 h, agent work 8 h, on a
Monday-Friday 08:00-18:00 calendar) and ten rules: percentages of the first reply (50, 75,
100, 150 %), offsets from agent work's due time (before 1 h, after 0, after 2 business
hours), urgent and unassigned held for 30 minutes, any target breached, a VIP tag rule.

No Python library runs escalation rules against a store, so the reference is csmcore's own
SLA evaluation of the same tickets (``SlaBook.evaluate`` at the busy instant), in the same
run: the issue's goal is a full engine pass within 2x of it. Measured, on memory and SQLite:

- ``SLA evaluate``: every ticket judged once at the busy instant (tickets in memory);
- ``next_due (pure)``: :func:`csmcore.escalation.next_due` of every ticket (in memory);
- ``plan_all``: the engine planning every ticket of the store: read, next_due, write the
  schedule (``csmcore.services.EscalationEngine.plan_all``);
- ``catch-up pass``: one engine pass at the busy instant over a freshly planned store, as
  after an outage since the tickets were created: every ticket with a firing due by then
  runs (6,696 of 10,000; the others were created too recently) and every firing since its
  creation fires (about 2.5 per ticket of the store): run_ticket, ticket events, firing
  records, outbox messages, the new schedule, committed 100 tickets per unit of work. This
  is the full pass the goal is judged on;
- ``writes alone``: the floor of the catch-up pass's storage side. What the pass wrote is
  read back from its store (each ticket's events beyond its version before the pass, its
  firing records, the outbox messages by the firing's key, its new plan) and written again,
  with no walk, to a store holding the same tickets and plans as before the pass, grouped as
  the engine groups them: the tickets due, in the order of their plans, 100 per unit of work
  (the engine's ``batch_size``), per firing its record, one ``append`` of its events with the
  expected version, one outbox ``put`` per message (``OutboxMessage.new``, as the engine's
  handler), then the ticket's plan. On SQLite an ``append`` to a ticket the unit of work has
  not read reads its history first, unless the store's cache of committed tickets (4,096)
  holds it: the engine's pass has read it (``get``). After the last repeat the store is
  checked to hold exactly what the pass wrote;
- ``raw sqlite3, the same rows`` (SQLite only): what any implementation pays to write those
  rows durably on SQLite. Stdlib ``sqlite3``, no csmcore: a new file each repeat with
  csmcore's settings (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``) and csmcore's four
  tables of what the pass writes (``csm_firings``, ``csm_events``, ``csm_outbox``,
  ``csm_ticket_plans``: the same columns, keys and indexes, checked), holding the events and
  plans of before the pass; the rows the pass stored in them (read from its store, so the JSON
  texts are csmcore's, ready before the clock starts) are written with the same statements
  (``INSERT ... ON CONFLICT DO NOTHING``, the plan's upsert), in the same order and in the same
  67 transactions. Nothing is read, encoded or checked: no history read before an append, no
  version check of the events (csmcore's guarded ``UPDATE csm_tickets``), no ticket row,
  tag or requester row written, no cache. After the last repeat the file's four tables are
  checked equal to the pass's store's. ``--raw-variants`` also times the same statements in one
  transaction, and in the 67 with ``synchronous=NORMAL`` and ``OFF`` (not what csmcore does:
  what the reference is made of), and counts the pages they append to the write-ahead log;
- ``store calls alone``: the same, with the reads the pass makes: ``due`` (inside the timed
  run), and in each unit of work ``tickets.get`` and ``firings.keys`` of each ticket (the
  appends then build on the ticket read, as in the pass). Only the plan basis's read and
  write (one each per pass) are left out;
- ``steady pass``: one engine planned every ticket and ran five minutes before the busy
  instant (untimed), and runs again at it, as a host keeps it running: only the tickets due
  in those five minutes are read and run, each walk going on from where the engine's last
  one stopped (``EscalationEngine(remember=...)``). Printed per ticket run, against one SLA
  evaluation per ticket. The catch-up pass uses a new engine, as after a restart;
- ``engine next_due``: after the steady pass, ``EscalationEngine.next_due`` (the earliest
  plan, what a host asks to schedule its next wake-up), per call.

Each step is timed by wall clock, best of ``--repeats`` (a pass needs a fresh store, so it is
built again, untimed, before each repeat), with the garbage collector collected before and
disabled during each timed run, as in the other benchmarks (``_common.best_of``) and
``timeit``. Requirements: none beyond csmcore.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import random
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from _common import best_of, environment_lines, heading
from csmcore import BusinessCalendar
from csmcore.conditions import Always, Condition, Eq, Field, HasTags
from csmcore.escalation import (
    AddNote,
    AddTags,
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    Firing,
    NotificationRequest,
    Notify,
    PercentUsed,
    SetPriority,
    next_due,
)
from csmcore.services import EngineRun, EscalationEngine
from csmcore.sla import SlaBook, SlaPolicy, SlaTarget
from csmcore.storage import OutboxMessage, Store, TicketPlan, open_store, role_of
from csmcore.tickets import Channel, Priority, Role, Ticket, TicketEvent

BUSY = datetime(2025, 1, 7, 17, tzinfo=timezone.utc)
"""The busy instant: a Tuesday, 17:00 UTC, an hour before the calendar closes."""
STEADY = timedelta(minutes=5)
"""The steady pass: the engine ran this long before the busy instant, and runs again at it."""

CAL = BusinessCalendar.weekly("08:00", "18:00", days="mon-fri", timezone="UTC")
BOOK = SlaBook(
    calendar=CAL,
    policies=[
        SlaPolicy(
            name="std",
            position=1,
            default=True,
            targets=[
                SlaTarget(metric="first_reply", within=timedelta(hours=4)),
                SlaTarget(metric="agent_work", within=timedelta(hours=8)),
            ],
        )
    ],
)


def _notify(template: str) -> Notify:
    return Notify(channel="email", recipient="$group", template=template)


def _rule(
    name: str, trigger: Any, *actions: Any, condition: Condition | None = None
) -> EscalationRule:
    return EscalationRule(
        name=name,
        condition=Always() if condition is None else condition,
        levels=[EscalationLevel(trigger=trigger, actions=list(actions))],
    )


RULES = [
    _rule("fr-50", PercentUsed(target="first_reply", percent=50), _notify("fr50")),
    _rule("fr-75", PercentUsed(target="first_reply", percent=75), AddTags(tags={"fr75"})),
    _rule(
        "fr-100",
        PercentUsed(target="first_reply", percent=100),
        SetPriority(priority="urgent"),
        _notify("fr100"),
    ),
    _rule("fr-150", PercentUsed(target="first_reply", percent=150), AddNote(text="late")),
    _rule("aw-before", DueOffset.before("agent_work", timedelta(hours=1)), _notify("aw-1h")),
    _rule("aw-after", DueOffset.after("agent_work"), _notify("aw-breach")),
    _rule(
        "aw-after-2h",
        DueOffset.after("agent_work", timedelta(hours=2), business_hours=True),
        _notify("aw-page"),
    ),
    _rule(
        "urgent-unassigned",
        ConditionHeld(duration=timedelta(minutes=30)),
        _notify("unassigned"),
        condition=Eq("priority", "urgent") & Eq("assignee", None),
    ),
    _rule(
        "any-breach",
        ConditionHeld(duration=timedelta(minutes=10)),
        AddTags(tags={"breached"}),
        condition=Eq("sla.any_breached", True),
    ),
    _rule(
        "vip",
        PercentUsed(target="first_reply", percent=25),
        _notify("vip"),
        condition=HasTags({"vip"}) & (Field("priority") >= "normal"),
    ),
]

PRIORITIES = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]


def make_tickets(count: int, seed: int = 13) -> list[Ticket]:
    rng = random.Random(seed)
    out = []
    for n in range(count):
        created = BUSY - timedelta(minutes=rng.randrange(10, 8 * 60))
        ticket, _ = Ticket.create(
            at=created,
            ticket_id=f"T-{n:07d}",
            created_by=Role.REQUESTER,
            channel=rng.choice([Channel.EMAIL, Channel.CHAT]),
            priority=rng.choice(PRIORITIES),
            requester=f"c{n}@example.com",
            tags={"vip"} if rng.random() < 0.1 else (),
        )
        when = created
        if rng.random() < 0.33:
            when += timedelta(minutes=rng.randrange(1, 20))
            ticket, _ = ticket.assign(when, f"agent{rng.randrange(20)}")
        if rng.random() < 0.25:
            when += timedelta(minutes=rng.randrange(1, 60))
            if when < BUSY:
                ticket, _ = ticket.comment(when, Role.AGENT)
        out.append(ticket)
    return out


def timed(
    label: str,
    count: int,
    func: Callable[[], object],
    repeats: int,
    setup: Callable[[], None] | None = None,
) -> float:
    # Each repeat gets its setup (untimed), then one run timed by _common.best_of: the
    # garbage collector collected before and disabled during it, as in the other benchmarks.
    runs: list[float] = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        runs.extend(best_of(func, repeats=1))
    best = min(runs)
    print(
        f"  {label:<40} {best:9.3f} s  {best / count * 1e6:9.1f} µs/ticket  "
        f"({count:,} tickets, best of {len(runs)}, worst {max(runs):.3f} s)"
    )
    return best


BATCH: int = inspect.signature(EscalationEngine).parameters["batch_size"].default
"""Tickets per unit of work in an engine pass (the engine's default ``batch_size``)."""


@dataclass(frozen=True)
class FiringWrites:
    """What the engine wrote for one firing: its record, the events it appended (one
    ``append`` with the expected version, when there are any) and its outbox messages."""

    firing: Firing
    recorded_at: datetime
    events: tuple[TicketEvent, ...]
    messages: tuple[OutboxMessage, ...]


@dataclass(frozen=True)
class TicketWrites:
    """What a pass wrote for one ticket, read back from the store after it: its firings in
    the order the engine applied them, and its new plan. ``version`` is the ticket's version
    before the pass (the first ``append``'s expected version)."""

    ticket_id: str
    version: int
    firings: tuple[FiringWrites, ...]
    plan: TicketPlan | None


def pass_writes(store: Store, before: list[Ticket]) -> dict[str, TicketWrites]:
    """Read back what a pass wrote to ``store`` for the tickets ``before`` (as they were
    before it): each ticket's events beyond its version then, its firing records, the outbox
    messages (keyed by the firing's key text and the action's index) and its plan.

    The engine applies a ticket's firings in the walk's order (by instant, then rule order
    and level) and appends each firing's events in one call; an event is the firing's whose
    rule its actor names (``escalation:<rule>``), the latest such firing due by the event's
    instant. Raises AssertionError when an event or a message matches no firing."""
    firings = role_of(store, "firings")
    by_firing: dict[str, list[OutboxMessage]] = {}
    for message in role_of(store, "outbox").list():
        key_text, _, _ = message.key.rpartition("/")
        by_firing.setdefault(key_text, []).append(message)
    order = {rule.name: i for i, rule in enumerate(RULES)}
    out: dict[str, TicketWrites] = {}
    for ticket in before:
        records = sorted(
            firings.list(ticket_id=ticket.id),
            key=lambda r: (r.firing.at, order[r.firing.rule], r.firing.level),
        )
        events: list[list[TicketEvent]] = [[] for _ in records]
        last = 0
        for event in store.tickets.get(ticket.id).events[ticket.version :]:
            rule = (event.actor or "").removeprefix("escalation:")
            found = [
                i
                for i in range(last, len(records))
                if records[i].firing.rule == rule and records[i].firing.at <= event.at
            ]
            if not found:
                raise AssertionError(f"{ticket.id}: no firing appended {event!r}")
            last = found[-1]
            events[last].append(event)
        applied = []
        for record, appended in zip(records, events, strict=True):
            messages = by_firing.pop(record.firing.key_text, [])
            messages.sort(key=lambda m: int(m.key.rpartition("/")[2]))
            applied.append(
                FiringWrites(record.firing, record.recorded_at, tuple(appended), tuple(messages))
            )
        out[ticket.id] = TicketWrites(
            ticket.id, ticket.version, tuple(applied), firings.planned(ticket.id)
        )
    if by_firing:
        raise AssertionError(f"outbox messages of no firing: {sorted(by_firing)[:3]}")
    return out


def write_again(
    store: Store,
    ids: list[str],
    writes: dict[str, TicketWrites],
    *,
    reads: bool = False,
) -> None:
    """Apply ``writes`` to ``store`` as the engine's pass applied them, with no walk: the
    tickets ``ids`` (in the order of the pass's due plans) ``BATCH`` per unit of work; per
    ticket, per firing, its record, one ``append`` of its events with the expected version,
    one outbox ``put`` per message (``OutboxMessage.new``, as the engine's handler), then the
    ticket's plan. ``reads`` adds the reads the engine makes in the unit of work: the ticket
    (``tickets.get``) and its recorded keys (``firings.keys``)."""
    for start in range(0, len(ids), BATCH):
        with store.unit_of_work() as uow:
            firings = role_of(uow, "firings")
            for ticket_id in ids[start : start + BATCH]:
                done = writes[ticket_id]
                version = done.version
                if reads:
                    version = uow.tickets.get(ticket_id).version
                    firings.keys(ticket_id)
                for applied in done.firings:
                    if not firings.record(applied.firing, recorded_at=applied.recorded_at):
                        raise AssertionError(f"recorded twice: {applied.firing.key_text}")
                    if applied.events:
                        version = uow.tickets.append(
                            ticket_id, applied.events, expected_version=version
                        ).version
                    for message in applied.messages:
                        request: NotificationRequest = message.request
                        role_of(uow, "outbox").put(
                            [OutboxMessage.new(request, created_at=message.created_at)]
                        )
                plan = done.plan
                if plan is not None:
                    firings.plan(ticket_id, version=plan.version, next_due=plan.next_due)


# The raw reference: stdlib sqlite3, no csmcore. The tables of csmcore's SQLite store that an
# escalation pass writes to (src/csmcore/storage/_sql_schema.py, schema version 9, in SQLite's
# types: TEXT, WITHOUT ROWID): the same columns, keys and indexes (checked against the
# benchmark's store before the timed runs).
RAW_COLUMNS = {
    "csm_events": "ticket_id, seq, data",
    "csm_firings": ("key, ticket_id, rule, rule_version, level, target, cycle, at_us, recorded_us"),
    "csm_outbox": (
        "key, state, attempts, next_attempt_us, created_us, delivered_us, last_error, request"
    ),
    "csm_ticket_plans": "ticket_id, version, next_due_us",
}
RAW_SCHEMA = (
    "CREATE TABLE csm_events (ticket_id TEXT NOT NULL, seq INTEGER NOT NULL, "
    "data TEXT NOT NULL, PRIMARY KEY (ticket_id, seq)) WITHOUT ROWID",
    "CREATE TABLE csm_firings (key TEXT PRIMARY KEY, ticket_id TEXT NOT NULL, "
    "rule TEXT NOT NULL, rule_version INTEGER NOT NULL, level INTEGER NOT NULL, target TEXT, "
    "cycle INTEGER NOT NULL, at_us INTEGER NOT NULL, recorded_us INTEGER NOT NULL) "
    "WITHOUT ROWID",
    "CREATE INDEX csm_firings_ticket ON csm_firings (ticket_id)",
    "CREATE TABLE csm_ticket_plans (ticket_id TEXT PRIMARY KEY, version INTEGER NOT NULL, "
    "next_due_us INTEGER) WITHOUT ROWID",
    "CREATE INDEX csm_ticket_plans_due ON csm_ticket_plans (next_due_us)",
    "CREATE TABLE csm_outbox (key TEXT PRIMARY KEY, state TEXT NOT NULL, "
    "attempts INTEGER NOT NULL, next_attempt_us INTEGER NOT NULL, created_us INTEGER NOT NULL, "
    "delivered_us INTEGER, last_error TEXT, request TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX csm_outbox_due_key ON csm_outbox (state, next_attempt_us, key)",
)
RAW_EVENT = "INSERT INTO csm_events (ticket_id, seq, data) VALUES (?, ?, ?)"
RAW_FIRING = (
    f"INSERT INTO csm_firings ({RAW_COLUMNS['csm_firings']}) VALUES "
    "(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)
RAW_OUTBOX = (
    f"INSERT INTO csm_outbox ({RAW_COLUMNS['csm_outbox']}) VALUES "
    "(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"
)
RAW_PLAN = (  # csmcore's upsert of a plan
    "INSERT INTO csm_ticket_plans (ticket_id, version, next_due_us) VALUES (?, ?, ?) "
    "ON CONFLICT (ticket_id) DO UPDATE SET version = excluded.version, "
    "next_due_us = excluded.next_due_us WHERE csm_ticket_plans.version <= excluded.version"
)

Row = tuple[Any, ...]


class RawOp(NamedTuple):
    """One statement of the raw writes: ``executemany`` of ``rows`` when ``many``, else
    ``execute`` with ``rows`` as its parameters."""

    statement: str
    rows: Any
    many: bool


def table_rows(path: str, tables: tuple[str, ...] = tuple(RAW_COLUMNS)) -> dict[str, list[Row]]:
    """The rows of ``tables`` (their :data:`RAW_COLUMNS`) in the SQLite file ``path``, sorted."""
    conn = sqlite3.connect(path)
    try:
        return {
            t: conn.execute(f"SELECT {RAW_COLUMNS[t]} FROM {t} ORDER BY 1, 2").fetchall()
            for t in tables
        }
    finally:
        conn.close()


def table_shapes(path: str) -> dict[str, object]:
    """Each :data:`RAW_COLUMNS` table's columns (name, type, not null, key) and indexes (name,
    unique, columns) in the SQLite file ``path``."""
    conn = sqlite3.connect(path)
    try:
        shapes: dict[str, object] = {}
        for table in RAW_COLUMNS:
            columns = [r[1:4] + r[5:6] for r in conn.execute(f"PRAGMA table_info({table})")]
            indexes = sorted(
                (r[1], r[2], [c[2] for c in conn.execute(f"PRAGMA index_info({r[1]})")])
                for r in conn.execute(f"PRAGMA index_list({table})")
                if r[3] == "c"  # created by CREATE INDEX (not the primary key's)
            )
            shapes[table] = (columns, indexes)
        return shapes
    finally:
        conn.close()


def raw_units(
    after: dict[str, list[Row]], ids: list[str], writes: dict[str, TicketWrites]
) -> list[list[RawOp]]:
    """The statements of :func:`write_again` as raw sqlite3 statements, one list per unit of
    work (``BATCH`` tickets): per firing its ``csm_firings`` row, its events' ``csm_events``
    rows (one ``executemany`` for several), one ``csm_outbox`` row per message, then the
    ticket's plan (an upsert). The rows are those the pass stored (``after``: its store's
    tables), so their JSON texts are csmcore's, ready before the clock starts."""
    events = {(r[0], r[1]): r for r in after["csm_events"]}
    firings = {r[0]: r for r in after["csm_firings"]}
    outbox = {r[0]: r for r in after["csm_outbox"]}
    plans = {r[0]: r for r in after["csm_ticket_plans"]}
    units: list[list[RawOp]] = []
    for start in range(0, len(ids), BATCH):
        unit: list[RawOp] = []
        for ticket_id in ids[start : start + BATCH]:
            done = writes[ticket_id]
            seq = done.version
            for applied in done.firings:
                unit.append(RawOp(RAW_FIRING, firings[applied.firing.key_text], False))
                if applied.events:
                    rows = [events[ticket_id, seq + i] for i in range(1, len(applied.events) + 1)]
                    seq += len(rows)
                    unit.append(
                        RawOp(RAW_EVENT, rows[0], False)
                        if len(rows) == 1
                        else RawOp(RAW_EVENT, rows, True)
                    )
                unit.extend(RawOp(RAW_OUTBOX, outbox[m.key], False) for m in applied.messages)
            if done.plan is not None:
                unit.append(RawOp(RAW_PLAN, plans[ticket_id], False))
        units.append(unit)
    return units


def raw_file(
    path: str, before: dict[str, list[Row]], synchronous: str = "FULL"
) -> sqlite3.Connection:
    """A new SQLite file at ``path`` with csmcore's settings (autocommit connection, WAL,
    ``synchronous=FULL`` unless told), :data:`RAW_SCHEMA` and the events and plans of
    ``before`` (the store before the pass), committed."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("BEGIN IMMEDIATE")
    for statement in RAW_SCHEMA:
        conn.execute(statement)
    conn.executemany(RAW_EVENT, before["csm_events"])
    conn.executemany(
        "INSERT INTO csm_ticket_plans (ticket_id, version, next_due_us) VALUES (?, ?, ?)",
        before["csm_ticket_plans"],
    )
    conn.execute("COMMIT")
    return conn


def wal_frames(path: str, before: dict[str, list[Row]], units: list[list[RawOp]]) -> int:
    """How many pages (WAL frames) :func:`raw_write` of ``units`` appends to the write-ahead
    log of a new :func:`raw_file` at ``path``, with its automatic checkpoints off."""
    conn = raw_file(path, before)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        raw_write(conn, units)
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        return (os.path.getsize(f"{path}-wal") - 32) // (page + 24)  # header; frame headers
    finally:
        conn.close()


def raw_write_last(conns: list[sqlite3.Connection], units: list[list[RawOp]]) -> None:
    """:func:`raw_write` on the last of ``conns`` (the file its setup opened)."""
    raw_write(conns[-1], units)


def raw_write(conn: sqlite3.Connection, units: list[list[RawOp]]) -> None:
    """Run ``units``, each in one transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, as csmcore's
    units of work): nothing read, encoded or checked."""
    execute, execute_many = conn.execute, conn.executemany
    for unit in units:
        execute("BEGIN IMMEDIATE")
        for statement, rows, many in unit:
            if many:
                execute_many(statement, rows)
            else:
                execute(statement, rows)
        execute("COMMIT")


@dataclass(frozen=True)
class Results:
    """The best times (seconds) of one store's steps, and how many tickets the steady pass
    ran."""

    plan: float
    catch_up: float
    writes: float
    store_calls: float
    steady: float
    steady_tickets: int
    raw: float | None = None
    """SQLite: the raw sqlite3 reference (the same rows, no csmcore); None on memory."""


def bench_store(
    kind: str, tickets: list[Ticket], tmp: str, repeats: int, variants: bool = False
) -> Results:
    """Time plan_all, a catch-up pass, its writes alone, its store calls alone and a steady
    pass on a store of ``kind``."""
    print(heading(f"{kind} store"))
    count = len(tickets)
    state: dict[str, Store] = {}
    paths: dict[str, str] = {}  # SQLite: the file of the latest store

    def fresh() -> None:
        old = state.pop("store", None)
        if old is not None:
            old.close()
        paths["db"] = f"{tmp}/{os.urandom(6).hex()}.db"
        state["store"] = open_store("memory://" if kind == "memory" else f"sqlite:///{paths['db']}")
        state["store"].tickets.add_many(tickets)

    def planned() -> None:
        fresh()
        EscalationEngine(state["store"], BOOK, RULES).plan_all()

    plan = timed(
        "plan_all (next_due of every ticket)",
        count,
        lambda: EscalationEngine(state["store"], BOOK, RULES).plan_all(),
        repeats,
        setup=fresh,
    )
    fired: list[int] = []

    def one_pass() -> None:
        run = EscalationEngine(state["store"], BOOK, RULES).run(BUSY)
        fired.append(len(run.firings))

    passed = timed(
        "catch-up pass (every firing since creation)",
        count,
        one_pass,
        repeats,
        setup=planned,
    )
    messages = len(role_of(state["store"], "outbox").list())
    print(f"  firings in the pass: {fired[-1]:,}; outbox messages written: {messages:,}")
    after = table_rows(paths["db"]) if kind == "sqlite" else {}  # what the pass stored

    # The pass's writes alone: what it wrote, read back, applied again to the store as it
    # was before the pass, grouped as the engine groups them, with no walk.
    writes = pass_writes(state["store"], tickets)
    appends = sum(1 for w in writes.values() for f in w.firings if f.events)
    ids: list[str] = []
    before: dict[str, list[Row]] = {}

    def before_pass() -> None:
        planned()
        ids[:] = [p.ticket_id for p in role_of(state["store"], "firings").due(BUSY)]
        if kind == "sqlite" and not before:  # the events and plans before the pass
            before.update(table_rows(paths["db"], ("csm_events", "csm_ticket_plans")))

    def check() -> None:  # untimed: the store holds exactly what the pass wrote
        if pass_writes(state["store"], tickets) != writes:
            raise AssertionError("writing again did not give what the pass wrote")

    alone = timed(
        "writes alone (the pass's, no walk)",
        count,
        lambda: write_again(state["store"], ids, writes),
        repeats,
        setup=before_pass,
    )
    check()
    raw = (
        None
        if kind == "memory"
        else bench_raw(paths["db"], after, before, ids, writes, repeats, variants)
    )
    calls = timed(
        "store calls alone (+ get, keys, due)",
        count,
        lambda: write_again(
            state["store"],
            [p.ticket_id for p in role_of(state["store"], "firings").due(BUSY)],
            writes,
            reads=True,
        ),
        repeats,
        setup=planned,
    )
    check()
    print(
        f"  written again: {len(ids):,} tickets, {-(-len(ids) // BATCH):,} units of work, "
        f"{sum(len(w.firings) for w in writes.values()):,} records, {appends:,} appends, "
        f"{messages:,} outbox puts, {len(ids):,} plans (the store of each one's last repeat "
        "checked equal to the pass's)"
    )

    engines: dict[str, EscalationEngine] = {}

    def up_to_date() -> None:
        # One engine, as a host keeps it: it planned every ticket and ran before.
        fresh()
        engine = engines["up"] = EscalationEngine(state["store"], BOOK, RULES)
        engine.plan_all()
        engine.run(BUSY - STEADY)

    ran: list[EngineRun] = []
    steady = timed(
        f"steady pass (the engine ran {STEADY.seconds // 60} min before)",
        count,
        lambda: ran.append(engines["up"].run(BUSY)),
        repeats,
        setup=up_to_date,
    )
    last = ran[-1]
    print(
        f"  tickets due and run in the steady pass: {last.tickets:,}; firings: "
        f"{len(last.firings):,} ({steady / max(last.tickets, 1) * 1e6:.1f} µs per ticket run)"
    )
    # What a host asks after each pass to schedule its next wake-up: the earliest plan.
    asks = 100
    runs = best_of(lambda: [engines["up"].next_due() for _ in range(asks)], repeats=repeats)
    print(
        f"  {'engine next_due (the earliest plan)':<40} {min(runs) / asks * 1e6:9.1f} µs/call  "
        f"({count:,} plans, {asks} calls, best of {len(runs)})"
    )
    # The same with the rules read from the store (rules=None): each call lists the rules
    # role's latest versions and reads only the documents that changed (LatestVersions).
    store = state["store"]
    for index, rule in enumerate(RULES):
        store.rules.put(f"rule-{index:02d}", rule, expected_version=0)
    from_store = EscalationEngine(store, BOOK)
    from_store.next_due()  # the same rules in the same order: the same basis, nothing planned
    runs = best_of(lambda: [from_store.next_due() for _ in range(asks)], repeats=repeats)
    print(
        f"  {'engine next_due, rules from the store':<40} {min(runs) / asks * 1e6:9.1f} µs/call  "
        f"({len(RULES)} stored rules, {asks} calls, best of {len(runs)})"
    )
    store.close()
    return Results(plan, passed, alone, calls, steady, max(last.tickets, 1), raw)


def bench_raw(
    store_path: str,
    after: dict[str, list[Row]],
    before: dict[str, list[Row]],
    ids: list[str],
    writes: dict[str, TicketWrites],
    repeats: int,
    variants: bool = False,
) -> float:
    """Time the raw sqlite3 reference: the rows the pass stored in ``csm_firings``,
    ``csm_events``, ``csm_outbox`` and ``csm_ticket_plans`` (``after``), written with stdlib
    sqlite3 to a new file each repeat holding the events and plans from ``before`` the pass, in
    the pass's 67 units of work, as :func:`raw_units` lists them. After the last repeat the
    file's four tables are checked equal to the pass's store's. ``variants`` also times, not
    as csmcore writes, the same statements in one transaction, and in the 67 transactions with
    ``synchronous=NORMAL`` (in WAL mode: no sync at commit) and ``OFF``."""
    units = raw_units(after, ids, writes)
    conns: list[sqlite3.Connection] = []
    folder = os.path.dirname(store_path)
    synchronous = ["FULL"]

    def new_file() -> None:
        if conns:
            conns.pop().close()
        name = f"{folder}/raw-{os.urandom(6).hex()}.db"
        conns.append(raw_file(name, before, synchronous[0]))

    new_file()
    if table_shapes(conns[0].execute("PRAGMA database_list").fetchone()[2]) != table_shapes(
        store_path
    ):
        raise AssertionError("the raw tables are not shaped like csmcore's")
    count = len({r[0] for r in before["csm_ticket_plans"]})
    seconds = timed(
        "raw sqlite3, the same rows (no csmcore)",
        count,
        lambda: raw_write(conns[0], units),
        repeats,
        setup=new_file,
    )
    conn = conns.pop()
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    conn.close()
    if table_rows(path) != after:
        raise AssertionError("the raw file does not hold what the pass stored")
    if variants:
        one = [[op for unit in units for op in unit]]
        for label, sync, grouped in (
            ("  raw, in one transaction", "FULL", one),
            ("  raw, synchronous=NORMAL", "NORMAL", units),
            ("  raw, synchronous=OFF", "OFF", units),
        ):
            synchronous[0] = sync
            timed(
                label, count, functools.partial(raw_write_last, conns, grouped), repeats, new_file
            )
        conns.pop().close()
        frames = [
            wal_frames(f"{folder}/raw-{os.urandom(6).hex()}.db", before, g) for g in (units, one)
        ]
        print(
            f"  raw, pages appended to the WAL (untimed, automatic checkpoints off): "
            f"{frames[0]:,} in {len(units)} transactions ({frames[0] / len(units):,.0f} per "
            f"commit), {frames[1]:,} in one"
        )
    ops = [op for unit in units for op in unit]
    by = {kind: [op for op in ops if op.statement == kind] for kind in (RAW_FIRING, RAW_EVENT)}
    events = sum(len(op.rows) if op.many else 1 for op in by[RAW_EVENT])
    print(
        f"  raw: {len(units):,} transactions; csm_firings {len(by[RAW_FIRING]):,} inserts, "
        f"csm_events {events:,} rows in {len(by[RAW_EVENT]):,} statements, csm_outbox "
        f"{sum(op.statement == RAW_OUTBOX for op in ops):,} inserts, csm_ticket_plans "
        f"{sum(op.statement == RAW_PLAN for op in ops):,} upserts (the file of the last "
        "repeat checked equal to the pass's store in these four tables)"
    )
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("tickets", nargs="?", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="10,000 tickets, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--raw-variants",
        action="store_true",
        help="also time the raw sqlite3 writes in one transaction, and with "
        "synchronous=NORMAL and OFF",
    )
    args = parser.parse_args(argv)
    count = 10_000 if args.quick else args.tickets
    repeats = 1 if args.quick else args.repeats

    print(heading(f"escalation: {count:,} open tickets, {len(RULES)} rules"))
    for line in environment_lines():
        print(line)
    tickets = make_tickets(count)

    print(heading("pure (tickets in memory)"))
    sla = timed(
        "SLA evaluate (the reference)",
        count,
        lambda: [BOOK.evaluate(t, BUSY) for t in tickets],
        repeats,
    )
    pure = timed(
        "next_due (pure)",
        count,
        lambda: [
            next_due(t, BOOK, RULES, t.created_at - timedelta(microseconds=1)) for t in tickets
        ],
        repeats,
    )
    results: dict[str, Results] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("memory", "sqlite"):
            results[kind] = bench_store(kind, tickets, tmp, repeats, args.raw_variants)

    print(heading("ratios to SLA evaluation alone (goal: a full pass within 2x)"))
    per_ticket = sla / count
    print(f"  {'next_due (pure) / SLA evaluate':<52} {pure / sla:8.2f}x")
    for kind, r in results.items():
        print(f"  {kind + ': plan_all / SLA evaluate':<52} {r.plan / sla:8.2f}x")
        verdict = "PASS" if r.catch_up / sla <= 2 else "MISS"
        print(
            f"  {kind + ': full (catch-up) pass / SLA evaluate':<52} {r.catch_up / sla:8.2f}x   "
            f"goal <= 2x: {verdict}"
        )
        for label, seconds in (
            ("the pass's writes alone", r.writes),
            ("the pass's store calls alone", r.store_calls),
        ):
            print(
                f"  {kind + ': ' + label + ' / SLA evaluate':<52} {seconds / sla:8.2f}x   "
                f"({seconds / r.catch_up:.0%} of the pass)"
            )
        if r.raw is not None:
            print(
                f"  {kind + ': raw sqlite3, the same rows / SLA evaluate':<52} "
                f"{r.raw / sla:8.2f}x   ({r.raw / r.catch_up:.0%} of the pass)"
            )
            print(f"  {kind + ': csmcore writes alone / raw sqlite3':<52} {r.writes / r.raw:8.2f}x")
        print(
            f"  {kind + ': steady pass, per ticket run / per SLA evaluate':<52} "
            f"{r.steady / r.steady_tickets / per_ticket:8.2f}x"
        )
        whole = kind + ": steady pass over the whole store / SLA evaluate"
        print(f"  {whole:<52} {r.steady / sla:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
