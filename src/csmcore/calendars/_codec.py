"""Converter hooks for :class:`BusinessCalendar` (registered on import of the package)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from csmcore._values import check_keys
from csmcore.calendars._calendar import BusinessCalendar
from csmcore.calendars._spec import CountryHolidays
from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import converter

__all__: list[str] = []


def _unstructure_calendar(cal: BusinessCalendar) -> dict[str, Any]:
    zone = cal.timezone_name
    if zone is None:
        raise SerializationError(
            f"cannot serialise the time zone {cal.timezone!r}; use a zoneinfo.ZoneInfo, an IANA "
            "name or a fixed offset"
        )
    holidays: Any
    if isinstance(cal.holidays, frozenset):
        holidays = sorted(day.isoformat() for day in cal.holidays)
    elif isinstance(cal.holidays, CountryHolidays):
        holidays = {"country": cal.holidays.country, "subdiv": cal.holidays.subdiv}
    else:
        raise SerializationError(
            f"cannot serialise holidays of type {type(cal.holidays).__name__}; use a list of "
            "dates or CountryHolidays(country=..., subdiv=...) in calendars you store"
        )
    return {
        "timezone": zone,
        "hours": {day: [list(w) for w in windows] for day, windows in cal.hours.items()},
        "holidays": holidays,
        "recurring_holidays": list(cal.recurring_holidays),
        "closures": [[a.isoformat(), b.isoformat()] for a, b in cal.closures],
    }


_CALENDAR_KEYS = frozenset({"timezone", "hours", "holidays", "recurring_holidays", "closures"})


def _structure_calendar(data: Any, _: type) -> BusinessCalendar:
    if not isinstance(data, Mapping):
        raise SerializationError(f"$: {data!r} is not a mapping of calendar fields")
    check_keys(data, _CALENDAR_KEYS, ("timezone", "hours"), unknown="unknown calendar keys")
    holidays_data = data.get("holidays", [])
    holidays: object
    if isinstance(holidays_data, Mapping):
        try:
            holidays = converter.structure(holidays_data, CountryHolidays)
        except Exception as err:
            raise SerializationError(
                f"$.holidays: {holidays_data!r} is not a country spec"
            ) from err
    elif isinstance(holidays_data, list):
        days: list[date] = []
        holidays = days
        for position, text in enumerate(holidays_data):
            try:
                days.append(date.fromisoformat(text))
            except (TypeError, ValueError) as err:
                raise SerializationError(
                    f"$.holidays[{position}]: {text!r} is not an ISO date (YYYY-MM-DD)"
                ) from err
    else:
        raise SerializationError(f"$.holidays: {holidays_data!r} is not a list of ISO dates")
    closures = []
    for position, pair in enumerate(data.get("closures", [])):
        try:
            closures.append((datetime.fromisoformat(pair[0]), datetime.fromisoformat(pair[1])))
        except (TypeError, ValueError, IndexError) as err:
            raise SerializationError(
                f"$.closures[{position}]: {pair!r} is not a pair of ISO datetimes"
            ) from err
    try:
        return BusinessCalendar(
            timezone=data["timezone"],
            hours=data["hours"],
            holidays=holidays,
            recurring_holidays=data.get("recurring_holidays", ()),
            closures=closures,
        )
    except ValidationError as err:
        raise SerializationError(f"$: {err}") from err


converter.register_unstructure_hook(BusinessCalendar, _unstructure_calendar)
converter.register_structure_hook(BusinessCalendar, _structure_calendar)
