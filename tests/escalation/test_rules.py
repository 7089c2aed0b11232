"""Building rules: validation with clear messages, serialization round-trips, the registry."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, ClassVar

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore.calendars import BusinessCalendar
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


UTC = timezone.utc
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


def test_levels_on_different_clocks_are_each_on_their_own() -> None:
    # Each pair here was refused before (its numbers decrease or repeat), yet either level can
    # fire first: one wall hour after a breach at Tuesday 10:00 is 11:00 and 30 business
    # minutes (Mon-Fri 09:00-17:00) 10:30; after a breach at Friday 16:45, Friday 17:45 and
    # Monday 09:15.
    built = EscalationRule(
        name="r",
        condition=Always(),
        levels=[
            level(DueOffset.before("t", 10 * M, business_hours=True)),
            level(DueOffset.before("t", H)),
            level(DueOffset.after("t", H)),
            level(DueOffset.after("t", 30 * M, business_hours=True)),
            level(DueOffset.after("t", 20 * M, business_hours=True, calendar="de")),
            level(DueOffset.after("t", 10 * M, business_hours=True, calendar="fr")),
            level(ConditionHeld(duration=H)),
            level(ConditionHeld(duration=30 * M, business_hours=True)),
            level(ConditionHeld(duration=20 * M, business_hours=True, calendar="de")),
        ],
    )
    assert len(built.levels) == 9


def test_a_wall_span_then_a_business_span_as_long_are_two_instants() -> None:
    # One business hour after the breach ends with one wall hour only when the calendar is
    # open all the while: no repeat.
    EscalationRule(
        name="r",
        condition=Always(),
        levels=[
            level(DueOffset.after("t", H)),
            level(DueOffset.after("t", H, business_hours=True)),
        ],
    )
    EscalationRule(
        name="r",
        condition=Always(),
        levels=[
            level(DueOffset.before("t", H, business_hours=True)),
            level(DueOffset.before("t", H)),
            level(ConditionHeld(duration=H)),
            level(ConditionHeld(duration=H, business_hours=True)),
        ],
    )


def test_the_default_calendar_and_a_named_one_are_different_clocks() -> None:
    # Which calendar the book's default is, is not known when the rule is built.
    EscalationRule(
        name="r",
        condition=Always(),
        levels=[
            level(DueOffset.after("t", H, business_hours=True, calendar="office")),
            level(DueOffset.after("t", H, business_hours=True)),
        ],
    )


@pytest.mark.parametrize(
    ("triggers", "expected"),
    [
        (
            [
                DueOffset.after("t", H, business_hours=True),
                DueOffset.after("t", 2 * H),
                DueOffset.after("t", 30 * M, business_hours=True),
            ],
            r"levels\[2\]: offset datetime.timedelta\(seconds=1800\) in business time of the "
            r"book's default calendar is below levels\[0\] \(offset datetime.timedelta\("
            r"seconds=3600\) in business time of the book's default calendar\); levels of one "
            r"kind and target on one clock",
        ),
        (
            [
                DueOffset.after("t", 30 * M),
                DueOffset.after("t", 10 * M, business_hours=True, calendar="de"),
                DueOffset.after("t", 30 * M),
            ],
            r"levels\[2\]: offset .*1800.* in wall time repeats levels\[0\] .*in wall time",
        ),
        (
            [
                DueOffset.before("t", H, business_hours=True, calendar="de"),
                DueOffset.before("t", 2 * H, business_hours=True, calendar="de"),
            ],
            r"levels\[1\]: offset .* in business time of calendar 'de' is below levels\[0\]",
        ),
        (
            [
                ConditionHeld(duration=H, business_hours=True),
                ConditionHeld(duration=2 * H),
                ConditionHeld(duration=H, business_hours=True),
            ],
            r"levels\[2\]: duration .* repeats levels\[0\]",
        ),
    ],
)
def test_levels_on_one_clock_must_still_increase(triggers: list[Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected) as caught:
        EscalationRule(name="r", condition=Always(), levels=[level(t) for t in triggers])
    assert caught.value.field == f"levels[{len(triggers) - 1}]"


@pytest.mark.parametrize(
    "clocks",
    [
        ({}, {"business_hours": True}),
        ({"business_hours": True}, {}),
        ({"business_hours": True, "calendar": "de"}, {"business_hours": True, "calendar": "fr"}),
    ],
)
def test_a_zero_offset_is_the_breach_on_every_clock(clocks: tuple[Any, Any]) -> None:
    # Zero of any clock after the breach is the breach itself: the same instant twice.
    first, second = clocks
    with pytest.raises(
        ValidationError,
        match=r"levels\[1\]: offset .* repeats levels\[0\] .*; an offset of zero is the breach",
    ):
        EscalationRule(
            name="r",
            condition=Always(),
            levels=[
                level(DueOffset.after("t", **first)),
                level(DueOffset.after("t", **second)),
            ],
        )
    # on another target it is another instant
    EscalationRule(
        name="r",
        condition=Always(),
        levels=[level(DueOffset.after("t", **first)), level(DueOffset.after("u", **second))],
    )


@pytest.mark.parametrize(
    ("triggers", "expected"),
    [
        # before the due time, on any clock, comes before the breach and what follows it
        (
            [DueOffset.after("t", H, business_hours=True), DueOffset.before("t", 30 * M)],
            r"levels\[1\]: offset .* in wall time is below levels\[0\]",
        ),
        (
            [DueOffset.after("t", business_hours=True), DueOffset.before("t", 30 * M)],
            r"levels\[1\]: offset .* is below levels\[0\]",
        ),
        (
            [DueOffset.after("t", 10 * M), DueOffset.after("t", business_hours=True)],
            r"levels\[1\]: offset datetime.timedelta\(0\) in business time .* is below "
            r"levels\[0\]",
        ),
        (
            [
                DueOffset.before("t", 10 * M),
                DueOffset.after("t", H, business_hours=True, calendar="de"),
                DueOffset.before("t", 2 * H, business_hours=True),
            ],
            r"levels\[2\]: offset .* is below levels\[1\] \(offset .* calendar 'de'\); on any "
            r"clock an offset before the due time",
        ),
    ],
)
def test_offsets_of_different_signs_are_ordered_on_any_clock(
    triggers: list[Any], expected: str
) -> None:
    with pytest.raises(ValidationError, match=expected):
        EscalationRule(name="r", condition=Always(), levels=[level(t) for t in triggers])
    # in increasing order they are accepted
    EscalationRule(
        name="r",
        condition=Always(),
        levels=[level(t) for t in sorted(triggers, key=lambda t: t.offset)],
    )


@pytest.mark.parametrize(
    ("triggers", "expected"),
    [
        # 30 wall minutes after the breach come before one business hour on every ticket
        (
            [DueOffset.after("t", H, business_hours=True), DueOffset.after("t", 30 * M)],
            r"levels\[1\]: offset datetime.timedelta\(seconds=1800\) in wall time never fires "
            r"after levels\[0\] \(offset datetime.timedelta\(seconds=3600\) in business time "
            r"of the book's default calendar\); business time never runs faster than wall time",
        ),
        (
            [DueOffset.after("t", H, business_hours=True, calendar="de"), DueOffset.after("t", H)],
            r"levels\[1\]: offset .* in wall time never fires after levels\[0\]",
        ),
        # one business hour before the due time comes before 30 wall minutes before it
        (
            [DueOffset.before("t", 30 * M), DueOffset.before("t", H, business_hours=True)],
            r"levels\[1\]: offset .* in business time .* never fires after levels\[0\] "
            r"\(offset .* in wall time\); business time never runs faster than wall time, so "
            r"counted back",
        ),
        (
            [DueOffset.before("t", H), DueOffset.before("t", H, business_hours=True)],
            r"levels\[1\]: offset .* never fires after levels\[0\]",
        ),
        (
            [ConditionHeld(duration=2 * H, business_hours=True), ConditionHeld(duration=H)],
            r"levels\[1\]: duration .* in wall time never fires after levels\[0\]",
        ),
    ],
)
def test_business_time_never_runs_faster_than_wall_time(triggers: list[Any], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected) as caught:
        EscalationRule(name="r", condition=Always(), levels=[level(t) for t in triggers])
    assert caught.value.field == "levels[1]"
    # the other way round they are in order
    EscalationRule(name="r", condition=Always(), levels=[level(t) for t in reversed(triggers)])


CLOCKS: list[dict[str, Any]] = [
    {},
    {"business_hours": True},
    {"business_hours": True, "calendar": "de"},
    {"business_hours": True, "calendar": "fr"},
]
MINUTES = st.integers(-2 * 24 * 60, 2 * 24 * 60)


def offsets(target: str, minutes: list[int], clock: dict[str, Any]) -> list[EscalationLevel]:
    return [level(DueOffset(target=target, offset=m * M, **clock)) for m in minutes]


@given(
    clock=st.sampled_from(CLOCKS),
    minutes=st.lists(MINUTES, min_size=1, max_size=6, unique=True).map(sorted),
    data=st.data(),
)
def test_increasing_offsets_on_one_clock_are_accepted_and_a_repeat_is_refused(
    clock: dict[str, Any], minutes: list[int], data: st.DataObject
) -> None:
    EscalationRule(name="r", condition=Always(), levels=offsets("t", minutes, clock))
    # any earlier offset again at a later place: refused, naming the level
    i = data.draw(st.integers(0, len(minutes) - 1), label="repeated")
    j = data.draw(st.integers(i + 1, len(minutes)), label="at")
    again = [*minutes[:j], minutes[i], *minutes[j:]]
    what = "repeats" if i == j - 1 else "is below"
    with pytest.raises(ValidationError, match=rf"levels\[{j}\]: .* {what} levels\[{j - 1}\]"):
        EscalationRule(name="r", condition=Always(), levels=offsets("t", again, clock))


@given(
    clocks=st.lists(st.sampled_from(CLOCKS[1:]), min_size=2, max_size=2, unique_by=repr),
    sign=st.sampled_from([-1, 1]),
    minutes=st.lists(
        st.lists(st.integers(1, 2 * 24 * 60), max_size=4, unique=True).map(sorted),
        min_size=2,
        max_size=2,
    ),
    data=st.data(),
)
def test_offsets_of_one_sign_on_two_calendars_interleave_freely(
    clocks: list[dict[str, Any]], sign: int, minutes: list[list[int]], data: st.DataObject
) -> None:
    # each calendar's offsets increase; between two calendars any order is accepted
    queues = [
        offsets("t", [sign * m for m in sorted(ms, reverse=sign < 0)], clock)
        for clock, ms in zip(clocks, minutes, strict=True)
    ]
    merged: list[EscalationLevel] = []
    while queues[0] or queues[1]:
        side = data.draw(st.sampled_from([k for k in (0, 1) if queues[k]]))
        merged.append(queues[side].pop(0))
    if merged:
        EscalationRule(name="r", condition=Always(), levels=merged)


@given(
    st.lists(
        st.tuples(MINUTES, st.sampled_from(["t", "u"]), st.sampled_from(CLOCKS)),
        min_size=1,
        max_size=6,
        unique_by=lambda x: x[0],
    )
)
def test_what_earlier_releases_accepted_is_still_accepted(
    drawn: list[tuple[int, str, dict[str, Any]]],
) -> None:
    # Earlier releases asked the offsets of one target to increase whatever their clocks: any
    # such rule, as stored then, still builds.
    levels = [
        level(DueOffset(target=target, offset=m * M, **clock))
        for m, target, clock in sorted(drawn, key=lambda x: x[0])
    ]
    EscalationRule(name="r", condition=Always(), levels=levels)


# Calendars the clocks "de" and the book's default can stand for (the rule does not know which).
ALWAYS = BusinessCalendar.always(timezone="UTC")
OFFICE = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC")
EVENINGS = BusinessCalendar(
    timezone="Europe/Berlin", hours={"tue": [("22:00", "02:00")], "sat": [("10:00", "12:00")]}
)
# A breach at a closing time (Friday 17:00) and at an opening (Monday 09:00), 2025-01-10/13.
WITNESSES = [datetime(2025, 1, 10, 17, tzinfo=UTC), datetime(2025, 1, 13, 9, tzinfo=UTC)]


def _instant(
    trigger: DueOffset, calendars: dict[str | None, BusinessCalendar], due: datetime
) -> datetime:
    if not trigger.business_hours:
        return due + trigger.offset
    return calendars[trigger.calendar].add(due, trigger.offset)


@given(
    pair=st.lists(st.tuples(MINUTES, st.sampled_from(CLOCKS[:3])), min_size=2, max_size=2),
    due=st.integers(0, 14 * 24 * 60).map(lambda m: datetime(2025, 1, 6, tzinfo=UTC) + m * M),
)
def test_a_level_is_refused_exactly_when_it_can_never_fire_after_the_one_before(
    pair: list[tuple[int, dict[str, Any]]], due: datetime
) -> None:
    # Refused: on every calendar the clocks can stand for and at every due time, the second
    # level's instant is at or before the first's. Accepted: it comes after on one of them.
    earlier, later = (DueOffset(target="t", offset=m * M, **clock) for m, clock in pair)
    try:
        EscalationRule(name="r", condition=Always(), levels=[level(earlier), level(later)])
        refused = False
    except ValidationError:
        refused = True
    choices = [ALWAYS, OFFICE, EVENINGS]
    cases = [
        ({None: a, "de": b}, when)
        for a, b in itertools.product(choices, choices)
        for when in [due, *WITNESSES]
    ]
    after = [_instant(later, c, when) > _instant(earlier, c, when) for c, when in cases]
    if refused:
        assert not any(after)
    else:
        assert any(after)


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
