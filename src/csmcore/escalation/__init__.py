"""Escalation rules and their planning: pure, exact, no I/O and no clock.

An :class:`EscalationRule` has a condition and levels. A level fires at an offset from a
target's due time (:class:`DueOffset`), at a percentage of a target used
(:class:`PercentUsed`), or when a condition has held for a duration (:class:`ConditionHeld`),
and applies its actions (:class:`SetPriority`, :class:`Assign`, :class:`AddTags`,
:class:`RemoveTags`, :class:`SetStatus`, :class:`AddNote`, :class:`Notify`,
:class:`GrantPoints` (loyalty points as service recovery), or any class declared with
:func:`action`). Conditions read the ticket and its SLA results through an
:class:`EscalationView` (the ``sla.*`` fields, see ``docs/escalation.md``).

:func:`due_firings` and :func:`next_due` give the exact firing instants for a ticket;
:func:`run_ticket` fires and applies them in order (the engine's pure core); :func:`dry_run`
lists what would fire for many tickets.

>>> from datetime import datetime, timedelta, timezone
>>> from csmcore import BusinessCalendar, SlaBook, SlaPolicy, SlaTarget, Ticket
>>> from csmcore.conditions import Always
>>> book = SlaBook(calendar=BusinessCalendar.always(timezone="UTC"), policies=[SlaPolicy(
...     name="std", position=1, default=True,
...     targets=[SlaTarget(metric="first_reply", within=timedelta(hours=4))])])
>>> rule = EscalationRule(name="reply", condition=Always(), levels=[
...     EscalationLevel(trigger=PercentUsed(target="first_reply", percent=75),
...                     actions=[AddTags(tags={"late"})])])
>>> t0 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
>>> ticket, _ = Ticket.create(at=t0, ticket_id="T-1", created_by="requester",
...     channel="email", priority="normal", requester="ann")
>>> next_due(ticket, book, [rule], after=t0)
datetime.datetime(2025, 1, 6, 12, 0, tzinfo=datetime.timezone.utc)
>>> [f.key for f in due_firings(ticket, book, [rule], t0, t0 + timedelta(days=1))]
[('reply', 1, 0, 'T-1', 'first_reply', 1)]
"""

from __future__ import annotations

from csmcore._boundary import guard_exports
from csmcore.escalation._actions import (
    NOTE_CHANNEL,
    Action,
    ActionContext,
    ActionResult,
    AddNote,
    AddTags,
    Assign,
    NotificationRequest,
    Notify,
    RemoveTags,
    SetPriority,
    SetStatus,
    action,
    action_class,
    action_name,
    actions,
)
from csmcore.escalation._plan import (
    EscalationLoop,
    Firing,
    FiringKey,
    PlannedFiring,
    PlanState,
    TicketRun,
    apply_firing,
    dry_run,
    due_firings,
    next_due,
    run_ticket,
)
from csmcore.escalation._rules import (
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    PercentUsed,
    Trigger,
)
from csmcore.escalation._subject import SLA_PREFIX, SLA_SUBJECT, EscalationView
from csmcore.escalation._walk import rules_read_member

# After the "sla" condition subject is declared (by _subject): _grant imports csmcore.loyalty,
# which declares the "loyalty_member" subject, and subjects are listed in declaration order.
from csmcore.escalation._grant import REQUESTER, GrantPoints, PointsGrantRequest  # isort: skip

__all__ = [
    "NOTE_CHANNEL",
    "REQUESTER",
    "SLA_PREFIX",
    "SLA_SUBJECT",
    "Action",
    "ActionContext",
    "ActionResult",
    "AddNote",
    "AddTags",
    "Assign",
    "ConditionHeld",
    "DueOffset",
    "EscalationLevel",
    "EscalationLoop",
    "EscalationRule",
    "EscalationView",
    "Firing",
    "FiringKey",
    "GrantPoints",
    "NotificationRequest",
    "Notify",
    "PercentUsed",
    "PlanState",
    "PlannedFiring",
    "PointsGrantRequest",
    "RemoveTags",
    "SetPriority",
    "SetStatus",
    "TicketRun",
    "Trigger",
    "action",
    "action_class",
    "action_name",
    "actions",
    "apply_firing",
    "dry_run",
    "due_firings",
    "next_due",
    "rules_read_member",
    "run_ticket",
]

for _public in (
    ActionContext,
    ActionResult,
    AddNote,
    AddTags,
    Assign,
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationLoop,
    EscalationRule,
    EscalationView,
    Firing,
    GrantPoints,
    NotificationRequest,
    Notify,
    PercentUsed,
    PlanState,
    PlannedFiring,
    PointsGrantRequest,
    RemoveTags,
    SetPriority,
    SetStatus,
    TicketRun,
):
    _public.__module__ = __name__
del _public

guard_exports(__name__)  # every export behind the public boundary (csmcore._boundary)
