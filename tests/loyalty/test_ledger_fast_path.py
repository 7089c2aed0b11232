"""The memory ledger's fast path (a queue of open lots walked in soonest-expiry order, and an
EARN or REDEEM applied as planned without being checked again) agrees with the plain way:
the sort of every active lot per debit, a replay of the raw entries through the checking
``apply``, and ``verify_entries``."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.errors import InsufficientPoints, InvalidTransition, ValidationError
from csmcore.loyalty import LedgerState, RedemptionOrder, ReturnsPolicy, verify_entries
from csmcore.loyalty._replay import check_instant
from csmcore.services import Ledger
from csmcore.storage import open_store

T0 = datetime(2025, 1, 1, 9, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)

# one step: (kind, member index, points, hours to move on, expiry in hours (0: never), pending)
_steps = st.lists(
    st.tuples(
        st.sampled_from(["earn", "earn", "redeem", "redeem", "refund", "expire", "reverse"]),
        st.integers(0, 2),
        st.integers(1, 60),
        st.integers(0, 30),
        st.integers(0, 80),
        st.booleans(),
    ),
    max_size=60,
)


def _state(ledger: Ledger, member: str) -> LedgerState:
    return ledger.repository.read(member, lambda s: s)


def _expected_draws(state: LedgerState, points: int, at: datetime) -> list[tuple[str, int]]:
    """What a redemption at ``at`` draws, worked out the plain way: every active lot sorted."""
    found, need = [], points
    for lot, n in state._available(check_instant(at, "at"), RedemptionOrder.SOONEST_EXPIRY):
        take = min(n, need)
        found.append((lot.lot_id, take))
        need -= take
        if not need:
            break
    return found


@settings(max_examples=150, deadline=None)
@given(steps=_steps, unlimited=st.booleans())
def test_the_fast_path_agrees_with_sorting_replaying_and_verify(
    steps: list[tuple[str, int, int, int, int, bool]], unlimited: bool
) -> None:
    returns = ReturnsPolicy.UNLIMITED if unlimited else ReturnsPolicy.WITHIN_BALANCE
    ledger = Ledger(open_store("memory://"), returns=returns)
    at = T0
    redemptions: dict[str, list[str]] = {}
    earns: dict[str, list[str]] = {}
    for i, (kind, who, points, hours, expiry, pending) in enumerate(steps):
        member = f"m{who}"
        at += hours * HOUR
        key = f"k{i}"
        try:
            if kind == "earn":
                entry = ledger.earn(
                    member,
                    points,
                    at=at,
                    key=key,
                    expires_at=at + expiry * HOUR if expiry else None,
                    pending_until=at + 2 * HOUR if pending else None,
                )
                earns.setdefault(member, []).append(entry.entry_id)
            elif kind == "redeem":
                before = _state(ledger, member)
                expected = _expected_draws(before, points, at)
                entry = ledger.redeem(member, points, at=at, key=key)
                assert [(d.lot_id, d.points) for d in entry.draws] == expected
                redemptions.setdefault(member, []).append(entry.entry_id)
                # the same key and payload give the original back, unchanged
                assert ledger.redeem(member, points, at=at, key=key) == entry
            elif kind == "refund" and redemptions.get(member):
                ledger.refund(redemptions[member].pop(), at=at, key=key)
            elif kind == "reverse" and earns.get(member):
                ledger.reverse(earns[member].pop(0), at=at, key=key)
            elif kind == "expire":
                ledger.expire(member, at=at)
        except (InsufficientPoints, InvalidTransition, ValidationError):
            pass  # refused: nothing written (checked below by the replay)
    for member in ledger.members():
        live = _state(ledger, member)
        entries = ledger.entries(member)
        replayed = LedgerState.replay(member, entries)
        for instant in (None, at, at + 50 * HOUR):
            assert live.balance(instant) == replayed.balance(instant)
            assert live.lot_values(instant) == replayed.lot_values(instant)
        assert verify_entries(member, entries, allow_negative=unlimited).ok
        # the queue holds every open lot, in soonest-expiry order
        queued = [lot for _, _, lot in live._queue if live._open.get(lot.lot_id) is lot]
        assert sorted(live._open) == sorted(lot.lot_id for lot in queued)
        assert queued == sorted(queued, key=lambda lot: (lot.expires_us, lot.seq))
