"""KPI aggregation: csmcore ``KpiAggregator`` against pandas ``groupby`` on the same records.

Run from the repository root::

    .venv/bin/python benchmarks/bench_kpi.py            # 1,000,000 ticket metric records
    .venv/bin/python benchmarks/bench_kpi.py --quick    # 100,000 records: a smoke run
    .venv/bin/python benchmarks/bench_kpi.py 250000     # any number of records

The workload (issue 14): N synthetic :class:`csmcore.kpi.TicketMetrics` records (4 priorities x
4 channels = 16 groups; first reply defined for ~85 %, full resolution for ~70 %, a CSAT rating
on 1-5 for ~30 %, one SLA target achieved / breached / active), summarised per priority x
channel: ticket count, mean and median first reply, mean full resolution, CSAT (top-two-box
share) and SLA breach rate (breached / finished).

csmcore streams the records through ``KpiAggregator(by=("priority", "channel"),
metrics=("first_reply", "full_resolution"), exact=("first_reply",), figures=("csat", "sla"),
percentiles=())``: the figures pandas computes and no others (the CES, one/two-touch,
reopen, channel and backlog families are not asked; each duration's count of undefined values
comes with its mean). No figure is cached between repeats: each run reads every record.
pandas gets a frame of plain columns (float seconds, NaN where undefined; 1/0/NaN flags) and
runs one ``groupby(...).agg(...)``. The frame is built outside pandas' timing; what building it
costs (extracting the columns from the records plus the DataFrame constructor) is printed
separately. Both results are compared group by group before timing; any difference exits 1.

Requirements: pandas (the ``bench`` extra). No data files are read.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd

from _common import Timing, best_of, environment_lines, heading, rate_line, ratio_line
from csmcore.kpi import KpiAggregator, Kpis, TicketMetrics
from csmcore.sla import SlaState
from csmcore.tickets import Channel, FrozenMap, Priority, Role, Status

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
PRIORITIES = list(Priority)
CHANNELS = [Channel.EMAIL, Channel.WEB, Channel.CHAT, Channel.PHONE]
SLA_STATES = [SlaState.ACHIEVED] * 7 + [SlaState.BREACHED] * 2 + [SlaState.ACTIVE]


def make_records(n: int, seed: int) -> list[TicketMetrics]:
    """``n`` synthetic metric records (whole-second durations, shared objects where equal)."""
    rng = random.Random(seed)
    seconds = [timedelta(seconds=s) for s in range(0, 2 * 86400, 7)]
    slas = {s: (("first reply", s),) for s in SLA_STATES}
    empty: FrozenMap[str, Any] = FrozenMap()
    records = []
    for i in range(n):
        solved = rng.random() < 0.7
        rated = solved and rng.random() < 0.43
        records.append(
            TicketMetrics(
                ticket_id=f"T-{i}",
                at=T0 + timedelta(days=30),
                created_at=T0 + timedelta(seconds=i),
                created_by=Role.REQUESTER,
                channel=rng.choice(CHANNELS),
                priority=rng.choice(PRIORITIES),
                group=None,
                assignee=None,
                tags=frozenset(),
                fields=empty,
                status=Status.SOLVED if solved else Status.OPEN,
                first_reply=rng.choice(seconds) if rng.random() < 0.85 else None,
                full_resolution=rng.choice(seconds) if solved else None,
                first_resolution=None,
                csat_score=rng.randint(1, 5) if rated else None,
                csat_scale=5 if rated else None,
                sla=slas[rng.choice(SLA_STATES)],
            )
        )
    return records


def run_csmcore(records: list[TicketMetrics]) -> dict[tuple[Any, ...], Kpis]:
    agg = KpiAggregator(
        by=("priority", "channel"),
        metrics=("first_reply", "full_resolution"),
        exact=("first_reply",),
        figures=("csat", "sla"),
        percentiles=(),
    )
    return agg.update(records).results()


def build_frame(records: list[TicketMetrics]) -> pd.DataFrame:
    def seconds(value: timedelta | None) -> float:
        return math.nan if value is None else value.total_seconds()

    satisfied = {None: math.nan, 1: 0.0, 2: 0.0, 3: 0.0, 4: 1.0, 5: 1.0}
    breached = {SlaState.ACHIEVED: 0.0, SlaState.BREACHED: 1.0, SlaState.ACTIVE: math.nan}
    return pd.DataFrame(
        {
            "priority": pd.Categorical([r.priority.value for r in records]),
            "channel": pd.Categorical([r.channel.value for r in records]),
            "first_reply": [seconds(r.first_reply) for r in records],
            "resolution": [seconds(r.full_resolution) for r in records],
            "csat": [satisfied[r.csat_score] for r in records],
            "breached": [breached[r.sla[0][1]] for r in records],
        }
    )


def run_pandas(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.groupby(["priority", "channel"], observed=True).agg(
        tickets=("priority", "size"),
        frt_mean=("first_reply", "mean"),
        frt_median=("first_reply", "median"),
        res_mean=("resolution", "mean"),
        csat=("csat", "mean"),
        breach_rate=("breached", "mean"),
    )


def compare(ours: dict[tuple[Any, ...], Kpis], theirs: pd.DataFrame) -> list[str]:
    problems = []
    if len(ours) != len(theirs):
        problems.append(f"{len(ours)} groups against pandas' {len(theirs)}")
    for (priority, channel), row in theirs.iterrows():
        k = ours.get((Priority(priority), Channel(channel)))
        if k is None:
            problems.append(f"group {priority}/{channel} missing")
            continue
        frt, res = k.durations["first_reply"], k.durations["full_resolution"]
        pairs = [
            ("tickets", k.tickets, row.tickets),
            ("frt mean", frt.mean.total_seconds() if frt.mean else math.nan, row.frt_mean),
            ("frt median", frt.median.total_seconds() if frt.median else math.nan, row.frt_median),
            ("res mean", res.mean.total_seconds() if res.mean else math.nan, row.res_mean),
            ("csat", k.csat, row.csat),
            ("breach rate", k.sla["first reply"].breach_rate, row.breach_rate),
        ]
        for name, a, b in pairs:
            # csmcore rounds a mean to the microsecond; pandas keeps float seconds
            if a is None or not math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6):
                problems.append(f"{priority}/{channel} {name}: csmcore {a!r}, pandas {b!r}")
    return problems


def cpu_best(func: Callable[[], object], repeats: int) -> float:
    """The least CPU time (this process) of ``repeats`` runs of ``func``, GC paused."""
    best = math.inf
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            started = time.process_time()
            func()
            best = min(best, time.process_time() - started)
        finally:
            gc.enable()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 records, 3 repeats")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    n = 100_000 if args.quick else args.records
    repeats = 3 if args.quick else args.repeats

    print(heading(f"KPI aggregation: {n:,} ticket metric records, 16 groups"))
    for line in environment_lines():
        print(line)
    print(f"  pandas {pd.__version__}")
    started = time.perf_counter()
    records = make_records(n, args.seed)
    print(f"  records built in {time.perf_counter() - started:.1f} s (not timed)")

    frame_runs = best_of(lambda: build_frame(records), repeats=min(repeats, 3))
    frame = build_frame(records)
    ours = run_csmcore(records)
    theirs = run_pandas(frame)
    problems = compare(ours, theirs)
    print(heading("agreement"))
    if problems:
        for p in problems[:20]:
            print(f"  DIFFERENT: {p}")
        return 1
    print(
        f"  all {len(ours)} groups agree (count, mean/median first reply, mean resolution, "
        "CSAT, SLA breach rate)"
    )

    print(heading("timings (best of repeats, GC paused)"))
    ours_t = Timing(
        "csmcore KpiAggregator", n, best_of(lambda: run_csmcore(records), repeats=repeats)
    )
    theirs_t = Timing(
        "pandas groupby.agg (frame built)", n, best_of(lambda: run_pandas(frame), repeats=repeats)
    )
    frame_t = Timing("pandas: building the frame", n, frame_runs)
    for t in (ours_t, theirs_t, frame_t):
        print(rate_line(t))
    ours_cpu = cpu_best(lambda: run_csmcore(records), repeats)
    theirs_cpu = cpu_best(lambda: run_pandas(frame), repeats)
    print(
        f"  by CPU time (steadier on a busy machine): csmcore {ours_cpu:.3f} s, "
        f"pandas groupby {theirs_cpu:.3f} s"
    )
    print(heading("ratios"))
    print(
        f"  csmcore CPU time / pandas groupby CPU time: {ours_cpu / theirs_cpu:.2f}   "
        f"goal <= 5: {'PASS' if ours_cpu <= 5 * theirs_cpu else 'MISS'}"
    )
    print(
        f"  csmcore time / pandas groupby time: {ours_t.best / theirs_t.best:.2f}   "
        f"goal <= 5: {'PASS' if ours_t.best <= 5 * theirs_t.best else 'MISS'}"
    )
    print(
        f"  csmcore time / pandas (frame + groupby) time: "
        f"{ours_t.best / (theirs_t.best + frame_t.best):.2f}"
    )
    print(ratio_line("csmcore speed as a fraction of pandas groupby", theirs_t.best, ours_t.best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
