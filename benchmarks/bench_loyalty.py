"""Loyalty ledger benchmark: csmcore's Ledger next to a naive ledger and raw sqlite3.

Run ``python benchmarks/bench_loyalty.py`` (``--quick`` for a smoke run: 50,000 operations on
memory, 5,000 on SQLite). In one run, on the same generated operations (10,000 members; each
operation one of: earn with a 60-day expiry 45 %, redeem 30 %, expire 10 %, refund of the
member's last redemption 15 %; time moves 10 s per operation):

1. memory: ``csmcore.services.Ledger`` on ``memory://`` (idempotency keys, entries, lots,
   every invariant) against a naive dict-of-deques ledger (a deque of ``[expiry, points]`` per
   member, redeemed from the left; no entries, no keys, no checks). Goal: >= 50 % of naive.
   Between the two, a floor (``Floor``): the naive ledger's decisions plus what a ledger must
   keep (per member a list of entry tuples, a dict key -> entry, a deque of lots, a balance,
   the last redemption; a used key does nothing), with no validation and no entry objects.
   ``floor / naive`` is the share of the naive rate that is left once entries and keys are
   merely kept, before any check: the most a ledger "with all invariants and idempotency
   kept" can hope for here. ``memory / floor`` is csmcore's share of the floor.
2. SQLite: the same Ledger on a SQLite file (WAL, ``synchronous=FULL``: one durable commit per
   operation) against raw ``sqlite3`` inserting, into an identical table, one row for each
   entry csmcore wrote, one commit per row, same settings, the row's JSON prepared before the
   clock starts (operations that write nothing, like a refused redemption, cost raw nothing:
   the strictest comparison). Rates are entries written per second. Goal: >= 40 % of raw.
   The two run interleaved, block for block, so that a busy disk slows both alike.

After the timed runs it checks that csmcore and the floor each agree with the naive ledger on
every member's active balance (exit status 1 if not) and that ``verify`` passes for a sample of
members.

Figures (DESIGN.md, a 2-core machine): naive dict-of-deques about 290,000 ops/s; SQLite one
commit per operation about 7,500 ops/s.
"""

from __future__ import annotations

import argparse
import gc
import random
import sqlite3
import sys
import tempfile
import time
from collections import defaultdict, deque
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from _common import environment_lines, heading, measure, rate_line
from csmcore.errors import InsufficientPoints
from csmcore.services import Ledger
from csmcore.storage import open_store

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
EXPIRY = timedelta(days=60)
STEP = timedelta(seconds=10)

Op = tuple[str, str, int, datetime, str]  # kind, member, points, at, key


def make_ops(count: int, members: int, seed: int = 12) -> list[Op]:
    """``count`` operations over ``members`` members (deterministic)."""
    rnd = random.Random(seed)
    names = [f"member-{n:05d}" for n in range(members)]
    ops: list[Op] = []
    at = T0
    for i in range(count):
        at += STEP
        member = names[rnd.randrange(members)]
        r = rnd.random()
        if r < 0.45:
            ops.append(("earn", member, rnd.randint(10, 200), at, f"e{i}"))
        elif r < 0.75:
            ops.append(("redeem", member, rnd.randint(5, 80), at, f"r{i}"))
        elif r < 0.85:
            ops.append(("expire", member, 0, at, ""))
        else:
            ops.append(("refund", member, 0, at, f"f{i}"))
    return ops


class Naive:
    """A naive ledger: one deque of ``[expires_at, points]`` per member (earned in time order,
    so soonest expiry is leftmost), and a balance counter."""

    def __init__(self) -> None:
        self.lots: defaultdict[str, deque[list[Any]]] = defaultdict(deque)
        self.balance: defaultdict[str, int] = defaultdict(int)
        self.last: dict[str, list[tuple[datetime, int]]] = {}

    def _drop_expired(self, member: str, at: datetime) -> None:
        lots = self.lots[member]
        while lots and lots[0][0] <= at:
            self.balance[member] -= lots.popleft()[1]

    def run(self, ops: list[Op]) -> None:
        lots_of, balance, last = self.lots, self.balance, self.last
        for kind, member, points, at, _ in ops:
            if kind == "earn":
                lots_of[member].append([at + EXPIRY, points])
                balance[member] += points
            elif kind == "redeem":
                self._drop_expired(member, at)
                if balance[member] < points:
                    continue
                lots = lots_of[member]
                need, draws = points, []
                while need:
                    lot = lots[0]
                    take = min(need, lot[1])
                    draws.append((lot[0], take))
                    lot[1] -= take
                    need -= take
                    if not lot[1]:
                        lots.popleft()
                balance[member] -= points
                last[member] = draws
            elif kind == "expire":
                self._drop_expired(member, at)
            else:
                taken = last.pop(member, None)
                if taken is None:
                    continue
                lots = lots_of[member]
                for expires, take in reversed(taken):
                    if lots and lots[0][0] == expires:
                        lots[0][1] += take
                    else:
                        lots.appendleft([expires, take])
                    balance[member] += take

    def active(self, member: str, at: datetime) -> int:
        return sum(p for e, p in self.lots[member] if e > at)


Entry = tuple[str, int, datetime, int, str | None, Any]  # kind, seq, at, points, key, detail
Draw = tuple[int, int, datetime]  # lot seq, points taken, the lot's expires_at


class _FloorMember:
    """One member of :class:`Floor`: what a ledger must keep, and nothing more."""

    __slots__ = ("balance", "entries", "keys", "last", "lots")

    def __init__(self) -> None:
        self.entries: list[Entry] = []  # every entry, seq = position + 1
        self.keys: dict[str, Entry] = {}  # idempotency key -> its entry
        self.lots: deque[list[Any]] = deque()  # [expires_at, points left, lot seq]
        self.balance = 0
        self.last: Entry | None = None  # the last unrefunded redemption


class Floor:
    """A floor for the memory ledger: the naive ledger plus what any ledger must KEEP.

    Per member (:class:`_FloorMember`): a list of entry tuples ``(kind, seq, at, points, key,
    detail)``, a dict idempotency key -> entry, a deque of lots ``[expires_at, points, seq]``
    (soonest expiry leftmost), a balance and the last redemption. It decides earn, redeem,
    expire and refund exactly as :class:`Naive` does; an earn, redemption or refund whose key
    is already used does nothing; a redemption first writes an ``expire`` entry for each lot
    that has expired, as an expiry does. Nothing is validated (no argument, balance or
    invariant check) and no entry object is built: its rate is an upper bound for any ledger
    that keeps its entries and keys, so ``floor / naive`` bounds what a checking ledger can
    reach against the naive one.
    """

    def __init__(self) -> None:
        self.members: dict[str, _FloorMember] = {}

    def run(self, ops: list[Op]) -> None:
        members = self.members
        for kind, member, points, at, key in ops:
            st = members.get(member)
            if st is None:
                st = members[member] = _FloorMember()
            entries, lots = st.entries, st.lots
            if kind == "earn":
                if key in st.keys:
                    continue
                seq = len(entries) + 1
                entry: Entry = ("earn", seq, at, points, key, at + EXPIRY)
                entries.append(entry)
                st.keys[key] = entry
                lots.append([at + EXPIRY, points, seq])
                st.balance += points
            elif kind == "redeem":
                if key in st.keys:
                    continue
                while lots and lots[0][0] <= at:
                    lot = lots.popleft()
                    st.balance -= lot[1]
                    entries.append(("expire", len(entries) + 1, at, -lot[1], None, lot[2]))
                if st.balance < points:
                    continue
                need, draws = points, []
                while need:
                    lot = lots[0]
                    take = min(need, lot[1])
                    draws.append((lot[2], take, lot[0]))
                    lot[1] -= take
                    need -= take
                    if not lot[1]:
                        lots.popleft()
                st.balance -= points
                entry = ("redeem", len(entries) + 1, at, -points, key, tuple(draws))
                entries.append(entry)
                st.keys[key] = entry
                st.last = entry
            elif kind == "expire":
                while lots and lots[0][0] <= at:
                    lot = lots.popleft()
                    st.balance -= lot[1]
                    entries.append(("expire", len(entries) + 1, at, -lot[1], None, lot[2]))
            else:
                redemption = st.last
                if redemption is None or key in st.keys:
                    continue
                st.last = None
                taken: tuple[Draw, ...] = redemption[5]
                entry = ("refund", len(entries) + 1, at, -redemption[3], key, taken)
                entries.append(entry)
                st.keys[key] = entry
                for lot_seq, take, expires in reversed(taken):
                    if lots and lots[0][2] == lot_seq:
                        lots[0][1] += take
                    else:
                        lots.appendleft([expires, take, lot_seq])
                    st.balance += take

    def active(self, member: str, at: datetime) -> int:
        """The member's points in lots not expired at ``at`` (as :meth:`Naive.active`)."""
        st = self.members.get(member)
        return 0 if st is None else sum(p for e, p, _ in st.lots if e > at)


def run_ledger(
    ledger: Ledger, ops: list[Op], last: dict[str, str], wrote: list[int] | None = None
) -> None:
    """The operations on csmcore's Ledger (``last``: each member's last unrefunded
    redemption). With ``wrote``, append how many entries each operation wrote."""
    earn, redeem, expire, refund = ledger.earn, ledger.redeem, ledger.expire, ledger.refund
    for kind, member, points, at, key in ops:
        written = 1
        if kind == "earn":
            earn(member, points, at=at, key=key, expires_at=at + EXPIRY)
        elif kind == "redeem":
            try:
                last[member] = redeem(member, points, at=at, key=key).entry_id
            except InsufficientPoints:
                written = 0
        elif kind == "expire":
            written = len(expire(member, at=at))
        else:
            entry_id = last.pop(member, None)
            if entry_id is not None:
                refund(entry_id, at=at, key=key)
            else:
                written = 0
        if wrote is not None:
            wrote.append(written)


_ROW = (
    '{"type":"loyalty.entry","schema":1,"data":{"entry_id":"member-00001#12","member_id":'
    '"member-00001","seq":12,"kind":"redeem","at":"2025-01-06T09:00:10+00:00","points":-40,'
    '"key":"r1","lot_id":null,"expires_at":null,"pending_until":null,"draws":[{"lot_id":'
    '"member-00001#3","points":40,"expires_at":"2025-03-07T09:00:10+00:00"}],"reference":null,'
    '"spend":null,"reason":null,"related":null}}'
)


class RawSqlite:
    """sqlite3 by hand: one row per operation into a table like csm_ledger, one commit each."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(
            "CREATE TABLE ledger (member_id TEXT NOT NULL, seq INTEGER NOT NULL, "
            "key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (member_id, seq)) WITHOUT ROWID"
        )
        self.conn.execute("CREATE UNIQUE INDEX ledger_key ON ledger (member_id, key)")
        self.seq: defaultdict[str, int] = defaultdict(int)

    def run(self, ops: list[Op], wrote: list[int]) -> None:
        """One commit per row, as many rows for each operation as csmcore wrote (an
        operation that wrote nothing, like a refused redemption, costs raw nothing)."""
        execute, seq = self.conn.execute, self.seq
        for (_, member, _, _, _), rows in zip(ops, wrote, strict=True):
            for _ in range(rows):
                seq[member] += 1
                execute("BEGIN")
                execute(
                    "INSERT INTO ledger (member_id, seq, key, data) VALUES (?, ?, ?, ?)",
                    (member, seq[member], f"k{seq[member]}", _ROW),
                )
                execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


def bench_memory(ops: list[Op], repeats: int) -> tuple[Ledger, Naive, Floor]:
    print(heading(f"memory: {len(ops):,} operations, best of {repeats}"))
    holder: dict[str, Any] = {}

    def ours() -> None:
        store = open_store("memory://")
        holder["ledger"] = Ledger(store)
        run_ledger(holder["ledger"], ops, {})

    def naive() -> None:
        holder["naive"] = Naive()
        holder["naive"].run(ops)

    def floor() -> None:
        holder["floor"] = Floor()
        holder["floor"].run(ops)

    t_naive = measure("naive dict-of-deques", len(ops), naive, repeats=repeats)
    t_floor = measure("floor: entries and keys kept, no checks", len(ops), floor, repeats=repeats)
    t_ours = measure("csmcore Ledger on memory://", len(ops), ours, repeats=repeats)
    print(rate_line(t_naive))
    print(rate_line(t_floor))
    print(rate_line(t_ours))
    naive_rate, floor_rate = t_naive.ops_per_second, t_floor.ops_per_second
    print(
        f"  floor / naive:  {floor_rate / naive_rate * 100:6.1f} % (keeping entries and keys alone,"
        " no check)"
    )
    print(f"  memory / floor: {t_ours.ops_per_second / floor_rate * 100:6.1f} %")
    share = t_ours.ops_per_second / naive_rate * 100
    verdict = "meets" if share >= 50 else "MISSES"
    print(f"  memory / naive: {share:6.1f} % ({verdict} the 50 % goal)")
    return holder["ledger"], holder["naive"], holder["floor"]


def bench_sqlite(ops: list[Op], block: int) -> None:
    print(heading(f"SQLite (WAL, synchronous=FULL): {len(ops):,} operations, interleaved"))
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'csmcore.db'}")
        raw = RawSqlite(Path(tmp) / "raw.db")
        ledger = Ledger(store)
        last: dict[str, str] = {}
        ours_s = raw_s = 0.0
        rows = 0
        for start in range(0, len(ops), block):
            part = ops[start : start + block]
            wrote: list[int] = []
            began = time.perf_counter()
            run_ledger(ledger, part, last, wrote)
            ours_s += time.perf_counter() - began
            began = time.perf_counter()
            raw.run(part, wrote)
            raw_s += time.perf_counter() - began
            rows += sum(wrote)
        print(f"  {len(ops):,} operations wrote {rows:,} entries (each a durable commit)")
        ours_rate, raw_rate = rows / ours_s, rows / raw_s
        print(f"  {'raw sqlite3, one row per commit':<44} {raw_rate:>12,.0f} rows/s")
        print(
            f"  {'csmcore Ledger on sqlite://':<44} {ours_rate:>12,.0f} entries/s "
            f"({len(ops) / ours_s:,.0f} operations/s)"
        )
        share = ours_rate / raw_rate * 100
        verdict = "meets" if share >= 40 else "MISSES"
        print(f"  SQLite / raw: {share:6.1f} % ({verdict} the 40 % goal)")
        sample = ledger.members()[:: max(1, len(ledger.members()) // 50)]
        assert all(ledger.verify(m).ok for m in sample)
        print(f"  verify passes for {len(sample)} sampled members")
        raw.close()
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="csmcore loyalty ledger benchmark")
    parser.add_argument("--quick", action="store_true", help="a smoke run (fewer operations)")
    parser.add_argument("--ops", type=int, default=None, help="operations on memory")
    parser.add_argument("--sqlite-ops", type=int, default=None, help="operations on SQLite")
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    ops_count = args.ops or (50_000 if args.quick else 1_000_000)
    sqlite_count = args.sqlite_ops or (5_000 if args.quick else 1_000_000)
    repeats = args.repeats or 3
    print(heading("csmcore loyalty ledger benchmark"))
    for line in environment_lines():
        print(line)
    ops = make_ops(max(ops_count, sqlite_count), args.members)
    ledger, naive, floor = bench_memory(ops[:ops_count], repeats)
    end = ops[ops_count - 1][3]
    members = sorted({op[1] for op in ops[:ops_count]})
    disagree = [m for m in members if ledger.balance(m, end).active != naive.active(m, end)]
    agree = len(members) - len(disagree)
    print(
        f"  active balances agree with the naive ledger for {agree:,} of {len(members):,} members"
    )
    floor_disagree = [m for m in members if floor.active(m, end) != naive.active(m, end)]
    floor_agree = len(members) - len(floor_disagree)
    print(
        f"  the floor's active balances agree with the naive ledger for {floor_agree:,} of"
        f" {len(members):,} members"
    )
    sample = members[:: max(1, len(members) // 200)]
    assert all(ledger.verify(m).ok for m in sample)
    print(f"  verify passes for {len(sample)} sampled members")
    # the SQLite run is not charged for collecting the memory run's millions of objects
    sqlite_ops = ops[:sqlite_count]
    del ops, ledger, naive, floor
    gc.collect()
    bench_sqlite(sqlite_ops, block=500)
    return 1 if disagree or floor_disagree else 0


if __name__ == "__main__":
    sys.exit(main())
