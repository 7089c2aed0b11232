"""The importers' fast path builds exactly the events the validating constructors build."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.errors import CsmError
from csmcore.tickets import (
    Assigned,
    Channel,
    FieldsChanged,
    FrozenMap,
    Priority,
    PriorityChanged,
    RequesterChanged,
    Role,
    Status,
    StatusChanged,
    TicketCreated,
    event_to_data,
)
from csmcore.tickets._enums import PRIORITY_VALUES, STATUS_VALUES
from csmcore.tickets.importing import _events
from csmcore.tickets.importing._events import EventMaker

# Texts of every kind a constructor may meet: plain, repeated, empty, NUL, non-ASCII, a lone
# surrogate, category values (which a custom name may not take), and a few non-texts.
_TEXTS = st.one_of(
    st.sampled_from(
        ["sys", "bob", "Active", "open", "solved", "high", "low", "", "a\x00b", "é", "\ud800"]
    ),
    st.text(max_size=6),
)
_OPTIONAL = st.one_of(st.none(), _TEXTS, st.integers(0, 3))
_AT = st.one_of(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2030, 1, 1),
        timezones=st.just(timezone.utc),
    ),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2030, 1, 1),
        timezones=st.sampled_from([ZoneInfo("Europe/Rome"), timezone(timedelta(hours=2))]),
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)),  # naive
)
_FIELD_VALUES = st.one_of(
    st.none(), st.booleans(), _TEXTS, st.integers(-5, 5), st.floats(allow_nan=True)
)
_FIELDS = st.one_of(
    st.dictionaries(_TEXTS, _FIELD_VALUES, max_size=5),
    st.dictionaries(st.sampled_from(["a", "b", 3]), st.just("x"), max_size=3),
)


def _same(fast: Callable[[], Any], slow: Callable[[], Any]) -> None:
    """Both build equal events with the same cached instant and encoding, or both raise the
    same error."""
    error: CsmError | None = None
    try:
        expected = slow()
    except CsmError as err:
        error = err
    if error is not None:
        with pytest.raises(type(error)) as raised:
            fast()
        assert str(raised.value) == str(error)
        nan = raised.value.value != raised.value.value
        assert nan or raised.value.details() == error.details()
        return
    got = fast()
    assert type(got) is type(expected)
    assert got == expected
    assert got._at_us == expected._at_us
    assert event_to_data(got) == event_to_data(expected)
    for name in ("fields", "changes"):
        if hasattr(expected, name):
            assert type(getattr(got, name)) is FrozenMap
            assert list(getattr(got, name)) == list(getattr(expected, name))
            assert getattr(got, name)._plain == getattr(expected, name)._plain


def test_the_category_values_are_the_model_s() -> None:
    assert _events.STATUS_VALUES == STATUS_VALUES
    assert _events.PRIORITY_VALUES == PRIORITY_VALUES


@settings(max_examples=300)
@given(
    at=_AT,
    actor=_OPTIONAL,
    ticket_id=st.one_of(_TEXTS, st.just("x" * 256)),
    created_by=st.sampled_from([*Role, "agent"]),
    channel=st.sampled_from([*Channel, "phone"]),
    priority=st.sampled_from([*Priority, "high"]),
    priority_name=_OPTIONAL,
    requester=_OPTIONAL,
    group=_OPTIONAL,
    assignee=_OPTIONAL,
    status=st.sampled_from([*Status, "open"]),
    status_name=_OPTIONAL,
    fields=_FIELDS,
)
def test_created_is_what_the_constructor_builds(**kwargs: Any) -> None:
    maker = EventMaker()
    for _ in range(2):  # once to learn the texts, once from what it remembers
        _same(lambda: maker.created(**kwargs), lambda: TicketCreated(**kwargs))


@settings(max_examples=300)
@given(
    at=_AT,
    actor=_OPTIONAL,
    status=st.sampled_from([*Status, "open"]),
    status_name=_OPTIONAL,
    priority=st.sampled_from([*Priority, "high"]),
    priority_name=_OPTIONAL,
    group=_OPTIONAL,
    assignee=_OPTIONAL,
    requester=_OPTIONAL,
    changes=_FIELDS,
)
def test_the_other_events_are_what_the_constructors_build(
    at: Any,
    actor: Any,
    status: Any,
    status_name: Any,
    priority: Any,
    priority_name: Any,
    group: Any,
    assignee: Any,
    requester: Any,
    changes: Any,
) -> None:
    maker = EventMaker()
    for _ in range(2):
        _same(
            lambda: maker.status_changed(at, actor, status, status_name),
            lambda: StatusChanged(at=at, actor=actor, status=status, status_name=status_name),
        )
        _same(
            lambda: maker.priority_changed(at, actor, priority, priority_name),
            lambda: PriorityChanged(
                at=at, actor=actor, priority=priority, priority_name=priority_name
            ),
        )
        _same(
            lambda: maker.assigned(at, actor, group, assignee),
            lambda: Assigned(at=at, actor=actor, group=group, assignee=assignee),
        )
        _same(
            lambda: maker.requester_changed(at, actor, requester),
            lambda: RequesterChanged(at=at, actor=actor, requester=requester),
        )
        _same(
            lambda: maker.fields_changed(at, actor, changes),
            lambda: FieldsChanged(at=at, actor=actor, changes=changes),
        )


def test_the_remembered_texts_stay_bounded() -> None:
    maker = EventMaker()
    at = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for n in range(_events._MAX_TEXTS + 10):
        maker.requester_changed(at, None, f"caller {n}")
        assert maker._texts  # the fast path was taken: it remembers the texts it checked
    assert len(maker._texts) <= _events._MAX_TEXTS
