"""One ticket judged at many instants: :class:`TicketEvaluator` (``SlaBook.evaluator``)."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from csmcore._boundary import PASS, guard_class, inline, translate
from csmcore._time import MAX_US, MIN_US, in_range_us, require_aware, to_us
from csmcore.sla._engine import Run
from csmcore.sla._status import SlaResults
from csmcore.tickets import Ticket

if TYPE_CHECKING:
    from csmcore.sla._book import SlaBook

__all__ = ["TicketEvaluator", "us_of"]


def us_of(value: datetime, argument: str) -> int:
    """``value`` as UTC microseconds, checked: aware and in the supported range."""
    if type(value) is datetime and value.tzinfo is timezone.utc:  # the usual case, checked
        us = to_us(value)
        if MIN_US <= us < MAX_US:
            return us
    return in_range_us(require_aware(value, argument), argument)


@guard_class
class TicketEvaluator:
    """Judges one ticket at many instants, replaying its history once per run of instants
    between the same two events.

    ``evaluator.at(instant)`` equals ``book.evaluate(ticket, instant)`` for every instant.
    Between two events of the ticket nothing but time moves, so the replay of the events up to
    an instant serves every later instant before the next event: asking at increasing
    instants (a planner walking a timeline) costs one replay per event, not one per instant.
    Instants may come in any order; going back in time replays again.

    >>> from datetime import datetime, timedelta, timezone
    >>> from csmcore import BusinessCalendar, SlaBook, SlaPolicy, SlaTarget, Ticket
    >>> book = SlaBook(calendar=BusinessCalendar.always(timezone="UTC"), policies=[SlaPolicy(
    ...     name="std", position=1, default=True,
    ...     targets=[SlaTarget(metric="first_reply", within=timedelta(hours=4))])])
    >>> t0 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
    >>> ticket, _ = Ticket.create(at=t0, ticket_id="T-1", created_by="requester",
    ...     channel="email", priority="normal", requester="ann")
    >>> judge = book.evaluator(ticket)
    >>> [judge.at(t0 + timedelta(hours=h)).get("first_reply").state.value for h in (1, 5)]
    ['active', 'breached']
    >>> judge.at(t0 + timedelta(hours=5)) == book.evaluate(ticket, t0 + timedelta(hours=5))
    True
    """

    __slots__ = ("_book", "_count", "_run", "_times", "_until", "ticket")

    def __init__(self, book: SlaBook, ticket: Ticket) -> None:
        self._book = book
        self.ticket = ticket
        self._times = [event._at_us for event in ticket.events]
        self._run: Run | None = None
        self._count = -1  # how many events the cached run replayed
        self._until = 0  # the latest instant the cached run reported at

    @inline("TicketEvaluator.at")
    def at(self, instant: datetime) -> SlaResults:
        """The ticket's SLA results at ``instant`` (what :meth:`SlaBook.evaluate` returns)."""
        try:
            until = us_of(instant, "instant")
            count = bisect_right(self._times, until)
            run = self._run
            if run is None or count != self._count or until < self._until:
                # A report records breaches up to its instant: a run reports at instants
                # that never go back, and replays only when another event counts.
                run = self._run = Run(self._book, self.ticket, until)
                self._count = count
            else:
                run.until = until
            self._until = until
            return run.report(instant.tzinfo, instant)
        except PASS:
            raise
        except Exception as err:  # the public boundary, inline
            raise translate(err, "TicketEvaluator.at") from err
