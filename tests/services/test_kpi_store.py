"""KPIs over a store: the same figures as over the tickets in memory, the condition pushed down
(only matching tickets are read), on memory, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Eq, In
from csmcore.errors import InvalidType, NaiveDatetimeError, ValidationError
from csmcore.kpi import KpiAggregator, SatisfactionRated, ticket_metrics
from csmcore.services.kpi import stream_metrics, summarize
from csmcore.storage import Store
from csmcore.testing.builders import make_book, make_policy, make_ticket
from csmcore.tickets import Channel, Priority, Status, Ticket
from tests.storage.conftest import (  # noqa: F401 - fixtures
    SqlFactory,
    sqlite_factory,
)
from tests.stores import (  # noqa: F401 - fixtures
    STORES,
    _postgres_check,
    memory_store,
    postgres_dsn,
    postgres_factory,
    postgres_store,
    sqlite_store,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
AT = T0 + timedelta(days=3)
CAL = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC")
BOOK = make_book(make_policy(within=timedelta(hours=1)), calendar=CAL)


def tickets(n: int = 30) -> list[Ticket]:
    """Tickets over three channels and two priorities; some replied, solved and rated."""
    out = []
    for i in range(n):
        ticket = make_ticket(
            f"K-{i:03d}",
            at=T0 + timedelta(minutes=7 * i),
            channel=[Channel.EMAIL, Channel.CHAT, Channel.WEB][i % 3],
            priority=[Priority.NORMAL, Priority.HIGH][i % 2],
        )
        if i % 4:
            ticket, _ = ticket.comment(ticket.created_at + timedelta(minutes=5 * i), "agent")
        if i % 5 == 0:
            ticket, _ = ticket.set_status(ticket.updated_at + timedelta(hours=2), Status.SOLVED)
            ticket = ticket.apply(
                SatisfactionRated(at=ticket.updated_at + timedelta(hours=1), score=1 + i % 5)
            )
        out.append(ticket)
    out.append(make_ticket("K-late", at=AT + timedelta(days=1)))  # created after AT: skipped
    return out


@pytest.mark.parametrize("store_fixture", STORES)
def test_summaries_equal_the_in_memory_figures(
    store_fixture: str, request: pytest.FixtureRequest
) -> None:
    store: Store = request.getfixturevalue(store_fixture)
    everything = tickets()
    store.tickets.add_many(everything)
    condition = In("channel", ["email", "chat"])
    got = summarize(
        store, condition, at=AT, calendar=CAL, book=BOOK, batch_size=7, by=["priority", "channel"]
    ).results()
    chosen = [t for t in everything if t.channel in ("email", "chat") and t.created_at <= AT]
    expected = KpiAggregator(by=["priority", "channel"]).update(
        ticket_metrics(t, AT, calendar=CAL, book=BOOK) for t in chosen
    )
    assert got == expected.results()
    assert sum(k.tickets for k in got.values()) == 20
    total = summarize(store, at=AT, calendar=CAL, metrics=["first_reply"], business=True).total()
    assert total.tickets == 30  # K-late was created after AT
    assert total.csat_responses == 6


@pytest.mark.parametrize("factory_fixture", ["sqlite_factory", "postgres_factory"])
def test_the_condition_is_pushed_down(factory_fixture: str, request: pytest.FixtureRequest) -> None:
    factory: SqlFactory = request.getfixturevalue(factory_fixture)
    store = factory()
    try:
        store.tickets.add_many(tickets())
        with factory.reads(store) as reads:
            kpis = summarize(store, Eq("channel", "web"), at=AT, batch_size=4).total()
        assert kpis.tickets == 10
        assert reads() == 10  # only the web tickets were fetched and rebuilt
    finally:
        store.close()


def test_stream_metrics_is_lazy_and_bad_arguments_are_refused(memory_store: Store) -> None:  # noqa: F811
    memory_store.tickets.add_many(tickets(6))
    stream = stream_metrics(memory_store, at=AT, batch_size=2)
    first = next(stream)
    assert first.ticket_id == "K-000"
    with pytest.raises(NaiveDatetimeError):
        list(stream_metrics(memory_store, at=AT.replace(tzinfo=None)))
    with pytest.raises(InvalidType, match="either an aggregator or its settings"):
        summarize(memory_store, at=AT, aggregator=KpiAggregator(), by=["channel"])
    with pytest.raises(InvalidType, match="is not a KpiAggregator"):
        summarize(memory_store, at=AT, aggregator=object())  # type: ignore[arg-type]
    agg = KpiAggregator(by=["channel"])
    assert summarize(memory_store, at=AT, aggregator=agg) is agg
    assert sum(k.tickets for k in agg.results().values()) == 6


def test_business_figures_need_a_calendar(memory_store: Store) -> None:  # noqa: F811
    # business=True summarises the business-time twins, which only a calendar gives: without
    # one every figure would be silently empty (all tickets "excluded"), so it is refused.
    memory_store.tickets.add_many(tickets(6))
    message = r"business=True .* needs calendar=.*BusinessCalendar"
    with pytest.raises(ValidationError, match=message) as caught:
        summarize(memory_store, at=AT, business=True)
    assert caught.value.field == "calendar"
    with pytest.raises(ValidationError, match=message):
        summarize(memory_store, at=AT, aggregator=KpiAggregator(business=True))
    with pytest.raises(ValidationError, match=message):
        KpiAggregator(business=True, at=AT).update(tickets(1))
    # metrics computed elsewhere carry their business twins: no calendar needed
    computed = [ticket_metrics(t, AT, calendar=CAL) for t in tickets(6) if t.created_at <= AT]
    by_metrics = KpiAggregator(business=True, metrics=["first_reply"]).update(computed)
    got = summarize(memory_store, at=AT, calendar=CAL, business=True, metrics=["first_reply"])
    assert got.total() == by_metrics.total()
    assert got.total().first_reply.count > 0


def test_an_unknown_setting_names_the_accepted_ones(memory_store: Store) -> None:  # noqa: F811
    with pytest.raises(InvalidType, match=r"group_by") as caught:
        summarize(memory_store, at=AT, group_by=["channel"])
    message = str(caught.value)
    assert "is not a KpiAggregator setting" in message
    for name in ("by", "bucket", "timezone", "metrics", "business", "percentiles", "figures"):
        assert name in message
    assert caught.value.field == "settings"
