"""SLA policies and their targets (:class:`SlaPolicy`, :class:`SlaTarget`, :class:`CustomTimer`)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import attrs

from csmcore._time import require_aware
from csmcore._values import coerce_enum, int_problem, is_bool, show
from csmcore.conditions import Condition
from csmcore.serialization import serializable
from csmcore.sla._enums import OnChange, OnReopen, OnReset, SlaError, SlaMetric, SlaTrigger
from csmcore.sla._transition import Transition
from csmcore.tickets import Priority

__all__ = ["CustomTimer", "SlaPolicy", "SlaTarget", "check_condition", "optional_name"]

T = TypeVar("T")


def check_condition(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Condition):
        raise SlaError(
            f"{attribute.name}={value!r} is not a condition; build one with csmcore.conditions "
            "(e.g. Field('priority') == 'high') or leave it None"
        )


def enum_converter(cls: type[enum.Enum], name: str) -> Any:
    def convert(value: Any) -> Any:
        return coerce_enum(cls, value, name, error=SlaError)

    return convert


_TRIGGER = enum_converter(SlaTrigger, "trigger")


def _triggers(value: Any, argument: str) -> frozenset[SlaTrigger]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SlaError(f"{argument}={value!r} is not a collection of SlaTrigger values")
    return frozenset(_TRIGGER(item) for item in value)


def _transitions(value: Any, argument: str) -> tuple[Transition, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SlaError(f"{argument}={value!r} is not a collection of Transition values")
    out = tuple(value)
    for index, item in enumerate(out):
        if not isinstance(item, Transition):
            raise SlaError(f"{argument}[{index}]={item!r} is not a Transition")
    return out


# one named converter per field, so that messages name the field (and attrs' mypy plugin reads
# the accepted type)
def _start_on(value: Any) -> frozenset[SlaTrigger]:
    return _triggers(value, "start_on")


def _stop_on(value: Any) -> frozenset[SlaTrigger]:
    return _triggers(value, "stop_on")


def _start_on_change(value: Any) -> tuple[Transition, ...]:
    return _transitions(value, "start_on_change")


def _stop_on_change(value: Any) -> tuple[Transition, ...]:
    return _transitions(value, "stop_on_change")


def _reset_on_change(value: Any) -> tuple[Transition, ...]:
    return _transitions(value, "reset_on_change")


@serializable("sla_custom_timer", aliases=("csmcore.sla:CustomClock",))
@attrs.frozen(kw_only=True)
class CustomTimer:
    """Start / pause / stop / reset rules of a custom target (ServiceNow and Jira style).

    Conditions are matched against the ticket after each event. A cycle starts when ``start``
    becomes true (it was false before the event) or on one of ``start_on``; an open cycle is
    paused while ``pause`` holds; it stops (achieved, unless already breached) when ``stop``
    holds or on one of ``stop_on``. When ``reset`` holds, the open cycle is cancelled (dropped
    from the results unless it had breached) and a new one starts if ``start`` holds.

    ``start_on_change``, ``stop_on_change`` and ``reset_on_change`` are :class:`Transition`
    values: they fire at the event that makes the change ("the group changes to L2", "the
    priority changes", "the status leaves pending"), once per change. A ``reset`` condition, by
    contrast, resets at every event while it holds. Pauses are states: write them as ``pause``.

    Without ``restart`` an event that stops the clock never starts it. With ``restart=True`` an
    event that both stops the open cycle and starts (``start`` becoming true, or one of
    ``start_on``) ends the cycle and begins the next one at that event: Zammad's "update time",
    ``CustomTimer(start_on=[CREATED, AGENT_REPLY], stop_on=[AGENT_REPLY], restart=True)``, runs
    from creation or the last agent reply to the next one.

    Raises :class:`SlaError` when there is no way to start or no way to stop.
    """

    start: Condition | None = attrs.field(default=None, validator=check_condition)
    pause: Condition | None = attrs.field(default=None, validator=check_condition)
    stop: Condition | None = attrs.field(default=None, validator=check_condition)
    reset: Condition | None = attrs.field(default=None, validator=check_condition)
    start_on: frozenset[SlaTrigger] = attrs.field(default=frozenset(), converter=_start_on)
    stop_on: frozenset[SlaTrigger] = attrs.field(default=frozenset(), converter=_stop_on)
    restart: bool = attrs.field(default=False, validator=is_bool)
    start_on_change: tuple[Transition, ...] = attrs.field(default=(), converter=_start_on_change)
    stop_on_change: tuple[Transition, ...] = attrs.field(default=(), converter=_stop_on_change)
    reset_on_change: tuple[Transition, ...] = attrs.field(default=(), converter=_reset_on_change)

    def __attrs_post_init__(self) -> None:
        if self.start is None and not self.start_on and not self.start_on_change:
            raise SlaError(
                "CustomTimer needs a start condition, start_on triggers or start_on_change"
            )
        if self.stop is None and not self.stop_on and not self.stop_on_change:
            raise SlaError("CustomTimer needs a stop condition, stop_on triggers or stop_on_change")


def _positive_duration(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, timedelta):
        raise SlaError(f"{attribute.name}={value!r} is not a datetime.timedelta")
    if value <= timedelta(0):
        raise SlaError(f"{attribute.name}={value!r} must be a positive duration")


def _warn_at(value: Any) -> tuple[float, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SlaError(f"warn_at={value!r} is not a collection of fractions")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int | float) or not 0 < item < 1:
            raise SlaError(
                f"warn_at: {item!r} is not a fraction strictly between 0 and 1 (0.75 = 75 %)"
            )
        out.append(float(item))
    return tuple(sorted(set(out)))


def optional_name(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise SlaError(f"{attribute.name}={value!r} must be a non-empty string or None")


def _to_metric(value: Any) -> SlaMetric:
    return enum_converter(SlaMetric, "metric")(value)  # type: ignore[no-any-return]


def _to_on_reopen(value: Any) -> OnReopen:
    return enum_converter(OnReopen, "on_reopen")(value)  # type: ignore[no-any-return]


def _to_on_change(value: Any) -> OnChange:
    return enum_converter(OnChange, "on_change")(value)  # type: ignore[no-any-return]


def _to_on_reset(value: Any) -> OnReset:
    return enum_converter(OnReset, "on_reset")(value)  # type: ignore[no-any-return]


def _optional_priority(value: Any) -> Priority | None:
    if value is None:
        return None
    return enum_converter(Priority, "priority")(value)  # type: ignore[no-any-return]


@serializable("sla_target", aliases=("csmcore.sla:SlaTarget",))
@attrs.frozen(kw_only=True)
class SlaTarget:
    """One target of a policy: ``metric`` must be met ``within`` a duration.

    ``priority`` limits the target to tickets of that priority (one target per priority, as in
    Zendesk); ``condition`` limits it to tickets matching a condition. Within a policy the first
    target of a given :attr:`key` whose priority and condition match is the one in force.

    ``business_hours`` counts only open time of ``calendar`` (a name from
    :attr:`SlaBook.calendars`; None means the book's default calendar); ``False`` counts wall
    time. ``warn_at`` lists fractions of the duration (``0.75``) at which
    :meth:`SlaBook.next_change` reports a warning. ``on_reopen`` and ``on_change`` choose the
    reopen and change rules. ``pausable=True`` (first-reply targets only) pauses the first-reply
    clock while the ticket is pending, as Zammad and Freshdesk do. ``on_reset`` (custom targets
    only) chooses whether the timer's reset cancels the running cycle or completes it. ``name``
    is required for :attr:`SlaMetric.CUSTOM` targets, which also need a ``timer`` (a
    :class:`CustomTimer`). In serialized data the timer keeps the key ``"clock"`` (its name in
    0.1.0.dev0), so stored data reads and writes as before.

    Raises :class:`SlaError` for a non-positive duration, an unknown metric, a custom target
    without a timer or name, a timer on a built-in metric, or ``pausable`` on another metric
    than first reply.
    """

    metric: SlaMetric = attrs.field(converter=_to_metric)
    within: timedelta = attrs.field(validator=_positive_duration)
    priority: Priority | None = attrs.field(default=None, converter=_optional_priority)
    condition: Condition | None = attrs.field(default=None, validator=check_condition)
    business_hours: bool = attrs.field(default=True, validator=is_bool)
    calendar: str | None = attrs.field(default=None, validator=optional_name)
    name: str | None = attrs.field(default=None, validator=optional_name)
    warn_at: tuple[float, ...] = attrs.field(default=(), converter=_warn_at)
    on_reopen: OnReopen = attrs.field(default=OnReopen.PAUSE, converter=_to_on_reopen)
    on_change: OnChange = attrs.field(default=OnChange.KEEP_ELAPSED, converter=_to_on_change)
    timer: CustomTimer | None = attrs.field(default=None)
    pausable: bool = attrs.field(default=False, validator=is_bool)
    on_reset: OnReset = attrs.field(default=OnReset.CANCEL, converter=_to_on_reset)

    def __attrs_post_init__(self) -> None:
        if self.pausable and self.metric is not SlaMetric.FIRST_REPLY:
            raise SlaError(
                f"pausable=True applies to SlaMetric.FIRST_REPLY targets only, not to "
                f"{self.metric.value!r} (use PAUSABLE_UPDATE, or a CustomTimer pause condition)"
            )
        if self.metric is SlaMetric.CUSTOM:
            if self.timer is None or self.name is None:
                raise SlaError("a custom target needs both a name and a timer=CustomTimer(...)")
        elif self.timer is not None:
            raise SlaError(
                f"timer={show(self.timer)} applies to SlaMetric.CUSTOM targets only, not to "
                f"{self.metric.value!r}"
            )
        if self.on_reset is not OnReset.CANCEL and self.metric is not SlaMetric.CUSTOM:
            raise SlaError(
                f"on_reset={self.on_reset.value!r} applies to SlaMetric.CUSTOM targets only "
                f"(only custom timers reset), not to {self.metric.value!r}"
            )
        if self.timer is not None and not isinstance(self.timer, CustomTimer):
            raise SlaError(f"timer={self.timer!r} is not a CustomTimer")

    @property
    def key(self) -> str:
        """The target's identity across policies and versions: ``name`` or the metric value."""
        return self.name if self.name is not None else self.metric.value


def _check_position(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SlaError(f"position={show(value)} must be an integer")
    problem = int_problem(value)
    if problem is not None:
        raise SlaError(f"position={show(value)} {problem}")


def _check_version(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SlaError(f"version={show(value)} must be an integer >= 1")
    problem = int_problem(value)
    if problem is not None:
        raise SlaError(f"version={show(value)} {problem}")


def instances_of(kind: type[T], argument: str, value: Any) -> tuple[T, ...]:
    """``value``, a collection of ``kind`` (a policy's targets, a book's policies), as a tuple;
    SlaError naming ``argument`` and the item otherwise."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise SlaError(f"{argument}={value!r} is not a collection of {kind.__name__}")
    out = tuple(value)
    for index, item in enumerate(out):
        if not isinstance(item, kind):
            raise SlaError(f"{argument}[{index}]={item!r} is not an {kind.__name__}")
    return out


def _targets(value: Any) -> tuple[SlaTarget, ...]:
    return instances_of(SlaTarget, "targets", value)


def _optional_instant(value: Any) -> datetime | None:
    return None if value is None else require_aware(value, "effective_from")


@serializable("sla_policy", aliases=("csmcore.sla:SlaPolicy",))
@attrs.frozen(kw_only=True)
class SlaPolicy:
    """A named, ordered, versioned set of targets and the tickets they apply to.

    Policies are tried by ascending ``position``; the first whose ``condition`` matches the
    ticket applies. A policy with ``default=True`` applies when no other one matches (its
    condition, if any, must match too). A policy with neither a condition nor ``default=True``
    is rejected, so an empty condition never matches by accident.

    ``version`` numbers edits of the policy with the same ``name``; a version applies from
    ``effective_from`` (an aware instant; None means from the beginning of time) to the next
    version's. As in Zendesk, a ticket picks up a new version at its next event; re-judging
    history under a new version is explicit: see :func:`rebuild`.

    Raises :class:`SlaError` for a bad name, position or version, no targets, two targets with
    the same key and priority that can never both apply, or a missing condition.
    """

    name: str = attrs.field(validator=optional_name)
    position: int = attrs.field(validator=_check_position)
    targets: tuple[SlaTarget, ...] = attrs.field(converter=_targets)
    condition: Condition | None = attrs.field(default=None, validator=check_condition)
    default: bool = attrs.field(default=False, validator=is_bool)
    version: int = attrs.field(default=1, validator=_check_version)
    effective_from: datetime | None = attrs.field(default=None, converter=_optional_instant)

    def __attrs_post_init__(self) -> None:
        if not self.targets:
            raise SlaError(f"policy {self.name!r} has no targets")
        if self.condition is None and not self.default:
            raise SlaError(
                f"policy {self.name!r} has no condition; give condition=... or mark it "
                "default=True to make it the fallback for tickets no other policy matches"
            )
        metrics: dict[str, SlaMetric] = {}
        for index, target in enumerate(self.targets):
            known = metrics.setdefault(target.key, target.metric)
            if known is not target.metric:
                raise SlaError(
                    f"policy {self.name!r}: targets[{index}] uses key {target.key!r} for "
                    f"{target.metric.value!r}, already used for {known.value!r}"
                )


# Resolved here, where the names exist: the package presents these classes as csmcore.sla's.
attrs.resolve_types(CustomTimer)
attrs.resolve_types(SlaTarget)
attrs.resolve_types(SlaPolicy)
