"""Examples for the ticket model: every transition, every illegal one, bad inputs, serialization."""

from __future__ import annotations

import copy
import json
import pickle
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import attrs
import pytest

from csmcore._time import to_us
from csmcore.errors import (
    CsmError,
    InvalidTransition,
    NaiveDatetimeError,
    SerializationError,
    ValidationError,
)
from csmcore.serialization import from_data, to_data
from csmcore.tickets import (
    Assigned,
    Channel,
    Commented,
    FieldsChanged,
    FrozenMap,
    Merged,
    Priority,
    PriorityChanged,
    Reopened,
    Role,
    Status,
    StatusChanged,
    StatusMap,
    TagsChanged,
    Ticket,
    TicketCreated,
    TicketEvent,
    TicketEventBase,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
MIN = timedelta(minutes=1)


def new_ticket(**overrides: object) -> Ticket:
    kwargs: dict[str, object] = {
        "at": T0,
        "ticket_id": "T-1",
        "created_by": Role.REQUESTER,
        "channel": Channel.EMAIL,
        "priority": Priority.NORMAL,
        "requester": "ada@example.com",
        "subject": "Printer on fire",
    }
    kwargs.update(overrides)
    ticket, _ = Ticket.create(**kwargs)  # type: ignore[arg-type]
    return ticket


# --- creation ----------------------------------------------------------------------------------


def test_create_returns_ticket_and_event_with_derived_state() -> None:
    ticket, event = Ticket.create(
        at=T0,
        ticket_id="T-9",
        created_by="agent",
        channel="phone",
        priority="high",
        requester="bob",
        subject="Hi",
        group="tier1",
        assignee="grace",
        tags=["vip", "billing"],
        fields={"plan": "gold", "seats": 12, "unset": None},
        actor="grace",
    )
    assert isinstance(event, TicketCreated)
    assert ticket.events == (event,)
    assert ticket.id == "T-9"
    assert ticket.created_at == T0
    assert ticket.updated_at == T0
    assert ticket.version == 1
    assert ticket.created_by is Role.AGENT
    assert ticket.channel is Channel.PHONE
    assert ticket.priority is Priority.HIGH
    assert ticket.requester == "bob"
    assert ticket.subject == "Hi"
    assert (ticket.group, ticket.assignee) == ("tier1", "grace")
    assert ticket.status is Status.NEW
    assert ticket.status_name == "new"
    assert ticket.tags == frozenset({"vip", "billing"})
    assert ticket.fields == {"plan": "gold", "seats": 12}  # None leaves a field unset
    assert event.fields == {"plan": "gold", "seats": 12, "unset": None}
    assert ticket.merged_into is None
    assert ticket.solved_at is None
    assert ticket.reopens == 0
    assert event.actor == "grace"


def test_open_is_an_alias_of_create() -> None:
    assert Ticket.open == Ticket.create


def test_create_with_custom_status_name_through_status_map() -> None:
    status_map = StatusMap(custom={"Awaiting Vendor": "on-hold"})
    ticket = new_ticket(status="Awaiting Vendor", status_map=status_map)
    assert ticket.status is Status.ON_HOLD
    assert ticket.status_name == "Awaiting Vendor"


def test_created_solved_has_solved_at() -> None:
    assert new_ticket(status=Status.SOLVED).solved_at == T0


def test_instants_are_stored_in_utc_and_compare_by_instant() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    local = datetime(2025, 3, 3, 10, 0, tzinfo=berlin)
    ticket = new_ticket(at=local)
    assert ticket.created_at == T0
    assert ticket.created_at.tzinfo is timezone.utc


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"ticket_id": ""}, "ticket_id=''"),
        ({"requester": None}, "requester=None"),
        ({"priority": "hgh"}, "priority='hgh' is not a Priority; accepted: 'low'"),
        ({"channel": "fax"}, "channel='fax'"),
        ({"created_by": "robot"}, "created_by='robot'"),
        ({"status": "nope"}, "status 'nope' is not known; accepted: ['new', 'open'"),
        ({"tags": "vip"}, "a bare string is not accepted"),
        ({"tags": ["ok", " padded"]}, "' padded'"),
        ({"tags": ["ok", 3]}, "holds 3"),
        ({"fields": {"x": float("nan")}}, "not a finite number"),
        ({"fields": {"x": [1]}}, "is a list"),
        ({"fields": {"": 1}}, "non-empty strings"),
        ({"fields": [("x", 1)]}, "expected a mapping"),
        ({"group": ""}, "group=''"),
        ({"subject": 5}, "subject=5"),
        ({"status": Status.OPEN, "status_name": "pending"}, "status_name='pending'"),
    ],
)
def test_create_rejects_bad_values_naming_them(override: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        new_ticket(**override)
    assert needle in str(info.value)


# NUL cannot be kept by PostgreSQL text and a lone surrogate cannot be encoded as UTF-8, so
# both are refused at construction: every store then keeps exactly what the domain accepted.
@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"ticket_id": "T\x00"}, "ticket_id='T\\x00' cannot be stored: it contains NUL"),
        (
            {"requester": "ada\ud800"},
            "requester='ada\\ud800' cannot be stored: it contains the lone",
        ),
        ({"subject": "\udfff"}, "index 0"),
        ({"subject": "caf\u00e9\x00"}, "subject="),
        ({"group": "g\x00"}, "group="),
        ({"assignee": "\ud83d"}, "assignee="),
        ({"tags": ["ok", "v\x00"]}, "tags tag='v\\x00'"),
        ({"fields": {"x\x00": 1}}, "fields key="),
        ({"fields": {"x": "a\ud800b"}}, "fields['x']="),
    ],
)
def test_create_refuses_text_no_store_can_keep(override: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        new_ticket(**override)
    assert needle in str(info.value)
    assert "valid Unicode without NUL" in str(info.value)


def test_events_refuse_text_no_store_can_keep() -> None:
    ticket = new_ticket()
    at = T0 + MIN
    with pytest.raises(ValidationError, match="author="):
        ticket.comment(at, Role.AGENT, author="bo\x00b")
    with pytest.raises(ValidationError, match="added tag="):
        ticket.tag(at, add={"\ud800"})
    with pytest.raises(ValidationError, match="into="):
        ticket.merge_into(at, "T-\x002")
    with pytest.raises(ValidationError, match="custom status name"):
        StatusMap(custom={"Bad\x00": Status.PENDING})
    # Everything else unicode is kept as it is: astral characters, combining marks, RTL, CRLF.
    odd = "\U0001f600 e\u0301 \u05e9\u05dc\u05d5\u05dd \r\n\t \uffff \U0010ffff"
    kept = new_ticket(subject=odd, requester=odd, tags={odd.strip()}, fields={odd: odd})
    assert kept.subject == odd
    assert kept.requester == odd
    assert kept.fields[odd] == odd
    assert kept.tags == {odd.strip()}
    assert from_data(json.loads(json.dumps(to_data(kept))), Ticket) == kept


# Ticket ids and tags are indexed by every SQL store, and PostgreSQL's B-tree refuses entries
# over ~2,700 bytes; 255 characters (at most 1,020 bytes of UTF-8) always fit.
def test_ids_and_tags_are_at_most_255_characters() -> None:
    longest = "\u00e9" * 255
    kept = new_ticket(ticket_id=longest, tags={longest})
    assert kept.id == longest
    assert kept.tags == {longest}
    into = "\u00e8" * 255
    assert kept.merge_into(T0 + MIN, into)[1] == Merged(at=T0 + MIN, into=into)
    assert from_data(json.loads(json.dumps(to_data(kept))), Ticket) == kept
    too_long = "x" * 256
    with pytest.raises(ValidationError, match=r"ticket_id='x+'... is 256 characters long"):
        new_ticket(ticket_id=too_long)
    with pytest.raises(ValidationError, match=r"tags tag=.* at most 255 characters"):
        new_ticket(tags={"ok", too_long})
    with pytest.raises(ValidationError, match=r"added tag=.* is 256 characters"):
        kept.tag(T0 + MIN, add={too_long})
    with pytest.raises(ValidationError, match=r"into=.* is 256 characters"):
        kept.merge_into(T0 + MIN, too_long)
    # Decoding takes the same rule as construction, whichever decoder path is used.
    data = to_data(new_ticket())
    data["events"][0]["ticket_id"] = too_long
    with pytest.raises(ValidationError, match="is 256 characters long"):
        from_data(data, Ticket)
    # Subjects, requesters and field values are free text, without the identifier limit.
    assert new_ticket(subject=too_long * 10, requester=too_long).requester == too_long


def test_events_keep_their_instant_in_microseconds_on_every_path() -> None:
    # The SLA engine reads event._at_us instead of doing datetime arithmetic per event; every
    # way of making an event must set it (it takes no part in equality, so check it directly).
    berlin = timezone(timedelta(hours=1))
    event = Commented(at=datetime(2025, 3, 3, 10, 0, 0, 7, tzinfo=berlin), author_role=Role.AGENT)
    made = [
        event,
        attrs.evolve(event, at=datetime(1969, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
        pickle.loads(pickle.dumps(event)),
        copy.copy(event),
        copy.deepcopy(event),
        from_data(to_data(event), Commented),
    ]
    for each in made:
        assert each._at_us == to_us(each.at)
    assert event._at_us == to_us(datetime(2025, 3, 3, 9, 0, 0, 7, tzinfo=timezone.utc))
    assert made[1]._at_us == -1_000_000


def test_naive_datetime_is_rejected_naming_the_argument() -> None:
    with pytest.raises(NaiveDatetimeError, match="at="):
        new_ticket(at=datetime(2025, 1, 1))
    ticket = new_ticket()
    with pytest.raises(NaiveDatetimeError, match="at="):
        ticket.comment(datetime(2025, 3, 4), Role.AGENT)
    with pytest.raises(NaiveDatetimeError, match="instant="):
        ticket.as_of(datetime(2025, 3, 4))


def test_errors_are_csm_errors_and_value_errors() -> None:
    ticket = new_ticket()
    with pytest.raises(CsmError):
        ticket.reopen(T0)
    with pytest.raises(ValueError, match="only a solved or closed"):
        ticket.reopen(T0)


# --- each transition ---------------------------------------------------------------------------


def test_status_change_to_category_and_custom_name() -> None:
    ticket = new_ticket()
    ticket, event = ticket.set_status(T0 + MIN, Status.OPEN)
    assert event == StatusChanged(at=T0 + MIN, status=Status.OPEN)
    assert (ticket.status, ticket.status_name) == (Status.OPEN, "open")
    status_map = StatusMap(custom={"Awaiting Vendor": Status.ON_HOLD})
    ticket, event = ticket.set_status(T0 + 2 * MIN, "Awaiting Vendor", status_map)
    assert event.status_name == "Awaiting Vendor"
    assert (ticket.status, ticket.status_name) == (Status.ON_HOLD, "Awaiting Vendor")
    ticket, _ = ticket.set_status(T0 + 3 * MIN, "pending")
    assert (ticket.status, ticket.status_name) == (Status.PENDING, "pending")
    assert ticket.version == 4
    assert ticket.updated_at == T0 + 3 * MIN


def test_unknown_status_name_without_map_names_known_ones() -> None:
    with pytest.raises(ValidationError, match=r"'Awaiting Vendor' is not known; accepted: \["):
        new_ticket().set_status(T0, "Awaiting Vendor")


def test_solving_records_latest_solve_and_reopen_keeps_it() -> None:
    ticket = new_ticket()
    ticket, _ = ticket.set_status(T0 + MIN, Status.SOLVED)
    assert ticket.solved_at == T0 + MIN
    ticket, event = ticket.reopen(T0 + 2 * MIN)
    assert event == Reopened(at=T0 + 2 * MIN, status=Status.OPEN)
    assert ticket.status is Status.OPEN
    assert ticket.solved_at == T0 + MIN
    assert ticket.reopens == 1
    ticket, _ = ticket.set_status(T0 + 3 * MIN, Status.SOLVED)
    ticket, _ = ticket.set_status(T0 + 4 * MIN, Status.CLOSED)
    assert ticket.solved_at == T0 + 3 * MIN  # closing a solved ticket is not a new solve
    ticket, _ = ticket.reopen(T0 + 5 * MIN, Status.PENDING)
    assert (ticket.status, ticket.reopens) == (Status.PENDING, 2)


def test_status_change_out_of_solved_counts_as_reopen() -> None:
    ticket = new_ticket(status=Status.SOLVED)
    ticket, _ = ticket.set_status(T0 + MIN, Status.OPEN)
    assert ticket.reopens == 1


def test_closing_an_unsolved_ticket_sets_solved_at() -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, Status.CLOSED)
    assert ticket.solved_at == T0 + MIN


def test_priority_change() -> None:
    ticket, event = new_ticket().set_priority(T0 + MIN, "urgent")
    assert event == PriorityChanged(at=T0 + MIN, priority=Priority.URGENT)
    assert ticket.priority is Priority.URGENT


def test_assign_keeps_what_is_left_out_and_clears_explicit_none() -> None:
    ticket = new_ticket(group="tier1")
    ticket, event = ticket.assign(T0 + MIN, "grace")
    assert event == Assigned(at=T0 + MIN, assignee="grace", group="tier1")
    ticket, event = ticket.assign(T0 + 2 * MIN, group="tier2")
    assert (ticket.assignee, ticket.group) == ("grace", "tier2")
    ticket, event = ticket.assign(T0 + 3 * MIN, assignee=None)
    assert (ticket.assignee, ticket.group) == (None, "tier2")
    ticket, event = ticket.assign(T0 + 4 * MIN, None, None)
    assert event == Assigned(at=T0 + 4 * MIN, assignee=None, group=None)
    assert (ticket.assignee, ticket.group) == (None, None)


def test_comment_records_roles_and_visibility_without_changing_state() -> None:
    before = new_ticket()
    after, event = before.comment(T0 + MIN, Role.AGENT, public=False, author="grace")
    assert event == Commented(at=T0 + MIN, author_role=Role.AGENT, public=False, author="grace")
    assert after.version == 2
    assert after.updated_at == T0 + MIN
    assert (after.status, after.tags, after.fields) == (before.status, before.tags, before.fields)


@pytest.mark.parametrize(
    ("role", "public", "on_behalf", "as_requester", "agent_reply"),
    [
        (Role.AGENT, True, False, False, True),
        (Role.AGENT, False, False, False, False),
        (Role.AGENT, True, True, True, False),
        (Role.REQUESTER, True, False, True, False),
        (Role.BOT, True, False, False, False),
        (Role.SYSTEM, True, True, True, False),
    ],
)
def test_comment_classification(
    role: Role, public: bool, on_behalf: bool, as_requester: bool, agent_reply: bool
) -> None:
    event = Commented(at=T0, author_role=role, public=public, on_behalf_of_requester=on_behalf)
    assert event.counts_as_requester is as_requester
    assert event.is_agent_reply is agent_reply


def test_requester_cannot_comment_on_own_behalf() -> None:
    with pytest.raises(ValidationError, match="on_behalf_of_requester=True needs"):
        Commented(at=T0, author_role=Role.REQUESTER, on_behalf_of_requester=True)


def test_comment_public_must_be_bool() -> None:
    with pytest.raises(ValidationError, match="public='yes'"):
        Commented(at=T0, author_role=Role.AGENT, public="yes")  # type: ignore[arg-type]


def test_tags_added_and_removed() -> None:
    ticket = new_ticket(tags={"a", "b"})
    ticket, event = ticket.tag(T0 + MIN, add=["c"], remove=["a", "zz"])
    assert event == TagsChanged(at=T0 + MIN, added=frozenset({"c"}), removed={"a", "zz"})
    assert ticket.tags == frozenset({"b", "c"})


def test_tag_change_rejects_overlap() -> None:
    with pytest.raises(ValidationError, match=r"tags \['x'\] are both added and removed"):
        new_ticket().tag(T0, add=["x"], remove=["x"])


def test_fields_set_and_removed() -> None:
    ticket = new_ticket(fields={"plan": "gold", "seats": 3})
    ticket, event = ticket.set_fields(T0 + MIN, {"plan": None}, seats=4, vip=True)
    assert event == FieldsChanged(at=T0 + MIN, changes={"plan": None, "seats": 4, "vip": True})
    assert ticket.fields == {"seats": 4, "vip": True}
    assert "plan" not in ticket.fields


def test_merge_closes_and_records_target() -> None:
    ticket, event = new_ticket().merge_into(T0 + MIN, "T-2")
    assert event == Merged(at=T0 + MIN, into="T-2")
    assert ticket.merged_into == "T-2"
    assert ticket.status is Status.CLOSED
    assert ticket.is_closed


def test_a_merge_sets_solved_at_as_closing_does() -> None:
    """A merge closes the ticket, so solved_at follows the rule of a status change to closed:
    from an unsolved status it becomes the merge instant, from solved it keeps the solve."""
    ticket, _ = new_ticket().merge_into(T0 + MIN, "T-2")
    assert ticket.solved_at == T0 + MIN
    pending, _ = new_ticket().set_status(T0 + MIN, Status.PENDING)
    merged, _ = pending.merge_into(T0 + 2 * MIN, "T-2")
    closed, _ = pending.set_status(T0 + 2 * MIN, Status.CLOSED)
    assert merged.solved_at == closed.solved_at == T0 + 2 * MIN


def test_solved_then_merged_keeps_the_solve_as_solved_then_closed_does() -> None:
    solved, _ = new_ticket().set_status(T0 + MIN, Status.SOLVED)
    merged, _ = solved.merge_into(T0 + 2 * MIN, "T-2")
    closed, _ = solved.set_status(T0 + 2 * MIN, Status.CLOSED)
    assert merged.solved_at == closed.solved_at == T0 + MIN
    created_solved = new_ticket(status=Status.SOLVED)
    assert created_solved.merge_into(T0 + MIN, "T-2")[0].solved_at == T0


def test_reopened_then_merged_takes_the_merge_instant() -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, Status.SOLVED)
    ticket, _ = ticket.reopen(T0 + 2 * MIN)
    merged, _ = ticket.merge_into(T0 + 3 * MIN, "T-2")
    closed, _ = ticket.set_status(T0 + 3 * MIN, Status.CLOSED)
    assert merged.solved_at == closed.solved_at == T0 + 3 * MIN
    assert merged.as_of(T0 + 2 * MIN).solved_at == T0 + MIN
    assert Ticket.from_events(merged.events).solved_at == T0 + 3 * MIN


def test_closed_ticket_accepts_metadata_changes() -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, Status.CLOSED)
    ticket, _ = ticket.tag(T0 + 2 * MIN, add=["audit"])
    ticket, _ = ticket.set_fields(T0 + 2 * MIN, reason="dup")
    ticket, _ = ticket.set_priority(T0 + 2 * MIN, Priority.LOW)
    ticket, _ = ticket.assign(T0 + 2 * MIN, "grace")
    assert ticket.status is Status.CLOSED
    assert ticket.tags == {"audit"}


# --- illegal transitions -----------------------------------------------------------------------


def test_event_out_of_time_order_is_refused() -> None:
    ticket, _ = new_ticket().comment(T0 + 2 * MIN, Role.AGENT)
    with pytest.raises(InvalidTransition, match="before the ticket's last update"):
        ticket.comment(T0 + MIN, Role.REQUESTER)
    same_instant, _ = ticket.comment(T0 + 2 * MIN, Role.REQUESTER)
    assert same_instant.version == 3


def test_commenting_on_closed_ticket_is_refused() -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, Status.CLOSED)
    with pytest.raises(InvalidTransition, match=r"'T-1'.*the ticket is closed"):
        ticket.comment(T0 + 2 * MIN, Role.REQUESTER)


def test_status_change_on_closed_ticket_is_refused_reopen_works() -> None:
    # (issue 10: set_status out of closed is now a reopen; a raw StatusChanged is still refused)
    ticket, _ = new_ticket().set_status(T0 + MIN, Status.CLOSED)
    with pytest.raises(InvalidTransition, match="reopen it first"):
        ticket.apply(StatusChanged(at=T0 + 2 * MIN, status=Status.OPEN))
    ticket, _ = ticket.reopen(T0 + 2 * MIN)
    ticket, _ = ticket.comment(T0 + 3 * MIN, Role.REQUESTER)
    assert ticket.status is Status.OPEN


def test_merging_a_closed_ticket_is_refused() -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, Status.CLOSED)
    with pytest.raises(InvalidTransition, match="closed"):
        ticket.merge_into(T0 + 2 * MIN, "T-2")


def test_merging_into_itself_is_refused() -> None:
    with pytest.raises(InvalidTransition, match="into itself"):
        new_ticket().merge_into(T0, "T-1")


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.comment(T0 + MIN, Role.AGENT),
        lambda t: t.reopen(T0 + MIN),
        lambda t: t.tag(T0 + MIN, add=["x"]),
        lambda t: t.set_fields(T0 + MIN, x=1),
        lambda t: t.set_priority(T0 + MIN, Priority.LOW),
        lambda t: t.assign(T0 + MIN, "grace"),
        lambda t: t.set_status(T0 + MIN, Status.OPEN),
        lambda t: t.merge_into(T0 + MIN, "T-3"),
    ],
)
def test_nothing_follows_a_merge(change: object) -> None:
    ticket, _ = new_ticket().merge_into(T0, "T-2")
    with pytest.raises(InvalidTransition, match="merged into 'T-2'; nothing may follow"):
        change(ticket)  # type: ignore[operator]


@pytest.mark.parametrize("status", [Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD])
def test_reopening_an_unsolved_ticket_is_refused(status: Status) -> None:
    ticket = new_ticket(status=status)
    with pytest.raises(InvalidTransition, match=f"this one is '{status.value}'"):
        ticket.reopen(T0 + MIN)


@pytest.mark.parametrize("status", [Status.NEW, Status.SOLVED, Status.CLOSED])
def test_reopen_target_must_be_unsolved(status: Status) -> None:
    with pytest.raises(ValidationError, match=r"is not a status a ticket can be reopened to"):
        Reopened(at=T0, status=status)


def test_second_created_event_is_refused() -> None:
    ticket = new_ticket()
    with pytest.raises(InvalidTransition, match="already created"):
        ticket.apply(ticket.events[0])


def test_going_back_to_new_is_refused() -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, Status.OPEN)
    with pytest.raises(InvalidTransition, match="cannot go back to 'new'"):
        ticket.set_status(T0 + 2 * MIN, Status.NEW)
    still_new, _ = new_ticket().set_status(T0 + MIN, Status.NEW)
    assert still_new.status is Status.NEW


def test_apply_rejects_non_events() -> None:
    with pytest.raises(ValidationError, match="is not a ticket event"):
        new_ticket().apply("comment")  # type: ignore[arg-type]


def test_failed_change_leaves_ticket_untouched() -> None:
    ticket, _ = new_ticket().set_status(T0 + MIN, Status.CLOSED)
    with pytest.raises(InvalidTransition):
        ticket.comment(T0 + 2 * MIN, Role.AGENT)
    assert ticket.version == 2
    assert ticket.status is Status.CLOSED


# --- history -----------------------------------------------------------------------------------


def history() -> Ticket:
    ticket = new_ticket()
    ticket, _ = ticket.comment(T0 + MIN, Role.AGENT)
    ticket, _ = ticket.set_status(T0 + MIN, Status.PENDING)
    ticket, _ = ticket.set_priority(T0 + 5 * MIN, Priority.HIGH)
    ticket, _ = ticket.set_status(T0 + 9 * MIN, Status.SOLVED)
    return ticket


def test_from_events_rebuilds_an_equal_ticket() -> None:
    ticket = history()
    rebuilt = Ticket.from_events(list(ticket.events))
    assert rebuilt == ticket
    assert hash(rebuilt) == hash(ticket)
    assert (rebuilt.status, rebuilt.priority, rebuilt.solved_at) == (
        Status.SOLVED,
        Priority.HIGH,
        T0 + 9 * MIN,
    )
    assert Ticket(id="T-1", events=ticket.events) == ticket


def test_from_events_validates() -> None:
    ticket = history()
    with pytest.raises(ValidationError, match="empty"):
        Ticket.from_events([])
    with pytest.raises(InvalidTransition, match="starts with TicketCreated"):
        Ticket.from_events(ticket.events[1:])
    shuffled = (ticket.events[0], ticket.events[3], ticket.events[1])
    with pytest.raises(InvalidTransition, match="time order"):
        Ticket.from_events(shuffled)
    with pytest.raises(ValidationError, match="does not match"):
        Ticket(id="T-2", events=ticket.events)


def test_as_of_gives_the_ticket_as_it_stood() -> None:
    ticket = history()
    assert ticket.as_of(T0).version == 1
    at_one = ticket.as_of(T0 + MIN)
    assert at_one.version == 3  # both events at T0 + 1 min are included
    assert at_one.status is Status.PENDING
    assert ticket.as_of(T0 + 6 * MIN).priority is Priority.HIGH
    assert ticket.as_of(T0 + 6 * MIN).solved_at is None
    assert ticket.as_of(T0 + 9 * MIN) == ticket
    assert ticket.as_of(T0 + timedelta(days=400)) is ticket


def test_as_of_before_creation_is_refused() -> None:
    with pytest.raises(ValidationError, match="before ticket 'T-1' was created"):
        history().as_of(T0 - MIN)


# --- status map --------------------------------------------------------------------------------


def test_status_map_resolves_names() -> None:
    status_map = StatusMap(custom={"Awaiting Vendor": "on-hold", "open": "open"})
    assert status_map.resolve("Awaiting Vendor") == (Status.ON_HOLD, "Awaiting Vendor")
    assert status_map.resolve("open") == (Status.OPEN, None)
    assert status_map.resolve(Status.SOLVED) == (Status.SOLVED, None)
    assert "Awaiting Vendor" in status_map
    assert "Waiting" not in status_map
    assert status_map.names[:6] == ("new", "open", "pending", "on-hold", "solved", "closed")
    assert status_map.names[6:] == ("Awaiting Vendor",)
    with pytest.raises(ValidationError, match=r"'Waiting' is not known; accepted: \[.*Awaiting"):
        status_map.category("Waiting")


@pytest.mark.parametrize(
    ("custom", "needle"),
    [
        ({"open": "pending"}, "cannot map to another one"),
        ({"X": "waiting"}, "custom['X']='waiting' is not a Status"),
        ({"": "open"}, "not a non-empty string"),
        (["X"], "is not a mapping"),
    ],
)
def test_status_map_rejects_bad_definitions(custom: object, needle: str) -> None:
    with pytest.raises(ValidationError) as info:
        StatusMap(custom=custom)
    assert needle in str(info.value)


# --- enums and values --------------------------------------------------------------------------


def test_priority_orders_by_rank_not_alphabet() -> None:
    assert [p.rank for p in Priority] == [0, 1, 2, 3]
    assert Priority.LOW < Priority.NORMAL < Priority.HIGH < Priority.URGENT
    assert sorted([Priority.URGENT, Priority.LOW, Priority.HIGH]) == [
        Priority.LOW,
        Priority.HIGH,
        Priority.URGENT,
    ]
    assert Priority.HIGH > "low"
    assert "low" < Priority.HIGH  # noqa: SIM300 - the reflected comparison is under test
    assert max(Priority) is Priority.URGENT
    with pytest.raises(ValidationError, match="'hgh' is not a Priority"):
        _ = Priority.HIGH > "hgh"
    with pytest.raises(TypeError):
        _ = Priority.HIGH > 3


def test_frozen_map_is_an_immutable_hashable_mapping() -> None:
    first = FrozenMap({"a": 1, "b": "x"})
    assert first == {"b": "x", "a": 1}
    assert {"a": 1, "b": "x"} == first  # noqa: SIM300 - dict on the left is under test
    assert hash(first) == hash(FrozenMap([("b", "x"), ("a", 1)]))
    assert first != {"a": 2, "b": "x"}
    assert first.get("zz", 7) == 7
    with pytest.raises(TypeError):
        first["a"] = 2  # type: ignore[index]
    assert first.to_dict() == {"a": 1, "b": "x"}
    assert first != 3


# --- serialization -----------------------------------------------------------------------------


def test_ticket_round_trips_through_json() -> None:
    status_map = StatusMap(custom={"Awaiting Vendor": "on-hold"})
    ticket = new_ticket(tags={"vip"}, fields={"seats": 3, "ratio": 0.5, "ok": True})
    ticket, _ = ticket.set_status(T0 + MIN, "Awaiting Vendor", status_map, actor="grace")
    ticket, _ = ticket.comment(T0 + MIN, Role.AGENT, on_behalf_of_requester=True, author="g")
    ticket, _ = ticket.tag(T0 + MIN, add=["b"], remove=["vip"])
    ticket, _ = ticket.set_fields(T0 + MIN, seats=None)
    ticket, _ = ticket.assign(T0 + MIN, "grace", "tier1")
    ticket, _ = ticket.set_status(T0 + 2 * MIN, Status.SOLVED)
    ticket, _ = ticket.reopen(T0 + 3 * MIN)
    ticket, _ = ticket.set_priority(T0 + 3 * MIN, Priority.LOW)
    ticket, _ = ticket.merge_into(T0 + 4 * MIN, "T-7")
    data = json.loads(json.dumps(to_data(ticket)))
    assert [e["type"] for e in data["events"]] == [
        "ticket.created",
        "ticket.status_changed",
        "ticket.commented",
        "ticket.tags_changed",
        "ticket.fields_changed",
        "ticket.assigned",
        "ticket.status_changed",
        "ticket.reopened",
        "ticket.priority_changed",
        "ticket.merged",
    ]
    assert data["events"][0]["priority"] == "normal"
    assert data["events"][0]["at"] == "2025-03-03T09:00:00+00:00"
    back = from_data(data, Ticket)
    assert back == ticket
    assert back.fields == ticket.fields
    assert type(back.fields["ok"]) is bool
    assert from_data(to_data(status_map), StatusMap) == status_map


def test_single_events_round_trip_as_tagged_union() -> None:
    event = Commented(at=T0, author_role=Role.BOT, public=False)
    data = to_data(event)
    assert data == {
        "type": "ticket.commented",
        "at": "2025-03-03T09:00:00+00:00",
        "actor": None,
        "author_role": "bot",
        "public": False,
        "author": None,
        "on_behalf_of_requester": False,
        "schema": 1,
    }
    assert from_data(data, TicketEvent) == event  # type: ignore[arg-type]
    assert from_data(data, TicketEventBase) == event
    assert from_data(data, Commented) == event
    # Data written before the tags were namespaced still reads, by the fast and generic paths.
    old = {**data, "type": "commented"}
    assert from_data(old, Commented) == from_data(old, TicketEventBase) == event
    assert from_data({**data, "type": "csmcore.tickets:Commented"}, TicketEventBase) == event
    assert from_data({"type": "merged", "at": T0.isoformat(), "into": "X"}, TicketEvent) == (  # type: ignore[arg-type]
        Merged(at=T0, into="X")
    )
    assert to_data(Priority.HIGH) == "high"
    assert from_data("on-hold", Status) is Status.ON_HOLD


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"type": "poked", "at": "2025-01-01T00:00:00+00:00"}, "$.type: 'poked' is not an event"),
        ({"at": "2025-01-01T00:00:00+00:00"}, "$.type: None"),
        ({"type": "merged", "at": "2025-01-01T00:00:00+00:00"}, "$.into: required field"),
        ({"type": "merged", "at": "yesterday", "into": "X"}, "$.at: 'yesterday'"),
        ({"type": "merged", "at": "2025-01-01T00:00:00", "into": "X"}, "naive"),
        ({"type": "merged", "at": 5, "into": "X"}, "$.at: 5"),
        (
            {"type": "merged", "at": "2025-01-01T00:00:00+00:00", "into": "X", "extra": 1},
            "unknown keys ['extra']",
        ),
        (
            {"type": "priority_changed", "at": "2025-01-01T00:00:00+00:00", "priority": "hgh"},
            "priority='hgh'",
        ),
        (
            {"type": "tags_changed", "at": "2025-01-01T00:00:00+00:00", "added": "vip"},
            "$.added: 'vip' is not a list",
        ),
        ([1, 2], "is not a mapping"),
    ],
)
def test_malformed_event_data_names_the_path(data: object, needle: str) -> None:
    with pytest.raises(SerializationError) as info:
        from_data(data, TicketEvent)  # type: ignore[arg-type]
    assert needle in str(info.value)


def test_event_data_of_the_wrong_type_for_the_requested_class() -> None:
    with pytest.raises(SerializationError, match=r"'merged' is not 'ticket\.commented'"):
        from_data({"type": "merged", "at": T0.isoformat(), "into": "X"}, Commented)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d["events"][1].update(at="2000-01-01T00:00:00+00:00"), "time order"),
        (lambda d: d["events"][2].pop("status"), "$.events[2].status: required field missing"),
        (lambda d: d.update(events={}), "$.events: {} is not a list"),
        (lambda d: d.pop("id"), "$.id: required field missing"),
        (lambda d: d.update(owner="x"), "unknown keys ['owner']"),
        (lambda d: d.update(id="T-2"), "does not match"),
    ],
)
def test_malformed_ticket_data_names_the_path(mutate: object, needle: str) -> None:
    data = to_data(history())
    mutate(data)  # type: ignore[operator]
    with pytest.raises(SerializationError) as info:
        from_data(data, Ticket)
    assert needle in str(info.value)
    assert from_data(to_data(history()), Ticket) == history()


def test_ticket_data_must_be_a_mapping() -> None:
    with pytest.raises(SerializationError, match="is not a mapping with 'id' and 'events'"):
        from_data(["T-1"], Ticket)
    with pytest.raises(SerializationError, match="custom status name"):
        from_data(["x"], StatusMap)
