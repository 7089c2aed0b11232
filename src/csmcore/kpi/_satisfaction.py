"""Satisfaction on tickets: the ``ticket.satisfaction_rated`` event, declared once with the
ticket event registry (no list elsewhere names it), and NPS answers, which belong to customers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import attrs

from csmcore._time import require_aware
from csmcore._values import check_text, coerce_enum
from csmcore.errors import InvalidType, ValidationError
from csmcore.kpi._scores import check_score
from csmcore.tickets import TicketEventBase, TicketState, event_type

__all__ = ["NpsAnswer", "SatisfactionRated", "SurveyKind", "nps_answers"]


class SurveyKind(enum.StrEnum):
    """Which survey a rating answers: customer satisfaction or customer effort."""

    CSAT = "csat"
    CES = "ces"


def _to_kind(value: object) -> SurveyKind:
    return coerce_enum(SurveyKind, value, "kind")


def _whole(argument: str, low: int, high: int) -> Any:
    """A validator of a whole number in ``low..high`` (:func:`~csmcore.kpi._scores.check_score`)."""

    def check(_: object, __: object, value: object) -> None:
        check_score(value, low, high, argument)

    return check


def _score_in_scale(instance: SatisfactionRated, _: object, value: Any) -> None:
    if check_score(value, 1, 10, "score") > instance.scale:
        raise ValidationError(
            f"score={value!r} is above scale={instance.scale!r}; accepted: 1..{instance.scale}",
            field="score",
            value=value,
        )


def _optional_comment(_: object, __: object, value: Any) -> None:
    if value is not None and not isinstance(value, str):
        raise InvalidType(
            f"comment={value!r} ({type(value).__name__}) is not text; accepted: a str or None",
            field="comment",
            value=value,
        )


@event_type("ticket.satisfaction_rated", aliases=("csmcore.kpi:SatisfactionRated",))
@attrs.frozen(kw_only=True)
class SatisfactionRated(TicketEventBase):
    """The requester answered a survey about this ticket: ``score`` on ``1..scale``.

    ``kind`` says which survey: :attr:`SurveyKind.CSAT` (customer satisfaction, usually
    ``scale=5``; Zendesk's good/bad survey is ``scale=2``) or :attr:`SurveyKind.CES` (customer
    effort, usually ``scale=7``, 7 = least effort). ``comment`` is the requester's optional
    remark; ``actor`` may name who answered. A later rating of the same kind replaces the
    earlier one in the KPIs (Zendesk keeps the latest rating of a ticket). Accepted on any
    ticket that is not merged, closed included (surveys are often answered after the ticket
    closed); it changes nothing of the ticket's state.

    >>> from datetime import datetime, timezone
    >>> SatisfactionRated(at=datetime(2025, 3, 3, tzinfo=timezone.utc), score=4).kind
    <SurveyKind.CSAT: 'csat'>
    """

    scale: int = attrs.field(
        default=5, validator=_whole("scale", 2, 10), metadata={"csmcore.range": (2, 10)}
    )
    score: int = attrs.field(validator=_score_in_scale, metadata={"csmcore.range": (1, 10)})
    kind: SurveyKind = attrs.field(default=SurveyKind.CSAT, converter=_to_kind)
    comment: str | None = attrs.field(default=None, validator=_optional_comment)

    def fold(self, state: TicketState) -> TicketState:
        """A rating changes nothing of the ticket's state (the KPIs read it from the history)."""
        return state


@attrs.frozen(kw_only=True)
class NpsAnswer:
    """One answer to "how likely are you to recommend us" (0..10), by ``customer`` at ``at``."""

    customer: str = attrs.field()
    score: int = attrs.field(validator=_whole("score", 0, 10))
    at: datetime = attrs.field()

    @customer.validator
    def _check_customer(self, _: object, value: object) -> None:
        if not isinstance(value, str):
            raise InvalidType(
                f"customer={value!r} ({type(value).__name__}) is not text",
                field="customer",
                value=value,
            )
        check_text(value, "customer")

    @at.validator
    def _check_at(self, _: object, value: object) -> None:
        if not isinstance(value, datetime):
            raise InvalidType(
                f"at={value!r} ({type(value).__name__}) is not a datetime",
                field="at",
                value=value,
            )
        require_aware(value, "at")


def nps_answers(answers: Iterable[NpsAnswer | tuple[str, int, datetime]]) -> Iterator[NpsAnswer]:
    """Each item of ``answers`` as an :class:`NpsAnswer`; plain ``(customer, score, instant)``
    tuples are accepted. Raises ValidationError (naming the item's position) for an item that is
    neither.

    >>> from datetime import datetime, timezone
    >>> [a.score for a in nps_answers([("acme", 9, datetime(2025, 1, 1, tzinfo=timezone.utc))])]
    [9]
    """
    for position, item in enumerate(answers):
        if isinstance(item, NpsAnswer):
            yield item
            continue
        if not isinstance(item, tuple) or len(item) != 3:
            raise InvalidType(
                f"answers[{position}]={item!r} is not an NpsAnswer or a (customer, score, "
                "instant) tuple",
                field=f"answers[{position}]",
                value=item,
            )
        customer, score, at = item
        yield NpsAnswer(customer=customer, score=score, at=at)
