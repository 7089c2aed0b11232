"""Importing activity logs (one row per activity, like the Helpdesk process-mining log): each
activity name maps to what it does to the ticket."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import pairwise
from typing import Any, Final

import attrs

from csmcore._boundary import guard_iter
from csmcore.errors import ValidationError
from csmcore.tickets import (
    Channel,
    Commented,
    FieldsChanged,
    Priority,
    Role,
    Status,
    TicketCreated,
)
from csmcore.tickets.importing._build import (
    Builder,
    Reject,
    Rows,
    check_arguments,
    check_id,
    run,
)
from csmcore.tickets.importing._common import (
    DEFAULT_MISSING,
    FaultPolicy,
    ImportedTicket,
    ImportReport,
    Reason,
    Timestamps,
    column_index,
    repairing,
)

__all__ = ["HELPDESK", "Activity", "ActivityFormat", "import_activities"]


class Activity(enum.StrEnum):
    """What one activity of a log does to the ticket.

    - ``agent_reply``: a public comment by the row's resource as an agent (what first- and
      next-reply targets count); a ticket that is new, pending, on-hold or solved is put back in
      ``open`` first (from solved that is a reopen, as the ticket model counts it).
    - ``requester_comment``: a comment by the requester.
    - ``note``: an internal note by an agent.
    - ``open``, ``pending``, ``on-hold``, ``solved``, ``closed``: a status change.
    - ``reported``: the activity name is recorded in the custom field named by
      ``ActivityFormat.activity_field`` (no effect on SLAs; it keeps the row visible).
    - ``ignore``: the row is dropped as a counted no-op (``ignored_activity``).
    """

    AGENT_REPLY = "agent_reply"
    REQUESTER_COMMENT = "requester_comment"
    NOTE = "note"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on-hold"
    SOLVED = "solved"
    CLOSED = "closed"
    REPORTED = "reported"
    IGNORE = "ignore"


_STATUS_OF: Final[dict[Activity, Status]] = {
    Activity.OPEN: Status.OPEN,
    Activity.PENDING: Status.PENDING,
    Activity.ON_HOLD: Status.ON_HOLD,
    Activity.SOLVED: Status.SOLVED,
    Activity.CLOSED: Status.CLOSED,
}
_BACK_TO_OPEN: Final = frozenset({Status.NEW, Status.PENDING, Status.ON_HOLD, Status.SOLVED})


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _activities(value: Mapping[str, Activity | str]) -> Mapping[str, Activity]:
    return {name: Activity(kind) for name, kind in value.items()}


@attrs.frozen(kw_only=True)
class ActivityFormat:
    """Which columns of an activity log mean what, and what each activity does.

    ``case`` names the ticket id column, ``activity`` the activity name, ``at`` its instant,
    ``actor`` (optional) the person or team who did it (the events' ``actor`` and a comment's
    ``author``). ``activities`` maps activity names to :class:`Activity`; a name it does not
    list does ``default``. The ticket is created at its first row's instant with ``channel``,
    ``priority``, ``requester`` and ``created_by``; the first row's activity then applies too.
    """

    case: str
    activity: str
    at: str
    actor: str | None = None
    activities: Mapping[str, Activity] = attrs.field(factory=dict, converter=_activities)
    default: Activity = attrs.field(default=Activity.REPORTED, converter=Activity)
    channel: Channel = Channel.OTHER
    priority: Priority = Priority.NORMAL
    requester: str = "unknown"
    created_by: Role = Role.REQUESTER
    activity_field: str = "activity"
    missing: frozenset[str] = attrs.field(default=DEFAULT_MISSING, converter=_names)


HELPDESK: Final = ActivityFormat(
    case="case:concept:name",
    activity="concept:name",
    at="time:timestamp",
    actor="org:resource",
    activities={
        "Take in charge ticket": Activity.AGENT_REPLY,
        "Wait": Activity.PENDING,
        "Resolve ticket": Activity.SOLVED,
        "Closed": Activity.CLOSED,
    },
)
"""The Helpdesk event log (Polato, Mendeley Data 2017, CC BY 4.0): "Take in charge ticket" is
an agent's public reply, "Wait" pending, "Resolve ticket" solved, "Closed" closed; the other
activities are recorded in the field ``activity``. Its ``+00:00`` offsets are an artefact of
the export: read them with ``Timestamps(zone="Europe/Rome", ignore_offset=True)``."""


def import_activities(
    rows: Iterable[Sequence[str]],
    *,
    header: Sequence[str],
    format: ActivityFormat,
    timestamps: Timestamps,
    policy: FaultPolicy | str = FaultPolicy.REPAIR,
    report: ImportReport | None = None,
) -> Iterator[ImportedTicket]:
    """Build tickets from an activity log, one ticket at a time.

    Arguments, memory and results as for :func:`import_snapshots`. A status activity that
    repeats the ticket's status (a second close too) is a no-op (``repeated_status``) in both
    policies, as the ticket model treats it. In ``repair``
    mode the rows of a case are sorted (by instant, then content) and an activity on a closed
    ticket gets the reopen the log never recorded; ``strict`` rejects such tickets.
    """
    check_arguments(rows, header, format, ActivityFormat, timestamps)
    plan = (
        column_index(header, format.case, "case"),
        column_index(header, format.activity, "activity"),
        column_index(header, format.at, "at"),
        None if format.actor is None else column_index(header, format.actor, "actor"),
        len(header),
    )
    repair = repairing(policy)
    build = _ActivityBuild(format, plan, timestamps, repair)
    imported = run(rows, plan[0], format.missing, build, report, width=plan[4])
    return guard_iter(imported, "import_activities")


class _ActivityBuild:
    def __init__(
        self,
        fmt: ActivityFormat,
        plan: tuple[int, int, int, int | None, int],
        timestamps: Timestamps,
        repair: bool,
    ) -> None:
        self.fmt = fmt
        _, self.activity_i, self.at_i, self.actor_i, self.width = plan
        self.parse = timestamps.parse
        self.repair = repair
        self.kinds = dict(fmt.activities)

    def __call__(self, case: str, first: int, rows: Rows) -> Builder:
        fmt = self.fmt
        check_id(case, first)
        missing = fmt.missing
        at_i, width, parse = self.at_i, self.width, self.parse
        timed: list[tuple[Any, int, Sequence[str]]] = []
        for number, row in enumerate(rows, first):
            if len(row) < width:
                raise Reject(
                    Reason.SHORT_ROW,
                    f"row {number} has {len(row)} cells; the header has {width}",
                    number,
                )
            text = row[at_i]
            try:
                if text in missing:
                    raise ValidationError(f"{fmt.at} is missing")
                at = parse(text)
            except ValidationError as err:
                raise Reject(Reason.BAD_TIMESTAMP, f"row {number}: {err}", number, text) from None
            timed.append((at, number, row))
        reordered = tied = False
        for before, after in pairwise(timed):
            if after[0] < before[0]:
                if not self.repair:
                    raise Reject(
                        Reason.OUT_OF_ORDER,
                        f"row {after[1]} is earlier than row {before[1]} (by {fmt.at})",
                        after[1],
                    )
                reordered = True
                break
            if after[0] == before[0]:
                tied = True
        if reordered or (tied and self.repair):
            # By time, then content: the same tickets whatever the input order of the rows
            # of a case (in strict mode, rows at the same instant keep their order).
            timed.sort(key=lambda item: (item[0], tuple(item[2])))
        first_at, first_number, first_row = timed[0]
        try:
            created = TicketCreated(
                at=first_at,
                actor=self._actor(first_row),
                ticket_id=case,
                created_by=fmt.created_by,
                channel=fmt.channel,
                priority=fmt.priority,
                requester=fmt.requester,
            )
            builder = Builder(created, first_number, self.repair)
            if reordered:
                builder.count_repair(Reason.OUT_OF_ORDER)
        except ValidationError as err:
            raise Reject(
                Reason.INVALID_VALUE, f"row {first_number}: {err}", first_number, error=err
            ) from None
        for at, number, row in timed:
            try:
                self._apply(builder, at, number, row)
            except ValidationError as err:
                raise Reject(
                    Reason.INVALID_VALUE, f"row {number}: {err}", number, error=err
                ) from None
        return builder

    def _actor(self, row: Sequence[str]) -> str | None:
        if self.actor_i is None:
            return None
        actor = row[self.actor_i]
        return None if actor in self.fmt.missing else actor

    def _apply(self, builder: Builder, at: Any, number: int, row: Sequence[str]) -> None:
        name = row[self.activity_i]
        kind = self.kinds.get(name, self.fmt.default)
        actor = self._actor(row)
        if kind is Activity.IGNORE:
            builder.noop(number, Reason.IGNORED_ACTIVITY)
            return
        if kind is Activity.REPORTED:
            changes = {self.fmt.activity_field: None if name in self.fmt.missing else name}
            builder.add(FieldsChanged(at=at, actor=actor, changes=changes), number)
            return
        status = _STATUS_OF.get(kind)
        if status is not None:
            if status is builder.status and builder.status_name is None:
                # The ticket model accepts a repeated status (closed included) as a no-op.
                builder.noop(number, Reason.REPEATED_STATUS)
                return
            builder.change_status(status, None, at, actor, number)
            return
        builder.reopen_if_closed(at, actor, number, f"activity {name!r}")
        if kind is Activity.AGENT_REPLY:
            if builder.status in _BACK_TO_OPEN:
                builder.change_status(Status.OPEN, None, at, actor, number)
            event = Commented(at=at, actor=actor, author_role=Role.AGENT, author=actor)
        elif kind is Activity.REQUESTER_COMMENT:
            event = Commented(at=at, actor=actor, author_role=Role.REQUESTER)
        else:
            event = Commented(
                at=at, actor=actor, author_role=Role.AGENT, public=False, author=actor
            )
        builder.add(event, number)
