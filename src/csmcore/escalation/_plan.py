"""Planning: the exact instants at which rules fire for a ticket, and the pure run loop.

The planner walks a ticket's timeline from its creation over *breakpoints* (the walk and what
makes it exact are in :mod:`._walk`): the instants of its events, the instants at which its SLA
results change state, and the instants at which a level's threshold or a comparison on a moving
SLA number is reached. :func:`run_ticket` applies each firing as the walk finds it and resumes
the walk from there, so planning a ticket and running it cost one walk.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any

import attrs

from csmcore._time import require_aware, to_datetime, to_us
from csmcore._values import check_iterable
from csmcore.errors import CsmError, ValidationError, invalid_type
from csmcore.escalation._actions import ActionContext, ActionResult
from csmcore.escalation._rules import (
    EscalationRule,
)
from csmcore.escalation._walk import Found, PlanState, Walk, static_for
from csmcore.loyalty import MemberTimeline
from csmcore.serialization import serializable
from csmcore.sla import SlaBook
from csmcore.tickets import Ticket, TicketEvent

__all__ = [
    "EscalationLoop",
    "Firing",
    "FiringKey",
    "PlanState",
    "PlannedFiring",
    "TicketRun",
    "apply_firing",
    "dry_run",
    "due_firings",
    "next_due",
    "run_ticket",
]

FiringKey = tuple[str, int, int, str, "str | None", int]
"""``(rule, rule_version, level, ticket_id, target, cycle)``: what a firing is recorded by."""


@serializable("escalation.firing", aliases=("csmcore.escalation:Firing",))
@attrs.frozen(kw_only=True)
class Firing:
    """One level of one rule firing for one ticket.

    ``level`` is the level's index in the rule (from 0). For a level on a target, ``target``
    and ``cycle`` name the target cycle; for a :class:`ConditionHeld` level ``target`` is None
    and ``cycle`` is the episode number (from 1). ``at`` is the exact instant it is due.
    """

    rule: str
    rule_version: int
    level: int
    ticket_id: str
    target: str | None
    cycle: int
    at: datetime

    @property
    def key(self) -> FiringKey:
        """The identity an engine records so each firing happens once (without ``at``)."""
        return (self.rule, self.rule_version, self.level, self.ticket_id, self.target, self.cycle)

    @property
    def key_text(self) -> str:
        """:attr:`key` as compact JSON text (unambiguous; a stable idempotency key)."""
        return json.dumps(list(self.key), separators=(",", ":"), ensure_ascii=False)


class EscalationLoop(CsmError, RuntimeError):
    """Applying firings kept producing new firings beyond a bound (rules that feed each
    other at one instant)."""


def _rules(value: object) -> tuple[EscalationRule, ...]:
    if isinstance(value, EscalationRule):
        return (value,)
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise invalid_type("rules", value, "an EscalationRule or a collection of them")
    out = tuple(value)
    names: set[str] = set()
    for index, rule in enumerate(out):
        if not isinstance(rule, EscalationRule):
            raise invalid_type(f"rules[{index}]", rule, "an EscalationRule")
        if rule.name in names:
            from csmcore.errors import ValidationError

            raise ValidationError(
                f"rules[{index}]: rule name {rule.name!r} is given twice", field=f"rules[{index}]"
            )
        names.add(rule.name)
    return out


def _members(member: object, members: object, ticket: Ticket) -> dict[str, MemberTimeline]:
    """The loyalty members the walk reads, by member id: ``member`` (a MemberTimeline of the
    ticket's requester) or ``members`` (a mapping of member ids to their timelines; those who
    never were the ticket's requester are left out), checked."""
    if member is not None and members is not None:
        raise ValidationError(
            "give member= (the current requester) or members= (requesters by id), not both",
            field="members",
        )
    if members is None:
        if member is None:
            return {}
        if not isinstance(member, MemberTimeline):
            raise invalid_type("member", member, "a MemberTimeline (csmcore.loyalty) or None")
        if member.member_id != ticket.requester:
            former = (
                f"; {member.member_id!r} was the requester before: give members= (member id "
                "-> MemberTimeline) to read each requester at the instants they were it"
                if member.member_id in ticket.requesters
                else ""
            )
            raise ValidationError(
                f"member={member!r} is not ticket {ticket.id!r}'s requester "
                f"({ticket.requester!r}); conditions read the requester as a member{former}",
                field="member",
                value=member.member_id,
            )
        return {member.member_id: member}
    return _of_requesters(_check_members(members), ticket)


def _check_members(members: object) -> Mapping[str, MemberTimeline]:
    """``members`` checked: a mapping of member ids to their own timelines."""
    if not isinstance(members, Mapping):
        raise invalid_type(
            "members", members, "a mapping of member ids to MemberTimeline (csmcore.loyalty)"
        )
    for member_id, timeline in members.items():
        if not isinstance(timeline, MemberTimeline):
            raise invalid_type(
                f"members[{member_id!r}]", timeline, "a MemberTimeline (csmcore.loyalty)"
            )
        if timeline.member_id != member_id:
            raise ValidationError(
                f"members[{member_id!r}] is the timeline of {timeline.member_id!r}; each "
                "member id must map to its own timeline",
                field=f"members[{member_id!r}]",
                value=timeline.member_id,
            )
    return members


def _of_requesters(
    members: Mapping[str, MemberTimeline], ticket: Ticket
) -> dict[str, MemberTimeline]:
    """The timelines in (checked) ``members`` of those who were ``ticket``'s requester: one
    look-up per requester, however many members the mapping holds."""
    out: dict[str, MemberTimeline] = {}
    if not members:  # the engine's, for rules that read no member: the history is not read
        return out
    for member_id in ticket.requesters:
        timeline = members.get(member_id)
        if timeline is not None:
            out[member_id] = timeline
    return out


def _zone(value: datetime) -> tzinfo | None:
    return value.tzinfo


def _firing(found: Found, ticket_id: str, t: int, tz: tzinfo | None) -> Firing:
    rule, level, target, cycle = found
    return Firing(
        rule=rule.name,
        rule_version=rule.version,
        level=level,
        ticket_id=ticket_id,
        target=target,
        cycle=cycle,
        at=to_datetime(t, tz),
    )


def _key(found: Found, ticket_id: str) -> FiringKey:
    rule, level, target, cycle = found
    return (rule.name, rule.version, level, ticket_id, target, cycle)


def _check_ticket(ticket: object, book: object) -> None:
    if not isinstance(ticket, Ticket):
        raise invalid_type("ticket", ticket, "a Ticket")
    _check_book(book)


def _check_book(book: object) -> None:
    if not isinstance(book, SlaBook):
        raise invalid_type("book", book, "an SlaBook")


def due_firings(
    ticket: Ticket,
    book: SlaBook,
    rules: EscalationRule | Iterable[EscalationRule],
    start: datetime,
    end: datetime,
    *,
    fired: Container[FiringKey] = (),
    member: MemberTimeline | None = None,
    members: Mapping[str, MemberTimeline] | None = None,
) -> list[Firing]:
    """The firings due for ``ticket`` at instants ``start < at <= end``, in order (by
    instant, then rule order, level, target and cycle), leaving out those whose key is in
    ``fired``. Instants are in ``end``'s time zone. ``member`` is the ticket's requester as a
    loyalty member, for conditions on ``member.*`` fields (None: they read None); or
    ``members``, the timelines of its requesters by member id (see :func:`run_ticket`).

    Only events at or before each instant count at that instant, so the answer for a window
    does not depend on when it is asked: the union over consecutive windows equals the answer
    for their union (catch-up is exact). Raises NaiveDatetimeError for a naive instant.
    """
    _check_ticket(ticket, book)
    require_aware(start, "start")
    require_aware(end, "end")
    walk = Walk(static_for(book, _rules(rules)), ticket, _members(member, members, ticket))
    low, high = to_us(start), to_us(end)
    tz = _zone(end)
    out = []
    while walk.t <= high:
        t = walk.t
        for found in walk.step():
            if t > low and _key(found, ticket.id) not in fired:
                out.append(_firing(found, ticket.id, t, tz))
        if not walk.advance():
            break
    return out


def next_due(
    ticket: Ticket,
    book: SlaBook,
    rules: EscalationRule | Iterable[EscalationRule],
    after: datetime,
    *,
    fired: Container[FiringKey] = (),
    member: MemberTimeline | None = None,
    members: Mapping[str, MemberTimeline] | None = None,
) -> datetime | None:
    """The exact next instant strictly after ``after`` at which any of ``rules`` fires for
    ``ticket`` as its history stands (None when none ever will), in ``after``'s time zone.
    A new event on the ticket can change the answer: plan again after each change (and,
    when conditions read the requester's loyalty ``member``, after a write to their ledger).
    ``member`` / ``members``: as for :func:`run_ticket`.
    """
    _check_ticket(ticket, book)
    require_aware(after, "after")
    walk = Walk(static_for(book, _rules(rules)), ticket, _members(member, members, ticket))
    low = to_us(after)
    while True:
        t = walk.t
        for found in walk.step():
            if t > low and _key(found, ticket.id) not in fired:
                return to_datetime(t, after.tzinfo)
        if not walk.advance():
            return None


# --------------------------------------------------------------------------------------------
# Applying firings (pure) and the run loop the engine and the dry run share
# --------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class PlannedFiring:
    """A firing with what applying its level did: the ticket events (stamped ``at``, the
    firing instant or the ticket's last event if later) and the outside requests."""

    firing: Firing
    at: datetime
    events: tuple[TicketEvent, ...]
    requests: tuple[Any, ...]


@attrs.frozen(kw_only=True)
class TicketRun:
    """The outcome of :func:`run_ticket`: the ticket after every applied firing, the
    firings in the order applied, (when asked for with ``plan=True``) the instant of the
    first firing after the run's window, as the ticket then stands (None: none ever will, or
    not asked), and the walk's :class:`PlanState`."""

    ticket: Ticket
    firings: tuple[PlannedFiring, ...]
    next_due: datetime | None = None
    state: PlanState | None = None
    """Where the walk stopped: give it to the next :func:`run_ticket` of this ticket
    (``resume=``) once these firings are applied, to go on from here."""


def apply_firing(
    ticket: Ticket, firing: Firing, rule: EscalationRule, book: SlaBook
) -> tuple[Ticket, PlannedFiring]:
    """Apply the actions of ``firing``'s level of ``rule`` to ``ticket``, in order.

    Events are stamped at the firing instant, or at the ticket's last event when that is later
    (a history only grows at its end), with ``rule.actor`` as actor. Raises ValidationError
    when ``firing`` is not of ``rule``, and whatever an action raises (InvalidTransition for
    a change the ticket's history forbids).
    """
    if (firing.rule, firing.rule_version) != (rule.name, rule.version) or not (
        0 <= firing.level < len(rule.levels)
    ):
        raise ValidationError(
            f"firing {firing.key_text} is not of rule {rule.name!r} version {rule.version}",
            field="firing",
        )
    at = max(firing.at, ticket.events[-1].at)
    events: list[TicketEvent] = []
    requests: list[Any] = []
    for index, action in enumerate(rule.levels[firing.level].actions):
        context = ActionContext(at=at, actor=rule.actor, firing=firing, book=book, index=index)
        result: ActionResult = action.apply(ticket, context)
        ticket = result.ticket
        events.extend(result.events)
        requests.extend(result.requests)
    return ticket, PlannedFiring(
        firing=firing, at=at, events=tuple(events), requests=tuple(requests)
    )


def run_ticket(
    ticket: Ticket,
    book: SlaBook,
    rules: EscalationRule | Iterable[EscalationRule],
    start: datetime,
    end: datetime,
    *,
    fired: Container[FiringKey] = (),
    max_firings: int = 1000,
    plan: bool = False,
    resume: PlanState | None = None,
    member: MemberTimeline | None = None,
    members: Mapping[str, MemberTimeline] | None = None,
) -> TicketRun:
    """Fire, in order, every firing due in ``start < at <= end`` and apply its actions,
    planning again after each one that changed the ticket (an action's event at the firing
    instant can move or create later firings, exactly as it would for an engine running at
    that instant). Pure: returns the new ticket and what was done. With ``plan=True`` the
    walk goes on past ``end`` to the first firing not yet fired (:attr:`TicketRun.next_due`,
    in ``end``'s time zone): what :func:`next_due` of the new ticket would return, without
    walking the history again.

    ``resume`` is the :attr:`TicketRun.state` of an earlier run of the same book and rules on
    this ticket whose firings were all applied (or recorded in ``fired``) since: the walk goes
    on from where that run stopped instead of from the ticket's creation, so the firings
    before that instant are not looked at again. A state that does not apply (another
    ticket, book or rule set, an earlier run whose window started after this one's, or a
    history that went on with events at or before the instant it stopped at) is ignored. An
    engine that runs often keeps each ticket's state between runs
    (:class:`csmcore.services.EscalationEngine` does).

    ``member`` is the ticket's requester as a loyalty member (a
    :class:`~csmcore.loyalty.MemberTimeline` of their ledger entries), for conditions on
    ``member.*`` fields: each instant reads the member as they stood then, and the walk visits
    the instants at which they change (None: member fields read None). At instants before a
    change of requester the ticket was someone else's: ``member`` is not read there (member
    fields read None), so pass ``members`` instead, a mapping of member ids to the timelines of
    everyone who was the ticket's requester, and each instant reads the one who was the
    requester then (those never the requester are ignored; one missing reads None). Give one
    of the two. A ``resume`` state of a walk that read other members or another snapshot of
    their entries is ignored.

    Raises EscalationLoop after ``max_firings`` firings, ValidationError for a ``member`` who
    is not the ticket's requester, for both ``member`` and ``members``, or for a ``members``
    entry whose timeline is another member's.
    """
    _check_ticket(ticket, book)
    require_aware(start, "start")
    require_aware(end, "end")
    chosen = _rules(rules)
    readers = _members(member, members, ticket)
    done: set[FiringKey] = set()
    applied: list[PlannedFiring] = []
    static = static_for(book, chosen)
    resumed = None if resume is None else Walk.resume(resume, static, ticket, to_us(start), readers)
    walk = resumed if resumed is not None else Walk(static, ticket, readers)
    low, high = to_us(start), to_us(end)
    tz = _zone(end)
    ticket_id = ticket.id
    following: datetime | None = None

    def fresh(found: list[Found]) -> list[Found]:
        out = []
        for item in found:
            key = _key(item, ticket_id)
            if key not in done and key not in fired:
                out.append(item)
        return out

    while not walk.finished:
        t = walk.t
        if t > high:
            if not plan:
                break
            if fresh(walk.step()):
                following = to_datetime(t, tz)
                walk.rewind()  # at rest before this instant: the next run fires there
                break
        else:
            here = walk.step()
            pending = fresh(here) if t > low else []
            while pending:
                if len(applied) >= max_firings:
                    raise EscalationLoop(
                        f"ticket {ticket_id!r}: more than max_firings={max_firings} firings "
                        f"between {start.isoformat()} and {end.isoformat()}; do rules feed "
                        "each other?"
                    )
                found = pending.pop(0)
                firing = _firing(found, ticket_id, t, tz)
                ticket, planned = apply_firing(ticket, firing, found[0], book)
                done.add(firing.key)
                applied.append(planned)
                if planned.events:
                    if to_us(planned.at) > t:
                        # Stamped after the walk's instant (the history already went on):
                        # what was found at t stands; the walk meets the new events later.
                        walk.retake(ticket)
                    else:
                        # At the walk's instant: visit it again with the new events.
                        walk.rewind(ticket)
                        pending = fresh(walk.step())
        if not walk.advance():
            break
    return TicketRun(
        ticket=ticket, firings=tuple(applied), next_due=following, state=walk.state(to_us(start))
    )


def dry_run(
    tickets: Iterable[Ticket],
    book: SlaBook,
    rules: EscalationRule | Iterable[EscalationRule],
    start: datetime,
    end: datetime,
    *,
    fired: Container[FiringKey] = (),
    members: Mapping[str, MemberTimeline] | None = None,
) -> list[PlannedFiring]:
    """What would fire for ``tickets`` in ``start < at <= end`` and what it would do, in
    order of instant (then ticket id, rule order, level): :func:`run_ticket` for each ticket,
    changing nothing (every value here is immutable; nothing is stored or sent). ``members``
    maps member ids to their loyalty member timelines (for conditions on ``member.*``): each
    ticket reads those of its requesters, each at the instants they were its requester."""
    check_iterable(tickets, "tickets", "an iterable of Ticket")
    _check_book(book)
    chosen = _rules(rules)
    order = {rule.name: i for i, rule in enumerate(chosen)}
    # The mapping is checked once; each ticket looks up its own requesters in it (reading it
    # whole for every ticket would make a dry run over many tickets and members quadratic).
    checked = None if members is None else _check_members(members)
    reads = checked is not None and static_for(book, chosen).reads_member
    out: list[PlannedFiring] = []
    for ticket in tickets:
        mine = _of_requesters(checked, ticket) if reads and checked is not None else None
        out.extend(run_ticket(ticket, book, chosen, start, end, fired=fired, members=mine).firings)
    # by instant: two datetimes of one zone compare by wall reading, fold ignored (PEP 495)
    out.sort(
        key=lambda p: (to_us(p.firing.at), p.firing.ticket_id, order[p.firing.rule], p.firing.level)
    )
    return out


# Resolved here, where the names exist: the package presents these classes as its own.
for _cls in (Firing, PlannedFiring, TicketRun):
    attrs.resolve_types(_cls)
del _cls
