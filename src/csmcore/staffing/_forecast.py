"""Arrival forecasts by week slot (weekday x time of day) and a staffing plan per slot."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

import attrs

from csmcore._time import require_aware, resolve_zone, zone_name
from csmcore._values import check_iterable
from csmcore.errors import ValidationError, invalid_type
from csmcore.staffing._check import non_negative, v_non_negative
from csmcore.staffing._erlang import StaffingPlan, required_agents

__all__ = ["ArrivalForecast", "SlotPlan", "arrival_forecast", "staffing_plan"]

_DAY = timedelta(days=1)
_MINUTE = timedelta(minutes=1)


def _slot_length(value: object) -> timedelta:
    if not isinstance(value, timedelta):
        raise invalid_type("interval", value, "a datetime.timedelta")
    if value < _MINUTE or value % _MINUTE or _DAY % value:
        raise ValidationError(
            f"interval={value!r} does not cut a day into whole slots; expected whole minutes "
            "dividing 24 hours (15, 30 or 60 minutes, say)",
            field="interval",
            value=value,
        )
    return value


def _v_slot_length(_instance: object, _attribute: object, value: Any) -> None:
    _slot_length(value)


def _counts(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


def _rows(rows: Iterable[Iterable[float]]) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(row) for row in rows)


@attrs.frozen(kw_only=True)
class ArrivalForecast:
    """Mean arrivals per week slot, from :func:`arrival_forecast`.

    ``arrivals[weekday][slot]`` (``weekday`` 0 = Monday, ``slot`` the index of the
    ``interval``-long slot from local midnight) is the number of arrivals in that slot divided
    by ``days_observed[weekday]``, the number of such weekdays in the observed dates.
    """

    timezone: str = attrs.field(validator=attrs.validators.instance_of(str))
    interval: timedelta = attrs.field(validator=_v_slot_length)
    start: date = attrs.field(validator=attrs.validators.instance_of(date))
    end: date = attrs.field(validator=attrs.validators.instance_of(date))
    days_observed: tuple[int, ...] = attrs.field(converter=_counts)
    arrivals: tuple[tuple[float, ...], ...] = attrs.field(converter=_rows)

    def __attrs_post_init__(self) -> None:
        per_day = _DAY // self.interval
        if len(self.days_observed) != 7 or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in self.days_observed
        ):
            raise ValidationError(
                f"days_observed={self.days_observed!r} is not seven counts >= 0 (Monday first)",
                field="days_observed",
                value=self.days_observed,
            )
        if len(self.arrivals) != 7 or any(len(row) != per_day for row in self.arrivals):
            raise ValidationError(
                f"arrivals must be seven rows (Monday first) of {per_day} slots each for "
                f"interval={self.interval!r}",
                field="arrivals",
                value=self.arrivals,
            )
        for row in self.arrivals:
            for mean in row:
                non_negative(mean, "arrivals")

    def slots(self) -> Iterable[tuple[int, time, float]]:
        """``(weekday, local start time, mean arrivals)`` of every week slot, Monday first."""
        per_day = _DAY // self.interval
        for weekday in range(7):
            for slot in range(per_day):
                start = (datetime.min + self.interval * slot).time()
                yield weekday, start, self.arrivals[weekday][slot]

    def at(self, weekday: int, start: time) -> float:
        """The mean arrivals of the slot of ``weekday`` (0 = Monday) holding ``start``."""
        if isinstance(weekday, bool) or not isinstance(weekday, int):
            raise invalid_type("weekday", weekday, "an int, 0 (Monday) to 6 (Sunday)")
        if not 0 <= weekday <= 6:
            raise ValidationError(
                f"weekday={weekday!r} is not 0 (Monday) to 6 (Sunday)", field="weekday"
            )
        if not isinstance(start, time):
            raise invalid_type("start", start, "a datetime.time")
        offset = timedelta(hours=start.hour, minutes=start.minute, seconds=start.second)
        return self.arrivals[weekday][offset // self.interval]


def _instant(item: object, index: int) -> datetime:
    if isinstance(item, datetime):
        return require_aware(item, f"instants[{index}]")
    created = getattr(item, "created_at", None)
    if isinstance(created, datetime):
        return require_aware(created, f"instants[{index}].created_at")
    raise invalid_type(
        f"instants[{index}]", item, "an aware datetime or an object with a created_at (a Ticket)"
    )


def arrival_forecast(
    instants: Iterable[object],
    *,
    timezone: str | tzinfo,
    interval: timedelta = timedelta(hours=1),
    start: date | None = None,
    end: date | None = None,
) -> ArrivalForecast:
    """Mean arrivals per weekday and ``interval``-long slot of the local day in ``timezone``.

    ``instants`` are aware datetimes, or objects with a ``created_at`` (tickets). The observed
    period is the local dates ``start`` (included) to ``end`` (excluded), by default from the
    date of the first arrival to the day after the last. Partial weeks count exactly: each
    weekday's slots are divided by the number of times that weekday occurs in the period (a
    period of 10 days, Monday to the next Wednesday, divides Monday to Wednesday by 2 and the
    other days by 1). Slots are wall-clock: on a daylight-saving change the skipped hour's slot
    gets nothing and the repeated hour's slot gets both hours.

    >>> from datetime import datetime, timezone as tz
    >>> mondays = [datetime(2024, 1, d, 9, 30, tzinfo=tz.utc) for d in (1, 1, 8, 8, 8, 8)]
    >>> f = arrival_forecast(mondays, timezone="UTC", start=date(2024, 1, 1),
    ...                      end=date(2024, 1, 15))
    >>> f.at(0, time(9)), f.at(0, time(10)), f.days_observed[0]
    (3.0, 0.0, 2)
    """
    check_iterable(instants, "instants", "an iterable of aware datetimes or tickets")
    zone = resolve_zone(timezone)
    length = _slot_length(interval)
    per_day = _DAY // length
    counts: dict[tuple[date, int], int] = {}
    first: date | None = None
    last: date | None = None
    for index, item in enumerate(instants):
        local = _instant(item, index).astimezone(zone)
        day = local.date()
        offset = timedelta(hours=local.hour, minutes=local.minute, seconds=local.second)
        key = (day, offset // length)
        counts[key] = counts.get(key, 0) + 1
        first = day if first is None or day < first else first
        last = day if last is None or day > last else last
    for argument, value in (("start", start), ("end", end)):
        if value is not None and (isinstance(value, datetime) or not isinstance(value, date)):
            raise invalid_type(argument, value, "a datetime.date (a local date)")
    begin = start if start is not None else first
    stop = end if end is not None else (last + _DAY if last is not None else None)
    if begin is None or stop is None:
        raise ValidationError(
            "instants is empty: no arrivals and no observed period: give arrivals, or both "
            "start= and end= (local dates, start < end) for a period without any",
            field="instants",
            value=None,
        )
    if stop <= begin:
        raise ValidationError(
            f"the observed period start={begin.isoformat()} to end={stop.isoformat()} (end "
            "excluded) is empty; start must come before end",
            field="end",
            value=stop,
        )
    if first is not None and last is not None and (first < begin or last >= stop):
        outside = first if first < begin else last
        raise ValidationError(
            f"an arrival on {outside.isoformat()} lies outside the observed period "
            f"{begin.isoformat()} to {stop.isoformat()} (end excluded)",
            field="instants",
            value=outside,
        )
    days = [0] * 7
    for weekday in range(7):
        lead = (weekday - begin.weekday()) % 7  # days before the first such weekday
        total = (stop - begin).days
        days[weekday] = 0 if lead >= total else (total - lead + 6) // 7
    sums = [[0] * per_day for _ in range(7)]
    for (day, slot), n in counts.items():
        sums[day.weekday()][slot] += n
    name = zone_name(zone) or str(zone)
    return ArrivalForecast(
        timezone=name,
        interval=length,
        start=begin,
        end=stop,
        days_observed=tuple(days),
        arrivals=tuple(
            tuple(s / days[weekday] if days[weekday] else 0.0 for s in sums[weekday])
            for weekday in range(7)
        ),
    )


@attrs.frozen(kw_only=True)
class SlotPlan:
    """The staffing of one week slot: ``weekday`` (0 = Monday), local ``start`` time, the
    forecast ``arrivals`` and the :class:`StaffingPlan` for them."""

    weekday: int = attrs.field(validator=attrs.validators.in_(range(7)))
    start: time = attrs.field(validator=attrs.validators.instance_of(time))
    arrivals: float = attrs.field(validator=v_non_negative)
    plan: StaffingPlan = attrs.field(validator=attrs.validators.instance_of(StaffingPlan))


def staffing_plan(
    forecast: ArrivalForecast,
    *,
    handle_time: timedelta,
    answer_within: timedelta,
    service_level: float,
    max_occupancy: float = 1.0,
    shrinkage: float = 0.0,
) -> tuple[SlotPlan, ...]:
    """The :func:`required_agents` plan (Erlang C) of every slot of ``forecast``.

    >>> from datetime import datetime, timezone as tz
    >>> calls = [datetime(2024, 1, 1, 9, m, tzinfo=tz.utc) for m in range(0, 60, 3)] * 5
    >>> forecast = arrival_forecast(calls, timezone="UTC")
    >>> plans = staffing_plan(forecast, handle_time=timedelta(minutes=6),
    ...                       answer_within=timedelta(seconds=20), service_level=0.8)
    >>> [(p.start.hour, p.arrivals, p.plan.raw_agents) for p in plans if p.arrivals]
    [(9, 100.0, 14)]
    """
    if not isinstance(forecast, ArrivalForecast):
        raise invalid_type("forecast", forecast, "an ArrivalForecast")
    return tuple(
        SlotPlan(
            weekday=weekday,
            start=start,
            arrivals=mean,
            plan=required_agents(
                arrivals=mean,
                interval=forecast.interval,
                handle_time=handle_time,
                answer_within=answer_within,
                service_level=service_level,
                max_occupancy=max_occupancy,
                shrinkage=shrinkage,
            ),
        )
        for weekday, start, mean in forecast.slots()
    )
