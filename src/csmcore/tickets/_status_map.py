"""Custom status names and the categories they map to (:class:`StatusMap`)."""

from __future__ import annotations

from typing import Final

import attrs

from csmcore.errors import ErrorCode, ValidationError
from csmcore.serialization import serializable
from csmcore.tickets._enums import STATUS_BY_VALUE, Status
from csmcore.tickets._values import FrozenMap, custom_names

__all__ = ["DEFAULT_STATUS_MAP", "StatusMap"]


def _status_names(value: object) -> FrozenMap[str, Status]:
    return custom_names(value, Status, STATUS_BY_VALUE)


@serializable("status_map", aliases=("csmcore.tickets:StatusMap",))
@attrs.frozen(kw_only=True)
class StatusMap:
    """Custom status names mapped to their :class:`Status` categories.

    The six category values (``"new"``, ``"open"``, ...) always map to themselves.

    >>> sm = StatusMap(custom={"Awaiting Vendor": Status.ON_HOLD})
    >>> sm.category("Awaiting Vendor"), sm.category("open")
    (<Status.ON_HOLD: 'on-hold'>, <Status.OPEN: 'open'>)
    """

    custom: FrozenMap[str, Status] = attrs.field(factory=FrozenMap, converter=_status_names)

    def category(self, name: str | Status) -> Status:
        """The category of ``name``; raises ValidationError naming the known names."""
        if isinstance(name, Status):
            return name
        if isinstance(name, str):
            found = self.custom.get(name) or STATUS_BY_VALUE.get(name)
            if found is not None:
                return found
        raise ValidationError(
            f"status {name!r} is not known; accepted: {list(self.names)}",
            code=ErrorCode.UNKNOWN_NAME,
            field="status",
            value=name,
        )

    def resolve(self, status_or_name: str | Status) -> tuple[Status, str | None]:
        """``(category, custom name or None)`` for a Status, a category value or a custom name."""
        category = self.category(status_or_name)
        if isinstance(status_or_name, Status) or status_or_name in STATUS_BY_VALUE:
            return category, None
        return category, status_or_name

    @property
    def names(self) -> tuple[str, ...]:
        """Every accepted name: the six category values, then the custom names."""
        return (*STATUS_BY_VALUE, *(n for n in self.custom if n not in STATUS_BY_VALUE))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self.custom or name in STATUS_BY_VALUE)


DEFAULT_STATUS_MAP: Final = StatusMap()
"""The status map with no custom names."""
