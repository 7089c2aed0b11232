"""The enumerations of a ticket (status category, priority, channel, role) and their coercion."""

from __future__ import annotations

import enum
from typing import Final, TypeVar

from csmcore._values import coerce_enum

__all__ = [
    "PRIORITY_BY_VALUE",
    "PRIORITY_RANK",
    "PRIORITY_VALUES",
    "STATUS_BY_VALUE",
    "STATUS_VALUES",
    "Channel",
    "Priority",
    "Role",
    "Status",
    "coerce",
    "to_author_role",
    "to_channel",
    "to_created_by",
    "to_priority",
    "to_status",
]


class Status(enum.StrEnum):
    """The status *category* of a ticket (custom status names map onto these; see StatusMap)."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on-hold"
    SOLVED = "solved"
    CLOSED = "closed"


class Priority(enum.StrEnum):
    """Ticket priority, ordered ``LOW < NORMAL < HIGH < URGENT``.

    Comparisons use :attr:`rank`, never the alphabetical order of the values; a plain string is
    compared as the priority it names (``Priority.HIGH > "low"``).
    """

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        """0 for LOW up to 3 for URGENT."""
        return PRIORITY_RANK[self]

    def _other_rank(self, other: object) -> int | None:
        if isinstance(other, Priority):
            return PRIORITY_RANK[other]
        if isinstance(other, str):
            return PRIORITY_RANK[coerce(Priority, other, "priority")]
        return None

    def __lt__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return PRIORITY_RANK[self] < rank

    def __le__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return PRIORITY_RANK[self] <= rank

    def __gt__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return PRIORITY_RANK[self] > rank

    def __ge__(self, other: object) -> bool:
        rank = self._other_rank(other)
        if rank is None:
            return NotImplemented
        return PRIORITY_RANK[self] >= rank


PRIORITY_RANK: Final[dict[Priority, int]] = {p: i for i, p in enumerate(Priority)}
"""The rank of each priority, 0 for LOW up to 3 for URGENT."""


class Channel(enum.StrEnum):
    """Where a ticket came in."""

    EMAIL = "email"
    WEB = "web"
    PHONE = "phone"
    CHAT = "chat"
    API = "api"
    SOCIAL = "social"
    OTHER = "other"


class Role(enum.StrEnum):
    """Who did something: the requester, an agent, a bot, or the system itself."""

    REQUESTER = "requester"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


STATUS_VALUES: Final = frozenset(s.value for s in Status)
"""The six category values (``"new"``, ``"open"``, ...)."""

STATUS_BY_VALUE: Final[dict[str, Status]] = {s.value: s for s in Status}
"""Each category by its value."""

PRIORITY_VALUES: Final = frozenset(p.value for p in Priority)
"""The four priority category values (``"low"``, ``"normal"``, ``"high"``, ``"urgent"``)."""

PRIORITY_BY_VALUE: Final[dict[str, Priority]] = {p.value: p for p in Priority}
"""Each priority category by its value."""

_E = TypeVar("_E", bound=enum.Enum)


def coerce(cls: type[_E], value: object, argument: str) -> _E:
    """``value`` as a member of ``cls`` (a member or its value); ValidationError naming
    ``argument`` and the accepted values otherwise."""
    return coerce_enum(cls, value, argument)


def to_created_by(value: object) -> Role:
    """Converter of ``created_by``."""
    return value if type(value) is Role else coerce(Role, value, "created_by")


def to_author_role(value: object) -> Role:
    """Converter of ``author_role``."""
    return value if type(value) is Role else coerce(Role, value, "author_role")


def to_channel(value: object) -> Channel:
    """Converter of ``channel``."""
    return value if type(value) is Channel else coerce(Channel, value, "channel")


def to_priority(value: object) -> Priority:
    """Converter of ``priority``."""
    return value if type(value) is Priority else coerce(Priority, value, "priority")


def to_status(value: object) -> Status:
    """Converter of ``status``."""
    return value if type(value) is Status else coerce(Status, value, "status")
