"""The SLA statuses as a subject of conditions, and the view escalation conditions match.

Escalation conditions match an :class:`EscalationView`: a ticket as it stood at an instant
together with its SLA results at that instant. The view answers every ticket field (it hands
them to the ticket), and the fields registered here read the SLA results:

========================================  =======  ============================================
field                                     kind     reads
========================================  =======  ============================================
``sla.any_breached``                      bool     some cycle of some target is breached
``sla.max_percent``                       custom   the highest percentage used among open
                                                   (not stopped) cycles; None when none is open
``sla.<target>.state``                    custom   the state value of the target's latest cycle
                                                   (``"active"``, ``"paused"``, ``"achieved"``,
                                                   ``"breached"``); None without a cycle
``sla.<target>.percent``                  custom   percentage of the latest cycle used (75 is
                                                   75 %; over 100 after a breach), a Decimal
``sla.<target>.remaining_minutes``        custom   minutes left (negative after a breach)
``sla.<target>.elapsed_minutes``          custom   minutes counted so far
``sla.<target>.breached``                 custom   True when the latest cycle is breached
========================================  =======  ============================================

``<target>`` is a target key (:attr:`csmcore.sla.SlaTarget.key`: its name or its metric value,
``"first_reply"``). Numbers are exact :class:`~decimal.Decimal` values, so a comparison with a
literal turns true at the exact microsecond the planner computes. The numeric fields change with
time between events; conditions compare them with ``<``, ``<=``, ``>``, ``>=`` only (an ``Eq`` or
``In`` on one is refused when a rule is built, see :func:`time_varying_leaves`).

Read from a plain :class:`~csmcore.tickets.Ticket` (no SLA results), every SLA field is None.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from math import ceil, floor
from typing import Any, Final

from csmcore._time import US
from csmcore.conditions import (
    Compare,
    Condition,
    Eq,
    In,
    Subject,
    SubjectField,
    register_subject,
    subjects,
    walk,
)
from csmcore.errors import ValidationError
from csmcore.loyalty import LoyaltyMember, MemberTimeline
from csmcore.sla import SlaResults, SlaState, SlaStatus
from csmcore.tickets import Ticket

__all__ = [
    "SLA_PREFIX",
    "SLA_SUBJECT",
    "TARGET_ATTRIBUTES",
    "EscalationView",
    "reads_member",
    "time_varying_leaves",
]

SLA_PREFIX: Final = "sla."
"""The prefix of the SLA fields."""

_CONTEXT = decimal.Context(prec=60)
_MINUTE_US: Final = 60_000_000
_NO_RESULTS = SlaResults(())


class EscalationView:
    """A ticket at an instant with its SLA results at that instant: what escalation
    conditions match. Ticket fields are read from :attr:`ticket`; SLA fields from :attr:`sla`;
    a loyalty member's fields (``member.tier``...) from :attr:`loyalty_member`, the ticket's
    requester as a member at that instant, when the view was given their
    :class:`~csmcore.loyalty.MemberTimeline` (``member``; None: every member field reads
    None).

    >>> from datetime import datetime, timezone
    >>> from csmcore.tickets import Ticket
    >>> from csmcore.sla import SlaResults
    >>> t, _ = Ticket.create(at=datetime(2025, 1, 6, 9, tzinfo=timezone.utc), ticket_id="T-1",
    ...     created_by="requester", channel="email", priority="high", requester="ann")
    >>> view = EscalationView(t, SlaResults(()), t.created_at)
    >>> view.priority, view.id
    (<Priority.HIGH: 'high'>, 'T-1')
    """

    __slots__ = ("_member", "_read", "at", "sla", "ticket")

    def __init__(
        self,
        ticket: Ticket,
        sla: SlaResults,
        at: datetime,
        member: MemberTimeline | None = None,
    ) -> None:
        self.ticket = ticket
        self.sla = sla
        self.at = at
        self._member = member
        self._read: LoyaltyMember | None = None

    @property
    def loyalty_member(self) -> LoyaltyMember | None:
        """The requester as a loyalty member at :attr:`at` (None without a timeline)."""
        if self._read is None and self._member is not None:
            self._read = self._member.at(self.at)
        return self._read

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the view lacks: the ticket's attributes.
        return getattr(self.ticket, name)

    def __repr__(self) -> str:
        return f"EscalationView({self.ticket.id!r}, at={self.at.isoformat()})"


def _results(subject: Any) -> SlaResults:
    found = getattr(subject, "sla", None) if type(subject) is EscalationView else None
    return found if found is not None else _NO_RESULTS


def _open(status: SlaStatus) -> bool:
    return status.stopped_at is None


def percent_of(status: SlaStatus) -> Decimal:
    """The exact percentage of ``status``'s target used (a Decimal, 60 digits)."""
    return _CONTEXT.divide(Decimal((status.elapsed // US) * 100), Decimal(status.within // US))


def _minutes(us: int) -> Decimal:
    return _CONTEXT.divide(Decimal(us), Decimal(_MINUTE_US))


def _any_breached(subject: Any) -> bool | None:
    if type(subject) is not EscalationView:
        return None
    return any(s.state is SlaState.BREACHED for s in subject.sla)


def _max_percent(subject: Any) -> Decimal | None:
    values = [percent_of(s) for s in _results(subject) if _open(s)]
    return max(values) if values else None


TARGET_ATTRIBUTES: Final[dict[str, Callable[[SlaStatus], Any]]] = {
    "state": lambda s: s.state.value,
    "percent": percent_of,
    "remaining_minutes": lambda s: _minutes((s.within - s.elapsed) // US),
    "elapsed_minutes": lambda s: _minutes(s.elapsed // US),
    "breached": lambda s: s.state is SlaState.BREACHED,
}
"""What ``sla.<target>.<attribute>`` reads from the target's latest cycle."""

_TIME_VARYING: Final = frozenset({"percent", "remaining_minutes", "elapsed_minutes"})


def _split(name: str) -> tuple[str, str]:
    target, dot, attribute = name.rpartition(".")
    if not dot or not target or attribute not in TARGET_ATTRIBUTES:
        raise ValidationError(
            f"field={SLA_PREFIX + name!r} is not an SLA field; accepted: 'sla.any_breached', "
            f"'sla.max_percent', or 'sla.<target>.<attribute>' with attribute one of "
            f"{sorted(TARGET_ATTRIBUTES)}",
            field="field",
            value=SLA_PREFIX + name,
        )
    return target, attribute


def _read_target(name: str) -> Callable[[Any], Any]:
    target, attribute = _split(name)
    read = TARGET_ATTRIBUTES[attribute]

    def reader(subject: Any) -> Any:
        status = _results(subject).get(target)
        return None if status is None else read(status)

    return reader


SLA_SUBJECT: Final = Subject(
    "sla",
    [
        SubjectField("sla.any_breached", "bool", _any_breached),
        SubjectField("sla.max_percent", "custom", _max_percent),
    ],
    custom_prefix=SLA_PREFIX,
    read_custom=_read_target,
    custom_hint=(
        f"'sla.<target>.<attribute>' for an SLA target (attribute one of "
        f"{', '.join(sorted(TARGET_ATTRIBUTES))})"
    ),
)
"""The SLA statuses of a ticket as a subject of conditions (registered on import)."""

register_subject(SLA_SUBJECT)


# --------------------------------------------------------------------------------------------
# Time-varying leaves: where a comparison on a moving number turns over
# --------------------------------------------------------------------------------------------


def _varying(field: str) -> str | None:
    """``"max"`` for sla.max_percent, the attribute for a per-target time-varying field."""
    if field == "sla.max_percent":
        return "max"
    if field.startswith(SLA_PREFIX) and field != "sla.any_breached":
        attribute = field.rpartition(".")[2]
        if attribute in _TIME_VARYING:
            return attribute
    return None


_MEMBER_SUBJECT: Final = "loyalty_member"
"""The loyalty member's subject (``member.*``), read from :attr:`EscalationView.loyalty_member`."""


def _member_fields() -> frozenset[str]:
    for subject in subjects():
        if subject.name == _MEMBER_SUBJECT:
            return frozenset(subject.fields)
    return frozenset()


def reads_member(condition: Condition) -> bool:
    """Whether ``condition`` reads a loyalty member's field (``member.tier``...)."""
    members = _member_fields()
    return any(getattr(node, "field", None) in members for node in walk(condition))


def time_varying_leaves(condition: Condition, path: str) -> list[Compare]:
    """The comparisons in ``condition`` on SLA numbers that change with time.

    Raises ValidationError naming ``path`` for an ``Eq`` or ``In`` on such a field: equality
    with a moving number holds for at most an instant, which no plan can promise. (A loyalty
    member's fields change only at instants the planner knows: see
    :class:`~csmcore.loyalty.MemberTimeline`.)
    """
    found = []
    for node in walk(condition):
        if isinstance(node, Eq | In | Compare) and _varying(node.field) is not None:
            if not isinstance(node, Compare):
                raise ValidationError(
                    f"{path}: {node!r} tests a moving SLA number for equality; compare it with "
                    "<, <=, > or >= instead",
                    field=path,
                    value=node,
                )
            found.append(node)
    return found


def crossing_elapsed(leaf: Compare, status: SlaStatus) -> Iterator[int]:
    """The elapsed values (microseconds of the target's clock) at which ``leaf`` may turn
    over for ``status``'s cycle, as the cycle's elapsed time grows."""
    kind = _varying(leaf.field)
    if kind is None:
        return
    if kind != "max":
        target = leaf.field[len(SLA_PREFIX) :].rpartition(".")[0]
        if status.target != target:
            return
    value = Fraction(leaf.value)
    within = status.within // US
    if kind in ("max", "percent"):
        edge = value * within / 100
    elif kind == "remaining_minutes":
        edge = within - value * _MINUTE_US
    else:
        edge = value * _MINUTE_US
    yield ceil(edge)
    yield floor(edge) + 1
