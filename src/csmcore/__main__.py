"""``python -m csmcore``: the ``csmcore`` command, or a tour of the calendar without it.

With the ``[cli]`` extra installed, ``python -m csmcore ARGS`` is ``csmcore ARGS`` (``demo``,
``report``, ``backtest``, ``export``). Without it, it prints :func:`tour`: what a support lead
would ask of a calendar (when is a 4-business-hour reply due for a ticket that arrives on a
Friday afternoon before a holiday weekend, across a DST change) and how to install the command.
"""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from csmcore import BusinessCalendar


def main(argv: list[str] | None = None) -> int:
    """Run the ``csmcore`` command when its extra is installed, else print :func:`tour`."""
    try:
        from csmcore.cli import _app
    except ImportError:
        sys.stdout.write(tour())
        sys.stdout.write(
            "\nThe csmcore command (demo, report, backtest, export) needs its extra: "
            "pip install 'csmcore[cli]'\n"
        )
        return 0
    return _app.main(argv)


def tour() -> str:
    """The calendar tour's text."""
    zone = ZoneInfo("America/New_York")
    calendar = BusinessCalendar(
        timezone="America/New_York",
        hours={
            "mon": [("09:00", "17:00")],
            "tue": [("09:00", "17:00")],
            "wed": [("09:00", "17:00")],
            "thu": [("09:00", "17:00")],
            "fri": [("09:00", "15:00")],
        },
        holidays=[date(2025, 11, 27)],  # Thanksgiving
    )
    lines = [f"calendar: {calendar!r}", ""]
    cases = [
        ("Friday 13:30, 4 business hours", datetime(2025, 10, 31, 13, 30, tzinfo=zone), 4),
        ("Wednesday before Thanksgiving 16:00, 2h", datetime(2025, 11, 26, 16, 0, tzinfo=zone), 2),
        ("Saturday (weekend), 1 business hour", datetime(2025, 11, 1, 10, 0, tzinfo=zone), 1),
    ]
    for label, created, hours in cases:
        due = calendar.add(created, timedelta(hours=hours))
        wall = due - created
        lines.append(f"{label}")
        lines.append(f"  created {created.isoformat()}  due {due.isoformat()}  (wall clock {wall})")
    start = datetime(2025, 10, 31, 13, 30, tzinfo=zone)
    end = datetime(2025, 11, 3, 12, 0, tzinfo=zone)  # DST ended on Sunday 2025-11-02
    lines.append("")
    lines.append(
        f"business time from {start.isoformat()} to {end.isoformat()}: "
        f"{calendar.elapsed(start, end)} (wall clock {end - start})"
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
