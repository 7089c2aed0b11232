"""Importing audit logs that repeat the whole row at each change (ServiceNow's incident log):
consecutive rows of a case are compared, and what changed becomes events."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, Final

import attrs

from csmcore._boundary import guard_iter
from csmcore.errors import ValidationError
from csmcore.tickets import (
    Channel,
    Priority,
    PriorityMap,
    Role,
    Status,
    StatusMap,
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
    FieldReader,
    ImportedTicket,
    ImportReport,
    Reason,
    Timestamps,
    column_index,
    field_value,
    repairing,
)
from csmcore.tickets.importing._events import EventMaker

__all__ = ["SERVICENOW", "SnapshotFormat", "import_snapshots"]


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _frozen_map(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


def _priority_map(value: PriorityMap | Mapping[str, Priority | str]) -> PriorityMap:
    return value if isinstance(value, PriorityMap) else PriorityMap(custom=value)


@attrs.frozen(kw_only=True)
class SnapshotFormat:
    """Which columns of a full-row audit log mean what.

    Each row is the whole record after one update. ``case`` names the ticket id column, ``at``
    the column with the instant of the update, ``order`` an optional integer column that orders
    updates of one case made at the same instant (ServiceNow's ``sys_mod_count``: it is not
    reliable across instants, so time comes first). ``opened_at`` (optional) is when the
    ticket was created (the first row's ``at`` when absent or later).

    The first row of a case gives :class:`~csmcore.tickets.TicketCreated`; each later row is
    compared with the one before it, and each change gives events, in this order: ``state``
    (through ``statuses``, a :class:`~csmcore.tickets.StatusMap` of the export's state names) ->
    :class:`~csmcore.tickets.StatusChanged` (or :class:`~csmcore.tickets.Reopened`);
    ``priority`` (through ``priorities``, a :class:`~csmcore.tickets.PriorityMap` of the
    export's priority names, or a plain mapping of name -> :class:`~csmcore.tickets.Priority`
    that becomes one) -> :class:`~csmcore.tickets.PriorityChanged` whose ``priority`` is the
    category and ``priority_name`` the export's name (None for a category's own name);
    ``group`` / ``assignee`` -> :class:`~csmcore.tickets.Assigned`; ``requester`` ->
    :class:`~csmcore.tickets.RequesterChanged` (a missing cell reads as ``default_requester``,
    as at creation); every other column not in ``ignore`` -> one
    :class:`~csmcore.tickets.FieldsChanged` with the changed custom fields (cells read by
    ``field_reader``; missing cells remove the field). ``actor`` names the column
    whose value becomes each event's ``actor``. ``channel`` maps through ``channels`` (unknown
    texts: ``other``). A row whose columns other than ``ignore`` equal the row before it is a
    no-op.

    ``derived`` columns (counts the ticket works out itself, such as ``reopen_count``) are
    neither fields nor compared.
    """

    case: str
    at: str
    state: str
    statuses: StatusMap
    order: str | None = None
    opened_at: str | None = None
    priority: str | None = None
    priorities: PriorityMap = attrs.field(factory=PriorityMap, converter=_priority_map)
    default_priority: Priority = Priority.NORMAL
    group: str | None = None
    assignee: str | None = None
    requester: str | None = None
    default_requester: str = "unknown"
    actor: str | None = None
    channel: str | None = None
    channels: Mapping[str, Channel] = attrs.field(factory=dict, converter=_frozen_map)
    created_by: Role = Role.REQUESTER
    ignore: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    derived: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
    missing: frozenset[str] = attrs.field(default=DEFAULT_MISSING, converter=_names)
    field_reader: FieldReader = field_value
    state_field: str = "import.state"
    priority_field: str = "import.priority"


SERVICENOW: Final = SnapshotFormat(
    case="number",
    at="sys_updated_at",
    order="sys_mod_count",
    opened_at="opened_at",
    state="incident_state",
    statuses=StatusMap(
        custom={
            "New": Status.NEW,
            "Active": Status.OPEN,
            "Awaiting User Info": Status.PENDING,
            "Awaiting Evidence": Status.PENDING,
            "Awaiting Problem": Status.ON_HOLD,
            "Awaiting Vendor": Status.ON_HOLD,
            "Resolved": Status.SOLVED,
            "Closed": Status.CLOSED,
        }
    ),
    priority="priority",
    priorities={
        "1 - Critical": Priority.URGENT,
        "2 - High": Priority.HIGH,
        "3 - Moderate": Priority.NORMAL,
        "4 - Low": Priority.LOW,
        "5 - Planning": Priority.LOW,
    },
    group="assignment_group",
    assignee="assigned_to",
    requester="caller_id",
    actor="sys_updated_by",
    channel="contact_type",
    channels={
        "Phone": Channel.PHONE,
        "Email": Channel.EMAIL,
        "Self service": Channel.WEB,
        "Direct opening": Channel.OTHER,
        "IVR": Channel.PHONE,
    },
    ignore=frozenset({"sys_mod_count", "sys_updated_at", "sys_updated_by"}),
    derived=frozenset({"reassignment_count", "reopen_count", "active"}),
)
"""The columns of ServiceNow's incident audit log (the UCI "Incident management process
enriched event log"): states New, Active, Awaiting ..., Resolved, Closed; priorities
``1 - Critical`` to ``5 - Planning``. Its timestamps are day first (``d/m/yyyy H:MM``):
read them with ``Timestamps(zone=..., day_first=True)``. ``active`` is derived (false exactly
when the incident is closed), like the reassignment and reopen counts."""


_BOOLS: Final[dict[str, bool]] = {"true": True, "false": False}


class _Plan:
    """Column positions of one header, resolved once per import."""

    def __init__(self, fmt: SnapshotFormat, header: Sequence[str]) -> None:
        def index(name: str | None, what: str) -> int | None:
            return None if name is None else column_index(header, name, what)

        self.width = len(header)
        self.case = column_index(header, fmt.case, "case")
        self.at = column_index(header, fmt.at, "at")
        self.state = column_index(header, fmt.state, "state")
        self.order = index(fmt.order, "order")
        self.opened_at = index(fmt.opened_at, "opened_at")
        self.priority = index(fmt.priority, "priority")
        self.group = index(fmt.group, "group")
        self.assignee = index(fmt.assignee, "assignee")
        self.requester = index(fmt.requester, "requester")
        self.actor = index(fmt.actor, "actor")
        self.channel = index(fmt.channel, "channel")
        named = {
            i
            for i in (
                self.case,
                self.at,
                self.state,
                self.order,
                self.opened_at,
                self.priority,
                self.group,
                self.assignee,
                self.requester,
                self.actor,
                self.channel,
            )
            if i is not None
        }
        skip = fmt.ignore | fmt.derived
        self.fields = tuple(
            (i, name) for i, name in enumerate(header) if i not in named and name not in skip
        )
        # What a later row is compared on: the named columns, then the field columns, each in
        # one itemgetter (the case column is added so that each gives a tuple).
        named_columns = [self.case, self.state]
        for i in (self.priority, self.group, self.assignee, self.requester):
            if i is not None:
                named_columns.append(i)
        self.key = itemgetter(*named_columns)
        self.field_key = itemgetter(self.case, *(i for i, _ in self.fields))


def import_snapshots(
    rows: Iterable[Sequence[str]],
    *,
    header: Sequence[str],
    format: SnapshotFormat,
    timestamps: Timestamps,
    policy: FaultPolicy | str = FaultPolicy.REPAIR,
    report: ImportReport | None = None,
) -> Iterator[ImportedTicket]:
    """Build tickets from a full-row audit log, one ticket at a time.

    ``rows`` are sequences of cell texts in the order of ``header`` (e.g. a ``csv.reader``
    after its header row); the rows of one case must be contiguous (a case that comes back
    after another is rejected with ``case_not_contiguous``). Memory: the rows of one case at a
    time, plus the set of case ids seen. Instants are read with ``timestamps`` and stored in
    UTC. ``policy`` is a :class:`FaultPolicy` (``"strict"`` or ``"repair"``). Rejected tickets
    are not yielded: they are listed in ``report`` (an :class:`ImportReport` the caller keeps
    to read the counts; it is filled as the iterator is consumed).

    Raises ValidationError at once when a column the format names is not in ``header``.
    """
    check_arguments(rows, header, format, SnapshotFormat, timestamps)
    plan = _Plan(format, header)
    repair = repairing(policy)
    build = _SnapshotBuild(format, plan, timestamps, repair)
    imported = run(rows, plan.case, format.missing, build, report, width=plan.width)
    return guard_iter(imported, "import_snapshots")


class _SnapshotBuild:
    """Builds the events of one case; called once per case by :func:`run`."""

    def __init__(
        self, fmt: SnapshotFormat, plan: _Plan, timestamps: Timestamps, repair: bool
    ) -> None:
        self.fmt = fmt
        self.plan = plan
        self.parse = timestamps.parse
        self.memo = timestamps.memo
        statuses = fmt.statuses
        self.status_of = {name: statuses.resolve(name) for name in statuses.names}
        priorities = fmt.priorities
        self.priority_of = {name: priorities.resolve(name) for name in priorities.names}
        self.folded = (False, False)
        self.repair = repair
        self.missing = fmt.missing
        self.read_field = fmt.field_reader
        self.make = EventMaker()

    def _instant(self, text: str, row: int, what: str) -> Any:
        if text in self.missing:
            raise Reject(Reason.BAD_TIMESTAMP, f"row {row}: {what} is missing", row, text)
        try:
            return self.parse(text)
        except ValidationError as err:
            raise Reject(Reason.BAD_TIMESTAMP, f"row {row}: {what}: {err}", row, text) from None

    def _value(self, text: str) -> str | None:
        return None if text in self.missing else text

    def __call__(self, case: str, first: int, rows: Rows) -> Builder:
        plan = self.plan
        check_id(case, first)
        width = plan.width
        at_i = plan.at
        memo = self.memo
        ats: list[datetime] = []
        append = ats.append
        previous: datetime | None = None
        reordered = tied = False
        for number, row in enumerate(rows, first):
            if len(row) < width:
                raise Reject(
                    Reason.SHORT_ROW,
                    f"row {number} has {len(row)} cells; the header has {width}",
                    number,
                )
            text = row[at_i]
            at = memo.get(text)
            if at is None:
                at = self._instant(text, number, self.fmt.at)
            if previous is not None and at <= previous and not reordered:
                # Earlier than the row before it, or at the same instant: the order column
                # (when there is one) decides.
                step = -1 if at < previous else self._order_step(rows, number - first, first)
                if step < 0:
                    if not self.repair:
                        raise Reject(
                            Reason.OUT_OF_ORDER,
                            f"row {number} is earlier than row {number - 1} (by {self.fmt.at}"
                            + (f", then {self.fmt.order})" if plan.order is not None else ")"),
                            number,
                        )
                    reordered = True
                elif step == 0:
                    tied = True
            previous = at
            append(at)
        numbers: Sequence[int] = range(first, first + len(rows))
        if reordered or (tied and self.repair):
            # By time, then order column, then content: the same tickets whatever the input
            # order of the rows of a case (in strict mode, rows that tie keep their order).
            timed = sorted(
                zip(ats, numbers, rows, strict=True),
                key=lambda item: (item[0], self._order(item[2], item[1]), tuple(item[2])),
            )
            ats = [item[0] for item in timed]
            numbers = [item[1] for item in timed]
            rows = [item[2] for item in timed]
        builder = self._create(case, ats[0], numbers[0], rows[0])
        if reordered:
            builder.count_repair(Reason.OUT_OF_ORDER)
        if len(rows) > 1:
            self._changes(builder, ats, numbers, rows)
        return builder

    def _order(self, row: Sequence[str], number: int) -> int:
        """The order column's integer (0 without one); rejects a cell that is not one."""
        index = self.plan.order
        if index is None:
            return 0
        text = row[index]
        try:
            return int(text)
        except ValueError:
            raise Reject(
                Reason.OUT_OF_ORDER,
                f"row {number}: {self.fmt.order}={text!r} is not an integer",
                number,
                text,
            ) from None

    def _order_step(self, rows: Rows, index: int, first: int) -> int:
        """-1, 0 or 1: rows[index] compared with the row before it by the order column."""
        before = self._order(rows[index - 1], first + index - 1)
        after = self._order(rows[index], first + index)
        return (after > before) - (after < before)

    def _create(self, case: str, at: datetime, number: int, row: Sequence[str]) -> Builder:
        fmt, plan = self.fmt, self.plan
        created_at = at
        if plan.opened_at is not None and row[plan.opened_at] not in self.missing:
            opened = self._instant(row[plan.opened_at], number, fmt.opened_at or "")
            created_at = min(opened, at)
        missing = self.missing
        read = self.read_field
        fields: dict[str, Any]
        if read is field_value:
            bools = _BOOLS
            fields = {
                column: bools.get(text, text)
                for i, column in plan.fields
                if (text := row[i]) not in missing
            }
        else:
            fields = {}
            for i, column in plan.fields:
                text = row[i]
                if text not in missing:
                    value = read(column, text)
                    if value is not None:
                        fields[column] = value
        repairs: list[Reason] = []
        status, name = self._state(row[plan.state], number, fields)
        if status is None:
            repairs.append(Reason.UNKNOWN_STATE)
        priority, priority_name = fmt.default_priority, None
        if plan.priority is not None:
            found = self._priority(row[plan.priority], number, fields)
            if found is None:
                repairs.append(Reason.UNKNOWN_PRIORITY)
            else:
                priority, priority_name = found
        requester = fmt.default_requester
        if plan.requester is not None:
            requester = self._value(row[plan.requester]) or requester
        channel = Channel.OTHER
        if plan.channel is not None:
            channel = fmt.channels.get(row[plan.channel], Channel.OTHER)
        try:
            created = self.make.created(
                at=created_at,
                actor=None if plan.actor is None else self._value(row[plan.actor]),
                ticket_id=case,
                created_by=fmt.created_by,
                channel=channel,
                priority=priority,
                priority_name=priority_name,
                requester=requester,
                group=None if plan.group is None else self._value(row[plan.group]),
                assignee=None if plan.assignee is None else self._value(row[plan.assignee]),
                status=status or Status.NEW,
                status_name=name,
                fields=fields,
            )
        except ValidationError as err:
            raise Reject(Reason.INVALID_VALUE, f"row {number}: {err}", number, error=err) from None
        builder = Builder(created, number, self.repair, self.make)
        for reason in repairs:
            builder.count_repair(reason)
        self.folded = (status is None, Reason.UNKNOWN_PRIORITY in repairs)
        return builder

    def _state(
        self, text: str, number: int, changes: dict[str, Any]
    ) -> tuple[Status | None, str | None]:
        """The (category, custom name) of a state cell; an unknown one is rejected or folded
        into ``changes`` (returning ``(None, None)``: keep the current status)."""
        found = self.status_of.get(text)
        if found is not None:
            return found
        statuses = self.fmt.statuses
        if not self.repair:
            raise Reject(
                Reason.UNKNOWN_STATE,
                f"row {number}: state {text!r} is not known; accepted: {list(statuses.names)}",
                number,
                text,
            )
        changes[self.fmt.state_field] = self._value(text)
        return None, None

    def _priority(
        self, text: str, number: int, changes: dict[str, Any]
    ) -> tuple[Priority, str | None] | None:
        """The (category, custom name) of a priority cell; an unknown one is rejected or folded
        into ``changes`` (returning None: keep the current priority)."""
        found = self.priority_of.get(text)
        if found is not None:
            return found
        if not self.repair:
            raise Reject(
                Reason.UNKNOWN_PRIORITY,
                f"row {number}: priority {text!r} is not known; accepted: "
                f"{list(self.fmt.priorities.names)}",
                number,
                text,
            )
        changes[self.fmt.priority_field] = self._value(text)
        return None

    def _changes(
        self, builder: Builder, ats: list[datetime], numbers: Sequence[int], rows: Rows
    ) -> None:
        plan, fmt = self.plan, self.fmt
        key = plan.key
        state_i, priority_i = plan.state, plan.priority
        group_i, assignee_i = plan.group, plan.assignee
        requester_i, actor_i = plan.requester, plan.actor
        fields = plan.fields
        field_key = plan.field_key
        missing = self.missing
        read = self.read_field
        folded_state, folded_priority = self.folded
        status_of = self.status_of
        priority_of = self.priority_of
        default_requester = fmt.default_requester
        events = builder.events
        make = self.make
        previous = rows[0]
        previous_key = key(previous)
        previous_fields = field_key(previous)
        # Rows equal to the one before: no-ops, counted once after the loop (builder.noop's
        # work, inlined: these rows are a quarter of a ServiceNow log).
        noop_rows = builder.noop_rows
        unchanged = 0
        for index in range(1, len(rows)):
            row = rows[index]
            row_key = key(row)
            row_fields = field_key(row)
            if row_key == previous_key and row_fields == previous_fields:
                noop_rows.append(numbers[index])
                unchanged += 1
                continue
            at = ats[index]
            number = numbers[index]
            actor = None if actor_i is None else row[actor_i]
            if actor in missing:
                actor = None
            changes: dict[str, Any] = {}
            before = len(events)
            try:
                text = row[state_i]
                if text != previous[state_i]:
                    found = status_of.get(text)
                    if found is not None:
                        if folded_state:
                            changes[fmt.state_field] = None
                            folded_state = False
                        builder.change_status(found[0], found[1], at, actor, number)
                    else:
                        self._state(text, number, changes)
                        folded_state = True
                        builder.count_repair(Reason.UNKNOWN_STATE)
                if priority_i is not None and row[priority_i] != previous[priority_i]:
                    text = row[priority_i]
                    named = priority_of.get(text)
                    if named is None:
                        self._priority(text, number, changes)
                        folded_priority = True
                        builder.count_repair(Reason.UNKNOWN_PRIORITY)
                    else:
                        if folded_priority:
                            changes[fmt.priority_field] = None
                            folded_priority = False
                        builder.add(make.priority_changed(at, actor, named[0], named[1]), number)
                if (group_i is not None and row[group_i] != previous[group_i]) or (
                    assignee_i is not None and row[assignee_i] != previous[assignee_i]
                ):
                    group = None if group_i is None else row[group_i]
                    assignee = None if assignee_i is None else row[assignee_i]
                    builder.add(
                        make.assigned(
                            at,
                            actor,
                            None if group in missing else group,
                            None if assignee in missing else assignee,
                        ),
                        number,
                    )
                if requester_i is not None and row[requester_i] != previous[requester_i]:
                    text = row[requester_i]
                    builder.add(
                        make.requester_changed(
                            at, actor, default_requester if text in missing else text
                        ),
                        number,
                    )
                if row_fields != previous_fields:
                    for i, column in fields:
                        text = row[i]
                        if text != previous[i]:
                            changes[column] = None if text in missing else read(column, text)
                if changes:
                    builder.add(make.fields_changed(at, actor, changes), number)
            except ValidationError as err:
                raise Reject(
                    Reason.INVALID_VALUE, f"row {number}: {err}", number, error=err
                ) from None
            if len(events) == before:
                builder.noop(number, Reason.REPEATED_STATUS)
            previous, previous_key, previous_fields = row, row_key, row_fields
        if unchanged:
            noops = builder.noops
            noops[Reason.NO_CHANGE] = noops.get(Reason.NO_CHANGE, 0) + unchanged
