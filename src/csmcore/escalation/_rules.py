"""Escalation rules, their levels and the triggers of levels; their converter hooks.

A :class:`EscalationRule` has a condition and one or more :class:`EscalationLevel` values; each
level has a trigger (:class:`DueOffset`, :class:`PercentUsed` or :class:`ConditionHeld`) and
one or more actions (see :mod:`._actions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final, TypeAlias

import attrs

from csmcore._values import check_text, is_bool
from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Condition
from csmcore.errors import SerializationError, ValidationError, invalid_type
from csmcore.escalation._actions import action_class, action_name
from csmcore.escalation._subject import time_varying_leaves
from csmcore.serialization import converter, describe_error, serializable
from csmcore.sla import SlaBook

__all__ = [
    "ConditionHeld",
    "DueOffset",
    "EscalationLevel",
    "EscalationRule",
    "PercentUsed",
    "Trigger",
    "clock_of",
]


def _name(argument: str) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, str) or not value or value != value.strip():
            raise invalid_type(argument, value, "a non-empty string without edge spaces")
        check_text(value, argument)

    return check


def _optional_name(argument: str) -> Any:
    return attrs.validators.optional(_name(argument))


def _duration(argument: str, *, positive: bool) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, timedelta):
            raise invalid_type(argument, value, "a datetime.timedelta")
        if positive and value <= timedelta(0):
            raise ValidationError(
                f"{argument}={value!r} must be a positive duration", field=argument, value=value
            )

    return check


def _check_clock(inst: Any) -> None:
    if inst.calendar is not None and not inst.business_hours:
        raise ValidationError(
            f"calendar={inst.calendar!r} applies with business_hours=True only", field="calendar"
        )


def clock_of(book: SlaBook, business_hours: bool, calendar: str | None) -> BusinessCalendar | None:
    """The calendar a trigger counts in (None: wall time). Raises NotFound for a calendar
    name the book does not know."""
    return book.calendar_named(calendar) if business_hours else None


@serializable("escalation.trigger.due", aliases=("csmcore.escalation:DueOffset",))
@attrs.frozen(kw_only=True)
class DueOffset:
    """Fire at ``offset`` from a target cycle's due time: negative before it, zero at the
    breach, positive after it. The offset counts business time of ``calendar`` (a calendar
    name of the SLA book; None: its default one) when ``business_hours`` is True, wall time
    otherwise; so "2 business hours after breach" never lands at night or on a weekend.

    A negative offset fires while the cycle's clock runs (not while paused) once the instant
    ``due - |offset|`` is reached, or when the cycle breaches first; a zero or positive offset
    fires ``offset`` after the breach while the breached cycle is still open. Use
    :meth:`before` and :meth:`after` to build one.

    >>> from datetime import timedelta
    >>> DueOffset.before("first_reply", timedelta(hours=1)).offset
    datetime.timedelta(days=-1, seconds=82800)
    """

    target: str = attrs.field(validator=_name("target"))
    offset: timedelta = attrs.field(validator=_duration("offset", positive=False))
    business_hours: bool = attrs.field(default=False, validator=is_bool)
    calendar: str | None = attrs.field(default=None, validator=_optional_name("calendar"))

    def __attrs_post_init__(self) -> None:
        _check_clock(self)

    @classmethod
    def before(cls, target: str, offset: timedelta, **clock: Any) -> DueOffset:
        """``offset`` (a positive duration) before ``target``'s due time."""
        _duration("offset", positive=True)(None, None, offset)
        return cls(target=target, offset=-offset, **clock)

    @classmethod
    def after(cls, target: str, offset: timedelta = timedelta(0), **clock: Any) -> DueOffset:
        """``offset`` (zero or positive) after ``target``'s breach."""
        if isinstance(offset, timedelta) and offset < timedelta(0):
            raise ValidationError(f"offset={offset!r} must not be negative", field="offset")
        return cls(target=target, offset=offset, **clock)


def _percent(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise invalid_type("percent", value, "a number in (0, 1000]")
    try:
        number = Decimal(value) if not isinstance(value, float) else Decimal(str(value))
    except ArithmeticError as err:
        raise ValidationError(f"percent={value!r} is not a number", field="percent") from err
    if not number.is_finite() or not 0 < number <= 1000:
        raise ValidationError(
            f"percent={value!r} is outside (0, 1000]; 75 means 75 % of the target used",
            field="percent",
            value=value,
        )
    return number


@serializable("escalation.trigger.percent", aliases=("csmcore.escalation:PercentUsed",))
@attrs.frozen(kw_only=True)
class PercentUsed:
    """Fire when ``percent`` of a target cycle's duration is used (75 = 75 %; 100 = at the
    breach; up to 1000), counted in the target's own clock, while the cycle is open.

    >>> PercentUsed(target="resolution", percent=75).percent
    Decimal('75')
    """

    target: str = attrs.field(validator=_name("target"))
    percent: Decimal = attrs.field(converter=_percent)

    @property
    def fraction(self) -> Fraction:
        """The percentage as an exact fraction of the target (0.75 for 75)."""
        return Fraction(self.percent) / 100


def _optional_condition(_: object, __: object, value: Any) -> None:
    if value is not None and not isinstance(value, Condition):
        raise invalid_type("condition", value, "a csmcore.conditions Condition or None")


@serializable("escalation.trigger.held", aliases=("csmcore.escalation:ConditionHeld",))
@attrs.frozen(kw_only=True)
class ConditionHeld:
    """Fire when a condition has held for ``duration`` (business time of ``calendar`` when
    ``business_hours``, else wall time): the rule's condition, and ``condition`` too if given.

    "Held for d at t" means: the condition is true at every instant from ``s`` to ``t``, where
    ``s`` is the instant it last turned true (evaluated after all events of an instant), and
    ``d`` of the trigger's clock has passed from ``s`` to ``t``. When the condition turns false
    the count restarts; each stretch of truth (an *episode*, numbered from 1) fires the level
    at most once, so a level fires again after the condition turned off and on and held again.

    >>> from datetime import timedelta
    >>> ConditionHeld(duration=timedelta(minutes=30)).duration
    datetime.timedelta(seconds=1800)
    """

    duration: timedelta = attrs.field(validator=_duration("duration", positive=True))
    condition: Condition | None = attrs.field(default=None, validator=_optional_condition)
    business_hours: bool = attrs.field(default=False, validator=is_bool)
    calendar: str | None = attrs.field(default=None, validator=_optional_name("calendar"))

    def __attrs_post_init__(self) -> None:
        _check_clock(self)
        if self.condition is not None:
            time_varying_leaves(self.condition, "condition")


Trigger: TypeAlias = DueOffset | PercentUsed | ConditionHeld
_TRIGGERS: Final[dict[str, type[Any]]] = {
    "due": DueOffset,
    "percent": PercentUsed,
    "held": ConditionHeld,
}
_KIND_OF: Final = {cls: kind for kind, cls in _TRIGGERS.items()}


def _actions(value: object) -> tuple[Any, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise invalid_type("actions", value, "a collection of actions")
    out = tuple(value)
    if not out:
        raise ValidationError(
            "actions=() is empty; a level does at least one thing", field="actions"
        )
    for index, item in enumerate(out):
        try:
            action_name(item)
        except ValidationError as err:
            raise ValidationError(f"actions[{index}]: {err}", field=f"actions[{index}]") from err
    return out


def _check_trigger(_: object, __: object, value: Any) -> None:
    if type(value) not in _KIND_OF:
        raise invalid_type("trigger", value, "a DueOffset, PercentUsed or ConditionHeld")


@serializable("escalation.level", aliases=("csmcore.escalation:EscalationLevel",))
@attrs.frozen(kw_only=True)
class EscalationLevel:
    """One step of a rule: when it fires (``trigger``) and what it does (``actions``, applied
    in order)."""

    trigger: Trigger = attrs.field(validator=_check_trigger)
    actions: tuple[Any, ...] = attrs.field(converter=_actions)


def _levels(value: object) -> tuple[EscalationLevel, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise invalid_type("levels", value, "a collection of EscalationLevel")
    out = tuple(value)
    for index, item in enumerate(out):
        if not isinstance(item, EscalationLevel):
            raise invalid_type(f"levels[{index}]", item, "an EscalationLevel")
    if not out:
        raise ValidationError("levels=() is empty; a rule has at least one level", field="levels")
    return out


def _version(_: object, __: object, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid_type("version", value, "a whole number >= 1")


def _condition(_: object, __: object, value: Any) -> None:
    if not isinstance(value, Condition):
        raise invalid_type(
            "condition", value, "a csmcore.conditions Condition (Always() for every ticket)"
        )
    time_varying_leaves(value, "condition")


def _clock_words(trigger: DueOffset | ConditionHeld) -> str:
    if not trigger.business_hours:
        return "in wall time"
    if trigger.calendar is None:
        return "in business time of the book's default calendar"
    return f"in business time of calendar {trigger.calendar!r}"


def _wording(trigger: Trigger) -> str:
    if isinstance(trigger, PercentUsed):
        return f"percent {trigger.percent}"
    if isinstance(trigger, DueOffset):
        return f"offset {trigger.offset!r} {_clock_words(trigger)}"
    return f"duration {trigger.duration!r} {_clock_words(trigger)}"


_ZERO: Final = timedelta(0)
_SAME_CLOCK: Final = (
    "levels of one kind and target on one clock (wall time, or business time of one "
    "calendar) must be in strictly increasing order"
)
_ACROSS_SIGNS: Final = (
    "on any clock an offset before the due time comes before the breach (offset zero) and "
    "the breach before an offset after it, so offsets of one target must keep that order"
)
_ZEROS: Final = "an offset of zero is the breach itself whatever its clock"
_SLOWER_AFTER: Final = (
    "business time never runs faster than wall time, so from one start a wall span no "
    "longer than a business span ends no later"
)
_SLOWER_BEFORE: Final = (
    "business time never runs faster than wall time, so counted back from one due time a "
    "business span no shorter than a wall span starts no later"
)


def _sign(value: timedelta) -> int:
    return (value > _ZERO) - (value < _ZERO)


def _by_position(earlier: Any, later: Any) -> tuple[str, str] | None:
    if later > earlier:
        return None
    return ("repeats" if later == earlier else "is below"), _SAME_CLOCK


def _clash(earlier: Trigger, later: Trigger) -> tuple[str, str] | None:
    """Why ``later``, a level listed after ``earlier``, can never fire after it whatever the
    ticket and the calendars, as (how, why); None when it can.

    Positions compare within one kind and target (one held condition): percentages of a
    target count in the target's own clock, so they compare as numbers; so do offsets, or
    durations, on one clock (wall time, or business time of one calendar). Across clocks an
    offset's sign holds on each (before the due time, zero: the breach itself, after it), and
    business time, real time inside open windows, never runs faster than wall time: from one
    start, a business span ends no earlier than a wall span as long, and counted back from
    one due time it starts no later. Nothing else compares across clocks: two calendars can
    be open at any times (``calendar=None``, the book's default, is another clock than any
    named calendar: which one it is is not known here).
    """
    if type(earlier) is not type(later):
        return None
    if isinstance(earlier, PercentUsed):
        assert isinstance(later, PercentUsed)
        if earlier.target != later.target:
            return None
        return _by_position(earlier.percent, later.percent)
    if isinstance(earlier, DueOffset):
        assert isinstance(later, DueOffset)
        if earlier.target != later.target:
            return None
        a, b = earlier.offset, later.offset
    else:
        assert isinstance(later, ConditionHeld)
        if earlier.condition != later.condition:
            return None
        a, b = earlier.duration, later.duration
    if (earlier.business_hours, earlier.calendar) == (later.business_hours, later.calendar):
        return _by_position(a, b)
    sign_a, sign_b = _sign(a), _sign(b)
    if sign_b < sign_a:
        return "is below", _ACROSS_SIGNS
    if sign_a == sign_b == 0:
        return "repeats", _ZEROS
    if b > a:
        return None
    # one sign, b <= a: bounded only between wall time and business time
    if sign_b > 0 and earlier.business_hours and not later.business_hours:
        return "never fires after", _SLOWER_AFTER
    if sign_b < 0 and later.business_hours and not earlier.business_hours:
        return "never fires after", _SLOWER_BEFORE
    return None


@serializable("escalation_rule", aliases=("csmcore.escalation:EscalationRule",))
@attrs.frozen(kw_only=True)
class EscalationRule:
    """A named escalation rule: ``condition`` (matched against an
    :class:`~csmcore.escalation.EscalationView`: ticket fields and ``sla.*`` fields) and its
    ``levels``. ``version`` numbers edits of the rule (firings record it).

    Levels of one kind on one target and one clock (percentages of a target; offsets from a
    target's due time, or durations of one held condition, counted in wall time or in business
    time of one calendar) must be given in strictly increasing order: two equal ones (a
    duplicate offset) or a decrease raise ValidationError naming the level. Levels on
    different clocks each fire at their own instant, which can come before or after the
    other's, and are refused only where a level could never fire after one listed before it
    on the same target, whatever the ticket and the calendars:

    - an offset before the due time listed after the breach (offset zero) or an offset after
      it, or the breach after an offset after it (the sign holds on every clock), and a zero
      offset in wall time and one in business time (the same instant, a duplicate);
    - business time never runs faster than wall time: a wall offset after the breach (or a
      wall duration of a held condition) no longer than a business one listed before it (30
      wall minutes after the breach come before one business hour on every ticket), and a
      business offset before the due time at least as long as a wall one listed before it.

    So one business hour after a breach, then two wall hours after it, is a valid rule, as is
    an hour in wall time, then 30 minutes of business time: on a Monday-Friday 09:00-17:00
    calendar the second level fires first after a breach at Tuesday 10:00 (10:30, then 11:00)
    and last after one at Friday 16:45 (Friday 17:45, then Monday 09:15). Two calendars never
    compare, except by an offset's sign: ``calendar=None`` (the book's default) and a named
    calendar count as different clocks, as which calendar is the default is not known when
    the rule is built.

    >>> from csmcore.conditions import Field
    >>> from csmcore.escalation import Notify
    >>> rule = EscalationRule(name="reply-75", condition=Field("priority") >= "high",
    ...     levels=[EscalationLevel(trigger=PercentUsed(target="first_reply", percent=75),
    ...         actions=[Notify(channel="email", recipient="$group", template="warn")])])
    >>> rule.levels[0].trigger.percent
    Decimal('75')
    """

    name: str = attrs.field(validator=_name("name"))
    condition: Condition = attrs.field(validator=_condition)
    levels: tuple[EscalationLevel, ...] = attrs.field(converter=_levels)
    version: int = attrs.field(default=1, validator=_version)
    description: str = attrs.field(default="", validator=attrs.validators.instance_of(str))

    def __attrs_post_init__(self) -> None:
        triggers = [level.trigger for level in self.levels]
        for index, trigger in enumerate(triggers):
            for before in range(index - 1, -1, -1):  # the nearest level it clashes with
                found = _clash(triggers[before], trigger)
                if found is None:
                    continue
                raise ValidationError(
                    f"levels[{index}]: {_wording(trigger)} {found[0]} levels[{before}] "
                    f"({_wording(triggers[before])}); {found[1]}",
                    field=f"levels[{index}]",
                    value=trigger,
                )

    @property
    def actor(self) -> str:
        """The actor of the ticket events this rule's actions make: ``escalation:<name>``."""
        return f"escalation:{self.name}"


# --------------------------------------------------------------------------------------------
# Converter hooks: {"kind": ...} for triggers, {"action": ...} for actions
# --------------------------------------------------------------------------------------------


def _mapping(data: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise SerializationError(f"{path}: {data!r} is not a mapping")
    return data


def _structure_attrs(cls: type[Any], data: Mapping[str, Any], path: str) -> Any:
    try:
        return converter.structure(dict(data), cls)
    except Exception as err:  # cattrs groups and validation errors, re-raised with the path
        raise SerializationError(f"{path}: {describe_error(err)}") from err


def unstructure_trigger(trigger: Trigger) -> dict[str, Any]:
    data = converter.unstructure(trigger, type(trigger))
    if isinstance(trigger, PercentUsed):
        data["percent"] = str(trigger.percent)
    return {"kind": _KIND_OF[type(trigger)], **data}


def structure_trigger(data: Any, path: str) -> Trigger:
    data = dict(_mapping(data, path))
    kind = data.pop("kind", None)
    cls = _TRIGGERS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SerializationError(
            f"{path}.kind: {kind!r} is not a trigger kind; accepted: {sorted(_TRIGGERS)}"
        )
    return _structure_attrs(cls, data, path)  # type: ignore[no-any-return]


def unstructure_action(value: Any) -> dict[str, Any]:
    return {"action": action_name(value), **converter.unstructure(value, type(value))}


def structure_action(data: Any, path: str) -> Any:
    data = dict(_mapping(data, path))
    name = data.pop("action", None)
    try:
        cls = action_class(name)
    except ValidationError as err:
        raise SerializationError(f"{path}.action: {err}") from err
    return _structure_attrs(cls, data, path)


def _unstructure_level(level: EscalationLevel) -> dict[str, Any]:
    return {
        "trigger": unstructure_trigger(level.trigger),
        "actions": [unstructure_action(a) for a in level.actions],
    }


def _list(data: Mapping[str, Any], key: str, path: str) -> list[Any]:
    if key not in data:
        raise SerializationError(f"{path}.{key}: required field missing")
    value = data[key]
    if not isinstance(value, list):
        raise SerializationError(f"{path}.{key}: {value!r} is not a list")
    return value


def _only(data: Mapping[str, Any], keys: frozenset[str], path: str) -> None:
    extra = set(data) - keys
    if extra:
        raise SerializationError(
            f"{path}: unknown keys {sorted(extra, key=repr)}; accepted: {sorted(keys)}"
        )


_LEVEL_KEYS = frozenset({"trigger", "actions"})
_RULE_KEYS = frozenset({"name", "condition", "levels", "version", "description"})


def structure_level(data: Any, path: str = "$") -> EscalationLevel:
    data = _mapping(data, path)
    _only(data, _LEVEL_KEYS, path)
    if "trigger" not in data:
        raise SerializationError(f"{path}.trigger: required field missing")
    trigger = structure_trigger(data["trigger"], f"{path}.trigger")
    actions = [
        structure_action(item, f"{path}.actions[{i}]")
        for i, item in enumerate(_list(data, "actions", path))
    ]
    try:
        return EscalationLevel(trigger=trigger, actions=actions)
    except ValidationError as err:
        raise SerializationError(f"{path}: {err}") from err


def _unstructure_rule(rule: EscalationRule) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": rule.name,
        "version": rule.version,
        "condition": converter.unstructure(rule.condition, Condition),
        "levels": [_unstructure_level(level) for level in rule.levels],
    }
    if rule.description:
        data["description"] = rule.description
    return data


def _structure_rule(data: Any, _: type) -> EscalationRule:
    data = _mapping(data, "$")
    _only(data, _RULE_KEYS, "$")
    for key in ("name", "condition"):
        if key not in data:
            raise SerializationError(f"$.{key}: required field missing")
    try:
        condition = converter.structure(data["condition"], Condition)
    except Exception as err:
        raise SerializationError(f"$.condition: {describe_error(err)}") from err
    levels = [
        structure_level(item, f"$.levels[{i}]") for i, item in enumerate(_list(data, "levels", "$"))
    ]
    try:
        return EscalationRule(
            name=data["name"],
            condition=condition,
            levels=levels,
            version=data.get("version", 1),
            description=data.get("description", ""),
        )
    except ValidationError as err:
        where = f"$.{err.field}" if isinstance(err.field, str) and err.field else "$"
        raise SerializationError(f"{where}: {err}") from err


converter.register_unstructure_hook(EscalationRule, _unstructure_rule)
converter.register_structure_hook(EscalationRule, _structure_rule)
converter.register_unstructure_hook(EscalationLevel, _unstructure_level)
converter.register_structure_hook(EscalationLevel, lambda data, _: structure_level(data))
converter.register_unstructure_hook(
    PercentUsed, lambda t: {"target": t.target, "percent": str(t.percent)}
)

# Resolved here, where the names exist: the package presents these classes as its own.
for _cls in (DueOffset, PercentUsed, ConditionHeld, EscalationLevel, EscalationRule):
    attrs.resolve_types(_cls)
del _cls
