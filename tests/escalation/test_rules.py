"""Building rules: validation with clear messages, serialization round-trips, the registry."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import pytest

from csmcore.conditions import Always, Eq, Field, In
from csmcore.errors import SerializationError, ValidationError
from csmcore.escalation import (
    ActionContext,
    ActionResult,
    AddNote,
    AddTags,
    Assign,
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    Notify,
    PercentUsed,
    RemoveTags,
    SetPriority,
    SetStatus,
    action,
    actions,
)
from csmcore.serialization import from_data, from_document, tag_of, to_data, to_document
from csmcore.tickets import Ticket
from tests.escalation.support import H, M

EVERY_ACTION = [
    SetPriority(priority="urgent"),
    Assign(agent="bob"),
    Assign(group="L2"),
    AddTags(tags={"late", "vip"}),
    RemoveTags(tags="calm"),
    SetStatus(status="open"),
    AddNote(text="escalated"),
    Notify(channel="email", recipient="$assignee", template="warn", data={"n": 1, "x": "y"}),
    Notify(channel="slack", recipient="#ops", template="t", business_hours=True, calendar="de"),
]


def full_rule() -> EscalationRule:
    return EscalationRule(
        name="everything",
        version=3,
        description="all triggers and actions",
        condition=(Field("priority") >= "high") & (Field("sla.first_reply.percent") > 10),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=50), actions=EVERY_ACTION
            ),
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent="75.5"),
                actions=[AddTags(tags="a")],
            ),
            EscalationLevel(
                trigger=DueOffset.before("first_reply", H), actions=[AddTags(tags="b")]
            ),
            EscalationLevel(
                trigger=DueOffset.after("first_reply", 2 * H, business_hours=True, calendar="de"),
                actions=[AddTags(tags="c")],
            ),
            EscalationLevel(
                trigger=ConditionHeld(duration=30 * M, condition=Eq("assignee", None)),
                actions=[AddTags(tags="d")],
            ),
        ],
    )


def test_rules_round_trip_through_data_and_documents() -> None:
    rule = full_rule()
    data = json.loads(json.dumps(to_data(rule)))
    assert from_data(data, EscalationRule) == rule
    doc = json.loads(json.dumps(to_document(rule)))
    assert doc["type"] == "escalation_rule"
    assert doc["schema"] == 1
    assert from_document(doc, EscalationRule) == rule
    assert data["levels"][0]["trigger"] == {
        "kind": "percent",
        "target": "first_reply",
        "percent": "50",
    }
    assert data["levels"][0]["actions"][0] == {"action": "set_priority", "priority": "urgent"}


def test_stable_tags() -> None:
    assert tag_of(EscalationRule) == "escalation_rule"
    assert tag_of(SetPriority) == "escalation.action.set_priority"
    assert tag_of(PercentUsed) == "escalation.trigger.percent"
    assert {
        "set_priority",
        "assign",
        "add_tags",
        "remove_tags",
        "set_status",
        "add_note",
        "notify",
    } <= set(actions())


def test_an_unknown_action_in_data_names_the_known_ones_and_the_path() -> None:
    data = to_data(full_rule())
    data["levels"][1]["actions"][0] = {"action": "page_the_ceo", "who": "x"}
    with pytest.raises(SerializationError) as caught:
        from_data(data, EscalationRule)
    text = str(caught.value)
    assert "$.levels[1].actions[0].action" in text
    assert "'page_the_ceo'" in text
    assert "set_priority" in text
    assert "notify" in text


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("levels", 0, "trigger", "kind"), "sometime", "$.levels[0].trigger.kind"),
        (("levels", 0, "trigger", "percent"), "0", "percent"),
        (("levels", 0, "trigger", "percent"), "1000.5", "outside (0, 1000]"),
        (("levels", 0, "actions", 0, "priority"), "hgh", "$.levels[0].actions[0]"),
        (("levels", 2, "trigger", "offset"), "soon", "$.levels[2].trigger"),
        (("name",), "", "name"),
    ],
)
def test_bad_data_names_the_path(path: tuple[Any, ...], value: object, expected: str) -> None:
    data = to_data(full_rule())
    place: Any = data
    for step in path[:-1]:
        place = place[step]
    place[path[-1]] = value
    with pytest.raises(SerializationError, match=None) as caught:
        from_data(data, EscalationRule)
    assert expected in str(caught.value)


def test_unknown_keys_are_refused() -> None:
    data = to_data(full_rule())
    data["colour"] = "red"
    with pytest.raises(SerializationError, match="colour"):
        from_data(data, EscalationRule)


NOTHING: Any = None
SOON: Any = "soon"


def level(trigger: Any) -> EscalationLevel:
    return EscalationLevel(trigger=trigger, actions=[AddTags(tags="x")])


@pytest.mark.parametrize(
    ("triggers", "expected"),
    [
        (
            [PercentUsed(target="t", percent=75), PercentUsed(target="t", percent=50)],
            r"levels\[1\]: percent 50 is below levels\[0\]",
        ),
        ([DueOffset.after("t", H), DueOffset.after("t", H)], r"levels\[1\]: offset .* repeats"),
        ([ConditionHeld(duration=H), ConditionHeld(duration=M)], r"levels\[1\]: duration"),
    ],
)
def test_levels_must_increase(triggers: list[Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        EscalationRule(name="r", condition=Always(), levels=[level(t) for t in triggers])


def test_levels_on_different_targets_or_kinds_are_independent() -> None:
    EscalationRule(
        name="r",
        condition=Always(),
        levels=[
            level(PercentUsed(target="a", percent=75)),
            level(PercentUsed(target="b", percent=50)),
            level(DueOffset.before("a", H)),
        ],
    )


@pytest.mark.parametrize("percent", [0, -5, 1000.01, 5000, float("nan"), "lots", True, None])
def test_percent_outside_the_range_is_refused(percent: object) -> None:
    with pytest.raises(ValidationError, match="percent"):
        PercentUsed(target="t", percent=percent)


def test_percent_bounds_are_accepted() -> None:
    assert PercentUsed(target="t", percent=1000).percent == Decimal(1000)
    assert PercentUsed(target="t", percent=0.5).percent == Decimal("0.5")


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: EscalationRule(name="r", condition=Always(), levels=[]), "levels=()"),
        (
            lambda: EscalationRule(
                name="r", condition=NOTHING, levels=[level(ConditionHeld(duration=H))]
            ),
            "condition",
        ),
        (
            lambda: EscalationRule(
                name=" r", condition=Always(), levels=[level(ConditionHeld(duration=H))]
            ),
            "name",
        ),
        (
            lambda: EscalationRule(
                name="r", condition=Always(), version=0, levels=[level(ConditionHeld(duration=H))]
            ),
            "version",
        ),
        (
            lambda: EscalationLevel(trigger=PercentUsed(target="t", percent=5), actions=[]),
            "actions=()",
        ),
        (
            lambda: EscalationLevel(trigger=PercentUsed(target="t", percent=5), actions=["notify"]),
            r"actions\[0\]",
        ),
        (lambda: EscalationLevel(trigger=SOON, actions=[AddTags(tags="x")]), "trigger"),
        (lambda: ConditionHeld(duration=timedelta(0)), "positive"),
        (lambda: ConditionHeld(duration=H, calendar="de"), "business_hours=True"),
        (lambda: DueOffset.before("t", -H), "positive"),
        (lambda: DueOffset.after("t", -H), "negative"),
        (lambda: Assign(), "agent"),
        (lambda: Notify(channel="email", recipient="$boss", template="t"), r"\$assignee"),
        (lambda: AddTags(tags=()), "empty"),
        (lambda: SetPriority(priority="hgh"), "priority"),
        (
            lambda: Notify(channel="email", recipient="a", template="t", data={"x": object()}),
            "data",
        ),
    ],
)
def test_bad_values_are_refused_when_built(build: Any, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        build()


def test_equality_on_a_moving_sla_number_is_refused() -> None:
    with pytest.raises(ValidationError, match="compare it with"):
        EscalationRule(
            name="r",
            condition=Eq("sla.first_reply.percent", 75),
            levels=[level(ConditionHeld(duration=H))],
        )
    with pytest.raises(ValidationError, match="compare it with"):
        ConditionHeld(duration=H, condition=In("sla.max_percent", [1, 2]))


def test_an_unknown_sla_attribute_names_the_accepted_ones() -> None:
    with pytest.raises(ValidationError, match="remaining_minutes"):
        Field("sla.first_reply.colour")


def test_a_new_action_is_one_declaration() -> None:
    @action("test_escalate_to_the_moon")
    @attrs.frozen(kw_only=True)
    class ToTheMoon:
        name: ClassVar[str]
        how_far: int

        def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
            return ActionResult(ticket=ticket, requests=(("moon", self.how_far),))

    assert "test_escalate_to_the_moon" in actions()
    rule = EscalationRule(
        name="r",
        condition=Always(),
        levels=[EscalationLevel(trigger=ConditionHeld(duration=H), actions=[ToTheMoon(how_far=3)])],
    )
    data = json.loads(json.dumps(to_data(rule)))
    assert data["levels"][0]["actions"] == [{"action": "test_escalate_to_the_moon", "how_far": 3}]
    assert from_data(data, EscalationRule) == rule
    with pytest.raises(ValidationError, match="already taken"):
        action("set_priority")(ToTheMoon)


def test_sla_fields_read_none_on_a_plain_ticket() -> None:
    from csmcore.storage import open_store
    from tests.escalation.support import at, new

    ticket = new(at(6, 9))
    assert not (Field("sla.max_percent") > 5).matches(ticket)
    assert not Eq("sla.any_breached", True).matches(ticket)
    assert Eq("sla.first_reply.state", None).matches(ticket)
    store = open_store("memory://")
    store.tickets.add(ticket)
    assert store.tickets.find(Field("sla.first_reply.percent") > 1) == []
