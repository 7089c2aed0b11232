"""The basic strategies of :mod:`csmcore.testing.strategies` (text, names, tags, ids, instants,
custom field values, status and priority maps), which the others build on. Private: import them
from :mod:`csmcore.testing.strategies`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from csmcore._time import MAX_INSTANT, MIN_INSTANT, RANGE_TEXT
from csmcore._values import MAX_IDENTIFIER_LENGTH, text_problem
from csmcore.testing import _derive as check
from csmcore.tickets import FieldValue, Priority, PriorityMap, Status, StatusMap

EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "+05:30")
WORDS = ("ann", "bob", "cho", "dee", "Émile", "zoë", "support", "billing", "vip", "中文")


def _storable(character: str) -> bool:
    """The domain's text rule, one character at a time (it refuses characters, not sequences)."""
    return text_problem(character) is None


TEXT_CHARACTERS = st.characters(exclude_categories=()).filter(_storable)
"""Any character a ticket accepts; surrogates are drawn too and the domain's rule drops them."""


@check.reuse
def text(*, min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Any text tickets and conditions accept, of ``min_size`` to ``max_size`` characters."""
    check.check_size("min_size", min_size, "max_size", max_size)
    return st.text(TEXT_CHARACTERS, min_size=min_size, max_size=max_size)


@check.reuse
def names(*, min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    """Non-empty names (agents, groups, requesters) of ``min_size`` (at least 1) to
    ``max_size`` characters: mostly a few common words of that size, so that conditions hit,
    sometimes any text the domain accepts."""
    check.check_size("min_size", min_size, "max_size", max_size)
    low = max(min_size, 1)
    drawn = text(min_size=low, max_size=max_size)
    words = [word for word in WORDS if low <= len(word) <= max_size]
    return st.one_of(st.sampled_from(words), drawn) if words else drawn


@check.reuse
def tags() -> st.SearchStrategy[str]:
    """A tag: non-empty, no leading or trailing whitespace."""
    return names().map(str.strip).filter(bool)


_LONGEST_DRAWN_ID = 10


@check.reuse
def ticket_ids(*, prefix: str = "") -> st.SearchStrategy[str]:
    """Ticket ids, optionally with a fixed ``prefix`` (text a ticket id accepts, of at most
    245 characters: the drawn part takes up to 10 of the 255 an id may have)."""
    check.check_text("prefix", prefix)
    problem = text_problem(prefix)
    if problem is not None:
        raise InvalidArgument(f"prefix={prefix!r}: {problem}, which no ticket id may hold")
    longest = MAX_IDENTIFIER_LENGTH - _LONGEST_DRAWN_ID
    if len(prefix) > longest:
        raise InvalidArgument(
            f"prefix={prefix[:20]!r}... is {len(prefix)} characters long; expected at most "
            f"{longest} (ticket ids have at most {MAX_IDENTIFIER_LENGTH} characters and the "
            f"drawn part up to {_LONGEST_DRAWN_ID})"
        )
    return st.one_of(
        st.integers(1, 10_000).map(lambda n: f"{prefix}T-{n}"),
        text(min_size=1, max_size=_LONGEST_DRAWN_ID).map(lambda s: f"{prefix}{s}"),
    )


@check.reuse
def instants(
    *, min_value: datetime = EPOCH, max_value: datetime = EPOCH + timedelta(days=3650)
) -> st.SearchStrategy[datetime]:
    """Aware instants between ``min_value`` and ``max_value``, in assorted time zones; both
    bounds within the instants csmcore accepts (from 0003-01-02 up to, excluded, 9998-12-30,
    UTC)."""
    for name, value in (("min_value", min_value), ("max_value", max_value)):
        check.check_instant(name, value)
        if not MIN_INSTANT <= value < MAX_INSTANT:
            raise InvalidArgument(
                f"{name}={value!r} is outside the instants csmcore accepts; {RANGE_TEXT}"
            )
    if min_value > max_value:
        raise InvalidArgument(
            f"min_value={min_value!r} is after max_value={max_value!r}; expected "
            "min_value <= max_value"
        )
    lo = min_value.astimezone(timezone.utc).replace(tzinfo=None)
    hi = max_value.astimezone(timezone.utc).replace(tzinfo=None)
    return st.builds(
        lambda naive, zone: naive.replace(tzinfo=timezone.utc).astimezone(zone),
        st.datetimes(min_value=lo, max_value=hi),
        st.sampled_from(
            [timezone.utc, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]
        ),
    )


@check.reuse
def field_values(*, rich: bool = True) -> st.SearchStrategy[FieldValue]:
    """Custom field values: strings, integers, finite floats, booleans and (unless
    ``rich=False``) finite ``Decimal`` values and aware datetimes in UTC (what a field keeps)."""
    plain = st.one_of(
        names(max_size=6),
        st.integers(-1000, 1000),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.booleans(),
    )
    if not rich:
        return plain
    return st.one_of(
        plain,
        st.decimals(
            allow_nan=False, allow_infinity=False, places=2, min_value=-(10**6), max_value=10**6
        ),
        st.datetimes(
            min_value=datetime(2000, 1, 1),
            max_value=datetime(2040, 1, 1),
            timezones=st.just(timezone.utc),
        ),
    )


@check.reuse
def field_names() -> st.SearchStrategy[str]:
    return st.sampled_from(("plan", "region", "seats", "score", "vip"))


CUSTOM_STATUSES = {
    "Awaiting Vendor": Status.ON_HOLD,
    "Escalated": Status.OPEN,
    "Waiting on QA": Status.PENDING,
    "Parked": Status.ON_HOLD,
}


CUSTOM_PRIORITIES = {
    "1 - Critical": Priority.URGENT,
    "2 - High": Priority.HIGH,
    "3 - Moderate": Priority.NORMAL,
    "5 - Planning": Priority.LOW,
}


@check.reuse
def priority_maps() -> st.SearchStrategy[PriorityMap]:
    """Priority maps with a few custom names."""
    custom = st.dictionaries(
        st.sampled_from(sorted(CUSTOM_PRIORITIES)), st.sampled_from(list(Priority)), max_size=3
    )
    return custom.map(lambda c: PriorityMap(custom=c))


@check.reuse
def priority_pairs() -> st.SearchStrategy[tuple[Priority, str | None]]:
    """``(priority, priority_name)``: a category alone or a custom name with its category."""
    named = [(category, name) for name, category in sorted(CUSTOM_PRIORITIES.items())]
    return st.one_of(st.tuples(st.sampled_from(list(Priority)), st.none()), st.sampled_from(named))


@check.reuse
def status_maps() -> st.SearchStrategy[StatusMap]:
    """Status maps with a few custom names."""
    custom = st.dictionaries(
        st.sampled_from(sorted(CUSTOM_STATUSES)), st.sampled_from(list(Status)), max_size=3
    )
    return custom.map(lambda c: StatusMap(custom=c))
