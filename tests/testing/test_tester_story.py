"""Properties a tester of an application built on csmcore writes with the shipped strategies
(:mod:`csmcore.testing.strategies`) and the docs only: round trips, determinism, and that the
strategies reach the values such properties are meant to cover."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from csmcore.escalation import EscalationRule
from csmcore.kpi import KpiAggregator, SatisfactionRated
from csmcore.loyalty import EntryKind, LedgerEntry, Program, ReturnsPolicy, TierPolicy
from csmcore.serialization import from_data, from_document, to_data, to_document
from csmcore.sla import SlaBook, SlaMetric
from csmcore.testing import strategies as cs
from csmcore.tickets import PriorityChanged, RequesterChanged, StatusChanged, Ticket

FEW = settings(max_examples=40, deadline=None, database=None)


@FEW
@given(cs.tickets(max_events=8))
def test_a_ticket_history_round_trips_through_data(ticket: Ticket) -> None:
    again = from_data(to_data(ticket), Ticket)
    assert again == ticket
    assert again.events == ticket.events
    assert Ticket.from_events(list(ticket.events)) == ticket


@FEW
@given(cs.tickets(max_events=6), cs.sla_books(), st.integers(0, 60 * 24 * 10))
def test_sla_evaluation_is_deterministic_and_ignores_when_it_is_asked(
    ticket: Ticket, book: SlaBook, minutes: int
) -> None:
    at = ticket.updated_at + timedelta(minutes=minutes)
    first = book.evaluate(ticket, at)
    # the same question asked again (or of a copy read back) gets the same answer
    assert book.evaluate(ticket, at) == first
    assert from_data(to_data(book), SlaBook).evaluate(ticket, at) == first


@FEW
@given(cs.escalation_rules())
def test_escalation_rules_round_trip(rule: EscalationRule) -> None:
    assert from_data(to_data(rule), EscalationRule) == rule
    assert from_document(to_document(rule)) == rule


@FEW
@given(cs.ledger_entries())
def test_ledger_entries_round_trip_with_their_returns_policy(entry: LedgerEntry) -> None:
    again = from_document(to_document(entry), LedgerEntry)
    assert again == entry
    assert again.returns_policy == entry.returns_policy


@FEW
@given(st.from_type(TierPolicy))
def test_tier_policies_round_trip_with_non_qualifying(policy: TierPolicy) -> None:
    again = from_document(to_document(policy), TierPolicy)
    assert again == policy
    assert again.non_qualifying == policy.non_qualifying


@FEW
@given(st.from_type(Program))
def test_programs_round_trip(program: Program) -> None:
    assert from_document(to_document(program), Program) == program


@FEW
@given(st.lists(cs.tickets(max_events=6), max_size=5), st.randoms(use_true_random=False))
def test_kpi_aggregation_ignores_the_order_of_tickets(
    batch: list[Ticket], rnd: random.Random
) -> None:
    at = max((t.updated_at for t in batch), default=datetime(2025, 1, 1).astimezone())
    shuffled = list(batch)
    rnd.shuffle(shuffled)
    one = KpiAggregator(by=["channel"], at=at).update(batch).results()
    other = KpiAggregator(by=["channel"], at=at).update(shuffled).results()
    assert one == other


# --------------------------------------------------------------------------------------------
# Coverage: what a property over drawn values can only test if the strategy draws it
# --------------------------------------------------------------------------------------------

SEARCH = settings(max_examples=3000, database=None, deadline=None, phases=[Phase.generate])


T = TypeVar("T")


def _found(strategy: st.SearchStrategy[T], wanted: Callable[[T], bool]) -> None:
    assert wanted(find(strategy, wanted, settings=SEARCH, random=random.Random(20261206)))


def test_ticket_histories_include_a_change_of_requester() -> None:
    _found(
        cs.tickets(max_events=8),
        lambda t: any(isinstance(e, RequesterChanged) for e in t.events),
    )


def test_next_events_draws_a_change_of_requester() -> None:
    _found(
        cs.tickets(min_events=2, max_events=2),
        lambda t: isinstance(t.events[-1], RequesterChanged),
    )


def test_ticket_histories_include_named_statuses_and_priorities() -> None:
    _found(
        cs.tickets(max_events=8),
        lambda t: any(isinstance(e, StatusChanged) and e.status_name is not None for e in t.events),
    )
    _found(
        cs.tickets(max_events=8),
        lambda t: any(
            isinstance(e, PriorityChanged) and e.priority_name is not None for e in t.events
        ),
    )


def test_every_returns_policy_is_drawn_on_reverse_entries() -> None:
    for policy in ReturnsPolicy:

        def wanted(entry: LedgerEntry, policy: ReturnsPolicy = policy) -> bool:
            return entry.kind is EntryKind.REVERSE and entry.returns_policy is policy

        _found(cs.ledger_entries(), wanted)


# --------------------------------------------------------------------------------------------
# What the changelog names a tester can call
# --------------------------------------------------------------------------------------------


@FEW
@given(cs.programs(), cs.tier_policies())
def test_the_programs_and_tier_policies_strategies_the_changelog_names_exist(
    program: Program, policy: TierPolicy
) -> None:
    assert isinstance(program, Program)
    assert isinstance(policy, TierPolicy)
    assert {"programs", "tier_policies"} <= set(cs.__all__)


def _metric_keys() -> list[str]:
    return [m.value for m in SlaMetric if m is not SlaMetric.CUSTOM]


def test_escalation_triggers_aim_at_every_metric_and_at_custom_targets() -> None:
    for key in _metric_keys():

        def wanted(trigger: object, key: str = key) -> bool:
            return getattr(trigger, "target", None) == key

        _found(cs.escalation_triggers(), wanted)
    # a custom target is keyed by its name, not by a metric
    _found(
        cs.escalation_triggers(),
        lambda t: getattr(t, "target", None) not in (None, *_metric_keys()),
    )


def test_ticket_histories_include_declared_event_types() -> None:
    # csmcore.kpi declares SatisfactionRated (docs/tickets.md): a CSAT property needs it drawn
    _found(
        cs.tickets(max_events=8),
        lambda t: any(isinstance(e, SatisfactionRated) for e in t.events),
    )
