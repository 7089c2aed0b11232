"""What both importers share: timestamps, the fault policy, reason codes, results and the report."""

from __future__ import annotations

import enum
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone, tzinfo
from decimal import Decimal
from typing import Any, Final

import attrs

from csmcore._time import resolve_zone
from csmcore._values import coerce_enum, show
from csmcore.errors import ValidationError
from csmcore.tickets import Ticket

__all__ = [
    "DEFAULT_MISSING",
    "FaultPolicy",
    "ImportReport",
    "ImportedTicket",
    "Reason",
    "Rejection",
    "Timestamps",
    "field_value",
]

DEFAULT_MISSING: Final[frozenset[str]] = frozenset({"", "?"})
"""Cell texts read as a missing value by default: the empty string and ``?`` (ServiceNow)."""


class FaultPolicy(enum.StrEnum):
    """What an importer does with a ticket whose rows break a rule of the ticket model.

    ``strict`` rejects the whole ticket with a :class:`Rejection` (reason code, message, row);
    ``repair`` fixes what it can (orders the rows, inserts the reopen the log never recorded,
    drops rows that change nothing, folds an unknown state or priority into a custom field) and
    counts each fix in :attr:`ImportReport.repairs`; what it cannot fix it rejects.
    """

    STRICT = "strict"
    REPAIR = "repair"


def repairing(policy: FaultPolicy | str) -> bool:
    """True for the repair policy; ValidationError naming the accepted policies otherwise."""
    return coerce_enum(FaultPolicy, policy, "policy") is FaultPolicy.REPAIR


class Reason(enum.StrEnum):
    """Stable reason codes of rejects, repairs and no-op rows (keys of the report's counters)."""

    MISSING_CASE = "missing_case"
    """The case (ticket id) cell is missing or not a valid ticket id."""
    BAD_TIMESTAMP = "bad_timestamp"
    """A timestamp cell is missing or not in the expected format."""
    SHORT_ROW = "short_row"
    """A row has fewer cells than the header."""
    OUT_OF_ORDER = "out_of_order"
    """A row is earlier (by time or by the order column) than the row before it."""
    UNKNOWN_STATE = "unknown_state"
    """A state the status map does not know (repair: kept in a custom field)."""
    UNKNOWN_PRIORITY = "unknown_priority"
    """A priority the priority mapping does not know (repair: kept in a custom field)."""
    MISSING_REOPEN = "missing_reopen"
    """The ticket leaves closed without a reopen (repair: a Reopened event is inserted)."""
    BACK_TO_NEW = "back_to_new"
    """The ticket returns to 'new' (repair: read as 'open')."""
    REPEATED_STATUS = "repeated_status"
    """A status change to the status the ticket already has (a no-op row)."""
    NO_CHANGE = "no_change"
    """A snapshot row whose imported columns equal the row before it (a no-op row)."""
    IGNORED_ACTIVITY = "ignored_activity"
    """An activity mapped to :attr:`Activity.IGNORE` (a no-op row)."""
    CASE_NOT_CONTIGUOUS = "case_not_contiguous"
    """The rows of a case come again after rows of another case (the input must group cases)."""
    INVALID_VALUE = "invalid_value"
    """A value the ticket model refuses (e.g. text with NUL); the message names it."""
    INVALID_TRANSITION = "invalid_transition"
    """The ticket model refused the history for another reason; the message says why."""


@attrs.frozen(kw_only=True)
class Rejection:
    """One ticket an importer rejected: why, and which input rows it held.

    ``rows`` are the 1-based numbers of the data rows of the ticket, in input order (in a CSV
    file with one header row and no cell spanning lines, file line = row + 1); ``row`` is the
    row at fault (None when the fault is the ticket's as a whole); ``value`` the offending cell
    text, when there is one.

    When the ticket model refused the ticket (a :class:`~csmcore.errors.CsmError`), its
    structured details are kept: ``code`` (an :class:`~csmcore.errors.ErrorCode` value such as
    ``"ticket_closed"``, a plain string), ``event_index`` (the 0-based position of the offending
    event in the history the importer built; ``row`` is then the row that gave that event),
    ``field`` (the field or argument name) and ``error_value`` (the offending value, of any
    type). They are None for a rejection the importer decided itself (its ``reason`` says why).
    """

    ticket_id: str
    reason: Reason
    message: str
    rows: tuple[int, ...]
    row: int | None = None
    value: str | None = None
    code: str | None = None
    event_index: int | None = None
    field: str | None = None
    error_value: Any = None


@attrs.frozen(kw_only=True)
class ImportedTicket:
    """A ticket built from rows, with where each of its events came from.

    ``event_rows[i]`` is the input row number that gave ``ticket.events[i]`` (an event the repair
    inserted carries the number of the row that needed it; a row may give several events);
    ``noop_rows`` are the rows dropped because they change nothing. Together they hold every
    row of the ticket at least once.
    """

    ticket: Ticket
    event_rows: tuple[int, ...]
    noop_rows: tuple[int, ...] = ()

    @property
    def rows(self) -> frozenset[int]:
        """Every input row number this ticket accounts for."""
        return frozenset(self.event_rows) | frozenset(self.noop_rows)


@attrs.define(kw_only=True)
class ImportReport:
    """Counts of one import run, filled in as the importer's iterator is consumed.

    Every input row lands in exactly one of ``event_rows`` (it gave at least one event),
    ``noop_rows`` (dropped as a no-op) or ``rejected_rows`` (its ticket was rejected), so
    ``rows == event_rows + noop_rows + rejected_rows`` once the iterator is exhausted.
    ``repairs``, ``noops`` and ``rejects`` count by reason code (the :class:`Reason` values, as
    plain strings; ``rejects`` counts tickets);
    ``rejected`` lists each rejected ticket with its rows.
    """

    rows: int = 0
    tickets: int = 0
    events: int = 0
    event_rows: int = 0
    noop_rows: int = 0
    rejected_rows: int = 0
    repairs: Counter[str] = attrs.field(factory=Counter)
    noops: Counter[str] = attrs.field(factory=Counter)
    rejects: Counter[str] = attrs.field(factory=Counter)
    rejected: list[Rejection] = attrs.field(factory=list)

    @property
    def balanced(self) -> bool:
        """True when every row read is accounted for (after the iterator is exhausted)."""
        return self.rows == self.event_rows + self.noop_rows + self.rejected_rows

    def summary(self) -> str:
        """A few lines for a person: the totals and the counters, most common first."""
        lines = [
            f"{self.rows:,} rows: {self.event_rows:,} as events, {self.noop_rows:,} no-ops, "
            f"{self.rejected_rows:,} in rejected tickets; {self.tickets:,} tickets, "
            f"{self.events:,} events"
        ]
        for title, counts in (
            ("repairs", self.repairs),
            ("no-ops", self.noops),
            ("rejects", self.rejects),
        ):
            if counts:
                text = ", ".join(f"{k} {n:,}" for k, n in counts.most_common())
                lines.append(f"{title}: {text}")
        return "\n".join(lines)


_DMY: Final = re.compile(
    r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?$"
)
_UTC: Final = timezone.utc


@attrs.frozen(kw_only=True)
class Timestamps:
    """How an export writes its instants, and the zone its naive ones are in.

    ``zone`` (an IANA name such as ``"Europe/Rome"``, ``"UTC"``, a fixed offset or a tzinfo)
    is the zone of naive wall-clock times; ``day_first`` reads ``d/m/yyyy[ H:MM[:SS]]`` (also
    with ``-`` or ``.``), else ``m/d/yyyy``; ISO 8601 text is always accepted. A timestamp that
    carries an offset keeps it, unless ``ignore_offset`` says the offset is an artefact of the
    export (the Helpdesk log's ``+00:00``): then its wall-clock time is read in ``zone``.
    A wall-clock time that a zone's clock change repeats reads as the first (``fold=0``); one it
    skips is moved forward by the gap, as ``zoneinfo`` does.

    :meth:`parse` returns an aware datetime in UTC or raises ValidationError; results are
    remembered for the last 4,096 distinct texts (exports repeat timestamps across rows).
    """

    zone: str | tzinfo = "UTC"
    day_first: bool = False
    ignore_offset: bool = False
    _tz: tzinfo = attrs.field(init=False, eq=False, repr=False)
    _memo: dict[str, datetime] = attrs.field(init=False, eq=False, repr=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_tz", resolve_zone(self.zone, "zone"))

    @property
    def memo(self) -> dict[str, datetime]:
        """The remembered results of :meth:`parse` by text (importers read it directly first:
        a dict lookup is cheaper than a method call). Do not change it."""
        return self._memo

    def parse(self, text: str) -> datetime:
        """The instant ``text`` names, in UTC; ValidationError naming the text otherwise."""
        memo = self._memo
        try:
            found = memo.get(text)
        except TypeError:  # a cell that is not text (a list): _parse names it
            return self._parse(text)
        if found is not None:
            return found
        value = self._parse(text)
        if len(memo) >= 4096:
            memo.clear()
        memo[text] = value
        return value

    def _parse(self, text: str) -> datetime:
        value: datetime
        try:
            match = _DMY.match(text)  # TypeError for a cell that is not text
            if match is not None:
                a, b, year, hour, minute, second, fraction = match.groups()
                day, month = (a, b) if self.day_first else (b, a)
                value = datetime(
                    int(year),
                    int(month),
                    int(day),
                    int(hour or 0),
                    int(minute or 0),
                    int(second or 0),
                    int((fraction or "0").ljust(6, "0")),
                )
            else:
                value = datetime.fromisoformat(text)
        except (ValueError, TypeError):
            order = "d/m/yyyy" if self.day_first else "m/d/yyyy"
            raise ValidationError(
                f"timestamp {show(text)} is not a date and time; accepted: {order} [H:MM[:SS]] "
                "or ISO 8601 (yyyy-mm-dd HH:MM:SS[+HH:MM])",
                field="timestamp",
                value=text,
            ) from None
        if value.tzinfo is not None and self.ignore_offset:
            value = value.replace(tzinfo=None)
        if value.tzinfo is None:
            value = value.replace(tzinfo=self._tz)
        return value.astimezone(_UTC)


def field_value(column: str, text: str) -> str | bool:
    """The default reading of a cell that becomes a custom field: ``true``/``false`` as booleans,
    anything else as the text itself. (Pass your own function to read numbers, dates...)"""
    if text == "true":
        return True
    if text == "false":
        return False
    return text


FieldReader = Callable[[str, str], "str | int | float | bool | Decimal | datetime | None"]
"""``(column, text) -> value`` of a custom field (a datetime must be aware); None leaves the
field unset."""


def column_index(header: Sequence[str], name: str, what: str) -> int:
    """The position of column ``name`` in ``header``; ValidationError naming the columns."""
    try:
        return list(header).index(name)
    except ValueError:
        raise ValidationError(
            f"{what}={name!r} is not a column of the rows; columns: {list(header)}"
        ) from None
