"""Streaming, mergeable KPI aggregation over ticket metrics, grouped by ticket dimensions and
time buckets (:class:`KpiAggregator`, :class:`Kpis`).

Records are taken in batches and each is read once, only the fields the asked metrics and
figure families need. With plain dimensions (no function, tags, field or time bucket) one
generated loop sorts a batch by the record's type and grouping key, and, when the counted fields
(SLA outcomes, CSAT and CES answers, ...) take few distinct values, by those fields too: each
part's records then have the same counted fields, which are counted once per part instead of
once per record. Otherwise each record's key(s) are computed in Python. Each group's durations
are accumulated column by column with C-level iteration (``filter``, ``sum``, ``list.count``),
and exact medians and percentiles are found by selection (see
:func:`csmcore.kpi._stats.order_statistics`). Memory stays constant in the number of tickets
except for the values an exact median, percentile or backlog age needs.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from datetime import date, datetime, timedelta, tzinfo
from itertools import chain, compress, islice
from operator import attrgetter, sub
from typing import Any, Final, Literal

import attrs

from csmcore._time import require_aware, resolve_zone
from csmcore.calendars import BusinessCalendar
from csmcore.errors import InvalidType, ValidationError, invalid_type
from csmcore.kpi._metrics import DURATION_METRICS, TicketMetrics, ticket_metrics
from csmcore.kpi._scores import _ces_agree_from, check_score
from csmcore.kpi._stats import DurationStats, DurationSummary, check_percentiles, quantile
from csmcore.sla import SlaBook, SlaState
from csmcore.tickets import Channel, Status, Ticket

__all__ = [
    "DEFAULT_AGE_EDGES",
    "FIGURES",
    "Backlog",
    "Bucket",
    "KpiAggregator",
    "Kpis",
    "SlaFigures",
    "time_bucket",
]

Bucket = Literal["day", "week", "month", "quarter"]
_BUCKETS: Final = ("day", "week", "month", "quarter")
_US: Final = timedelta(microseconds=1)
_UNSOLVED: Final = frozenset({Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD})
_SLA_SLOT: Final = {SlaState.ACHIEVED: 0, SlaState.BREACHED: 1}
_PLAIN_DIMENSIONS: Final = frozenset(
    {"priority", "channel", "group", "assignee", "status", "created_by"}
)
_BATCH: Final = 65536
_FIRST_BATCH: Final = 4096
_PART_RECORDS: Final = 32  # sorting by parts pays when they hold this many records on average
_METRICS_ONLY: Final = {TicketMetrics}
_Splitter = Callable[[list[Any]], dict[Any, tuple[list[Any], ...]]]
DEFAULT_AGE_EDGES: Final = (
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=7),
    timedelta(days=30),
)


def time_bucket(instant: datetime, bucket: Bucket, zone: tzinfo | str) -> date:
    """The first day of the ``bucket`` (day, ISO week from Monday, month, quarter) holding
    ``instant`` in time zone ``zone`` (a tzinfo or a name, as ``KpiAggregator(timezone=)``).

    The local date is read in ``zone`` whatever zone ``instant`` is given in: 00:30 CEST on
    26 October 2025 (22:30 UTC on the 25th) is in the day of the 26th in Berlin. Raises
    NaiveDatetimeError for a naive ``instant`` (``astimezone`` would read it in the
    machine's zone), ValidationError for an unknown ``bucket`` or zone.

    >>> from datetime import timezone
    >>> time_bucket(datetime(2025, 5, 31, 23, 30, tzinfo=timezone.utc), "quarter", timezone.utc)
    datetime.date(2025, 4, 1)
    """
    require_aware(instant, "instant")
    if bucket not in _BUCKETS:
        raise ValidationError(
            f"bucket={bucket!r} is not a time bucket; accepted: {', '.join(_BUCKETS)}",
            field="bucket",
            value=bucket,
        )
    return _bucket_of(instant, bucket, resolve_zone(zone, "zone"))


def _bucket_of(instant: datetime, bucket: Bucket, zone: tzinfo) -> date:
    """:func:`time_bucket` of an aware instant, a known bucket and a tzinfo (unchecked)."""
    day = instant.astimezone(zone).date()
    if bucket == "day":
        return day
    if bucket == "week":
        return day - timedelta(days=day.weekday())
    if bucket == "month":
        return day.replace(day=1)
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


@attrs.frozen(kw_only=True)
class SlaFigures:
    """SLA outcomes of one target (or all): ``rate`` is achieved / (achieved + breached), None
    when neither; ``running`` targets (active or paused) are not in the rate."""

    achieved: int = 0
    breached: int = 0
    running: int = 0

    @property
    def rate(self) -> float | None:
        """The achievement rate in 0..1 (None when no target finished)."""
        done = self.achieved + self.breached
        return self.achieved / done if done else None

    @property
    def breach_rate(self) -> float | None:
        """breached / (achieved + breached), None when no target finished."""
        done = self.achieved + self.breached
        return self.breached / done if done else None


@attrs.frozen(kw_only=True)
class Backlog:
    """Unsolved tickets at the instant their metrics were taken: ``count``, the ``p50`` and
    ``p90`` of their ages (None when empty), and ``buckets``: ``(from, to, count)`` per age
    range, ``to`` None for the last (open-ended) one."""

    count: int
    p50: timedelta | None
    p90: timedelta | None
    buckets: tuple[tuple[timedelta, timedelta | None, int], ...]


@attrs.frozen(kw_only=True)
class Kpis:
    """The KPIs of one group of tickets (see ``docs/kpi-reference.md`` for each formula).

    ``durations`` maps each summarised duration metric to its :class:`DurationSummary`;
    ``sla`` maps each target to its :class:`SlaFigures`, ``sla_overall`` sums them; ``csat`` is
    the top-box share (0..1) of ``csat_responses`` ratings, ``ces`` the mean or agreeing share
    of ``ces_responses`` answers; ``one_touch_rate`` (first-contact resolution) and
    ``two_touch_rate`` are over the ``solved`` tickets, ``reopen_rate`` is the share of the
    ``resolved`` tickets (solved or closed at the instant of their metrics) that were
    ``reopened`` at least once; ``channels`` counts tickets per channel. Rates are None when
    their denominator is 0.
    """

    tickets: int
    durations: dict[str, DurationSummary]
    sla: dict[str, SlaFigures]
    sla_overall: SlaFigures
    csat: float | None
    csat_responses: int
    ces: float | None
    ces_responses: int
    solved: int
    one_touch_rate: float | None
    two_touch_rate: float | None
    resolved: int
    reopened: int
    reopen_rate: float | None
    backlog: Backlog
    channels: dict[Channel, int]

    def __getattr__(self, name: str) -> DurationSummary:
        # kpis.first_reply is kpis.durations["first_reply"]
        durations = object.__getattribute__(self, "durations")
        if name in durations:
            summary: DurationSummary = durations[name]
            return summary
        raise AttributeError(name)


FIGURES: Final = ("sla", "csat", "ces", "touch", "reopens", "channels", "backlog")
"""The figure families a :class:`KpiAggregator` can compute besides the durations."""

# The fields each family counts, read together by one attrgetter into one Counter per group.
_FAMILY_FIELDS: Final = {
    "sla": ("sla",),
    "csat": ("csat_score", "csat_scale"),
    "ces": ("ces_score", "ces_scale"),
    "touch": ("one_touch", "two_touch"),
    "reopens": ("status", "reopens"),
    "channels": ("channel",),
    "backlog": (),
}


class _Group:
    """The running state of one group: the duration accumulators, one Counter of the tuples
    of the counted fields (few distinct values), and the backlog ages."""

    __slots__ = ("ages", "combos", "durations", "tickets")

    def __init__(self, metrics: Sequence[str], keep: frozenset[str]) -> None:
        self.tickets = 0
        self.durations = {m: DurationStats(keep_values=m in keep) for m in metrics}
        self.combos: Counter[Any] = Counter()
        self.ages: list[timedelta] = []

    def absorb(self, parts: Sequence[Sequence[Sequence[Any]]], plan: _Plan) -> None:
        """Count one batch of this group's records, given as parts (one or more), each the
        plan's value columns of some of the records (the counted fields are counted by the
        caller, into :attr:`combos`)."""
        self.tickets += sum(len(cols[0]) for cols in parts)
        for name, i in plan.metric_index:
            self.durations[name].add_columns([cols[i] for cols in parts])
        if plan.backlog:
            status, at, created = (
                list(chain.from_iterable(cols[i] for cols in parts)) for i in plan.backlog_index
            )
            chosen = list(map(_UNSOLVED.__contains__, status))
            if any(chosen):
                self.ages += map(sub, compress(at, chosen), compress(created, chosen))

    def merge(self, other: _Group) -> None:
        self.tickets += other.tickets
        for name, stats in self.durations.items():
            stats.merge(other.durations[name])
        self.combos.update(other.combos)
        self.ages += other.ages


class _Plan:
    """What an aggregator reads from each record: the value columns (each duration metric,
    then the backlog's status and instants) and the counted fields (their tuple, or the value
    itself when there is one). Each record is read once (records are large objects).

    Three loops are generated for these fields, as attrs and dataclasses generate their
    methods, so that the interpreter specialises each attribute read: ``row`` reads one
    record's value columns and, last, its counted fields (the general path, any grouping); with
    plain dimensions, ``split_parts`` sorts a batch into parts by the key fields and the counted
    fields together, appending each record's value columns to its part's lists, so that the
    counted fields are counted once per part, not once per record; ``split_groups`` sorts it by
    the key fields alone, the counted fields appended as one more column (better when the
    counted fields take so many distinct values that parts would hold few records each)."""

    __slots__ = (
        "backlog",
        "backlog_index",
        "fields",
        "keys",
        "metric_index",
        "row",
        "split_groups",
        "split_parts",
        "width",
    )

    def __init__(
        self,
        key_fields: Sequence[str],
        metrics: Sequence[tuple[str, str]],
        figures: Sequence[str],
    ) -> None:
        fields: list[str] = []
        for family in figures:
            for name in _FAMILY_FIELDS[family]:
                if name not in fields:
                    fields.append(name)
        self.fields = tuple(fields)
        self.keys = tuple(key_fields)
        self.backlog = "backlog" in figures
        columns: list[str] = [attribute for _, attribute in metrics]
        if self.backlog:
            columns += ["status", "at", "created_at"]
        if not columns:  # the ticket count still needs a column
            columns.append("status")
        where = {c: i for i, c in reversed(list(enumerate(columns)))}
        self.width = len(columns)
        self.metric_index = [(name, where[attribute]) for name, attribute in metrics]
        self.backlog_index: tuple[int, int, int] = (
            (where["status"], where["at"], where["created_at"]) if self.backlog else (0, 0, 0)
        )
        self.row, self.split_parts, self.split_groups = _readers(
            self.keys, self.fields, tuple(columns)
        )

    def gather(
        self, batch: list[Any], by_parts: bool, strict: bool
    ) -> tuple[dict[Any, tuple[list[tuple[list[Any], ...]], Counter[Any]]], int] | None:
        """One batch sorted per group (``by_parts``: with ``split_parts``, else with
        ``split_groups``): group key (``()`` without key fields, the value itself with one,
        else their tuple) -> its records' value columns (in one or more parts) and how many
        records had each tuple of counted fields; and how many distinct (group, counted fields)
        the batch held. None when ``strict`` and a record is not exactly a TicketMetrics (or
        lacks a field read)."""
        try:
            split = (self.split_parts if by_parts else self.split_groups)(batch)
        except Exception:  # not a TicketMetrics: the caller's checked path names the item
            if strict:
                return None
            raise
        nk, nf = len(self.keys), len(self.fields)
        gathered: dict[Any, tuple[list[tuple[list[Any], ...]], Counter[Any]]] = {}
        distinct = 0
        for key, cols in split.items():
            if strict and key[0] is not TicketMetrics:
                return None
            group = () if not nk else key[1] if nk == 1 else key[1 : 1 + nk]
            if not by_parts:
                counted = Counter(cols[self.width]) if nf else Counter()
                gathered[group] = ([cols], counted)
                distinct += len(counted) or 1
                continue
            found = gathered.get(group)
            if found is None:
                found = gathered[group] = ([], Counter())
            found[0].append(cols)
            if nf:
                found[1][key[1 + nk] if nf == 1 else key[1 + nk :]] += len(cols[0])
            distinct += 1
        return gathered, distinct


_READERS: dict[tuple[tuple[str, ...], ...], tuple[Any, Any, Any]] = {}


def _readers(
    keys: tuple[str, ...], fields: tuple[str, ...], columns: tuple[str, ...]
) -> tuple[Callable[[TicketMetrics], tuple[Any, ...]], _Splitter, _Splitter]:
    """The generated ``row``, ``split_parts`` and ``split_groups`` functions of these key
    fields, counted fields and value columns. ``row(record)`` is the tuple of the columns and
    (when there are counted fields) the counted fields last: their tuple, or the value itself
    when there is one. ``split_parts(batch)`` sorts a batch into parts: key (the record's type,
    the key fields, then the counted fields) -> one list per column; ``split_groups(batch)``
    into groups: key (the record's type, then the key fields) -> one list per column, and one
    more of the counted fields (as ``row`` reads them) when there are any. Generated once per
    layout; every name is a TicketMetrics field."""
    found = _READERS.get((keys, fields, columns))
    if found is not None:
        return found
    known = set(attrs.fields_dict(TicketMetrics))
    for name in (*keys, *fields, *columns):
        if name not in known or not name.isidentifier():  # pragma: no cover - internal
            raise ValueError(f"{name!r} is not a TicketMetrics field")

    def read(names: tuple[str, ...]) -> str:
        if len(names) == 1:
            return f"r.{names[0]}"
        return "(" + ", ".join(f"r.{n}" for n in names) + ")"

    def splitter(name: str, key: tuple[str, ...], reads: list[str]) -> str:
        lists = ", ".join(f"c{i}" for i in range(len(reads)))
        return (
            f"def new_{name}():\n"
            f"    return ({', '.join('[]' for _ in reads)},)\n"
            f"def {name}(batch):\n"
            f"    parts = defaultdict(new_{name})\n"
            "    for r in batch:\n"
            f"        {lists}, = parts[(type(r), {', '.join(f'r.{n}' for n in key)})]\n"
            f"        {'; '.join(f'c{i}.append({v})' for i, v in enumerate(reads))}\n"
            "    return parts\n"
        )

    values = [f"r.{c}" for c in columns]
    counted = [read(fields)] if fields else []
    source = (
        "def row(r):\n"
        f"    return ({', '.join(values + counted)},)\n"
        + splitter("split_parts", keys + fields, values)
        + splitter("split_groups", keys, values + counted)
    )
    namespace: dict[str, Any] = {"defaultdict": defaultdict}
    name = f"<csmcore.kpi readers {keys} {fields} {columns}>"
    exec(compile(source, name, "exec"), namespace)
    found = _READERS[(keys, fields, columns)] = (
        namespace["row"],
        namespace["split_parts"],
        namespace["split_groups"],
    )
    return found


def _dimension(name: object) -> tuple[Callable[[TicketMetrics], Any], bool]:
    """The key function of one grouping dimension and whether it explodes (tags)."""
    if callable(name):
        return name, False
    if not isinstance(name, str):
        raise InvalidType(
            f"by={name!r} is not a dimension name or a function of TicketMetrics",
            field="by",
            value=name,
        )
    if name in _PLAIN_DIMENSIONS:
        return attrgetter(name), False
    if name == "tags":
        return attrgetter("tags"), True
    if name.startswith("field:") and len(name) > len("field:"):
        field = name[len("field:") :]
        return (lambda m: m.fields.get(field)), False
    raise ValidationError(
        f"by={name!r} is not a dimension; accepted: {', '.join(sorted(_PLAIN_DIMENSIONS))}, "
        "'tags', 'field:<name>', or a function of TicketMetrics",
        field="by",
        value=name,
    )


class KpiAggregator:
    """Accumulates :class:`Kpis` per group over any iterable of :class:`TicketMetrics` (or of
    :class:`~csmcore.tickets.Ticket`, turned into metrics at ``at`` with ``calendar`` and
    ``book``), streaming; mergeable: aggregating parts and merging them gives the same figures
    as aggregating the whole.

    ``by``: dimensions (``"priority"``, ``"channel"``, ``"group"``, ``"assignee"``,
    ``"status"``, ``"created_by"``, ``"tags"`` (a ticket counts once in each of its tags'
    groups; untagged tickets in the group None), ``"field:<name>"``, or a function of the
    metrics). ``bucket``: ``"day"``, ``"week"``, ``"month"`` or ``"quarter"`` of the instant
    named ``bucket_on`` (``"created_at"`` or ``"solved_at"``) in ``timezone``, added as the
    last part of each group key (the first day of the bucket, a ``date``). ``metrics``: which
    duration metrics to summarise; ``business=True`` summarises their business-time twins.
    ``percentiles`` beyond the median. ``exact``: keep the values of every duration metric
    (True, the default: medians and percentiles), of none (False: constant memory, no medians),
    or of the metrics named. ``figures``: the families computed besides durations (default all
    of :data:`FIGURES`; one not asked is left empty: 0, None or {}). ``csat_top``: how many top
    boxes count as satisfied (at most ``scale - 1`` of a rating's scale: on a good/bad scale of
    2, only good); ``ces_method``/``ces_agree_at`` as :func:`csmcore.kpi.ces`;
    ``age_edges``: the backlog age buckets.

    Raises ValidationError (or InvalidType) for a bad setting, naming it; :meth:`update`
    raises ValidationError (naming ``calendar``) for a ticket given with ``business=True``
    and no ``calendar`` (metrics computed beforehand carry their business twins).

    >>> from datetime import timezone
    >>> from csmcore.testing.builders import make_ticket
    >>> t0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
    >>> a, _ = make_ticket("A", at=t0).comment(t0 + timedelta(minutes=10), "agent")
    >>> b, _ = make_ticket("B", at=t0).comment(t0 + timedelta(minutes=30), "agent")
    >>> agg = KpiAggregator(by=["channel"]).update([a, b])
    >>> kpis = agg.results()[("email",)]
    >>> kpis.tickets, str(kpis.first_reply.median)
    (2, '0:20:00')
    """

    def __init__(
        self,
        *,
        by: Iterable[str | Callable[[TicketMetrics], Hashable]] = (),
        bucket: Bucket | None = None,
        bucket_on: Literal["created_at", "solved_at"] = "created_at",
        timezone: str | tzinfo = "UTC",
        metrics: Iterable[str] = DURATION_METRICS,
        business: bool = False,
        percentiles: Iterable[float] = (90,),
        exact: bool | Iterable[str] = True,
        figures: Iterable[str] = FIGURES,
        csat_top: int = 2,
        ces_method: Literal["mean", "agree"] = "mean",
        ces_agree_at: int | None = None,
        age_edges: Iterable[timedelta] = DEFAULT_AGE_EDGES,
        at: datetime | None = None,
        calendar: BusinessCalendar | None = None,
        book: SlaBook | None = None,
    ) -> None:
        if not isinstance(by, str) and (callable(by) or not isinstance(by, Iterable)):
            raise invalid_type(
                "by", by, "a dimension name or a collection of names and functions of TicketMetrics"
            )
        self.by = (by,) if isinstance(by, str) else tuple(by)
        self._dims = [_dimension(d) for d in self.by]
        if bucket is not None and bucket not in _BUCKETS:
            raise ValidationError(
                f"bucket={bucket!r} is not a time bucket; accepted: {', '.join(_BUCKETS)}",
                field="bucket",
                value=bucket,
            )
        if bucket_on not in ("created_at", "solved_at"):
            raise ValidationError(
                f"bucket_on={bucket_on!r}; accepted: 'created_at', 'solved_at'",
                field="bucket_on",
                value=bucket_on,
            )
        self.bucket = bucket
        self.zone = resolve_zone(timezone)
        self.metrics = _names("metrics", metrics, DURATION_METRICS)
        self.figures = _names("figures", figures, FIGURES)
        if isinstance(exact, bool):
            keep = frozenset(self.metrics) if exact else frozenset()
        else:
            keep = frozenset(_names("exact", exact, self.metrics))
        self.keep = keep
        self.percentiles = check_percentiles(percentiles)
        self.csat_top = check_score(csat_top, 1, 9, "csat_top")
        if ces_method not in ("mean", "agree"):
            raise ValidationError(
                f"ces_method={ces_method!r}; accepted: 'mean', 'agree'",
                field="ces_method",
                value=ces_method,
            )
        self.ces_method = ces_method
        self.ces_agree_at = (
            None if ces_agree_at is None else check_score(ces_agree_at, 1, 10, "ces_agree_at")
        )
        edges = tuple(age_edges)
        if any(not isinstance(e, timedelta) or e <= timedelta() for e in edges) or list(
            edges
        ) != sorted(set(edges)):
            raise ValidationError(
                f"age_edges={edges!r} are not increasing positive timedeltas",
                field="age_edges",
                value=edges,
            )
        self.age_edges = edges
        self.at, self.calendar, self.book = at, calendar, book
        suffix = "_business" if business else ""
        self.business = bool(business)
        self._bucket_getter = attrgetter(bucket_on)
        names = [d for d in self.by if isinstance(d, str)]
        self._fast = (
            bucket is None and len(names) == len(self.by) and set(names) <= _PLAIN_DIMENSIONS
        )
        self._plan = _Plan(
            names if self._fast else (),
            [(m, m + suffix) for m in self.metrics],
            self.figures,
        )
        self._single = len(self.by) == 1 and self._fast
        self._by_parts: bool | None = None  # how the fast path sorts a batch (None: not known)
        self._groups: dict[Any, _Group] = {}

    # -- keys ---------------------------------------------------------------------------------

    def _keys(self, record: TicketMetrics) -> list[tuple[Any, ...]]:
        keys: list[tuple[Any, ...]] = [()]
        for fn, explodes in self._dims:
            value = fn(record)
            options = (sorted(value) or [None]) if explodes else [value]
            keys = [(*k, o) for k in keys for o in options]
        if self.bucket is not None:
            instant = self._bucket_getter(record)
            start = None if instant is None else _bucket_of(instant, self.bucket, self.zone)
            keys = [(*k, start) for k in keys]
        return keys

    # -- accumulating -------------------------------------------------------------------------

    def _records(self, items: Iterable[TicketMetrics | Ticket]) -> Iterator[TicketMetrics]:
        for item in items:
            if isinstance(item, TicketMetrics):
                yield item
            elif isinstance(item, Ticket):
                if self.business and self.calendar is None:
                    raise ValidationError(
                        "business=True summarises business-time durations, which needs "
                        "calendar= (a BusinessCalendar) to turn tickets into metrics; without "
                        "one every business figure would be empty",
                        field="calendar",
                        value=None,
                    )
                yield ticket_metrics(item, self.at, calendar=self.calendar, book=self.book)
            else:
                raise InvalidType(
                    f"{item!r} is not a Ticket or TicketMetrics", field="items", value=item
                )

    def add(self, item: TicketMetrics | Ticket) -> KpiAggregator:
        """Count one ticket (or its metrics); returns self."""
        return self.update((item,))

    def update(self, items: Iterable[TicketMetrics | Ticket]) -> KpiAggregator:
        """Count every ticket (or metrics) of ``items``, reading them in batches; returns self.

        Raises InvalidType for an item that is neither.
        """
        if isinstance(items, str | bytes) or not isinstance(items, Iterable):
            raise InvalidType(
                f"items={items!r} is not an iterable of tickets or metrics",
                field="items",
                value=items,
            )
        if isinstance(items, list):
            start = 0
            while start < len(items):
                stop = start + self._batch_size()
                chunk = items[start:stop]
                if not self._absorb(chunk, checked=False):
                    self._absorb(list(self._records(chunk)), checked=True)
                start = stop
            return self
        stream = self._records(items)
        while batch := list(islice(stream, self._batch_size())):
            self._absorb(batch, checked=True)
        return self

    def _batch_size(self) -> int:
        # the first batch of the fast path is a small one, sorted by parts, that shows how
        # many distinct counted fields the records hold (few records: cheap either way)
        return _FIRST_BATCH if self._fast and self._by_parts is None else _BATCH

    def _group(self, key: Any) -> _Group:
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(self.metrics, self.keep)
        return group

    def _absorb(self, batch: list[Any], checked: bool) -> bool:
        """Count one batch; returns False, having counted nothing, when the batch was not
        ``checked`` (by :meth:`_records`) and holds anything but TicketMetrics records."""
        plan = self._plan
        if self._fast:
            # the split reads each record's type with its key, so the type check costs no
            # pass of its own
            found = plan.gather(batch, self._by_parts is not False, strict=not checked)
            if found is None:
                return False
            gathered, distinct = found
            # sort the next batch by parts when they will hold many records each
            self._by_parts = distinct * _PART_RECORDS <= _BATCH
            for key, (parts, combos) in gathered.items():
                group = self._group(key)
                group.absorb(parts, plan)
                group.combos.update(combos)
            return True
        if not checked and set(map(type, batch)) != _METRICS_ONLY:
            return False
        rows = list(map(plan.row, batch))
        members: dict[Any, list[tuple[Any, ...]]] = {}
        for record, row in zip(batch, rows, strict=True):
            for key in self._keys(record):
                members.setdefault(key, []).append(row)
        for key, chosen in members.items():
            columns = list(zip(*chosen, strict=True))
            group = self._group(key)
            group.absorb([columns], plan)
            if plan.fields:
                group.combos.update(columns[plan.width])
        return True

    def _settings(self) -> tuple[Any, ...]:
        return (
            self.by,
            self.bucket,
            self.zone,
            self.metrics,
            self.figures,
            self.keep,
            self.business,
        )

    def merge(self, other: KpiAggregator) -> KpiAggregator:
        """Add everything ``other`` counted (built with the same settings); returns self.

        Raises ValidationError when the grouping, metrics, figures or exactness differ.
        """
        if not isinstance(other, KpiAggregator):
            raise InvalidType(f"{other!r} is not a KpiAggregator", field="other", value=other)
        if self._settings() != other._settings():
            raise ValidationError(
                "cannot merge KPI aggregators with different grouping, metrics, figures or "
                "exactness"
            )
        for key, group in other._groups.items():
            self._group(key).merge(group)
        return self

    # -- results ------------------------------------------------------------------------------

    def results(self) -> dict[tuple[Any, ...], Kpis]:
        """The :class:`Kpis` of each group, keyed by a tuple of the ``by`` values (and the
        bucket's first day last); ``()`` when ungrouped."""
        return {
            ((k,) if self._single else tuple(k)): self._kpis(g) for k, g in self._groups.items()
        }

    def total(self) -> Kpis:
        """The :class:`Kpis` of all tickets counted (with ``by`` containing ``"tags"``, a
        ticket in several tag groups counts several times)."""
        whole = _Group(self.metrics, self.keep)
        for group in self._groups.values():
            whole.merge(group)
        return self._kpis(whole)

    def _kpis(self, g: _Group) -> Kpis:
        durations = {name: s.summary(self.percentiles) for name, s in g.durations.items()}
        fields = self._plan.fields
        rows: list[tuple[dict[str, Any], int]] = [
            (dict(zip(fields, (combo,) if len(fields) == 1 else combo, strict=True)), n)
            for combo, n in g.combos.items()
        ]
        per_target: dict[str, list[int]] = {}
        csat_n = satisfied = ces_n = ces_total = agreeing = 0
        solved = one = two = reopened = 0
        channels: Counter[Channel] = Counter()
        for row, n in rows:
            for target, state in row.get("sla", ()):
                slot = per_target.setdefault(target, [0, 0, 0])
                slot[
                    0 if state is SlaState.ACHIEVED else 1 if state is SlaState.BREACHED else 2
                ] += n
            score, scale = row.get("csat_score"), row.get("csat_scale")
            if score is not None and scale is not None:
                csat_n += n
                # at most scale - 1 top boxes (csat's own limit): on a good/bad scale, good
                satisfied += n if score >= scale - min(self.csat_top, scale - 1) + 1 else 0
            score, scale = row.get("ces_score"), row.get("ces_scale")
            if score is not None and scale is not None:
                ces_n += n
                ces_total += score * n
                threshold = (
                    _ces_agree_from(scale) if self.ces_agree_at is None else self.ces_agree_at
                )
                agreeing += n if score >= threshold else 0
            if "touch" in self.figures and row["one_touch"] is not None:
                solved += n
                one += n if row["one_touch"] else 0
                two += n if row["two_touch"] else 0
            if "reopens" in self.figures and row["status"] not in _UNSOLVED:
                reopened += n if row["reopens"] else 0
            if "channels" in self.figures:
                channels[row["channel"]] += n
        resolved = 0
        if "reopens" in self.figures:
            resolved = sum(n for row, n in rows if row["status"] not in _UNSOLVED)
        sla = {
            t: SlaFigures(achieved=a, breached=b, running=r)
            for t, (a, b, r) in sorted(per_target.items())
        }
        ces: float | None = None
        if ces_n:
            ces = ces_total / ces_n if self.ces_method == "mean" else agreeing / ces_n
        return Kpis(
            tickets=g.tickets,
            durations=durations,
            sla=sla,
            sla_overall=SlaFigures(
                achieved=sum(f.achieved for f in sla.values()),
                breached=sum(f.breached for f in sla.values()),
                running=sum(f.running for f in sla.values()),
            ),
            csat=satisfied / csat_n if csat_n else None,
            csat_responses=csat_n,
            ces=ces,
            ces_responses=ces_n,
            solved=solved,
            one_touch_rate=one / solved if solved else None,
            two_touch_rate=two / solved if solved else None,
            resolved=resolved,
            reopened=reopened,
            reopen_rate=reopened / resolved if resolved else None,
            backlog=self._backlog(g.ages),
            channels=dict(sorted(channels.items())),
        )

    def _backlog(self, ages: list[timedelta]) -> Backlog:
        ages.sort()
        bounds = [timedelta(), *self.age_edges]
        buckets = []
        for i, low in enumerate(bounds):
            high = bounds[i + 1] if i + 1 < len(bounds) else None
            start = bisect_left(ages, low)
            end = len(ages) if high is None else bisect_left(ages, high)
            buckets.append((low, high, end - start))
        return Backlog(
            count=len(ages),
            p50=quantile(ages, 50.0) if ages else None,
            p90=quantile(ages, 90.0) if ages else None,
            buckets=tuple(buckets),
        )


def _names(argument: str, value: Iterable[str], accepted: Sequence[str]) -> tuple[str, ...]:
    chosen = (value,) if isinstance(value, str) else tuple(value)
    for name in chosen:
        if name not in accepted:
            raise ValidationError(
                f"{argument}: {name!r} is not accepted; accepted: {', '.join(accepted)}",
                field=argument,
                value=name,
            )
    return tuple(dict.fromkeys(chosen))
