"""Subjects and dispatch: a subject registered outside csmcore.conditions is matched by the
unchanged condition classes; a new node kind plugs into the codec through the registry; walkers
dispatch on the node class."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from operator import attrgetter
from typing import Any

import attrs
import pytest
from hypothesis import given

from csmcore.conditions import (
    FIELDS,
    All,
    Always,
    Compare,
    Condition,
    ConditionVisitor,
    Eq,
    HasTags,
    In,
    Never,
    Not,
    Subject,
    SubjectField,
    field_kind,
    register_condition_codec,
    register_subject,
    resolve_field,
    structure_condition,
    unregister_subject,
    unstructure_condition,
    walk,
)
from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.tickets import TICKET_SUBJECT, Priority, Ticket
from tests.tickets.support import tickets as _tickets


class Tier(enum.StrEnum):
    BRONZE = "bronze"
    SILVER = "silver"
    GOLD = "gold"


_RANK = {t: i for i, t in enumerate(Tier)}


@attrs.frozen
class Member:
    tier: Tier
    points: int


@pytest.fixture
def member_subject() -> Iterator[None]:
    """A subject the way a loyalty package would declare it, with names of its own."""
    register_subject(
        Subject(
            "test_member",
            [
                SubjectField(
                    "test_member.tier", "enum", attrgetter("tier"), values=Tier, order=_RANK.get
                ),
                SubjectField("test_member.active", "bool", lambda m: m.points > 0),
            ],
        )
    )
    yield
    unregister_subject("test_member")


@pytest.mark.usefixtures("member_subject")
def test_a_registered_subject_is_matched_by_the_unchanged_condition_classes() -> None:
    gold = Member(tier=Tier.GOLD, points=3)
    assert Eq("test_member.tier", "gold").matches(gold)
    assert Eq("test_member.tier", "gold").value is Tier.GOLD
    assert In("test_member.tier", ["silver", "gold"]).matches(gold)
    assert Compare("test_member.tier", ">", "silver").matches(gold)
    assert not Compare("test_member.tier", "<", Tier.BRONZE).matches(gold)
    assert Eq("test_member.active", True).matches(gold)
    assert field_kind("test_member.tier") == "enum"
    with pytest.raises(ValidationError, match=r"value='platinum' is not a test_member\.tier value"):
        Eq("test_member.tier", "platinum")
    data = to_data(Eq("test_member.tier", Tier.SILVER))
    assert data == {"op": "eq", "field": "test_member.tier", "value": "silver"}
    assert from_data(data, Condition) == Eq("test_member.tier", "silver")


@pytest.mark.usefixtures("member_subject")
def test_the_ticket_fields_stay_as_they_were() -> None:
    assert dict(FIELDS) == {f.name: f.kind for f in TICKET_SUBJECT.fields.values()}
    assert "test_member.tier" not in FIELDS
    assert resolve_field("priority").values is Priority
    assert Compare("priority", ">=", "high").value is Priority.HIGH
    with pytest.raises(ValidationError, match="comparisons are accepted on 'priority'"):
        Compare("status", ">", "open")


def test_a_field_name_belongs_to_one_subject() -> None:
    with pytest.raises(ValidationError, match="already belongs to subject 'ticket'"):
        register_subject(Subject("test_clash", [SubjectField("status", "str", str)]))
    with pytest.raises(ValidationError, match="kind='number' is not a field kind"):
        SubjectField("x", "number", str)


def test_walk_and_children_reach_every_node() -> None:
    tree = All(Not(Eq("status", "open")), HasTags({"vip"}), Always())
    assert [type(c).__name__ for c in walk(tree)] == ["All", "Not", "Eq", "HasTags", "Always"]
    assert tree.children[1].children == ()


def test_a_visitor_finds_the_handler_of_the_class_or_a_base() -> None:
    depth = ConditionVisitor[int]("depth", default=lambda node: 0)

    @depth.register(All, Not)
    def _(node: Any) -> int:
        return 1 + max((depth(c) for c in node.children), default=0)

    assert depth(Not(All(Never(), Not(Always())))) == 3
    strict = ConditionVisitor[int]("strict")
    with pytest.raises(ValidationError, match="strict: no handler for Never"):
        strict(Never())


@attrs.frozen
class Rare(Condition):
    """A new node kind: matches everything, serialised as {"op": "test_rare", "why": ...}."""

    why: str
    data_op = "test_rare"

    def matches(self, ticket: Any) -> bool:
        return True


def test_a_new_node_kind_registers_its_codec() -> None:
    with pytest.raises(SerializationError, match="only the built-in condition classes"):
        unstructure_condition(Rare("x"))
    register_condition_codec(
        Rare,
        keys=("why",),
        encode=lambda c: {"op": "test_rare", "why": c.why},
        decode=lambda d, p: Rare(d["why"]),
    )
    data = to_data(All(Rare("x")))
    assert data == {"op": "all", "conditions": [{"op": "test_rare", "why": "x"}]}
    assert structure_condition(data) == All(Rare("x"))
    with pytest.raises(SerializationError, match=r"\$.conditions\[0\].why: required field"):
        structure_condition({"op": "all", "conditions": [{"op": "test_rare"}]})


@given(_tickets())
def test_the_ticket_stays_directly_matchable(ticket: Ticket) -> None:
    assert Eq("status", ticket.status.value).matches(ticket)
    assert HasTags(ticket.tags).matches(ticket)
    assert Eq("merged", ticket.merged_into is not None).matches(ticket)
