"""Building tickets from the history that help desk exports give.

Two shapes of export are read, each described by a format value naming its columns:

- full-row audit logs, where each row repeats the whole record after one change (ServiceNow's
  incident log): :func:`import_snapshots` with a :class:`SnapshotFormat` (:data:`SERVICENOW`);
- activity logs, one row per activity (the Helpdesk process-mining log):
  :func:`import_activities` with an :class:`ActivityFormat` (:data:`HELPDESK`) that maps each
  activity name to an :class:`Activity`.

Both take rows as sequences of cell texts (the caller reads the file, e.g. with
:func:`read_csv` or ``csv.reader``), read naive timestamps in the zone a :class:`Timestamps`
names, and stream: they yield one :class:`ImportedTicket` per case, holding only that case's
rows. A :class:`FaultPolicy` decides what happens to a case the ticket model would refuse; the
:class:`ImportReport` accounts for every row (as an event, a no-op or part of a rejected
ticket) and counts each repair, no-op and reject by :class:`Reason` code.

This module does no I/O of its own apart from :func:`read_csv`, which only reads the text
stream it is given.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import TextIO

from csmcore._boundary import guard_exports
from csmcore.errors import ValidationError
from csmcore.tickets.importing._activities import (
    HELPDESK,
    Activity,
    ActivityFormat,
    import_activities,
)
from csmcore.tickets.importing._common import (
    DEFAULT_MISSING,
    FaultPolicy,
    ImportedTicket,
    ImportReport,
    Reason,
    Rejection,
    Timestamps,
    field_value,
)
from csmcore.tickets.importing._snapshots import SERVICENOW, SnapshotFormat, import_snapshots

__all__ = [
    "DEFAULT_MISSING",
    "HELPDESK",
    "SERVICENOW",
    "Activity",
    "ActivityFormat",
    "FaultPolicy",
    "ImportReport",
    "ImportedTicket",
    "Reason",
    "Rejection",
    "SnapshotFormat",
    "Timestamps",
    "field_value",
    "import_activities",
    "import_snapshots",
    "read_csv",
]


def read_csv(stream: TextIO) -> tuple[list[str], Iterator[list[str]]]:
    """``(header, rows)`` of a CSV text stream: its first row, and an iterator of the others.

    Open files with ``newline=""`` (as the :mod:`csv` module asks). The rows are read lazily,
    as the importer consumes them. Raises ValidationError for a stream with no header row.
    """
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise ValidationError("the CSV stream is empty; expected a header row")
    return header, reader


guard_exports(__name__)  # every export behind the public boundary (csmcore._boundary)
