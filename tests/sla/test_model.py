"""SLA values: validation, serialization, custom targets, rebuild and backtest."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta

import pytest

from csmcore import BusinessCalendar
from csmcore.conditions import Eq, Field, HasTags
from csmcore.errors import CsmError, NaiveDatetimeError, NotFound, SerializationError
from csmcore.serialization import from_data, to_data
from csmcore.sla import (
    CustomTimer,
    SlaBook,
    SlaError,
    SlaMetric,
    SlaPolicy,
    SlaState,
    SlaStatus,
    SlaTarget,
    SlaTrigger,
    backtest,
    rebuild,
)
from csmcore.tickets import Priority, Role, Status, Ticket
from tests.sla.support import CAL, H, at


def ticket(
    ticket_id: str = "T-1",
    when: datetime | None = None,
    *,
    created_by: Role | str = "requester",
    priority: Priority | str = "normal",
    tags: Iterable[str] = frozenset(),
) -> Ticket:
    made, _ = Ticket.create(
        at=when or at(6, 9),
        ticket_id=ticket_id,
        created_by=created_by,
        channel="email",
        priority=priority,
        requester="r",
        tags=tags,
    )
    return made


def fr(hours: float = 2, **kw: object) -> SlaTarget:
    return SlaTarget(metric=SlaMetric.FIRST_REPLY, within=timedelta(hours=hours), **kw)  # type: ignore[arg-type]


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: fr(-1), "positive"),
        (lambda: fr(0), "positive"),
        (lambda: SlaTarget(metric="first_response", within=H), "first_response"),
        (lambda: fr(warn_at=[1.5]), "1.5"),
        (lambda: SlaTarget(metric=SlaMetric.CUSTOM, within=H), "timer"),
        (lambda: fr(priority="hgh"), "hgh"),
        (lambda: SlaPolicy(name="p", position=1, targets=[fr()]), "default=True"),
        (lambda: SlaPolicy(name="p", position=1, default=True, targets=[]), "no targets"),
        (lambda: SlaPolicy(name="p", position="1", default=True, targets=[fr()]), "position"),  # type: ignore[arg-type]
        (
            lambda: SlaPolicy(name="p", position=1, default=True, version=0, targets=[fr()]),
            "version",
        ),
        (lambda: CustomTimer(stop=Eq("status", "solved")), "start"),
        (lambda: CustomTimer(start_on=["created"]), "stop"),
        (lambda: CustomTimer(start_on=["born"], stop_on=["solved"]), "born"),
        (
            lambda: SlaPolicy(name="p", position=1, default=True, targets="fr"),
            r"^targets='fr' is not a collection of SlaTarget$",
        ),
        (
            lambda: SlaPolicy(name="p", position=1, default=True, targets=[fr(), 5]),
            r"^targets\[1\]=5 is not an SlaTarget$",
        ),
        (
            lambda: SlaBook(policies=5, calendar=CAL),
            r"^policies=5 is not a collection of SlaPolicy$",
        ),
        (
            lambda: SlaBook(policies=[None], calendar=CAL),
            r"^policies\[0\]=None is not an SlaPolicy$",
        ),
    ],
)
def test_bad_values_raise_sla_errors_naming_them(make: object, message: str) -> None:
    with pytest.raises(SlaError, match=message):
        make()  # type: ignore[operator]


def test_book_rejects_duplicate_positions_two_defaults_and_unknown_calendars() -> None:
    a = SlaPolicy(name="a", position=1, condition=Eq("channel", "email"), targets=[fr()])
    b = SlaPolicy(name="b", position=1, condition=Eq("channel", "web"), targets=[fr()])
    with pytest.raises(SlaError, match="share position 1"):
        SlaBook(policies=[a, b], calendar=CAL)
    d1 = SlaPolicy(name="d1", position=1, default=True, targets=[fr()])
    d2 = SlaPolicy(name="d2", position=2, default=True, targets=[fr()])
    with pytest.raises(SlaError, match="default"):
        SlaBook(policies=[d1, d2], calendar=CAL)
    odd = SlaPolicy(name="x", position=1, default=True, targets=[fr(calendar="emea")])
    with pytest.raises(SlaError, match="emea"):
        SlaBook(policies=[odd], calendar=CAL)
    SlaBook(policies=[odd], calendar=CAL, calendars={"emea": CAL})  # accepted when named
    later = SlaPolicy(name="x", position=1, default=True, version=2, targets=[fr()])
    with pytest.raises(SlaError, match="effective_from"):
        SlaBook(policies=[odd, later], calendar=CAL, calendars={"emea": CAL})


def test_an_unknown_calendar_name_says_how_to_give_the_calendar() -> None:
    # The message named the calendar and the known ones ("known calendars: []"), but not
    # where a calendar's name comes from: the book's calendars= mapping.
    odd = SlaPolicy(name="x", position=1, default=True, targets=[fr(calendar="emea")])
    with pytest.raises(SlaError) as caught:
        SlaBook(policies=[odd], calendar=CAL)
    assert str(caught.value) == (
        "policy 'x' targets[0] names calendar 'emea'; known calendars: [] (and the default, "
        "calendar=None); name it in the book: SlaBook(..., calendars={'emea': "
        "<a BusinessCalendar>})"
    )
    book = SlaBook(policies=[odd], calendar=CAL, calendars={"emea": CAL})
    with pytest.raises(NotFound) as lookup:
        book.calendar_named("apac")
    assert str(lookup.value) == (
        "calendar 'apac' is not in this book; known: ['emea'] (and the default, "
        "calendar=None); name it in the book: SlaBook(..., calendars={'apac': "
        "<a BusinessCalendar>})"
    )


def test_naive_instants_are_refused() -> None:
    book = SlaBook(
        policies=[SlaPolicy(name="p", position=1, default=True, targets=[fr()])], calendar=CAL
    )
    with pytest.raises(NaiveDatetimeError, match="at="):
        book.evaluate(ticket(), datetime(2025, 1, 6, 10))
    with pytest.raises(NaiveDatetimeError, match="after="):
        book.next_change(ticket(), datetime(2025, 1, 6, 10))
    with pytest.raises(NaiveDatetimeError, match="effective_from"):
        SlaPolicy(
            name="p", position=1, default=True, targets=[fr()], effective_from=datetime(2025, 1, 1)
        )
    assert issubclass(SlaError, CsmError)


# -- serialization ----------------------------------------------------------------------------


def full_book() -> SlaBook:
    custom = SlaTarget(
        metric=SlaMetric.CUSTOM,
        name="vendor",
        within=8 * H,
        business_hours=False,
        timer=CustomTimer(
            start=HasTags(frozenset({"vendor"})),
            pause=Eq("status", "pending"),
            stop_on=[SlaTrigger.SOLVED],
        ),
    )
    return SlaBook(
        policies=[
            SlaPolicy(
                name="vip",
                position=1,
                condition=Field("priority") >= "high",
                targets=[fr(1, priority="urgent", warn_at=[0.5]), fr(4), custom],
            ),
            SlaPolicy(
                name="std",
                position=2,
                default=True,
                targets=[fr(8, calendar="emea")],
                version=3,
                effective_from=at(1, 0),
            ),
        ],
        calendar=CAL,
        calendars={"emea": BusinessCalendar.weekly("08:00", "16:00", timezone="Europe/Berlin")},
    )


def test_books_policies_and_statuses_round_trip_through_json() -> None:
    book = full_book()
    data = json.loads(json.dumps(to_data(book)))
    assert from_data(data, SlaBook) == book
    for policy in book.policies:
        assert from_data(json.loads(json.dumps(to_data(policy))), SlaPolicy) == policy
    statuses = book.evaluate(ticket(priority="urgent", tags={"vendor"}), at(6, 12))
    assert {s.target for s in statuses} == {"first_reply", "vendor"}
    for status in statuses:
        assert from_data(json.loads(json.dumps(to_data(status))), SlaStatus) == status


def test_bad_data_names_the_path() -> None:
    data = to_data(full_book())
    data["policies"][0]["targets"][1]["within"] = "soon"
    with pytest.raises(SerializationError, match=r"policies\[0\]") as info:
        from_data(data, SlaBook)
    assert "targets" in str(info.value)
    data = to_data(full_book())
    data["policies"][1]["position"] = 1
    with pytest.raises(SerializationError, match="share position"):
        from_data(data, SlaBook)


# -- custom targets ----------------------------------------------------------------------------


def custom_book(clock: CustomTimer) -> SlaBook:
    target = SlaTarget(
        metric=SlaMetric.CUSTOM, name="c", within=4 * H, business_hours=False, timer=clock
    )
    return SlaBook(
        policies=[SlaPolicy(name="p", position=1, default=True, targets=[target])], calendar=CAL
    )


def test_jira_style_time_to_first_response() -> None:
    # Jira Service Management "Time to first response": start on issue created, stop on a
    # comment for customers; "waiting for customer" (pending here) pauses it.
    book = custom_book(
        CustomTimer(start_on=["created"], stop_on=["agent_reply"], pause=Eq("status", "pending"))
    )
    t = ticket()
    t, _ = t.set_status(at(6, 10), Status.PENDING)
    t, _ = t.comment(at(6, 10, 30), Role.AGENT, public=False)  # internal: not for customers
    t, _ = t.set_status(at(6, 12), Status.OPEN)
    status = book.evaluate(t, at(6, 13))[0]
    assert (status.state, status.elapsed, status.paused, status.due_at) == (
        SlaState.ACTIVE,
        2 * H,
        2 * H,
        at(6, 15),
    )
    t, _ = t.comment(at(6, 14), Role.AGENT)
    assert book.evaluate(t, at(6, 16))[0].state is SlaState.ACHIEVED


def test_servicenow_style_conditions_with_reset() -> None:
    # ServiceNow task SLA: start, pause, stop and reset conditions over the record; when the
    # reset condition matches, the running SLA is cancelled and a new one attached.
    book = custom_book(
        CustomTimer(
            start=HasTags(frozenset({"vendor"})),
            stop=Eq("status", "solved"),
            reset=HasTags(frozenset({"escalated"})),
        )
    )
    t = ticket(tags={"vendor"})
    t, _ = t.tag(at(6, 11), add=["escalated"])
    statuses = book.evaluate(t, at(6, 12))
    # Issue 10: the cancelled cycle's number (1) is not reused.
    assert [(s.cycle, s.started_at, s.state) for s in statuses] == [(2, at(6, 11), SlaState.ACTIVE)]
    t, _ = t.set_status(at(6, 13), Status.SOLVED)
    assert book.evaluate(t, at(6, 14))[0].achieved_at == at(6, 13)


# -- rebuild and backtest ---------------------------------------------------------------------


def versions() -> tuple[SlaBook, SlaBook]:
    v1 = SlaPolicy(name="std", position=1, default=True, targets=[fr(4)])
    v2 = SlaPolicy(name="std", position=1, default=True, targets=[fr(2)], version=2)
    return SlaBook(policies=[v1], calendar=CAL), SlaBook(policies=[v2], calendar=CAL)


def history() -> list[Ticket]:
    fast = ticket("fast")
    fast, _ = fast.comment(at(6, 10), Role.AGENT)
    slow = ticket("slow")
    slow, _ = slow.comment(at(6, 12), Role.AGENT)
    never = ticket("agent-made", created_by="agent")
    return [fast, slow, never]


def test_rebuild_reports_only_what_changed() -> None:
    old, new = versions()
    changes = rebuild(history(), old=old, new=new, at=at(7, 9))
    assert [(c.ticket_id, c.target, c.before.state, c.after.state) for c in changes] == [  # type: ignore[union-attr]
        ("fast", "first_reply", SlaState.ACHIEVED, SlaState.ACHIEVED),
        ("slow", "first_reply", SlaState.ACHIEVED, SlaState.BREACHED),
    ]
    stored = {t.id: new.evaluate(t, at(7, 9)) for t in history()}
    assert rebuild(history(), old=stored, new=new, at=at(7, 9)) == ()


def test_backtest_counts_achievement_per_target() -> None:
    old, new = versions()
    result = backtest(history(), baseline=old, candidate=new, at=at(7, 9))
    assert result.tickets == 3
    base, cand = result.row("first_reply", candidate=False), result.row("first_reply")
    assert (base.achieved, base.breached, base.achievement_rate) == (2, 0, 1.0)
    assert (cand.achieved, cand.breached, cand.achievement_rate) == (1, 1, 0.5)
