"""Issue 11: ticket entry points refuse instants outside the supported range up front."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from csmcore.errors import InvalidType, ValidationError
from csmcore.tickets import Role, Ticket

UTC = timezone.utc
LATE = datetime.max.replace(tzinfo=timezone(timedelta(hours=-5)))  # UTC form overflows
EARLY = datetime.min.replace(tzinfo=timezone(timedelta(hours=5)))
END = datetime.max.replace(tzinfo=UTC)


def _create(at: datetime) -> Ticket:
    return Ticket.create(
        at=at,
        ticket_id="T-1",
        created_by=Role.REQUESTER,
        channel="web",
        priority="normal",
        requester="r",
    )[0]


TICKET = _create(datetime(2025, 1, 6, 9, tzinfo=UTC))
CALLS: dict[str, Callable[[datetime], object]] = {
    "create": _create,
    "comment": lambda at: TICKET.comment(at, Role.AGENT),
    "set_status": lambda at: TICKET.set_status(at, "open"),
    "tag": lambda at: TICKET.tag(at, ["a"]),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("at", [LATE, EARLY, END], ids=["late", "early", "end"])
def test_instants_out_of_range_are_refused(name: str, at: datetime) -> None:
    with pytest.raises(ValidationError, match=r"^at=.*supported range") as info:
        CALLS[name](at)
    assert info.value.field == "at"
    assert not isinstance(info.value, OverflowError)


def test_set_fields_with_changes_not_a_mapping_is_invalid_type() -> None:
    with pytest.raises(InvalidType, match=r"^changes=-1 is a int; expected a mapping") as info:
        TICKET.set_fields(datetime(2025, 1, 7, tzinfo=UTC), -1)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    assert info.value.field == "changes"
