"""Survey scores: CSAT, NPS and CES, as functions over plain scores and as mergeable tallies.

Conventions and sources are listed in ``docs/kpi-reference.md``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from csmcore.errors import InvalidType, ValidationError

__all__ = ["ScoreTally", "ces", "check_score", "csat", "nps"]


def check_score(value: object, low: int, high: int, argument: str = "score") -> int:
    """``value`` if it is a whole number in ``low..high``; else ValidationError naming it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidType(
            f"{argument}={value!r} ({type(value).__name__}) is not a whole number; accepted: "
            f"an int in {low}..{high}",
            field=argument,
            value=value,
        )
    if not low <= value <= high:
        raise ValidationError(
            f"{argument}={value!r} is outside {low}..{high}", field=argument, value=value
        )
    return value


def _check_scale(scale: object, top: object) -> tuple[int, int]:
    s = check_score(scale, 2, 10, "scale")
    t = check_score(top, 1, s - 1, "top")
    return s, t


class ScoreTally:
    """Counts of each score 0..10 of one survey (a histogram): mergeable, constant memory.

    >>> t = ScoreTally()
    >>> for s in (5, 4, 2):
    ...     t.add(s)
    >>> t.count, t.top_box_share(5, 2), t.mean()
    (3, 0.6666666666666666, 3.6666666666666665)
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts = [0] * 11

    @property
    def count(self) -> int:
        """How many scores were counted."""
        return sum(self.counts)

    def add(self, score: int) -> None:
        """Count ``score`` (0..10; ValidationError else)."""
        self.counts[check_score(score, 0, 10)] += 1

    def merge(self, other: ScoreTally) -> None:
        """Add ``other``'s counts."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]

    def share_at_least(self, threshold: int) -> float | None:
        """Share of scores ``>= threshold`` (None without scores)."""
        n = self.count
        return sum(self.counts[threshold:]) / n if n else None

    def top_box_share(self, scale: int, top: int = 2) -> float | None:
        """Share of scores in the ``top`` highest boxes of ``1..scale`` (None without scores)."""
        return self.share_at_least(scale - top + 1)

    def mean(self) -> float | None:
        """Mean score (None without scores)."""
        n = self.count
        return sum(i * c for i, c in enumerate(self.counts)) / n if n else None

    def nps(self) -> float | None:
        """Net Promoter Score of the counted 0..10 scores (None without scores)."""
        n = self.count
        if not n:
            return None
        promoters = self.counts[9] + self.counts[10]
        detractors = sum(self.counts[:7])
        return 100.0 * (promoters - detractors) / n


def _tally(scores: Iterable[int], low: int, high: int, argument: str) -> ScoreTally:
    if isinstance(scores, str | bytes) or not isinstance(scores, Iterable):
        raise InvalidType(
            f"{argument}={scores!r} is not an iterable of scores", field=argument, value=scores
        )
    tally = ScoreTally()
    counts = tally.counts
    for score in scores:
        counts[check_score(score, low, high)] += 1
    if not tally.count:
        raise ValidationError(f"{argument} is empty; a score needs at least one answer")
    return tally


def nps(scores: Iterable[int]) -> float:
    """The Net Promoter Score of 0..10 answers: % promoters (9-10) minus % detractors (0-6),
    on -100..100 (Reichheld, "The One Number You Need to Grow", HBR 2003).

    Raises ValidationError for a score outside 0..10 (or not a whole number) and for an empty
    input.

    >>> nps([10, 9, 8, 7, 6, 0])
    0.0
    >>> nps([10, 10, 9, 3])
    50.0
    """
    tally = _tally(scores, 0, 10, "scores")
    result = tally.nps()
    assert result is not None
    return result


def csat(ratings: Iterable[int], scale: int = 5, *, top: int = 2) -> float:
    """The customer satisfaction score: the share (0..1) of ``ratings`` on ``1..scale`` in the
    ``top`` highest boxes (top two boxes by default: 4 and 5 on a 1-5 scale). For Zendesk's
    good/bad survey use ``scale=2, top=1``.

    Raises ValidationError for a rating outside ``1..scale``, a ``scale`` outside 2..10, a
    ``top`` outside ``1..scale - 1`` and an empty input.

    >>> csat([5, 4, 3, 2])
    0.5
    >>> csat([2, 2, 1], scale=2, top=1)
    0.6666666666666666
    """
    s, t = _check_scale(scale, top)
    share = _tally(ratings, 1, s, "ratings").top_box_share(s, t)
    assert share is not None
    return share


def _ces_agree_from(scale: int) -> int:
    """The lowest score that agrees on a CES scale of ``1..scale`` by default: the first above
    the scale's midpoint (5 on 1-7, the top three boxes of Gartner's CES 2.0; 4 on 1-5, so a
    neutral 3 does not agree; 2 on a yes/no 1-2 scale).

    >>> [_ces_agree_from(s) for s in (2, 3, 5, 7, 10)]
    [2, 3, 4, 5, 6]
    """
    return (scale + 1) // 2 + 1


def ces(
    scores: Iterable[int],
    scale: int = 7,
    *,
    method: Literal["mean", "agree"] = "mean",
    agree_at: int | None = None,
) -> float:
    """The customer effort score of answers on ``1..scale`` (7 = "the company made it easy",
    as in Gartner's CES 2.0): their mean (``method="mean"``), or the share (0..1) agreeing,
    scoring ``agree_at`` or more (default: the scores above the scale's midpoint, the top
    three boxes 5-7 on a 1-7 scale, 4-5 on a 1-5 scale; ``method="agree"``).

    Raises ValidationError for a score outside ``1..scale``, an unknown method, an
    ``agree_at`` outside ``1..scale`` and an empty input.

    >>> ces([7, 6, 5, 2])
    5.0
    >>> ces([7, 6, 5, 2], method="agree")
    0.75
    """
    s = check_score(scale, 2, 10, "scale")
    threshold = _ces_agree_from(s) if agree_at is None else check_score(agree_at, 1, s, "agree_at")
    if method not in ("mean", "agree"):
        raise ValidationError(
            f"method={method!r} is not a CES method; accepted: 'mean', 'agree'",
            field="method",
            value=method,
        )
    tally = _tally(scores, 1, s, "scores")
    result = tally.mean() if method == "mean" else tally.share_at_least(threshold)
    assert result is not None
    return result
