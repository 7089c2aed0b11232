"""Shared builders for the program tests: a stand-in for ledger entries (the program reads
only kind, at, points, reason, spend and key) and instants."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import attrs

UTC = timezone.utc


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@attrs.frozen(kw_only=True)
class Entry:
    """What the program reads of a ledger entry."""

    kind: str
    at: datetime
    points: int
    reason: str | None = None
    spend: Decimal | None = None
    key: str = ""


def earn(at: datetime, points: int, reason: str = "purchase", spend: str | None = None) -> Entry:
    return Entry(
        kind="earn",
        at=at,
        points=points,
        reason=reason,
        spend=None if spend is None else Decimal(spend),
    )
