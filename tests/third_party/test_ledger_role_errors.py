"""A third-party ``ledger`` role has no base class, so no error translation of its own unless
its author writes one: a driver error it lets through reaches :class:`csmcore.services.Ledger`,
which reports it as :class:`~csmcore.errors.StorageError` naming the role (a backend failure),
never as the raw driver error, a ``ValidationError`` (a driver's ``ValueError`` is no verdict
on the caller's input) or an ``InternalError`` asking for a bug report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from csmcore.errors import InternalError, StorageError
from csmcore.loyalty import LedgerState
from csmcore.services import Ledger
from csmcore.storage import Store

from . import dictstore as ds
from . import test_dictstore as proved

_register_scheme = proved._register_scheme  # the autouse fixture registering dictstore://
AT = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)


class DriverDataError(ValueError):
    """A driver's error that is a ValueError (as psycopg's DataError is not, but many are)."""


class DriverGone(OSError):
    pass


class DriverLookup(KeyError):
    pass


CALLS: dict[str, Callable[[Ledger], Any]] = {
    "earn": lambda ledger: ledger.earn("ann", 5, at=AT, key="e2"),
    "redeem": lambda ledger: ledger.redeem("ann", 1, at=AT, key="r1"),
    "refund": lambda ledger: ledger.refund("ann#1", at=AT, key="f1"),
    "expire": lambda ledger: ledger.expire("ann", at=AT + timedelta(days=400)),
    "adjust": lambda ledger: ledger.adjust("ann", 2, at=AT, key="a1", reason="goodwill"),
    "transfer": lambda ledger: ledger.transfer("ann", "bob", 1, at=AT, key="t1"),
    "balance": lambda ledger: ledger.balance("ann", AT),
    "entries": lambda ledger: ledger.entries("ann"),
    "entry": lambda ledger: ledger.entry("ann#1"),
    "lots": lambda ledger: ledger.lots("ann", AT),
    "members": lambda ledger: ledger.members(),
}


@pytest.fixture
def store() -> Iterator[Store]:
    opened = proved.DictStores()()
    Ledger(opened).earn("ann", 10, at=AT, key="e1", expires_at=AT + timedelta(days=90))
    yield opened
    opened.close()


@pytest.mark.parametrize("error", [DriverGone("gone"), DriverDataError("bad"), DriverLookup("k")])
@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_driver_error_the_role_lets_through_is_a_storage_error(
    store: Store, monkeypatch: pytest.MonkeyPatch, call: str, error: Exception
) -> None:
    def broken(self: ds.DictStore, unit: Any) -> Any:
        raise error

    monkeypatch.setattr(ds.DictStore, "transaction", broken)
    with pytest.raises(StorageError, match=r"ledger role _Ledger\.\w+ raised Driver") as info:
        CALLS[call](Ledger(store))
    assert info.value.__cause__ is error


def test_a_failure_of_the_plan_itself_is_still_an_internal_error(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What csmcore's own plan raises (a bug) is not blamed on the role."""

    def plan_earn(self: LedgerState, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the plan")

    monkeypatch.setattr(LedgerState, "plan_earn", plan_earn)
    with pytest.raises(InternalError, match="a bug in the plan"):
        Ledger(store).earn("ann", 5, at=AT, key="e2")
