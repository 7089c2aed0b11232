"""Building blocks for storage adapters: the argument checks and messages every store shares,
and the codec for versioned documents.

Using them keeps a new adapter's errors identical to the built-in ones, which the conformance
suite (:mod:`csmcore.testing.storage_suite`) checks. Each ``check_*`` returns its argument when it
is acceptable and raises :class:`~csmcore.errors.ValidationError` naming it otherwise.

Every built-in store uses them: :func:`check_id` for each ticket id and document key it is
given, :func:`encode_document` for each document it writes, and the SQL stores
:func:`decode_document` for each one they read (the memory store keeps the objects themselves).
A store that writes events as JSON uses :func:`encode_event` (which, like ``to_data``, records
each event's schema version) and reads them with :func:`decode_event` (the SQL stores make the
same check on the JSON text they write).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from csmcore._values import MAX_IDENTIFIER_LENGTH as _MAX_IDENTIFIER_LENGTH
from csmcore._values import check_identifier, check_int, show, text_problem
from csmcore.conditions import Condition
from csmcore.errors import (
    ConcurrencyError,
    NotFound,
    SerializationError,
    StorageError,
    ValidationError,
    invalid_type,
)
from csmcore.serialization import (
    from_data,
    from_document,
    tag_of,
    to_data,
    to_document,
)
from csmcore.tickets import Ticket, TicketEvent
from csmcore.tickets._ticket import may_set_requester as _may_set_requester

KINDS = ("calendars", "policies", "rules")
"""The versioned document roles every store has."""

MAX_ID_LENGTH: Final = _MAX_IDENTIFIER_LENGTH
"""The longest ticket id or document key, in characters (255): the domain's limit for ticket
ids and tags. In UTF-8 that is at most 1,020 bytes, which fits in any B-tree index entry."""


__all__ = [
    "KINDS",
    "MAX_ID_LENGTH",
    "added_requesters",
    "apply_all",
    "check_condition",
    "check_data_text",
    "check_events",
    "check_expected",
    "check_id",
    "check_limit",
    "check_positive",
    "check_requester",
    "check_ticket",
    "check_unit_open",
    "check_version",
    "conflict",
    "decode_document",
    "decode_event",
    "encode_document",
    "encode_event",
    "no_document",
    "no_ticket",
    "ticket_exists",
]


def check_ticket(ticket: object) -> Ticket:
    """A :class:`~csmcore.tickets.Ticket`, else ValidationError."""
    if not isinstance(ticket, Ticket):
        raise ValidationError(f"ticket={ticket!r} is a {type(ticket).__name__}; expected a Ticket")
    return ticket


def check_condition(condition: object) -> Condition:
    """A :class:`~csmcore.conditions.Condition`, else ValidationError naming what was given."""
    if not isinstance(condition, Condition):
        raise ValidationError(
            f"condition={condition!r} is a {type(condition).__name__}; expected a "
            "csmcore.conditions.Condition (e.g. Field('priority') == 'high', or Always())"
        )
    return condition


def check_requester(value: object, argument: str = "requester") -> str:
    """A requester as tickets hold one (non-empty text a store can keep), else
    ValidationError naming ``argument`` and the value."""
    if not isinstance(value, str):
        raise invalid_type(argument, value, "a non-empty string (a requester)")
    if not value:
        raise ValidationError(f"{argument}={value!r} is not a non-empty string")
    problem = text_problem(value)
    if problem is not None:
        raise ValidationError(f"{argument}={show(value)} cannot be stored: {problem}")
    return value


def added_requesters(before: Ticket | None, after: Ticket) -> list[str]:
    """The requesters of ``after`` (:attr:`~csmcore.tickets.Ticket.requesters`) that ``before``
    (the same ticket at an earlier version, or None for a new ticket) had not, in order.

    Most events cannot change the requester: unless one of the events ``after`` has beyond
    ``before`` can (a creation, a ``RequesterChanged``, a declared event with a ``fold``), this
    reads no history and gives ``[]``."""
    if before is None:
        return list(after.requesters)
    if not any(_may_set_requester(e) for e in after.events[before.version :]):
        return []
    known = set(before.requesters)
    return [r for r in after.requesters if r not in known]


def check_id(value: object, argument: str) -> str:
    """A ticket id or document key every store can keep, else ValidationError naming
    ``argument`` and the value.

    The domain's rule for ticket ids and tags: a non-empty string of at most
    :data:`MAX_ID_LENGTH` (255) characters, without NUL (``"\\x00"``) or lone surrogates
    (U+D800..U+DFFF).

    >>> check_id("T-1", "ticket_id")
    'T-1'
    >>> check_id("", "key")
    Traceback (most recent call last):
    ...
    csmcore.errors.ValidationError: key='' is not a non-empty string
    >>> check_id("k" * 256, "key")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.ValidationError: key='kkk...'... is 256 characters long; ...
    """
    if not isinstance(value, str):
        raise invalid_type(argument, value, "a non-empty string (an id or key)")
    if not value:
        raise ValidationError(f"{argument}={value!r} is not a non-empty string")
    return check_identifier(value, argument)


def check_version(value: object, argument: str = "expected_version") -> int:
    """A whole number >= 0 of at most 640 digits (not a bool), else ValidationError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{argument}={show(value)} is not a whole number >= 0")
    return check_int(value, argument)


def check_positive(value: object, argument: str) -> int:
    """A whole number >= 1 of at most 640 digits (not a bool), else ValidationError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{argument}={show(value)} is not a whole number >= 1")
    return check_int(value, argument)


def check_limit(value: object) -> int | None:
    """None or a whole number >= 0, else ValidationError."""
    if value is None:
        return None
    return check_version(value, "limit")


def check_events(events: object) -> tuple[TicketEvent, ...]:
    """A non-empty sequence of events (not a string), as a tuple, else ValidationError."""
    if isinstance(events, str | bytes) or not isinstance(events, Sequence):
        raise ValidationError(f"events={events!r} is not a sequence of ticket events")
    if not events:
        raise ValidationError("events=[] is empty; append at least one ticket event")
    return tuple(events)


def check_expected(ticket_id: str, stored: int, expected: int, *, kind: str = "ticket") -> None:
    """Raise :class:`~csmcore.errors.ConcurrencyError` when ``stored != expected``: the shared
    message for a stale ``expected_version``, of a ticket (``kind="ticket"``, the default) or of
    a document (``kind`` the role's name, e.g. ``"calendars"``, and ``ticket_id`` its key).

    >>> check_expected("c", 2, 1, kind="calendars")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.ConcurrencyError: calendars 'c' is at version 2, not the expected_version=1; ...
    """
    if stored != expected:
        raise ConcurrencyError(
            f"{kind} {ticket_id!r} is at version {stored}, not the expected_version={expected}; "
            "reload it and apply your change again"
        )


def ticket_exists(ticket_id: str) -> ConcurrencyError:
    """The shared error for adding a ticket whose id is already stored (or repeats in the
    batch given to ``add_many``); raise it, and write nothing.

    >>> raise ticket_exists("T-1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.ConcurrencyError: ticket 'T-1' already exists; a new ticket needs a new id, ...
    """
    return ConcurrencyError(
        f"ticket {ticket_id!r} already exists; a new ticket needs a new id, and nothing was stored"
    )


def no_ticket(ticket_id: str) -> NotFound:
    """The shared error for a ticket id that is not stored (``get``, ``append``).

    >>> raise no_ticket("T-9")
    Traceback (most recent call last):
    ...
    csmcore.errors.NotFound: no ticket with id 'T-9'
    """
    return NotFound(f"no ticket with id {ticket_id!r}")


def no_document(kind: str, key: str, version: int | None = None, *, latest: int = 0) -> NotFound:
    """The shared error for a missing document: no version of ``key`` in the role ``kind``
    (``version`` None, or ``latest`` 0), or no ``version`` beyond the ``latest`` one.

    >>> raise no_document("policies", "p")
    Traceback (most recent call last):
    ...
    csmcore.errors.NotFound: no policies with key 'p'
    >>> raise no_document("policies", "p", 5, latest=2)
    Traceback (most recent call last):
    ...
    csmcore.errors.NotFound: policies 'p' has no version 5; the latest is 2
    """
    if version is None or latest == 0:
        return NotFound(f"no {kind} with key {key!r}")
    return NotFound(f"{kind} {key!r} has no version {version}; the latest is {latest}")


def conflict(what: str, cause: str = "") -> ConcurrencyError:
    """The shared error for a write that lost to another writer at the same moment (a
    backend's deadlock or serialization failure, a unique key taken by a concurrent insert):
    ``what`` names the ticket, the document or the store, ``cause`` (optional) what the backend
    reported. Such a conflict aborts the whole unit of work it happened in; the caller reloads
    and runs the unit of work again.

    >>> print(conflict("ticket 'T-1'"))  # doctest: +NORMALIZE_WHITESPACE
    a write to ticket 'T-1' lost to another writer at the same time; reload and apply your change
    again (a unit of work is rolled back as a whole)
    """
    detail = f" ({cause})" if cause else ""
    return ConcurrencyError(
        f"a write to {what} lost to another writer at the same time{detail}; reload and apply "
        "your change again (a unit of work is rolled back as a whole)"
    )


def apply_all(ticket: Ticket, events: Sequence[TicketEvent]) -> Ticket:
    """``ticket`` after every event; :class:`~csmcore.errors.InvalidTransition` if one may not
    follow."""
    for event in events:
        ticket = ticket.apply(event)
    return ticket


def encode_event(event: TicketEvent) -> dict[str, Any]:
    """``event`` as JSON-safe data (what ``to_data`` gives), checked to read back.

    The data holds ``"schema"``, the schema version of the event's tag, so that a later release
    can upcast it. Read it back with :func:`decode_event` (or ``from_data``, which is the same).

    The domain refuses NUL and lone surrogates when an event is built, so only an event forced
    past its validators can hold them; a store that wrote it as JSON (which escapes both) would
    keep a ticket it cannot read back. Raises :class:`~csmcore.errors.ValidationError`, caused
    by a ValueError naming the text, for such an event. The check costs one pass over the
    event's strings (the usual ASCII text takes the fast path).

    >>> from datetime import datetime, timezone
    >>> from csmcore.tickets import PriorityChanged
    >>> event = PriorityChanged(at=datetime(2025, 1, 6, tzinfo=timezone.utc), priority="high")
    >>> data = encode_event(event)
    >>> data["type"], data["priority"], data["schema"]
    ('ticket.priority_changed', 'high', 2)
    >>> decode_event(data) == event
    True
    """
    data: dict[str, Any] = to_data(event)
    check_data_text(data, f"{type(event).__name__} at {event.at.isoformat()}")
    return data


def decode_event(data: Any) -> TicketEvent:
    """The event :func:`encode_event` encoded, or an older release wrote.

    Data without ``"schema"`` is schema version 1 (0.1.0.dev0 wrote none); older data is run
    through the upcasters of its tag, on a copy (``data`` itself is left unchanged). The same as
    ``from_data(data, TicketEvent)``. Raises :class:`~csmcore.errors.SerializationError`
    naming the path of the problem for malformed data or a schema newer than this release reads.
    """
    event: TicketEvent = from_data(data, TicketEvent)  # type: ignore[arg-type]
    return event


def check_data_text(data: Any, what: str) -> None:
    """Raise ValidationError (caused by a ValueError) when JSON-safe ``data`` holds text no
    store could give back for the domain to accept: NUL or a lone surrogate."""
    pending: list[Any] = [data]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            problem = None if item.isascii() and "\x00" not in item else text_problem(item)
            if problem is not None:
                cause = ValueError(f"the text {item!r}: {problem}")
                raise ValidationError(
                    f"{what} cannot be stored: {cause}; text must be valid Unicode without NUL "
                    "characters"
                ) from cause
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


_JOINED_SURROGATES = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def encode_document(value: object) -> dict[str, Any]:
    """``value`` (an object whose type has a registered tag) in its document envelope,
    ``{"type": tag, "schema": n, "data": ...}`` (:func:`csmcore.serialization.to_document`):
    JSON-safe data that :func:`decode_document` turns back into an equal object.

    Write the result as JSON (any JSON encoder); NUL and lone surrogates inside the value's text
    are escaped by JSON and come back unchanged. Raises
    :class:`~csmcore.errors.ValidationError` for a value whose type has no registered tag
    (stores keep calendars, SLA policies, escalation rules), and for text JSON cannot give
    back: a high surrogate directly followed by a low one is written exactly like the single
    character the pair stands for (``"\\ud83d\\ude00"`` and ``"😀"``) and read back as that
    character. Every built-in store refuses such a value this way, so that all of them agree.

    >>> from csmcore import BusinessCalendar
    >>> doc = encode_document(BusinessCalendar.always())
    >>> doc["type"], doc["schema"]
    ('business_calendar', 1)
    """
    cls = type(value)
    try:
        tag_of(cls)
    except SerializationError as err:
        raise ValidationError(
            f"value={value!r} is a {cls.__module__}.{cls.__qualname__}, which has no registered "
            "type tag; stores keep csmcore domain objects (BusinessCalendar, SLA policies, "
            "escalation rules) and types declared with @csmcore.serialization.serializable"
        ) from err
    data = to_document(value)
    pending: list[Any] = [data["data"]]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif isinstance(item, str) and not item.isascii():
            found = _JOINED_SURROGATES.search(item)
            if found is not None:
                pair = found.group()
                raise ValidationError(
                    f"value={value!r} cannot be stored: its text {item!r} holds the surrogates "
                    f"{pair!r} side by side, which JSON reads back as the one character "
                    f"{pair.encode('utf-16', 'surrogatepass').decode('utf-16')!r}; "
                    "use that character, or keep surrogates apart"
                )
    return data


def decode_document(doc: Any) -> Any:
    """The object :func:`encode_document` encoded, also as older releases wrote it (a module
    path as the type, no schema): :func:`csmcore.serialization.from_document`.

    Raises :class:`~csmcore.errors.SerializationError` naming the problem for malformed data,
    an unknown type, or a schema newer than this release reads.
    """
    return from_document(doc)


def check_unit_open(ended: bool, aborted: bool) -> None:
    """Raise StorageError for a unit of work that has ended, or that a conflict with another
    writer aborted (it will be rolled back as a whole)."""
    if ended:
        raise StorageError("this unit of work has ended; open a new one")
    if aborted:
        raise StorageError(
            "this unit of work was aborted by a conflict with another writer and will "
            "be rolled back; end it, reload, and run it again"
        )
