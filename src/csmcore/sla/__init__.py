"""SLA policies and the engine that judges tickets against them.

An :class:`SlaPolicy` holds :class:`SlaTarget` values (a metric, a duration, business or calendar
time, which calendar). An :class:`SlaBook` is the ordered set of policies plus the calendars they
name; :meth:`SlaBook.evaluate` replays a ticket's events up to an instant and returns one
:class:`SlaStatus` per target and cycle (an :class:`SlaResults`, a tuple with lookups by target
and cycle), and :meth:`SlaBook.next_change` returns the exact next
instant at which any of them changes state, so callers can schedule instead of polling.

Evaluation is a pure function of (book, ticket history, instant). The semantics (which events
start, pause and stop each metric, reopen and priority-change rules, breach stickiness) are
described in ``docs/sla-concepts.md``; each has tests in ``tests/sla/``. :func:`rebuild` and
:func:`backtest` re-judge tickets under another book.

The engine works on integer instants and on positions of the calendars' business-time lines
(:class:`csmcore.calendars.BusinessTimeline`); it lives in private modules.
"""

from __future__ import annotations

from csmcore.sla import _codec  # registers the converter hooks
from csmcore.sla._book import SlaBook
from csmcore.sla._enums import (
    OnChange,
    OnReopen,
    OnReset,
    SlaError,
    SlaMetric,
    SlaState,
    SlaTrigger,
)
from csmcore.sla._evaluator import TicketEvaluator
from csmcore.sla._policy import CustomTimer, SlaPolicy, SlaTarget
from csmcore.sla._rebuild import Backtest, BacktestRow, backtest, rebuild
from csmcore.sla._status import SlaChange, SlaResults, SlaStatus, StatusMicroseconds
from csmcore.sla._transition import Transition

__all__ = [
    "Backtest",
    "BacktestRow",
    "CustomTimer",
    "OnChange",
    "OnReopen",
    "OnReset",
    "SlaBook",
    "SlaChange",
    "SlaError",
    "SlaMetric",
    "SlaPolicy",
    "SlaResults",
    "SlaState",
    "SlaStatus",
    "SlaTarget",
    "SlaTrigger",
    "StatusMicroseconds",
    "TicketEvaluator",
    "Transition",
    "backtest",
    "rebuild",
]

del _codec

# The public module of each class is the package: reprs, pickles and stored documents name
# ``csmcore.sla.SlaPolicy``, whichever private module defines it.
for _public in (
    Backtest,
    BacktestRow,
    CustomTimer,
    OnChange,
    OnReopen,
    OnReset,
    SlaBook,
    SlaChange,
    SlaError,
    SlaMetric,
    SlaPolicy,
    SlaResults,
    SlaState,
    SlaStatus,
    SlaTarget,
    SlaTrigger,
    StatusMicroseconds,
    TicketEvaluator,
    Transition,
):
    _public.__module__ = __name__
del _public
