"""Custom-field validation (issue 10): building tickets with five custom fields, and decoding
their stored ``ticket.created`` / ``ticket.fields_changed`` data.

Run from the repository root: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_fields.py``
(``--quick`` for a smoke run). Prints ops/s for each step.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from csmcore.tickets import FieldsChanged, Ticket, event_from_data, event_to_data

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def _fields(i: int, *, rich: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "category": "Software",
        "made_sla": i % 2 == 0,
        "reassignments": i % 7,
        "impact": "2 - Medium",
        "score": 0.5 + i % 3,
    }
    if rich:
        fields["score"] = Decimal(i % 100) / 4
        fields["sys_updated"] = T0 + timedelta(minutes=i)
    return fields


def _best(fn: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = 5_000 if args.quick else 50_000
    for rich in (False, True):
        inputs = [_fields(i, rich=rich) for i in range(n)]

        def create(inputs: list[dict[str, Any]] = inputs) -> None:
            for i, fields in enumerate(inputs):
                Ticket.create(
                    at=T0,
                    ticket_id=f"T-{i}",
                    created_by="requester",
                    channel="email",
                    priority="normal",
                    requester="ada",
                    fields=fields,
                )

        def change(inputs: list[dict[str, Any]] = inputs) -> None:
            for fields in inputs:
                FieldsChanged(at=T0, changes=fields)

        events = [FieldsChanged(at=T0, changes=f) for f in inputs]
        data = [event_to_data(e) for e in events]

        def encode(events: list[FieldsChanged] = events) -> None:
            for event in events:
                event_to_data(event)

        def decode(data: list[dict[str, Any]] = data) -> None:
            for item in data:
                event_from_data(item)

        label = "5 fields (str, bool, int, float)" if not rich else "6 fields (+Decimal, datetime)"
        print(label)
        for name, fn in (
            ("Ticket.create", create),
            ("FieldsChanged(...)", change),
            ("event_to_data", encode),
            ("event_from_data", decode),
        ):
            seconds = _best(fn, args.repeats)
            print(f"  {name:<20} {n / seconds:>12,.0f} ops/s  {seconds / n * 1e6:7.2f} µs/op")


if __name__ == "__main__":
    main()
