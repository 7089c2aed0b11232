"""A member's ledger replayed: lots, counters and the planning of new entries (pure, no I/O).

:class:`LedgerState` is what a store keeps per member (the memory store keeps it for good, the
SQL stores cache it): the entries so far, the lots they made, and the counters balances are
derived from. ``apply(entry)`` adds one entry (and checks it fits: a stored entry that does not
raises :class:`~csmcore.errors.LedgerCorrupt`); the ``plan_*`` methods work out the entry a
request would write, without changing anything, so that a store can plan inside its transaction
and write the entry only if nobody wrote to the member meanwhile (the per-member version).

The ``plan_*`` methods live in ``_plans`` (the mixin ``_Planning``), :func:`plan_transfer`
in ``_transfer``, the working lot ``_Lot`` in ``_lots`` and :func:`check_instant` in
``_entries``: all are importable from here as before.

Time rules (the same at any instant ``t``, for every store):

- a lot is PENDING while ``t < pending_until`` and it has not been activated by an ACTIVATE
  at or before ``t``;
- a lot is EXPIRED from ``t >= expires_at`` on: what is left in it is counted as expired
  (an EXPIRE entry records it; the balance does not wait for it);
- the negative balance (returns under ``ReturnsPolicy.UNLIMITED``) is paid off first: each entry,
  when applied, first settles it from the lots active at its instant, soonest expiry first, and
  again after its own effect; pending points pay it off at the instant they become active (their
  ``pending_until``), even between entries, so that points paying a debt never expire as well;
  a balance between entries shows active points net of it.
- a member's entries never go back in time: a write whose ``at`` is before the member's last
  entry is refused.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable
from datetime import datetime

from csmcore._time import from_us, to_us
from csmcore.errors import LedgerCorrupt, ValidationError
from csmcore.loyalty._entries import (
    EntryKind,
    LedgerEntry,
    RedemptionOrder,
    check_instant,
    entry_id_of,
    split_entry_id,
)
from csmcore.loyalty._lots import _NEVER as _NEVER  # "as": re-exported for _post
from csmcore.loyalty._lots import Balance, Lot, LotStatus, _oldest
from csmcore.loyalty._lots import _Lot as _Lot
from csmcore.loyalty._lots import _soonest as _soonest
from csmcore.loyalty._plans import _Planning
from csmcore.loyalty._transfer import plan_transfer

__all__ = ["LedgerState", "check_instant", "plan_transfer"]


class LedgerState(_Planning):
    """One member's ledger: its entries, lots and counters. See the module documentation.

    >>> from datetime import datetime, timezone
    >>> state = LedgerState("ann")
    >>> at = datetime(2025, 1, 10, tzinfo=timezone.utc)
    >>> state.apply(state.plan_earn(100, at=at, key="order-1"))
    >>> state.balance(at).active
    100
    """

    __slots__ = (
        "_cursor",
        "_drawn",
        "_lot_count",
        "_open",
        "_planned",
        "_queue",
        "_refunded_by",
        "_returned",
        "_schedule",
        "_timed",
        "_unrecorded",
        "by_key",
        "entries",
        "last_us",
        "legacy",
        "lifetime",
        "lots",
        "member_id",
        "negative",
        "redeemed",
        "refunded",
        "settled",
    )

    def __init__(self, member_id: str) -> None:
        self.member_id = member_id
        self.entries: list[LedgerEntry] = []
        self.by_key: dict[str, LedgerEntry] = {}
        self.lots: dict[str, _Lot] = {}
        self._open: dict[str, _Lot] = {}
        """Lots with points left that had not expired at the last entry."""
        self._queue: list[tuple[int, int, _Lot]] = []
        """(expires_us, order, lot) of every lot in ``_open`` (and perhaps of lots that left
        it since: skipped, then dropped), sorted: soonest expiry first, then the oldest. Debits
        in that order walk it from the start instead of sorting the open lots each time."""
        self._schedule: list[tuple[int, int, str]] = []
        """(expires_us, order, lot_id) of every expiring lot, sorted; those before
        ``_cursor`` had expired at the last entry."""
        self._cursor = 0
        self._planned: tuple[LedgerEntry, int, int, list[tuple[_Lot, int]]] | None = None
        """The entry the last plan made on this state (an EARN, a REDEEM or a REFUND), its
        instant in microseconds, the new lot's expiry in microseconds (an EARN) or the seq of
        the redemption refunded (a REFUND), and the lots it draws from or gives back to:
        applied as it is, without checking again what the plan just worked out (any apply
        clears it)."""
        self._unrecorded: dict[str, _Lot] = {}
        """Expired lots with points whose expiry no EXPIRE entry has recorded yet."""
        self._lot_count = 0
        self._drawn: dict[int, dict[str, int]] = {}
        self._refunded_by: dict[int, dict[str, int]] = {}
        self._returned: set[str] = set()
        """The ids of the PURCHASE entries a REVERSE has given back."""
        self.last_us = -(2**62)
        self.negative = 0
        self.settled = 0
        self.redeemed = 0
        self.refunded = 0
        self.lifetime = 0
        self.legacy = False
        """True when the entries are read by the rule csmcore wrote them under before pending
        points paid the negative balance at their activation (the negative balance is paid
        only at entries' instants): see :meth:`apply`."""
        self._timed = False
        """Whether paying the negative balance ever took points at an instant a pending lot
        became active between entries (only then can the earlier rule read differently)."""

    @classmethod
    def replay(
        cls, member_id: str, entries: Iterable[LedgerEntry], *, legacy: bool | None = None
    ) -> LedgerState:
        """The state after ``entries`` (a member's entries in order);
        :class:`~csmcore.errors.LedgerCorrupt` when they do not fit together. ``legacy``:
        read them by the earlier rule (True), by today's (False), or as :meth:`apply` does
        (None)."""
        state = cls(member_id)
        if legacy is None:
            for entry in entries:
                state.apply(entry)
        else:
            state.legacy = legacy
            for entry in entries:
                state._apply(entry)
        return state

    @property
    def version(self) -> int:
        """How many entries the member has (the seq of the last one)."""
        return len(self.entries)

    def entry(self, seq: int) -> LedgerEntry:
        """The member's ``seq``-th entry; ``NotFound``-like ValidationError when none."""
        if 1 <= seq <= len(self.entries):
            return self.entries[seq - 1]
        raise ValidationError(
            f"member {self.member_id!r} has no entry {entry_id_of(self.member_id, seq)!r}; "
            f"it has entries 1..{len(self.entries)}"
        )

    def purchase_of(self, entry_id: str | None) -> LedgerEntry | None:
        """The PURCHASE entry ``entry_id`` of this member; None when it is none (another kind,
        another member's, not an entry id)."""
        if entry_id is None:
            return None
        try:
            member, seq = split_entry_id(entry_id)
        except ValidationError:
            return None
        if member != self.member_id or seq > len(self.entries):
            return None
        found = self.entries[seq - 1]
        return found if found.kind is EntryKind.PURCHASE else None

    # --- applying entries --------------------------------------------------------------------

    def _corrupt(self, entry: LedgerEntry, why: str) -> LedgerCorrupt:
        return LedgerCorrupt(
            f"ledger of member {self.member_id!r}: entry {entry.entry_id!r} ({entry.kind.value}) "
            f"{why}",
            field="entry_id",
            value=entry.entry_id,
        )

    def apply(self, entry: LedgerEntry, *, new: bool = False) -> None:
        """Add ``entry`` (the next one of this member) and update lots and counters.

        Raises :class:`~csmcore.errors.LedgerCorrupt` when it does not fit: another member's,
        not the next seq, back in time, drawing from an unknown lot or more than a lot holds;
        the state is then as it was.

        Entries csmcore stored before pending points paid the negative balance at their
        activation may fit only the rule they were written under (the negative balance paid at
        entries' instants only: a stored redemption drew points that now paid the debt, an
        EXPIRE recorded them): when an entry does not fit after such a payment, the member's
        entries are read again by that earlier rule (:attr:`legacy`), and the entry is refused
        only if it does not fit that rule either.

        ``new``: the entry is being written now, not read back from a store. The earlier rule
        is for stored entries only: a new entry that fits only that rule is refused
        (``LedgerCorrupt`` saying so). A member whose stored entries already read by the
        earlier rule takes new entries by it, as planned.
        """
        planned = self._planned
        if (
            planned is not None
            and planned[0] is entry
            and not self.negative
            and entry.seq == len(self.entries) + 1
        ):  # what a plan just made on this state: it fits
            self._planned = None
            self._apply_planned(entry, planned[1], planned[2], planned[3])
            return
        try:
            self._apply(entry)
        except LedgerCorrupt as err:
            earlier: LedgerState | None = None
            if not self.legacy and self._timed:
                earlier = LedgerState(self.member_id)
                earlier.legacy = True
                try:
                    for known in self.entries:
                        earlier._apply(known)
                    earlier._apply(entry)
                except LedgerCorrupt:
                    earlier = None
                else:
                    if not new:
                        self._become(earlier)
                        return
            self.rewind(len(self.entries))  # the state as it was
            if earlier is not None:
                raise self._corrupt(
                    entry,
                    "fits only the earlier rule of the negative balance (paid at entries' "
                    "instants only), which reads entries stored before pending points paid it "
                    "at their activation; a new entry must fit today's rule",
                ) from err
            raise

    def rewind(self, version: int) -> None:
        """Make this state what it was after its first ``version`` entries (read again by its
        own rule): what a store does when entries it applied are not written after all."""
        if type(version) is not int or not 0 <= version <= len(self.entries):
            raise ValidationError(
                f"version={version!r} is not one of 0..{len(self.entries)}, the versions of "
                f"member {self.member_id!r}",
                field="version",
                value=version,
            )
        self._become(LedgerState.replay(self.member_id, self.entries[:version], legacy=self.legacy))

    def _become(self, other: LedgerState) -> None:
        for name in LedgerState.__slots__:
            setattr(self, name, getattr(other, name))

    def _apply(self, entry: LedgerEntry) -> None:
        """:meth:`apply` by this state's rule, checking ``entry`` (the fast path for an entry a
        plan just made is :meth:`apply`'s)."""
        self._planned = None
        seq = len(self.entries) + 1
        if entry.member_id != self.member_id or entry.seq != seq:
            raise self._corrupt(entry, f"is not entry {seq} of this member")
        t = to_us(entry.at)
        if t < self.last_us:
            raise self._corrupt(entry, "goes back in time")
        kind = entry.kind
        lots = self.lots
        # check the draws first: nothing changes when they do not fit
        if kind is not EntryKind.TRANSFER_IN:
            for draw in entry.draws:
                lot = lots.get(draw.lot_id)
                if lot is None:
                    raise self._corrupt(entry, f"names the unknown lot {draw.lot_id!r}")
                if draw.points <= 0:
                    raise self._corrupt(entry, f"moves {draw.points} points of a lot")
        early = self._settle(t) if self.negative else ()
        points = entry.points
        if kind is EntryKind.EARN or (kind is EntryKind.ADJUST and points > 0):
            lot_id = entry.lot_id or entry.entry_id
            if lot_id in lots or points <= 0:
                raise self._corrupt(entry, "does not create a new lot of points > 0")
            self._add_lot(_Lot(lot_id, 0, t, points, entry.expires_at, entry.pending_until), t)
            self.lifetime += points
        elif kind is EntryKind.ACTIVATE:
            lot = lots.get(entry.lot_id or "")
            if lot is None or not lot.pending(t):
                raise self._corrupt(entry, "activates a lot that is not pending")
            if entry.expires_at is not None:
                if to_us(entry.expires_at) <= t or lot.expires_us <= t:
                    raise self._corrupt(
                        entry, "gives a lot an expiry not after its activation, or an expired one"
                    )
                self._set_expiry(lot, entry.expires_at)
            lot.activated_us = t
        elif kind is EntryKind.EXPIRE:
            lot = lots.get(entry.lot_id or "")
            if lot is not None and early:
                self._undo_payment(lot, -points, early)
            if (
                lot is None
                or lot.expires_us > t
                or points >= 0
                or -points > lot.remaining - lot.expire_recorded
            ):
                raise self._corrupt(entry, "records an expiry the lot does not have")
            lot.expire_recorded -= points
            lot.expire_written -= points
            if lot.expire_recorded >= lot.remaining:
                self._unrecorded.pop(lot.lot_id, None)
        elif kind is EntryKind.REFUND:
            redemption = split_entry_id(entry.related)[1] if entry.related else 0
            drawn = self._drawn.get(redemption)
            if drawn is None:
                raise self._corrupt(entry, "refunds no redemption of this member")
            done = self._refunded_by.setdefault(redemption, {})
            total = 0
            for draw in entry.draws:
                got = done.get(draw.lot_id, 0) + draw.points
                if got > drawn.get(draw.lot_id, 0):
                    raise self._corrupt(entry, f"gives back more than was drawn from {draw.lot_id}")
            for draw in entry.draws:
                done[draw.lot_id] = done.get(draw.lot_id, 0) + draw.points
                lot = lots[draw.lot_id]
                lot.remaining += draw.points
                if lot.expires_us > t:
                    self._open[lot.lot_id] = lot
                    if not lot.queued:
                        self._enqueue(lot)
                elif lot.expires_us <= self.last_us:  # already swept: its expiry unrecorded
                    self._unrecorded[lot.lot_id] = lot
                total += draw.points
            if total != points:
                raise self._corrupt(entry, "gives back other points than its draws")
            self.refunded += total
        elif kind is EntryKind.PURCHASE:
            spend = entry.spend
            if points or entry.draws or entry.lot_id is not None or spend is None or spend <= 0:
                raise self._corrupt(entry, "is not a purchase of money > 0 and no points or lot")
        elif kind is EntryKind.REVERSE and (bought := self.purchase_of(entry.related)) is not None:
            if points or entry.draws or entry.lot_id is not None or entry.spend != bought.spend:
                raise self._corrupt(
                    entry, "returns a purchase with points, draws or other money than it spent"
                )
            if bought.entry_id in self._returned:
                raise self._corrupt(entry, f"returns the purchase {bought.entry_id!r} again")
            self._returned.add(bought.entry_id)
        elif kind is EntryKind.TRANSFER_IN:
            total = 0
            for draw in entry.draws:
                if draw.lot_id in lots or draw.points <= 0:
                    raise self._corrupt(entry, f"does not create the new lot {draw.lot_id!r}")
                self._add_lot(_Lot(draw.lot_id, 0, t, draw.points, draw.expires_at, None), t)
                total += draw.points
            if total != points:
                raise self._corrupt(entry, "credits other points than its lots")
        else:  # the debits: REDEEM, REVERSE, negative ADJUST, TRANSFER_OUT
            total = 0
            for draw in entry.draws:
                lot = lots[draw.lot_id]
                usable = lot.remaining >= draw.points and (
                    (lot.expires_us > t and (kind is EntryKind.REVERSE or not lot.pending(t)))
                    # a return takes back the expired points of its own lot first
                    or (kind is EntryKind.REVERSE and draw.lot_id == entry.lot_id)
                )
                if not usable:
                    raise self._corrupt(entry, f"draws more than lot {draw.lot_id!r} has")
                total += draw.points
            if kind is EntryKind.REVERSE:
                lot = lots.get(entry.lot_id or "")
                if lot is None or lot.reversed - points > lot.points or total > -points:
                    raise self._corrupt(entry, "claws back more than its purchase earned")
            elif total != -points:
                raise self._corrupt(entry, "debits other points than its draws")
            for draw in entry.draws:
                lot = lots[draw.lot_id]
                lot.remaining -= draw.points
                if not lot.remaining:
                    self._open.pop(lot.lot_id, None)
                if lot.expire_recorded:
                    # a return taking back its lot's expired points takes those whose expiry
                    # was recorded first: the others still get their EXPIRE (as do points a
                    # refund gives back to the lot later)
                    lot.expire_recorded = max(0, lot.expire_recorded - draw.points)
                if lot.remaining <= lot.expire_recorded:
                    self._unrecorded.pop(lot.lot_id, None)
            if kind is EntryKind.REDEEM:
                self._drawn[seq] = {d.lot_id: d.points for d in entry.draws}
                self.redeemed += total
            elif kind is EntryKind.REVERSE:
                lot = lots[entry.lot_id or ""]
                lot.reversed -= points
                self.lifetime += points
                self.negative += -points - total
        self.entries.append(entry)
        self.by_key[entry.key] = entry
        if t > self.last_us:
            self.last_us = t
            self._sweep(t)
        if self.negative:
            self._settle(t)
        queue = self._queue
        if queue and self._open.get(queue[0][2].lot_id) is not queue[0][2]:
            self._trim()

    def _apply_planned(
        self, entry: LedgerEntry, t: int, extra: int, draws: list[tuple[_Lot, int]]
    ) -> None:
        """``apply`` of the EARN, REDEEM or REFUND a plan just made on this very state (so it
        fits: the plan checked it), without a negative balance to settle."""
        points = entry.points
        open_lots = self._open
        if entry.kind is EntryKind.EARN:  # a new lot, expiring after t (the plan checked)
            expires_us = extra
            lot_id = entry.entry_id
            lot = _Lot(lot_id, 0, t, points, entry.expires_at, entry.pending_until, expires_us)
            self._lot_count += 1
            lot.seq = self._lot_count
            self.lots[lot_id] = lot
            if expires_us != _NEVER:
                schedule = self._schedule
                item = (expires_us, lot.seq, lot_id)
                if not schedule or schedule[-1] < item:
                    schedule.append(item)
                else:
                    insort(schedule, item)
            open_lots[lot_id] = lot
            queue = self._queue
            place = (expires_us, lot.seq, lot)
            if queue and queue[-1] < place and len(queue) <= 2 * len(open_lots) + 32:
                queue.append(place)  # _enqueue's common case
                lot.queued = True
            else:
                self._enqueue(lot)
            self.lifetime += points
        elif entry.kind is EntryKind.REDEEM:
            drawn = {}
            for lot, take in draws:
                lot.remaining -= take
                if not lot.remaining:
                    del open_lots[lot.lot_id]
                drawn[lot.lot_id] = take
            self._drawn[entry.seq] = drawn
            self.redeemed -= points
        elif entry.kind is EntryKind.REFUND:  # `extra`: the seq of the redemption refunded
            done = self._refunded_by.setdefault(extra, {})
            last_us = self.last_us
            for lot, take in draws:
                lot_id = lot.lot_id
                done[lot_id] = done.get(lot_id, 0) + take
                lot.remaining += take
                if lot.expires_us > t:
                    open_lots[lot_id] = lot
                    if not lot.queued:
                        self._enqueue(lot)
                elif lot.expires_us <= last_us:  # already swept: its expiry unrecorded
                    self._unrecorded[lot_id] = lot
            self.refunded += points
        self.entries.append(entry)
        self.by_key[entry.key] = entry
        if t > self.last_us:
            self.last_us = t
            schedule, cursor = self._schedule, self._cursor
            if cursor < len(schedule) and schedule[cursor][0] <= t:
                self._sweep(t)
        queue = self._queue
        if queue and open_lots.get(queue[0][2].lot_id) is not queue[0][2]:
            self._trim()

    def _trim(self) -> None:
        """Drop the lots that left the open ones from the start of the draw queue."""
        queue, open_lots = self._queue, self._open
        dead = 0
        for _, _, lot in queue:
            if open_lots.get(lot.lot_id) is lot:
                break
            lot.queued = False
            dead += 1
        del queue[:dead]

    def _add_lot(self, lot: _Lot, t: int) -> None:
        self._lot_count += 1
        lot.seq = self._lot_count
        self.lots[lot.lot_id] = lot
        if lot.expires_us != _NEVER:
            insort(self._schedule, (lot.expires_us, lot.seq, lot.lot_id))
        if lot.expires_us > t:
            self._open[lot.lot_id] = lot
            self._enqueue(lot)
        if t > self.last_us or lot.expires_us <= t:
            self._sweep(max(t, self.last_us))

    def _enqueue(self, lot: _Lot) -> None:
        """Put ``lot`` (just opened) in the draw queue, in its place."""
        queue = self._queue
        item = (lot.expires_us, lot.seq, lot)
        if not queue or queue[-1] < item:  # tuples differ before the lot: never compared
            queue.append(item)
        else:
            insort(queue, item)
        lot.queued = True
        if len(queue) > 2 * len(self._open) + 32:  # many lots left the open ones: drop them
            for _, _, other in queue:
                other.queued = False
            self._queue = queue = sorted((o.expires_us, o.seq, o) for o in self._open.values())
            for _, _, other in queue:
                other.queued = True

    def _set_expiry(self, lot: _Lot, expires_at: datetime) -> None:
        """Give the open lot ``lot`` a new expiry (an activation that starts it), moving it in
        the expiry schedule and the draw queue."""
        schedule = self._schedule
        if lot.expires_us != _NEVER:
            item = (lot.expires_us, lot.seq, lot.lot_id)
            i = bisect_left(schedule, item, self._cursor)
            if i < len(schedule) and schedule[i] == item:
                del schedule[i]
        lot.expires_at = expires_at
        lot.expires_us = to_us(expires_at)
        insort(schedule, (lot.expires_us, lot.seq, lot.lot_id), self._cursor)
        # the queue is ordered by expiry: rebuild it (activations are rare next to debits)
        for _, _, other in self._queue:
            other.queued = False
        self._queue = queue = sorted((o.expires_us, o.seq, o) for o in self._open.values())
        for _, _, other in queue:
            other.queued = True

    def _sweep(self, t: int) -> None:
        """Move the lots expired at ``t`` out of the open ones (entries never go back in
        time), noting those whose expiry is yet to be recorded."""
        schedule, cursor, lots = self._schedule, self._cursor, self.lots
        while cursor < len(schedule) and schedule[cursor][0] <= t:
            lot = lots[schedule[cursor][2]]
            self._open.pop(lot.lot_id, None)
            if lot.remaining > lot.expire_recorded:
                self._unrecorded[lot.lot_id] = lot
            cursor += 1
        if cursor > 1024 and cursor * 2 > len(schedule):
            del schedule[:cursor]
            cursor = 0
        self._cursor = cursor

    def _settle(self, t: int) -> list[tuple[_Lot, int]]:
        """Pay off the negative balance from the lots active at ``t`` (and at the instants
        pending lots became active since the last entry), soonest expiry first; return what
        was taken from which lots."""
        takes, timed = self._settlement_parts(t)
        if timed:
            self._timed = True
        for lot, take in takes:
            lot.remaining -= take
            if not lot.remaining:
                self._open.pop(lot.lot_id, None)
            self.negative -= take
            self.settled += take
        return takes

    def _undo_payment(self, lot: _Lot, recorded: int, takes: Iterable[tuple[_Lot, int]]) -> None:
        """An EXPIRE stored by csmcore before pending points paid a negative balance at their
        activation recorded as expired the points of ``lot`` that now paid it (between the
        last entry and this one): the stored record stands, so that payment is undone (the
        ledger then reads as it did when the entry was written).

        This narrow rule stays beside the general one (:meth:`apply` reading the whole ledger
        by the earlier rule, :attr:`legacy`), which would also accept such an EXPIRE: it keeps
        today's reading of the instants before the EXPIRE (the debt paid at the activation),
        where the general rule would read them by the earlier one (the points expired, the
        debt still owed); one rule for both would change how such stored ledgers read between
        the expiry and the EXPIRE (tests/storage/test_old_ledger_debts.py, member cy)."""
        excess = recorded - (lot.remaining - lot.expire_recorded)
        if excess <= 0:
            return
        paid = sum(take for other, take in takes if other is lot)
        if excess <= paid:
            lot.remaining += excess
            self.negative += excess
            self.settled -= excess

    def _settlement(self, t: int, *, final: bool = True) -> list[tuple[_Lot, int]]:
        """What paying off the negative balance by ``t`` takes from which lots: at each instant
        after the last entry at which pending lots became active by themselves (their
        ``pending_until``, up to ``t``), from the lots active then, and (``final``) at ``t``
        from the lots active at ``t``; soonest expiry first each time. By the earlier rule
        (:attr:`legacy`), only at ``t``."""
        return self._settlement_parts(t, final=final)[0]

    def _settlement_parts(
        self, t: int, *, final: bool = True
    ) -> tuple[list[tuple[_Lot, int]], int]:
        """:meth:`_settlement`, and how many of its first takes were made at instants pending
        lots became active before ``t``."""
        owed = self.negative
        takes: list[tuple[_Lot, int]] = []
        if not owed or (self.legacy and not final):
            return takes, 0
        if self.legacy:
            for lot in sorted(self._active(t), key=_soonest):
                take = min(owed, lot.remaining)
                takes.append((lot, take))
                owed -= take
                if not owed:
                    break
            return takes, 0
        last = self.last_us
        instants = sorted(
            {
                p
                for lot in self._open.values()
                if (p := lot.pending_us) is not None
                and last < p <= t
                and lot.activated_us is None
                and lot.remaining
                and lot.expires_us > p
            }
        )
        activations = len(instants) if not instants or instants[-1] != t else len(instants) - 1
        if final and (not instants or instants[-1] != t):
            instants.append(t)
        taken: dict[str, int] = {}
        timed = 0
        for i, when in enumerate(instants):
            for lot in sorted(self._active(when), key=_soonest):
                n = lot.remaining - taken.get(lot.lot_id, 0)
                if n <= 0:
                    continue
                take = min(owed, n)
                takes.append((lot, take))
                if i < activations:
                    timed += 1
                taken[lot.lot_id] = taken.get(lot.lot_id, 0) + take
                owed -= take
                if not owed:
                    return takes, timed
        return takes, timed

    def _timed_takes(self, t: int) -> dict[str, int]:
        """lot id -> the points paying off the negative balance takes from it at the instants
        pending lots became active after the last entry, up to ``t`` (for reads at ``t``)."""
        taken: dict[str, int] = {}
        for lot, take in self._settlement(t, final=False):
            taken[lot.lot_id] = taken.get(lot.lot_id, 0) + take
        return taken

    def _active(self, t: int) -> list[_Lot]:
        return [
            lot
            for lot in self._open.values()
            if lot.remaining and lot.expires_us > t and not lot.pending(t)
        ]

    def _available(self, t: int, order: RedemptionOrder) -> list[tuple[_Lot, int]]:
        """The lots a debit at ``t`` may draw from, in ``order``, with what each offers once
        the negative balance is settled."""
        lots = self._active(t)
        lots.sort(key=_soonest if order is RedemptionOrder.SOONEST_EXPIRY else _oldest)
        if not self.negative:
            return [(lot, lot.remaining) for lot in lots]
        taken = {id(lot): take for lot, take in self._settlement(t)}
        found = [(lot, lot.remaining - taken.get(id(lot), 0)) for lot in lots]
        return [(lot, n) for lot, n in found if n > 0]

    # --- derived values ------------------------------------------------------------------------

    def _at(self, at: datetime | None) -> tuple[LedgerState, int]:
        """The state to read at ``at`` (this one, or a replay of the entries up to it)."""
        if at is None:
            return self, self.last_us
        t = check_instant(at, "at")
        if t >= self.last_us:
            return self, t
        earlier = LedgerState.replay(
            self.member_id, (e for e in self.entries if to_us(e.at) <= t), legacy=self.legacy
        )
        return earlier, t

    def balance(self, at: datetime | None = None) -> Balance:
        """The balance at ``at`` (default: the instant of the last entry)."""
        state, t = self._at(at)
        active = pending = expired = 0
        taken = state._timed_takes(t) if state.negative else {}
        for lot in state.lots.values():
            n = lot.remaining - taken.get(lot.lot_id, 0) if taken else lot.remaining
            if not n:
                continue
            if lot.expires_us <= t:
                expired += n
            elif lot.pending(t):
                pending += n
            else:
                active += n
        negative = state.negative - sum(taken.values())
        paid = min(active, negative)
        return Balance(
            active=active - paid,
            pending=pending,
            expired=expired,
            spent=state.redeemed - state.refunded,
            negative=negative - paid,
            lifetime=state.lifetime,
        )

    def lot_values(self, at: datetime | None = None) -> list[Lot]:
        """Every lot of the member at ``at`` (default: the last entry's instant), oldest
        first."""
        state, t = self._at(at)
        taken = state._timed_takes(t) if state.negative else {}
        found = []
        for lot in state.lots.values():
            remaining = lot.remaining - taken.get(lot.lot_id, 0)
            if lot.expires_us <= t:
                status = LotStatus.EXPIRED
            elif not remaining:
                status = LotStatus.USED
            elif lot.pending(t):
                status = LotStatus.PENDING
            else:
                status = LotStatus.ACTIVE
            found.append(
                Lot(
                    lot_id=lot.lot_id,
                    member_id=state.member_id,
                    earned_at=from_us(lot.earned_us),
                    points=lot.points,
                    remaining=remaining,
                    expires_at=lot.expires_at,
                    pending_until=None if lot.pending_us is None else from_us(lot.pending_us),
                    activated_at=None if lot.activated_us is None else from_us(lot.activated_us),
                    status=status,
                )
            )
        return found
