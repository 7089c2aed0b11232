"""The SLA vocabulary: what a target measures, the states of a cycle, the reopen and change
rules, the triggers of custom timers, and :class:`SlaError`."""

from __future__ import annotations

import enum

from csmcore.errors import ValidationError

__all__ = ["OnChange", "OnReopen", "OnReset", "SlaError", "SlaMetric", "SlaState", "SlaTrigger"]


class SlaError(ValidationError):
    """An SLA policy, target or book is not acceptable; the message names the value."""


class SlaMetric(enum.StrEnum):
    """What a target measures (see ``docs/sla-concepts.md`` for the exact rules)."""

    FIRST_REPLY = "first_reply"
    """Creation until the first public agent reply (not for agent-created tickets)."""
    NEXT_REPLY = "next_reply"
    """A cycle per unanswered public requester comment, until the next public agent reply."""
    PERIODIC_UPDATE = "periodic_update"
    """Between consecutive public agent replies, whatever the status."""
    PAUSABLE_UPDATE = "pausable_update"
    """Between consecutive public agent replies, paused while the ticket is pending."""
    REQUESTER_WAIT = "requester_wait"
    """Time in new, open and on-hold until solved (paused while pending)."""
    AGENT_WORK = "agent_work"
    """Time in new and open until solved (paused while pending or on hold)."""
    TOTAL_RESOLUTION = "total_resolution"
    """Creation until solved, in every unsolved status."""
    CUSTOM = "custom"
    """Start / pause / stop / reset conditions given by a :class:`CustomTimer`."""


class SlaState(enum.StrEnum):
    """The state of one target cycle. ``BREACHED`` is final for that cycle."""

    ACTIVE = "active"
    PAUSED = "paused"
    ACHIEVED = "achieved"
    BREACHED = "breached"


class OnReopen(enum.StrEnum):
    """What a reopened ticket does to a status-based target that was achieved on solve."""

    PAUSE = "pause"
    """Resume the same cycle; the time spent solved counts as paused."""
    NEW_CYCLE = "new_cycle"
    """Keep the achieved cycle and start a new one, with the full duration, at the reopen."""


class OnReset(enum.StrEnum):
    """What a custom timer's reset does to the running cycle (chosen per target)."""

    CANCEL = "cancel"
    """Drop the cycle from the results (unless it had breached) and start afresh."""
    COMPLETE = "complete"
    """Stop the cycle at the reset, judged achieved unless it had breached (ServiceNow's
    "complete" on reset), and start afresh."""


class OnChange(enum.StrEnum):
    """What a change of the target in force (priority, policy, version) does to an open cycle."""

    KEEP_ELAPSED = "keep_elapsed"
    """Apply the new duration from the cycle's original start, keeping the elapsed time."""
    RESTART = "restart"
    """Restart the cycle at the change with zero elapsed time (a breached cycle stays breached)."""


class SlaTrigger(enum.StrEnum):
    """Events a :class:`CustomTimer` can start or stop on (Jira Service Management style)."""

    CREATED = "created"
    REQUESTER_COMMENT = "requester_comment"
    """A public comment by the requester, or one an agent logged on the requester's behalf."""
    AGENT_REPLY = "agent_reply"
    """A public comment by an agent (internal notes and bot replies are not replies)."""
    SOLVED = "solved"
    """The ticket entered the solved or closed category (including by merging)."""
    REOPENED = "reopened"
    """The ticket left the solved or closed category."""
    ASSIGNED = "assigned"
