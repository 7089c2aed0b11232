"""Business calendars: exact, DST-correct business-time arithmetic.

A :class:`BusinessCalendar` knows when a team is open: weekly windows in the local wall-clock
time of an IANA zone, holidays, recurring closures and partial-day closures. It answers
``add`` (a business duration from an instant, forwards or backwards), ``elapsed`` (business time
between two instants, signed), ``is_open``, ``next_open`` and
:meth:`BusinessCalendar.open_intervals`.

Business time is *real elapsed time* inside open windows. On a DST change day a 01:00-04:00
window holds two (spring forward) or four (fall back) real hours. A window edge that does not
exist locally moves forward to the first instant that exists; an ambiguous one takes its first
occurrence.

>>> from datetime import datetime, timedelta, date
>>> from zoneinfo import ZoneInfo
>>> berlin = ZoneInfo("Europe/Berlin")
>>> cal = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="Europe/Berlin",
...                               holidays=[date(2025, 12, 25), date(2025, 12, 26)])
>>> cal.add(datetime(2025, 12, 24, 16, 0, tzinfo=berlin), timedelta(hours=2))
datetime.datetime(2025, 12, 29, 10, 0, tzinfo=zoneinfo.ZoneInfo(key='Europe/Berlin'))
>>> cal.elapsed(datetime(2025, 12, 24, 16, 0, tzinfo=berlin),
...             datetime(2025, 12, 29, 10, 0, tzinfo=berlin))
datetime.timedelta(seconds=7200)

How it works: the calendar turns its rules into a sorted list of open intervals in UTC
microseconds, with a running total of business time, one calendar year at a time and only for
the years that are asked about. ``add`` and ``elapsed`` are then two binary searches each, exact
to the microsecond. Instants given in the calendar's own zone take a faster wall-clock path
whenever no DST change falls inside or next to an open window (checked per year). A five-day week
costs about 80 KiB of memory per year covered (``benchmarks/bench_calendar.py`` measures it).
Engines that ask many questions of one calendar use those positions directly through
:class:`BusinessTimeline` (``cal.timeline``).
"""

from __future__ import annotations

from csmcore.calendars import _codec  # registers the converter hooks
from csmcore.calendars._calendar import BusinessCalendar
from csmcore.calendars._spec import WEEKDAYS, CountryHolidays
from csmcore.calendars._timeline import BusinessTimeline

__all__ = ["WEEKDAYS", "BusinessCalendar", "BusinessTimeline", "CountryHolidays"]

del _codec

# The public module of each class is the package: reprs, pickles and the documentation name
# ``csmcore.calendars.BusinessCalendar``, whichever private module defines it.
for _public in (BusinessCalendar, BusinessTimeline, CountryHolidays):
    _public.__module__ = __name__
del _public
