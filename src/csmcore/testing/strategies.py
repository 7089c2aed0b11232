"""Hypothesis strategies for csmcore's domain types (needs ``pip install 'csmcore[testing]'``).

Every strategy takes keyword-only arguments. Importing this module registers the types with
``st.from_type``, and so does Hypothesis itself through csmcore's ``hypothesis`` entry point
(:func:`csmcore.testing._hypothesis_setup_hook`), so ``st.from_type(Ticket)`` works in any test.

Text is drawn from valid Unicode without NUL characters: PostgreSQL cannot store NUL in text and
no store can write lone surrogates, so these strategies stay inside what every store accepts.

>>> from hypothesis import given
>>> @given(tickets(max_events=5))
... def test_version_counts_events(ticket):
...     assert ticket.version == len(ticket.events)
>>> test_version_counts_events()
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from csmcore import conditions as cd
from csmcore.calendars import BusinessCalendar
from csmcore.errors import InvalidTransition
from csmcore.sla import Metric, OnChange, OnReopen, SlaPolicy, SlaTarget
from csmcore.tickets import (
    Assigned,
    Channel,
    Commented,
    FieldsChanged,
    Merged,
    Priority,
    PriorityChanged,
    Reopened,
    Role,
    Status,
    StatusChanged,
    StatusMap,
    TagsChanged,
    Ticket,
    TicketCreated,
    TicketEvent,
)

__all__ = [
    "calendars",
    "conditions",
    "field_values",
    "instants",
    "names",
    "next_events",
    "register_types",
    "sla_policies",
    "sla_targets",
    "status_maps",
    "tags",
    "ticket_created",
    "ticket_ids",
    "tickets",
]

_EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "+05:30")
_WORDS = ("ann", "bob", "cho", "dee", "Émile", "zoë", "support", "billing", "vip", "中文")

_SAFE_TEXT = st.characters(codec="utf-8", exclude_characters="\x00")


def names(*, min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    """Non-empty names (agents, groups, requesters): mostly a few common words, so that
    conditions hit, sometimes arbitrary text without NUL."""
    return st.one_of(
        st.sampled_from(_WORDS),
        st.text(_SAFE_TEXT, min_size=max(min_size, 1), max_size=max_size),
    )


def tags() -> st.SearchStrategy[str]:
    """A tag: non-empty, no leading or trailing whitespace."""
    return names().map(str.strip).filter(bool)


def ticket_ids(*, prefix: str = "") -> st.SearchStrategy[str]:
    """Ticket ids, optionally with a fixed ``prefix``."""
    return st.one_of(
        st.integers(1, 10_000).map(lambda n: f"{prefix}T-{n}"),
        st.text(_SAFE_TEXT, min_size=1, max_size=10).map(lambda s: f"{prefix}{s}"),
    )


def instants(
    *, min_value: datetime = _EPOCH, max_value: datetime = _EPOCH + timedelta(days=3650)
) -> st.SearchStrategy[datetime]:
    """Aware instants between ``min_value`` and ``max_value``, in assorted time zones."""
    lo = min_value.astimezone(timezone.utc).replace(tzinfo=None)
    hi = max_value.astimezone(timezone.utc).replace(tzinfo=None)
    return st.builds(
        lambda naive, zone: naive.replace(tzinfo=timezone.utc).astimezone(zone),
        st.datetimes(min_value=lo, max_value=hi),
        st.sampled_from(
            [timezone.utc, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]
        ),
    )


def field_values() -> st.SearchStrategy[str | int | float | bool | None]:
    """Custom field values: strings, integers, finite floats, booleans."""
    return st.one_of(
        names(max_size=6),
        st.integers(-1000, 1000),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.booleans(),
    )


def _field_names() -> st.SearchStrategy[str]:
    return st.sampled_from(("plan", "region", "seats", "score", "vip"))


def status_maps() -> st.SearchStrategy[StatusMap]:
    """Status maps with a few custom names."""
    custom = st.dictionaries(
        st.sampled_from(("Awaiting Vendor", "Escalated", "Waiting on QA", "Parked")),
        st.sampled_from(list(Status)),
        max_size=3,
    )
    return custom.map(lambda c: StatusMap(custom=c))


def ticket_created(
    *,
    ticket_id: st.SearchStrategy[str] | None = None,
    at: st.SearchStrategy[datetime] | None = None,
) -> st.SearchStrategy[TicketCreated]:
    """A valid first event of a ticket."""
    return st.builds(
        TicketCreated,
        at=at if at is not None else instants(),
        ticket_id=ticket_id if ticket_id is not None else ticket_ids(),
        created_by=st.sampled_from(list(Role)),
        channel=st.sampled_from(list(Channel)),
        priority=st.sampled_from(list(Priority)),
        requester=names(),
        subject=st.one_of(st.just(""), names(max_size=20)),
        group=st.none() | names(),
        assignee=st.none() | names(),
        status=st.sampled_from(list(Status)),
        tags=st.frozensets(tags(), max_size=3),
        fields=st.dictionaries(_field_names(), field_values(), max_size=3),
        actor=st.none() | names(),
    )


@st.composite
def _next_event(draw: st.DrawFn, ticket: Ticket, max_gap: timedelta) -> TicketEvent:
    gap = draw(st.integers(0, int(max_gap.total_seconds())))
    at = ticket.updated_at + timedelta(seconds=gap)
    status = ticket.status
    kinds = ["priority", "assign", "tags", "fields"]
    if status is not Status.CLOSED:
        kinds += ["comment", "comment", "status", "merge"]
    if status in (Status.SOLVED, Status.CLOSED):
        kinds.append("reopen")
    kind = draw(st.sampled_from(kinds))
    actor = draw(st.none() | names())
    if kind == "priority":
        return PriorityChanged(at=at, actor=actor, priority=draw(st.sampled_from(list(Priority))))
    if kind == "assign":
        return Assigned(
            at=at, actor=actor, assignee=draw(st.none() | names()), group=draw(st.none() | names())
        )
    if kind == "tags":
        added = draw(st.frozensets(tags(), max_size=2))
        removed = draw(
            st.frozensets(st.sampled_from(sorted(ticket.tags)), max_size=2)
            if ticket.tags
            else st.just(frozenset[str]())
        )
        return TagsChanged(at=at, actor=actor, added=added - removed, removed=removed)
    if kind == "fields":
        changes = draw(
            st.dictionaries(_field_names(), st.none() | field_values(), min_size=1, max_size=2)
        )
        return FieldsChanged(at=at, actor=actor, changes=changes)
    if kind == "comment":
        role = draw(st.sampled_from(list(Role)))
        return Commented(
            at=at,
            actor=actor,
            author_role=role,
            public=draw(st.booleans()),
            author=draw(st.none() | names()),
            on_behalf_of_requester=role is not Role.REQUESTER and draw(st.booleans()),
        )
    if kind == "status":
        choices = [s for s in Status if s is not Status.NEW or status is Status.NEW]
        return StatusChanged(at=at, actor=actor, status=draw(st.sampled_from(choices)))
    if kind == "merge":
        into = draw(ticket_ids().filter(lambda i: i != ticket.id))
        return Merged(at=at, actor=actor, into=into)
    target = draw(st.sampled_from([Status.OPEN, Status.PENDING, Status.ON_HOLD]))
    return Reopened(at=at, actor=actor, status=target)


def next_events(
    ticket: Ticket, *, max_gap: timedelta = timedelta(days=3)
) -> st.SearchStrategy[TicketEvent]:
    """An event that may follow ``ticket`` (valid for ``ticket.apply``), at most ``max_gap``
    after its last update. ``ticket`` must not be merged."""
    return _next_event(ticket, max_gap)


@st.composite
def _tickets(
    draw: st.DrawFn,
    ticket_id: st.SearchStrategy[str] | None,
    min_events: int,
    max_events: int,
    start: st.SearchStrategy[datetime] | None,
) -> Ticket:
    created = draw(ticket_created(ticket_id=ticket_id, at=start))
    ticket = Ticket.from_events([created])
    wanted = draw(st.integers(min_events, max_events))
    while ticket.version < wanted and ticket.merged_into is None:
        event = draw(next_events(ticket))
        try:
            ticket = ticket.apply(event)
        except InvalidTransition:  # pragma: no cover - next_events only draws valid events
            continue
    return ticket


def tickets(
    *,
    ticket_id: st.SearchStrategy[str] | None = None,
    min_events: int = 1,
    max_events: int = 8,
    start: st.SearchStrategy[datetime] | None = None,
) -> st.SearchStrategy[Ticket]:
    """Tickets with a valid history of ``min_events``..``max_events`` events (fewer when the
    history ends in a merge), created at an instant drawn from ``start``."""
    return _tickets(ticket_id, min_events, max_events, start)


_FIELDS_FOR_CONDITIONS = (
    "status",
    "status_name",
    "priority",
    "channel",
    "group",
    "assignee",
    "requester",
    "created_by",
    "subject",
)


def _values_for(field: str) -> st.SearchStrategy[Any]:
    enums: dict[str, Sequence[Any]] = {
        "status": list(Status),
        "priority": list(Priority),
        "channel": list(Channel),
        "created_by": list(Role),
    }
    if field in enums:
        return st.sampled_from(enums[field])
    if field in ("group", "assignee"):
        return st.none() | names()
    if field == "status_name":
        return st.sampled_from([s.value for s in Status] + ["Awaiting Vendor"])
    return names()


@st.composite
def _leaf(draw: st.DrawFn) -> cd.Condition:
    kind = draw(st.sampled_from(["eq", "in", "cmp", "tags", "merged", "custom", "const"]))
    if kind == "tags":
        return cd.HasTags(draw(st.frozensets(tags(), max_size=2)))
    if kind == "merged":
        return cd.Eq("merged", draw(st.booleans()))
    if kind == "const":
        return draw(st.sampled_from([cd.Always(), cd.Never()]))
    if kind == "custom":
        name = "fields." + draw(_field_names())
        return cd.Eq(name, draw(field_values()))
    if kind == "cmp":
        field = draw(st.sampled_from(["priority", "fields.seats", "fields.plan"]))
        op = draw(st.sampled_from(["<", "<=", ">", ">="]))
        if field == "priority":
            value: Any = draw(st.sampled_from(list(Priority)))
        else:
            value = draw(field_values().filter(lambda v: not isinstance(v, bool)))
        return cd.Compare(field, op, value)
    field = draw(st.sampled_from(_FIELDS_FOR_CONDITIONS))
    if kind == "in":
        return cd.In(field, draw(st.lists(_values_for(field), max_size=3)))
    return cd.Eq(field, draw(_values_for(field)))


def conditions(*, max_leaves: int = 6) -> st.SearchStrategy[cd.Condition]:
    """Conditions over tickets: comparisons on every kind of field combined with and / or / not."""
    return st.recursive(
        _leaf(),
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: cd.All(*cs)),
            st.lists(inner, min_size=1, max_size=3).map(lambda cs: cd.AnyOf(*cs)),
            inner.map(cd.Not),
        ),
        max_leaves=max_leaves,
    )


@st.composite
def _calendars(draw: st.DrawFn, zones: Sequence[str]) -> BusinessCalendar:
    hours: dict[str, list[tuple[str, str]]] = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        cuts = sorted(draw(st.sets(st.integers(0, 96), max_size=4)))
        windows = [(a, b) for a, b in zip(cuts[::2], cuts[1::2], strict=False) if a < b]
        if windows:
            hours[day] = [(_hhmm(a * 15), _hhmm(b * 15)) for a, b in windows]
    if not hours:
        hours["mon"] = [("09:00", "17:00")]
    holidays = draw(st.frozensets(st.dates(date(2020, 1, 1), date(2030, 12, 31)), max_size=5))
    return BusinessCalendar(timezone=draw(st.sampled_from(zones)), hours=hours, holidays=holidays)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def calendars(*, zones: Sequence[str] = _ZONES) -> st.SearchStrategy[BusinessCalendar]:
    """Business calendars with up to two windows per day (quarter-hour edges, ``"24:00"``
    included), a few holidays, in one of ``zones``."""
    return _calendars(tuple(zones))


def register_types() -> None:
    """Register csmcore's types with ``st.from_type`` (idempotent)."""
    for cls, strategy in _registry().items():
        st.register_type_strategy(cls, strategy)


def _registry() -> dict[type, st.SearchStrategy[Any]]:
    found: dict[type, st.SearchStrategy[Any]] = {
        Ticket: tickets(),
        TicketCreated: ticket_created(),
        BusinessCalendar: calendars(),
        StatusMap: status_maps(),
        cd.Condition: conditions(),
    }
    found.update(_sla_registry())
    return found


def _sla_registry() -> dict[type, st.SearchStrategy[Any]]:
    return {SlaTarget: sla_targets(), SlaPolicy: sla_policies()}


_BUILTIN_METRICS = tuple(m for m in Metric if m is not Metric.CUSTOM)


def sla_targets(
    *, metric: st.SearchStrategy[Metric] | None = None, priority: bool = True
) -> st.SearchStrategy[SlaTarget]:
    """SLA targets on a built-in metric: one minute to a week, business or wall time, optional
    warnings, priority (unless ``priority=False``) and condition."""
    return st.builds(
        SlaTarget,
        metric=metric if metric is not None else st.sampled_from(_BUILTIN_METRICS),
        within=st.integers(1, 7 * 24 * 60).map(lambda m: timedelta(minutes=m)),
        priority=st.none() | st.sampled_from(list(Priority)) if priority else st.none(),
        condition=st.none() | conditions(max_leaves=3),
        business_hours=st.booleans(),
        warn_at=st.frozensets(st.sampled_from((0.5, 0.75, 0.9)), max_size=2).map(sorted),
        on_reopen=st.sampled_from(list(OnReopen)),
        on_change=st.sampled_from(list(OnChange)),
    )


@st.composite
def _sla_policies(draw: st.DrawFn, default: bool | None) -> SlaPolicy:
    metrics = draw(st.lists(st.sampled_from(_BUILTIN_METRICS), min_size=1, max_size=3, unique=True))
    targets = [draw(sla_targets(metric=st.just(m), priority=False)) for m in metrics]
    is_default = draw(st.booleans()) if default is None else default
    condition = draw(st.none() | conditions(max_leaves=3)) if is_default else draw(conditions())
    return SlaPolicy(
        name=draw(names()).strip() or "policy",
        position=draw(st.integers(0, 100)),
        targets=targets,
        condition=condition,
        default=is_default,
        version=draw(st.integers(1, 5)),
        effective_from=draw(st.none() | instants()),
    )


def sla_policies(*, default: bool | None = None) -> st.SearchStrategy[SlaPolicy]:
    """SLA policies with one to three targets on distinct built-in metrics; ``default`` fixes
    whether it is the fallback policy (None: either)."""
    return _sla_policies(default)


register_types()
