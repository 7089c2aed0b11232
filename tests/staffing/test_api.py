"""``from csmcore import staffing``: the public names, documented."""

from __future__ import annotations

import inspect

import csmcore
from csmcore import staffing


def test_staffing_is_exported_and_every_public_name_is_documented() -> None:
    assert "staffing" in csmcore.__all__
    assert csmcore.staffing is staffing
    for name in staffing.__all__:
        assert inspect.getdoc(getattr(staffing, name)), name
