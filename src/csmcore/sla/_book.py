"""The :class:`SlaBook`: policies, calendars, and the questions asked of them."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import attrs

from csmcore._boundary import PASS, inline, translate
from csmcore._time import to_datetime
from csmcore._values import instance_of
from csmcore.calendars import BusinessCalendar
from csmcore.conditions import (
    All,
    Always,
    AnyOf,
    Compare,
    Condition,
    ConditionVisitor,
    Eq,
    In,
    Never,
    Not,
)
from csmcore.errors import invalid_type
from csmcore.serialization import serializable
from csmcore.sla._compile import WALL, Business, Compiled, KeyPlan, Spec, TimeLine
from csmcore.sla._engine import Run
from csmcore.sla._enums import SlaError, SlaMetric
from csmcore.sla._evaluator import TicketEvaluator, us_of
from csmcore.sla._policy import CustomTimer, SlaPolicy, instances_of
from csmcore.sla._status import SlaResults
from csmcore.tickets import Priority, Ticket

__all__ = ["SlaBook"]


def _calendars(value: Any) -> tuple[tuple[str, BusinessCalendar], ...]:
    if isinstance(value, Mapping):
        value = value.items()
    elif isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise invalid_type(
            "calendars", value, "a mapping of calendar names to BusinessCalendar, or pairs"
        )
    out = []
    for index, item in enumerate(value):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise invalid_type(f"calendars[{index}]", item, "a (name, BusinessCalendar) pair")
        name, cal = item
        if not isinstance(name, str) or not name:
            raise SlaError(f"calendars: {name!r} is not a calendar name (a non-empty string)")
        if not isinstance(cal, BusinessCalendar):
            raise SlaError(f"calendars[{name!r}]={cal!r} is not a BusinessCalendar")
        out.append((name, cal))
    return tuple(sorted(out, key=lambda pair: pair[0]))


def _policies(value: Any) -> tuple[SlaPolicy, ...]:
    out = instances_of(SlaPolicy, "policies", value)
    return tuple(sorted(out, key=lambda p: (p.position, p.name, p.version)))


_us = us_of


_NEVER = -(2**62)
_NOTHING_IN_FORCE: dict[str, Spec] = {}  # shared: never changed

# Ticket fields fixed by TicketCreated that no later event changes.
_CONSTANT_FIELDS = frozenset({"channel", "created_by", "subject"})  # the requester can change


_reads_constant_only = ConditionVisitor[bool]("reads_constant_only", default=lambda node: False)
"""Whether a condition reads only :data:`_CONSTANT_FIELDS` (kinds without a handler: False).

Such a condition has the same outcome on every snapshot of a ticket, so the engine can match it
once on the creation snapshot instead of folding a snapshot per event.
"""


@_reads_constant_only.register(All, AnyOf, Not)
def _composite_reads_constant_only(node: Condition) -> bool:
    return all(_reads_constant_only(child) for child in node.children)


@_reads_constant_only.register(Always, Never)
def _constant_reads_nothing(node: Condition) -> bool:
    return True


@_reads_constant_only.register(Eq, In, Compare)
def _field_is_constant(node: Eq | In | Compare) -> bool:
    return node.field in _CONSTANT_FIELDS


@serializable("sla_book", aliases=("csmcore.sla:SlaBook",))
@attrs.frozen(kw_only=True)
class SlaBook:
    """The ordered, versioned set of SLA policies and the calendars their targets use.

    ``calendar`` is the default business calendar; ``calendars`` maps names used by
    :attr:`SlaTarget.calendar` to calendars. At any instant, the versions in force (the latest
    ``effective_from`` not after it, per policy name) must have distinct positions and at most
    one default.

    Raises :class:`SlaError` for duplicate positions, two defaults, a duplicated
    ``(name, version)``, versions whose ``effective_from`` does not increase with the version,
    a target naming an unknown calendar, or a key used for two different metrics.
    """

    policies: tuple[SlaPolicy, ...] = attrs.field(converter=_policies)
    calendar: BusinessCalendar = attrs.field(
        validator=instance_of(BusinessCalendar, "a csmcore.calendars.BusinessCalendar")
    )
    calendars: tuple[tuple[str, BusinessCalendar], ...] = attrs.field(
        default=(), converter=_calendars
    )
    _compiled: dict[int, Compiled] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _breaks: list[int] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _epochs: list[list[Compiled]] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _plans: list[KeyPlan] = attrs.field(init=False, eq=False, repr=False, hash=False)
    _snapshots: bool = attrs.field(init=False, eq=False, repr=False, hash=False)
    _constant: bool = attrs.field(init=False, eq=False, repr=False, hash=False)
    _custom: bool = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        clocks: dict[str | None, TimeLine] = {None: Business(self.calendar)}
        for name, cal in self.calendars:
            clocks[name] = Business(cal)
        seen: dict[tuple[str, int], SlaPolicy] = {}
        metrics: dict[str, tuple[SlaMetric, CustomTimer | None]] = {}
        compiled: dict[int, Compiled] = {}
        clocks_of: dict[str, set[TimeLine]] = {}
        for policy in self.policies:
            ident = (policy.name, policy.version)
            if ident in seen:
                raise SlaError(f"policy {policy.name!r} version {policy.version} is given twice")
            seen[ident] = policy
            groups: dict[str, list[Spec]] = {}
            for index, target in enumerate(policy.targets):
                if target.business_hours:
                    if target.calendar not in clocks:
                        raise SlaError(
                            f"policy {policy.name!r} targets[{index}] names calendar "
                            f"{target.calendar!r}; known calendars: "
                            f"{sorted(n for n in clocks if n is not None)} (and the default, "
                            "calendar=None); name it in the book: SlaBook(..., calendars="
                            f"{{{target.calendar!r}: <a BusinessCalendar>}})"
                        )
                    clock = clocks[target.calendar]
                else:
                    clock = WALL
                known = metrics.setdefault(target.key, (target.metric, target.timer))
                if known[0] is not target.metric:
                    raise SlaError(
                        f"target key {target.key!r} is used for {known[0].value!r} and for "
                        f"{target.metric.value!r}; give the targets different names"
                    )
                if target.metric is SlaMetric.CUSTOM and known[1] != target.timer:
                    raise SlaError(
                        f"custom target {target.key!r} has different timers in different "
                        "policies; one key must always measure the same thing"
                    )
                groups.setdefault(target.key, []).append(Spec(policy, target, clock))
                clocks_of.setdefault(target.key, set()).add(clock)
            compiled[id(policy)] = Compiled(policy, list(groups.items()))
        # Versions per name must be ordered in time.
        by_name: dict[str, list[SlaPolicy]] = {}
        for policy in self.policies:
            by_name.setdefault(policy.name, []).append(policy)
        breaks = {_NEVER}
        for name, versions in by_name.items():
            versions.sort(key=lambda p: p.version)
            last = _NEVER - 1
            for policy in versions:
                start = (
                    _NEVER
                    if policy.effective_from is None
                    else _us(policy.effective_from, "effective_from")
                )
                if start <= last:
                    raise SlaError(
                        f"policy {name!r} version {policy.version} must take effect after "
                        "the previous version (effective_from must increase with the version; "
                        "only the first version may have effective_from=None)"
                    )
                last = start
                breaks.add(start)
        ordered = sorted(breaks)
        epochs: list[list[Compiled]] = []
        for start in ordered:
            in_force = []
            for versions in by_name.values():
                current = None
                for policy in versions:
                    eff = (
                        _NEVER
                        if policy.effective_from is None
                        else _us(policy.effective_from, "effective_from")
                    )
                    if eff <= start:
                        current = policy
                if current is not None:
                    in_force.append(current)
            in_force.sort(key=lambda p: p.position)
            positions: dict[int, str] = {}
            defaults = []
            for policy in in_force:
                if policy.position in positions:
                    raise SlaError(
                        f"policies {positions[policy.position]!r} and {policy.name!r} share "
                        f"position {policy.position}; positions must be distinct"
                    )
                positions[policy.position] = policy.name
                if policy.default:
                    defaults.append(policy.name)
            if len(defaults) > 1:
                raise SlaError(
                    f"policies {defaults!r} are all default=True; at most one policy may be "
                    "the fallback"
                )
            plain = [compiled[id(p)] for p in in_force if not p.default]
            plain += [compiled[id(p)] for p in in_force if p.default]
            epochs.append(plain)
        pausable = {t.key for p in self.policies for t in p.targets if t.pausable}
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_breaks", ordered)
        object.__setattr__(self, "_epochs", epochs)
        object.__setattr__(
            self,
            "_plans",
            [
                KeyPlan(key, metric, clock, len(clocks_of[key]) > 1, key in pausable)
                for key, (metric, clock) in metrics.items()
            ],
        )
        needs = any(
            p.condition is not None or not c.trivial
            for p, c in ((c.policy, c) for c in compiled.values())
        ) or any(metric is SlaMetric.CUSTOM for metric, _ in metrics.values())
        object.__setattr__(self, "_snapshots", needs)
        custom = any(metric is SlaMetric.CUSTOM for metric, _ in metrics.values())
        conditions = [p.condition for p in self.policies] + [
            t.condition for p in self.policies for t in p.targets
        ]
        object.__setattr__(self, "_custom", custom)
        object.__setattr__(
            self,
            "_constant",
            not custom and all(c is None or _reads_constant_only(c) for c in conditions),
        )

    # -- public API -----------------------------------------------------------------------------

    def calendar_named(self, name: str | None) -> BusinessCalendar:
        """The calendar a target's ``calendar`` name refers to (None: the default one).

        Raises :class:`~csmcore.errors.NotFound` for an unknown name.
        """
        if name is None:
            return self.calendar
        for known, cal in self.calendars:
            if known == name:
                return cal
        from csmcore.errors import NotFound

        raise NotFound(
            f"calendar {name!r} is not in this book; known: {[n for n, _ in self.calendars]} "
            "(and the default, calendar=None); name it in the book: SlaBook(..., calendars="
            f"{{{name!r}: <a BusinessCalendar>}})"
        )

    @inline("SlaBook.evaluate")
    def evaluate(self, ticket: Ticket, at: datetime) -> SlaResults:
        """Judge ``ticket`` at instant ``at`` using only its events at or before ``at``.

        Returns one :class:`SlaStatus` per target cycle, ordered by target key (in the order
        the keys first appear in the book) and cycle number, as an :class:`SlaResults` (a
        tuple with lookups: ``results.get("first_reply")``, ``results.cycles("next_reply")``).
        Instants in the results are in ``at``'s time zone. Raises NaiveDatetimeError for a
        naive ``at``.
        """
        try:
            until = _us(at, "at")
            run = Run(self, ticket, until)
            return run.report(at.tzinfo, at)
        except PASS:
            raise
        except Exception as err:  # the public boundary, inline: a try costs nothing here
            if not isinstance(ticket, Ticket):  # checked only on failure: the hot path
                raise invalid_type("ticket", ticket, "a Ticket") from err
            raise translate(err, "SlaBook.evaluate") from err

    def evaluator(self, ticket: Ticket) -> TicketEvaluator:
        """A :class:`TicketEvaluator` judging ``ticket`` at many instants: ``.at(instant)``
        equals :meth:`evaluate` at that instant, replaying the history once per stretch
        between two events instead of once per instant (for planners that walk a timeline).
        """
        if not isinstance(ticket, Ticket):
            raise invalid_type("ticket", ticket, "a Ticket")
        return TicketEvaluator(self, ticket)

    def next_change(self, ticket: Ticket, after: datetime) -> datetime | None:
        """The earliest instant strictly after ``after`` at which any target changes state.

        A change is a cycle appearing or disappearing, a state change (a breach, a pause, an
        achievement) or a ``warn_at`` threshold being reached. Time-driven changes are found
        from the events up to ``after``; events of ``ticket`` later than ``after`` are taken
        into account too, so the answer is exact for the whole history given: evaluating one
        microsecond before the returned instant and at it differ, and nothing changes in
        between. None when nothing will ever change (every cycle stopped or paused, and no
        later event changes anything). The result is in ``after``'s time zone.
        """
        if not isinstance(ticket, Ticket):
            raise invalid_type("ticket", ticket, "a Ticket")
        cursor = _us(after, "after")
        tz = after.tzinfo
        events = ticket.events
        times = [e._at_us for e in events]
        while True:
            run = Run(self, ticket, cursor)
            timed = run.next_timed(cursor)
            k = bisect_right(times, cursor)
            following = times[k] if k < len(times) else None
            if following is None or (timed is not None and timed < following):
                # Nothing happens between cursor and the timed change: it is exact.
                return None if timed is None else to_datetime(timed, tz)
            before = (
                run.signature()
                if following - 1 == cursor
                else Run(self, ticket, following - 1).signature()
            )
            if Run(self, ticket, following).signature() != before:
                return to_datetime(following, tz)
            cursor = following

    # -- selection --------------------------------------------------------------------------------

    def _in_force(self, t: int) -> list[Compiled]:
        return self._epochs[bisect_right(self._breaks, t) - 1]

    def _select(
        self, epoch: list[Compiled], snapshot: Ticket | None, priority: Priority
    ) -> dict[str, Spec]:
        chosen: Compiled | None = None
        for compiled in epoch:
            cond = compiled.condition
            if cond is None or (snapshot is not None and cond.matches(snapshot)):
                chosen = compiled
                break
        if chosen is None:
            return _NOTHING_IN_FORCE
        cached = chosen.by_priority
        return cached[priority] if cached is not None else chosen.in_force(snapshot, priority)


# Resolved here, where the names exist: the package presents these classes as csmcore.sla's.
attrs.resolve_types(SlaBook)
