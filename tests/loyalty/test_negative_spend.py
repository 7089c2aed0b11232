"""An earn's ``spend`` is the money behind it: a negative amount is refused (it would lower
a member's spend towards a tier), naming it; a return is written with ``reverse``."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from csmcore.errors import ValidationError
from csmcore.services import Ledger
from csmcore.storage import open_store

T0 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)


@pytest.mark.parametrize("spend", [Decimal("-1"), Decimal("-0.01")])
def test_a_negative_spend_is_refused_and_nothing_written(spend: Decimal) -> None:
    store = open_store("memory://")
    ledger = Ledger(store)
    with pytest.raises(ValidationError, match=r"spend=Decimal\('-") as raised:
        ledger.earn("ann", 10, at=T0, key="a", spend=spend)
    assert raised.value.field == "spend"
    assert raised.value.value == spend
    assert ledger.entries("ann") == []
    # zero is a purchase of nothing: accepted
    assert ledger.earn("ann", 10, at=T0, key="a", spend=Decimal("0.00")).spend == Decimal("0.00")
