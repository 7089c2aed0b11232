"""Outbox delivery: csmcore's Dispatcher draining N due messages, next to a hand-written
outbox loop over ``sqlite3`` doing the same durable steps.

Run from the repository root::

    .venv/bin/python benchmarks/bench_dispatch.py            # 20,000 messages
    .venv/bin/python benchmarks/bench_dispatch.py --quick    # 2,000 messages, a smoke run

No Python library drains a transactional outbox with leases, retries and dead letters, so the
peer is the loop a developer would write by hand over ``sqlite3`` (WAL, ``synchronous=FULL``,
as csmcore's SQLite store): select a batch of due rows, claim each with a conditional
``UPDATE`` (one commit), call the notifier, mark it delivered (one commit). csmcore does the
same two commits per message, plus one read of the message when an attempt fails (none here).
The notifier does nothing, so what is timed is the dispatcher and its store. Measured:

- ``memory``: :class:`csmcore.services.Dispatcher` over the memory store;
- ``SQLite``: the Dispatcher over ``sqlite:///`` (a new file per repeat);
- ``raw sqlite3``: the hand-written loop (a new file per repeat).

Each is timed by wall clock, best of ``--repeats``; the outbox is filled, untimed, before each
repeat. Requirements: none beyond csmcore.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from _common import environment_lines, heading
from csmcore.clock import FixedClock
from csmcore.escalation import NotificationRequest
from csmcore.services import CallableNotifier, Dispatcher
from csmcore.storage import OutboxMessage, OutboxState, open_store, role_of

T0 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)


def _requests(n: int) -> list[NotificationRequest]:
    return [
        NotificationRequest(
            channel="email",
            recipient=f"agent{i % 50}@example.com",
            template="warn",
            data={"percent": 75, "rule": "r"},
            not_before=T0 - timedelta(seconds=n - i),
            idempotency_key=f'["r",1,0,"T-{i}","first_reply",1]/0',
            ticket_id=f"T-{i}",
        )
        for i in range(n)
    ]


def _csmcore(url: str, requests: list[NotificationRequest]) -> Callable[[], Callable[[], Any]]:
    def prepare() -> Callable[[], Any]:
        store = open_store(url)
        outbox = role_of(store, "outbox")
        outbox.put([OutboxMessage.new(r, created_at=T0) for r in requests])
        sent: list[str] = []
        dispatcher = Dispatcher(
            store, CallableNotifier(lambda r, k: sent.append(k)), clock=FixedClock(T0)
        )

        def run() -> None:
            result = dispatcher.run()
            assert len(result.delivered) == len(requests) == len(sent)
            assert not outbox.list(state=OutboxState.PENDING, limit=1)
            store.close()

        return run

    return prepare


def _raw(path_of: Callable[[], str], requests: list[NotificationRequest]) -> Any:
    def prepare() -> Callable[[], Any]:
        path = path_of()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(
            "CREATE TABLE outbox (key TEXT PRIMARY KEY, payload TEXT, state TEXT, "
            "attempts INTEGER, next_attempt_us INTEGER, delivered_us INTEGER, last_error TEXT)"
        )
        conn.execute("CREATE INDEX outbox_due ON outbox (state, next_attempt_us, key)")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO outbox VALUES (?, ?, 'pending', 0, ?, NULL, NULL)",
            [
                (r.idempotency_key, r.recipient, int(r.not_before.timestamp() * 1e6))
                for r in requests
            ],
        )
        conn.execute("COMMIT")
        sent: list[str] = []
        now_us = int(T0.timestamp() * 1e6)
        lease_us = 300 * 1_000_000

        def run() -> None:
            while True:
                rows = conn.execute(
                    "SELECT key, payload, attempts FROM outbox WHERE state = 'pending' AND "
                    "next_attempt_us <= ? ORDER BY next_attempt_us, key LIMIT 100",
                    [now_us],
                ).fetchall()
                if not rows:
                    break
                for key, _payload, attempts in rows:
                    claimed = conn.execute(
                        "UPDATE outbox SET attempts = ?, next_attempt_us = ? WHERE key = ? AND "
                        "state = 'pending' AND attempts = ?",
                        [attempts + 1, now_us + lease_us, key, attempts],
                    ).rowcount
                    if not claimed:
                        continue
                    sent.append(key)  # the notifier
                    conn.execute(
                        "UPDATE outbox SET state = 'delivered', delivered_us = ? WHERE key = ?",
                        [now_us, key],
                    )
            assert len(sent) == len(requests)
            conn.close()

        return run

    return prepare


def _time(prepare: Callable[[], Callable[[], Any]], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        run = prepare()
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("messages", nargs="?", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="2,000 messages, one repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n, repeats = (2_000, 1) if args.quick else (args.messages, args.repeats)
    requests = _requests(n)
    print(heading(f"Outbox delivery: {n:,} due messages, a no-op notifier"))
    for line in environment_lines():
        print(line)
    with tempfile.TemporaryDirectory() as folder:
        counter = iter(range(10**6))

        def fresh() -> str:
            return os.path.join(folder, f"outbox-{next(counter)}.db")

        timings = {
            "memory": _time(_csmcore("memory://", requests), repeats),
            "SQLite": _time(lambda: _csmcore(f"sqlite:///{fresh()}", requests)(), repeats),
            "raw sqlite3": _time(_raw(fresh, requests), repeats),
        }
    for label, seconds in timings.items():
        print(
            f"  {label:<14} {n / seconds:>12,.0f} messages/s  {seconds / n * 1e6:9.1f} µs/message"
        )
    print(f"  SQLite / raw sqlite3 throughput: {timings['raw sqlite3'] / timings['SQLite']:.2f}")


if __name__ == "__main__":
    main()
