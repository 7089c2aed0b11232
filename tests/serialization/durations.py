"""Old-release data in the form this release writes it: durations as exact decimal text.

Releases up to 0.1 wrote a duration as a number of seconds (``"within": 3600``); this one writes
the exact text ``"3600"`` and reads both. The tests that compare ``to_data`` of old data with the
data the old release wrote compare it with :func:`as_written_now` of that data.
"""

from __future__ import annotations

from typing import Any

DURATION_KEYS = frozenset({"within", "elapsed", "paused"})
"""The keys under which the SLA types keep a ``timedelta`` (SlaTarget, SlaStatus)."""


def duration_text(seconds: int | float) -> str:
    """The text this release writes for a duration an old release wrote as ``seconds``."""
    if isinstance(seconds, int) or seconds.is_integer():
        return str(int(seconds))
    whole, micro = divmod(round(seconds * 1_000_000), 1_000_000)
    return f"{whole}.{micro:06d}".rstrip("0")


def as_written_now(data: Any) -> Any:
    """``data`` with every number under a duration key turned into its exact text form."""
    if isinstance(data, dict):
        return {
            key: duration_text(value) if _is_old_duration(key, value) else as_written_now(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [as_written_now(item) for item in data]
    return data


def _is_old_duration(key: str, value: Any) -> bool:
    return key in DURATION_KEYS and isinstance(value, int | float) and not isinstance(value, bool)
