"""Small timing helpers shared by the scripts in ``benchmarks/``.

Every benchmark here measures csmcore against its peers in one process, on the same inputs,
and reports the best of several repeats (the least disturbed run: noise on a shared machine
only ever adds time). Typical use::

    from _common import best_of, ratio_line, rate

    seconds = best_of(lambda: run(inputs), repeats=5)
    print(rate("csmcore add", len(inputs), seconds))
    print(ratio_line("add: csmcore / pandas", ours_ops, theirs_ops, goal=50))

Scripts run as ``python benchmarks/<script>.py``, so this module is imported as ``_common``
(the script's own directory is first on ``sys.path``).
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of each repeat of one measurement of ``calls`` operations."""

    label: str
    calls: int
    runs: tuple[float, ...] = field(default=())

    @property
    def best(self) -> float:
        """The fastest repeat, in seconds."""
        return min(self.runs)

    @property
    def ops_per_second(self) -> float:
        """Operations per second of the fastest repeat."""
        return self.calls / self.best

    @property
    def us_per_op(self) -> float:
        """Microseconds per operation of the fastest repeat."""
        return self.best / self.calls * 1e6


def best_of(func: Callable[[], object], *, repeats: int = 5) -> tuple[float, ...]:
    """Run ``func`` ``repeats`` times; return each run's wall-clock seconds (perf_counter).

    The garbage collector is collected before and disabled during each run, as ``timeit``
    does, so that a collection triggered by one library's garbage does not land in another
    library's timing.
    """
    if repeats < 1:
        raise ValueError(f"repeats={repeats!r}: expected at least 1")
    runs: list[float] = []
    enabled = gc.isenabled()
    try:
        for _ in range(repeats):
            gc.collect()
            gc.disable()
            started = time.perf_counter()
            func()
            runs.append(time.perf_counter() - started)
            if enabled:
                gc.enable()
    finally:
        if enabled:
            gc.enable()
    return tuple(runs)


def measure(label: str, calls: int, func: Callable[[], object], *, repeats: int = 5) -> Timing:
    """Time ``func`` (which performs ``calls`` operations) with :func:`best_of`."""
    return Timing(label=label, calls=calls, runs=best_of(func, repeats=repeats))


def fmt_ops(ops_per_second: float) -> str:
    """``1234567.8`` -> ``'1,234,568 ops/s'``."""
    return f"{ops_per_second:,.0f} ops/s"


def rate_line(timing: Timing, note: str = "") -> str:
    """One aligned line: label, ops/s, µs/op, calls timed, best and worst repeat."""
    worst = max(timing.runs)
    text = (
        f"  {timing.label:<44} {fmt_ops(timing.ops_per_second):>17}  "
        f"{timing.us_per_op:8.2f} µs/op  ({timing.calls:,} calls, best of {len(timing.runs)}: "
        f"{timing.best:.3f} s, worst {worst:.3f} s)"
    )
    return f"{text}  {note}" if note else text


def ratio_line(label: str, ours: float, theirs: float, *, goal: float | None = None) -> str:
    """``ours / theirs`` as ``'label: 57.3x'``, with ``goal >= 50x: PASS`` when a goal is given."""
    ratio = ours / theirs
    text = f"  {label:<44} {ratio:8.1f}x"
    if goal is None:
        return text
    verdict = "PASS" if ratio >= goal else "MISS"
    return f"{text}   goal >= {goal:g}x: {verdict}"


def environment_lines() -> list[str]:
    """Interpreter, platform and CPU count, to print at the top of every benchmark."""
    return [
        f"  python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        f"  executable {sys.executable}",
    ]


def heading(text: str) -> str:
    """A section heading line."""
    return f"\n== {text} " + "=" * max(0, 94 - len(text))


class Outcomes:
    """Counts of outcome classes of a comparison with a peer, with the first example of each.

    ``agree`` names the class of inputs where both sides agree; a class whose name starts
    with ``UNEXPLAINED`` makes the comparison fail.
    """

    def __init__(self, agree: str) -> None:
        self.agree = agree
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def add(self, outcome: str, example: str) -> None:
        self.counts[outcome] += 1
        self.examples.setdefault(outcome, example)

    @property
    def unexplained(self) -> int:
        return sum(n for outcome, n in self.counts.items() if outcome.startswith("UNEXPLAINED"))

    def outcome_lines(self) -> list[str]:
        """One line per class, most common first, with an example of each disagreement."""
        out = []
        for outcome, n in self.counts.most_common():
            out.append(f"    {n:>7,}  {outcome}")
            if outcome != self.agree:
                out.append(f"             e.g. {self.examples[outcome]}")
        return out
