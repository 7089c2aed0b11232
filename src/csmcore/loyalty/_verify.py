"""``verify``: prove a member's ledger invariants from its raw entries.

The check replays the entries with its own, deliberately plain code (not
:class:`~csmcore.loyalty.LedgerState`) and then compares its result with the state's, so a bug in
one shows up as a disagreement with the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from csmcore._time import to_us
from csmcore._values import check_iterable, show
from csmcore.errors import CsmError, LedgerCorrupt, ValidationError
from csmcore.loyalty._entries import (
    EntryKind,
    LedgerEntry,
    ReturnsPolicy,
    entry_id_of,
    split_entry_id,
)
from csmcore.loyalty._lots import Balance
from csmcore.loyalty._replay import LedgerState

_UNLIMITED = ReturnsPolicy.UNLIMITED
_ONLY_PENDING = ReturnsPolicy.ONLY_PENDING

__all__ = ["VerifyReport", "verify_entries"]

_NEVER = 2**62


@attrs.frozen(kw_only=True)
class VerifyReport:
    """What :func:`verify_entries` found: ``problems`` is empty when every invariant holds.

    ``balance`` is the balance at the last entry, as the plain replay computes it (None when
    the entries could not be replayed at all).
    """

    member_id: str
    entries: int
    balance: Balance | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when no invariant is broken."""
        return not self.problems

    def raise_for_problems(self) -> VerifyReport:
        """This report when ``ok``, else :class:`~csmcore.errors.LedgerCorrupt` listing the
        problems."""
        if self.problems:
            raise LedgerCorrupt(
                f"ledger of member {self.member_id!r} breaks {len(self.problems)} invariant(s): "
                + "; ".join(self.problems),
                value=self.member_id,
            )
        return self


def verify_entries(
    member_id: str, entries: Sequence[LedgerEntry], *, allow_negative: bool = True
) -> VerifyReport:
    """Check a member's entries (in order) against every ledger invariant:

    - entries are numbered 1, 2, ... with ids ``member#seq``, never go back in time, and each
      idempotency key is used once;
    - every debit is linked to lots (its draws add up to its points; a return may leave the
      rest to the negative balance), draws only from lots that exist, are active (a return
      may also take the pending or expired points of its own lot) and hold enough; no lot
      ever goes below zero;
    - a credit (an earn, a positive adjustment) draws from no lot; a refund gives back at most
      what its redemption drew from each lot, a return claws back at most what its purchase
      earned, an expiry records only expired points (a negative number of them) not recorded
      yet (a return taking back expired points of its own lot takes recorded ones first);
    - a return leaves points to the negative balance only when written under
      ``ReturnsPolicy.UNLIMITED`` (the policy the entry records; for a return stored before
      entries recorded it, ``allow_negative`` says whether the policy allows it), takes only
      pending points of its own lot under ``ONLY_PENDING``, and the negative balance is left
      at zero unless every return that made it was allowed to;
    - conservation: what lots received equals what is in them plus what left them, and the sum
      of lots equals the balance (active + pending + expired, with the negative balance netted);
    - the plain replay and :class:`~csmcore.loyalty.LedgerState` agree on the balance.

    Entries csmcore stored before pending points paid the negative balance at their activation
    that fit only the rule they were written under (the negative balance paid at entries'
    instants only) are judged by that rule, as :meth:`LedgerState.apply` reads them.
    """
    check_iterable(entries, "entries", "a sequence of LedgerEntry")
    for entry in entries:
        if not isinstance(entry, LedgerEntry):
            raise ValidationError(
                f"entries holds {show(entry)}, a {type(entry).__name__}; expected LedgerEntry "
                "values",
                field="entries",
                value=entry,
            )
    report, timed = _verify(member_id, entries, allow_negative, legacy=False)
    if report.problems and timed:
        earlier, _ = _verify(member_id, entries, allow_negative, legacy=True)
        if not earlier.problems:
            return earlier
    return report


def _purchase(
    member_id: str, entries: Sequence[LedgerEntry], entry: LedgerEntry, index: int
) -> LedgerEntry | None:
    """The PURCHASE of ``member_id``, before entry ``index``, that ``entry`` relates to; None
    when it relates to none."""
    try:
        member, seq = split_entry_id(entry.related)
    except CsmError:
        return None
    if member != member_id or not 1 <= seq < index:
        return None
    found = entries[seq - 1]
    return found if found.kind is EntryKind.PURCHASE else None


def _verify(
    member_id: str, entries: Sequence[LedgerEntry], allow_negative: bool, *, legacy: bool
) -> tuple[VerifyReport, bool]:
    """:func:`verify_entries` by today's rule or (``legacy``) the earlier one; and whether
    paying the negative balance took points at an instant a pending lot became active."""
    problems: list[str] = []
    timed = False
    lots: dict[
        str, list[int]
    ] = {}  # lot -> [points, remaining, expires_us, pending_us, act_us, seq]
    drawn: dict[str, dict[str, int]] = {}
    refunded: dict[str, dict[str, int]] = {}
    reversed_: dict[str, int] = {}
    returned: set[str] = set()  # the PURCHASE entries given back
    recorded: dict[str, int] = {}
    keys: set[str] = set()
    negative = settled = created = given_back = left = shortfalls = 0
    forbidden = 0  # points returns left negative where their policy forbids it
    redeemed = refunds = lifetime = 0
    last = -(2**62)

    def pending(lot: list[int], t: int) -> bool:
        return lot[3] != _NEVER and t < lot[3] and (lot[4] == _NEVER or t < lot[4])

    def settle(t: int, taken: dict[str, int] | None = None) -> None:
        nonlocal negative, settled
        if not negative:
            return
        usable = sorted(
            (lot[2], lot[5], lid)
            for lid, lot in lots.items()
            if lot[1] > 0 and lot[2] > t and not pending(lot, t)
        )
        for _, _, lid in usable:
            take = min(negative, lots[lid][1])
            lots[lid][1] -= take
            negative -= take
            settled += take
            if taken is not None:
                taken[lid] = taken.get(lid, 0) + take
            if not negative:
                return

    for index, entry in enumerate(entries, 1):
        where = f"entry {index} ({entry.entry_id!r}, {entry.kind.value})"
        if entry.member_id != member_id or entry.seq != index:
            problems.append(f"{where} is not entry {index} of member {member_id!r}")
        if entry.entry_id != entry_id_of(member_id, index):
            problems.append(f"{where} should have the id {entry_id_of(member_id, index)!r}")
        t = to_us(entry.at)
        if t < last:
            problems.append(f"{where} goes back in time")
        early: dict[str, int] = {}  # what paying the negative balance took from lots, by lot
        if negative and not legacy:  # pending lots active since the last entry paid it first
            for p in sorted(
                {
                    lot[3]
                    for lot in lots.values()
                    if last < lot[3] <= t and lot[4] == _NEVER and lot[1] > 0 and lot[2] > lot[3]
                }
            ):
                settle(p, early)
            timed = timed or bool(early)
        last = max(last, t)
        if entry.key in keys:
            problems.append(f"{where} reuses the idempotency key {entry.key!r}")
        keys.add(entry.key)
        settle(t)
        kind = entry.kind
        total = sum(d.points for d in entry.draws)
        if any(d.points <= 0 for d in entry.draws):
            problems.append(f"{where} has a draw of no points")
        if kind in (EntryKind.EARN, EntryKind.ADJUST) and entry.points > 0:
            if entry.draws:
                problems.append(f"{where} is a credit of {entry.points} points but has draws")
            lots[entry.lot_id or entry.entry_id] = [
                entry.points,
                entry.points,
                _NEVER if entry.expires_at is None else to_us(entry.expires_at),
                _NEVER if entry.pending_until is None else to_us(entry.pending_until),
                _NEVER,
                index,
            ]
            created += entry.points
            lifetime += entry.points
        elif kind is EntryKind.TRANSFER_IN:
            if entry.points != total or entry.points <= 0:
                problems.append(f"{where} credits {entry.points} but creates lots of {total}")
            for d in entry.draws:
                if d.lot_id in lots:
                    problems.append(f"{where} creates the existing lot {d.lot_id!r}")
                exp = _NEVER if d.expires_at is None else to_us(d.expires_at)
                lots[d.lot_id] = [d.points, d.points, exp, _NEVER, _NEVER, index]
                created += d.points
            if entry.related is None or split_entry_id(entry.related)[0] == member_id:
                problems.append(f"{where} is not linked to another member's transfer out")
        elif kind is EntryKind.ACTIVATE:
            lot = lots.get(entry.lot_id or "")
            if lot is None or not pending(lot, t) or entry.points != 0:
                problems.append(f"{where} activates a lot that is not pending")
            else:
                lot[4] = t
                if entry.expires_at is not None:  # the lot's expiry starts at its activation
                    if to_us(entry.expires_at) <= t or lot[2] <= t:
                        problems.append(
                            f"{where} gives lot {entry.lot_id!r} an expiry not after its "
                            "activation, or gives an expired lot a new one"
                        )
                    else:
                        lot[2] = to_us(entry.expires_at)
        elif kind is EntryKind.PURCHASE:
            spend = entry.spend
            if entry.points or entry.draws or entry.lot_id is not None:
                problems.append(f"{where} is a purchase with points, draws or a lot")
            if spend is None or not spend > 0:
                problems.append(f"{where} is a purchase of spend={spend!r}, not money > 0")
        elif kind is EntryKind.REVERSE and (bought := _purchase(member_id, entries, entry, index)):
            if entry.points or entry.draws or entry.lot_id is not None:
                problems.append(f"{where} returns a purchase with points, draws or a lot")
            if entry.spend != bought.spend:
                problems.append(
                    f"{where} gives back spend={entry.spend!r}; {bought.entry_id!r} spent "
                    f"{bought.spend!r}"
                )
            if bought.entry_id in returned:
                problems.append(f"{where} returns the purchase {bought.entry_id!r} again")
            returned.add(bought.entry_id)
        elif kind is EntryKind.EXPIRE:
            lot = lots.get(entry.lot_id or "")
            lid = entry.lot_id or ""
            if entry.points >= 0:
                problems.append(f"{where} records {entry.points} points, not expired points")
            if lot is not None and lot[2] <= t:
                # an expiry stored before pending points paid a negative balance when they
                # became active recorded the points that paid it: the record stands (the
                # narrow rule of LedgerState._undo_payment, kept beside the legacy reading)
                excess = recorded.get(lid, 0) - entry.points - lot[1]
                if 0 < excess <= early.get(lid, 0):
                    lot[1] += excess
                    negative += excess
                    settled -= excess
            if lot is None or lot[2] > t:
                problems.append(f"{where} records the expiry of a lot that has not expired")
            elif recorded.get(lid, 0) - entry.points > lot[1]:
                problems.append(f"{where} records more expired points than the lot holds")
            recorded[lid] = recorded.get(lid, 0) - entry.points
        elif kind is EntryKind.REFUND:
            if entry.points != total or total <= 0:
                problems.append(f"{where} gives back {entry.points} but its draws {total}")
            source = drawn.get(entry.related or "")
            if source is None:
                problems.append(f"{where} refunds {entry.related!r}, no redemption of this member")
                continue
            done = refunded.setdefault(entry.related or "", {})
            for d in entry.draws:
                done[d.lot_id] = done.get(d.lot_id, 0) + d.points
                if done[d.lot_id] > source.get(d.lot_id, 0):
                    problems.append(
                        f"{where} gives back more to lot {d.lot_id!r} than the redemption drew"
                    )
                if d.lot_id in lots:
                    lots[d.lot_id][1] += d.points
            given_back += total
            refunds += total
        else:  # debits
            if entry.points >= 0 and kind is not EntryKind.ADJUST:
                problems.append(f"{where} is a debit of {entry.points} points")
            want = -entry.points
            if kind is EntryKind.REVERSE:
                if total > want:
                    problems.append(f"{where} draws more than it claws back")
                short = want - total
                policy = entry.returns_policy
                allowed = allow_negative if policy is None else policy is _UNLIMITED
                if short and not allowed:
                    forbidden += short
                    problems.append(
                        f"{where} leaves {short} points negative; "
                        + (
                            "the policy forbids it"
                            if policy is None
                            else f"it was written under {policy}, which forbids it"
                        )
                    )
                if policy is _ONLY_PENDING and any(
                    d.lot_id != entry.lot_id or not pending(lots[d.lot_id], t)
                    for d in entry.draws
                    if d.lot_id in lots
                ):
                    problems.append(
                        f"{where} was written under {policy} but takes points that are not "
                        "the pending points of its own lot"
                    )
                related = entry.related or ""
                try:
                    r_member, r_seq = split_entry_id(related)
                except CsmError:
                    r_member, r_seq = "", 0
                earn = entries[r_seq - 1] if r_member == member_id and r_seq < index else None
                if earn is None or earn.kind is not EntryKind.EARN:
                    problems.append(f"{where} reverses {related!r}, no earn of this member")
                else:
                    reversed_[related] = reversed_.get(related, 0) + want
                    if reversed_[related] > earn.points:
                        problems.append(f"{where} claws back more than {related!r} earned")
                shortfalls += short
                negative += short
                lifetime -= want
            elif total != want:
                problems.append(f"{where} debits {want} but its draws add up to {total}")
            for d in entry.draws:
                lot = lots.get(d.lot_id)
                if lot is None:
                    problems.append(f"{where} draws from the unknown lot {d.lot_id!r}")
                    continue
                own = kind is EntryKind.REVERSE and d.lot_id == entry.lot_id
                if (lot[2] <= t and not own) or (kind is not EntryKind.REVERSE and pending(lot, t)):
                    problems.append(f"{where} draws from lot {d.lot_id!r}, which is not active")
                if d.points > lot[1]:
                    problems.append(f"{where} overdraws lot {d.lot_id!r}")
                lot[1] -= d.points
                if recorded.get(d.lot_id):  # a return takes recorded expired points first
                    recorded[d.lot_id] = max(0, recorded[d.lot_id] - d.points)
            left += total
            if kind is EntryKind.REDEEM:
                drawn[entry.entry_id] = {d.lot_id: d.points for d in entry.draws}
                redeemed += total
            if kind is EntryKind.TRANSFER_OUT and (
                entry.related is None or split_entry_id(entry.related)[0] == member_id
            ):
                problems.append(f"{where} is not linked to another member's transfer in")
        settle(t)

    remaining = sum(lot[1] for lot in lots.values())
    if any(lot[1] < 0 for lot in lots.values()):
        problems.append("a lot holds fewer than 0 points")
    if created + given_back != remaining + left + settled:
        problems.append(
            f"conservation: lots received {created + given_back} points but hold {remaining} "
            f"and gave out {left + settled}"
        )
    if shortfalls != negative + settled:
        problems.append("conservation: the negative balance does not match returns and payments")
    if negative and forbidden:
        problems.append(
            f"the negative balance is {negative}; the policy forbids it"
            if forbidden == shortfalls
            else f"the negative balance is {negative}; returns whose policy forbids it left "
            f"{forbidden} of the {shortfalls} points that went negative"
        )
    balance: Balance | None = None
    if entries:
        t = last
        active = pend = expired = 0
        for lot in lots.values():
            if lot[2] <= t:
                expired += lot[1]
            elif pending(lot, t):
                pend += lot[1]
            else:
                active += lot[1]
        paid = min(active, negative)
        balance = Balance(
            active=active - paid,
            pending=pend,
            expired=expired,
            spent=redeemed - refunds,
            negative=negative - paid,
            lifetime=lifetime,
        )
        if active + pend + expired != remaining:
            problems.append("the sum of lots differs from the balance")
        try:
            replayed = LedgerState.replay(member_id, entries, legacy=legacy).balance()
        except CsmError as err:
            problems.append(f"the entries do not replay: {err}")
        else:
            if replayed != balance:
                problems.append(f"the ledger state gives {replayed}, the plain replay {balance}")
    else:
        balance = Balance()
    report = VerifyReport(
        member_id=member_id, entries=len(entries), balance=balance, problems=tuple(problems)
    )
    return report, timed
