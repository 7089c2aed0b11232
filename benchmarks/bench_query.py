"""Query benchmark: conditions on custom fields, selected in the database (issue 10).

Run ``python benchmarks/bench_query.py`` (``--quick`` for a smoke run with 2,000 tickets).
PostgreSQL is measured when ``--postgres URL`` is given or ``CSMCORE_TEST_POSTGRES_DSN`` is set
(the run works in its own schema, dropped at the end).

The store holds 20,768 generated tickets, as many as the ServiceNow incident log of the
project's shared sample, each with ServiceNow-like custom fields (``made_sla`` a bool,
``reassignment_count`` an int, ``impact`` a string) and about five events; about a third miss
their SLA, some of them through a later ``FieldsChanged``. For each store it times:

1. ``tickets.count(Eq("fields.made_sla", False))``, the query of the issue, pushed down;
2. the old path for the same count: every ticket read and filtered with ``matches`` in Python
   (what a SQL store did for custom fields before schema 4);
3. the hand-written SQL a developer would run on csmcore's tables for it (SQLite:
   ``json_type(fields, '$.made_sla') = 'false'``; PostgreSQL: ``fields @> '{"made_sla":false}'``);
4. a few more pushed-down queries (a comparison on an int, ``In`` on strings, ``find`` of a
   page), for the record.

All ways of counting must agree with ``matches`` over the generated tickets, or the script exits
1. Goal: the pushed-down count under 0.1 s (the old path took 7.6 s on SQLite in the issue);
``--fail-on-miss`` turns a missed goal into exit status 2.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from _common import Timing, environment_lines, heading, measure, ratio_line
from csmcore.conditions import Always, Compare, Condition, Eq, In
from csmcore.storage import open_store
from csmcore.storage.protocols import Store
from csmcore.tickets import (
    Assigned,
    Channel,
    FieldsChanged,
    Priority,
    Role,
    Status,
    StatusChanged,
    Ticket,
)

T0 = datetime(2016, 2, 29, 1, 0, tzinfo=timezone.utc)
INCIDENTS = 20_768
"""Incidents in the ServiceNow log the issue counted over."""
GOAL_SECONDS = 0.1
QUERY = Eq("fields.made_sla", False)
OTHERS: dict[str, Condition] = {
    "count reassignment_count >= 2": Compare("fields.reassignment_count", ">=", 2),
    "count impact in (1 - High, 3 - Low)": In("fields.impact", ["1 - High", "3 - Low"]),
    "count made_sla False and impact High": QUERY & Eq("fields.impact", "1 - High"),
}
RAW = {
    "sqlite": "SELECT COUNT(*) FROM csm_tickets WHERE json_type(fields, '$.made_sla') = 'false'",
    "postgresql": "SELECT COUNT(*) FROM csm_tickets WHERE fields @> '{\"made_sla\": false}'",
}


def make_tickets(count: int, seed: int = 10) -> list[Ticket]:
    """``count`` incidents with custom fields and about five events each (deterministic)."""
    rnd = random.Random(seed)
    impacts = ["1 - High", "2 - Medium", "3 - Low"]
    tickets = []
    for n in range(count):
        at = T0 + timedelta(minutes=rnd.randrange(60 * 24 * 120))
        fields: dict[str, Any] = {
            "made_sla": rnd.random() > 0.2,
            "reassignment_count": rnd.choice([0, 0, 0, 1, 1, 2, 3, 5]),
            "impact": rnd.choice(impacts),
            "category": f"Category {rnd.randrange(60)}",
        }
        ticket, _ = Ticket.create(
            at=at,
            ticket_id=f"INC{n:07d}",
            created_by=Role.AGENT,
            channel=rnd.choice([Channel.PHONE, Channel.EMAIL, Channel.WEB]),
            priority=rnd.choice(list(Priority)),
            requester=f"Caller {rnd.randrange(5000)}",
            fields=fields,
        )
        at += timedelta(minutes=rnd.randrange(1, 120))
        ticket = ticket.apply(
            Assigned(at=at, actor="dispatcher", group=f"Group {rnd.randrange(80)}", assignee=None)
        )
        at += timedelta(minutes=rnd.randrange(1, 600))
        ticket = ticket.apply(StatusChanged(at=at, actor="agent", status=Status.OPEN))
        if rnd.random() < 0.15:  # the SLA is missed later, by a change of the field
            at += timedelta(hours=rnd.randrange(1, 48))
            ticket = ticket.apply(FieldsChanged(at=at, actor="sla", changes={"made_sla": False}))
        at += timedelta(hours=rnd.randrange(1, 72))
        ticket = ticket.apply(StatusChanged(at=at, actor="agent", status=Status.SOLVED))
        tickets.append(ticket)
    return tickets


def old_path_count(store: Store, condition: Condition) -> int:
    """What a SQL store did before schema 4: read every ticket and filter with ``matches``."""
    return sum(
        1
        for batch in store.tickets.stream(Always(), batch_size=500)
        for t in batch
        if condition.matches(t)
    )


def raw_count(store: Any, statement: str) -> int:
    """The hand-written SQL, through the store's own connection (no csmcore work around it)."""
    rows = store.query_once(None, statement)
    return int(rows[0][0])


def bench_store(
    name: str, store: Store, tickets: list[Ticket], repeats: int, old_repeats: int
) -> tuple[bool, bool]:
    """Load ``tickets``, time the queries; (every count agrees with ``matches``, goal met)."""
    print(heading(f"{name}: {len(tickets):,} tickets"))
    for start in range(0, len(tickets), 5_000):
        store.tickets.add_many(tickets[start : start + 5_000])
    dialect = getattr(store, "dialect", None)
    agree = True

    def timed(label: str, func: Callable[[], int], runs: int, want: int) -> Timing:
        nonlocal agree
        found: list[int] = []
        timing = measure(label, 1, lambda: found.append(func()), repeats=runs)
        verdict = "" if set(found) == {want} else f"   DISAGREE: matches() gives {want:,}"
        agree = agree and not verdict
        print(
            f"  {label:<48} {timing.best * 1000:10.1f} ms  (best of {len(timing.runs)}, worst "
            f"{max(timing.runs) * 1000:.1f} ms)  -> {found[0]:,}{verdict}"
        )
        return timing

    expected = sum(1 for t in tickets if QUERY.matches(t))
    ours = timed(
        "count(made_sla == False), pushed down",
        lambda: store.tickets.count(QUERY),
        repeats,
        expected,
    )
    old = timed(
        "the old path: read all, filter in Python",
        lambda: old_path_count(store, QUERY),
        old_repeats,
        expected,
    )
    raw = None
    if dialect is not None:
        statement = RAW[dialect.name]
        raw = timed("hand-written SQL", lambda: raw_count(store, statement), repeats, expected)
    for label, condition in OTHERS.items():
        want = sum(1 for t in tickets if condition.matches(t))
        timed(label, lambda c=condition: store.tickets.count(c), repeats, want)  # type: ignore[misc]
    timed(
        "find(made_sla == False, limit=100)",
        lambda: len(store.tickets.find(QUERY, limit=100)),
        repeats,
        min(100, expected),
    )
    print(ratio_line("speed-up over the old path", old.best, ours.best))
    if raw is not None:
        print(ratio_line("time of pushed down / hand-written SQL", ours.best, raw.best))
    met = ours.best < GOAL_SECONDS
    print(
        f"  pushed-down count {ours.best * 1000:.1f} ms   goal < {GOAL_SECONDS * 1000:.0f} ms: "
        f"{'PASS' if met else 'MISS'}"
    )
    return agree, met


def _with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="csmcore custom-field query benchmark")
    parser.add_argument("--quick", action="store_true", help="2,000 tickets (a smoke run)")
    parser.add_argument("--tickets", type=int, default=None, help="how many tickets to load")
    parser.add_argument("--repeats", type=int, default=5, help="repeats of each fast query")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("CSMCORE_TEST_POSTGRES_DSN"),
        help="PostgreSQL URL (default: $CSMCORE_TEST_POSTGRES_DSN; none: SQLite only)",
    )
    parser.add_argument("--fail-on-miss", action="store_true", help="exit 2 when a goal is missed")
    args = parser.parse_args(argv)
    count = args.tickets or (2_000 if args.quick else INCIDENTS)
    print(heading("environment"))
    for line in environment_lines():
        print(line)
    tickets = make_tickets(count)
    old_repeats = 1 if count > 5_000 else 3
    outcomes: list[tuple[bool, bool]] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'query.db'}")
        try:
            outcomes.append(bench_store("SQLite", store, tickets, args.repeats, old_repeats))
        finally:
            store.close()
    if args.postgres:
        pg: Any = open_store(_with_schema(args.postgres, f"csm_bench_{uuid.uuid4().hex[:12]}"))
        try:
            outcomes.append(bench_store("PostgreSQL", pg, tickets, args.repeats, old_repeats))
        finally:
            pg.drop_schema()
    if not all(agree for agree, _ in outcomes):
        return 1
    if args.fail_on_miss and not all(met for _, met in outcomes):
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
