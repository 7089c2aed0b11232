"""Malformed input of every kind, as Hypothesis strategies (private; :mod:`csmcore.testing.fuzz`
presents them): huge integers, odd floats, text no store can keep, instants and durations at and
beyond the supported range, deep nesting, and malformed ``from_data`` payloads."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from csmcore.serialization import to_data
from csmcore.testing import strategies as cs

__all__ = [
    "EDGE_DURATIONS",
    "EDGE_INSTANTS",
    "HUGE_INTS",
    "ODD_FLOATS",
    "ODD_TEXTS",
    "UTC",
    "deep",
    "hours_values",
    "huge_ints",
    "junk",
    "junk_durations",
    "junk_instants",
    "junk_payloads",
    "junk_text",
    "rules",
]

UTC = timezone.utc


# -- malformed input ----------------------------------------------------------------------------

HUGE_INTS = (2**63, -(2**63) - 1, 2**64, 10**400, 10**5000, -(10**5000))
"""Integers beyond 64 bits and beyond Python's int-to-text limit (4,300 digits)."""


def huge_ints() -> st.SearchStrategy[int]:
    """One of :data:`HUGE_INTS` (drawn by index: Hypothesis cannot print the largest)."""
    return st.integers(0, len(HUGE_INTS) - 1).map(HUGE_INTS.__getitem__)


ODD_FLOATS = (math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308)

ODD_TEXTS = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\u202e\u200b",
    "'; DROP TABLE csm_tickets; --",
    '%_\\"',
    "x" * 100_000,
    "🎫" * 300,
    "mon-fri",
    "24:00",
    "Europe/Nowhere",
    "FREQ=SECONDLY",
)
"""Text a careless parser, encoder or driver mishandles."""

EDGE_INSTANTS = (
    datetime.min.replace(tzinfo=UTC),
    datetime.max.replace(tzinfo=UTC),
    datetime(1, 1, 1, 12, tzinfo=timezone(timedelta(hours=-5))),
    datetime(9999, 12, 31, 12, tzinfo=timezone(timedelta(hours=5))),
    datetime(3, 1, 2, tzinfo=UTC),
    datetime(9998, 12, 30, tzinfo=UTC),
    datetime(4025, 1, 1, tzinfo=UTC),
    datetime(2025, 3, 30, 1, 30),  # naive
    datetime.min,
    datetime.max,
)
"""Instants at the ends of the datetime range, far in the future, and naive ones."""

EDGE_DURATIONS = (
    timedelta.max,
    timedelta.min,
    timedelta(days=146_400),
    -timedelta(days=146_400),
    timedelta(days=100_000, microseconds=1),
    timedelta(days=999_999_999),
    timedelta(microseconds=1),
    timedelta(0),
    -timedelta(microseconds=1),
)


def deep(depth: int, leaf: Any = 0, kind: str = "list") -> Any:
    """``leaf`` wrapped ``depth`` times in a list (or a dict, ``kind="dict"``), built without
    recursion."""
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"x": value}
    return value


_NESTED: tuple[Any, ...] = (deep(2_000), deep(2_000, kind="dict"), [None] * 100_000)


def junk_text() -> st.SearchStrategy[str]:
    """Text that should be refused or kept exactly: NUL, lone surrogates, controls, very long
    text, SQL metacharacters, and any Unicode."""
    return st.one_of(st.sampled_from(ODD_TEXTS), st.text(max_size=40))


def junk_instants() -> st.SearchStrategy[Any]:
    """Instants csmcore must refuse or handle: the ends of the datetime range in odd zones,
    naive datetimes, dates, text and numbers, among valid ones."""
    return st.one_of(
        st.sampled_from(EDGE_INSTANTS),
        cs.instants(),
        st.datetimes(),
        st.datetimes(timezones=st.just(UTC)),
        st.dates(),
        st.sampled_from(("2025-01-01T00:00:00Z", 1735689600, 1.5, None)),
    )


def junk_durations() -> st.SearchStrategy[Any]:
    """Durations csmcore must refuse or handle: the ends of ``timedelta``, centuries, and
    wrong types (numbers, NaN, text), among ordinary ones."""
    return st.one_of(
        st.sampled_from(EDGE_DURATIONS),
        st.timedeltas(),
        st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)),
        st.sampled_from((3600, 1.5, math.nan, "PT1H", None)),
    )


def junk() -> st.SearchStrategy[Any]:
    """Any value of a wrong or extreme kind: None, booleans, huge integers, NaN and infinities,
    odd text and bytes, odd instants and durations, Decimals, deep and wide containers, plain
    objects."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        huge_ints(),
        st.floats(),
        st.sampled_from(ODD_FLOATS),
        junk_text(),
        st.binary(max_size=8),
        st.sampled_from(EDGE_INSTANTS),
        st.sampled_from(EDGE_DURATIONS),
        st.dates(),
        st.sampled_from((Decimal("NaN"), Decimal("1e999999"), object(), int, type)),
    )
    # drawn by index: Hypothesis cannot print a strategy holding lists 2,000 deep
    nested = st.integers(0, len(_NESTED) - 1).map(_NESTED.__getitem__)
    return st.one_of(
        scalars,
        nested,
        st.recursive(
            scalars,
            lambda inner: st.one_of(
                st.lists(inner, max_size=4),
                st.dictionaries(
                    st.one_of(junk_text(), st.none(), st.integers()), inner, max_size=4
                ),
                st.frozensets(st.one_of(st.integers(), junk_text()), max_size=4),
            ),
            max_leaves=8,
        ),
    )


def rules() -> st.SearchStrategy[Any]:
    """Recurring-holiday rules, mostly absurd: finer than daily, starting in the year 1,
    ``BYEASTER`` far out, malformed, or not rules at all."""
    return st.one_of(
        st.sampled_from(
            (
                "FREQ=SECONDLY",
                "FREQ=MINUTELY;COUNT=10",
                "FREQ=HOURLY",
                "DTSTART:00010101T000000\nRRULE:FREQ=DAILY",
                "DTSTART:99981230T000000\nRRULE:FREQ=DAILY",
                "FREQ=YEARLY;BYEASTER=99999",
                "FREQ=YEARLY;BYEASTER=-99999",
                "FREQ=DAILY;INTERVAL=0",
                "FREQ=WEEKLY;BYDAY=XX",
                "FREQ=YEARLY;BYMONTH=13",
                "RRULE:FREQ=DAILY;UNTIL=99991231T235959",
                "FREQ=YEARLY;COUNT=100000000",
                "",
                "\x00",
            )
        ),
        junk(),
    )


def hours_values() -> st.SearchStrategy[Any]:
    window = st.one_of(
        st.tuples(st.sampled_from(("09:00", "24:00", "25:00", "9", "", "\x00")), junk_text()),
        junk(),
    )
    return st.one_of(
        junk(),
        st.dictionaries(
            st.one_of(st.sampled_from(("mon", "sun", "xyz", 0, 6, 7, -1)), junk()),
            st.one_of(st.lists(window, max_size=3), junk()),
            max_size=3,
        ),
    )


def _mutated(draw: st.DrawFn, data: Any) -> Any:
    """``data`` (what ``to_data`` made) with one part replaced, removed, or given an extra
    key."""
    if isinstance(data, dict) and data and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(data, key=repr)))
        how = draw(st.sampled_from(("replace", "remove", "extra", "recurse")))
        copy = dict(data)
        if how == "replace":
            copy[key] = draw(junk())
        elif how == "remove":
            del copy[key]
        elif how == "extra":
            copy[draw(st.one_of(junk_text(), st.none(), st.integers()))] = draw(junk())
        else:
            copy[key] = _mutated(draw, data[key])
        return copy
    if isinstance(data, list) and data and draw(st.booleans()):
        i = draw(st.integers(0, len(data) - 1))
        copy_list = list(data)
        copy_list[i] = _mutated(draw, data[i]) if draw(st.booleans()) else draw(junk())
        return copy_list
    return draw(junk())


@st.composite
def junk_payloads(draw: st.DrawFn, cls: type) -> Any:
    """Malformed ``from_data`` payloads for ``cls``: a valid object's data with a part
    replaced, removed or added, or junk outright."""
    if draw(st.booleans()):
        try:
            valid = to_data(draw(st.from_type(cls)))
        except Exception:  # a type the strategies cannot draw (a doctest's class): junk only
            return draw(junk())
        return _mutated(draw, valid)
    return draw(junk())


# -- the hang detector ------------------------------------------------------------------------
