"""The loyalty member as a subject of conditions: declared once, found by the registry."""

from __future__ import annotations

import pytest

from csmcore.conditions import Field, In, resolve_field, subjects
from csmcore.errors import ValidationError
from csmcore.loyalty import MEMBER_SUBJECT, LoyaltyMember
from csmcore.serialization import from_data, to_data

GOLD = LoyaltyMember(
    member_id="C-1", tier="gold", tier_rank=2, points=1200, pending=80, lifetime=9000
)
NOBODY = LoyaltyMember(member_id="C-2")


def test_the_member_subject_is_registered_with_its_fields() -> None:
    assert MEMBER_SUBJECT in subjects()
    assert {name: resolve_field(name).kind for name in MEMBER_SUBJECT.fields} == {
        "member.id": "str",
        "member.tier": "str",
        "member.tier_rank": "custom",
        "member.points": "custom",
        "member.pending": "custom",
        "member.lifetime": "custom",
    }


def test_conditions_read_tier_and_balances() -> None:
    is_gold = Field("member.tier") == "gold"
    assert is_gold.matches(GOLD)
    assert not is_gold.matches(NOBODY)
    assert In("member.tier", ["gold", "platinum"]).matches(GOLD)
    silver_or_better = Field("member.tier_rank") >= 1
    assert silver_or_better.matches(GOLD)
    assert not silver_or_better.matches(NOBODY)
    rich = (Field("member.points") > 1000) & (Field("member.lifetime") >= 9000)
    assert rich.matches(GOLD)
    assert not rich.matches(NOBODY)
    assert (Field("member.pending") == 80).matches(GOLD)


def test_member_conditions_round_trip_through_data() -> None:
    cond = (Field("member.tier") == "gold") | (Field("member.points") >= 500)
    assert from_data(to_data(cond), type(cond)) == cond
    assert from_data(to_data(GOLD), LoyaltyMember) == GOLD


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"member_id": ""}, "member_id="),
        ({"member_id": "C-1", "tier": "gold"}, "rank 0 means no tier"),
        ({"member_id": "C-1", "tier_rank": 2}, "rank 0 means no tier"),
        ({"member_id": "C-1", "pending": -1}, "pending=-1 must be zero or more"),
        ({"member_id": "C-1", "points": 1.5}, "points=1.5"),
    ],
)
def test_bad_members_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LoyaltyMember(**kwargs)  # type: ignore[arg-type]


def test_an_unknown_member_field_names_the_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"member\.tier"):
        Field("member.teir") == "gold"  # noqa: B015
