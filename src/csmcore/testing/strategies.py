"""Hypothesis strategies for csmcore's domain types (needs ``pip install 'csmcore[testing]'``).

Every strategy takes keyword-only arguments. Importing this module registers the types with
``st.from_type``, and so does Hypothesis itself through csmcore's ``hypothesis`` entry point
(:func:`csmcore.testing._hypothesis_setup_hook`), so ``st.from_type(Ticket)`` works in any test.

Text is drawn from every character the domain accepts: all of Unicode (astral planes, combining
marks, controls, ``"\\r\\n"``, ...) except what tickets and conditions refuse when they are
built, NUL and lone surrogates (the rule of :func:`csmcore._values.text_problem`, which no store
could keep faithfully).

>>> from hypothesis import given
>>> @given(tickets(max_events=5))
... def test_version_counts_events(ticket):
...     assert ticket.version == len(ticket.events)
>>> test_version_counts_events()

Arguments are checked when a strategy function is called, as Hypothesis's own strategies do:
a bad one raises :class:`hypothesis.errors.InvalidArgument` at once, naming the argument(s)
(``tickets(min_events=5, max_events=2)`` raises before anything is drawn).

KPI and staffing values that are computed (:func:`ticket_metrics`, :func:`arrival_forecasts`,
:func:`staffing_plans`, :func:`slot_plans`, :func:`erlang_a_figures`, :func:`erlang_a_plans`)
are what the csmcore function making them says of drawn input, so they are consistent.

Every strategy passes Hypothesis's health checks under its default settings: no need to
suppress ``too_slow``. The largest (:func:`sla_changes`, :func:`backtests`) still take tens of
milliseconds per example, so a property over them runs a few seconds at 100 examples.

Ticket events: :func:`ticket_events` draws every event type declared with
:func:`csmcore.tickets.event_type`, the built-in ones from tailored strategies and any other
from a strategy derived from its attrs fields (names, tags, custom field values, enums,
instants, numbers, booleans, None); :func:`register_event_strategy` gives an event type a
tailored strategy instead. ``st.from_type`` knows the event types declared when this module is
imported; call :func:`register_types` after declaring one later.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import attrs
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from csmcore import conditions as cd
from csmcore.calendars import BusinessCalendar, CountryHolidays
from csmcore.errors import CsmError
from csmcore.escalation import (
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    PercentUsed,
    PointsGrantRequest,
)
from csmcore.kpi import CustomerRecord, NpsAnswer, TicketMetrics
from csmcore.loyalty import LedgerEntry, LotDraw
from csmcore.sla import (
    Backtest,
    BacktestRow,
    CustomTimer,
    OnChange,
    OnReopen,
    OnReset,
    SlaBook,
    SlaChange,
    SlaMetric,
    SlaPolicy,
    SlaStatus,
    SlaTarget,
    SlaTrigger,
    Transition,
    backtest,
    rebuild,
)
from csmcore.staffing import ArrivalForecast, ErlangA, ErlangAPlan, SlotPlan, StaffingPlan
from csmcore.testing import _derive as check
from csmcore.testing import _escalation as esc
from csmcore.testing._basics import (
    EPOCH,
    ZONES,
    field_values,
    instants,
    names,
    priority_maps,
    status_maps,
    tags,
    text,
    ticket_ids,
)
from csmcore.testing._condition_tree import condition_strategies, tree
from csmcore.testing._escalation import (
    firing_records,
    firings,
    notification_requests,
    outbox_messages,
    plan_bases,
    ticket_plans,
)
from csmcore.testing._kpi import (
    arrival_forecasts,
    customer_records,
    erlang_a_figures,
    erlang_a_plans,
    nps_answers,
    slot_plans,
    staffing_plans,
    ticket_metrics,
)
from csmcore.testing._loyalty import (
    PROGRAM_STRATEGIES,
    ledger_entries,
    lot_draws,
    programs,
    recovery_policies,
    tier_policies,
)
from csmcore.testing._tickets import (
    _PARTS,
    next_events,
    register_event_strategy,
    ticket_created,
    ticket_events,
    tickets,
)
from csmcore.tickets import (
    Priority,
    PriorityMap,
    Status,
    StatusMap,
    Ticket,
    TicketEventBase,
)

__all__ = [
    "arrival_forecasts",
    "backtest_rows",
    "backtests",
    "calendars",
    "conditions",
    "country_holidays",
    "custom_timers",
    "customer_records",
    "erlang_a_figures",
    "erlang_a_plans",
    "escalation_actions",
    "escalation_levels",
    "escalation_rules",
    "escalation_triggers",
    "field_values",
    "firing_records",
    "firings",
    "instants",
    "ledger_entries",
    "lot_draws",
    "names",
    "next_events",
    "notification_requests",
    "nps_answers",
    "outbox_messages",
    "plan_bases",
    "points_grant_requests",
    "priority_maps",
    "programs",
    "recovery_policies",
    "register_event_strategy",
    "register_strategy",
    "register_types",
    "sla_books",
    "sla_changes",
    "sla_policies",
    "sla_statuses",
    "sla_targets",
    "slot_plans",
    "staffing_plans",
    "status_maps",
    "tags",
    "text",
    "ticket_created",
    "ticket_events",
    "ticket_ids",
    "ticket_metrics",
    "ticket_plans",
    "tickets",
    "tier_policies",
    "transitions",
]


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------


@check.reuse
def conditions(
    *, max_leaves: int = 6, kinds: Collection[type[cd.Condition]] | None = None
) -> st.SearchStrategy[cd.Condition]:
    """Conditions over tickets: tests on every kind of field combined with and / or / not, with
    at most ``max_leaves`` leaves. ``kinds`` limits the outermost condition to those classes
    (for example ``kinds=[Eq, In]``)."""
    check.check_whole("max_leaves", max_leaves, 1)
    if kinds is None:
        return tree(max_leaves, _PARTS)
    table = condition_strategies(max_leaves, _PARTS)
    chosen = check.check_classes("kinds", kinds, list(table), "condition classes")
    return st.one_of([table[k] for k in chosen])


# --------------------------------------------------------------------------------------------
# Calendars
# --------------------------------------------------------------------------------------------


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


@check.reuse
def calendars(*, zones: Sequence[str] = ZONES) -> st.SearchStrategy[BusinessCalendar]:
    """Business calendars with up to two windows per day (quarter-hour edges, ``"24:00"``
    included), a few holidays, in one of ``zones`` (IANA names or fixed offsets such as
    ``"+05:30"``; an unknown one raises ``InvalidArgument`` at the call)."""
    if isinstance(zones, str) or not isinstance(zones, Sequence) or not zones:
        raise InvalidArgument(f"zones={zones!r} is not a non-empty sequence of time zone names")
    for zone in zones:
        check.check_text("zones[]", zone)
        try:
            BusinessCalendar(timezone=zone, hours={"mon": [("09:00", "17:00")]})
        except CsmError as error:
            raise InvalidArgument(f"zones[]={zone!r} is not a time zone: {error}") from None
    return _calendars(tuple(zones))


_COUNTRIES = (("US", None), ("US", "CA"), ("DE", None), ("DE", "BY"), ("FR", None), ("JP", None))


@check.reuse
def country_holidays() -> st.SearchStrategy[CountryHolidays]:
    """References to public-holiday tables of a few countries (and regions) that the
    ``holidays`` package knows."""
    return st.sampled_from(_COUNTRIES).map(lambda c: CountryHolidays(country=c[0], subdiv=c[1]))


# --------------------------------------------------------------------------------------------
# SLAs
# --------------------------------------------------------------------------------------------

_BUILTIN_METRICS = tuple(m for m in SlaMetric if m is not SlaMetric.CUSTOM)
_METRIC_NAMES = frozenset(m.value for m in SlaMetric)


@st.composite
def _custom_timers(draw: st.DrawFn) -> CustomTimer:
    maybe = st.none() | conditions(max_leaves=2)
    triggers = st.frozensets(st.sampled_from(list(SlaTrigger)), max_size=2)
    start, start_on = draw(maybe), draw(triggers)
    stop, stop_on = draw(maybe), draw(triggers)
    changes = st.lists(transitions(), max_size=2)
    return CustomTimer(
        start=start,
        pause=draw(maybe),
        stop=stop,
        reset=draw(st.none() | conditions(max_leaves=2)),
        start_on=start_on if start is not None or start_on else {SlaTrigger.CREATED},
        stop_on=stop_on if stop is not None or stop_on else {SlaTrigger.SOLVED},
        restart=draw(st.booleans()),
        start_on_change=draw(changes),
        stop_on_change=draw(changes),
        reset_on_change=draw(changes),
    )


@st.composite
def _transitions(draw: st.DrawFn) -> Transition:
    field = draw(st.none() | st.sampled_from(["status", "priority", "group", "assignee", "tags"]))
    maybe = st.none() | conditions(max_leaves=2)
    before, after = draw(maybe), draw(maybe)
    if field is None and before is None and after is None:
        field = "priority"
    return Transition(field=field, before=before, after=after)


@check.reuse
def transitions() -> st.SearchStrategy[Transition]:
    """Changes of a ticket that custom SLA timers start, stop or reset on."""
    return _transitions()


@check.reuse
def custom_timers() -> st.SearchStrategy[CustomTimer]:
    """Start / pause / stop / reset rules of custom SLA targets: conditions and triggers."""
    return _custom_timers()


def _custom_key(name: str) -> bool:
    """A name a custom target can use as its key: not blank, not a built-in metric's key."""
    return bool(name.strip()) and name not in _METRIC_NAMES


@st.composite
def _sla_targets(
    draw: st.DrawFn, metric: st.SearchStrategy[SlaMetric], priority: bool
) -> SlaTarget:
    chosen = draw(metric)
    custom = chosen is SlaMetric.CUSTOM
    return SlaTarget(
        metric=chosen,
        within=timedelta(minutes=draw(st.integers(1, 7 * 24 * 60))),
        priority=draw(st.none() | st.sampled_from(list(Priority))) if priority else None,
        condition=draw(st.none() | conditions(max_leaves=3)),
        business_hours=draw(st.booleans()),
        name=draw(names().filter(_custom_key)) if custom else None,
        warn_at=sorted(draw(st.frozensets(st.sampled_from((0.5, 0.75, 0.9)), max_size=2))),
        on_reopen=draw(st.sampled_from(list(OnReopen))),
        on_change=draw(st.sampled_from(list(OnChange))),
        timer=draw(custom_timers()) if custom else None,
        pausable=chosen is SlaMetric.FIRST_REPLY and draw(st.booleans()),
        on_reset=draw(st.sampled_from(list(OnReset))) if custom else OnReset.CANCEL,
    )


def sla_targets(
    *, metric: st.SearchStrategy[SlaMetric] | None = None, priority: bool = True
) -> st.SearchStrategy[SlaTarget]:
    """SLA targets on any metric (custom ones with a name and a :class:`CustomTimer`): one
    minute to a week, business or wall time, optional warnings, priority (unless
    ``priority=False``) and condition."""
    check.check_strategy("metric", metric)
    check.check_bool("priority", priority)
    return _sla_targets(
        metric if metric is not None else st.sampled_from(list(SlaMetric)), priority
    )


@check.reuse
def _policy_targets(metric: SlaMetric) -> st.SearchStrategy[SlaTarget]:
    """Targets on ``metric`` without a priority, as a policy holds them."""
    return sla_targets(metric=st.just(metric), priority=False)


@st.composite
def _sla_policies(draw: st.DrawFn, default: bool | None) -> SlaPolicy:
    metrics = draw(st.lists(st.sampled_from(list(SlaMetric)), min_size=1, max_size=3, unique=True))
    targets = [draw(_policy_targets(m)) for m in metrics]
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


@check.reuse
def sla_policies(*, default: bool | None = None) -> st.SearchStrategy[SlaPolicy]:
    """SLA policies with one to three targets on distinct metrics; ``default`` fixes whether it
    is the fallback policy (None: either)."""
    check.check_optional_bool("default", default)
    return _sla_policies(default)


@st.composite
def _sla_books(draw: st.DrawFn, max_policies: int) -> SlaBook:
    named = draw(
        st.dictionaries(st.sampled_from(("support", "night", "weekend")), calendars(), max_size=2)
    )
    count = draw(st.integers(1, max_policies))
    positions = draw(st.lists(st.integers(0, 100), min_size=count, max_size=count, unique=True))
    fallback = draw(st.none() | st.integers(0, count - 1))
    policies: list[SlaPolicy] = []
    for index, position in enumerate(positions):
        first = draw(sla_policies(default=index == fallback))
        starts: list[datetime | None] = [None] if draw(st.booleans()) else []
        starts += sorted(draw(st.sets(instants(), max_size=2)))
        for version, start in enumerate(starts or [None], 1):
            policy = first if version == 1 else draw(sla_policies(default=index == fallback))
            # One key per target in the whole book, so no key names two different clocks.
            targets = [
                attrs.evolve(
                    t,
                    name=None if t.name is None else f"{t.name} #{index}.{version}.{n}",
                    calendar=draw(st.none() | st.sampled_from(sorted(named)))
                    if named and t.business_hours
                    else None,
                )
                for n, t in enumerate(policy.targets)
            ]
            policies.append(
                attrs.evolve(
                    policy,
                    name=f"{first.name} #{index}",
                    position=position,
                    version=version,
                    effective_from=start,
                    targets=targets,
                )
            )
    return SlaBook(policies=policies, calendar=draw(calendars()), calendars=named)


@check.reuse
def sla_books(*, max_policies: int = 3) -> st.SearchStrategy[SlaBook]:
    """SLA books: up to ``max_policies`` policies (at most one the fallback), some with several
    versions taking effect one after the other, a default calendar and up to two named ones."""
    check.check_whole("max_policies", max_policies, 1)
    return _sla_books(max_policies)


def _judged_at(ticket: Ticket) -> st.SearchStrategy[datetime]:
    return st.integers(0, 60 * 24 * 30).map(lambda m: ticket.updated_at + timedelta(minutes=m))


def _always_judged(ticket: Ticket) -> tuple[SlaStatus, ...]:
    """Statuses of ``ticket``'s creation under a book that judges every new ticket, for when
    a random book judged nothing."""
    policy = SlaPolicy(
        name="every ticket",
        position=0,
        default=True,
        targets=[SlaTarget(metric=SlaMetric.TOTAL_RESOLUTION, within=timedelta(days=2))],
    )
    book = SlaBook(policies=[policy], calendar=BusinessCalendar.always())
    created = attrs.evolve(ticket.created, status=Status.NEW, status_name=None)
    return book.evaluate(Ticket.from_events([created]), ticket.created_at)


@st.composite
def _sla_statuses(draw: st.DrawFn) -> SlaStatus:
    ticket = draw(tickets(max_events=6))
    at = draw(_judged_at(ticket))
    statuses: tuple[SlaStatus, ...] = draw(sla_books()).evaluate(ticket, at)
    if not statuses:
        statuses = _always_judged(ticket)
    return draw(st.sampled_from(statuses))


@check.reuse
def sla_statuses() -> st.SearchStrategy[SlaStatus]:
    """Judgements of target cycles: random tickets evaluated under random books."""
    return _sla_statuses()


@st.composite
def _sla_changes(draw: st.DrawFn) -> SlaChange:
    ticket = draw(tickets(max_events=6))
    at = draw(_judged_at(ticket))
    book = draw(sla_books())
    changes = rebuild([ticket], old=draw(sla_books()), new=book, at=at)
    if not changes:
        changes = tuple(
            SlaChange(ticket_id=ticket.id, target=s.target, cycle=s.cycle, before=None, after=s)
            for s in _always_judged(ticket)
        )
    return draw(st.sampled_from(changes))


@check.reuse
def sla_changes() -> st.SearchStrategy[SlaChange]:
    """What :func:`csmcore.sla.rebuild` reports: a ticket judged under two random books."""
    return _sla_changes()


@st.composite
def _backtests(draw: st.DrawFn) -> Backtest:
    batch = draw(st.lists(tickets(max_events=5), max_size=3))
    latest = max((t.updated_at for t in batch), default=EPOCH)
    at = latest + timedelta(minutes=draw(st.integers(0, 60 * 24 * 30)))
    candidate = draw(sla_books())
    return backtest(batch, baseline=draw(sla_books()), candidate=candidate, at=at)


@check.reuse
def backtests() -> st.SearchStrategy[Backtest]:
    """Results of :func:`csmcore.sla.backtest`: random tickets under two random books."""
    return _backtests()


@check.reuse
def backtest_rows() -> st.SearchStrategy[BacktestRow]:
    """Rows of a backtest: achieved, breached and open cycle counts of one target key."""
    counts = st.integers(0, 10_000)
    return st.builds(
        BacktestRow,
        target=st.sampled_from(sorted(_METRIC_NAMES)) | names(),
        achieved=counts,
        breached=counts,
        open=counts,
    )


# --------------------------------------------------------------------------------------------
# Escalation
# --------------------------------------------------------------------------------------------


def escalation_triggers() -> st.SearchStrategy[PercentUsed | DueOffset | ConditionHeld]:
    """Level triggers: :class:`~csmcore.escalation.PercentUsed`,
    :class:`~csmcore.escalation.DueOffset` and :class:`~csmcore.escalation.ConditionHeld`."""
    return esc.escalation_triggers(conditions)


def escalation_actions(*, names: Sequence[str] | None = None) -> st.SearchStrategy[Any]:
    """Actions registered under ``names`` (every registered action by default). The built-in
    ones have tailored strategies; any other is drawn with ``st.from_type``: from the strategy
    given to :func:`register_strategy` for its class (do that for an action whose fields have
    validators), else from its attrs fields. Unknown or no names raise ``InvalidArgument``."""
    return esc.escalation_actions(names=names)


def escalation_levels() -> st.SearchStrategy[EscalationLevel]:
    """Escalation levels: a trigger and one to three built-in actions."""
    return esc.escalation_levels(conditions)


def escalation_rules() -> st.SearchStrategy[EscalationRule]:
    """Valid escalation rules with one to four levels, in an order the rule accepts."""
    return esc.escalation_rules(conditions)


# --------------------------------------------------------------------------------------------
# st.from_type
# --------------------------------------------------------------------------------------------


_REGISTERED: dict[type, Callable[[], st.SearchStrategy[Any]]] = {}


def register_strategy(*, cls: type, factory: Callable[[], st.SearchStrategy[Any]]) -> None:
    """Declare ``factory()`` as the ``st.from_type`` strategy of the domain type ``cls``.

    A domain area that adds serializable types registers their strategies here, next to its
    strategy functions, instead of editing a table (registering again replaces)."""
    _REGISTERED[cls] = factory
    st.register_type_strategy(cls, factory())


def _strategy_for(cls: type) -> st.SearchStrategy[Any]:
    """The strategy registered for the domain type ``cls`` (see :func:`register_types`)."""
    if cls in _REGISTERED:
        return _REGISTERED[cls]()
    if cls is cd.Condition:
        return conditions()
    if isinstance(cls, type) and issubclass(cls, cd.Condition):
        return conditions(kinds=[cls])
    if cls is TicketEventBase:
        return ticket_events()
    if isinstance(cls, type) and issubclass(cls, TicketEventBase):
        return ticket_events(types=[cls])
    table: dict[type, Any] = {
        Ticket: tickets,
        StatusMap: status_maps,
        PriorityMap: priority_maps,
        BusinessCalendar: calendars,
        CountryHolidays: country_holidays,
        CustomTimer: custom_timers,
        Transition: transitions,
        SlaTarget: sla_targets,
        SlaPolicy: sla_policies,
        SlaBook: sla_books,
        SlaStatus: sla_statuses,
        SlaChange: sla_changes,
        Backtest: backtests,
        BacktestRow: backtest_rows,
    }
    from csmcore import escalation as escalation_types

    table.update(
        {
            escalation_types.EscalationRule: escalation_rules,
            escalation_types.EscalationLevel: escalation_levels,
            escalation_types.PercentUsed: lambda: esc._percent_used(),
            escalation_types.DueOffset: lambda: esc._due_offsets(),
            escalation_types.ConditionHeld: lambda: esc._held(conditions),
            escalation_types.NotificationRequest: notification_requests,
            escalation_types.Firing: firings,
        }
    )
    from csmcore.storage import protocols as storage_types

    table.update(
        {
            storage_types.FiringRecord: firing_records,
            storage_types.TicketPlan: ticket_plans,
            storage_types.PlanBasis: plan_bases,
            storage_types.OutboxMessage: outbox_messages,
        }
    )
    for action_cls, make in esc.ACTION_STRATEGIES.items():
        table[action_cls] = make
    if cls not in table:
        raise InvalidArgument(f"csmcore.testing.strategies has no strategy for {cls!r}")
    strategy: st.SearchStrategy[Any] = table[cls]()
    return strategy


def register_types() -> None:
    """Register csmcore's domain types with ``st.from_type`` (idempotent)."""
    from csmcore.testing import _registered_types

    for cls in _registered_types():
        st.register_type_strategy(cls, _strategy_for(cls))


# --------------------------------------------------------------------------------------------
# Loyalty: points grants (escalation) and the ledger types
# --------------------------------------------------------------------------------------------


@check.reuse
def points_grant_requests() -> st.SearchStrategy[PointsGrantRequest]:
    """Points grant requests as the ``grant_points`` action makes them."""
    return st.builds(
        PointsGrantRequest,
        member_id=names(),
        ticket_id=ticket_ids(),
        policy=recovery_policies(),
        breaches=st.lists(sla_statuses(), max_size=2).map(tuple),
        at=instants(),
        actor=names().map(lambda n: f"escalation:{n}"),
        idempotency_key=names(),
    )


register_strategy(cls=LotDraw, factory=lot_draws)
register_strategy(cls=PointsGrantRequest, factory=points_grant_requests)
register_strategy(cls=LedgerEntry, factory=ledger_entries)


# KPI and staffing values Hypothesis cannot infer: csmcore.testing._kpi
register_strategy(cls=NpsAnswer, factory=nps_answers)
register_strategy(cls=CustomerRecord, factory=customer_records)
register_strategy(cls=TicketMetrics, factory=ticket_metrics)
register_strategy(cls=ArrivalForecast, factory=arrival_forecasts)
register_strategy(cls=ErlangA, factory=erlang_a_figures)
register_strategy(cls=ErlangAPlan, factory=erlang_a_plans)
register_strategy(cls=StaffingPlan, factory=staffing_plans)
register_strategy(cls=SlotPlan, factory=slot_plans)

for _cls, _factory in PROGRAM_STRATEGIES:  # loyalty programs: csmcore.testing._loyalty
    register_strategy(cls=_cls, factory=_factory)

register_types()
