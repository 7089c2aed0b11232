"""A calendar grows its precomputed timeline lazily; sharing one across threads must stay exact."""

from __future__ import annotations

import random
import sys
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from csmcore import BusinessCalendar

ZONE = ZoneInfo("America/New_York")


def _calendar() -> BusinessCalendar:
    return BusinessCalendar(
        timezone="America/New_York",
        hours={
            "mon": [("09:00", "17:00")],
            "tue": [("09:00", "17:00")],
            "wed": [("09:00", "17:00"), ("22:00", "06:00")],
        },
    )


def test_threads_sharing_a_fresh_calendar_agree_with_a_single_thread() -> None:
    rnd = random.Random(20261123)
    base = datetime(2000, 1, 1, tzinfo=ZONE)
    # Instants spread over forty years, in a random order, so that the shared timeline has to
    # grow forwards and backwards while other threads are reading it.
    cases = [
        (
            base + timedelta(seconds=rnd.randrange(40 * 365 * 86_400)),
            timedelta(seconds=rnd.randrange(-30 * 3600, 30 * 3600)),
        )
        for _ in range(1200)
    ]
    reference = _calendar()
    expected = [(reference.add(s, d), reference.elapsed(s, s + abs(d))) for s, d in cases]

    shared = _calendar()
    results: list[list[tuple[datetime, timedelta]]] = [[] for _ in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible

    def work(slot: int) -> None:
        try:
            barrier.wait()
            order = list(range(len(cases)))
            random.Random(slot).shuffle(order)
            found = {}
            for index in order:
                start, delta = cases[index]
                found[index] = (shared.add(start, delta), shared.elapsed(start, start + abs(delta)))
            results[slot] = [found[index] for index in range(len(cases))]
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert not errors
    for slot_results in results:
        assert slot_results == expected
