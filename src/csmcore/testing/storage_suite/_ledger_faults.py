"""The ledger fault checks' scene: the entries they start from, the writes they make the
backend refuse (through the :class:`~csmcore.testing.storage_suite.LedgerFaults` hook) and how
they tell a refusal from a half-written ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from csmcore.errors import StorageError
from csmcore.loyalty import LedgerEntry
from csmcore.services import Ledger
from csmcore.testing.builders import T0
from csmcore.testing.storage_suite._base import assert_driver_cause

DAY = timedelta(days=1)


def fault_scene(ledger: Ledger) -> None:
    """The entries the fault checks start from: ann holds two lots (10 and 2 points left after
    a redemption of 3), bob one."""
    ledger.earn("ann", 10, at=T0, key="e1", expires_at=T0 + 90 * DAY)
    ledger.earn("ann", 5, at=T0, key="e2", expires_at=T0 + 30 * DAY)
    ledger.redeem("ann", 3, at=T0 + DAY, key="r1")
    ledger.earn("bob", 4, at=T0, key="e1")


def _refund(ledger: Ledger) -> object:
    (redemption,) = [e.entry_id for e in ledger.entries("ann") if e.key == "r1"]
    return ledger.refund(redemption, at=T0 + 2 * DAY, key="fault-refund")


FAULTED_WRITES: dict[str, tuple[Callable[[Ledger], object], tuple[tuple[str, int], ...]]] = {
    "earn": (
        lambda ledger: ledger.earn(
            "ann", 7, at=T0 + 2 * DAY, key="fault-earn", expires_at=T0 + 60 * DAY
        ),
        (("ann", 1),),
    ),
    "redeem": (
        lambda ledger: ledger.redeem("ann", 2, at=T0 + 2 * DAY, key="fault-redeem"),
        (("ann", 1),),
    ),
    "refund": (_refund, (("ann", 1),)),
    "expire": (lambda ledger: ledger.expire("ann", at=T0 + 400 * DAY), (("ann", 1), ("ann", 2))),
    "transfer": (
        lambda ledger: ledger.transfer("ann", "bob", 2, at=T0 + 2 * DAY, key="fault-transfer"),
        (("ann", 1), ("bob", 1)),
    ),
}
"""Writes on :func:`fault_scene`, each with the entries it writes: (member, n) is the n-th new
entry of that member (the expiry writes one EXPIRE entry per lot, a transfer one entry each)."""


def ledger_snapshot(ledger: Ledger) -> dict[str, list[LedgerEntry]]:
    """Every member's entries, as the store reads them now."""
    return {m: list(ledger.entries(m)) for m in ("ann", "bob", *ledger.members())}


def refused_by_the_backend(call: Callable[[], object], where: str) -> StorageError:
    """The StorageError ``call`` raises while the backend refuses ``where``; fails otherwise."""
    try:
        call()
    except StorageError as err:
        assert_driver_cause(err)
        return err
    except Exception as err:
        pytest.fail(
            f"while the backend refused {where}, the write raised {err!r}; a backend failure "
            "must reach the caller as StorageError caused by the driver's error (not "
            "ConcurrencyError: nobody else wrote)",
            pytrace=False,
        )
    pytest.fail(
        f"the write succeeded although the backend refused {where}: the LedgerFaults hook "
        "(fail_ledger_entry) must make the backend fail when the store writes that entry",
        pytrace=False,
    )
