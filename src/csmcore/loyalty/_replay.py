"""A member's ledger replayed: lots, counters and the planning of new entries (pure, no I/O).

:class:`LedgerState` is what a store keeps per member (the memory store keeps it for good, the
SQL stores cache it): the entries so far, the lots they made, and the counters balances are
derived from. ``apply(entry)`` adds one entry (and checks it fits: a stored entry that does not
raises :class:`~csmcore.errors.LedgerCorrupt`); the ``plan_*`` methods work out the entry a
request would write, without changing anything, so that a store can plan inside its transaction
and write the entry only if nobody wrote to the member meanwhile (the per-member version).

Time rules (the same at any instant ``t``, for every store):

- a lot is PENDING while ``t < pending_until`` and it has not been activated by an ACTIVATE
  at or before ``t``;
- a lot is EXPIRED from ``t >= expires_at`` on: what is left in it is counted as expired
  (an EXPIRE entry records it; the balance does not wait for it);
- the negative balance (returns under ``ReturnsPolicy.UNLIMITED``) is paid off first: each entry,
  when applied, first settles it from the lots active at its instant, soonest expiry first, and
  again after its own effect; a balance between entries shows active points net of it.
- a member's entries never go back in time: a write whose ``at`` is before the member's last
  entry is refused.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Final

from csmcore._time import MAX_US, MIN_US, from_us, in_range_us, require_aware, to_us
from csmcore._values import check_identifier, check_text
from csmcore.errors import (
    IdempotencyConflict,
    InsufficientPoints,
    InvalidTransition,
    LedgerCorrupt,
    ValidationError,
    invalid_type,
)
from csmcore.loyalty._entries import (
    EntryKind,
    LedgerEntry,
    LotDraw,
    RedemptionOrder,
    ReturnsPolicy,
    check_points,
    entry_id_of,
    split_entry_id,
    trusted_draw,
    trusted_entry,
    utc,
)
from csmcore.loyalty._lots import Balance, Lot, LotStatus

__all__ = ["LedgerState", "check_instant", "plan_transfer"]

_NEVER: Final = 2**62
"""The expiry (microseconds) of a lot that never expires: after every supported instant."""

_ANY: Final = object()


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)


def check_instant(value: object, argument: str) -> int:
    """Microseconds since the epoch of an aware, supported datetime; else
    :class:`~csmcore.errors.NaiveDatetimeError` / ``ValidationError`` naming ``argument``."""
    if type(value) is datetime and value.tzinfo is not None:
        try:
            d = value - _EPOCH
        except (TypeError, OverflowError):
            pass
        else:
            us = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
            if MIN_US <= us < MAX_US:
                return us
    if not isinstance(value, datetime):
        raise invalid_type(argument, value, "an aware datetime")
    require_aware(value, argument)
    return in_range_us(value, argument)


class _Lot:
    """The mutable working state of one lot."""

    __slots__ = (
        "activated_us",
        "earned_us",
        "entry",
        "expire_recorded",
        "expires_at",
        "expires_us",
        "lot_id",
        "pending_us",
        "points",
        "queued",
        "remaining",
        "reversed",
        "seq",
    )

    def __init__(
        self,
        lot_id: str,
        seq: int,
        earned_us: int,
        points: int,
        expires_at: datetime | None,
        pending_until: datetime | None,
        expires_us: int | None = None,
    ) -> None:
        self.lot_id = lot_id
        self.seq = seq
        self.earned_us = earned_us
        self.points = points
        self.remaining = points
        self.expires_at = expires_at
        if expires_us is None:
            expires_us = _NEVER if expires_at is None else to_us(expires_at)
        self.expires_us = expires_us
        self.pending_us = None if pending_until is None else to_us(pending_until)
        self.activated_us: int | None = None
        self.expire_recorded = 0
        self.reversed = 0
        self.queued = False

    def pending(self, t: int) -> bool:
        p = self.pending_us
        if p is None or t >= p:
            return False
        a = self.activated_us
        return a is None or t < a

    def copy(self) -> _Lot:
        other = _Lot.__new__(_Lot)
        for name in _Lot.__slots__:
            setattr(other, name, getattr(self, name))
        return other


def _soonest(lot: _Lot) -> tuple[int, int]:
    return (lot.expires_us, lot.seq)


def _oldest(lot: _Lot) -> int:
    return lot.seq


class LedgerState:
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
        "_schedule",
        "_unrecorded",
        "by_key",
        "entries",
        "last_us",
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
        self.last_us = -(2**62)
        self.negative = 0
        self.settled = 0
        self.redeemed = 0
        self.refunded = 0
        self.lifetime = 0

    @classmethod
    def replay(cls, member_id: str, entries: Iterable[LedgerEntry]) -> LedgerState:
        """The state after ``entries`` (a member's entries in order);
        :class:`~csmcore.errors.LedgerCorrupt` when they do not fit together."""
        state = cls(member_id)
        for entry in entries:
            state.apply(entry)
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

    # --- applying entries --------------------------------------------------------------------

    def _corrupt(self, entry: LedgerEntry, why: str) -> LedgerCorrupt:
        return LedgerCorrupt(
            f"ledger of member {self.member_id!r}: entry {entry.entry_id!r} ({entry.kind.value}) "
            f"{why}",
            field="entry_id",
            value=entry.entry_id,
        )

    def apply(self, entry: LedgerEntry) -> None:
        """Add ``entry`` (the next one of this member) and update lots and counters.

        Raises :class:`~csmcore.errors.LedgerCorrupt` (changing nothing) when it does not fit:
        another member's, not the next seq, back in time, drawing from an unknown lot or more
        than a lot holds.
        """
        planned = self._planned
        self._planned = None
        seq = len(self.entries) + 1
        if planned is not None and planned[0] is entry and entry.seq == seq and not self.negative:
            self._apply_planned(entry, planned[1], planned[2], planned[3])
            return
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
        if self.negative:
            self._settle(t)
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
            lot.activated_us = t
        elif kind is EntryKind.EXPIRE:
            lot = lots.get(entry.lot_id or "")
            if lot is None or lot.expires_us > t or -points > lot.remaining - lot.expire_recorded:
                raise self._corrupt(entry, "records an expiry the lot does not have")
            lot.expire_recorded -= points
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
                usable = (
                    lot.remaining >= draw.points
                    and lot.expires_us > t
                    and (kind is EntryKind.REVERSE or not lot.pending(t))
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

    def _settle(self, t: int) -> None:
        """Pay off the negative balance from the lots active at ``t``, soonest expiry first."""
        for lot, take in self._settlement(t):
            lot.remaining -= take
            if not lot.remaining:
                self._open.pop(lot.lot_id, None)
            self.negative -= take
            self.settled += take

    def _settlement(self, t: int) -> list[tuple[_Lot, int]]:
        owed = self.negative
        takes: list[tuple[_Lot, int]] = []
        if not owed:
            return takes
        for lot in sorted(self._active(t), key=_soonest):
            take = min(owed, lot.remaining)
            takes.append((lot, take))
            owed -= take
            if not owed:
                break
        return takes

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
        earlier = LedgerState.replay(self.member_id, (e for e in self.entries if to_us(e.at) <= t))
        return earlier, t

    def balance(self, at: datetime | None = None) -> Balance:
        """The balance at ``at`` (default: the instant of the last entry)."""
        state, t = self._at(at)
        active = pending = expired = 0
        for lot in state.lots.values():
            n = lot.remaining
            if not n:
                continue
            if lot.expires_us <= t:
                expired += n
            elif lot.pending(t):
                pending += n
            else:
                active += n
        negative = state.negative
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
        found = []
        for lot in state.lots.values():
            if lot.expires_us <= t:
                status = LotStatus.EXPIRED
            elif not lot.remaining:
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
                    remaining=lot.remaining,
                    expires_at=lot.expires_at,
                    pending_until=None if lot.pending_us is None else from_us(lot.pending_us),
                    activated_at=None if lot.activated_us is None else from_us(lot.activated_us),
                    status=status,
                )
            )
        return found

    # --- planning ----------------------------------------------------------------------------

    def _known(self, key: object, kind: EntryKind, **expected: Any) -> LedgerEntry | None:
        """The entry already written with ``key`` when its payload matches; None when the key
        is new; :class:`~csmcore.errors.IdempotencyConflict` when it was used for another
        payload. An expected value of ``_ANY`` matches anything (an amount left to the ledger)."""
        if not isinstance(key, str):
            raise invalid_type("key", key, "a str (the idempotency key)")
        found = self.by_key.get(key)
        if found is None:
            if not key:
                _empty("key")
            check_identifier(key, "key")
            return None
        differs = [
            name
            for name, value in expected.items()
            if value is not _ANY and getattr(found, name) != value
        ]
        if found.kind is not kind:
            differs.insert(0, "kind")
        if differs:
            raise IdempotencyConflict(
                f"key={key!r} was already used for entry {found.entry_id!r} "
                f"({found.kind.value}, {found.points} points at {found.at.isoformat()}) with "
                f"another payload (differs in: {', '.join(differs)}); use a new key for a new "
                "write, or the same payload to get the original result",
                field="key",
                value=key,
            )
        return found

    def _check_time(self, t: int, at: datetime) -> None:
        if t < self.last_us:
            raise ValidationError(
                f"at={at.isoformat()} is before the last entry of member {self.member_id!r} "
                f"({from_us(self.last_us).isoformat()}); a ledger never goes back in time",
                field="at",
                value=at,
            )

    def _new(
        self, kind: EntryKind, at: datetime, points: int, key: str, **fields: Any
    ) -> LedgerEntry:
        """A new entry of checked values (the next seq, plus ``offset``)."""
        seq = len(self.entries) + 1 + fields.pop("offset", 0)
        member = self.member_id
        for name in ("expires_at", "pending_until"):
            value = fields.get(name)
            if value is not None:
                fields[name] = utc(value)
        return trusted_entry(f"{member}#{seq}", member, seq, kind, utc(at), points, key, **fields)

    def _draw(
        self,
        points: int,
        t: int,
        order: RedemptionOrder,
        *,
        what: str,
        taken: list[tuple[_Lot, int]] | None = None,
    ) -> tuple[LotDraw, ...]:
        draws: list[LotDraw] = []
        need = points
        if order is RedemptionOrder.SOONEST_EXPIRY and not self.negative:
            # the common case: walk the queue (already in this order), skipping the lots that
            # left the open ones (apply drops them from its start)
            open_lots = self._open
            for _, _, lot in self._queue:
                if open_lots.get(lot.lot_id) is not lot:
                    continue
                n = lot.remaining
                if not n or lot.expires_us <= t or (lot.pending_us is not None and lot.pending(t)):
                    continue
                take = n if n < need else need
                draws.append(trusted_draw(lot.lot_id, take, lot.expires_at))
                if taken is not None:
                    taken.append((lot, take))
                need -= take
                if not need:
                    break
            if not need:
                return tuple(draws)
            raise InsufficientPoints(
                f"member {self.member_id!r} has {points - need} active points at "
                f"{from_us(t).isoformat()}; {what} of points={points} needs more",
                field="points",
                value=points,
            )
        for lot, n in self._available(t, order):
            take = n if n < need else need
            draws.append(trusted_draw(lot.lot_id, take, lot.expires_at))
            need -= take
            if not need:
                return tuple(draws)
        raise InsufficientPoints(
            f"member {self.member_id!r} has {points - need} active points at "
            f"{from_us(t).isoformat()}; {what} of points={points} needs more",
            field="points",
            value=points,
        )

    def plan_earn(
        self,
        points: int,
        *,
        at: datetime,
        key: str,
        expires_at: datetime | None = None,
        pending_until: datetime | None = None,
        spend: Decimal | None = None,
        reference: str | None = None,
        reason: str | None = None,
    ) -> LedgerEntry:
        """The EARN entry for ``points`` (a new lot), or the one already written with ``key``.

        ``expires_at`` must be after ``at``; a ``pending_until`` not after ``at`` means
        active at once (stored as None).
        """
        if type(points) is not int or points < 1:
            check_points(points, "points")
        t = check_instant(at, "at")
        expires_us = _NEVER if expires_at is None else check_instant(expires_at, "expires_at")
        if expires_us <= t and expires_at is not None:
            raise ValidationError(
                f"expires_at={expires_at.isoformat()} is not after at={at.isoformat()}; a lot "
                "must be usable for some time (use expires_at=None for points that never expire)",
                field="expires_at",
                value=expires_at,
            )
        if pending_until is not None and check_instant(pending_until, "pending_until") <= t:
            pending_until = None
        if spend is not None and (not isinstance(spend, Decimal) or not spend.is_finite()):
            raise invalid_type("spend", spend, "a finite Decimal amount of money (or None)")
        if reference is not None:
            _optional_text(reference, "reference")
        if reason is not None:
            _optional_text(reason, "reason")
        by_key = self.by_key
        if not (  # _fresh_key, spelled out: the hot path
            type(key) is str
            and 0 < len(key) <= 255
            and key.isascii()
            and "\x00" not in key
            and key not in by_key
        ):
            found = self._known(
                key,
                EntryKind.EARN,
                points=points,
                at=at,
                expires_at=expires_at,
                pending_until=pending_until,
                spend=spend,
                reference=reference,
                reason=reason,
            )
            if found is not None:
                return found
        if t < self.last_us:
            self._check_time(t, at)
        member = self.member_id
        seq = len(self.entries) + 1
        entry_id = f"{member}#{seq}"
        entry = trusted_entry(
            entry_id,
            member,
            seq,
            EntryKind.EARN,
            utc(at),
            points,
            key,
            entry_id,
            None if expires_at is None else utc(expires_at),
            None if pending_until is None else utc(pending_until),
            (),
            reference,
            spend,
            reason,
        )
        self._planned = (entry, t, expires_us, [])
        return entry

    def plan_activate(self, lot_id: str, *, at: datetime, key: str) -> LedgerEntry:
        """The ACTIVATE entry making the pending lot ``lot_id`` active at ``at``."""
        t = check_instant(at, "at")
        if not isinstance(lot_id, str):
            raise invalid_type("lot_id", lot_id, "a str (a lot id)")
        found = self._known(key, EntryKind.ACTIVATE, lot_id=lot_id, at=at)
        if found is not None:
            return found
        self._check_time(t, at)
        lot = self.lots.get(lot_id)
        if lot is None:
            raise ValidationError(
                f"lot_id={lot_id!r} is not a lot of member {self.member_id!r}",
                field="lot_id",
                value=lot_id,
            )
        if not lot.pending(t):
            raise InvalidTransition(
                f"lot {lot_id!r} of member {self.member_id!r} is not pending at "
                f"{at.isoformat()}; only a pending lot can be activated",
                field="lot_id",
                value=lot_id,
            )
        return self._new(EntryKind.ACTIVATE, at, 0, key, lot_id=lot_id)

    def plan_redeem(
        self,
        points: int,
        *,
        at: datetime,
        key: str,
        reference: str | None = None,
        order: RedemptionOrder = RedemptionOrder.SOONEST_EXPIRY,
    ) -> LedgerEntry:
        """The REDEEM entry drawing ``points`` from active lots in ``order``;
        :class:`~csmcore.errors.InsufficientPoints` when they do not hold enough."""
        if type(points) is not int or points < 1:
            check_points(points, "points")
        t = check_instant(at, "at")
        if reference is not None:
            _optional_text(reference, "reference")
        by_key = self.by_key
        if not (  # _fresh_key, spelled out: the hot path
            type(key) is str
            and 0 < len(key) <= 255
            and key.isascii()
            and "\x00" not in key
            and key not in by_key
        ):
            found = self._known(key, EntryKind.REDEEM, points=-points, at=at, reference=reference)
            if found is not None:
                return found
        if t < self.last_us:
            self._check_time(t, at)
        taken: list[tuple[_Lot, int]] = []
        draws = self._draw(points, t, order, what="a redemption", taken=taken)
        member = self.member_id
        seq = len(self.entries) + 1
        entry = trusted_entry(
            f"{member}#{seq}",
            member,
            seq,
            EntryKind.REDEEM,
            utc(at),
            -points,
            key,
            None,
            None,
            None,
            draws,
            reference,
        )
        if len(taken) == len(draws):
            self._planned = (entry, t, _NEVER, taken)
        return entry

    def plan_refund(
        self, redemption_id: str, *, at: datetime, key: str, points: int | None = None
    ) -> LedgerEntry:
        """The REFUND entry giving back ``points`` (default: all not yet refunded) of the
        redemption ``redemption_id`` to the very lots it drew from, latest drawn first."""
        t = check_instant(at, "at")
        member, seq = split_entry_id(redemption_id)
        if points is not None:
            check_points(points, "points")
        if not _fresh_key(key, self.by_key):
            found = self._known(
                key,
                EntryKind.REFUND,
                related=redemption_id,
                at=at,
                points=_ANY if points is None else points,
            )
            if found is not None:
                return found
        if t < self.last_us:
            self._check_time(t, at)
        if member != self.member_id:
            raise ValidationError(f"{redemption_id!r} is not an entry of {self.member_id!r}")
        redemption = self.entry(seq)
        if redemption.kind is not EntryKind.REDEEM:
            raise ValidationError(
                f"entry {redemption_id!r} is a {redemption.kind.value}; only a redemption "
                "can be refunded",
                field="redemption_id",
                value=redemption_id,
            )
        done = self._refunded_by.get(seq, {})
        left = [(d.lot_id, d.points - done.get(d.lot_id, 0)) for d in reversed(redemption.draws)]
        refundable = sum(n for _, n in left)
        wanted = refundable if points is None else points
        if not 0 < wanted <= refundable:
            raise ValidationError(
                f"redemption {redemption_id!r} has {refundable} points left to refund; "
                f"a refund of points={wanted} is not possible (a refund never gives back more "
                "than was drawn)",
                field="points",
                value=points,
            )
        draws: list[LotDraw] = []
        taken: list[tuple[_Lot, int]] = []
        need = wanted
        lots = self.lots
        for lot_id, n in left:
            if n <= 0:
                continue
            take = min(n, need)
            lot = lots[lot_id]
            draws.append(trusted_draw(lot_id, take, lot.expires_at))
            taken.append((lot, take))
            need -= take
            if not need:
                break
        member = self.member_id
        number = len(self.entries) + 1
        entry = trusted_entry(
            f"{member}#{number}",
            member,
            number,
            EntryKind.REFUND,
            utc(at),
            wanted,
            key,
            draws=tuple(draws),
            related=redemption_id,
        )
        self._planned = (entry, t, seq, taken)
        return entry

    def plan_reverse(
        self,
        earn_id: str,
        *,
        at: datetime,
        key: str,
        points: int | None = None,
        policy: ReturnsPolicy = ReturnsPolicy.WITHIN_BALANCE,
        order: RedemptionOrder = RedemptionOrder.SOONEST_EXPIRY,
    ) -> LedgerEntry:
        """The REVERSE entry clawing back ``points`` (default: all not yet clawed back) that
        the EARN ``earn_id`` gave, as ``policy`` allows (see :class:`ReturnsPolicy`)."""
        t = check_instant(at, "at")
        member, seq = split_entry_id(earn_id)
        if points is not None:
            check_points(points, "points")
        found = self._known(
            key,
            EntryKind.REVERSE,
            related=earn_id,
            at=at,
            points=_ANY if points is None else -points,
        )
        if found is not None:
            return found
        self._check_time(t, at)
        if member != self.member_id:
            raise ValidationError(f"{earn_id!r} is not an entry of {self.member_id!r}")
        earn = self.entry(seq)
        if earn.kind is not EntryKind.EARN:
            raise ValidationError(
                f"entry {earn_id!r} is a {earn.kind.value}; only an earn can be reversed",
                field="earn_id",
                value=earn_id,
            )
        lot = self.lots[earn.lot_id or earn_id]
        left = lot.points - lot.reversed
        wanted = left if points is None else points
        if not 0 < wanted <= left:
            raise ValidationError(
                f"earn {earn_id!r} has {left} points left to claw back; points={wanted} is "
                "not possible (a return never claws back more than the purchase earned)",
                field="points",
                value=points,
            )
        pending = lot.pending(t)
        if policy is ReturnsPolicy.ONLY_PENDING and not pending:
            raise InvalidTransition(
                f"the points of {earn_id!r} are no longer pending at {at.isoformat()}; under "
                "ReturnsPolicy.ONLY_PENDING only pending points are clawed back",
                field="earn_id",
                value=earn_id,
            )
        sources: list[tuple[_Lot, int]] = []
        available = self._available(t, order)
        own = [n for other, n in available if other is lot]
        if pending and lot.expires_us > t:
            sources.append((lot, lot.remaining))
        elif own:
            sources.append((lot, own[0]))
        if policy is not ReturnsPolicy.ONLY_PENDING:
            sources += [(other, n) for other, n in available if other is not lot]
        draws: list[LotDraw] = []
        need = wanted
        for source, n in sources:
            if not need:
                break
            take = min(n, need)
            if take > 0:
                draws.append(trusted_draw(source.lot_id, take, source.expires_at))
                need -= take
        if need and policy is not ReturnsPolicy.UNLIMITED:
            raise InsufficientPoints(
                f"member {self.member_id!r} has {wanted - need} of the points={wanted} a "
                f"return of {earn_id!r} claws back under {policy}; use ReturnsPolicy.UNLIMITED "
                "to record the rest as a negative balance",
                field="points",
                value=wanted,
            )
        return self._new(
            EntryKind.REVERSE,
            at,
            -wanted,
            key,
            lot_id=lot.lot_id,
            draws=tuple(draws),
            related=earn_id,
        )

    def plan_expire(self, *, at: datetime) -> list[LedgerEntry]:
        """The EXPIRE entries recording the points expired by ``at`` and not yet recorded (one
        per lot; none when there is nothing new, so running it again writes nothing)."""
        t = check_instant(at, "at")
        found: list[LedgerEntry] = []
        expired = list(self._unrecorded.values())
        schedule = self._schedule
        for index in range(self._cursor, len(schedule)):
            if schedule[index][0] > t:
                break
            expired.append(self.lots[schedule[index][2]])
        if len(expired) > 1:
            expired.sort(key=_soonest)
        for lot in expired:
            if lot.expires_us > t:
                continue
            unrecorded = lot.remaining - lot.expire_recorded
            if unrecorded > 0:
                if not found:
                    self._check_time(t, at)
                found.append(
                    self._new(
                        EntryKind.EXPIRE,
                        at,
                        -unrecorded,
                        f"expire:{lot.lot_id}:{lot.expire_recorded}",
                        lot_id=lot.lot_id,
                        expires_at=lot.expires_at,
                        offset=len(found),
                    )
                )
        return found

    def plan_adjust(
        self,
        points: int,
        *,
        at: datetime,
        key: str,
        reason: str,
        expires_at: datetime | None = None,
        order: RedemptionOrder = RedemptionOrder.SOONEST_EXPIRY,
    ) -> LedgerEntry:
        """The ADJUST entry: ``points > 0`` is a new lot, ``points < 0`` draws like a
        redemption (:class:`~csmcore.errors.InsufficientPoints`); ``reason`` is required."""
        if type(points) is not int:
            check_points(points, "points")
        if points == 0:
            raise ValidationError("points=0 adjusts nothing; give a positive or negative number")
        t = check_instant(at, "at")
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError(
                f"reason={reason!r} is not a non-empty string; an adjustment says why",
                field="reason",
                value=reason,
            )
        check_text(reason, "reason")
        if expires_at is not None and check_instant(expires_at, "expires_at") <= t:
            raise ValidationError(
                f"expires_at={expires_at.isoformat()} is not after at={at.isoformat()}",
                field="expires_at",
                value=expires_at,
            )
        found = self._known(
            key, EntryKind.ADJUST, points=points, at=at, reason=reason, expires_at=expires_at
        )
        if found is not None:
            return found
        self._check_time(t, at)
        if points > 0:
            return self._new(
                EntryKind.ADJUST,
                at,
                points,
                key,
                lot_id=entry_id_of(self.member_id, len(self.entries) + 1),
                expires_at=expires_at,
                reason=reason,
            )
        draws = self._draw(-points, t, order, what="an adjustment")
        return self._new(
            EntryKind.ADJUST, at, points, key, draws=draws, reason=reason, expires_at=expires_at
        )


def plan_transfer(
    source: LedgerState,
    target: LedgerState,
    points: int,
    *,
    at: datetime,
    key: str,
    order: RedemptionOrder = RedemptionOrder.SOONEST_EXPIRY,
) -> tuple[LedgerEntry, LedgerEntry]:
    """The TRANSFER_OUT of ``source`` and the TRANSFER_IN of ``target`` moving ``points``
    with their lots' expiry (both written with ``key``), or the pair already written."""
    check_points(points, "points")
    t = check_instant(at, "at")
    if source.member_id == target.member_id:
        raise ValidationError(
            f"a transfer from member {source.member_id!r} to itself moves nothing",
            field="to_member",
            value=target.member_id,
        )
    found = source._known(key, EntryKind.TRANSFER_OUT, points=-points, at=at)
    if found is not None:
        member, seq = split_entry_id(found.related)
        if member != target.member_id:
            raise IdempotencyConflict(
                f"key={key!r} was already used for a transfer to {member!r}, not to "
                f"{target.member_id!r}",
                field="key",
                value=key,
            )
        return found, target.entry(seq)
    if target._known(key, EntryKind.TRANSFER_IN, points=points, at=at) is not None:
        raise IdempotencyConflict(
            f"key={key!r} was already used by member {target.member_id!r} for another write",
            field="key",
            value=key,
        )
    source._check_time(t, at)
    target._check_time(t, at)
    draws = source._draw(points, t, order, what="a transfer")
    out_id = entry_id_of(source.member_id, source.version + 1)
    in_id = entry_id_of(target.member_id, target.version + 1)
    created = tuple(
        LotDraw(lot_id=f"{in_id}.{i}", points=d.points, expires_at=d.expires_at)
        for i, d in enumerate(draws, 1)
    )
    out = source._new(EntryKind.TRANSFER_OUT, at, -points, key, draws=draws, related=in_id)
    into = target._new(EntryKind.TRANSFER_IN, at, points, key, draws=created, related=out_id)
    return out, into


def _fresh_key(key: object, by_key: dict[str, LedgerEntry]) -> bool:
    """True when ``key`` is a plain new idempotency key (a non-empty ASCII str without NUL of
    at most 255 characters, not used yet): the check :meth:`LedgerState._known` would pass
    without finding anything. False sends the caller to ``_known`` (which raises, finds the
    entry, or checks an unusual key the long way)."""
    return (
        type(key) is str
        and 0 < len(key) <= 255
        and key.isascii()
        and "\x00" not in key
        and key not in by_key
    )


def _optional_text(value: object, argument: str) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise invalid_type(argument, value, "a str or None")
    check_text(value, argument)


def _empty(argument: str) -> None:
    raise ValidationError(f"{argument}='' is not a non-empty string", field=argument, value="")
