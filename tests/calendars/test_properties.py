"""Hypothesis properties of BusinessCalendar over random calendars and random aware instants.

Two kinds of checks:

* an independent *oracle* (``_Oracle`` below) rebuilds the open intervals by brute force from the
  same wall-clock spec the calendar was made from, resolving each window edge with the rules of
  DESIGN.md (a non-existent edge moves forward to the first wall time that exists, an ambiguous
  one takes its first occurrence). ``elapsed``, ``is_open`` and ``open_intervals`` must agree
  with it to the microsecond;
* algebraic laws that tie the methods together (round trips, monotonicity, additivity, the
  earliest / latest semantics of ``add``), over instants spread over 2000-2040.

Instants are drawn in many zones (not only the calendar's) and with both folds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import MO, MONTHLY, rrule
from hypothesis import assume, given
from hypothesis import strategies as st

from csmcore import BusinessCalendar, NoBusinessTimeError, from_data, to_data

UTC = timezone.utc
US = timedelta(microseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WEEK_MINUTES = 7 * 1440

# Zones with DST (Berlin, New York, Sao Paulo until 2019 with midnight changes, Lord Howe with a
# 30-minute change), odd fixed offsets (Kathmandu +05:45) and plain fixed offsets.
CALENDAR_ZONES: list[str | tzinfo] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Sao_Paulo",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "+05:30",
    "-09:30",
    ZoneInfo("Europe/Berlin"),
    timezone(timedelta(hours=-3, minutes=-30)),
]
# Zones the *inputs* are given in: deliberately not only the calendar's.
INPUT_ZONES: list[tzinfo] = [
    UTC,
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
    ZoneInfo("America/Sao_Paulo"),
    ZoneInfo("Asia/Kathmandu"),
    ZoneInfo("Australia/Lord_Howe"),
    ZoneInfo("Asia/Tokyo"),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-11)),
]


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def shift(moment: datetime, us: int) -> datetime:
    """``moment`` moved by ``us`` real microseconds, in its own zone. (Adding a timedelta to a
    datetime with a ZoneInfo is wall-clock arithmetic, which is not what these tests mean.)"""
    return from_us(to_us(moment) + us).astimezone(moment.tzinfo)


def between(a: datetime, b: datetime) -> timedelta:
    """Real time from ``a`` to ``b`` (``b - a`` is wall-clock time when they share a tzinfo)."""
    return timedelta(microseconds=to_us(b) - to_us(a))


def zone_of(spec: str | tzinfo) -> tzinfo:
    if isinstance(spec, tzinfo):
        return spec
    if spec == "UTC":
        return UTC
    if spec[0] in "+-":
        sign = -1 if spec[0] == "-" else 1
        hours, minutes = int(spec[1:3]), int(spec[4:6])
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    return ZoneInfo(spec)


# ------------------------------------------------------------------------------------------------
# The oracle: brute-force open intervals, written independently of csmcore.calendars
# ------------------------------------------------------------------------------------------------


def wall_exists(tz: tzinfo, naive: datetime, fold: int) -> datetime | None:
    aware = naive.replace(tzinfo=tz, fold=fold)
    back = aware.astimezone(UTC).astimezone(tz)
    return aware if back.replace(tzinfo=None, fold=0) == naive else None


def resolve_wall(tz: tzinfo, naive: datetime) -> int:
    """UTC microseconds of a local wall time under DESIGN.md's rules."""
    hits = [hit for fold in (0, 1) if (hit := wall_exists(tz, naive, fold)) is not None]
    if hits:
        return min(to_us(hit) for hit in hits)  # ambiguous: the first occurrence
    probe = naive
    for _ in range(48 * 60):  # a gap: walk forward minute by minute to the first wall time
        probe += timedelta(minutes=1)
        hits = [hit for fold in (0, 1) if (hit := wall_exists(tz, probe, fold)) is not None]
        if hits:
            return min(to_us(hit) for hit in hits)
    raise AssertionError(f"no wall time exists after {naive} in {tz}")  # pragma: no cover


@dataclass(frozen=True)
class Spec:
    """What a random calendar was built from, in plain minutes."""

    zone: str | tzinfo
    windows: tuple[tuple[int, int, int], ...]  # (weekday, open minute, length in minutes)
    holidays: frozenset[date]
    monthly_first_monday: bool
    closures: tuple[tuple[datetime, datetime], ...]

    @property
    def tz(self) -> tzinfo:
        return zone_of(self.zone)

    def closed_on(self, day: date) -> bool:
        if day in self.holidays:
            return True
        return self.monthly_first_monday and day.weekday() == 0 and day.day <= 7

    def window_spans(self, day: date) -> list[tuple[int, int]]:
        """Real (UTC us) spans of the windows that open on ``day``, holidays ignored."""
        midnight = datetime(day.year, day.month, day.day)
        spans = []
        for weekday, opening, length in self.windows:
            if weekday != day.weekday():
                continue
            lo = resolve_wall(self.tz, midnight + timedelta(minutes=opening))
            hi = resolve_wall(self.tz, midnight + timedelta(minutes=opening + length))
            if hi > lo:
                spans.append((lo, hi))
        return spans

    def intervals(self, a: int, b: int) -> list[tuple[int, int]]:
        """Merged open intervals clipped to [a, b), from first principles."""
        tz = self.tz
        first = from_us(a).astimezone(tz).date() - timedelta(days=2)
        last = from_us(b).astimezone(tz).date() + timedelta(days=1)
        raw: list[tuple[int, int]] = []
        day = first
        while day <= last:
            if not self.closed_on(day):
                raw.extend(self.window_spans(day))
            day += timedelta(days=1)
        for c_lo, c_hi in ((to_us(x), to_us(y)) for x, y in self.closures):
            cut: list[tuple[int, int]] = []
            for lo, hi in raw:
                if hi <= c_lo or lo >= c_hi:
                    cut.append((lo, hi))
                    continue
                if lo < c_lo:
                    cut.append((lo, c_lo))
                if c_hi < hi:
                    cut.append((c_hi, hi))
            raw = cut
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(raw):
            lo, hi = max(lo, a), min(hi, b)
            if hi <= lo:
                continue
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
            else:
                merged.append((lo, hi))
        return merged

    def elapsed(self, a: int, b: int) -> int:
        if b < a:
            return -self.elapsed(b, a)
        return sum(hi - lo for lo, hi in self.intervals(a, b))

    def is_open(self, t: int) -> bool:
        return any(lo <= t < hi for lo, hi in self.intervals(t - 1, t + 1))

    def build(self, hours_style: str) -> BusinessCalendar:
        hours: dict[int | str, list[tuple[str | time, str | time]]] = {}
        for weekday, opening, length in self.windows:
            close_minute = (opening + length) % 1440
            open_text = f"{opening // 60:02d}:{opening % 60:02d}"
            close_text = f"{close_minute // 60:02d}:{close_minute % 60:02d}"
            if close_minute == 0 and hours_style != "plain":
                close_text = "24:00"  # the same instant as "00:00" of the next day
            key: int | str = weekday if hours_style == "index" else WEEKDAY_KEYS[weekday]
            hours.setdefault(key, []).append((open_text, close_text))
        rules = (
            [rrule(MONTHLY, byweekday=MO(+1), dtstart=datetime(1999, 1, 1))]
            if self.monthly_first_monday
            else []
        )
        return BusinessCalendar(
            timezone=self.zone,
            hours=hours,
            holidays=sorted(self.holidays),
            recurring_holidays=rules,
            closures=list(self.closures),
        )


WEEKDAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@st.composite
def weekly_windows(draw: st.DrawFn) -> tuple[tuple[int, int, int], ...]:
    """Non-overlapping windows on the weekly circle, each 1 minute to 24 hours long, some of
    them overnight and some closing at midnight ("24:00")."""
    starts = sorted(
        draw(
            st.sets(
                st.one_of(
                    st.integers(0, WEEK_MINUTES - 1),  # any minute
                    st.integers(0, 6 * 24 * 4).map(lambda q: q * 15),  # quarter hours
                ),
                min_size=1,
                max_size=8,
            )
        )
    )
    windows = []
    for index, start in enumerate(starts):
        following = starts[(index + 1) % len(starts)]
        room = (following - start) % WEEK_MINUTES or WEEK_MINUTES
        longest = min(1440, room)
        length = draw(
            st.one_of(
                st.integers(1, longest),
                st.just(longest),  # windows that touch the next one
                st.just(min(longest, 1440 - start % 1440)),  # closes at midnight
            )
        )
        windows.append((start // 1440, start % 1440, length))
    return tuple(windows)


ANCHORS = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2039, 12, 1))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Spec, BusinessCalendar, datetime]:
    """A random calendar with holidays and closures around a random anchor instant."""
    anchor = draw(ANCHORS).replace(tzinfo=UTC)
    # Bias anchors towards the DST seasons (late March, late October, November, February).
    if draw(st.booleans()):
        anchor = anchor.replace(
            month=draw(st.sampled_from([2, 3, 4, 10, 11])), day=draw(st.integers(1, 28))
        )
    zone = draw(st.sampled_from(CALENDAR_ZONES))
    if draw(st.integers(0, 9)) == 0:
        windows: tuple[tuple[int, int, int], ...] = tuple((d, 0, 1440) for d in range(7))
    else:
        windows = draw(weekly_windows())
    near_days = st.integers(-40, 40).map(lambda n: (anchor + timedelta(days=n)).date())
    holidays = draw(st.frozensets(near_days, max_size=6))
    closures = []
    for _ in range(draw(st.integers(0, 3))):
        start = anchor + timedelta(minutes=draw(st.integers(-40 * 1440, 40 * 1440)))
        length = timedelta(minutes=draw(st.integers(1, 3 * 1440)))
        shown = draw(st.sampled_from(INPUT_ZONES))
        closures.append((start.astimezone(shown), (start + length).astimezone(shown)))
    spec = Spec(
        zone=zone,
        windows=windows,
        holidays=holidays,
        monthly_first_monday=draw(st.integers(0, 4)) == 0,
        closures=tuple(closures),
    )
    cal = spec.build(draw(st.sampled_from(["plain", "index", "midnight"])))
    return spec, cal, anchor


def near(anchor: datetime, days: int = 30) -> st.SearchStrategy[datetime]:
    """Aware instants within ``days`` of ``anchor``, shown in a random zone."""
    return st.builds(
        lambda offset, zone: (anchor + timedelta(microseconds=offset)).astimezone(zone),
        st.one_of(
            st.integers(-days * 86_400, days * 86_400).map(lambda s: s * 1_000_000),
            st.integers(-days * 86_400_000_000, days * 86_400_000_000),
        ),
        st.sampled_from(INPUT_ZONES),
    )


WIDE_INSTANTS = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(2000, 1, 3), max_value=datetime(2040, 12, 28)),
    st.sampled_from(INPUT_ZONES),
)
DURATIONS = st.one_of(
    st.integers(1, 200 * 3600).map(lambda s: timedelta(seconds=s)),
    st.integers(1, 200 * 3_600_000_000).map(lambda u: timedelta(microseconds=u)),
)


# ------------------------------------------------------------------------------------------------
# Agreement with the oracle
# ------------------------------------------------------------------------------------------------


@given(st.data(), scenarios())
def test_elapsed_and_open_intervals_match_the_oracle(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    spec, cal, anchor = scenario
    a = data.draw(near(anchor), label="a")
    b = data.draw(near(anchor), label="b")
    expected = spec.elapsed(to_us(a), to_us(b))
    assert cal.elapsed(a, b) == timedelta(microseconds=expected)
    lo, hi = sorted((a, b), key=to_us)
    got = [(to_us(x), to_us(y)) for x, y in cal.open_intervals(lo, hi)]
    assert got == spec.intervals(to_us(lo), to_us(hi))


@given(st.data(), scenarios())
def test_is_open_matches_the_oracle(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    spec, cal, anchor = scenario
    for _ in range(3):
        t = data.draw(near(anchor), label="t")
        assert cal.is_open(t) is spec.is_open(to_us(t))
    # Exactly at the edges of the windows around the anchor: open at the opening, closed at
    # the closing instant (half-open windows). The oracle's intervals are merged, so a closing
    # instant strictly inside the range opens nothing.
    day = 86_400_000_000
    lo_bound, hi_bound = to_us(anchor) - day, to_us(anchor) + day
    for lo, hi in spec.intervals(lo_bound, hi_bound):
        if lo > lo_bound:
            assert cal.is_open(from_us(lo))
            assert not cal.is_open(from_us(lo - 1))
        if hi < hi_bound:
            assert not cal.is_open(from_us(hi))
            assert cal.is_open(from_us(hi - 1))


@given(st.data(), scenarios())
def test_holidays_have_no_open_time(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    spec, cal, _ = scenario
    closed = sorted(spec.holidays)
    assume(closed)
    holiday = data.draw(st.sampled_from(closed), label="holiday")
    for lo, hi in spec.window_spans(holiday):
        start, end = from_us(lo), from_us(hi)
        assert cal.elapsed(start, end) == timedelta(0)
        assert not cal.is_open(start)
        assert not cal.is_open(from_us((lo + hi) // 2))
        assert list(cal.open_intervals(start, end)) == []
        # add never spends time inside a holiday window: the microsecond it ends on is outside
        u = to_us(cal.add(start, US))
        assert not lo <= u - 1 < hi


# ------------------------------------------------------------------------------------------------
# Laws of add / elapsed, over 2000-2040
# ------------------------------------------------------------------------------------------------


@given(st.data(), scenarios(), DURATIONS)
def test_add_inverts_elapsed_and_gives_the_earliest_or_latest_instant(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime], d: timedelta
) -> None:
    _, cal, anchor = scenario
    s = data.draw(st.one_of(near(anchor), WIDE_INSTANTS), label="s")
    assert cal.add(s, timedelta(0)) is s

    # Forwards: elapsed(s, add(s, d)) == d ...
    u = cal.add(s, d)
    assert u.tzinfo is s.tzinfo
    assert to_us(u) > to_us(s)
    assert cal.elapsed(s, u) == d
    # ... u ends business time: the microsecond before it is open ...
    assert cal.is_open(shift(u, -1))
    # ... and it is the earliest such instant: one microsecond earlier is one short.
    assert cal.elapsed(s, shift(u, -1)) == d - US

    # Backwards: elapsed(add(s, -d), s) == d, at an open instant, the latest such.
    v = cal.add(s, -d)
    assert v.tzinfo is s.tzinfo
    assert to_us(v) < to_us(s)
    assert cal.elapsed(v, s) == d
    assert cal.elapsed(s, v) == -d
    assert cal.is_open(v)
    assert cal.elapsed(shift(v, 1), s) == d - US


@given(st.data(), scenarios(), DURATIONS, DURATIONS)
def test_add_is_monotonic_in_the_duration_and_the_start(
    data: st.DataObject,
    scenario: tuple[Spec, BusinessCalendar, datetime],
    d1: timedelta,
    d2: timedelta,
) -> None:
    _, cal, anchor = scenario
    s = data.draw(near(anchor), label="s")
    small, large = sorted((d1, d2))
    assert to_us(cal.add(s, small)) <= to_us(cal.add(s, large))
    assert to_us(cal.add(s, -large)) <= to_us(cal.add(s, -small))
    if small < large:
        assert to_us(cal.add(s, small)) < to_us(cal.add(s, large))
        assert to_us(cal.add(s, -large)) < to_us(cal.add(s, -small))
    # Adding in two steps equals adding at once, in both directions.
    assert to_us(cal.add(cal.add(s, small), large)) == to_us(cal.add(s, small + large))
    assert to_us(cal.add(cal.add(s, -small), -large)) == to_us(cal.add(s, -small - large))

    s2 = data.draw(near(anchor), label="s2")
    early, late = sorted((s, s2), key=to_us)
    for delta in (small, -small):
        assert to_us(cal.add(early, delta)) <= to_us(cal.add(late, delta))


@given(st.data(), scenarios())
def test_elapsed_is_additive_and_antisymmetric(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    _, cal, anchor = scenario
    # a anywhere in 2000-2040 or near the calendar's holidays; b and c within 400 days of a
    # (so each example builds a few years of timeline, not forty).
    a = data.draw(st.one_of(near(anchor), WIDE_INSTANTS), label="a")
    b, c = (data.draw(near(a.astimezone(UTC), days=400), label=name) for name in "bc")
    assert cal.elapsed(a, c) == cal.elapsed(a, b) + cal.elapsed(b, c)
    assert cal.elapsed(a, b) == -cal.elapsed(b, a)
    assert cal.elapsed(a, a) == timedelta(0)
    # Business time never exceeds real time, and has the sign of end - start.
    real = between(a, b)
    spent = cal.elapsed(a, b)
    assert abs(spent) <= abs(real)
    assert spent == timedelta(0) or (spent > timedelta(0)) == (real > timedelta(0))


@given(st.data(), scenarios())
def test_open_intervals_next_open_and_next_close_agree_with_elapsed(
    data: st.DataObject, scenario: tuple[Spec, BusinessCalendar, datetime]
) -> None:
    _, cal, anchor = scenario
    a = data.draw(near(anchor), label="a")
    b = data.draw(near(anchor), label="b")
    if to_us(b) < to_us(a):
        a, b = b, a
    spans = list(cal.open_intervals(a, b))
    assert sum((between(lo, hi) for lo, hi in spans), timedelta(0)) == cal.elapsed(a, b)
    for lo, hi in spans:
        assert lo.tzinfo is a.tzinfo
        assert hi.tzinfo is a.tzinfo
        assert to_us(a) <= to_us(lo) < to_us(hi) <= to_us(b)
        assert cal.elapsed(lo, hi) == between(lo, hi)  # open throughout
    for (_, hi), (lo, _) in pairwise(spans):
        assert to_us(hi) < to_us(lo)  # adjacent intervals come out merged
        assert cal.elapsed(hi, lo) == timedelta(0)  # closed in between

    t = data.draw(near(anchor), label="t")
    opened = cal.next_open(t)
    assert opened.tzinfo is t.tzinfo
    assert cal.is_open(opened)
    if cal.is_open(t):
        assert opened is t
    else:
        assert to_us(opened) > to_us(t)
        assert cal.elapsed(t, opened) == timedelta(0)
        assert not cal.is_open(shift(opened, -1))
        assert to_us(cal.add(t, US)) == to_us(opened) + 1
    try:
        closes = cal.next_close(t)
    except NoBusinessTimeError:
        # Only a calendar that never closes within the search horizon may refuse.
        horizon = timedelta(days=BusinessCalendar.search_horizon_days)
        assert cal.elapsed(opened, shift(opened, horizon // US)) == horizon
        return
    assert closes.tzinfo is t.tzinfo
    assert to_us(closes) > to_us(opened)
    assert cal.elapsed(opened, closes) == between(opened, closes)
    assert cal.is_open(shift(closes, -1))
    assert not cal.is_open(closes)


# ------------------------------------------------------------------------------------------------
# 24/7 in UTC is plain datetime arithmetic
# ------------------------------------------------------------------------------------------------

ALWAYS = BusinessCalendar.always()


@given(
    WIDE_INSTANTS,
    WIDE_INSTANTS,
    st.integers(-50 * 365 * 86_400_000_000, 50 * 365 * 86_400_000_000).map(
        lambda u: timedelta(microseconds=u)
    ),
)
def test_always_open_agrees_with_datetime_arithmetic(
    s: datetime, e: datetime, d: timedelta
) -> None:
    # Real elapsed time (compared in UTC: subtracting two datetimes that share a tzinfo would
    # give wall-clock time instead).
    assert ALWAYS.elapsed(s, e) == e.astimezone(UTC) - s.astimezone(UTC)
    u = ALWAYS.add(s, d)
    assert u.tzinfo is s.tzinfo
    assert u.astimezone(UTC) == s.astimezone(UTC) + d
    assert ALWAYS.is_open(s)
    assert ALWAYS.next_open(s) is s


# ------------------------------------------------------------------------------------------------
# Serialization
# ------------------------------------------------------------------------------------------------


@given(scenarios())
def test_serialization_round_trip(scenario: tuple[Spec, BusinessCalendar, datetime]) -> None:
    cal = scenario[1]
    data = to_data(cal)
    back = from_data(json.loads(json.dumps(data)), BusinessCalendar)
    assert back == cal
    assert to_data(back) == data


def test_oracle_resolves_dst_edges_as_design_says() -> None:
    """The oracle itself, on the two cases DESIGN.md pins (so its agreement means something)."""
    berlin = ZoneInfo("Europe/Berlin")
    # 2025-03-30 02:30 does not exist in Berlin (02:00 CET -> 03:00 CEST): first instant after
    # the gap is 03:00 CEST = 01:00 UTC.
    assert from_us(resolve_wall(berlin, datetime(2025, 3, 30, 2, 30))) == datetime(
        2025, 3, 30, 1, 0, tzinfo=UTC
    )
    # 2025-10-26 02:30 happens twice (CEST then CET): first occurrence 02:30 CEST = 00:30 UTC.
    assert from_us(resolve_wall(berlin, datetime(2025, 10, 26, 2, 30))) == datetime(
        2025, 10, 26, 0, 30, tzinfo=UTC
    )


@pytest.mark.parametrize("weekly", [((0, 540, 480),), ((4, 1320, 480), (6, 0, 1440))])
def test_oracle_counts_plain_weeks(weekly: tuple[tuple[int, int, int], ...]) -> None:
    spec = Spec("UTC", weekly, frozenset(), False, ())
    start = to_us(datetime(2025, 1, 6, tzinfo=UTC))  # a Monday
    week = 7 * 86_400_000_000
    assert spec.elapsed(start, start + week) == sum(length for *_, length in weekly) * 60_000_000
