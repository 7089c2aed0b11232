"""The planning half of :class:`~csmcore.loyalty.LedgerState`: the ``plan_*`` methods and
:func:`~csmcore.loyalty._transfer.plan_transfer` is in ``_transfer`` (pure, no I/O; see the
documentation of ``csmcore.loyalty._replay``).

A plan works out the entry a request would write without changing the state; ``apply`` (in
``_replay``) then adds it. ``_Planning`` is a mixin: it keeps no state of its own and reads the
attributes and helpers that ``LedgerState`` defines (declared below for the type checker).

``guard_class``, which ``csmcore.loyalty`` applies to ``LedgerState``, wraps only the methods a
class defines itself, so the public methods here are put behind the boundary where they are
defined, under the same names (``LedgerState.plan_earn``, ...).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from csmcore._boundary import guarded
from csmcore._time import from_us
from csmcore._values import MAX_INT, MIN_INT, check_identifier, check_text, coerce_enum
from csmcore.errors import (
    IdempotencyConflict,
    InsufficientPoints,
    InvalidTransition,
    ValidationError,
    invalid_type,
)
from csmcore.loyalty._entries import (
    EntryKind,
    LedgerEntry,
    LotDraw,
    RedemptionOrder,
    ReturnsPolicy,
    check_instant,
    check_points,
    entry_id_of,
    split_entry_id,
    trusted_draw,
    trusted_entry,
    utc,
)
from csmcore.loyalty._lots import _NEVER, _Lot, _soonest

if TYPE_CHECKING:
    pass

__all__ = ["expire_key"]

_ANY: Final = object()


def _in_utc(at: datetime) -> str:
    """`` (<at in UTC>)`` when ``at`` is in another zone, so that it reads next to the ledger's
    own instants (in UTC); else nothing."""
    if at.utcoffset() == timedelta(0):
        return ""
    return f" ({utc(at).isoformat()})"


def _order(value: object) -> RedemptionOrder:
    """``value`` as a RedemptionOrder (the member itself, or its value such as ``"fifo"``);
    ValidationError naming ``order`` and the accepted values for anything else."""
    if value is RedemptionOrder.SOONEST_EXPIRY or value is RedemptionOrder.FIFO:
        return value
    return coerce_enum(RedemptionOrder, value, "order")


class _Planning:
    """The ``plan_*`` methods of :class:`~csmcore.loyalty.LedgerState` (a mixin: no state)."""

    __slots__ = ()

    # what LedgerState defines and the planning reads (see LedgerState.__init__)
    member_id: str
    entries: list[LedgerEntry]
    by_key: dict[str, LedgerEntry]
    lots: dict[str, _Lot]
    negative: int
    last_us: int
    _open: dict[str, _Lot]
    _queue: list[tuple[int, int, _Lot]]
    _schedule: list[tuple[int, int, str]]
    _cursor: int
    _planned: tuple[LedgerEntry, int, int, list[tuple[_Lot, int]]] | None
    _unrecorded: dict[str, _Lot]
    _refunded_by: dict[int, dict[str, int]]
    _returned: set[str]

    if TYPE_CHECKING:

        def entry(self, seq: int) -> LedgerEntry: ...

        def purchase_of(self, entry_id: str | None) -> LedgerEntry | None: ...

        def _available(self, t: int, order: RedemptionOrder) -> list[tuple[_Lot, int]]: ...

        def _settlement(self, t: int, *, final: bool = True) -> list[tuple[_Lot, int]]: ...

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
                f"at={at.isoformat()}{_in_utc(at)} is before the last entry of member "
                f"{self.member_id!r} ({from_us(self.last_us).isoformat()}); a ledger never "
                f"goes back in time: write it at {from_us(self.last_us).isoformat()} or later "
                f"(ledger.entries({self.member_id!r})[-1].at), e.g. at=max(at, that), as the "
                "escalation engine dates its grants",
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
                    return tuple(draws)
        else:
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

    @guarded(where="LedgerState.plan_earn")
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
        if type(points) is not int or not 1 <= points <= MAX_INT:
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
        if spend is not None:
            if not isinstance(spend, Decimal) or not spend.is_finite():
                raise invalid_type("spend", spend, "a finite Decimal amount of money (or None)")
            if spend < 0:  # it would lower the member's spend towards a tier
                raise ValidationError(
                    f"spend={spend!r} is negative; the money behind an earn is 0 or more "
                    "(give money back with reverse: a return)",
                    field="spend",
                    value=spend,
                )
        _optional_text(reference, "reference")
        _optional_text(reason, "reason")
        by_key = self.by_key
        if not _fresh_key(key, by_key):
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
        self._planned = (entry, t, expires_us, [])  # type: ignore[misc]  # LedgerState's slot
        return entry

    @guarded(where="LedgerState.plan_purchase")
    def plan_purchase(
        self,
        spend: Decimal,
        *,
        at: datetime,
        key: str,
        reference: str | None = None,
        reason: str | None = None,
    ) -> LedgerEntry:
        """The PURCHASE entry recording ``spend`` (a ``Decimal`` > 0), money spent that earned
        no points (0 points, no lot: spend tiers count it), or the one already written with
        ``key``. ``reference`` and ``reason`` as for :meth:`plan_earn`."""
        t = check_instant(at, "at")
        if not isinstance(spend, Decimal) or not spend.is_finite():
            raise invalid_type("spend", spend, "a finite Decimal amount of money")
        if spend <= 0:
            raise ValidationError(
                f"spend={spend!r} is not more than 0; a purchase entry records money spent "
                "(a purchase of nothing writes no entry)",
                field="spend",
                value=spend,
            )
        _optional_text(reference, "reference")
        _optional_text(reason, "reason")
        found = self._known(
            key, EntryKind.PURCHASE, spend=spend, at=at, reference=reference, reason=reason
        )
        if found is not None:
            return found
        self._check_time(t, at)
        return self._new(
            EntryKind.PURCHASE, at, 0, key, spend=spend, reference=reference, reason=reason
        )

    @guarded(where="LedgerState.plan_activate")
    def plan_activate(
        self, lot_id: str, *, at: datetime, key: str, expires_at: datetime | None = None
    ) -> LedgerEntry:
        """The ACTIVATE entry making the pending lot ``lot_id`` active at ``at``.

        ``expires_at``, when given, becomes the lot's expiry from then on (points awaiting an
        explicit activation count their expiry from the activation: see
        :func:`csmcore.services.activate_points`); None keeps the expiry the lot was earned
        with. ValidationError when it is not after ``at``; InvalidTransition when the lot is
        not pending, or has already expired (its points cannot come back).
        """
        t = check_instant(at, "at")
        if not isinstance(lot_id, str):
            raise invalid_type("lot_id", lot_id, "a str (a lot id)")
        if expires_at is not None and check_instant(expires_at, "expires_at") <= t:
            raise ValidationError(
                f"expires_at={expires_at.isoformat()} is not after at={at.isoformat()}; an "
                "activated lot must be usable for some time (use expires_at=None to keep the "
                "lot's own expiry)",
                field="expires_at",
                value=expires_at,
            )
        found = self._known(
            key,
            EntryKind.ACTIVATE,
            lot_id=lot_id,
            at=at,
            expires_at=None if expires_at is None else utc(expires_at),
        )
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
        if expires_at is not None and lot.expires_us <= t:
            raise InvalidTransition(
                f"lot {lot_id!r} of member {self.member_id!r} expired at "
                f"{from_us(lot.expires_us).isoformat()}, before its activation at "
                f"{at.isoformat()}; an expired lot cannot be given a new expiry",
                field="lot_id",
                value=lot_id,
            )
        return self._new(EntryKind.ACTIVATE, at, 0, key, lot_id=lot_id, expires_at=expires_at)

    @guarded(where="LedgerState.plan_redeem")
    def plan_redeem(
        self,
        points: int,
        *,
        at: datetime,
        key: str,
        reference: str | None = None,
        order: RedemptionOrder | str = RedemptionOrder.SOONEST_EXPIRY,
    ) -> LedgerEntry:
        """The REDEEM entry drawing ``points`` from active lots in ``order`` (a
        :class:`RedemptionOrder` or its value); :class:`~csmcore.errors.InsufficientPoints`
        when they do not hold enough."""
        if type(points) is not int or not 1 <= points <= MAX_INT:
            check_points(points, "points")
        order = _order(order)
        t = check_instant(at, "at")
        _optional_text(reference, "reference")
        by_key = self.by_key
        if not _fresh_key(key, by_key):
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
            self._planned = (entry, t, _NEVER, taken)  # type: ignore[misc]  # LedgerState's slot
        return entry

    @guarded(where="LedgerState.plan_refund")
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
        self._planned = (entry, t, seq, taken)  # type: ignore[misc]  # LedgerState's slot
        return entry

    @guarded(where="LedgerState.plan_reverse")
    def plan_reverse(
        self,
        earn_id: str,
        *,
        at: datetime,
        key: str,
        points: int | None = None,
        policy: ReturnsPolicy | str = ReturnsPolicy.WITHIN_BALANCE,
        order: RedemptionOrder | str = RedemptionOrder.SOONEST_EXPIRY,
    ) -> LedgerEntry:
        """The REVERSE entry clawing back ``points`` (default: all not yet clawed back) that
        the EARN ``earn_id`` gave, as ``policy`` (a :class:`ReturnsPolicy` or its value)
        allows; the entry records the policy."""
        t = check_instant(at, "at")
        member, seq = split_entry_id(earn_id)
        if points is not None:
            check_points(points, "points")
        # by value too, as Ledger.reverse takes it: the entry records the member
        policy = coerce_enum(ReturnsPolicy, policy, "policy")
        order = _order(order)
        # the policy is part of the payload; a return stored before entries recorded it
        # (returns_policy None) matches any
        before = self.by_key.get(key) if type(key) is str else None
        found = self._known(
            key,
            EntryKind.REVERSE,
            related=earn_id,
            at=at,
            points=_ANY if points is None else -points,
            returns_policy=_ANY if before is None or before.returns_policy is None else policy,
        )
        if found is not None:
            return found
        self._check_time(t, at)
        if member != self.member_id:
            raise ValidationError(f"{earn_id!r} is not an entry of {self.member_id!r}")
        earn = self.entry(seq)
        if earn.kind is EntryKind.PURCHASE:
            return self._return_purchase(earn, at, key, points, policy)
        if earn.kind is not EntryKind.EARN:
            raise ValidationError(
                f"entry {earn_id!r} is a {earn.kind.value}; only an earn or a purchase can be "
                "reversed",
                field="earn_id",
                value=earn_id,
            )
        lot = self.lots[earn.lot_id or earn_id]
        left = lot.points - lot.reversed
        wanted = left if points is None else points
        if points is None and left == 0:
            raise ValidationError(
                f"earn {earn_id!r} was already clawed back in full (0 of its {lot.points} "
                "points left); a return never claws back more than the purchase earned",
                field="earn_id",
                value=earn_id,
            )
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
        elif lot.expires_us <= t and lot.remaining:
            # its points that expired unused: the member lost them already, so the return
            # takes them back first rather than taking as many again from other lots
            paid = sum(take for other, take in self._settlement(t, final=False) if other is lot)
            if lot.remaining > paid:
                sources.append((lot, lot.remaining - paid))
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
            returns_policy=policy,
        )

    def _return_purchase(
        self,
        bought: LedgerEntry,
        at: datetime,
        key: str,
        points: int | None,
        policy: ReturnsPolicy,
    ) -> LedgerEntry:
        """:meth:`plan_reverse` of a PURCHASE: a REVERSE of 0 points giving back its whole
        ``spend`` (once), under any policy (there are no points to claw back)."""
        if bought.entry_id in self._returned:
            raise ValidationError(
                f"purchase {bought.entry_id!r} was already returned in full (its spend "
                f"{bought.spend} given back); a return never gives back more than the purchase "
                "spent",
                field="earn_id",
                value=bought.entry_id,
            )
        if points is not None:
            raise ValidationError(
                f"purchase {bought.entry_id!r} earned no points; points={points} is not "
                "possible (its return gives back its whole spend and claws back no points: "
                "use points=None)",
                field="points",
                value=points,
            )
        return self._new(
            EntryKind.REVERSE,
            at,
            0,
            key,
            spend=bought.spend,
            related=bought.entry_id,
            returns_policy=policy,
        )

    @guarded(where="LedgerState.plan_expire")
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
        # points paying off a negative balance as pending lots became active since the last
        # entry never expire (apply settles them before recording an expiry)
        paid: dict[str, int] = {}
        if self.negative:
            for other, take in self._settlement(t, final=False):
                paid[other.lot_id] = paid.get(other.lot_id, 0) + take
        for lot in expired:
            if lot.expires_us > t:
                continue
            unrecorded = lot.remaining - paid.get(lot.lot_id, 0) - lot.expire_recorded
            if unrecorded > 0:
                if not found:
                    self._check_time(t, at)
                found.append(
                    self._new(
                        EntryKind.EXPIRE,
                        at,
                        -unrecorded,
                        expire_key(lot, self.by_key),
                        lot_id=lot.lot_id,
                        expires_at=lot.expires_at,
                        offset=len(found),
                    )
                )
        return found

    @guarded(where="LedgerState.plan_adjust")
    def plan_adjust(
        self,
        points: int,
        *,
        at: datetime,
        key: str,
        reason: str,
        expires_at: datetime | None = None,
        order: RedemptionOrder | str = RedemptionOrder.SOONEST_EXPIRY,
    ) -> LedgerEntry:
        """The ADJUST entry: ``points > 0`` is a new lot, ``points < 0`` draws like a
        redemption (:class:`~csmcore.errors.InsufficientPoints`); ``reason`` is required."""
        if type(points) is not int or not MIN_INT <= points <= MAX_INT:
            check_points(points, "points", minimum=MIN_INT)
        if points == 0:
            raise ValidationError("points=0 adjusts nothing; give a positive or negative number")
        order = _order(order)
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


def expire_key(lot: _Lot, by_key: dict[str, LedgerEntry]) -> str:
    """The key of the EXPIRE entry recording what is unrecorded of ``lot``:
    ``expire:<lot>:<points recorded so far>``, or, when a client's write already used that
    key, the first of ``...~2``, ``...~3``, ... not used (an expiry needs no client key: it is
    idempotent per lot, and its key must only never collide with another entry's)."""
    key = f"expire:{lot.lot_id}:{lot.expire_written}"
    if key in by_key:
        base, n = key, 2
        while (key := f"{base}~{n}") in by_key:
            n += 1
    return key


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
