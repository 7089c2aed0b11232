"""The loyalty member as a subject of conditions: its tier and balances, registered with
:mod:`csmcore.conditions` on import, so a condition can say ``Field("member.tier") == "gold"``
or ``Field("member.points") >= 500``.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any, Final

import attrs

from csmcore._values import check_identifier
from csmcore.conditions import Subject, SubjectField, register_subject
from csmcore.errors import ValidationError, invalid_type
from csmcore.serialization import serializable

__all__ = ["MEMBER_SUBJECT", "LoyaltyMember"]


def _count(_: object, attribute: Any, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(attribute.name, value, "a whole number of points (an int)")
    if value < 0 and attribute.name != "points":
        raise ValidationError(
            f"{attribute.name}={value!r} must be zero or more", field=attribute.name, value=value
        )


@serializable("loyalty.member", aliases=("csmcore.loyalty:LoyaltyMember",))
@attrs.frozen(kw_only=True)
class LoyaltyMember:
    """What conditions read of a loyalty member at an instant: ``tier`` (None: no tier),
    its ``tier_rank`` (0 for none, 1 for the lowest tier...), and the balances in points:
    ``points`` (active, spendable; negative only in a negative-balance bucket), ``pending``
    and ``lifetime`` (everything ever earned). Build one with
    :func:`csmcore.services.loyalty_member` from a ledger, or by hand.

    >>> from csmcore.conditions import Field
    >>> gold = LoyaltyMember(member_id="C-1", tier="gold", tier_rank=3, points=1200)
    >>> (Field("member.tier") == "gold").matches(gold)
    True
    >>> (Field("member.points") >= 1500).matches(gold)
    False
    """

    member_id: str = attrs.field()
    tier: str | None = attrs.field(default=None)
    tier_rank: int = attrs.field(default=0, validator=_count)
    points: int = attrs.field(default=0, validator=_count)
    pending: int = attrs.field(default=0, validator=_count)
    lifetime: int = attrs.field(default=0, validator=_count)

    @member_id.validator
    def _check_id(self, _: Any, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise invalid_type("member_id", value, "a non-empty string")
        check_identifier(value, "member_id")

    @tier.validator
    def _check_tier(self, _: Any, value: object) -> None:
        if value is not None and not isinstance(value, str):
            raise invalid_type("tier", value, "a tier name (a string) or None")
        if (value is None) != (self.tier_rank == 0):
            raise ValidationError(
                f"tier={value!r} with tier_rank={self.tier_rank!r}: rank 0 means no tier, "
                "and a tier has a rank of 1 or more",
                field="tier_rank",
                value=self.tier_rank,
            )


def _member_of(subject: object) -> LoyaltyMember | None:
    """The member a condition reads: the subject itself, or the ``loyalty_member`` a subject
    carries (an escalation view of a ticket whose requester is a member); None for a subject
    without one (a plain ticket): every member field then reads None."""
    if type(subject) is LoyaltyMember:
        return subject
    found = getattr(subject, "loyalty_member", None)
    return found if isinstance(found, LoyaltyMember) else None


def _reader(name: str) -> Callable[[object], Any]:
    get = attrgetter(name)

    def read(subject: object) -> Any:
        member = _member_of(subject)
        return None if member is None else get(member)

    return read


MEMBER_SUBJECT: Final = Subject(
    "loyalty_member",
    [
        SubjectField("member.id", "str", _reader("member_id")),
        SubjectField("member.tier", "str", _reader("tier")),
        SubjectField("member.tier_rank", "custom", _reader("tier_rank")),
        SubjectField("member.points", "custom", _reader("points")),
        SubjectField("member.pending", "custom", _reader("pending")),
        SubjectField("member.lifetime", "custom", _reader("lifetime")),
    ],
)
"""The loyalty member's fields: ``member.id`` and ``member.tier`` (strings: ``==``, ``in``),
``member.tier_rank``, ``member.points``, ``member.pending`` and ``member.lifetime`` (numbers:
``==``, ``in``, ``<``, ``<=``, ``>``, ``>=``). They read a :class:`LoyaltyMember`, or the
``loyalty_member`` of another subject (an escalation view: see
:class:`csmcore.escalation.EscalationView`); a subject without one reads None."""

register_subject(MEMBER_SUBJECT)
