"""The ticket as a subject of conditions: the fields a condition can read from a
:class:`~csmcore.tickets.Ticket`, registered with :mod:`csmcore.conditions` on import."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, Final

from csmcore.conditions import CUSTOM_PREFIX, Subject, SubjectField, register_subject
from csmcore.tickets._enums import Channel, Priority, Role, Status
from csmcore.tickets._ticket import Ticket

__all__ = ["TICKET_SUBJECT"]


def _is_merged(ticket: Ticket) -> bool:
    return ticket.merged_into is not None


def _custom_reader(name: str) -> Callable[[Any], Any]:
    return lambda ticket: ticket.fields.get(name)


TICKET_SUBJECT: Final = Subject(
    "ticket",
    [
        SubjectField("status", "enum", attrgetter("status"), values=Status),
        SubjectField("status_name", "str", attrgetter("status_name")),
        SubjectField(
            "priority", "enum", attrgetter("priority"), values=Priority, order=attrgetter("rank")
        ),
        SubjectField("priority_name", "str", attrgetter("priority_name")),
        SubjectField("channel", "enum", attrgetter("channel"), values=Channel),
        SubjectField("created_by", "enum", attrgetter("created_by"), values=Role),
        SubjectField("group", "str", attrgetter("group")),
        SubjectField("assignee", "str", attrgetter("assignee")),
        SubjectField("requester", "str", attrgetter("requester")),
        SubjectField("subject", "str", attrgetter("subject")),
        SubjectField("tags", "tags", attrgetter("tags")),
        SubjectField("merged", "bool", _is_merged),
    ],
    custom_prefix=CUSTOM_PREFIX,
    read_custom=_custom_reader,
)
"""The ticket's fields: ``status``, ``status_name``, ``priority`` (ordered by rank),
``priority_name`` (the custom priority name, or the category's value),
``channel``, ``created_by``, ``group``, ``assignee``, ``requester``, ``subject``, ``tags``,
``merged`` and the custom fields ``"fields.<name>"``."""

register_subject(TICKET_SUBJECT)
