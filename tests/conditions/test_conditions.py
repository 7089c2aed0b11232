"""Conditions: examples of every leaf and combinator, build-time validation, serialization,
and Hypothesis properties (negation, De Morgan, round trips)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore.conditions import (
    FIELDS,
    All,
    Always,
    AnyOf,
    Compare,
    Condition,
    Eq,
    Field,
    HasTags,
    In,
    Never,
    Not,
    field_kind,
)
from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.tickets import Channel, Priority, Role, Status, Ticket
from tests.tickets.support import FIELD_NAMES, GROUPS, PEOPLE, TAGS, storable_text, tickets

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def make_ticket(**overrides: Any) -> Ticket:
    kwargs: dict[str, Any] = {
        "at": T0,
        "ticket_id": "T-1",
        "created_by": Role.REQUESTER,
        "channel": Channel.EMAIL,
        "priority": Priority.HIGH,
        "requester": "ada",
        "subject": "Refund",
        "group": "billing",
        "tags": {"vip", "de"},
        "fields": {"plan": "gold", "seats": 12, "beta": True, "score": 4.5},
    }
    kwargs.update(overrides)
    return Ticket.create(**kwargs)[0]


TICKET = make_ticket()


# --- leaves ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (Eq("status", "new"), True),
        (Eq("status", Status.OPEN), False),
        (Eq("status_name", "new"), True),
        (Eq("priority", "high"), True),
        (Eq("channel", Channel.WEB), False),
        (Eq("created_by", "requester"), True),
        (Eq("group", "billing"), True),
        (Eq("assignee", None), True),
        (Eq("assignee", "grace"), False),
        (Eq("requester", "ada"), True),
        (Eq("subject", "Refund"), True),
        (Eq("merged", False), True),
        (Eq("merged", True), False),
        (Eq("fields.plan", "gold"), True),
        (Eq("fields.seats", 12.0), True),  # numbers compare as numbers
        (Eq("fields.beta", 1), False),  # ...but a bool is not a number
        (Eq("fields.beta", True), True),
        (Eq("fields.missing", None), True),
        (Eq("fields.plan", None), False),
        (In("priority", ["urgent", "high"]), True),
        (In("priority", []), False),
        (In("group", [None, "tier1"]), False),
        (In("assignee", [None]), True),
        (In("fields.seats", [11, 12]), True),
        (In("fields.beta", [1]), False),
        (In("fields.beta", [True, "x"]), True),
        (Compare("priority", ">=", "high"), True),
        (Compare("priority", ">", "high"), False),
        (Compare("priority", "<", Priority.URGENT), True),
        (Compare("priority", "<=", "low"), False),
        (Compare("fields.seats", ">", 10), True),
        (Compare("fields.score", "<", 4.5), False),
        (Compare("fields.score", "<=", 4.5), True),
        (Compare("fields.plan", ">", "bronze"), True),  # strings compare as strings
        (Compare("fields.plan", ">", 3), False),  # a string never compares with a number
        (Compare("fields.seats", ">", "a"), False),
        (Compare("fields.beta", ">", 0), False),  # a bool is not a number
        (Compare("fields.missing", "<", 100), False),  # unset never matches
        (HasTags({"vip"}), True),
        (HasTags({"vip", "de"}), True),
        (HasTags({"vip", "en"}), False),
        (HasTags("de"), True),
        (HasTags(()), True),
    ],
)
def test_leaf_conditions(condition: Condition, expected: bool) -> None:
    assert condition.matches(TICKET) is expected


def test_conditions_follow_the_ticket_as_it_changes() -> None:
    ticket, _ = TICKET.set_priority(T0, Priority.LOW)
    ticket, _ = ticket.assign(T0, "grace")
    ticket, _ = ticket.tag(T0, remove={"vip"})
    ticket, _ = ticket.set_fields(T0, seats=None)
    assert not Compare("priority", ">=", "high").matches(ticket)
    assert Eq("assignee", "grace").matches(ticket)
    assert not HasTags({"vip"}).matches(ticket)
    assert Eq("fields.seats", None).matches(ticket)
    merged, _ = ticket.merge_into(T0, "T-2")
    assert Eq("merged", True).matches(merged)
    assert Eq("status", "closed").matches(merged)


def test_status_name_reads_custom_names() -> None:
    ticket = make_ticket(status="on-hold", status_name="Awaiting Vendor")
    assert Eq("status_name", "Awaiting Vendor").matches(ticket)
    assert Eq("status", "on-hold").matches(ticket)


def test_leaves_expose_field_operator_and_value() -> None:
    eq = Eq("priority", "high")
    assert (eq.field, eq.operator, eq.value) == ("priority", "==", Priority.HIGH)
    assert eq.value is Priority.HIGH  # enum strings are stored as the member
    within = In("status", ["new", "open"])
    assert (within.field, within.operator) == ("status", "in")
    assert within.values == within.value == frozenset({Status.NEW, Status.OPEN})
    cmp = Compare("priority", ">", "low")
    assert (cmp.field, cmp.op, cmp.operator, cmp.value) == ("priority", ">", ">", Priority.LOW)
    tags = HasTags(["vip"])
    assert (tags.field, tags.operator, tags.value) == ("tags", "has_all", frozenset({"vip"}))


def test_field_kinds() -> None:
    assert dict(FIELDS) == {
        "status": "enum",
        "status_name": "str",
        "priority_name": "str",
        "priority": "enum",
        "channel": "enum",
        "created_by": "enum",
        "group": "str",
        "assignee": "str",
        "requester": "str",
        "subject": "str",
        "tags": "tags",
        "merged": "bool",
    }
    assert field_kind("fields.plan") == "custom"
    with pytest.raises(ValidationError, match=r"field='fields\.' is not a ticket"):
        field_kind("fields.")
    with pytest.raises(TypeError):
        FIELDS["x"] = "str"  # type: ignore[index]


# --- combinators and the builder ---------------------------------------------------------------


def test_combinators() -> None:
    yes, no = Eq("priority", "high"), Eq("priority", "low")
    assert All(yes, yes).matches(TICKET)
    assert not All(yes, no).matches(TICKET)
    assert All().matches(TICKET)
    assert AnyOf(no, yes).matches(TICKET)
    assert not AnyOf(no, no).matches(TICKET)
    assert not AnyOf().matches(TICKET)
    assert Not(no).matches(TICKET)
    assert not Not(yes).matches(TICKET)
    assert Always().matches(TICKET)
    assert not Never().matches(TICKET)


def test_operators_build_flat_combinations() -> None:
    a, b, c = Eq("priority", "high"), HasTags("vip"), Eq("group", "billing")
    assert a & b & c == All(a, b, c)
    assert a | b | c == AnyOf(a, b, c)
    assert (a & b) | c == AnyOf(All(a, b), c)
    assert ~a == Not(a)
    assert ~~a == a


def test_field_builder() -> None:
    assert (Field("priority") == "high") == Eq("priority", Priority.HIGH)
    assert (Field("group") != "x") == Not(Eq("group", "x"))
    assert (Field("priority") < "high") == Compare("priority", "<", "high")
    assert (Field("priority") <= "high") == Compare("priority", "<=", "high")
    assert (Field("fields.seats") > 3) == Compare("fields.seats", ">", 3)
    assert (Field("fields.seats") >= 3) == Compare("fields.seats", ">=", 3)
    assert Field("channel").is_in(["web", "email"]) == In("channel", ["email", "web"])
    assert Field("tags").contains("vip", "de") == HasTags({"de", "vip"})
    assert repr(Field("status")) == "Field('status')"
    with pytest.raises(TypeError):
        hash(Field("status"))


def test_reprs_are_readable() -> None:
    condition = (Field("priority") >= "high") & ~HasTags({"spam"}) | Field("status").is_in(["open"])
    assert repr(condition) == (
        "AnyOf(All(Compare('priority', '>=', <Priority.HIGH: 'high'>), Not(HasTags(['spam']))), "
        "In('status', [<Status.OPEN: 'open'>]))"
    )


def test_equality_and_hash_respect_value_types() -> None:
    assert Eq("fields.x", 1) == Eq("fields.x", 1.0)
    assert Eq("fields.x", 1) != Eq("fields.x", True)
    assert In("fields.x", [1]) != In("fields.x", [True])
    assert In("status", ["new", "open"]) == In("status", [Status.OPEN, Status.NEW])
    assert hash(Eq("priority", "high")) == hash(Eq("priority", Priority.HIGH))
    assert len({Eq("group", "a"), Eq("group", "a"), Eq("group", "b")}) == 2


# --- build-time validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (
            lambda: Eq("prio", "high"),
            "field='prio' is not a ticket, loyalty_member or sla field; accepted: status",
        ),
        (lambda: Field("Priority"), "field='Priority' is not a ticket"),
        (lambda: Eq("priority", "hgh"), "value='hgh' is not a priority value; accepted: 'low'"),
        (lambda: Eq("status", "waiting"), "value='waiting' is not a status value"),
        (lambda: Eq("channel", None), "value=None is not a channel value"),
        (lambda: Eq("group", 3), "value=3 for field 'group' must be a string or None"),
        (lambda: Eq("merged", "yes"), "must be True or False"),
        (lambda: Eq("tags", "vip"), "match tags with HasTags"),
        (lambda: Eq("fields.x", [1]), "must be a string, a finite number"),
        (lambda: Eq("fields.x", float("inf")), "must be a string, a finite number"),
        (lambda: In("priority", ["high", "hgh"]), "values[1]='hgh' is not a priority value"),
        (lambda: In("priority", "high"), "values='high' is not a collection"),
        (lambda: In("tags", ["vip"]), "match tags with HasTags"),
        (lambda: Compare("priority", "!=", "low"), "op='!=' is not a comparison; accepted"),
        (lambda: Compare("subject", "<", "m"), "'subject' cannot be compared"),
        (lambda: Compare("priority", ">", "hgh"), "value='hgh' is not a priority value"),
        (lambda: Compare("fields.x", ">", True), "needs a number or a string"),
        (lambda: Compare("fields.x", ">", None), "needs a number or a string"),
        (lambda: Compare("fields.x", ">", float("nan")), "not a finite number"),
        (lambda: HasTags(["vip", ""]), "tags holds ''"),
        (lambda: HasTags(5), "tags=5 is not a tag"),
        (lambda: All(Eq("group", "a"), "x"), "conditions[1]='x' is not a Condition"),  # type: ignore[arg-type]
        (lambda: AnyOf(None), "conditions[0]=None is not a Condition"),  # type: ignore[arg-type]
        (lambda: Not(True), "condition=True is not a Condition"),  # type: ignore[arg-type]
        (lambda: Field("status").contains("x"), "only for 'tags'"),
        # Text no ticket can hold (NUL, lone surrogates) is refused, so stores never see it.
        (lambda: Eq("subject", "a\x00"), "value='a\\x00' cannot be stored: it contains NUL"),
        (lambda: Eq("fields.x", "\ud800"), "value='\\ud800' cannot be stored: it contains"),
        (lambda: In("requester", ["ok", "\x00"]), "values[1]='\\x00' cannot be stored"),
        (lambda: Compare("fields.x", ">", "\udc00"), "value='\\udc00' cannot be stored"),
        (lambda: HasTags(["vip", "b\x00"]), "tag='b\\x00' cannot be stored"),
        (lambda: Eq("fields.a\x00", 1), "field='fields.a\\x00' cannot be stored"),
        # A set of values cannot hold both False and 0 (or True and 1), which a custom field
        # tells apart: one would be lost in storage and in SQL.
        (lambda: In("fields.plan", [False, 0]), "hold a boolean and a number equal to it"),
        (lambda: In("fields.plan", [1.0, True, "x"]), "(1.0, True)"),
        # A tag longer than any ticket can carry (255 characters) could never match.
        (lambda: HasTags(["x" * 256]), "is 256 characters long"),
    ],
)
def test_bad_conditions_are_rejected_when_built(build: Any, needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert needle in str(info.value)


def test_operators_refuse_non_conditions() -> None:
    with pytest.raises(TypeError):
        _ = Always() & True  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = Always() | "x"  # type: ignore[operator]


# --- serialization -----------------------------------------------------------------------------


def test_serialised_forms() -> None:
    condition = All(
        Eq("priority", "high"),
        In("fields.plan", ["gold", 3, None, True]),
        Compare("priority", ">", "low"),
        Not(HasTags({"spam", "bot"})),
        AnyOf(Always(), Never()),
    )
    data = to_data(condition)
    assert data == {
        "op": "all",
        "conditions": [
            {"op": "eq", "field": "priority", "value": "high"},
            {"op": "in", "field": "fields.plan", "values": [None, True, 3, "gold"]},
            {"op": "cmp", "field": "priority", "cmp": ">", "value": "low"},
            {"op": "not", "condition": {"op": "tags", "tags": ["bot", "spam"]}},
            {"op": "any", "conditions": [{"op": "always"}, {"op": "never"}]},
        ],
    }
    assert from_data(json.loads(json.dumps(data)), Condition) == condition
    assert from_data(data, All) == condition
    assert from_data({"op": "eq", "field": "group", "value": None}, Eq) == Eq("group", None)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"op": "xor"}, "$.op: 'xor' is not a condition; accepted: ['eq'"),
        ({"field": "status"}, "$.op: None"),
        ("eq", "$: 'eq' is not a mapping"),
        ({"op": "eq", "field": "status"}, "$.value: required field missing"),
        ({"op": "eq", "field": "status", "value": "x", "extra": 1}, "unknown keys ['extra']"),
        ({"op": "eq", "field": "prio", "value": "x"}, "$: field='prio' is not a ticket"),
        (
            {"op": "all", "conditions": [{"op": "always"}, {"op": "eq", "field": "x", "value": 1}]},
            "$.conditions[1]: field='x'",
        ),
        (
            {"op": "not", "condition": {"op": "any", "conditions": [{"op": "in"}]}},
            "$.condition.conditions[0].field: required field missing",
        ),
        ({"op": "all", "conditions": {}}, "$.conditions: {} is not a list"),
        ({"op": "in", "field": "status", "values": "new"}, "$.values: 'new' is not a list"),
        ({"op": "tags", "tags": "vip"}, "$.tags: 'vip' is not a list"),
        ({"op": "cmp", "field": "priority", "cmp": "=", "value": "low"}, "op='=' is not"),
        ({"op": "eq", "field": "priority", "value": "hgh"}, "$: value='hgh'"),
    ],
)
def test_malformed_data_names_the_path(data: Any, needle: str) -> None:
    with pytest.raises(SerializationError) as info:
        from_data(data, Condition)
    assert needle in str(info.value)


def test_data_for_another_condition_class_is_refused() -> None:
    with pytest.raises(SerializationError, match="'always' does not build a Eq"):
        from_data({"op": "always"}, Eq)


def test_unknown_condition_subclass_cannot_be_serialised() -> None:
    class Custom(Condition):
        def matches(self, ticket: Ticket) -> bool:
            return True

    with pytest.raises(SerializationError, match="only the built-in condition classes"):
        to_data(Custom())
    with pytest.raises(NotImplementedError):
        Condition().matches(TICKET)


# --- properties --------------------------------------------------------------------------------

custom_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10_000, 10_000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    storable_text,
)


def eq_values(field: str) -> st.SearchStrategy[Any]:
    kind = field_kind(field)
    if field == "status":
        return st.sampled_from(list(Status))
    if field == "priority":
        return st.sampled_from(list(Priority))
    if field == "channel":
        return st.sampled_from(list(Channel))
    if field == "created_by":
        return st.sampled_from(list(Role))
    if kind == "bool":
        return st.booleans()
    if kind == "custom":
        return custom_values
    return st.one_of(st.none(), st.sampled_from([*PEOPLE, *GROUPS, "new", "Escalated"]))


scalar_fields = st.sampled_from(
    [name for name, kind in FIELDS.items() if kind != "tags"] + [f"fields.{n}" for n in FIELD_NAMES]
)


def _no_boolean_beside_an_equal_number(values: list[Any]) -> bool:
    booleans = {v for v in values if isinstance(v, bool)}
    numbers = {v for v in values if isinstance(v, int | float) and not isinstance(v, bool)}
    return not booleans & numbers


def in_values(field: str, *, max_size: int) -> st.SearchStrategy[list[Any]]:
    """Values for In: In refuses a boolean next to a number equal to it (tested above)."""
    return st.lists(eq_values(field), max_size=max_size).filter(_no_boolean_beside_an_equal_number)


@st.composite
def leaves(draw: st.DrawFn) -> Condition:
    shape = draw(st.sampled_from(["eq", "in", "cmp", "tags", "const"]))
    if shape == "tags":
        return HasTags(draw(st.frozensets(st.sampled_from(TAGS), max_size=3)))
    if shape == "const":
        return draw(st.sampled_from([Always(), Never()]))
    if shape == "cmp":
        op = draw(st.sampled_from(["<", "<=", ">", ">="]))
        field = draw(st.sampled_from(["priority", *(f"fields.{n}" for n in FIELD_NAMES)]))
        if field == "priority":
            return Compare(field, op, draw(st.sampled_from(list(Priority))))
        value = draw(st.one_of(st.integers(-100, 100), st.floats(-1e3, 1e3), storable_text))
        return Compare(field, op, value)
    field = draw(scalar_fields)
    if shape == "eq":
        return Eq(field, draw(eq_values(field)))
    return In(field, draw(in_values(field, max_size=3)))


conditions = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda cs: All(*cs)),
        st.lists(inner, max_size=3).map(lambda cs: AnyOf(*cs)),
        inner.map(Not),
    ),
    max_leaves=8,
)


@given(conditions, tickets(max_events=6))
def test_not_negates(condition: Condition, ticket: Ticket) -> None:
    assert Not(condition).matches(ticket) is (not condition.matches(ticket))
    assert (~condition).matches(ticket) is (not condition.matches(ticket))


@given(st.lists(conditions, max_size=4), tickets(max_events=6))
def test_de_morgan(parts: list[Condition], ticket: Ticket) -> None:
    assert Not(All(*parts)).matches(ticket) == AnyOf(*(Not(c) for c in parts)).matches(ticket)
    assert Not(AnyOf(*parts)).matches(ticket) == All(*(Not(c) for c in parts)).matches(ticket)
    assert All(*parts).matches(ticket) == all(c.matches(ticket) for c in parts)
    assert AnyOf(*parts).matches(ticket) == any(c.matches(ticket) for c in parts)


@given(conditions, tickets(max_events=6))
def test_round_trip_is_equal_and_matches_the_same(condition: Condition, ticket: Ticket) -> None:
    data = json.loads(json.dumps(to_data(condition), allow_nan=False))
    back = from_data(data, Condition)
    assert back == condition
    assert hash(back) == hash(condition)
    assert to_data(back) == to_data(condition)
    assert back.matches(ticket) is condition.matches(ticket)


@given(tickets(max_events=6), scalar_fields, st.data())
def test_eq_and_in_agree(ticket: Ticket, field: str, data: st.DataObject) -> None:
    values = data.draw(in_values(field, max_size=4))
    assert In(field, values).matches(ticket) == any(Eq(field, v).matches(ticket) for v in values)


@given(tickets(max_events=6), st.sampled_from(list(Priority)))
def test_priority_comparisons_follow_rank(ticket: Ticket, bound: Priority) -> None:
    rank = ticket.priority.rank
    assert Compare("priority", "<", bound).matches(ticket) is (rank < bound.rank)
    assert Compare("priority", ">=", bound).matches(ticket) is (rank >= bound.rank)
    assert Compare("priority", "<=", bound).matches(ticket) is (
        Compare("priority", "<", bound).matches(ticket) or Eq("priority", bound).matches(ticket)
    )
