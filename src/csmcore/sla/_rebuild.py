"""Re-judging tickets under another book: :func:`rebuild` and :func:`backtest`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import attrs

from csmcore._boundary import guarded
from csmcore._time import require_aware
from csmcore._values import check_iterable
from csmcore.errors import invalid_type
from csmcore.serialization import serializable
from csmcore.sla._book import SlaBook
from csmcore.sla._enums import SlaState
from csmcore.sla._status import SlaChange, SlaStatus
from csmcore.tickets import Ticket

__all__ = ["Backtest", "BacktestRow", "backtest", "rebuild"]


def _index(statuses: Iterable[SlaStatus]) -> dict[tuple[str, int], SlaStatus]:
    return {(s.target, s.cycle): s for s in statuses}


def _same_judgement(a: SlaStatus, b: SlaStatus) -> bool:
    return attrs.evolve(a, at=b.at) == b


def _check_book(book: object, argument: str) -> None:
    if not isinstance(book, SlaBook):
        raise invalid_type(argument, book, "an SlaBook")


@guarded
def rebuild(
    tickets: Iterable[Ticket],
    *,
    old: SlaBook | Mapping[str, Sequence[SlaStatus]],
    new: SlaBook,
    at: datetime,
) -> tuple[SlaChange, ...]:
    """Re-judge ``tickets`` at ``at`` under the ``new`` book and return every cycle whose
    judgement changed.

    ``old`` is either the stored judgements (ticket id to the statuses stored for it) or the
    book they were made with. Nothing is written anywhere: the caller stores the new
    judgements if it accepts the changes. To re-judge history under a new policy version from
    the start, pass a ``new`` book in which that version has ``effective_from=None``. A cycle
    present in only one of the two judgements has None on the other side (``before`` for
    ``old``, ``after`` for ``new``). Raises NaiveDatetimeError for a naive ``at``.
    """
    require_aware(at, "at")
    check_iterable(tickets, "tickets", "an iterable of Ticket")
    if not isinstance(old, SlaBook | Mapping):
        raise invalid_type("old", old, "an SlaBook or a mapping of ticket id to SlaStatus values")
    _check_book(new, "new")
    changes: list[SlaChange] = []
    for ticket in tickets:
        after = _index(new.evaluate(ticket, at))
        if isinstance(old, SlaBook):
            before = _index(old.evaluate(ticket, at))
        else:
            before = _index(old.get(ticket.id, ()))
        for key in sorted(before.keys() | after.keys()):
            was, now = before.get(key), after.get(key)
            if was is not None and now is not None and _same_judgement(was, now):
                continue
            changes.append(
                SlaChange(ticket_id=ticket.id, target=key[0], cycle=key[1], before=was, after=now)
            )
    return tuple(changes)


@serializable("sla_backtest_row", aliases=("csmcore.sla:BacktestRow",))
@attrs.frozen(kw_only=True)
class BacktestRow:
    """Outcomes of one target key under one book: cycles achieved, breached and still open."""

    target: str
    achieved: int
    breached: int
    open: int

    @property
    def judged(self) -> int:
        """Cycles with a final outcome (achieved or breached)."""
        return self.achieved + self.breached

    @property
    def achievement_rate(self) -> float | None:
        """``achieved / judged`` in 0..1, or None when no cycle has a final outcome.

        A cycle breached but still open counts as breached: a breach is final.
        """
        return None if self.judged == 0 else self.achieved / self.judged


@serializable("sla_backtest", aliases=("csmcore.sla:Backtest",))
@attrs.frozen(kw_only=True)
class Backtest:
    """A candidate book against the book in force, per target key, over the same tickets."""

    at: datetime
    tickets: int
    baseline: tuple[BacktestRow, ...]
    candidate: tuple[BacktestRow, ...]

    def row(self, target: str, *, candidate: bool = True) -> BacktestRow:
        """The row of ``target`` (candidate side by default); NotFound if the book has none."""
        for row in self.candidate if candidate else self.baseline:
            if row.target == target:
                return row
        from csmcore.errors import NotFound

        raise NotFound(f"no backtest row for target {target!r}")


def _tally(statuses: Iterable[SlaStatus], order: list[str]) -> tuple[BacktestRow, ...]:
    counts: dict[str, list[int]] = {key: [0, 0, 0] for key in order}
    for status in statuses:
        row = counts.setdefault(status.target, [0, 0, 0])
        if status.state is SlaState.ACHIEVED:
            row[0] += 1
        elif status.state is SlaState.BREACHED:
            row[1] += 1
        else:
            row[2] += 1
    return tuple(
        BacktestRow(target=key, achieved=a, breached=b, open=o) for key, (a, b, o) in counts.items()
    )


@guarded
def backtest(
    tickets: Iterable[Ticket], *, baseline: SlaBook, candidate: SlaBook, at: datetime
) -> Backtest:
    """Judge every ticket at ``at`` under ``baseline`` (the book in force) and under
    ``candidate`` and count achieved, breached and open cycles per target key.

    Raises NaiveDatetimeError for a naive ``at``.
    """
    require_aware(at, "at")
    check_iterable(tickets, "tickets", "an iterable of Ticket")
    _check_book(baseline, "baseline")
    _check_book(candidate, "candidate")
    base: list[SlaStatus] = []
    cand: list[SlaStatus] = []
    count = 0
    for ticket in tickets:
        count += 1
        base.extend(baseline.evaluate(ticket, at))
        cand.extend(candidate.evaluate(ticket, at))
    return Backtest(
        at=at,
        tickets=count,
        baseline=_tally(base, [plan.key for plan in baseline._plans]),
        candidate=_tally(cand, [plan.key for plan in candidate._plans]),
    )


# Resolved here, where the names exist: the package presents these classes as csmcore.sla's.
attrs.resolve_types(BacktestRow)
attrs.resolve_types(Backtest)
