"""The loyalty ledger service: posts entries through a store's ``ledger`` role."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from csmcore._boundary import PASS, _safe_str, inline, translate
from csmcore._values import coerce_enum
from csmcore.clock import Clock
from csmcore.errors import StorageError, ValidationError
from csmcore.loyalty import (
    Balance,
    LedgerEntry,
    LedgerState,
    Lot,
    RedemptionOrder,
    ReturnsPolicy,
    VerifyReport,
    plan_transfer,
    split_entry_id,
    verify_entries,
)
from csmcore.storage import kit
from csmcore.storage.ledger import LedgerPosting, LedgerRepository
from csmcore.storage.roles import role_of

__all__ = ["Ledger"]

R = TypeVar("R")
_A = TypeVar("_A")
_B = TypeVar("_B")


class Ledger:
    """Loyalty ledgers of members, kept in ``store`` (any store offering the ``ledger`` role).

    ``order`` is the order debits draw lots in (soonest expiry first by default);
    ``returns`` the :class:`~csmcore.loyalty.ReturnsPolicy` of :meth:`reverse`; ``clock``
    (optional) gives the instant of balances asked without ``at`` (else: the member's last
    entry).

    Every write takes an idempotency ``key`` (unique per member): the same key with the same
    payload returns the entry first written; with another payload it raises
    :class:`~csmcore.errors.IdempotencyConflict`. Writes never go back in time for a member.

    >>> from datetime import datetime, timedelta, timezone
    >>> from csmcore.storage import open_store
    >>> ledger = Ledger(open_store("memory://"))
    >>> jan = datetime(2025, 1, 10, tzinfo=timezone.utc)
    >>> earn = ledger.earn("ann", 100, at=jan, key="order-1", expires_at=jan + timedelta(days=90))
    >>> spend = ledger.redeem("ann", 40, at=jan + timedelta(days=2), key="basket-1")
    >>> ledger.balance("ann").active
    60
    >>> ledger.refund(spend.entry_id, at=jan + timedelta(days=3), key="refund-1").points
    40
    >>> ledger.balance("ann", jan + timedelta(days=2, hours=1)).active
    60
    >>> ledger.redeem("ann", 40, at=jan + timedelta(days=2), key="basket-1") == spend
    True
    >>> ledger.verify("ann").ok
    True
    """

    def __init__(
        self,
        store: object,
        *,
        order: RedemptionOrder | str = RedemptionOrder.SOONEST_EXPIRY,
        returns: ReturnsPolicy | str = ReturnsPolicy.WITHIN_BALANCE,
        clock: Clock | None = None,
    ) -> None:
        self._repo: LedgerRepository = role_of(store, "ledger")
        self._post: LedgerPosting | None = (
            self._repo if isinstance(self._repo, LedgerPosting) else None
        )
        """The role's one-step writes when it offers them (the memory store): the common
        writes then go straight to it, behind this class's inline boundary."""
        self.order = coerce_enum(RedemptionOrder, order, "order")
        self.returns = coerce_enum(ReturnsPolicy, returns, "returns")
        if clock is not None and not isinstance(clock, Clock):
            raise ValidationError(f"clock={clock!r} has no now(); pass a csmcore.clock.Clock")
        self._clock = clock

    @property
    def repository(self) -> LedgerRepository:
        """The store's ``ledger`` role this service writes through."""
        return self._repo

    # --- the role ----------------------------------------------------------------------------
    # A ledger role has no base class (storage.base) to translate its backend's errors: what
    # a role lets through that is not csmcore's own is a backend failure, a StorageError
    # naming the role, never the driver's error itself, a ValidationError (a driver's
    # ValueError is no verdict on the caller's input) or an InternalError asking for a bug
    # report. What the plan or view (csmcore's own code) raises goes on as it is.

    def _role_failed(self, method: str, err: Exception) -> StorageError:
        return StorageError(
            f"the ledger role {type(self._repo).__name__}.{method} raised "
            f"{type(err).__name__}: {_safe_str(err)} (a backend failure it did not translate; "
            "a ledger role raises StorageError for those, see csmcore.storage.ledger)"
        )

    def _through_role(
        self,
        method: str,
        call: Callable[[Callable[[_A], _B]], R],
        callback: Callable[[_A], _B],
    ) -> R:
        """``call(callback')``, a role method handed csmcore's ``callback`` (a plan or a view):
        an error the callback raised comes out as it is; any other error but a CsmError is a
        backend failure the role did not translate, raised as StorageError naming it."""
        raised: list[BaseException] = []

        def tracked(argument: _A) -> _B:
            try:
                return callback(argument)
            except BaseException as err:
                raised.append(err)
                raise

        try:
            return call(tracked)
        except PASS:
            raise
        except Exception as err:
            if any(err is e for e in raised):
                raise
            raise self._role_failed(method, err) from err

    def _write(
        self, member_ids: tuple[str, ...], plan: Callable[[Any], Sequence[LedgerEntry]]
    ) -> list[LedgerEntry]:
        return self._through_role(
            "write", lambda planned: self._repo.write(member_ids, planned), plan
        )

    def _read(self, member_id: str, view: Callable[[LedgerState], R]) -> R:
        return self._through_role("read", lambda viewed: self._repo.read(member_id, viewed), view)

    # --- writes ------------------------------------------------------------------------------

    def _one(self, member_id: str, plan: Callable[[LedgerState], LedgerEntry]) -> LedgerEntry:
        # the store's write checks member_id (before anything else runs)
        result: list[LedgerEntry] = []

        def work(states: Any) -> list[LedgerEntry]:
            state = states[member_id]
            entry = plan(state)
            result[:] = [entry]
            return [entry] if entry.seq > len(state.entries) else []

        self._write((member_id,), work)
        return result[0]

    def _one_behind(
        self, where: str, member_id: str, plan: Callable[[LedgerState], LedgerEntry]
    ) -> LedgerEntry:
        """:meth:`_one` for the public method ``where``, whose boundary is inline: the way
        without the role's one-step writes (a plan's own failure is an InternalError)."""
        try:
            return self._one(member_id, plan)
        except PASS:
            raise
        except Exception as err:
            raise translate(err, where) from err

    @inline("Ledger.earn")
    def earn(
        self,
        member_id: str,
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
        """Credit ``points`` (> 0) as a new lot expiring at ``expires_at`` (None: never),
        pending until ``pending_until`` (None: active at once). ``spend`` is the money behind
        it (a ``Decimal``, 0 or more: ValidationError for a negative one; money given back
        is a :meth:`reverse`). Returns the EARN entry; its ``lot_id`` names the lot."""
        try:
            post = self._post
            if post is not None:
                return post.post_earn(
                    member_id, points, at, key, expires_at, pending_until, spend, reference, reason
                )
        except PASS:
            raise
        except Exception as err:
            raise translate(err, "Ledger.earn") from err
        return self._one_behind(
            "Ledger.earn",
            member_id,
            lambda s: s.plan_earn(
                points,
                at=at,
                key=key,
                expires_at=expires_at,
                pending_until=pending_until,
                spend=spend,
                reference=reference,
                reason=reason,
            ),
        )

    def activate(
        self,
        member_id: str,
        lot_id: str,
        *,
        at: datetime,
        key: str,
        expires_at: datetime | None = None,
    ) -> LedgerEntry:
        """Make the pending lot ``lot_id`` active at ``at`` (before its ``pending_until``);
        :class:`~csmcore.errors.InvalidTransition` when it is not pending. ``expires_at``,
        when given, is the lot's expiry from then on (None keeps the one it was earned with);
        :func:`csmcore.services.activate_points` counts it from the activation by the
        program's expiry policy."""
        return self._one(
            member_id, lambda s: s.plan_activate(lot_id, at=at, key=key, expires_at=expires_at)
        )

    @inline("Ledger.redeem")
    def redeem(
        self,
        member_id: str,
        points: int,
        *,
        at: datetime,
        key: str,
        reference: str | None = None,
    ) -> LedgerEntry:
        """Spend ``points`` from active lots (in this ledger's order); the entry's ``draws``
        name them. :class:`~csmcore.errors.InsufficientPoints` (nothing written) when the
        member has fewer active points; concurrent redemptions never overdraw."""
        order = self.order
        try:
            post = self._post
            if post is not None:
                return post.post_redeem(member_id, points, at, key, reference, order)
        except PASS:
            raise
        except Exception as err:
            raise translate(err, "Ledger.redeem") from err
        return self._one_behind(
            "Ledger.redeem",
            member_id,
            lambda s: s.plan_redeem(points, at=at, key=key, reference=reference, order=order),
        )

    @inline("Ledger.refund")
    def refund(
        self, redemption_entry_id: str, *, at: datetime, key: str, points: int | None = None
    ) -> LedgerEntry:
        """Give back ``points`` (default: all not yet refunded) of a redemption to the very
        lots it drew from, with their own expiry. Partial refunds add up to at most what was
        drawn (ValidationError beyond)."""
        try:
            member_id, _ = split_entry_id(redemption_entry_id)
            post = self._post
            if post is not None:
                return post.post_refund(member_id, redemption_entry_id, at, key, points)
        except PASS:
            raise
        except Exception as err:
            raise translate(err, "Ledger.refund") from err
        return self._one_behind(
            "Ledger.refund",
            member_id,
            lambda s: s.plan_refund(redemption_entry_id, at=at, key=key, points=points),
        )

    def reverse(
        self,
        earn_entry_id: str,
        *,
        at: datetime,
        key: str,
        points: int | None = None,
        policy: ReturnsPolicy | str | None = None,
    ) -> LedgerEntry:
        """The return of a purchase: claw back ``points`` (default: all not yet clawed back)
        that the EARN ``earn_entry_id`` gave, per ``policy`` (default: this ledger's returns
        policy; :func:`csmcore.services.return_points` passes the program's):
        :class:`~csmcore.errors.InvalidTransition` when ONLY_PENDING and the points are
        active; :class:`~csmcore.errors.InsufficientPoints` when WITHIN_BALANCE and the member
        lacks them; UNLIMITED records the rest as a negative balance. Points of the earned lot
        that expired unused are taken back first (never taken again from other lots, nor
        recorded as owed). ``earn_entry_id`` may also name a PURCHASE (money that earned no
        points): its return is a REVERSE of 0 points giving back its whole ``spend``, once
        (``points`` must be None). The entry records the
        policy (``returns_policy``), which is part of the payload: a retry with ``key`` under
        another policy raises :class:`~csmcore.errors.IdempotencyConflict`."""
        chosen = self.returns if policy is None else coerce_enum(ReturnsPolicy, policy, "policy")
        member_id, _ = split_entry_id(earn_entry_id)
        return self._one(
            member_id,
            lambda s: s.plan_reverse(
                earn_entry_id,
                at=at,
                key=key,
                points=points,
                policy=chosen,
                order=self.order,
            ),
        )

    @inline("Ledger.expire")
    def expire(self, member_id: str, *, at: datetime) -> list[LedgerEntry]:
        """Record the expiry of every lot expired by ``at`` and not yet recorded (one EXPIRE
        entry per lot). Running it again writes nothing (idempotent per lot)."""
        try:
            post = self._post
            if post is not None:
                if type(member_id) is not str:  # a new member's id is checked by the role
                    kit.check_id(member_id, "member_id")
                return post.post_expire(member_id, at)
        except PASS:
            raise
        except Exception as err:
            raise translate(err, "Ledger.expire") from err
        try:  # the slow path too: a plan's own failure is an InternalError
            kit.check_id(member_id, "member_id")
            return self._write((member_id,), lambda states: states[member_id].plan_expire(at=at))
        except PASS:
            raise
        except Exception as err:
            raise translate(err, "Ledger.expire") from err

    def adjust(
        self,
        member_id: str,
        points: int,
        *,
        at: datetime,
        key: str,
        reason: str,
        expires_at: datetime | None = None,
    ) -> LedgerEntry:
        """A manual correction: ``points > 0`` is a new lot, ``points < 0`` draws from active
        lots (InsufficientPoints when short); ``reason`` says why."""
        return self._one(
            member_id,
            lambda s: s.plan_adjust(
                points, at=at, key=key, reason=reason, expires_at=expires_at, order=self.order
            ),
        )

    def transfer(
        self, from_member: str, to_member: str, points: int, *, at: datetime, key: str
    ) -> tuple[LedgerEntry, LedgerEntry]:
        """Move ``points`` of active lots from one member to another, atomically; the
        receiver gets lots with the same expiry. Returns (TRANSFER_OUT, TRANSFER_IN)."""
        kit.check_id(from_member, "from_member")
        kit.check_id(to_member, "to_member")
        if from_member == to_member:
            raise ValidationError(
                f"a transfer from member {from_member!r} to itself moves nothing",
                field="to_member",
                value=to_member,
            )
        result: list[LedgerEntry] = []

        def work(states: Any) -> list[LedgerEntry]:
            source, target = states[from_member], states[to_member]
            out, into = plan_transfer(source, target, points, at=at, key=key, order=self.order)
            result[:] = [out, into]
            return [out, into] if out.seq > source.version else []

        self._write((from_member, to_member), work)
        return result[0], result[1]

    # --- reads -------------------------------------------------------------------------------

    def _instant(self, at: datetime | None) -> datetime | None:
        if at is None and self._clock is not None:
            return self._clock.now()
        return at

    def balance(self, member_id: str, at: datetime | None = None) -> Balance:
        """The member's balance at ``at`` (default: the clock's now, else the last entry)."""
        when = self._instant(at)
        return self._read(kit.check_id(member_id, "member_id"), lambda s: s.balance(when))

    def entries(self, member_id: str, *, until: datetime | None = None) -> Sequence[LedgerEntry]:
        """The member's entries in order (those at or before ``until`` when given)."""
        kit.check_id(member_id, "member_id")
        if until is None:
            return self._read(member_id, lambda s: list(s.entries))
        from csmcore.loyalty import check_instant

        check_instant(until, "until")
        return self._read(member_id, lambda s: [e for e in s.entries if e.at <= until])

    def entry(self, entry_id: str) -> LedgerEntry:
        """The entry ``entry_id`` (ValidationError when there is none)."""
        member_id, seq = split_entry_id(entry_id)
        return self._read(member_id, lambda s: s.entry(seq))

    def lots(self, member_id: str, at: datetime | None = None) -> Sequence[Lot]:
        """The member's lots at ``at`` (default as :meth:`balance`), oldest first."""
        when = self._instant(at)
        return self._read(kit.check_id(member_id, "member_id"), lambda s: s.lot_values(when))

    def members(self) -> list[str]:
        """The ids of members with at least one entry, sorted."""
        try:
            return self._repo.members()
        except PASS:
            raise
        except Exception as err:
            raise self._role_failed("members", err) from err

    def verify(self, member_id: str) -> VerifyReport:
        """Prove the member's ledger invariants from its raw entries (see
        :func:`csmcore.loyalty.verify_entries`): a return may leave points negative only when
        it was written under ``ReturnsPolicy.UNLIMITED`` (each return records its policy; for
        one stored before returns recorded it, this handle's ``returns`` policy is asked).
        Call ``.raise_for_problems()`` on the report to raise
        :class:`~csmcore.errors.LedgerCorrupt`."""
        entries = self.entries(member_id)
        return verify_entries(
            member_id, entries, allow_negative=self.returns is ReturnsPolicy.UNLIMITED
        )
