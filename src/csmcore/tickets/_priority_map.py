"""Custom priority names and the categories they map to (:class:`PriorityMap`)."""

from __future__ import annotations

from typing import Final

import attrs

from csmcore.errors import ErrorCode, ValidationError
from csmcore.serialization import serializable
from csmcore.tickets._enums import PRIORITY_BY_VALUE, Priority
from csmcore.tickets._values import FrozenMap, custom_names

__all__ = ["DEFAULT_PRIORITY_MAP", "PriorityMap"]


def _priority_names(value: object) -> FrozenMap[str, Priority]:
    return custom_names(value, Priority, PRIORITY_BY_VALUE)


@serializable("priority_map", aliases=("csmcore.tickets:PriorityMap",))
@attrs.frozen(kw_only=True)
class PriorityMap:
    """Custom priority names mapped to the :class:`Priority` categories SLA targets and
    conditions compare (ServiceNow's "1 - Critical" ... "5 - Planning", Jira's own names).

    The four category values (``"low"``, ``"normal"``, ``"high"``, ``"urgent"``) always map to
    themselves. A name ranks as its category (:meth:`rank`).

    >>> pm = PriorityMap(custom={"1 - Critical": Priority.URGENT, "5 - Planning": "low"})
    >>> pm.category("1 - Critical"), pm.rank("5 - Planning"), pm.category("high")
    (<Priority.URGENT: 'urgent'>, 0, <Priority.HIGH: 'high'>)
    """

    custom: FrozenMap[str, Priority] = attrs.field(factory=FrozenMap, converter=_priority_names)

    def category(self, name: str | Priority) -> Priority:
        """The category of ``name``; ValidationError (code ``unknown_name``) naming the known
        names."""
        if isinstance(name, Priority):
            return name
        if isinstance(name, str):
            found = self.custom.get(name) or PRIORITY_BY_VALUE.get(name)
            if found is not None:
                return found
        raise ValidationError(
            f"priority {name!r} is not known; accepted: {list(self.names)}",
            code=ErrorCode.UNKNOWN_NAME,
            field="priority",
            value=name,
        )

    def rank(self, name: str | Priority) -> int:
        """The rank of ``name``'s category (0 for low up to 3 for urgent)."""
        return self.category(name).rank

    def resolve(self, priority_or_name: str | Priority) -> tuple[Priority, str | None]:
        """``(category, custom name or None)`` for a Priority, a category value or a custom
        name."""
        category = self.category(priority_or_name)
        if isinstance(priority_or_name, Priority) or priority_or_name in PRIORITY_BY_VALUE:
            return category, None
        return category, priority_or_name

    @property
    def names(self) -> tuple[str, ...]:
        """Every accepted name: the four category values, then the custom names."""
        return (*PRIORITY_BY_VALUE, *(n for n in self.custom if n not in PRIORITY_BY_VALUE))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self.custom or name in PRIORITY_BY_VALUE)


DEFAULT_PRIORITY_MAP: Final = PriorityMap()
"""The priority map with no custom names."""
