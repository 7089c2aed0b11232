"""Building one ticket's events from its rows: the status rules both importers share, the
repairs, and turning a finished history into a ticket or a rejection."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final

from csmcore._values import check_iterable, show
from csmcore.errors import CsmError, InvalidTransition, ValidationError, invalid_type
from csmcore.tickets import (
    Reopened,
    Status,
    Ticket,
    TicketCreated,
    TicketEventBase,
)
from csmcore.tickets.importing._common import (
    ImportedTicket,
    ImportReport,
    Reason,
    Rejection,
)
from csmcore.tickets.importing._events import EventMaker

__all__ = ["Builder", "Reject", "Rows", "check_id", "group_cases", "run"]

_NEW: Final = Status.NEW
_OPEN: Final = Status.OPEN
_SOLVED: Final = Status.SOLVED
_CLOSED: Final = Status.CLOSED
_REOPEN_TO: Final = frozenset({Status.OPEN, Status.PENDING, Status.ON_HOLD})


class Reject(Exception):
    """Raised inside a ticket's build to reject it (caught by :meth:`Builder.finish`)."""

    def __init__(
        self,
        reason: Reason,
        message: str,
        row: int | None = None,
        value: str | None = None,
        error: CsmError | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.row = row
        self.value = value
        self.error = error


class Builder:
    """The events of one ticket as they are built, with the status they leave it in.

    ``status`` / ``status_name`` track the ticket's status so that the importers can apply the
    rules of the ticket model (and repair what breaks them) before the model sees the history.
    """

    __slots__ = (
        "event_rows",
        "events",
        "make",
        "noop_rows",
        "noops",
        "repair",
        "repairs",
        "status",
        "status_name",
    )

    def __init__(
        self, created: TicketCreated, row: int, repair: bool, make: EventMaker | None = None
    ) -> None:
        self.make = EventMaker() if make is None else make
        self.events: list[Any] = [created]
        self.event_rows: list[int] = [row]
        self.noop_rows: list[int] = []
        self.noops: dict[str, int] = {}
        self.repairs: dict[str, int] = {}
        self.status: Status = created.status
        self.status_name: str | None = created.status_name
        self.repair = repair

    def add(self, event: TicketEventBase, row: int) -> None:
        self.events.append(event)
        self.event_rows.append(row)

    def noop(self, row: int, reason: Reason) -> None:
        """Row ``row`` changes nothing: dropped, and counted under ``reason`` (unless it is
        the row that created the ticket, which is represented by TicketCreated)."""
        if row == self.event_rows[0]:
            return
        self.noop_rows.append(row)
        noops = self.noops
        noops[reason] = noops.get(reason, 0) + 1

    def count_repair(self, reason: Reason) -> None:
        """One more repair of kind ``reason`` in this ticket."""
        repairs = self.repairs
        repairs[reason] = repairs.get(reason, 0) + 1

    def reopen_if_closed(self, at: datetime, actor: str | None, row: int, what: str) -> None:
        """Before an event a closed ticket refuses: reject, or insert the missing reopen."""
        if self.status is not _CLOSED:
            return
        if not self.repair:
            raise Reject(
                Reason.MISSING_REOPEN,
                f"row {row}: {what} on a closed ticket, and the log records no reopen",
                row,
            )
        self.add(Reopened(at=at, actor=actor, status=_OPEN), row)
        self.status, self.status_name = _OPEN, None
        self.count_repair(Reason.MISSING_REOPEN)

    def change_status(
        self, status: Status, name: str | None, at: datetime, actor: str | None, row: int
    ) -> bool:
        """Move to ``status`` (custom ``name``); False when that is the current status already.

        A move out of closed needs a reopen and a move back to new is refused: both reject in
        strict mode; repair inserts the reopen and reads 'new' as 'open'.
        """
        if status is self.status and name == self.status_name:
            return False
        if status is _NEW and self.status is not _NEW:
            if not self.repair:
                raise Reject(
                    Reason.BACK_TO_NEW,
                    f"row {row}: the ticket is {self.status.value!r} and goes back to 'new'",
                    row,
                    name,
                )
            self.count_repair(Reason.BACK_TO_NEW)
            status, name = _OPEN, None
            if status is self.status and name == self.status_name:
                return True
        if self.status is _CLOSED and status is not _CLOSED:
            if not self.repair:
                raise Reject(
                    Reason.MISSING_REOPEN,
                    f"row {row}: the ticket leaves 'closed' for {status.value!r}, and the log "
                    "records no reopen",
                    row,
                    name,
                )
            target = status if status in _REOPEN_TO else _OPEN
            self.add(Reopened(at=at, actor=actor, status=target), row)
            self.count_repair(Reason.MISSING_REOPEN)
            self.status, self.status_name = target, None
            if status is target and name is None:
                return True
        self.add(self.make.status_changed(at, actor, status, name), row)
        self.status, self.status_name = status, name
        return True

    def finish(self, ticket_id: str) -> ImportedTicket:
        """The ticket these events make; raises Reject when the ticket model refuses them."""
        try:
            ticket = Ticket.from_events(self.events)
        except (InvalidTransition, ValidationError) as err:
            reason = (
                Reason.INVALID_TRANSITION
                if isinstance(err, InvalidTransition)
                else Reason.INVALID_VALUE
            )
            index = err.event_index
            row = None
            if index is not None and 0 <= index < len(self.event_rows):
                row = self.event_rows[index]
            raise Reject(reason, str(err), row, error=err) from err
        return ImportedTicket(
            ticket=ticket, event_rows=tuple(self.event_rows), noop_rows=tuple(self.noop_rows)
        )


def check_id(case: str, row: int) -> None:
    """Reject a case id the ticket model would refuse, before anything is built from it."""
    if not case:
        raise Reject(Reason.MISSING_CASE, f"row {row}: the case (ticket id) is missing", row)
    if len(case) > 255 or "\x00" in case:
        raise Reject(
            Reason.INVALID_VALUE,
            f"row {row}: the case {case[:40]!r} is not a ticket id (at most 255 characters, "
            "no NUL)",
            row,
            case,
        )


Rows = list[Sequence[str]]


def group_cases(
    rows: Iterable[Sequence[str]], case_index: int, missing: frozenset[str]
) -> Iterator[tuple[str, int, Rows, bool]]:
    """``(case id, number of its first row, its rows, seen before)`` for each run of rows of
    one case ("" for a missing case id).

    Rows are numbered from 1. Memory: the rows of the current case, and the set of case ids
    seen so far (to tell a case that comes back after another one).
    """
    seen: set[str] = set()
    current: Any = _START
    bucket: Rows = []
    first = 1
    for number, row in enumerate(rows, 1):
        if isinstance(row, str | bytes):  # a row given as one text: no cells to read
            case: Any = NOT_A_ROW
        else:
            try:
                case = row[case_index]
            except IndexError:
                case = ""
            except (TypeError, KeyError):  # None, a number, a mapping: not a row of cells
                case = NOT_A_ROW
        if case is not current and (type(case) is not str or case != current):
            if current is not _START:
                yield _case(current, missing), first, bucket, _again(current, seen)
            current = case
            bucket = []
            first = number
        bucket.append(row)
    if current is not _START:
        yield _case(current, missing), first, bucket, _again(current, seen)


_START: Final = object()
NOT_A_ROW: Final = object()
"""The case of a row that is not a sequence of cells (None, a number, a text)."""


def _case(case: Any, missing: frozenset[str]) -> Any:
    """The case id of a run of rows: "" for a missing one; a value that is not text as it is."""
    return ("" if case in missing else case) if type(case) is str else case


def _again(case: Any, seen: set[str]) -> bool:
    """Whether the case id ``case`` came before (and remember it); False for one not text."""
    if type(case) is not str:
        return False
    again = case in seen
    seen.add(case)
    return again


def _not_text(bucket: Rows, first: int) -> Reject | None:
    """The rejection of the first row of ``bucket`` that is not a sequence of texts, naming
    the row, the cell and the value; None when every cell is text."""
    for number, row in enumerate(bucket, first):
        if isinstance(row, str | bytes) or not isinstance(row, Sequence):
            return Reject(
                Reason.INVALID_VALUE,
                f"row {number} is {show(row, 60)}, a {type(row).__name__}; expected a sequence "
                "of cells (text)",
                number,
            )
        for index, cell in enumerate(row):
            if type(cell) is not str:
                return Reject(
                    Reason.INVALID_VALUE,
                    f"row {number}: cell {index + 1} is {show(cell, 60)}, a "
                    f"{type(cell).__name__}; expected text (an importer reads cell texts, as "
                    "csv.reader gives them)",
                    number,
                )
    return None


def check_arguments(
    rows: object, header: object, format: object, format_class: type, timestamps: object
) -> None:
    """The arguments every importer takes, checked before anything is read."""
    from csmcore.tickets.importing._common import Timestamps

    check_iterable(rows, "rows", "an iterable of rows (sequences of cell texts)")
    if isinstance(header, str | bytes) or not isinstance(header, Sequence):
        raise invalid_type("header", header, "a sequence of column names (the first row)")
    if not isinstance(format, format_class):
        raise invalid_type("format", format, f"a {format_class.__name__}")
    if not isinstance(timestamps, Timestamps):
        raise invalid_type("timestamps", timestamps, "a Timestamps, e.g. Timestamps(zone='UTC')")


def run(
    rows: Iterable[Sequence[str]],
    case_index: int,
    missing: frozenset[str],
    build: Callable[[str, int, Rows], Builder],
    report: ImportReport | None,
    width: int | None = None,
) -> Iterator[ImportedTicket]:
    """Group ``rows`` by case, build each case with ``build(case, first row number, rows)``,
    and account for every row in ``report``. ``width``, the number of header cells, tells a
    row cut short before its case cell (an export cut off mid-row) from a missing case."""
    if report is None:
        report = ImportReport()
    for case, first, bucket, again in group_cases(rows, case_index, missing):
        count = len(bucket)
        report.rows += count
        try:
            if again:
                raise Reject(
                    Reason.CASE_NOT_CONTIGUOUS,
                    f"the rows of case {case!r} from row {first} come after rows of "
                    "other cases; the rows of one case must be contiguous",
                    first,
                )
            if type(case) is not str:
                raise _not_text(bucket, first) or Reject(
                    Reason.INVALID_VALUE, f"row {first}: the case is not text", first
                )
            if not case:
                if width is not None and len(bucket[0]) < width:
                    raise Reject(
                        Reason.SHORT_ROW,
                        f"row {first} has {len(bucket[0])} cells; the header has {width}",
                        first,
                    )
                raise Reject(
                    Reason.MISSING_CASE, f"row {first}: the case (ticket id) is missing", first
                )
            try:
                builder = build(case, first, bucket)
                imported = builder.finish(case)
            except (TypeError, AttributeError) as err:  # a cell that is not text, found once
                found = _not_text(bucket, first)  # it failed: the common case pays nothing
                if found is None:
                    raise
                raise found from err
        except Reject as reject:
            _rejected(report, case if type(case) is str else "", first, count, reject)
            continue
        report.tickets += 1
        report.events += len(imported.event_rows)
        noops = len(imported.noop_rows)
        report.noop_rows += noops
        report.event_rows += count - noops
        # Plain strings as keys (Reason values), so that the counts read and print simply.
        if builder.repairs:
            for reason, n in builder.repairs.items():
                report.repairs[str(reason)] += n
        if builder.noops:
            for reason, n in builder.noops.items():
                report.noops[str(reason)] += n
        yield imported


def _rejected(report: ImportReport, case: str, first: int, count: int, reject: Reject) -> None:
    report.rejected_rows += count
    report.rejects[str(reject.reason)] += 1
    error = reject.error
    report.rejected.append(
        Rejection(
            ticket_id=case,
            reason=reject.reason,
            message=reject.message,
            rows=tuple(range(first, first + count)),
            row=reject.row,
            value=reject.value,
            code=None if error is None else str(error.code),
            event_index=None if error is None else error.event_index,
            field=None if error is None else error.field,
            error_value=None if error is None else error.value,
        )
    )
