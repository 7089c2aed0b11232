"""Writer processes for the storage suite's concurrency tests.

Kept apart from :mod:`csmcore.testing.storage_suite` so that a spawned child imports only
csmcore's storage, not pytest and Hypothesis: the children start in a fraction of the time.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from csmcore.errors import ConcurrencyError, CsmError
from csmcore.storage import open_store
from csmcore.testing.builders import T0, make_comment
from csmcore.tickets import Status, StatusChanged, TicketEvent

_comment = make_comment  # the same instant and builder as the suite's (builders.T0)


def open_url(url: str, opener: str | None = None) -> Any:
    """``open_store(url)``, or, when ``opener`` names a function (``"module:function"``),
    that function applied to ``url``: an adapter registered at run time only is not known to a
    new process, but its opener can be imported there."""
    if opener is None:
        return open_store(url)
    module, _, name = opener.partition(":")
    return getattr(importlib.import_module(module), name)(url)


def append_worker(
    url: str, ticket_id: str, worker: int, count: int, start: Any, opener: str | None = None
) -> None:
    """Append ``count`` comments by ``worker``, re-reading and retrying on conflicts."""
    store = open_url(url, opener)
    try:
        start.wait(timeout=60)  # a sibling that died first must not hang the rest
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


def race_events(worker: int) -> list[TicketEvent]:
    """What ``worker`` appends to a new ticket (created at ``T0``) at expected version 1.

    Worker 0 closes the ticket an hour later; the others comment a few minutes after its
    creation. Whoever commits first wins, and every other writer must get ConcurrencyError:
    an InvalidTransition ("the ticket is closed", "events must be in time order") would mean
    that a writer checked its events against a history newer than the version it named.
    """
    if worker == 0:
        return [StatusChanged(at=T0 + timedelta(hours=1), status=Status.CLOSED)]
    return [_comment(T0 + timedelta(minutes=worker), f"w{worker}")]


def race_once(store: Any, ticket_id: str, worker: int) -> str:
    """Append :func:`race_events` at expected version 1: ``"won"``, ``"conflict"`` (a
    ConcurrencyError), or the type and message of any other CsmError."""
    try:
        store.tickets.append(ticket_id, race_events(worker), expected_version=1)
    except ConcurrencyError:
        return "conflict"
    except CsmError as err:
        return f"{type(err).__name__}: {err}"
    return "won"


def race_worker(
    url: str, ticket_ids: list[str], worker: int, start: Any, opener: str | None = None
) -> list[str]:
    """For each ticket, wait for the other racers, then :func:`race_once`."""
    store = open_url(url, opener)
    results = []
    try:
        for ticket_id in ticket_ids:
            start.wait(timeout=60)  # a sibling that died first must not hang the rest
            results.append(race_once(store, ticket_id, worker))
    finally:
        store.close()
    return results


def in_process(target: Callable[..., Any], args: tuple[Any, ...], results: Any) -> None:
    try:
        results.put(("ok", target(*args)))
    except BaseException as err:
        results.put(("error", f"{type(err).__name__}: {err}"))


def stuck_writer(url: str, ticket_id: str, opener: str | None, ready: Any) -> None:
    """Open a unit of work that appends to ``ticket_id``, adds the ticket ``"K-1"`` and puts the
    calendar ``"killed"`` (so it holds whatever lock a writer of the adapter holds), set
    ``ready``, and wait, never committing, until the process is killed."""
    import time

    from csmcore.calendars import BusinessCalendar
    from csmcore.testing.builders import make_ticket

    store = open_url(url, opener)
    with store.unit_of_work() as uow:
        version = uow.tickets.get(ticket_id).version
        uow.tickets.append(ticket_id, [_comment(T0, "killed")], expected_version=version)
        uow.tickets.add(make_ticket("K-1"))
        uow.calendars.put("killed", BusinessCalendar.always(), expected_version=0)
        ready.set()
        time.sleep(3600)


def bulk_writer(url: str, size: int, opener: str | None, ready: Any) -> None:
    """Add batches of ``size`` new tickets (``B-<batch>-<n>``) with ``add_many``, one after the
    other, until the process is killed; ``ready`` is set once the first batch is committed."""
    from csmcore.testing.builders import make_ticket

    store = open_url(url, opener)
    batch = 0
    while True:
        store.tickets.add_many([make_ticket(f"B-{batch:05d}-{n:04d}") for n in range(size)])
        ready.set()
        batch += 1


def redeem_worker(
    url: str, member_id: str, worker: int, points: int, start: Any, opener: str | None = None
) -> list[str]:
    """Redeem ``points`` at a time from ``member_id`` until the member runs out; return the
    entry ids of the redemptions that succeeded (the ledger checks: none overdraws)."""
    from csmcore.errors import InsufficientPoints
    from csmcore.services import Ledger

    store = open_url(url, opener)
    won: list[str] = []
    try:
        ledger = Ledger(store)
        start.wait(timeout=60)
        n = 0
        while True:
            try:
                entry = ledger.redeem(member_id, points, at=T0, key=f"w{worker}-{n}")
            except InsufficientPoints:
                return won
            won.append(entry.entry_id)
            n += 1
    finally:
        store.close()
