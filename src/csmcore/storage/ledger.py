"""The ``ledger`` storage role: members' loyalty ledgers (optional; declared here, once).

A store that offers it has a ``ledger`` attribute satisfying :class:`LedgerRepository` and lists
``"ledger"`` in its ``roles``. The memory, SQLite and PostgreSQL stores offer it; a store written
before the role existed simply does not (:func:`~csmcore.storage.roles.role_of` then raises
:class:`~csmcore.errors.UnsupportedRole`). Use it through :class:`csmcore.services.Ledger`.

The role is small on purpose: the rules live in :class:`~csmcore.loyalty.LedgerState` (pure),
and a store only has to keep each member's entries in order and write new ones **only if
nobody wrote to that member since the state the plan was made on** (a per-member version: the
number of entries). That check is what makes concurrent redemptions unable to overdraw and
concurrent writers unable to lose an entry, on any backend:

- ``write(member_ids, plan)``: give ``plan`` the current :class:`~csmcore.loyalty.LedgerState`
  of each member (an empty one for a new member); ``plan`` returns the new entries (each the
  next seq of its member, possibly none). The store writes them all or none, and only if no
  other writer appended to those members in the meantime; otherwise it runs ``plan`` again on
  the newer states (so ``plan`` must not change the states or anything else). What ``plan``
  raises is raised, with nothing written; so is the ``LedgerCorrupt`` of an entry that does
  not fit its member's ledger (:func:`apply_new` applies them before they are written).
  Returns the entries written.
- ``read(member_id, view)``: ``view(state)`` on one committed state of the member (in a unit
  of work: with its own entries).
- ``members()``: the ids of members with at least one entry, sorted.

On the store, each ``write`` is its own transaction (a transfer writes both members in one
``write``). A store may also offer the role inside its units of work (``uow.ledger``, listed in
the unit of work's ``roles``; the memory, SQLite and PostgreSQL stores do): there ``read`` sees
the unit of work's own entries, and the entries of ``write`` commit or roll back with the rest of
the unit of work, so a ledger entry can be written atomically with ticket events or an
escalation firing. The same guarantees hold there: idempotency keys per member, the
per-member version check (a plan made on a state another writer has since moved on is planned
again, or the write raises ``ConcurrencyError`` when the backend aborted the whole unit of
work: run the unit of work again). The conformance group
:class:`~csmcore.testing.storage_suite.LedgerUnitOfWorkTests` checks it.

>>> from csmcore.storage import open_store
>>> from csmcore.storage.roles import offered_roles
>>> store = open_store("memory://")
>>> "ledger" in offered_roles(store)
True
>>> isinstance(store.ledger, LedgerRepository)
True
>>> store.close()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol, TypeVar, runtime_checkable

from csmcore.errors import ValidationError
from csmcore.loyalty import LedgerEntry, LedgerState, RedemptionOrder
from csmcore.storage import kit
from csmcore.storage.roles import StorageRole, declare_role

__all__ = [
    "LEDGER",
    "LedgerPlan",
    "LedgerPosting",
    "LedgerRepository",
    "apply_new",
    "check_plan",
]

R = TypeVar("R")

LedgerPlan = Callable[[Mapping[str, LedgerState]], Sequence[LedgerEntry]]
"""Works out the new entries from the members' current states (see the module docs)."""


@runtime_checkable
class LedgerRepository(Protocol):
    """Members' append-only loyalty ledgers with a per-member version check."""

    def read(self, member_id: str, view: Callable[[LedgerState], R]) -> R:
        """``view`` applied to one committed state of ``member_id`` (an empty state for a
        member without entries). ``view`` must not change the state. Raises
        ``ValidationError`` for a bad member id, ``StorageError`` for a backend failure."""
        ...

    def write(self, member_ids: Sequence[str], plan: LedgerPlan) -> list[LedgerEntry]:
        """Write the entries ``plan`` returns, all or none, only on the states ``plan`` saw;
        see the module documentation. Raises what ``plan`` raises (nothing written),
        ``ConcurrencyError`` when other writers kept winning, ``StorageError`` for a backend
        failure."""
        ...

    def members(self) -> list[str]:
        """The ids of the members with at least one entry, sorted."""
        ...


@runtime_checkable
class LedgerPosting(Protocol):
    """Optional, for a ledger role that keeps each member's state in memory under its own
    lock (the memory store): the common writes planned and applied in one step, without a
    plan callback. Each returns (and writes, and raises) exactly what :meth:`~LedgerRepository.
    write` gives for the matching ``LedgerState.plan_*`` (the entry already written under
    ``key`` when there is one; :meth:`post_expire`: the EXPIRE entries written).
    :class:`csmcore.services.Ledger` uses them when the role offers them; a store need not."""

    def post_earn(
        self,
        member_id: str,
        points: int,
        at: datetime,
        key: str,
        expires_at: datetime | None,
        pending_until: datetime | None,
        spend: Decimal | None,
        reference: str | None,
        reason: str | None,
    ) -> LedgerEntry:
        """``plan_earn`` with these arguments, applied."""
        ...

    def post_redeem(
        self,
        member_id: str,
        points: int,
        at: datetime,
        key: str,
        reference: str | None,
        order: RedemptionOrder,
    ) -> LedgerEntry:
        """``plan_redeem`` with these arguments, applied."""
        ...

    def post_refund(
        self, member_id: str, redemption_id: str, at: datetime, key: str, points: int | None
    ) -> LedgerEntry:
        """``plan_refund`` of the member's redemption ``redemption_id``, applied."""
        ...

    def post_expire(self, member_id: str, at: datetime) -> list[LedgerEntry]:
        """``plan_expire`` at ``at``, each entry applied."""
        ...


LEDGER = declare_role(
    StorageRole(
        name="ledger",
        protocol=LedgerRepository,
        required=False,
        description="members' loyalty ledgers (csmcore.loyalty.LedgerEntry values)",
    )
)
"""The optional ``ledger`` role (:class:`LedgerRepository`)."""


def check_members(member_ids: Sequence[str]) -> tuple[str, ...]:
    """``member_ids`` as a tuple of checked ids (each storable, at most 255 characters)."""
    if isinstance(member_ids, str) or not isinstance(member_ids, Sequence):
        raise ValidationError(f"member_ids={member_ids!r} is not a sequence of member ids")
    found = tuple(kit.check_id(m, "member_id") for m in member_ids)
    if len(set(found)) != len(found):
        raise ValidationError(f"member_ids={member_ids!r} names a member twice")
    return found


def check_plan(
    member_ids: Sequence[str], states: Mapping[str, LedgerState], entries: Sequence[LedgerEntry]
) -> list[LedgerEntry]:
    """The entries a plan returned, checked: each of one of ``member_ids``, numbered after its
    member's current version in order; ValidationError otherwise."""
    found = list(entries)
    next_seq = {m: states[m].version + 1 for m in member_ids}
    for entry in found:
        if not isinstance(entry, LedgerEntry):
            raise ValidationError(f"a ledger plan returned {entry!r}, not a LedgerEntry")
        expected = next_seq.get(entry.member_id)
        if expected is None or entry.seq != expected:
            raise ValidationError(
                f"a ledger plan returned entry {entry.entry_id!r}, which is not the next entry "
                f"of one of the members {list(member_ids)}"
            )
        next_seq[entry.member_id] = expected + 1
    return found


def apply_new(states: Mapping[str, LedgerState], entries: Sequence[LedgerEntry]) -> None:
    """Apply the new entries a plan returned (checked by :func:`check_plan`) to their members'
    ``states``, before writing them: all or none. An entry that does not fit its member's
    ledger (a plan that built one by hand) raises :class:`~csmcore.errors.LedgerCorrupt`
    naming it, with every state as it was, so a store writes nothing. New entries never read
    by the rule of entries stored before pending points paid a negative balance at their
    activation (see :meth:`~csmcore.loyalty.LedgerState.apply`, ``new``)."""
    done: dict[str, int] = {}
    try:
        for entry in entries:
            state = states[entry.member_id]
            done.setdefault(entry.member_id, state.version)
            state.apply(entry, new=True)
    except BaseException:
        for member, version in done.items():
            if states[member].version != version:
                states[member].rewind(version)
        raise
