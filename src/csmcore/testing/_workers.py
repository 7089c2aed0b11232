"""Writer processes for the storage suite's concurrency tests.

Kept apart from :mod:`csmcore.testing.storage_suite` so that a spawned child imports only
csmcore's storage, not pytest and Hypothesis: the children start in a fraction of the time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from csmcore.errors import ConcurrencyError
from csmcore.storage import open_store
from csmcore.tickets import Commented, Role

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def _comment(at: datetime, author: str) -> Commented:
    return Commented(at=at, author_role=Role.AGENT, author=author)


def append_worker(url: str, ticket_id: str, worker: int, count: int, start: Any) -> None:
    """Append ``count`` comments by ``worker``, re-reading and retrying on conflicts."""
    store = open_store(url)
    try:
        start.wait()
        for n in range(count):
            while True:
                version = store.tickets.get(ticket_id).version
                try:
                    store.tickets.append(
                        ticket_id, [_comment(T0, f"w{worker}-{n}")], expected_version=version
                    )
                    break
                except ConcurrencyError:
                    continue
    finally:
        store.close()


def race_worker(url: str, ticket_ids: list[str], worker: int, start: Any) -> list[str]:
    """For each ticket, wait for the other racer, then append at expected version 1."""
    store = open_store(url)
    results = []
    try:
        for ticket_id in ticket_ids:
            start.wait()
            try:
                store.tickets.append(ticket_id, [_comment(T0, f"w{worker}")], expected_version=1)
                results.append("won")
            except ConcurrencyError:
                results.append("conflict")
    finally:
        store.close()
    return results


def in_process(target: Callable[..., Any], args: tuple[Any, ...], results: Any) -> None:
    try:
        results.put(("ok", target(*args)))
    except BaseException as err:
        results.put(("error", f"{type(err).__name__}: {err}"))
