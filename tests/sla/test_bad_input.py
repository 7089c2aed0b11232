"""Issue 11: SlaBook.evaluate refuses instants outside the supported range up front."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from csmcore.errors import ValidationError
from csmcore.sla import SlaMetric, SlaTarget
from tests.sla.support import H, at, book, new

BOOK = book(SlaTarget(metric=SlaMetric.NEXT_REPLY, within=2 * H))


@pytest.mark.parametrize(
    "when",
    [
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
        datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
        datetime.max.replace(tzinfo=timezone.utc),
    ],
)
def test_evaluate_out_of_range_is_refused(when: datetime) -> None:
    with pytest.raises(ValidationError, match=r"^at=.*supported range") as info:
        BOOK.evaluate(new(at(6, 9)), when)
    assert not isinstance(info.value, OverflowError)
