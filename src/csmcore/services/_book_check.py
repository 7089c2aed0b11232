"""The escalation engine's check of rules against its SLA book: a rule is written without its
book, so only the engine, given both, can tell that a rule names a target key, or a calendar,
that the book lacks (a level that would never fire, points that would never apply, a field
that always reads None, a trigger that fails every run)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from csmcore.conditions import Condition, walk
from csmcore.errors import ValidationError
from csmcore.escalation import SLA_PREFIX, EscalationRule, GrantPoints, Notify
from csmcore.sla import SlaBook

__all__ = ["check_against_book"]

_Named = tuple[str, str, str, str, str]
"""Where a rule names a target key (``levels[1]``), how (``target 'x'``), the argument that
names it (``target``, ``per_target``), the key, and what a key no policy of the book has would
do."""


_NO_TARGET_FIELDS: Final = frozenset({f"{SLA_PREFIX}any_breached", f"{SLA_PREFIX}max_percent"})


def _condition_keys(condition: Condition | None, place: str) -> Iterator[_Named]:
    """The target keys the SLA fields of ``condition`` read (``sla.<target>.<attribute>``)."""
    if condition is None:
        return
    for node in walk(condition):
        field = getattr(node, "field", None)
        if (
            isinstance(field, str)
            and field.startswith(SLA_PREFIX)
            and field not in _NO_TARGET_FIELDS
        ):
            key = field[len(SLA_PREFIX) :].rpartition(".")[0]
            named = f"field {field!r} reads target {key!r}, which"
            yield place, named, "target", key, "it always reads None"


def _target_keys(rule: EscalationRule) -> Iterator[_Named]:
    """What ``rule`` names as target keys of the book: the SLA fields its condition and its
    held triggers' conditions read (``sla.<target>.percent``...), each trigger's ``target``,
    the ``per_target`` keys of each :class:`~csmcore.escalation.GrantPoints` action's policy
    (no other built-in action names a target key)."""
    yield from _condition_keys(rule.condition, "condition")
    for number, level in enumerate(rule.levels):
        trigger = level.trigger
        target = getattr(trigger, "target", None)
        if isinstance(target, str):
            never = "the level would never fire"
            yield f"levels[{number}]", f"target {target!r}", "target", target, never
        yield from _condition_keys(
            getattr(trigger, "condition", None), f"levels[{number}] condition"
        )
        for index, act in enumerate(level.actions):
            if isinstance(act, GrantPoints):
                for key in act.policy.per_target:
                    yield (
                        f"levels[{number}] actions[{index}] (GrantPoints)",
                        f"per_target key {key!r}",
                        "per_target",
                        key,
                        "its points would never apply (a breach earns the policy's "
                        f"points={act.policy.points} instead)",
                    )


def check_against_book(rules: Iterable[tuple[str, EscalationRule, str]], book: SlaBook) -> None:
    """Refuse a target key no policy of ``book`` has, where a rule names one (a trigger's
    ``target``, a ``GrantPoints`` policy's ``per_target`` key, a condition's
    ``sla.<target>.<attribute>`` field): its level would never fire, its points never apply,
    the field always read None; and a calendar name the book lacks, where a business-time
    trigger counts in one or a ``Notify`` action holds its notification to one's open time (a
    rule is written without its book, so only the engine, given both, can tell). ``rules``
    are (where the rule is and its name, the rule, how to fix it)."""
    keys = {target.key for policy in book.policies for target in policy.targets}
    calendars = sorted(name for name, _ in book.calendars)
    for where, rule, fix in rules:
        for place, named, argument, key, effect in _target_keys(rule):
            if key not in keys:
                raise ValidationError(
                    f"{where} {place}: {named} is no target of the book, so {effect}; the "
                    f"book's targets: {', '.join(sorted(keys)) or '(none)'}{fix}",
                    field=argument,
                    value=key,
                )
        for number, level in enumerate(rule.levels):
            # a business-time trigger counts in a calendar of the book (None: its default)
            name = getattr(level.trigger, "calendar", None)
            if isinstance(name, str) and name not in calendars:
                raise ValidationError(
                    f"{where} levels[{number}]: calendar {name!r} is no calendar of the book, "
                    "so the level could never be planned (every run of every ticket would fail "
                    f"on it){fix}; the book's calendars: {', '.join(calendars) or '(none)'} "
                    "(and the default, calendar=None)",
                    field="calendar",
                    value=name,
                )
            # a notification held to business hours waits for a calendar of the book
            for index, act in enumerate(level.actions):
                held = act.calendar if isinstance(act, Notify) else None
                if held is not None and held not in calendars:
                    raise ValidationError(
                        f"{where} levels[{number}] actions[{index}] (Notify): calendar "
                        f"{held!r} is no calendar of the book, so its notification could "
                        "never be held to business hours (every run of every ticket the rule "
                        f"applies to would fail on it){fix}; the book's calendars: "
                        f"{', '.join(calendars) or '(none)'} (and the default, calendar=None)",
                        field="calendar",
                        value=held,
                    )
