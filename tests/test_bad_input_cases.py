"""Defects the bad-input audit found, one case each (tests/test_bad_input_audit.py sweeps)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from csmcore.calendars import BusinessCalendar
from csmcore.errors import CsmError, InternalError, ValidationError
from csmcore.escalation import AddTags, RemoveTags
from csmcore.loyalty import Cap, Multiplier, Period, SpendRule, Tier, TierPolicy
from csmcore.testing.builders import make_ticket
from csmcore.tickets import TagsChanged

UTC = timezone.utc
T0 = datetime(2025, 3, 3, 10, tzinfo=UTC)


def _refusal(call: Callable[[], Any]) -> CsmError:
    with pytest.raises(CsmError) as caught:
        call()
    assert not isinstance(caught.value, InternalError)
    return caught.value


# -- an unhashable item in a collection that becomes a set --------------------------------------

UNHASHABLE: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "Ticket.create tags": (
        "tags",
        lambda v: make_ticket("T-1", tags=v),
    ),
    "TagsChanged added": ("added", lambda v: TagsChanged(at=T0, actor="a", added=v)),
    "AddTags": ("tags", lambda v: AddTags(tags=v)),
    "RemoveTags": ("tags", lambda v: RemoveTags(tags=v)),
    "BusinessCalendar holidays": (
        "holidays",
        lambda v: BusinessCalendar.always(timezone="UTC", holidays=v),
    ),
    "Multiplier tiers": ("tiers", lambda v: Multiplier(name="m", factor=2, tiers=v)),
    "SpendRule categories": (
        "categories",
        lambda v: SpendRule(name="s", points=Decimal(1), categories=v),
    ),
    "Cap events": (
        "events",
        lambda v: Cap(name="c", points=10, period=Period.MONTH, events=v),
    ),
    "TierPolicy non_qualifying": (
        "non_qualifying",
        lambda v: TierPolicy(tiers=[Tier(name="gold", threshold=10)], non_qualifying=v),
    ),
}


@pytest.mark.parametrize("name", sorted(UNHASHABLE))
def test_an_unhashable_item_is_refused_naming_the_argument_and_the_item(name: str) -> None:
    argument, build = UNHASHABLE[name]
    err = _refusal(lambda: build(["ok", ["not", "hashable"]]))
    assert isinstance(err, ValidationError)
    assert argument in str(err)
    assert "['not', 'hashable']" in str(err)
    assert "unhashable type" not in str(err)


def test_a_set_of_dates_still_makes_holidays() -> None:
    cal = BusinessCalendar.always(timezone="UTC", holidays=[date(2025, 1, 1)])
    assert not cal.is_open(datetime(2025, 1, 1, 12, tzinfo=UTC))
    assert make_ticket("T-1").tags == frozenset()
