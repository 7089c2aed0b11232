"""Ledger entries: the append-only record of a member's points, and the enums that name them.

Points are whole numbers (``int``), never floats; money is a ``Decimal``. A credit has positive
``points``, a debit negative ones (an ACTIVATE and a PURCHASE move nothing and have 0). Every
entry names the lots it touched in ``draws``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Final

import attrs

from csmcore._time import MAX_US, MIN_US, in_range_us, require_aware
from csmcore._values import as_utc, check_int, check_text
from csmcore.errors import ValidationError, invalid_type
from csmcore.serialization import serializable

__all__ = [
    "EntryKind",
    "LedgerEntry",
    "LotDraw",
    "RedemptionOrder",
    "ReturnsPolicy",
    "check_instant",
    "check_points",
]


class EntryKind(enum.Enum):
    """What a ledger entry records."""

    EARN = "earn"
    """Points earned (a purchase, an event): a new lot, perhaps pending, perhaps expiring."""
    ACTIVATE = "activate"
    """A pending lot made active before its ``pending_until`` (0 points)."""
    REDEEM = "redeem"
    """Points spent; ``draws`` names the lots they came from."""
    EXPIRE = "expire"
    """The record that a lot's unused points expired (balances already count them expired
    from the lot's ``expires_at`` on; the entry makes it durable and auditable)."""
    REVERSE = "reverse"
    """The return of a purchase: points an EARN gave are clawed back (``related``: the EARN);
    ``draws`` names the lots they came from, and what the lots could not cover went to the
    negative balance (only under ``ReturnsPolicy.UNLIMITED``). The return of a PURCHASE is a
    REVERSE of 0 points, no lot and no draws, whose ``spend`` is the PURCHASE's."""
    REFUND = "refund"
    """A redemption refunded: the points go back to the very lots it drew from
    (``related``: the REDEEM)."""
    ADJUST = "adjust"
    """A manual correction with a ``reason``: a positive one is a new lot, a negative one
    draws like a redemption."""
    TRANSFER_IN = "transfer_in"
    """Points received from another member; ``draws`` lists the lots created here (each with
    the expiry of the lot it came from); ``related``: the TRANSFER_OUT."""
    TRANSFER_OUT = "transfer_out"
    """Points given to another member; ``draws`` names the lots they came from;
    ``related``: the TRANSFER_IN."""
    PURCHASE = "purchase"
    """Money spent that earned no points (a cap reached, less than a point, nothing the rules
    reward): 0 points, the amount as ``spend`` (> 0), its ``reference`` and activity kind as
    ``reason``; no lot. Spend tiers count it; a REVERSE of 0 points (``related``: the
    PURCHASE) gives its whole spend back."""


class ReturnsPolicy(enum.Enum):
    """How the return of a purchase claws back the points it earned."""

    ONLY_PENDING = "only_pending"
    """Only while the earned lot is still pending; once active the points stay."""
    WITHIN_BALANCE = "within_balance"
    """From the earned lot, then from other active lots; never more than the member has."""
    UNLIMITED = "unlimited"
    """As WITHIN_BALANCE, and what the member no longer has goes to an explicit negative
    balance that later credits pay off first."""


class RedemptionOrder(enum.Enum):
    """Which active lots a debit draws from first."""

    SOONEST_EXPIRY = "soonest_expiry"
    """The lot that expires soonest first (lots that never expire last), then the oldest."""
    FIFO = "fifo"
    """The oldest lot first."""


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


def check_points(value: object, argument: str, *, minimum: int = 1) -> int:
    """``value`` when it is an ``int`` (not a bool) of at least ``minimum``; else
    :class:`~csmcore.errors.InvalidType` (a float, a Decimal, a str) or
    :class:`~csmcore.errors.ValidationError` naming ``argument``.

    >>> check_points(5, "points")
    5
    >>> check_points(2.5, "points")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.InvalidType: points=2.5 is a float; expected a whole number of points (int)
    """
    if type(value) is not int:
        if isinstance(value, int) and not isinstance(value, bool):
            value = int(value)
        else:
            raise invalid_type(argument, value, "a whole number of points (int)")
    check_int(value, argument)  # at most 640 digits, as every integer csmcore keeps
    if value < minimum:
        raise ValidationError(
            f"{argument}={value!r} is not a number of points >= {minimum}",
            field=argument,
            value=value,
        )
    return value


def _int(_: object, attribute: Any, value: Any) -> None:
    if type(value) is not int:
        raise invalid_type(attribute.name, value, "an int")


def _aware(_: object, attribute: Any, value: Any) -> None:
    if value is None and attribute.name != "at":
        return
    if not isinstance(value, datetime):
        raise invalid_type(attribute.name, value, "an aware datetime")
    require_aware(value, attribute.name)
    in_range_us(value, attribute.name)


def _utc(value: Any) -> Any:
    return as_utc(value) if isinstance(value, datetime) and value.tzinfo is not None else value


def _text(_: object, attribute: Any, value: Any) -> None:
    if value is None and attribute.name not in ("entry_id", "member_id", "key"):
        return
    if not isinstance(value, str):
        raise invalid_type(attribute.name, value, "a str")
    if attribute.name in ("entry_id", "member_id", "key", "lot_id") and not value:
        raise ValidationError(f"{attribute.name}='' is not a non-empty string")
    check_text(value, attribute.name)


def _spend(_: object, attribute: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Decimal):
        raise invalid_type("spend", value, "a Decimal amount of money (or None)")
    if not value.is_finite():
        raise ValidationError(f"spend={value!r} is not a finite amount of money")


@serializable("loyalty.lot_draw", aliases=("csmcore.loyalty:LotDraw",))
@attrs.frozen(kw_only=True)
class LotDraw:
    """Points taken from (or, for a REFUND, given back to) one lot; for a TRANSFER_IN, a lot
    created with ``points`` and ``expires_at``."""

    lot_id: str = attrs.field(validator=_text)
    points: int = attrs.field(validator=_int)
    expires_at: datetime | None = attrs.field(default=None, converter=_utc, validator=_aware)


def _entry_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 of ``loyalty.entry`` did not record the returns policy a REVERSE was written
    under: such entries read with ``returns_policy`` None (not known)."""
    return {"returns_policy": None, **data}


def _returns_policy(instance: Any, _: object, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, ReturnsPolicy):
        raise invalid_type("returns_policy", value, "a ReturnsPolicy or None")
    if instance.kind is not EntryKind.REVERSE:
        raise ValidationError(
            f"returns_policy={value.value!r} on a {instance.kind.value} entry; only a reverse "
            "records the returns policy it was written under",
            field="returns_policy",
            value=value,
        )


def _draws(value: Any) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise invalid_type("draws", value, "a sequence of LotDraw")
    return tuple(value)


@serializable(
    "loyalty.entry",
    aliases=("csmcore.loyalty:LedgerEntry",),
    version=2,
    upcasters={1: _entry_1_to_2},
)
@attrs.frozen(kw_only=True)
class LedgerEntry:
    """One entry of a member's append-only ledger.

    ``entry_id`` is ``f"{member_id}#{seq}"``; ``seq`` counts the member's entries from 1 (it is
    also the member's ledger version once the entry is written). ``at`` is when it happened
    (stored in UTC); ``key`` the idempotency key it was written with. ``lot_id`` is the lot an
    EARN / positive ADJUST created, the lot an ACTIVATE or EXPIRE is about, or the lot a
    REVERSE claws back; ``related`` the entry a REFUND / REVERSE / TRANSFER refers to.
    ``spend`` is the money behind an EARN, ``reference`` a caller's reference (an order),
    ``reason`` the why of an ADJUST. ``returns_policy`` is the :class:`ReturnsPolicy` a REVERSE
    was written under (None on other entries, and on reverses stored before csmcore recorded
    it): :func:`~csmcore.loyalty.verify_entries` judges a negative balance by it.
    """

    entry_id: str = attrs.field(validator=_text)
    member_id: str = attrs.field(validator=_text)
    seq: int = attrs.field(validator=_int)
    kind: EntryKind = attrs.field(validator=attrs.validators.instance_of(EntryKind))
    at: datetime = attrs.field(converter=_utc, validator=_aware)
    points: int = attrs.field(validator=_int)
    key: str = attrs.field(validator=_text)
    lot_id: str | None = attrs.field(default=None, validator=_text)
    expires_at: datetime | None = attrs.field(default=None, converter=_utc, validator=_aware)
    pending_until: datetime | None = attrs.field(default=None, converter=_utc, validator=_aware)
    draws: tuple[LotDraw, ...] = attrs.field(default=(), converter=_draws)
    reference: str | None = attrs.field(default=None, validator=_text)
    spend: Decimal | None = attrs.field(default=None, validator=_spend)
    reason: str | None = attrs.field(default=None, validator=_text)
    related: str | None = attrs.field(default=None, validator=_text)
    returns_policy: ReturnsPolicy | None = attrs.field(default=None, validator=_returns_policy)

    @draws.validator
    def _check_draws(self, attribute: Any, value: tuple[Any, ...]) -> None:
        for draw in value:
            if not isinstance(draw, LotDraw):
                raise invalid_type("draws", draw, "a LotDraw")

    def __attrs_post_init__(self) -> None:
        if self.kind is EntryKind.PURCHASE:
            _check_purchase(self)


def _check_purchase(entry: LedgerEntry) -> None:
    """ValidationError unless ``entry`` (a PURCHASE) has 0 points, a ``spend`` > 0, no draws
    and no lot (``lot_id``, ``expires_at``, ``pending_until`` None)."""
    wrong = []
    if entry.points != 0:
        wrong.append(f"points={entry.points!r} (a purchase has 0)")
    if entry.spend is None or not entry.spend > 0:
        wrong.append(f"spend={entry.spend!r} (a purchase has money > 0)")
    for name in ("lot_id", "expires_at", "pending_until"):
        if getattr(entry, name) is not None:
            wrong.append(f"{name}={getattr(entry, name)!r} (a purchase has no lot)")
    if entry.draws:
        wrong.append("draws (a purchase draws from no lot)")
    if wrong:
        raise ValidationError(
            f"entry {entry.entry_id!r} is a purchase with {', '.join(wrong)}",
            field="kind",
            value=entry.kind,
        )


def entry_id_of(member_id: str, seq: int) -> str:
    """The id of a member's ``seq``-th entry."""
    return f"{member_id}#{seq}"


def split_entry_id(entry_id: object) -> tuple[str, int]:
    """``(member_id, seq)`` of an entry id; ValidationError when it is not one."""
    if isinstance(entry_id, str):
        member, sep, number = entry_id.rpartition("#")
        if sep and member and number.isdigit() and number.isascii() and number[0] != "0":
            return member, int(number)
    raise ValidationError(
        f"entry_id={entry_id!r} is not a ledger entry id; expected '<member_id>#<seq>' "
        "as LedgerEntry.entry_id gives it"
    )


_UTC: Final = timezone.utc
_new_object = object.__new__


class _NewEntry(LedgerEntry):
    """A :class:`LedgerEntry` being built: the same slots (so the same memory layout), but
    plain attribute assignment, which the frozen class refuses. :func:`trusted_entry` fills
    its slots, then makes it a ``LedgerEntry`` by assigning ``__class__`` (allowed between
    a class and a subclass that adds no slots): the result is a plain ``LedgerEntry``, equal,
    hashed and serialized like any other, built in a third of the time the slots' own
    setters take. Overriding both ``__setattr__`` and ``__delattr__`` with ``object``'s keeps
    the generic attribute setter, which the interpreter specialises for slots."""

    __slots__ = ()
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__


class _NewDraw(LotDraw):
    """A :class:`LotDraw` being built (as :class:`_NewEntry`)."""

    __slots__ = ()
    __setattr__ = object.__setattr__
    __delattr__ = object.__delattr__


def utc(value: datetime) -> datetime:
    """An aware datetime in UTC (itself when it already is a plain UTC datetime)."""
    return value if value.tzinfo is _UTC and type(value) is datetime else as_utc(value)


def trusted_entry(
    entry_id: str,
    member_id: str,
    seq: int,
    kind: EntryKind,
    at: datetime,
    points: int,
    key: str,
    lot_id: str | None = None,
    expires_at: datetime | None = None,
    pending_until: datetime | None = None,
    draws: tuple[LotDraw, ...] = (),
    reference: str | None = None,
    spend: Decimal | None = None,
    reason: str | None = None,
    related: str | None = None,
    returns_policy: ReturnsPolicy | None = None,
) -> LedgerEntry:
    """A LedgerEntry of values the ledger has already checked (instants already in UTC),
    built without running the validators again: the planner's fast path."""
    entry: Any = _new_object(_NewEntry)
    entry.entry_id = entry_id
    entry.member_id = member_id
    entry.seq = seq
    entry.kind = kind
    entry.at = at
    entry.points = points
    entry.key = key
    entry.lot_id = lot_id
    entry.expires_at = expires_at
    entry.pending_until = pending_until
    entry.draws = draws
    entry.reference = reference
    entry.spend = spend
    entry.reason = reason
    entry.related = related
    entry.returns_policy = returns_policy
    entry.__class__ = LedgerEntry
    return entry  # type: ignore[no-any-return]


def trusted_draw(lot_id: str, points: int, expires_at: datetime | None) -> LotDraw:
    """A LotDraw of checked values (``expires_at`` in UTC), without the validators."""
    draw: Any = _new_object(_NewDraw)
    draw.lot_id = lot_id
    draw.points = points
    draw.expires_at = expires_at
    draw.__class__ = LotDraw
    return draw  # type: ignore[no-any-return]
