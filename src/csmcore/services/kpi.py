"""KPIs over a store: stream its tickets with the condition pushed down, in bounded memory.

>>> from datetime import datetime, timedelta, timezone
>>> from csmcore.storage import open_store
>>> from csmcore.testing.builders import make_ticket
>>> from csmcore.conditions import Eq
>>> t0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
>>> store = open_store("memory://")
>>> for i, minutes in enumerate([10, 20, 60]):
...     t, _ = make_ticket(f"T-{i}", at=t0).comment(t0 + timedelta(minutes=minutes), "agent")
...     _ = store.tickets.add(t)
>>> kpis = summarize(store, Eq("channel", "email"), at=t0 + timedelta(days=1)).total()
>>> kpis.tickets, kpis.first_reply.median
(3, datetime.timedelta(seconds=1200))
>>> store.close()
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from csmcore._boundary import guard_iter, guarded
from csmcore._time import require_aware
from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Always, Condition
from csmcore.errors import InvalidType, ValidationError, invalid_type
from csmcore.kpi import KpiAggregator, TicketMetrics, ticket_metrics
from csmcore.sla import SlaBook
from csmcore.storage import Store, TicketRepository
from csmcore.tickets import Ticket

__all__ = ["stream_metrics", "summarize"]

# What ``summarize(**settings)`` passes on to KpiAggregator: its keyword arguments but the ones
# summarize takes itself (the instant, calendar and book the tickets are judged with).
_SETTINGS = tuple(
    name
    for name in inspect.signature(KpiAggregator.__init__).parameters
    if name not in ("self", "at", "calendar", "book")
)


@guarded
def stream_metrics(
    store: Store,
    condition: Condition | None = None,
    *,
    at: datetime,
    calendar: BusinessCalendar | None = None,
    book: SlaBook | None = None,
    batch_size: int = 500,
) -> Iterator[TicketMetrics]:
    """The :class:`~csmcore.kpi.TicketMetrics` at ``at`` of each ticket of ``store`` matching
    ``condition`` (default: every ticket), read with ``store.tickets.stream`` (the condition is
    pushed down to the backend where it can be; at most ``batch_size`` tickets in memory).

    Tickets created after ``at`` are skipped. Raises NaiveDatetimeError for a naive ``at``,
    ValidationError for a bad condition or batch size, StorageError on a backend failure.
    """
    _check(store, at, calendar, book)
    chosen: Condition = Always() if condition is None else condition
    batches = store.tickets.stream(chosen, batch_size=batch_size)  # checks them at the call
    return guard_iter(_metrics(batches, at, calendar, book), "stream_metrics")


def _check(store: object, at: datetime, calendar: object, book: object) -> None:
    """The arguments of both functions, checked at the call (not at the first ticket)."""
    if not isinstance(getattr(store, "tickets", None), TicketRepository):
        raise invalid_type("store", store, "a Store (csmcore.storage.open_store)")
    require_aware(at, "at")
    if calendar is not None and not isinstance(calendar, BusinessCalendar):
        raise invalid_type("calendar", calendar, "a BusinessCalendar or None")
    if book is not None and not isinstance(book, SlaBook):
        raise invalid_type("book", book, "an SlaBook or None")


def _metrics(
    batches: Iterator[list[Ticket]],
    at: datetime,
    calendar: BusinessCalendar | None,
    book: SlaBook | None,
) -> Iterator[TicketMetrics]:
    for batch in batches:
        for ticket in batch:
            if ticket.created_at <= at:
                yield ticket_metrics(ticket, at, calendar=calendar, book=book)


@guarded
def summarize(
    store: Store,
    condition: Condition | None = None,
    *,
    at: datetime,
    calendar: BusinessCalendar | None = None,
    book: SlaBook | None = None,
    batch_size: int = 500,
    aggregator: KpiAggregator | None = None,
    **settings: Any,
) -> KpiAggregator:
    """KPIs of the tickets of ``store`` matching ``condition``, judged at ``at``.

    ``settings`` go to :class:`~csmcore.kpi.KpiAggregator` (``by``, ``bucket``, ``timezone``,
    ``metrics``, ``percentiles``, ...); or pass an ``aggregator`` to add to. Memory holds one
    batch of tickets plus what the aggregator keeps (the values of the durations whose median
    is asked; ``exact=False`` keeps none). Returns the aggregator: ``.results()`` per group,
    ``.total()`` for all.

    Raises InvalidType for a setting KpiAggregator does not take (naming the accepted ones),
    ValidationError for ``business=True`` without a ``calendar`` (business-time durations
    need one; without it every business figure would be empty).
    """
    _check(store, at, calendar, book)
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise InvalidType(
            f"{', '.join(unknown)} is not a KpiAggregator setting; accepted: "
            f"{', '.join(_SETTINGS)} (and summarize's own condition, at, calendar, book, "
            "batch_size, aggregator)",
            field="settings",
            value=unknown,
        )
    if aggregator is None:
        aggregator = KpiAggregator(**settings)
    elif settings:
        raise InvalidType(
            f"give either an aggregator or its settings, not both ({sorted(settings)})",
            field="settings",
            value=sorted(settings),
        )
    elif not isinstance(aggregator, KpiAggregator):
        raise InvalidType(
            f"aggregator={aggregator!r} is not a KpiAggregator",
            field="aggregator",
            value=aggregator,
        )
    if aggregator.business and calendar is None:
        raise ValidationError(
            "business=True summarises business-time durations, which needs calendar= (a "
            "BusinessCalendar); without one every business figure would be empty",
            field="calendar",
            value=None,
        )
    return aggregator.update(
        stream_metrics(store, condition, at=at, calendar=calendar, book=book, batch_size=batch_size)
    )
