"""KpiAggregator: a hand-worked scenario for every KPI, grouping and time buckets, properties
(order, merging, medians), bad settings."""

from __future__ import annotations

import random
import re
import statistics
from datetime import date, datetime, timedelta, timezone
from operator import attrgetter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.errors import InvalidType, ValidationError
from csmcore.kpi import (
    DURATION_METRICS,
    Backlog,
    Bucket,
    KpiAggregator,
    Kpis,
    SatisfactionRated,
    SlaFigures,
    TicketMetrics,
    csat,
    time_bucket,
)
from csmcore.sla import SlaState
from csmcore.testing.builders import make_ticket
from csmcore.tickets import Channel, FrozenMap, Priority, Status
from tests.kpi.support import T0, H, M, metric_records, metrics

AT = T0 + timedelta(days=5)
D = timedelta(days=1)


def scenario() -> list[TicketMetrics]:
    """Four tickets judged at AT (numbers worked out in test_every_kpi_of_the_scenario)."""
    return [
        metrics(
            "A", at=AT, channel=Channel.EMAIL, priority=Priority.HIGH, status=Status.SOLVED,
            first_reply=10 * M, full_resolution=2 * H, replies=1, one_touch=True,
            two_touch=False, csat_score=5, csat_scale=5,
            sla=(("first reply", SlaState.ACHIEVED),),
        ),
        metrics(
            "B", at=AT, channel=Channel.EMAIL, priority=Priority.HIGH, status=Status.SOLVED,
            first_reply=30 * M, full_resolution=4 * H, replies=2, one_touch=False,
            two_touch=True, reopens=1, csat_score=2, csat_scale=5,
            sla=(("first reply", SlaState.BREACHED),),
        ),
        metrics(
            "C", at=AT, channel=Channel.CHAT, priority=Priority.LOW, status=Status.OPEN,
            created_at=AT - 3 * D - H,
        ),
        metrics(
            "D", at=AT, channel=Channel.CHAT, priority=Priority.LOW, status=Status.PENDING,
            created_at=AT - 10 * H, first_reply=20 * M, ces_score=6, ces_scale=7,
            sla=(("first reply", SlaState.ACTIVE),),
        ),
    ]  # fmt: skip


def test_every_kpi_of_the_scenario() -> None:
    k = KpiAggregator(percentiles=(90,)).update(scenario()).total()
    assert k.tickets == 4
    # first reply: 10m, 30m, 20m defined, C excluded; mean 20m, median 20m;
    # p90: sorted [10, 20, 30], rank (3 - 1) * 0.9 = 1.8 -> 20m + 0.8 * 10m = 28m
    fr = k.first_reply
    assert (fr.count, fr.excluded, fr.mean, fr.median) == (3, 1, 20 * M, 20 * M)
    assert fr.percentiles == {90.0: 28 * M}
    assert fr.total == 60 * M
    # full resolution: 2h and 4h (A, B); mean = median = 3h; C and D excluded
    res = k.full_resolution
    assert (res.count, res.excluded, res.mean, res.median) == (2, 2, 3 * H, 3 * H)
    # a metric nobody has: count 0, everything None
    assert k.agent_wait.count == 0
    assert k.agent_wait.mean is None
    assert k.agent_wait.excluded == 4
    # SLA first reply: achieved A, breached B, running D -> rate 1 / (1 + 1) = 0.5
    assert k.sla["first reply"].achieved == 1
    assert k.sla["first reply"].breached == 1
    assert k.sla["first reply"].running == 1
    assert k.sla["first reply"].rate == 0.5
    assert k.sla_overall.rate == 0.5
    assert k.sla_overall.breach_rate == 0.5
    # CSAT: 5 (satisfied) and 2 -> 1 / 2
    assert (k.csat, k.csat_responses) == (0.5, 2)
    # CES: one answer, 6 on 1-7
    assert (k.ces, k.ces_responses) == (6.0, 1)
    # solved: A (one touch), B (two touch) -> 0.5 each; reopened: B of the two solved
    assert (k.solved, k.one_touch_rate, k.two_touch_rate) == (2, 0.5, 0.5)
    assert (k.resolved, k.reopened, k.reopen_rate) == (2, 1, 0.5)
    # backlog: C (73h old) and D (10h old); p50 = (10h + 73h) / 2 = 41h30m;
    # p90 = 10h + 0.9 * 63h = 66h42m; buckets: <1d: D; 3d-7d: C
    assert k.backlog.count == 2
    assert k.backlog.p50 == 41 * H + 30 * M
    assert k.backlog.p90 == 66 * H + 42 * M
    assert [n for _, _, n in k.backlog.buckets] == [1, 0, 1, 0, 0]
    assert k.backlog.buckets[0] == (timedelta(), D, 1)
    assert k.backlog.buckets[-1] == (30 * D, None, 0)
    assert k.channels == {Channel.CHAT: 2, Channel.EMAIL: 2}


def test_ces_as_share_agreeing_and_csat_top_box() -> None:
    records = scenario()
    k = KpiAggregator(ces_method="agree", csat_top=1).update(records).total()
    assert k.ces == 1.0  # 6 >= 5
    assert k.csat == 0.5  # only 5 is the top box
    k = KpiAggregator(ces_method="agree", ces_agree_at=7).update(records).total()
    assert k.ces == 0.0


def test_grouped_by_priority_and_channel() -> None:
    results = KpiAggregator(by=["priority", "channel"]).update(scenario()).results()
    assert set(results) == {(Priority.HIGH, Channel.EMAIL), (Priority.LOW, Channel.CHAT)}
    high = results[(Priority.HIGH, Channel.EMAIL)]
    assert high.tickets == 2
    assert high.first_reply.median == 20 * M
    assert high.csat == 0.5
    low = results[("low", "chat")]  # enum members equal (and hash like) their values
    assert low.first_reply.count == 1
    assert low.first_reply.excluded == 1
    assert low.backlog.count == 2
    assert low.csat is None
    assert low.sla["first reply"].rate is None


def test_tags_explode_and_fields_group() -> None:
    records = [
        metrics("A", tags=frozenset({"vip", "bug"}), fields=FrozenMap({"plan": "gold"})),
        metrics("B", tags=frozenset({"bug"}), fields=FrozenMap({"plan": "free"})),
        metrics("C"),
    ]
    by_tag = KpiAggregator(by="tags").update(records).results()
    assert {k: v.tickets for k, v in by_tag.items()} == {("bug",): 2, ("vip",): 1, (None,): 1}
    by_plan = KpiAggregator(by=["field:plan"]).update(records).results()
    assert {k: v.tickets for k, v in by_plan.items()} == {("gold",): 1, ("free",): 1, (None,): 1}
    by_fn = KpiAggregator(by=[lambda m: m.ticket_id < "B"]).update(records).results()
    assert {k: v.tickets for k, v in by_fn.items()} == {(True,): 1, (False,): 2}


def test_time_buckets_in_a_chosen_zone() -> None:
    # 2025-04-01 02:00 UTC (a Tuesday) is Monday 2025-03-31 22:00 in New York (EDT, UTC-4)
    instant = datetime(2025, 4, 1, 2, 0, tzinfo=timezone.utc)
    assert time_bucket(instant, "day", timezone.utc) == date(2025, 4, 1)
    assert time_bucket(instant, "week", timezone.utc) == date(2025, 3, 31)
    records = [metrics("A", created_at=instant, at=instant + D)]
    expected: dict[Bucket, date] = {
        "day": date(2025, 3, 31),
        "week": date(2025, 3, 31),  # the Monday of that ISO week
        "month": date(2025, 3, 1),
        "quarter": date(2025, 1, 1),
    }
    for bucket, first_day in expected.items():
        results = KpiAggregator(bucket=bucket, timezone="America/New_York").update(records)
        assert list(results.results()) == [(first_day,)]
    utc = KpiAggregator(by=["channel"], bucket="quarter").update(records).results()
    assert list(utc) == [(Channel.EMAIL, date(2025, 4, 1))]
    solved = KpiAggregator(bucket="day", bucket_on="solved_at").update(records).results()
    assert list(solved) == [(None,)]  # never solved: no solve day


def test_tickets_are_turned_into_metrics() -> None:
    t, _ = make_ticket("A", at=T0).comment(T0 + 15 * M, "agent")
    k = KpiAggregator(at=T0 + H).update([t]).add(metrics("B", first_reply=45 * M)).total()
    assert k.tickets == 2
    assert k.first_reply.mean == 30 * M


def test_business_twins_and_inexact_mode() -> None:
    records = [metrics("A", first_reply=H, first_reply_business=30 * M)]
    k = KpiAggregator(business=True, metrics=["first_reply"]).update(records).total()
    assert k.first_reply.mean == 30 * M
    assert set(k.durations) == {"first_reply"}
    k = KpiAggregator(exact=False).update(records).total()
    assert k.first_reply.mean == H
    assert k.first_reply.median is None
    k = KpiAggregator(exact=["first_reply"], figures=["csat"]).update(scenario()).total()
    assert k.first_reply.median == 20 * M
    assert k.full_resolution.median is None
    assert k.sla == {}
    assert k.backlog.count == 0
    assert k.channels == {}
    assert k.csat == 0.5


# -- properties ---------------------------------------------------------------------------

_records = st.lists(metric_records(), max_size=40)
_BY = ["priority", "channel", "group"]


@settings(max_examples=60, deadline=None)
@given(_records, st.randoms(use_true_random=False))
def test_results_do_not_depend_on_input_order(
    records: list[TicketMetrics], rnd: random.Random
) -> None:
    shuffled = list(records)
    rnd.shuffle(shuffled)
    for by in ([], _BY, ["tags"]):
        a = KpiAggregator(by=by, bucket="week").update(records).results()
        b = KpiAggregator(by=by, bucket="week").update(shuffled).results()
        assert a == b


@settings(max_examples=60, deadline=None)
@given(_records, st.integers(0, 40))
def test_grouping_then_merging_equals_the_whole(records: list[TicketMetrics], cut: int) -> None:
    whole = KpiAggregator(by=_BY).update(records)
    left = KpiAggregator(by=_BY).update(records[:cut])
    right = KpiAggregator(by=_BY).update(records[cut:])
    assert left.merge(right).results() == whole.results()
    # the groups merged together give the ungrouped figures
    assert whole.total() == KpiAggregator().update(records).total()


@settings(max_examples=60, deadline=None)
@given(_records)
def test_medians_match_statistics_median(records: list[TicketMetrics]) -> None:
    values = [r.first_reply for r in records if r.first_reply is not None]
    k = KpiAggregator(percentiles=(0, 100)).update(records).total()
    if values:
        assert k.first_reply.median == statistics.median(values)  # type: ignore[type-var]
        assert k.first_reply.percentiles == {0.0: min(values), 100.0: max(values)}
        assert k.first_reply.count == len(values)
    else:
        assert k.first_reply.median is None
    assert k.first_reply.excluded == len(records) - len(values)


def _kpis_ok(k: Kpis) -> None:
    for rate in (k.csat, k.one_touch_rate, k.reopen_rate, k.sla_overall.rate):
        assert rate is None or 0.0 <= rate <= 1.0


@settings(max_examples=40, deadline=None)
@given(_records)
def test_rates_stay_in_range(records: list[TicketMetrics]) -> None:
    for k in KpiAggregator(by=_BY).update(records).results().values():
        _kpis_ok(k)


_FIGURES = ("sla", "csat", "ces", "touch", "reopens", "channels", "backlog")
# the Kpis attributes of each figure family, and what they are when the family is not asked
_FAMILY_ATTRIBUTES: dict[str, dict[str, Any]] = {
    "sla": {"sla": {}, "sla_overall": SlaFigures()},
    "csat": {"csat": None, "csat_responses": 0},
    "ces": {"ces": None, "ces_responses": 0},
    "touch": {"solved": 0, "one_touch_rate": None, "two_touch_rate": None},
    "reopens": {"resolved": 0, "reopened": 0, "reopen_rate": None},
    "channels": {"channels": {}},
    "backlog": {
        "backlog": Backlog(
            count=0,
            p50=None,
            p90=None,
            buckets=((timedelta(), D, 0), (D, 3 * D, 0), (3 * D, 7 * D, 0), (7 * D, 30 * D, 0),
                     (30 * D, None, 0)),
        )
    },
}  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(
    _records,
    st.lists(st.sampled_from(_FIGURES), unique=True),
    st.lists(st.sampled_from(DURATION_METRICS), unique=True),
    st.sampled_from([(), ("priority", "channel"), (attrgetter("group"),)]),
)
def test_a_selection_gives_the_same_figures_as_the_full_computation(
    records: list[TicketMetrics],
    figures: list[str],
    chosen_metrics: list[str],
    by: tuple[Any, ...],
) -> None:
    # plain dimensions take the generated fast path, a function the general path
    full = KpiAggregator(by=by).update(records).results()
    narrow = KpiAggregator(by=by, figures=figures, metrics=chosen_metrics)
    selected = narrow.update(records).results()
    assert set(selected) == set(full)
    for key, k in selected.items():
        whole = full[key]
        assert k.tickets == whole.tickets
        assert k.durations == {m: whole.durations[m] for m in chosen_metrics}
        for family, attributes in _FAMILY_ATTRIBUTES.items():
            for name, empty in attributes.items():
                expected = getattr(whole, name) if family in figures else empty
                assert getattr(k, name) == expected, (family, name)


def test_a_list_of_lookalikes_or_of_tickets_and_metrics() -> None:
    # an object carrying every field the fast path reads is still not a TicketMetrics
    class Lookalike:
        def __init__(self, record: TicketMetrics) -> None:
            for name in ("priority", "channel", "status", "first_reply", "full_resolution"):
                setattr(self, name, getattr(record, name))
            self.csat_score = self.csat_scale = None
            self.sla = ()

    real = metrics("A", first_reply=10 * M)
    aggregator = KpiAggregator(by=["priority"], metrics=["first_reply"], figures=["csat", "sla"])
    with pytest.raises(InvalidType, match="is not a Ticket or TicketMetrics") as caught:
        aggregator.update([real, Lookalike(real)])  # type: ignore[list-item]
    assert isinstance(caught.value.value, Lookalike)
    assert aggregator.results() == {}  # the batch was not half counted
    # tickets and metrics mixed in one list: the tickets are turned into metrics
    t, _ = make_ticket("B", at=T0).comment(T0 + 30 * M, "agent")
    k = KpiAggregator(at=T0 + H, by=["channel"]).update([real, t]).results()[(Channel.EMAIL,)]
    assert (k.tickets, k.first_reply.mean) == (2, 20 * M)


# -- bad settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings_", "error", "message"),
    [
        ({"by": ["colour"]}, ValidationError, "by='colour' is not a dimension"),
        ({"by": [3]}, InvalidType, "by=3"),
        ({"bucket": "year"}, ValidationError, "bucket='year' is not a time bucket"),
        ({"bucket_on": "updated_at"}, ValidationError, "bucket_on='updated_at'"),
        ({"timezone": "Mars/Olympus"}, ValidationError, "Mars/Olympus"),
        ({"metrics": ["speed"]}, ValidationError, "'speed' is not accepted"),
        ({"figures": ["nps"]}, ValidationError, "'nps' is not accepted"),
        ({"exact": ["speed"]}, ValidationError, "'speed' is not accepted"),
        ({"percentiles": [101]}, ValidationError, "percentile 101"),
        ({"percentiles": "90"}, InvalidType, "percentiles='90'"),
        ({"csat_top": 0}, ValidationError, "csat_top=0"),
        ({"ces_method": "median"}, ValidationError, "ces_method='median'"),
        ({"ces_agree_at": 11}, ValidationError, r"ces_agree_at=11 is outside 1..10"),
        ({"ces_agree_at": "5"}, InvalidType, r"ces_agree_at='5' \(str\)"),
        ({"age_edges": [D, D]}, ValidationError, "age_edges"),
        ({"age_edges": [-D]}, ValidationError, "age_edges"),
    ],
)
def test_bad_settings(settings_: dict[str, object], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        KpiAggregator(**settings_)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argument", "value", "accepted"),
    [
        ("figures", "nps", "sla, csat, ces, touch, reopens, channels, backlog"),
        ("metrics", "speed", ", ".join(DURATION_METRICS)),
    ],
)
def test_a_bad_selection_names_the_value_and_the_accepted_ones(
    argument: str, value: str, accepted: str
) -> None:
    message = f"{argument}: {value!r} is not accepted; accepted: {accepted}"
    good = "csat" if argument == "figures" else "first_reply"
    with pytest.raises(ValidationError, match=re.escape(message)) as caught:
        KpiAggregator(**{argument: [good, value]})  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.value) == (argument, value)
    # one name given as a plain string is a selection of one
    with pytest.raises(ValidationError, match=re.escape(message)):
        KpiAggregator(**{argument: value})  # type: ignore[arg-type]


def test_bad_items_and_merges() -> None:
    with pytest.raises(InvalidType, match="is not a Ticket or TicketMetrics"):
        KpiAggregator().update([metrics("A"), "B"])  # type: ignore[list-item]
    with pytest.raises(InvalidType, match="not an iterable"):
        KpiAggregator().update(5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="cannot merge"):
        KpiAggregator(by=["channel"]).merge(KpiAggregator(by=["priority"]))
    with pytest.raises(InvalidType, match="is not a KpiAggregator"):
        KpiAggregator().merge({})  # type: ignore[arg-type]


def test_a_good_bad_rating_is_judged_by_its_own_top_box() -> None:
    # Zendesk's good/bad survey (scale 2, as SatisfactionRated accepts) has one top box, good:
    # the default two top boxes counted "bad" (1 >= 2 - 2 + 1) as satisfied, CSAT 100 %.
    records = [
        metrics("G", csat_score=2, csat_scale=2),
        metrics("B", csat_score=1, csat_scale=2),
        metrics("F", csat_score=4, csat_scale=5),
        metrics("P", csat_score=3, csat_scale=5),
    ]
    k = KpiAggregator(figures=["csat"]).update(records).total()
    assert (k.csat, k.csat_responses) == (0.5, 4)  # good and 4-of-5 satisfied
    assert csat([2, 1], scale=2, top=1) == 0.5  # the score function's own convention
    k = KpiAggregator(figures=["csat"], csat_top=3).update(records).total()
    assert k.csat == 0.75  # 3 of 5 is in the top three boxes; bad still is not satisfied


def test_csat_and_ces_per_agent_group_channel_and_month_from_ticket_histories() -> None:
    # Ratings are events in the tickets' histories; the latest rating of a kind counts.
    def rated(ticket_id: str, at: datetime, assignee: str, group: str, **kw: Any) -> Any:
        channel = kw.pop("channel", Channel.EMAIL)
        ticket = make_ticket(ticket_id, at=at, assignee=assignee, group=group, channel=channel)
        for n, (kind, score) in enumerate(kw.pop("ratings")):
            scale = 5 if kind == "csat" else 7
            ticket = ticket.apply(
                SatisfactionRated(at=at + (n + 1) * H, score=score, scale=scale, kind=kind)
            )
        return ticket

    tickets = [
        rated("A", datetime(2025, 3, 3, 9, tzinfo=timezone.utc), "bob", "L1",
              ratings=[("csat", 5), ("ces", 6)]),
        rated("B", datetime(2025, 3, 10, 9, tzinfo=timezone.utc), "bob", "L1",
              ratings=[("csat", 2)]),
        # 31 March 23:30 UTC is 1 April 01:30 in Berlin: April there
        rated("C", datetime(2025, 3, 31, 23, 30, tzinfo=timezone.utc), "cy", "L2",
              channel=Channel.CHAT, ratings=[("csat", 4), ("ces", 3)]),
        # rated 4, then 1: the later rating replaces the earlier one
        rated("D", datetime(2025, 4, 2, 9, tzinfo=timezone.utc), "cy", "L2",
              ratings=[("csat", 4), ("csat", 1)]),
    ]  # fmt: skip
    at = datetime(2025, 4, 30, tzinfo=timezone.utc)

    def figures(**settings: Any) -> dict[Any, tuple[Any, ...]]:
        results = KpiAggregator(at=at, **settings).update(tickets).results()
        return {
            key: (k.csat, k.csat_responses, k.ces, k.ces_responses) for key, k in results.items()
        }

    # bob: CSAT 5 and 2 -> 1 of 2 satisfied; CES 6. cy: CSAT 4 and 1 -> 1 of 2; CES 3.
    per_agent = {("bob",): (0.5, 2, 6.0, 1), ("cy",): (0.5, 2, 3.0, 1)}
    assert figures(by=["assignee"]) == per_agent
    assert figures(by=["group"]) == {("L1",): per_agent[("bob",)], ("L2",): per_agent[("cy",)]}
    # email: A, B, D rated 5, 2, 1 -> 1 of 3; CES 6. chat: C rated 4 -> 1 of 1; CES 3.
    assert figures(by=["channel"]) == {
        (Channel.EMAIL,): (1 / 3, 3, 6.0, 1),
        (Channel.CHAT,): (1.0, 1, 3.0, 1),
    }
    # per month in Berlin: March holds A and B, April holds C and D
    by_month = figures(by=["assignee"], bucket="month", timezone="Europe/Berlin")
    assert by_month == {
        ("bob", date(2025, 3, 1)): (0.5, 2, 6.0, 1),
        ("cy", date(2025, 4, 1)): (0.5, 2, 3.0, 1),
    }
    # in UTC, C falls in March
    by_month_utc = figures(by=["assignee"], bucket="month", timezone="UTC")
    assert by_month_utc[("cy", date(2025, 3, 1))] == (1.0, 1, 3.0, 1)
    assert by_month_utc[("cy", date(2025, 4, 1))] == (0.0, 1, None, 0)
