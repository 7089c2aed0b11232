"""The common writes planned and applied in one step, for a store that keeps each member's
:class:`~csmcore.loyalty.LedgerState` in memory (the memory store).

A store that checks versions plans an entry on a state (``plan_*``), then applies it
(``apply``): two passes, each checking what the other already knows. A store that holds the
state under its own lock, where no other writer can come between plan and apply, can do both at
once: :func:`post_earn`, :func:`post_redeem`, :func:`post_refund` and :func:`post_expire` check
the request, build the entry and update lots and counters in one pass, for the common shape of
each request (instants in UTC, a new plain key, no negative balance, soonest-expiry order, a
whole refund). Any other request, a known key (idempotency), and every error go the general way
(``plan_*`` then ``apply``), so the result, the entries written, and what is raised are the
same as ``apply(plan_*(...))`` in every case; the fast pass only skips work whose outcome it
already knows.
"""

from __future__ import annotations

from bisect import insort
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Final

from csmcore._time import MAX_US, MIN_US
from csmcore._values import MAX_INT
from csmcore.errors import InsufficientPoints
from csmcore.loyalty._entries import (
    EntryKind,
    LedgerEntry,
    LotDraw,
    RedemptionOrder,
    _NewDraw,
    _NewEntry,
    trusted_draw,
    trusted_entry,
    utc,
)
from csmcore.loyalty._plans import _fresh_key, expire_key
from csmcore.loyalty._replay import _NEVER, LedgerState, _Lot, _soonest

__all__ = ["post_earn", "post_expire", "post_redeem", "post_refund"]

_UTC: Final = timezone.utc
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EARN: Final = EntryKind.EARN
_REDEEM: Final = EntryKind.REDEEM
_REFUND: Final = EntryKind.REFUND
_EXPIRE: Final = EntryKind.EXPIRE
_SOONEST: Final = RedemptionOrder.SOONEST_EXPIRY
_new = object.__new__


def _us(at: object) -> int | None:
    """Microseconds since the epoch of a supported plain-UTC datetime; None for any other
    value (the general way then checks it and says what is wrong)."""
    if type(at) is datetime and at.tzinfo is _UTC:
        d = at - _EPOCH
        us = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
        if MIN_US <= us < MAX_US:
            return us
    return None


# The parameters of LedgerState.plan_earn and Ledger.earn, again: each layer's signature is
# spelled out (typed, positional for the memory role's call; **kwargs would cost a dict).
def post_earn(
    state: LedgerState,
    points: int,
    at: datetime,
    key: str,
    expires_at: datetime | None = None,
    pending_until: datetime | None = None,
    spend: Decimal | None = None,
    reference: str | None = None,
    reason: str | None = None,
) -> LedgerEntry:
    """``apply(plan_earn(...))`` (the entry already written under ``key`` when there is one)."""
    # the hot path: _us, _fresh_key, trusted_entry and apply's ending spelled out (a call each
    # saved: measured, benchmarks/README.md "Loyalty ledger"; post_redeem repeats the guard)
    by_key = state.by_key
    if (
        pending_until is None
        and spend is None
        and reference is None
        and reason is None
        and not state.negative
        and type(points) is int
        and 0 < points <= MAX_INT
        and type(at) is datetime
        and at.tzinfo is _UTC
        and type(key) is str
        and 0 < len(key) <= 255
        and key.isascii()
        and "\x00" not in key
        and key not in by_key
    ):
        d = at - _EPOCH
        t = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
        if expires_at is None:
            expires_us = _NEVER
        elif type(expires_at) is datetime and expires_at.tzinfo is _UTC:
            d = expires_at - _EPOCH
            expires_us = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
            if expires_us >= MAX_US:
                expires_us = MIN_US  # out of range: the general way says so
        else:
            expires_us = MIN_US  # another time zone: the general way
        # t < MAX_US too: a lot that never expires (expires_us _NEVER) does not bound t
        if MIN_US <= t < expires_us and t >= state.last_us and t < MAX_US:
            member = state.member_id
            entries = state.entries
            seq = len(entries) + 1
            lot_id = f"{member}#{seq}"
            entry: Any = _new(_NewEntry)
            entry.entry_id = lot_id
            entry.member_id = member
            entry.seq = seq
            entry.kind = _EARN
            entry.at = at
            entry.points = points
            entry.key = key
            entry.lot_id = lot_id
            entry.expires_at = expires_at
            entry.pending_until = entry.reference = entry.spend = None
            entry.reason = entry.related = entry.returns_policy = None
            entry.draws = ()
            entry.__class__ = LedgerEntry
            # apply: a new lot, open and queued in its place
            lot: Any = _new(_Lot)
            lot.lot_id = lot_id
            lot.seq = lot_seq = state._lot_count + 1
            lot.earned_us = t
            lot.points = lot.remaining = points
            lot.expires_at = expires_at
            lot.expires_us = expires_us
            lot.pending_us = lot.activated_us = None
            lot.expire_recorded = lot.expire_written = lot.reversed = 0
            state._lot_count = lot_seq
            state.lots[lot_id] = lot
            if expires_us != _NEVER:
                schedule = state._schedule
                item = (expires_us, lot_seq, lot_id)
                if not schedule or schedule[-1] < item:
                    schedule.append(item)
                else:
                    insort(schedule, item)
            open_lots = state._open
            open_lots[lot_id] = lot
            queue = state._queue
            place = (expires_us, lot_seq, lot)
            if queue and queue[-1] < place and len(queue) <= 2 * len(open_lots) + 32:
                queue.append(place)
                lot.queued = True
            else:
                lot.queued = False
                state._enqueue(lot)
            state.lifetime += points
            # apply's ending, as in _apply_planned, spelled out (the hot path: a call saved)
            state._planned = None
            entries.append(entry)
            by_key[key] = entry
            if t > state.last_us:
                state.last_us = t
                schedule, cursor = state._schedule, state._cursor
                if cursor < len(schedule) and schedule[cursor][0] <= t:
                    state._sweep(t)
                    # only the sweep can close the lot at the head of the queue here: every
                    # apply ends with a live head, and a new lot closes nothing
                    queue = state._queue  # _enqueue may have rebuilt it
                    if open_lots.get(queue[0][2].lot_id) is not queue[0][2]:
                        state._trim()
            return entry  # type: ignore[no-any-return]
    found = state.plan_earn(
        points,
        at=at,
        key=key,
        expires_at=expires_at,
        pending_until=pending_until,
        spend=spend,
        reference=reference,
        reason=reason,
    )
    if found.seq > len(state.entries):
        state.apply(found)
    return found


def post_redeem(
    state: LedgerState,
    points: int,
    at: datetime,
    key: str,
    reference: str | None = None,
    order: RedemptionOrder = _SOONEST,
) -> LedgerEntry:
    """``apply(plan_redeem(...))`` (the entry already written under ``key`` when there is
    one); :class:`~csmcore.errors.InsufficientPoints`, changing nothing, when short."""
    # the hot path: _us, _fresh_key, trusted_draw, trusted_entry and apply's ending spelled out
    # (post_earn's guard repeated: a shared helper would cost a call, benchmarks/README.md)
    by_key = state.by_key
    if (
        order is _SOONEST
        and reference is None
        and not state.negative
        and type(points) is int
        and 0 < points <= MAX_INT
        and type(at) is datetime
        and at.tzinfo is _UTC
        and type(key) is str
        and 0 < len(key) <= 255
        and key.isascii()
        and "\x00" not in key
        and key not in by_key
    ):
        d = at - _EPOCH
        t = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
        if MIN_US <= t < MAX_US and t >= state.last_us:
            # plan: walk the draw queue (soonest expiry first), as LedgerState._draw does
            open_lots = state._open
            taken: list[tuple[_Lot, int]] = []
            need = points
            for _, _, lot in state._queue:
                if open_lots.get(lot.lot_id) is not lot:
                    continue
                n = lot.remaining
                if not n or lot.expires_us <= t or (lot.pending_us is not None and lot.pending(t)):
                    continue
                take = n if n < need else need
                taken.append((lot, take))
                need -= take
                if not need:
                    break
            if need:
                raise InsufficientPoints(  # at: a plain UTC datetime, so at == from_us(t)
                    f"member {state.member_id!r} has {points - need} active points at "
                    f"{at.isoformat()}; a redemption of points={points} needs more",
                    field="points",
                    value=points,
                )
            # apply: take the points from the lots, note what each gave (for refunds)
            draws: list[LotDraw] = []
            drawn: dict[str, int] = {}
            for lot, take in taken:
                lot_id = lot.lot_id
                draw: Any = _new(_NewDraw)
                draw.lot_id = lot_id
                draw.points = take
                draw.expires_at = lot.expires_at
                draw.__class__ = LotDraw
                draws.append(draw)
                lot.remaining -= take
                if not lot.remaining:
                    del open_lots[lot_id]
                drawn[lot_id] = take
            member = state.member_id
            entries = state.entries
            seq = len(entries) + 1
            entry: Any = _new(_NewEntry)
            entry.entry_id = f"{member}#{seq}"
            entry.member_id = member
            entry.seq = seq
            entry.kind = _REDEEM
            entry.at = at
            entry.points = -points
            entry.key = key
            entry.lot_id = entry.expires_at = entry.pending_until = None
            entry.reference = entry.spend = entry.reason = entry.related = None
            entry.returns_policy = None
            entry.draws = tuple(draws)
            entry.__class__ = LedgerEntry
            state._drawn[seq] = drawn
            state.redeemed += points
            # apply's ending, as in _apply_planned, spelled out (the hot path: a call saved)
            state._planned = None
            entries.append(entry)
            by_key[key] = entry
            if t > state.last_us:
                state.last_us = t
                schedule, cursor = state._schedule, state._cursor
                if cursor < len(schedule) and schedule[cursor][0] <= t:
                    state._sweep(t)
            queue = state._queue
            if queue and open_lots.get(queue[0][2].lot_id) is not queue[0][2]:
                state._trim()
            return entry  # type: ignore[no-any-return]
    found = state.plan_redeem(points, at=at, key=key, reference=reference, order=order)
    if found.seq > len(state.entries):
        state.apply(found)
    return found


def post_refund(
    state: LedgerState,
    redemption_id: str,
    at: datetime,
    key: str,
    points: int | None = None,
) -> LedgerEntry:
    """``apply(plan_refund(...))`` (the entry already written under ``key`` when there is
    one)."""
    if points is None and not state.negative:
        t = _us(at)
        if t is not None and t >= state.last_us and _fresh_key(key, state.by_key):
            member = state.member_id
            entries = state.entries
            number = _seq_of(redemption_id, member)
            if 0 < number <= len(entries) and number not in state._refunded_by:
                redemption = entries[number - 1]
                if redemption.kind is _REDEEM:
                    # plan: every draw back to its lot, the latest drawn first
                    lots = state.lots
                    taken = [(lots[d.lot_id], d.points) for d in reversed(redemption.draws)]
                    draws = tuple([trusted_draw(lot.lot_id, n, lot.expires_at) for lot, n in taken])
                    wanted = -redemption.points
                    seq = len(entries) + 1
                    entry = trusted_entry(
                        f"{member}#{seq}",
                        member,
                        seq,
                        _REFUND,
                        at,
                        wanted,
                        key,
                        None,
                        None,
                        None,
                        draws,
                        None,
                        None,
                        None,
                        redemption_id,
                    )
                    # apply: the lots get their points back, as apply does with a refund a
                    # plan has just made (no negative balance to settle)
                    state._planned = None
                    state._apply_planned(entry, t, number, taken)
                    return entry
    entry = state.plan_refund(redemption_id, at=at, key=key, points=points)
    if entry.seq > len(state.entries):
        state.apply(entry)
    return entry


def _seq_of(entry_id: object, member: str) -> int:
    """The seq of ``entry_id`` when it is an entry id of ``member``, else 0 (the general way
    then says what is wrong)."""
    if type(entry_id) is str:
        owner, _, number = entry_id.rpartition("#")
        if owner == member and number.isdigit() and number.isascii() and number[0] != "0":
            return int(number)
    return 0


def post_expire(state: LedgerState, at: datetime) -> list[LedgerEntry]:
    """``apply`` of each entry of ``plan_expire(at=...)``: the EXPIRE entries written (none
    when nothing new expired by ``at``)."""
    t = _us(at)
    if t is not None:
        unrecorded = state._unrecorded
        schedule, cursor = state._schedule, state._cursor
        if not unrecorded and (cursor >= len(schedule) or schedule[cursor][0] > t):
            return []  # nothing expired that is not recorded: plan_expire finds nothing
        if not state.negative and t >= state.last_us:
            # plan: the lots plan_expire records, in its order
            lots = state.lots
            expired = list(unrecorded.values())
            for index in range(cursor, len(schedule)):
                if schedule[index][0] > t:
                    break
                expired.append(lots[schedule[index][2]])
            if len(expired) > 1:
                expired.sort(key=_soonest)
            member, entries, by_key = state.member_id, state.entries, state.by_key
            found: list[LedgerEntry] = []
            for lot in expired:
                left = lot.remaining - lot.expire_recorded
                if lot.expires_us > t or left <= 0:
                    continue
                # apply: the lot's expiry recorded (then no longer unrecorded)
                seq = len(entries) + 1
                key = f"expire:{lot.lot_id}:{lot.expire_written}"
                if key in by_key:  # a client's write used it: expire_key finds another
                    key = expire_key(lot, by_key)
                entry = trusted_entry(
                    f"{member}#{seq}",
                    member,
                    seq,
                    _EXPIRE,
                    at,
                    -left,
                    key,
                    lot.lot_id,
                    None if lot.expires_at is None else utc(lot.expires_at),
                )
                lot.expire_recorded += left
                lot.expire_written += left
                unrecorded.pop(lot.lot_id, None)
                entries.append(entry)
                by_key[key] = entry
                if t > state.last_us:
                    state.last_us = t
                    state._sweep(t)
                found.append(entry)
            if found:
                state._planned = None
                queue = state._queue
                if queue and state._open.get(queue[0][2].lot_id) is not queue[0][2]:
                    state._trim()
            return found
    found = state.plan_expire(at=at)
    for entry in found:
        state.apply(entry)
    return found
