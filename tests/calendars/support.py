"""Builders the calendar tests share: an independent *oracle* that rebuilds a calendar's open
intervals by brute force from the wall-clock spec the calendar was made from (``Spec``), the
Hypothesis strategies of random calendars with that spec (``scenarios``), instants near an
anchor or spread over 2000-2040 in many zones, and business durations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from dateutil.rrule import MO, MONTHLY, rrule
from hypothesis import strategies as st

from csmcore import BusinessCalendar

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
