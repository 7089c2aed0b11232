"""The memory store's due indexes: sorted ``(instant in UTC, key)`` items of the committed
outbox messages that may be due and of the plans with a next firing, so that a page or the
earliest item costs about its size instead of a scan of every row."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator
from datetime import datetime

Due = tuple[datetime, str]
"""A due-index item: a PENDING message's ``(next_attempt_at in UTC, key)``, or a plan's
``(next_due in UTC, ticket_id)``."""


class DueIndex:
    """Sorted ``(instant, key)`` items: the committed PENDING messages of the outbox by
    ``(next_attempt_at, key)``, so that a page of ``due`` / ``due_after`` reads about its own
    size instead of scanning every message, and the committed plans with a ``next_due`` by
    ``(next_due, ticket_id)``, for ``firings.due`` / ``next_due``. The items live in sorted
    blocks of at most ``2 * _LOAD``, each block's last item in ``_maxes``: adding or removing
    one costs a bisection and a shift inside one block. Changed only under the store's lock,
    by a commit."""

    __slots__ = ("_blocks", "_maxes")

    _LOAD = 256

    def __init__(self) -> None:
        self._blocks: list[list[Due]] = []
        self._maxes: list[Due] = []

    def __len__(self) -> int:
        return sum(map(len, self._blocks))

    def add(self, item: Due) -> None:
        blocks, maxes = self._blocks, self._maxes
        if not blocks:
            blocks.append([item])
            maxes.append(item)
            return
        b = bisect.bisect_left(maxes, item)
        if b == len(blocks):
            b -= 1
            blocks[b].append(item)
            maxes[b] = item
        else:
            bisect.insort(blocks[b], item)
        block = blocks[b]
        if len(block) > 2 * self._LOAD:
            half = len(block) // 2
            blocks.insert(b + 1, block[half:])
            del block[half:]
            maxes.insert(b, block[-1])

    def discard(self, item: Due) -> None:
        maxes = self._maxes
        b = bisect.bisect_left(maxes, item)
        if b == len(maxes):
            return
        block = self._blocks[b]
        i = bisect.bisect_left(block, item)
        if i == len(block) or block[i] != item:
            return
        del block[i]
        if not block:
            del self._blocks[b]
            del maxes[b]
        elif i == len(block):
            maxes[b] = block[-1]

    def __iter__(self) -> Iterator[Due]:
        """Every item, in order."""
        return itertools.chain.from_iterable(self._blocks)

    def after(self, start: Due | None, at: datetime) -> Iterator[Due]:
        """The items after ``start`` (all when None) whose instant is at most ``at``, in
        order, read lazily (the caller stops when its page is full)."""
        blocks, maxes = self._blocks, self._maxes
        if start is None:
            b, i = 0, 0
        else:
            b = bisect.bisect_right(maxes, start)
            i = bisect.bisect_right(blocks[b], start) if b < len(blocks) else 0
        while b < len(blocks):
            block = blocks[b]
            for item in block[i:] if i else block:
                if item[0] > at:
                    return
                yield item
            b, i = b + 1, 0
