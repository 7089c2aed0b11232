"""Properties of SLA evaluation over random ticket histories."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from csmcore import BusinessCalendar
from csmcore.errors import InvalidTransition
from csmcore.sla import SlaBook, SlaMetric, SlaPolicy, SlaState, SlaTarget
from csmcore.tickets import Priority, Role, Status, Ticket

UTC = timezone.utc
CAL = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="Europe/Berlin")
START = datetime(2025, 3, 24, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _targets() -> list[SlaTarget]:
    out = []
    for metric in SlaMetric:
        if metric is SlaMetric.CUSTOM:
            continue
        for priority, hours in (("urgent", 1), ("high", 3)):
            out.append(
                SlaTarget(
                    metric=metric, within=timedelta(hours=hours), priority=priority, warn_at=[0.5]
                )
            )
        out.append(
            SlaTarget(
                metric=metric, within=6 * H, business_hours=metric.value < "n", warn_at=[0.5, 0.9]
            )
        )
    return out


BOOK = SlaBook(
    policies=[SlaPolicy(name="all", position=1, default=True, targets=_targets())],
    calendar=CAL,
)

OPS = st.sampled_from(
    [
        "agent",
        "note",
        "bot",
        "requester",
        "pending",
        "hold",
        "open",
        "solve",
        "reopen",
        "prio",
        "tag",
    ]
)


@st.composite
def histories(draw: st.DrawFn) -> Ticket:
    created_by = draw(st.sampled_from([Role.REQUESTER, Role.AGENT]))
    status = draw(st.sampled_from([Status.NEW, Status.OPEN, Status.PENDING]))
    ticket, _ = Ticket.create(
        at=START + timedelta(minutes=draw(st.integers(0, 60 * 24 * 3))),
        ticket_id="P-1",
        created_by=created_by,
        channel="web",
        priority=draw(st.sampled_from(list(Priority))),
        requester="r",
        status=status,
    )
    when = ticket.created_at
    for _ in range(draw(st.integers(0, 8))):
        when += timedelta(minutes=draw(st.integers(0, 60 * 30)))
        op = draw(OPS)
        try:
            if op == "agent":
                ticket, _ = ticket.comment(when, Role.AGENT)
            elif op == "note":
                ticket, _ = ticket.comment(when, Role.AGENT, public=False)
            elif op == "bot":
                ticket, _ = ticket.comment(when, Role.BOT)
            elif op == "requester":
                ticket, _ = ticket.comment(when, Role.REQUESTER)
            elif op == "pending":
                ticket, _ = ticket.set_status(when, Status.PENDING)
            elif op == "hold":
                ticket, _ = ticket.set_status(when, Status.ON_HOLD)
            elif op == "open":
                ticket, _ = ticket.set_status(when, Status.OPEN)
            elif op == "solve":
                ticket, _ = ticket.set_status(when, Status.SOLVED)
            elif op == "reopen":
                ticket, _ = ticket.reopen(when)
            elif op == "prio":
                ticket, _ = ticket.set_priority(when, draw(st.sampled_from(list(Priority))))
            else:
                ticket, _ = ticket.tag(when, add=["t"])
        except InvalidTransition:
            continue
    return ticket


def instants(ticket: Ticket) -> st.SearchStrategy[datetime]:
    span = int((ticket.updated_at - ticket.created_at).total_seconds()) + 3 * 86400
    return st.integers(0, span).map(lambda s: ticket.created_at + timedelta(seconds=s))


@given(st.data())
def test_elapsed_never_exceeds_wall_time_and_parts_add_up(data: st.DataObject) -> None:
    ticket = data.draw(histories())
    moment = data.draw(instants(ticket))
    for status in BOOK.evaluate(ticket, moment):
        end = status.stopped_at or moment
        assert timedelta(0) <= status.elapsed <= end - status.started_at
        assert status.paused >= timedelta(0)
        assert status.elapsed + status.paused <= end - status.started_at
        assert status.started_at <= end <= moment
        if status.state is SlaState.BREACHED:
            assert status.breached_at is not None
            assert status.breached_at <= moment
            assert status.elapsed >= status.within or status.breached_at > status.started_at


@given(st.data())
def test_evaluation_depends_only_on_events_up_to_the_instant(data: st.DataObject) -> None:
    ticket = data.draw(histories())
    moment = data.draw(instants(ticket))
    assert BOOK.evaluate(ticket, moment) == BOOK.evaluate(ticket.as_of(moment), moment)


@given(st.data())
def test_breached_stays_breached(data: st.DataObject) -> None:
    ticket = data.draw(histories())
    first = data.draw(instants(ticket))
    later = first + timedelta(seconds=data.draw(st.integers(0, 5 * 86400)))
    breached = {
        (s.target, s.cycle): s.breached_at
        for s in BOOK.evaluate(ticket, first)
        if s.state is SlaState.BREACHED
    }
    after = {(s.target, s.cycle): s for s in BOOK.evaluate(ticket, later)}
    for key, when in breached.items():
        assert after[key].state is SlaState.BREACHED
        assert after[key].breached_at == when


def _signature(ticket: Ticket, moment: datetime) -> list[tuple[str, int, SlaState, float | None]]:
    return [(s.target, s.cycle, s.state, s.warning) for s in BOOK.evaluate(ticket, moment)]


@given(st.data())
def test_next_change_is_exact(data: st.DataObject) -> None:
    ticket = data.draw(histories())
    after = data.draw(instants(ticket))
    change = BOOK.next_change(ticket, after)
    tiny = timedelta(microseconds=1)
    if change is None:
        far = after + timedelta(days=data.draw(st.integers(1, 400)))
        assert _signature(ticket, far) == _signature(ticket, after)
        return
    assert change > after
    assert _signature(ticket, change - tiny) != _signature(ticket, change)
    assert _signature(ticket, change - tiny) == _signature(ticket, after)
    probe = after + (change - after) * data.draw(st.floats(0, 1))
    if after <= probe < change:
        assert _signature(ticket, probe) == _signature(ticket, after)


@given(st.data())
def test_adding_a_pause_never_makes_a_due_time_earlier(data: st.DataObject) -> None:
    ticket = data.draw(histories())
    if ticket.status in (Status.SOLVED, Status.CLOSED):
        return
    moment = ticket.updated_at + timedelta(minutes=data.draw(st.integers(0, 600)))
    resume = moment + timedelta(minutes=data.draw(st.integers(1, 3000)))
    paused, _ = ticket.set_status(moment, Status.PENDING)
    resumed, _ = paused.set_status(
        resume, ticket.status if ticket.status is not Status.NEW else Status.OPEN
    )
    check = resume + timedelta(minutes=data.draw(st.integers(0, 600)))
    plain = {(s.target, s.cycle): s for s in BOOK.evaluate(ticket, check)}
    for status in BOOK.evaluate(resumed, check):
        before = plain.get((status.target, status.cycle))
        if before is None or before.state is SlaState.ACHIEVED:
            continue
        if status.state in (SlaState.ACTIVE, SlaState.PAUSED) and before.state in (
            SlaState.ACTIVE,
            SlaState.PAUSED,
        ):
            assert status.due_at >= before.due_at
        assert status.elapsed <= before.elapsed


@given(st.data())
def test_due_time_never_moves_earlier_as_time_passes(data: st.DataObject) -> None:
    ticket = data.draw(histories())
    first = data.draw(instants(ticket))
    later = first + timedelta(seconds=data.draw(st.integers(0, 3 * 86400)))
    earlier = {(s.target, s.cycle): s for s in BOOK.evaluate(ticket, first)}
    for status in BOOK.evaluate(ticket, later):
        before = earlier.get((status.target, status.cycle))
        if (
            before is not None
            and before.state in (SlaState.ACTIVE, SlaState.PAUSED)
            and status.policy_version == before.policy_version
            and status.within == before.within
            and status.started_at == before.started_at
            and status.state is not SlaState.BREACHED
        ):
            assert status.due_at >= before.due_at
