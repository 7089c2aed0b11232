"""Importers: the formats ``csmcore report --format NAME`` reads, found by name in a registry.

An importer turns a text stream into tickets, accounting for every input line in an
:class:`~csmcore.tickets.importing.ImportReport`. Each is declared once, with
:func:`register_importer` (undone by :func:`unregister_importer`); the command line lists and
finds them there, and third-party
packages add theirs under the entry-point group ``csmcore.importers`` (the entry point names an
:class:`Importer` object, loaded the first time a name is looked up).

Three are built in, each a thin layer over :mod:`csmcore.tickets.importing`:

- ``helpdesk-log``: a process-mining event log CSV (case, activity, timestamp, resource), with
  the activity mapping of :data:`~csmcore.tickets.importing.HELPDESK` ("Take in charge ticket" is
  the first agent response, "Wait" a pause, "Resolve ticket" solved, "Closed" closed);
- ``servicenow``: ServiceNow's incident audit CSV (:data:`~csmcore.tickets.importing.SERVICENOW`);
  the instance's own ``made_sla`` verdict is kept as the custom field ``made_sla``;
- ``csmcore-jsonl``: csmcore's own lossless format, one ticket document per line
  (``{"type": "ticket", "schema": 1, "data": {...}}``), as ``csmcore export`` writes it.

>>> import io
>>> from csmcore.tickets.importing import ImportReport
>>> importer = importer_named("helpdesk-log")
>>> report = ImportReport()
>>> log = io.StringIO(
...     "case:concept:name,concept:name,time:timestamp,org:resource\\n"
...     "C1,Assign seriousness,2024-05-06 09:00:00+00:00,Value 1\\n"
...     "C1,Take in charge ticket,2024-05-06 09:40:00+00:00,Value 2\\n")
>>> [t.ticket.id for t in importer.read(log, options=ImportOptions(), report=report)]
['C1']
>>> importer_named("zendesk")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
csmcore.errors.ValidationError: unknown import format 'zendesk'; known formats: csmcore-jsonl, ...
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, Protocol, TextIO, runtime_checkable

import attrs

from csmcore.errors import CsmError, SerializationError, ValidationError
from csmcore.serialization import from_document, to_document
from csmcore.tickets import Ticket
from csmcore.tickets.importing import (
    HELPDESK,
    SERVICENOW,
    FaultPolicy,
    ImportedTicket,
    ImportReport,
    Reason,
    Rejection,
    Timestamps,
    import_activities,
    import_snapshots,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ImportOptions",
    "Importer",
    "formats_matching",
    "importer_named",
    "importer_names",
    "register_importer",
    "required_columns",
    "unregister_importer",
    "write_jsonl",
]

ENTRY_POINT_GROUP = "csmcore.importers"
"""The entry-point group third-party importers register under."""


@attrs.frozen(kw_only=True)
class ImportOptions:
    """What every importer is told: the zone of naive timestamps, and strict or repair.

    ``timezone`` is an IANA name (``"Europe/Rome"``) or ``"UTC"``; ``strict`` rejects a whole
    ticket at its first fault instead of repairing what can be repaired (see
    :class:`~csmcore.tickets.importing.FaultPolicy`). ``row_lines``, when given, is a list an
    importer may append the file line each data row starts on to (row 1 first), for formats
    where that is not ``row + header_lines`` (a CSV cell spanning lines, blank lines skipped);
    the built-in CSV importers do.
    """

    timezone: str = "UTC"
    strict: bool = False
    row_lines: list[int] | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def policy(self) -> FaultPolicy:
        """The importers' fault policy these options ask for."""
        return FaultPolicy.STRICT if self.strict else FaultPolicy.REPAIR


@runtime_checkable
class Importer(Protocol):
    """Reads one export format.

    ``name`` is what ``--format`` takes; ``summary`` one line for ``--help``; rows are numbered
    from 1 as in :class:`~csmcore.tickets.importing.Rejection`, and ``header_lines`` says how
    many lines come before row 1 (so messages can give file line numbers: row + header_lines,
    unless the importer recorded each row's line in ``options.row_lines``). :meth:`read`
    yields the tickets of ``stream`` as it reads it (one ticket's lines held at a time where the
    format allows), counts every line in ``report`` and raises a
    :class:`~csmcore.errors.CsmError` (a :class:`~csmcore.errors.ValidationError`, naming the
    line) only for a fault that makes the rest of the stream unreadable.

    Optionally, an importer of a format with a header row declares ``required_columns``: a
    tuple of the column names a file of the format must have (see :func:`required_columns`).
    When a file given the wrong ``--format`` fails, the command line suggests each format whose
    declared columns the file's first line has. An importer without the attribute declares none
    (the default ``()``): it works as before and is never suggested.
    """

    @property
    def name(self) -> str:
        """What ``--format`` takes: lower case, unique."""
        ...

    @property
    def summary(self) -> str:
        """One line for ``--help``."""
        ...

    @property
    def header_lines(self) -> int:
        """Lines before the first data row (1 for a CSV header): file line = row + this."""
        ...

    def read(
        self, stream: TextIO, *, options: ImportOptions, report: ImportReport
    ) -> Iterator[ImportedTicket]:
        """Yield the tickets of ``stream``; see the class documentation."""
        ...


_LOCK = threading.Lock()
_REGISTRY: dict[str, Importer] = {}
_ENTRY_POINTS_LOADED = False


def register_importer(importer: Importer) -> Importer:
    """Declare ``importer`` under its ``name`` and return it (usable as a class decorator on
    an instance factory, or called with an instance).

    Raises :class:`~csmcore.errors.ValidationError` when the object is not an :class:`Importer`
    or another importer already has the name.
    """
    if not isinstance(importer, Importer):
        raise ValidationError(
            f"importer={importer!r} is not an importer; expected an object with name, summary "
            "and read(stream, *, options, report)"
        )
    name = importer.name
    if not isinstance(name, str) or not name or name != name.strip().lower():
        raise ValidationError(
            f"importer name {name!r} is not accepted; expected a non-empty lower-case name"
        )
    columns = getattr(importer, "required_columns", ())
    if not isinstance(columns, tuple) or not all(isinstance(c, str) and c for c in columns):
        raise ValidationError(
            f"importer {name!r}: required_columns={columns!r} is not accepted; expected a tuple "
            "of non-empty column names (or no such attribute: no columns declared)"
        )
    with _LOCK:
        other = _REGISTRY.get(name)
        if other is not None and other is not importer:
            raise ValidationError(f"an importer named {name!r} is already registered: {other!r}")
        _REGISTRY[name] = importer
    return importer


def unregister_importer(name: str) -> Importer:
    """Undo :func:`register_importer` (or the loading of an entry point) for ``name`` in this
    process and return the importer removed; the name is free to register again.

    Raises :class:`~csmcore.errors.ValidationError` naming the registered importers for a
    built-in importer (they cannot be removed) or a name no importer has.
    """
    _load_entry_points()
    with _LOCK:
        found = _REGISTRY.get(name) if isinstance(name, str) else None
        if found is not None and not any(found is b for b in _BUILTINS):
            return _REGISTRY.pop(name)
        names = sorted(_REGISTRY)
    if found is not None:
        raise ValidationError(
            f"importer {name!r} is built in and cannot be unregistered; registered: "
            f"{', '.join(names)}"
        )
    raise ValidationError(
        f"no importer named {name!r} is registered; registered: {', '.join(names)}"
    )


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in _REGISTRY:
            continue
        try:
            loaded = point.load()
        except Exception as err:  # a broken plug-in must not break the command
            raise ValidationError(
                f"the importer entry point {point.name!r} ({point.value}) failed to load: {err}"
            ) from err
        register_importer(loaded() if isinstance(loaded, type) else loaded)


def importer_names() -> list[str]:
    """The names of every importer, sorted."""
    _load_entry_points()
    return sorted(_REGISTRY)


def importer_named(name: str) -> Importer:
    """The importer registered under ``name``.

    Raises :class:`~csmcore.errors.ValidationError` naming the known formats when there is none.
    """
    _load_entry_points()
    found = _REGISTRY.get(name)
    if found is None:
        raise ValidationError(
            f"unknown import format {name!r}; known formats: {', '.join(importer_names())}"
        )
    return found


def required_columns(importer: Importer) -> tuple[str, ...]:
    """The header columns ``importer`` declares a file of its format must have: its optional
    ``required_columns`` attribute, ``()`` when it has none (a format without a header row, or
    an importer written before the attribute existed)."""
    columns = getattr(importer, "required_columns", ())
    return tuple(columns) if isinstance(columns, tuple) else ()


def formats_matching(header: Sequence[str]) -> list[str]:
    """The names of the registered importers (sorted) whose declared
    :func:`required_columns` are all in ``header``; importers that declare none never match.

    >>> formats_matching(["case:concept:name", "concept:name", "time:timestamp", "org:resource"])
    ['helpdesk-log']
    """
    _load_entry_points()
    present = set(header)
    with _LOCK:
        found = list(_REGISTRY.items())
    return sorted(
        name
        for name, importer in found
        if (columns := required_columns(importer)) and present.issuperset(columns)
    )


# -- the built-in importers ----------------------------------------------------------------------


@attrs.frozen
class _CsvImporter:
    """A CSV export read by one of :mod:`csmcore.tickets.importing`'s importers with its format
    and how its timestamps are written (the zone comes from the options)."""

    name: str
    summary: str
    run: Callable[..., Iterator[ImportedTicket]]
    format: Any
    timestamps: Mapping[str, bool]
    required_columns: tuple[str, ...]
    header_lines: int = 1

    def read(
        self, stream: TextIO, *, options: ImportOptions, report: ImportReport
    ) -> Iterator[ImportedTicket]:
        reader = csv.reader(stream)
        try:
            header = next(reader, None)
        except csv.Error as err:
            raise ValidationError(f"line 1: the CSV header cannot be read: {err}") from err
        if header is None:
            raise ValidationError("the CSV stream is empty; expected a header row")
        yield from self.run(
            _data_rows(reader, options.row_lines),
            header=header,
            format=self.format,
            timestamps=Timestamps(zone=options.timezone, **self.timestamps),
            policy=options.policy,
            report=report,
        )


def _data_rows(reader: Any, lines: list[int] | None) -> Iterator[list[str]]:
    """The rows of a CSV ``reader`` past its header, without blank lines (no rows: the csv
    module reads them as empty lists); appends to ``lines`` the file line each row starts on."""
    end = reader.line_num  # the lines read so far
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as err:  # a cell over csv.field_size_limit(), ...: no way past it
            raise ValidationError(
                f"line {reader.line_num}: the CSV cannot be read past here: {err}"
            ) from err
        start, end = end + 1, reader.line_num
        if not row:
            continue
        if lines is not None:
            lines.append(start)
        yield row


def _named_columns(fmt: Any, *roles: str) -> tuple[str, ...]:
    """The columns ``fmt`` names for ``roles`` (its attributes), leaving out those it does not
    use (None): what its importer looks up in the header, each a required column."""
    return tuple(column for role in roles if (column := getattr(fmt, role)) is not None)


# The Helpdesk log writes "+00:00" after wall-clock times that are not UTC; the zone given is the
# desk's own, so the offset is ignored (see docs/howto-import.md).
_HELPDESK_LOG = _CsvImporter(
    name="helpdesk-log",
    summary="process-mining event log CSV (case, activity, timestamp, resource), e.g. the "
    "Helpdesk log",
    run=import_activities,
    format=HELPDESK,
    timestamps={"ignore_offset": True},
    required_columns=_named_columns(HELPDESK, "case", "activity", "at", "actor"),
)
_SERVICENOW = _CsvImporter(
    name="servicenow",
    summary="ServiceNow incident audit CSV (one row per update; made_sla kept as a field)",
    run=import_snapshots,
    format=SERVICENOW,
    timestamps={"day_first": True},
    required_columns=_named_columns(
        SERVICENOW,
        "case",
        "at",
        "state",
        "order",
        "opened_at",
        "priority",
        "group",
        "assignee",
        "requester",
        "actor",
        "channel",
    ),
)


@attrs.frozen
class _Jsonl:
    name: str = "csmcore-jsonl"
    summary: str = "csmcore's own lossless format: one ticket document per line (csmcore export)"
    header_lines: int = 0

    def read(
        self, stream: TextIO, *, options: ImportOptions, report: ImportReport
    ) -> Iterator[ImportedTicket]:
        del options  # instants are stored aware, in UTC: no zone to apply
        seen: set[str] = set()
        json_lines = 0
        for line_number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            report.rows += 1
            try:
                document = _json_line(line)
                json_lines += 1
                ticket = from_document(document, Ticket)
                if ticket.id in seen:
                    raise ValidationError(f"ticket id {ticket.id!r} appears twice")
            except CsmError as err:
                report.rejected_rows += 1
                report.rejects[Reason.INVALID_VALUE.value] += 1
                report.rejected.append(
                    Rejection(
                        ticket_id=_id_hint(line),
                        reason=Reason.INVALID_VALUE,
                        message=str(err),
                        rows=(line_number,),
                        row=line_number,
                    )
                )
                continue
            seen.add(ticket.id)
            report.event_rows += 1
            report.tickets += 1
            report.events += len(ticket.events)
            yield ImportedTicket(
                ticket=ticket, event_rows=tuple(line_number for _ in ticket.events)
            )
        if report.rows and not json_lines:  # another format (a CSV export, say): no report
            first = report.rejected[0]
            raise ValidationError(
                f"no line is a JSON document, so this is not csmcore-jsonl (line {first.row}: "
                f"{first.message}); is --format right? known formats: "
                f"{', '.join(importer_names())}"
            )


def _json_line(line: str) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as err:
        raise SerializationError(f"not a JSON document: {err}") from None


def _id_hint(line: str) -> str:
    try:
        data = json.loads(line)["data"]["id"]
    except Exception:
        return "?"
    return data if isinstance(data, str) else "?"


def write_jsonl(tickets: Iterable[Ticket], stream: TextIO) -> int:
    """Write ``tickets`` to ``stream`` in the ``csmcore-jsonl`` format; returns how many.

    Each line is the ticket's document (:func:`csmcore.serialization.to_document`), so reading
    the file back with the ``csmcore-jsonl`` importer gives equal tickets.
    """
    count = 0
    for ticket in tickets:
        stream.write(json.dumps(to_document(ticket), ensure_ascii=False, separators=(",", ":")))
        stream.write("\n")
        count += 1
    return count


_BUILTINS: tuple[Importer, ...] = (_HELPDESK_LOG, _SERVICENOW, _Jsonl())
for _builtin in _BUILTINS:
    register_importer(_builtin)
