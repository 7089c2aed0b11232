"""The cycles of a target key as the engine replays a ticket (private)."""

from __future__ import annotations

from typing import Final

from csmcore.sla._compile import WALL, KeyPlan, Spec, TimeLine
from csmcore.sla._enums import OnChange

__all__ = ["Cycle", "Memos", "Track", "memo_for"]

_RESTART: Final = OnChange.RESTART


Memos = dict[TimeLine, dict[int, int]]
"""The positions one run has computed, per clock (every target of a ticket shares them).

A plain dict (its lookups are the interpreter's fast path); :func:`memo_for` adds a clock's."""


def memo_for(memos: Memos, clock: TimeLine) -> dict[int, int]:
    memo = memos.get(clock)
    if memo is None:
        memo = memos[clock] = {}
    return memo


class Cycle:
    """One cycle of a target key: counted time ``used`` so far plus the running segment.

    ``run_us`` / ``run_pos`` are the instant and position where the running segment began
    (None while paused or stopped); ``segs`` the finished running segments, kept only when a
    later target may measure on another clock (else None); ``base`` the
    position of ``start`` when known. A breach is recorded by :meth:`check`, which the engine
    calls before anything that changes how the clock runs (a pause, a stop, a new target) and
    at the judging instant: while nothing changes, the breach instant is the same whenever it
    is found.
    """

    __slots__ = (
        "base",
        "breach",
        "clock",
        "memo",
        "memos",
        "number",
        "run_pos",
        "run_us",
        "segs",
        "spec",
        "start",
        "stop",
        "used",
    )

    def __init__(
        self,
        number: int,
        start: int,
        spec: Spec | None,
        memos: Memos,
        running: bool,
        mixed: bool,
    ) -> None:
        if spec is not None:
            clock = spec.clock
            # The running segments are kept only when a later target may measure on another
            # clock (respec then recounts them); most keys use one clock throughout.
            self.segs: list[tuple[int, int]] | None = [] if mixed else None
        else:
            clock = WALL
            self.segs = []
        self.number = number
        self.start = start
        self.spec = spec
        self.clock: TimeLine = clock
        self.memos = memos
        memo = memos.get(clock)
        if memo is None:  # memo_for(memos, clock), inlined
            memo = memos[clock] = {}
        self.memo = memo
        self.used = 0
        self.stop: int | None = None
        self.breach: int | None = None
        if running:  # self.run(True, start), inlined
            p = memo.get(start)
            if p is None:
                p = memo[start] = clock.pos(start)
            self.run_us: int | None = start
            self.run_pos = p
            self.base: int | None = p
        else:
            self.run_us = None
            self.run_pos = 0
            self.base = None

    def pos(self, t: int) -> int:
        """``self.clock.pos(t)``, computed once per run and clock."""
        memo = self.memo
        p = memo.get(t)
        if p is None:
            p = memo[t] = self.clock.pos(t)
        return p

    def run(self, flag: bool, t: int) -> None:
        if flag:
            if self.run_us is None:
                self.run_us = t
                p = self.run_pos = self.pos(t)
                if t == self.start:
                    self.base = p
        elif self.run_us is not None:
            self.used += self.pos(t) - self.run_pos
            if self.segs is not None:
                self.segs.append((self.run_us, t))
            self.run_us = None

    def end(self, t: int) -> None:
        """Stop the cycle at ``t``, recording a breach up to then (``check`` + ``run(False)``)."""
        run_us = self.run_us
        if run_us is not None:
            memo = self.memo
            p = memo.get(t)
            if p is None:
                p = memo[t] = self.clock.pos(t)
            spec = self.spec
            if spec is not None and self.breach is None:
                need = self.run_pos + spec.d - self.used
                if p >= need:
                    # Late only after the instant the budget was used up (due_at itself is
                    # on time).
                    moment = self.clock.at(need, run_us, self.run_pos)
                    if moment < t:
                        self.breach = moment
            self.used += p - self.run_pos
            if self.segs is not None:
                self.segs.append((run_us, t))
            self.run_us = None
        self.stop = t

    def used_at(self, t: int) -> int:
        if self.run_us is None:
            return self.used
        return self.used + self.pos(t) - self.run_pos

    def check(self, t: int) -> None:
        """Record a breach that happened before ``t`` while running.

        The breach instant is the due time, the earliest instant at which the whole budget is
        used; an event at that very instant is on time, so the cycle is breached at ``t`` only
        when the due time is before ``t``.
        """
        spec = self.spec
        if spec is None or self.breach is not None or self.run_us is None:
            return
        need = self.run_pos + spec.d - self.used
        if self.pos(t) >= need:
            moment = self.clock.at(need, self.run_us, self.run_pos)
            if moment < t:
                self.breach = moment

    def respec(self, spec: Spec | None, t: int) -> None:
        """Apply the target now in force (call :meth:`check` at ``t`` first)."""
        old = self.spec
        if spec is old:
            return
        if spec is None:
            if self.breach is None:
                self.spec = None
            return
        if spec.clock is not self.clock:
            segs = self.segs
            assert segs is not None  # kept whenever the clock can change
            self.clock = spec.clock
            self.memo = memo_for(self.memos, spec.clock)
            self.used = sum(self.pos(b) - self.pos(a) for a, b in segs)
            if self.run_us is not None:
                self.run_pos = self.pos(self.run_us)
            self.base = None
        if old is not None and self.breach is None and spec.target.on_change is _RESTART:
            self.start = t
            self.used = 0
            if self.segs is not None:
                self.segs = []
            self.base = None
            if self.run_us is not None:
                self.run_us = t
                self.run_pos = self.base = self.pos(t)
        self.spec = spec
        if self.breach is None:
            used = self.used_at(t)
            if used > spec.d or (
                used == spec.d
                and self.run_us is not None
                and self.clock.at(self.run_pos + spec.d - self.used, self.run_us, self.run_pos) < t
            ):
                # Already over the new target (or used up before now): breached at the
                # change, never earlier.
                self.breach = t


class Track:
    """The cycles of one custom key while its start / pause / stop / reset rules replay."""

    __slots__ = ("by_solve", "count", "cycles", "memos", "open", "plan", "start_matched")

    def __init__(self, plan: KeyPlan, cycles: list[Cycle], memos: Memos) -> None:
        self.plan = plan
        self.cycles = cycles
        self.memos = memos
        self.start_matched = False
        self.count = 0
        """Cycles begun so far: numbers are never reused, even after a cancelled cycle."""
        self.by_solve = False
        """Whether the last cycle was stopped by the event that solved the ticket (only such
        a cycle resumes on a reopen under OnReopen.PAUSE)."""
        self.open: Cycle | None = None
        """The last cycle when it has not stopped (kept in step by begin / end / resume)."""

    def resume(self, cycle: Cycle) -> None:
        cycle.stop = None
        self.open = cycle
        self.by_solve = False

    def begin(self, t: int, spec: Spec | None, running: bool) -> None:
        self.count += 1
        cycle = Cycle(self.count, t, spec, self.memos, running, self.plan.mixed)
        self.cycles.append(cycle)
        self.open = cycle
        self.by_solve = False

    def end(self, t: int, by_solve: bool = False) -> None:
        cycle = self.open
        if cycle is not None:
            cycle.end(t)
            self.open = None
            self.by_solve = by_solve
