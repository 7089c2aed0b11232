"""The part of the SQL adapters that SQLite and PostgreSQL share.

Layout (schema version 9):

- ``csm_meta(name, value)``: ``schema_version``.
- ``csm_tickets``: one row per ticket: ``id``, ``version`` (number of events) and the summary
  columns that conditions are pushed down to (status, priority, channel, group, ...), among
  them ``fields``: the current custom fields as one JSON object (SQLite: text read with the
  JSON1 functions; PostgreSQL: ``jsonb``), written by :func:`fields_json` for queries only
  (the history stays the truth).
- ``csm_ticket_tags(ticket_id, tag)``: the current tags, for ``HasTags``.
- ``csm_ticket_requesters(requester, ticket_id)``: everyone who was each ticket's requester at
  some instant (``Ticket.requesters``), for ``stream_by_requester``; requesters longer than 255
  characters are left out (and found in Python).
- ``csm_events(ticket_id, seq, data)``: the history, one JSON document per event (seq from 1),
  as :func:`kit.encode_event` gives it (with its ``"schema"``; rows without one are version 1).
- ``csm_documents(kind, key, version, data)``: versioned calendars, policies and rules, each as
  :func:`kit.encode_document` gives it (``{"type": tag, "schema": n, "data": ...}``).
- ``csm_firings``: the ``firings`` role, one row per recorded firing, keyed by
  ``Firing.key_text`` (unique: a second engine's insert finds it taken), instants as UTC
  microseconds; ``csm_ticket_plans(ticket_id, version, next_due_us)``: its schedule, indexed
  by ``next_due_us``.
- ``csm_outbox``: the ``outbox`` role, one row per message keyed by its idempotency key, the
  request as a document (:func:`kit.encode_document`), indexed by ``(state, next_attempt_us,
  key)``.
- ``csm_ledger(member_id, seq, key, data)``: members' loyalty ledgers, one entry document per
  row (seq from 1 per member; unique ``(member_id, key)``); see
  :mod:`csmcore.storage._sql_ledger`.

Each dialect supplies its DDL per schema version, its placeholder and its driver errors.

This module holds the SQL: schema, condition push-down and the event codec. The store (its
transactions, units of work and error translation) is :mod:`csmcore.storage._sql_store`, its role
objects :mod:`csmcore.storage._sql_roles`.
"""

from __future__ import annotations

import json
import json.encoder
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol, cast

from csmcore import conditions as cd
from csmcore.errors import ValidationError
from csmcore.storage import kit as c
from csmcore.storage._sql_values import (
    DECIMAL_COMPARISONS,
    decimal_bounds,
    field_key,
    json_number,
)
from csmcore.tickets import Ticket, TicketEvent, event_from_data, event_to_data

SCHEMA_VERSION = 9
"""The schema version this csmcore writes; older stores migrate forward when opened.

Version 3 changes no table: from it on, documents name their type by tag and carry a
``"schema"``, and so do events. Stores of version 2 keep their rows (they read as schema 1);
the bump makes an older csmcore refuse a store it could no longer read. Version 4 adds
``csm_tickets.fields`` (the current custom fields, for queries), filled from the histories
when an older store is opened. Version 5 adds ``csm_ledger`` (the optional ``ledger`` role),
empty in a migrated store. Version 6 changes no table: a ``Decimal`` in ``fields`` carries the
two numbers around it (``"lo"`` and ``"hi"``, see :func:`decimal_bounds`) so that conditions
with numbers compare it in SQL; opening an older store rewrites ``fields``. Version 7 adds the
tables of the optional escalation roles (``csm_firings``, ``csm_ticket_plans``,
``csm_outbox``), empty in a migrated store. Version 8 changes no data: the outbox's due index
ends with the message key, so that a page after a cursor (``due_after``) starts inside the
index instead of scanning and sorting the messages tied on the cursor's instant (many are: a
business-time trigger fires at the calendar's opening); the bump makes an older csmcore
refuse the store, as for any schema it does not know. Version 9 adds
``csm_ticket_requesters``, every requester each ticket had at some instant
(``Ticket.requesters``), filled from the histories when an older store is opened: the
escalation engine finds the tickets of a member who asked them before a change of requester
(:class:`~csmcore.storage.protocols.TicketsByRequester`)."""

_FIELD_COLUMNS = {
    "status": "status",
    "status_name": "status_name",
    "priority": "priority",
    "channel": "channel",
    "group": "grp",
    "assignee": "assignee",
    "requester": "requester",
    "created_by": "created_by",
    "subject": "subject",
}


def _value(v: object) -> Any:
    """An enum's value, anything else unchanged."""
    return getattr(v, "value", v)


def summary_row(ticket: Ticket) -> tuple[Any, ...]:
    return (
        _value(ticket.status),
        ticket.status_name,
        _value(ticket.priority),
        ticket.priority.rank,
        _value(ticket.channel),
        ticket.group,
        ticket.assignee,
        ticket.requester,
        _value(ticket.created_by),
        ticket.subject,
        ticket.merged_into,
        fields_json(ticket.fields),
    )


_EMPTY_JSON = "{}"


def fields_json(fields: Mapping[str, Any]) -> str:
    """The ``csm_tickets.fields`` text of a ticket's custom fields: a JSON object (UTF-8, not
    ASCII-escaped) keyed by :func:`field_key`, numbers as :func:`json_number` gives them.

    A ``None`` value is left out (``matches`` reads it as unset). A ``Decimal`` or a datetime
    is written as a JSON object (present, so that ``Eq(field, None)`` does not take it for
    unset, and of another JSON type than any scalar): a datetime as its tagged form
    (``{"$datetime": "..."}``), never equal to or ordered with a number or a string; a
    ``Decimal`` as its tagged form with the bounds :func:`decimal_bounds` gives
    (``{"$decimal": "10.50", "lo": 10.5, "hi": 10.5}``), with which the dialects compare it
    with numbers as Python does (``Decimal("1.00") == 1``, ``Decimal("0.01") > 0``).
    Conditions whose value is a ``Decimal`` or a datetime are left to ``matches`` (see
    ``_JSON_SCALARS``).
    """
    if not fields:
        return _EMPTY_JSON
    data: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, str | bool):
            data[field_key(name)] = value
        elif isinstance(value, int | float):
            data[field_key(name)] = json_number(value)
        elif isinstance(value, Decimal):
            lo, hi = decimal_bounds(value)
            data[field_key(name)] = {
                "$decimal": str(value),
                "lo": json_number(lo),
                "hi": json_number(hi),
            }
        elif isinstance(value, datetime):
            data[field_key(name)] = {"$datetime": value.isoformat()}
    return _dump_utf8(data)


_ENCODER = json.JSONEncoder(separators=(",", ":"))
_UTF8_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _fast_dump_json(reference: json.JSONEncoder) -> Callable[[Any], str] | None:
    """The C encoder of ``json`` built once, without the circular-reference check (the data
    is a tree made by ``to_data``): ``JSONEncoder.encode`` builds a new one on every call.
    None when this Python has no C encoder, or one that does not write what ``reference``
    writes."""
    make = getattr(json.encoder, "c_make_encoder", None)
    strings = (
        json.encoder.encode_basestring_ascii
        if reference.ensure_ascii
        else json.encoder.encode_basestring
    )
    if make is None:
        return None
    try:
        encode = make(
            None,
            reference.default,
            strings,
            None,
            ":",
            ",",
            False,
            False,
            True,
        )
    except TypeError:  # another signature
        return None

    def dump(data: Any) -> str:
        return "".join(encode(data, 0))

    sample = {"a": [1, 2.5, None, True, "\x00\ud800é"], "b": {"c": "d"}}
    try:
        same = dump(sample) == reference.encode(sample)
    except Exception:  # any surprise means: do not use it
        same = False
    return dump if same else None


dump_json: Callable[[Any], str] = _fast_dump_json(_ENCODER) or _ENCODER.encode
"""Compact, ASCII-only JSON text of JSON-safe data (NUL and surrogates come out escaped)."""

_dump_utf8: Callable[[Any], str] = _fast_dump_json(_UTF8_ENCODER) or _UTF8_ENCODER.encode
"""Compact JSON text that keeps non-ASCII characters as they are."""


def _event_json(event: TicketEvent) -> str:
    """The stored JSON text of ``event`` (what :func:`kit.encode_event` gives, ``"schema"``
    included), checked as :func:`kit.encode_event` checks it.

    JSON escapes NUL and surrogates (``\\u0000``, ``\\ud800`` to ``\\udfff``), so only a text
    holding one of those escapes needs the full check; the usual one costs two substring
    searches.
    """
    text = dump_json(event_to_data(event))
    if "\\u0000" in text or "\\ud" in text:
        c.check_data_text(json.loads(text), f"{type(event).__name__} at {event.at.isoformat()}")
    return text


DEFAULT_STATEMENT_TIMEOUT = 30.0
"""Seconds one statement may run, by default, on either SQL store (``?statement_timeout=``)."""


def statement_timeout_option(url: str, options: Mapping[str, str]) -> float:
    """The ``statement_timeout`` query parameter of a store URL (seconds, from 0 for no limit to
    2147483, the most a 32-bit count of milliseconds holds), or the default; ValidationError
    naming the URL and the value otherwise."""
    raw = options.get("statement_timeout", str(DEFAULT_STATEMENT_TIMEOUT))
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 2**31 / 1000:  # also refuses NaN
        raise ValidationError(
            f"url={url!r}: statement_timeout={raw!r} is not a number of seconds "
            "from 0 (no limit) to 2147483"
        )
    return seconds


class Cursor(Protocol):
    """What the shared code needs of a dialect's connection inside one transaction."""

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...


INSERT_REQUESTER = (
    "INSERT INTO csm_ticket_requesters (requester, ticket_id) VALUES (?, ?) "
    "ON CONFLICT (requester, ticket_id) DO NOTHING"
)
"""One row of ``csm_ticket_requesters`` (kept when it is there already)."""


def indexed_requester(requester: str) -> bool:
    """Whether ``csm_ticket_requesters`` holds ``requester``: one of at most
    :data:`~csmcore.storage.kit.MAX_ID_LENGTH` characters (every member id is), so that its
    index entries stay within PostgreSQL's limit; longer ones are found in Python."""
    return len(requester) <= c.MAX_ID_LENGTH


def requester_rows(before: Ticket | None, after: Ticket) -> list[tuple[str, str]]:
    """The ``csm_ticket_requesters`` rows ``after`` needs that ``before`` (the same ticket at
    an earlier version, or None for a new ticket) did not."""
    return [(r, after.id) for r in c.added_requesters(before, after) if indexed_requester(r)]


class Dialect:
    """Differences between SQL backends. Shared SQL is written with ``?`` placeholders."""

    name: ClassVar[str]
    max_params: int = 32_000
    """The most bound parameters one pushed-down condition may take (a SQLite store sets it
    from its build's limit, 32,766 by default or 999 before 3.32); a condition needing more is
    filtered in Python."""
    false: ClassVar[str] = "FALSE"
    row_values: ClassVar[bool] = True
    """Whether the backend compares row values (``(a, b) > (?, ?)``) and bounds an index
    range with them (SQLite from 3.15)."""
    true: ClassVar[str] = "TRUE"
    migrations: ClassVar[tuple[tuple[str, ...], ...]]
    """``migrations[n]`` holds the statements that take the schema from version n to n + 1."""

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        if not values:
            return self.false, []
        return f"{column} IN ({', '.join('?' * len(values))})", list(values)

    def bump_and_insert(self, bump: str) -> str | None:
        """One statement that runs ``bump`` (a guarded ``UPDATE csm_tickets``) and, only if it
        changed the row, inserts one event row (its seq and data are the last two
        parameters); None when the backend cannot, and the two run one after the other."""
        return None

    # --- custom fields: csm_tickets.fields, read with SQLite's JSON1 functions ---------------
    # Each method gives SQL over ``t.fields`` that is true, false or NULL (read as false) for
    # exactly the tickets ``matches`` accepts, or None when it cannot (then Python filters).

    two_valued_equals: ClassVar[bool] = False
    """True when :meth:`custom_unset` and :meth:`custom_equals` never give NULL: their SQL is
    then used as it is, not inside ``COALESCE`` (where no index can serve it)."""

    def custom_unset(self, key: str) -> tuple[str, list[Any]]:
        """The field whose :func:`field_key` is ``key`` is unset (``Eq(..., None)``)."""
        return "json_extract(t.fields, ?) IS NULL", [_json_path(key)]

    def custom_equals(
        self, key: str, values: Sequence[str | int | float | bool]
    ) -> tuple[str, list[Any]] | None:
        """The field equals one of ``values`` as ``_typed_key`` says: a bool only a bool, a
        number any equal number (1 == 1.0), a string the same string."""
        path = _json_path(key)
        parts: list[str] = []
        params: list[Any] = []
        bools = sorted({"true" if v else "false" for v in values if isinstance(v, bool)})
        if bools:
            parts.append(f"json_type(t.fields, ?) IN ({', '.join(map(repr, bools))})")
            params.append(path)
        numbers = [v for v in values if _is_number(v)]
        for kind, group in (
            ("'text'", sorted({v for v in values if isinstance(v, str)})),
            ("'integer', 'real'", numbers),
        ):
            if not group:
                continue
            if not all(map(_sqlite_number, group)):
                return None
            marks = ", ".join("?" * len(group))
            parts.append(
                f"(json_type(t.fields, ?) IN ({kind}) AND json_extract(t.fields, ?) IN ({marks}))"
            )
            params += [path, path, *group]
        if numbers:  # a Decimal equal to one of them: both bounds are that number
            marks = ", ".join("?" * len(numbers))
            parts.append(
                f"(json_extract(t.fields, ?) IN ({marks}) "
                "AND json_extract(t.fields, ?) = json_extract(t.fields, ?))"
            )
            params += [f"{path}.lo", *numbers, f"{path}.lo", f"{path}.hi"]
        if not parts:
            return self.false, []
        return " OR ".join(parts), params

    def custom_compare(
        self, key: str, op: str, value: str | int | float
    ) -> tuple[str, list[Any]] | None:
        """``field op value``: strings with strings by code point, numbers with numbers."""
        if not _sqlite_number(value):
            return None
        kind = "'text'" if isinstance(value, str) else "'integer', 'real'"
        path = _json_path(key)
        sql = f"json_type(t.fields, ?) IN ({kind}) AND json_extract(t.fields, ?) {op} ?"
        params: list[Any] = [path, path, value]
        if isinstance(value, str):
            return sql, params
        # or a Decimal that compares so (decimal_bounds), looked at only when the field is not
        # a number: a number field costs what it did before Decimals were compared
        tests = DECIMAL_COMPARISONS[op]
        decimal = " AND ".join(f"json_extract(t.fields, ?) {test} ?" for _, test in tests)
        params = [path, path, value, path]
        for bound, _ in tests:
            params += [f"{path}.{bound}", value]
        return (
            f"CASE WHEN json_type(t.fields, ?) IN ({kind}) THEN json_extract(t.fields, ?) {op} ? "
            f"WHEN json_type(t.fields, ?) = 'object' THEN {decimal} END",
            params,
        )


def _json_path(key: str) -> str:
    return f'$."{key}"'


def _is_number(value: object) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


_INT64 = range(-(2**63), 2**63)


def _sqlite_number(value: object) -> bool:
    """Whether SQLite compares ``value`` with every stored field value as Python does.

    SQLite reads a stored integer beyond 64 bits as the nearest REAL. Against an integer of
    64 bits, or a float smaller than 2**63, that REAL still compares (and differs) as the
    integer itself would; against anything larger it may not, so those are left to Python.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return True
    if isinstance(value, int):
        return value in _INT64
    return abs(value) < 2.0**63


class Compiled:
    """A condition turned into SQL: ``exact`` is False when ``sql`` only narrows the rows and
    the tickets it returns still have to be filtered with ``condition.matches``."""

    __slots__ = ("exact", "params", "sql")

    def __init__(self, sql: str, params: list[Any], exact: bool) -> None:
        self.sql = sql
        self.params = params
        self.exact = exact


MAX_SQL_DEPTH = 12
"""How many ``All`` / ``AnyOf`` / ``Not`` levels are pushed down to SQL; what lies deeper is
TRUE there (inexact) and left to ``matches`` (SQLite's parser overflows near 40 levels)."""

_TAG_EXISTS_MAX = 8
"""Up to this many tags, ``HasTags`` is one ``EXISTS`` per tag; more are counted in one
subquery (hundreds of ``EXISTS`` made the PostgreSQL planner take seconds)."""

_TAG_CHUNK = 500
"""Tags per counting subquery (each is one ``IN`` list of bound parameters)."""


_MAX_SUBQUERIES = 64
"""The most tag subqueries one pushed-down condition holds; ``HasTags`` beyond them is left to
Python (a PostgreSQL plan with a thousand correlated subqueries took minutes to make)."""


class _Depth(threading.local):
    level = 0
    subqueries = 0


_DEPTH = _Depth()


def compile_condition(cond: cd.Condition, dialect: Dialect) -> Compiled:
    """Push ``cond`` down to SQL over ``csm_tickets t`` (bound parameters only).

    Leaves the SQL cannot express exactly become TRUE (a superset) and mark the result inexact.
    Every leaf is wrapped in COALESCE(..., FALSE) so that NULL columns give the same two-valued
    answers as Python's ``matches``. Each condition class has its handler in :data:`PUSH_DOWN`
    (a class without one is not pushed down: TRUE, inexact). Parts nested deeper than
    :data:`MAX_SQL_DEPTH` and conditions needing more than ``dialect.max_params`` parameters
    are left to Python; long ``AND`` / ``OR`` lists are nested as balanced trees, so that no
    backend's expression depth limit is reached.
    """
    _DEPTH.level = _DEPTH.subqueries = 0
    compiled = PUSH_DOWN(cond, dialect)
    if len(compiled.params) > dialect.max_params:
        return _everything(dialect)
    return compiled


def _balanced(joiner: str, parts: Sequence[str]) -> str:
    """``parts`` joined with ``joiner`` in parentheses, nested as a balanced tree of at most 64
    parts a level (SQLite limits an expression's depth to 1,000)."""
    if len(parts) <= 64:
        return "(" + joiner.join(parts) + ")"
    size = -(-len(parts) // 64)
    return _balanced(
        joiner, [_balanced(joiner, parts[i : i + size]) for i in range(0, len(parts), size)]
    )


PUSH_DOWN = cd.ConditionVisitor[Compiled](
    "PUSH_DOWN", default=lambda node, dialect: Compiled(dialect.true, [], False)
)
"""The SQL push-down of each condition class: ``handler(node, dialect) -> Compiled``."""


def _everything(dialect: Dialect) -> Compiled:
    return Compiled(dialect.true, [], False)


def _leaf(dialect: Dialect, sql: str, params: list[Any]) -> Compiled:
    return Compiled(f"COALESCE(({sql}), {dialect.false})", params, True)


@PUSH_DOWN.register(cd.Always)
def _push_always(node: cd.Always, dialect: Dialect) -> Compiled:
    return Compiled(dialect.true, [], True)


@PUSH_DOWN.register(cd.Never)
def _push_never(node: cd.Never, dialect: Dialect) -> Compiled:
    return Compiled(dialect.false, [], True)


@PUSH_DOWN.register(cd.All, cd.AnyOf)
def _push_all_any(node: cd.All | cd.AnyOf, dialect: Dialect) -> Compiled:
    is_all = isinstance(node, cd.All)
    if not node.conditions:
        return Compiled(dialect.true if is_all else dialect.false, [], True)
    state = _DEPTH
    level = state.level
    if level >= MAX_SQL_DEPTH:
        return _everything(dialect)
    state.level = level + 1  # after an exception compile_condition starts again from 0
    parts = [PUSH_DOWN(p, dialect) for p in node.conditions]
    state.level = level
    exact = all(p.exact for p in parts)
    if exact:
        pass
    elif is_all:  # TRUE parts (not pushed down) add nothing to an AND
        parts = [p for p in parts if p.exact or p.sql != dialect.true] or parts[:1]
    elif any(p.sql == dialect.true for p in parts):
        return _everything(dialect)  # OR TRUE: every row
    return Compiled(
        _balanced(" AND " if is_all else " OR ", [p.sql for p in parts]),
        [x for p in parts for x in p.params],
        exact,
    )


@PUSH_DOWN.register(cd.Not)
def _push_not(node: cd.Not, dialect: Dialect) -> Compiled:
    state = _DEPTH
    level = state.level
    if level >= MAX_SQL_DEPTH:
        return _everything(dialect)
    state.level = level + 1
    inner = PUSH_DOWN(node.condition, dialect)
    state.level = level
    if not inner.exact:
        return _everything(dialect)
    return Compiled(f"(NOT {inner.sql})", inner.params, True)


@PUSH_DOWN.register(cd.HasTags)
def _push_tags(node: cd.HasTags, dialect: Dialect) -> Compiled:
    tags = sorted(node.tags)
    if not tags:
        return Compiled(dialect.true, [], True)
    count = len(tags) if len(tags) <= _TAG_EXISTS_MAX else -(-len(tags) // _TAG_CHUNK)
    if _DEPTH.subqueries + count > _MAX_SUBQUERIES:
        return _everything(dialect)
    _DEPTH.subqueries += count
    if len(tags) <= _TAG_EXISTS_MAX:
        sql = " AND ".join(
            "EXISTS (SELECT 1 FROM csm_ticket_tags g WHERE g.ticket_id = t.id AND g.tag = ?)"
            for _ in tags
        )
        return Compiled(f"({sql})", list(tags), True)
    # the ticket has every tag: as many of its tags are in the list as the list is long
    parts: list[str] = []
    params: list[Any] = []
    for start in range(0, len(tags), _TAG_CHUNK):
        chunk = tags[start : start + _TAG_CHUNK]
        test, more = dialect.in_list("g.tag", chunk)
        parts.append(
            f"(SELECT COUNT(*) FROM csm_ticket_tags g WHERE g.ticket_id = t.id AND {test}) "
            f"= {len(chunk)}"
        )
        params += more
    return Compiled(_balanced(" AND ", parts), params, True)


_JSON_SCALARS = (str, int, float)
"""The custom field values ``csm_tickets.fields`` holds as JSON and the dialects compare (bool
is an int); a condition on any other value (a datetime, a Decimal) is left to ``matches``."""


def _custom_key(field: str) -> str | None:
    """The ``fields`` key of a custom field's condition name, None for other fields."""
    if field.startswith(cd.CUSTOM_PREFIX):
        return field_key(field[len(cd.CUSTOM_PREFIX) :])
    return None


def _custom_in(dialect: Dialect, key: str, values: Iterable[Any]) -> Compiled:
    """``In`` (and ``Eq``) on a custom field: None is "unset", the rest are compared."""
    items = list(values)
    known = [v for v in items if v is not None]
    if not all(isinstance(v, _JSON_SCALARS) for v in known):
        return _everything(dialect)  # e.g. a datetime or Decimal: not in the column; Python
    parts: list[str] = []
    params: list[Any] = []
    if known:
        found = dialect.custom_equals(key, known)
        if found is None:
            return _everything(dialect)
        parts.append(found[0])
        params += found[1]
    if len(known) < len(items):
        unset, more = dialect.custom_unset(key)
        parts.append(unset)
        params += more
    if not parts:
        return Compiled(dialect.false, [], True)
    if dialect.two_valued_equals:
        return Compiled(f"({' OR '.join(parts)})", params, True)
    return _leaf(dialect, " OR ".join(parts), params)


@PUSH_DOWN.register(cd.Eq)
def _push_eq(node: cd.Eq, dialect: Dialect) -> Compiled:
    field = node.field
    key = _custom_key(field)
    if key is not None:
        return _custom_in(dialect, key, [node.value])
    if field == "merged" and isinstance(node.value, bool):
        test = "IS NOT NULL" if node.value else "IS NULL"
        return Compiled(f"(t.merged_into {test})", [], True)
    column = _FIELD_COLUMNS.get(field)
    if column is None:
        return _everything(dialect)
    value = _value(node.value)
    if value is None:
        return Compiled(f"(t.{column} IS NULL)", [], True)
    if not isinstance(value, str):
        return _everything(dialect)
    return _leaf(dialect, f"t.{column} = ?", [value])


@PUSH_DOWN.register(cd.In)
def _push_in(node: cd.In, dialect: Dialect) -> Compiled:
    key = _custom_key(node.field)
    if key is not None:
        return _custom_in(dialect, key, node.values)
    column = _FIELD_COLUMNS.get(node.field)
    if column is None:
        return _everything(dialect)
    values = [_value(v) for v in node.values]
    if not all(v is None or isinstance(v, str) for v in values):
        return _everything(dialect)
    strings = sorted({v for v in values if v is not None})
    sql, params = dialect.in_list(f"t.{column}", strings)
    if None in values:
        sql = f"{sql} OR t.{column} IS NULL"
    return _leaf(dialect, sql, params)


@PUSH_DOWN.register(cd.Compare)
def _push_compare(node: cd.Compare, dialect: Dialect) -> Compiled:
    field = node.field
    key = _custom_key(field)
    if key is not None and node.op in ("<", "<=", ">", ">="):
        if not isinstance(node.value, _JSON_SCALARS):
            return _everything(dialect)  # e.g. a datetime or Decimal: Python compares it
        found = dialect.custom_compare(key, node.op, node.value)
        if found is None:
            return _everything(dialect)
        return _leaf(dialect, *found)
    column = _FIELD_COLUMNS.get(field)
    if column is None:
        return _everything(dialect)
    value = _value(node.value)
    if node.op not in ("<", "<=", ">", ">="):
        return _everything(dialect)
    if field == "priority":
        from csmcore.tickets import Priority

        return _leaf(dialect, f"t.priority_rank {node.op} ?", [Priority(value).rank])
    if not isinstance(value, str):
        return _everything(dialect)
    return _leaf(dialect, f"t.{column} {node.op} ?", [value])


def _history(texts: Sequence[str]) -> Ticket:
    """The ticket whose stored events (JSON texts, in order) are ``texts``.

    The decoder reads an event without ``"schema"`` (written before schema versions) as
    version 1 and upcasts one older than the current schema of its tag.
    """
    datas = json.loads("[" + ",".join(texts) + "]")  # one parse for the whole history
    events: list[Any] = [event_from_data(d, "$") for d in datas]
    return Ticket.from_events(cast(list[TicketEvent], events))
