"""Strategies for the escalation types: triggers, actions, levels, rules, notification
requests and firings (re-exported by :mod:`csmcore.testing.strategies`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from csmcore import conditions as cd
from csmcore.escalation import (
    AddNote,
    AddTags,
    Assign,
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    Firing,
    GrantPoints,
    NotificationRequest,
    Notify,
    PercentUsed,
    RemoveTags,
    SetPriority,
    SetStatus,
    action_class,
    actions,
)
from csmcore.sla import SlaMetric
from csmcore.testing._basics import instants
from csmcore.testing._loyalty import recovery_policies
from csmcore.tickets import Priority, Status

__all__ = [
    "ACTION_STRATEGIES",
    "escalation_actions",
    "escalation_levels",
    "escalation_rules",
    "escalation_triggers",
    "firing_records",
    "firings",
    "notification_requests",
    "outbox_messages",
    "plan_bases",
    "ticket_plans",
]

# Every built-in metric's key, and custom targets' keys (their names): a trigger may aim at any.
_TARGETS = st.one_of(
    st.sampled_from([m.value for m in SlaMetric if m is not SlaMetric.CUSTOM]),
    st.sampled_from(["vip callback", "Rückruf", "on-site visit"]),
)


def _clock() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.just({"business_hours": False}),
        st.fixed_dictionaries(
            {"business_hours": st.just(True), "calendar": st.none() | st.sampled_from(["de"])}
        ),
    )


def _percent_used() -> st.SearchStrategy[PercentUsed]:
    percent = st.integers(1, 1000) | st.decimals(
        min_value=Decimal("0.01"), max_value=Decimal(1000), places=2
    )
    return st.builds(PercentUsed, target=_TARGETS, percent=percent)


def _due_offsets() -> st.SearchStrategy[DueOffset]:
    offset = st.integers(-30 * 24 * 60, 30 * 24 * 60).map(lambda m: timedelta(minutes=m))
    return st.builds(
        lambda target, offset, clock: DueOffset(target=target, offset=offset, **clock),
        _TARGETS,
        offset,
        _clock(),
    )


def _held(
    conditions: Callable[[], st.SearchStrategy[cd.Condition]],
) -> st.SearchStrategy[ConditionHeld]:
    duration = st.integers(1, 10 * 24 * 60).map(lambda m: timedelta(minutes=m))
    return st.builds(
        lambda duration, condition, clock: ConditionHeld(
            duration=duration, condition=condition, **clock
        ),
        duration,
        st.none() | conditions(),
        _clock(),
    )


def escalation_triggers(
    conditions: Callable[[], st.SearchStrategy[cd.Condition]],
) -> st.SearchStrategy[PercentUsed | DueOffset | ConditionHeld]:
    """Any trigger: :class:`PercentUsed`, :class:`DueOffset` or :class:`ConditionHeld`."""
    return st.one_of(_percent_used(), _due_offsets(), _held(conditions))


def _words() -> st.SearchStrategy[str]:
    from csmcore.testing._basics import tags

    return tags()


ACTION_STRATEGIES: dict[type, Callable[[], st.SearchStrategy[Any]]] = {
    SetPriority: lambda: st.builds(SetPriority, priority=st.sampled_from(list(Priority))),
    Assign: lambda: st.one_of(
        st.builds(Assign, agent=_words(), group=st.none() | _words()),
        st.builds(Assign, group=_words()),
    ),
    AddTags: lambda: st.builds(AddTags, tags=st.frozensets(_words(), min_size=1, max_size=3)),
    RemoveTags: lambda: st.builds(RemoveTags, tags=st.frozensets(_words(), min_size=1, max_size=3)),
    SetStatus: lambda: st.builds(SetStatus, status=st.sampled_from(list(Status))),
    AddNote: lambda: st.builds(AddNote, text=_words()),
    GrantPoints: lambda: st.builds(
        GrantPoints,
        policy=recovery_policies(),
        member=st.just("$requester") | _words().filter(lambda w: not w.startswith("$")),
    ),
    Notify: lambda: st.builds(
        lambda channel, recipient, template, data, clock: Notify(
            channel=channel, recipient=recipient, template=template, data=data, **clock
        ),
        st.sampled_from(["email", "slack", "sms"]),
        # an address never starts with "$" (that names a placeholder: only the three above)
        st.sampled_from(["$assignee", "$group", "$requester"])
        | _words().filter(lambda w: not w.startswith("$")),
        _words(),
        st.dictionaries(
            _words(),
            st.none() | st.booleans() | st.integers(-1000, 1000) | _words(),
            max_size=3,
        ),
        _clock(),
    ),
}
"""A strategy per built-in action class; other registered actions are drawn with
``st.builds`` from their attrs fields."""


def action_name_of(cls: type) -> str:
    """The registered name of an action class."""
    name: str = getattr(cls, "name")  # noqa: B009 - set by @action, unknown to type checkers
    return name


def escalation_actions(*, names: Sequence[str] | None = None) -> st.SearchStrategy[Any]:
    """Actions of the registered ``names`` (every registered action by default): the built-in
    ones from tailored strategies, any other from ``st.from_type``, so from the strategy
    registered for it with :func:`csmcore.testing.strategies.register_strategy`, else from its
    attrs fields."""
    known = actions()
    if names is None:
        chosen = sorted(known)
    else:
        if isinstance(names, str) or not isinstance(names, Sequence) or not names:
            raise InvalidArgument(
                f"names={names!r} is not a sequence of action names"
                if isinstance(names, str)
                else f"names={names!r} is not a non-empty sequence of action names"
            )
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InvalidArgument(
                f"names={names!r}: {unknown[0]!r} is not a registered action; "
                f"registered: {sorted(known)}"
            )
        chosen = list(names)
    out = []
    for name in chosen:
        cls = action_class(name)
        tailored = ACTION_STRATEGIES.get(cls)
        out.append(tailored() if tailored is not None else st.from_type(cls))
    return st.one_of(out)


def escalation_levels(
    conditions: Callable[[], st.SearchStrategy[cd.Condition]],
) -> st.SearchStrategy[EscalationLevel]:
    """Levels: a trigger and one to three built-in actions."""
    return st.builds(
        EscalationLevel,
        trigger=escalation_triggers(conditions),
        actions=st.lists(
            escalation_actions(names=[action_name_of(c) for c in ACTION_STRATEGIES]),
            min_size=1,
            max_size=3,
        ),
    )


def _ordered(levels: list[EscalationLevel]) -> list[EscalationLevel]:
    """Keep the levels the rule accepts after those kept (see EscalationRule: order on a clock)."""
    kept: list[EscalationLevel] = []
    for level in levels:
        try:
            EscalationRule(name="x", condition=cd.Always(), levels=[*kept, level])
        except ValueError:
            continue
        kept.append(level)
    return kept


def escalation_rules(
    conditions: Callable[[], st.SearchStrategy[cd.Condition]],
) -> st.SearchStrategy[EscalationRule]:
    """Valid rules: a name, a version, a condition and one to four levels."""
    return st.builds(
        EscalationRule,
        name=_words(),
        version=st.integers(1, 50),
        condition=conditions(),
        levels=st.lists(escalation_levels(conditions), min_size=1, max_size=4)
        .map(_ordered)
        .filter(bool),
        description=st.just("") | _words(),
    )


def notification_requests() -> st.SearchStrategy[NotificationRequest]:
    """Notification requests as the ``notify`` action makes them."""
    return st.builds(
        NotificationRequest,
        channel=_words(),
        recipient=_words(),
        template=_words(),
        data=st.dictionaries(_words(), st.none() | st.integers(0, 9) | _words(), max_size=3),
        not_before=instants(),
        idempotency_key=_words(),
        ticket_id=_words(),
    )


def firings() -> st.SearchStrategy[Firing]:
    """Firings of target cycles and of held conditions."""
    return st.builds(
        Firing,
        rule=_words(),
        rule_version=st.integers(1, 50),
        level=st.integers(0, 5),
        ticket_id=_words(),
        target=st.one_of(_TARGETS, st.none()),  # None: a held condition's firing
        cycle=st.integers(1, 5),
        at=instants(),
    )


def firing_records() -> st.SearchStrategy[Any]:
    """Firings as the ``firings`` storage role keeps them."""
    from csmcore.storage.protocols import FiringRecord

    return st.builds(FiringRecord, firing=firings(), recorded_at=instants())


def ticket_plans() -> st.SearchStrategy[Any]:
    """Schedule entries of the ``firings`` storage role."""
    from csmcore.storage.protocols import TicketPlan

    return st.builds(
        TicketPlan,
        ticket_id=st.sampled_from(["T-1", "T-2", "T-3"]),
        version=st.integers(0, 50),
        next_due=st.none() | instants(),
    )


def plan_bases() -> st.SearchStrategy[Any]:
    """What the escalation engine keeps in the ``rules`` role: the digest of what its plans
    were made from, complete or not."""
    from csmcore.storage.protocols import PlanBasis

    return st.builds(
        PlanBasis,
        digest=st.text("0123456789abcdef", min_size=64, max_size=64),
        complete=st.booleans(),
    )


def outbox_messages() -> st.SearchStrategy[Any]:
    """Messages of the ``outbox`` storage role, in every state."""
    from csmcore.storage.protocols import OutboxMessage, OutboxState

    return st.builds(
        lambda request, **kw: OutboxMessage(key=request.idempotency_key, request=request, **kw),
        notification_requests(),
        state=st.sampled_from(list(OutboxState)),
        attempts=st.integers(0, 9),
        next_attempt_at=instants(),
        created_at=instants(),
        delivered_at=st.none() | instants(),
        last_error=st.none() | st.text(max_size=20),
    )
