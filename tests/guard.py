"""A hang guard for tests of issue 11: it turns a hang into a failure, and is not a speed check.

The bound is generous on purpose (30 s, where the calls take milliseconds): the tests assert the
work done (years built, statements issued), and benchmarks/bench_limits.py measures speed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def hang_guard(seconds: int = 30) -> Iterator[None]:
    """Fail the test with AssertionError if the block still runs after ``seconds``."""
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        yield  # signals reach the main thread only
        return

    def fail(signum: int, frame: object) -> None:
        raise AssertionError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
