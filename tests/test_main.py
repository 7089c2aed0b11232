"""``python -m csmcore``: the command line when its extra is installed, else the calendar tour."""

from __future__ import annotations

import subprocess
import sys

from csmcore.__main__ import tour


def test_the_tour_prints_hand_checked_due_times() -> None:
    out = tour()
    # Friday 13:30 with Friday closing at 15:00: 1.5 h on Friday, 2.5 h on Monday from 09:00.
    # The clocks went back on Sunday 2025-11-02, so Monday is in EST (-05:00).
    assert "due 2025-11-03T11:30:00-05:00" in out
    # Wednesday 16:00 + 2 h: one hour on Wednesday, Thanksgiving closed, Friday 09:00 + 1 h.
    assert "due 2025-11-28T10:00:00-05:00" in out
    # Saturday: closed until Monday 09:00, so one business hour ends at 10:00.
    assert "due 2025-11-03T10:00:00-05:00" in out
    assert "4:30:00 (wall clock 2 days, 22:30:00)" in out


def test_python_m_csmcore_is_the_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "csmcore", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for command in ("demo", "report", "backtest", "export"):
        assert command in result.stdout
