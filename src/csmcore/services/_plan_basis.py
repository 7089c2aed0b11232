"""The plan basis of the escalation engine: what its plans were made from, kept in the store.

The ``rules`` role keeps a :class:`~csmcore.storage.PlanBasis` under a reserved key: the
SHA-256 of the book, the rules and the loyalty program the plans were made from. An engine
whose own basis differs marks its basis incomplete, plans every open ticket and marks it
complete, so a change of rules, book or program (stored by another process, or given in code
by a new release) reaches the plans with no call from the host, and an engine that dies while
planning leaves an incomplete basis that the next one plans from again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from csmcore.errors import ConcurrencyError, CsmError, NotFound, ValidationError
from csmcore.escalation import EscalationRule
from csmcore.loyalty import Program
from csmcore.serialization import to_document
from csmcore.sla import SlaBook
from csmcore.storage import PLAN_BASIS_KEY, PlanBasis, Versioned

Rules = tuple[EscalationRule, ...]

PLANNER_FORMAT = 1
"""The version of what a plan means (how the planner walks a ticket), part of every
:class:`~csmcore.storage.PlanBasis`: bumped by a release whose planner plans differently from
the same rules, so that its engines plan every open ticket again on their first call."""


class Unread:
    """The stored plan basis was not read (see ``EscalationEngine._load``)."""


UNREAD = Unread()


def checked_basis(stored: Versioned[Any]) -> Versioned[Any]:
    """``stored`` (the value of the reserved key), else ValidationError naming what is there."""
    if not isinstance(stored.value, PlanBasis):
        raise ValidationError(
            f"the key {PLAN_BASIS_KEY!r} of the store's rules role is reserved for the "
            f"escalation engine's plan basis, but version {stored.version} holds a "
            f"{type(stored.value).__name__}; store that value under another key, then "
            f"store.rules.put({PLAN_BASIS_KEY!r}, PlanBasis(digest='0' * 64, complete=False), "
            f"expected_version={stored.version}) (the engine then plans every open ticket)"
        )
    return stored


def digest_of(
    book: SlaBook, rules: Sequence[EscalationRule], loyalty: Program | None
) -> str | None:
    """The SHA-256 (hex) of what plans are made from: the canonical serialized form
    (:func:`~csmcore.serialization.to_document`, JSON with sorted keys) of ``book``, ``rules``
    in order and ``loyalty`` (or None), and :data:`PLANNER_FORMAT`. None when one of them
    cannot be serialized (a calendar's holidays of a custom type, an action type without a
    tag): the engine then keeps no basis."""
    try:
        data = {
            "planner": PLANNER_FORMAT,
            "book": to_document(book),
            "rules": [to_document(rule) for rule in rules],
            "loyalty": None if loyalty is None else to_document(loyalty),
        }
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (CsmError, TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode("ascii")).hexdigest()


class BasisKeeper:
    """Keeps an engine's plans those of its basis, through the store's ``rules`` role
    ``bases``: ``digest(rules)`` is the engine's basis for ``rules`` (None: it keeps none),
    ``load()`` reads the rules and the stored basis (or :data:`UNREAD`), ``plan_all(rules,
    batch_size)`` plans every open ticket and returns how many; a conflict is tried again up
    to ``max_retries`` times."""

    def __init__(
        self,
        bases: Any,
        max_retries: int,
        digest: Callable[[Rules], str | None],
        load: Callable[[], tuple[Rules, Versioned[Any] | Unread | None]],
        plan_all: Callable[[Rules, int], int],
    ) -> None:
        self._bases = bases
        self._max_retries = max_retries
        self._digest = digest
        self._load = load
        self._plan_all = plan_all

    def stored(self) -> Versioned[Any] | None:
        """The stored plan basis (None: none stored yet), one read by key."""
        try:
            stored: Versioned[Any] = self._bases.get(PLAN_BASIS_KEY)
        except NotFound:
            return None
        return checked_basis(stored)

    def begin(self) -> tuple[Rules, int | None]:
        """The rules a call runs with, and the version of the stored basis it starts from
        (None: the engine keeps no basis). When the stored basis is not the engine's, every
        open ticket is planned first (:meth:`settle`)."""
        rules, stored = self._load()
        rules, version, _ = self.settle(rules, stored, forced=False)
        return rules, version

    def finish(self, version: int | None) -> bool:
        """After a call that wrote plans, starting from ``version`` of the stored basis: when
        another engine stored a basis meanwhile, it may have planned a ticket before this call
        wrote its plan from the rules it read first; plan every open ticket again (with the
        rules as they are now). Whether it did."""
        if version is None:
            return False
        stored = self.stored()
        if (0 if stored is None else stored.version) == version:
            return False
        rules, again = self._load()
        self.settle(rules, stored if again is UNREAD else again, forced=True)
        return True

    @contextmanager
    def writing(self, version: int | None) -> Iterator[None]:
        """Around a call's writes of plans, starting from ``version`` of the stored basis: when
        they raise partway, the plans written before may be from rules another engine replaced
        meanwhile, so the basis is read again (:meth:`finish`) before the error goes on. When
        that check fails too, a note on the error says so and what to do (no later call would
        find those plans: the stored basis is complete)."""
        try:
            yield
        except Exception as err:
            try:
                self.finish(version)
            except Exception as check:  # the first error goes on, with a note
                err.add_note(
                    "the escalation engine could not check its plan basis after this error "
                    f"({type(check).__name__}: {check}); plans written before it may be from "
                    "rules another engine replaced meanwhile: call plan_all() once the store "
                    "answers again"
                )
            raise

    def settle(
        self,
        rules: tuple[EscalationRule, ...],
        stored: Versioned[Any] | Unread | None,
        *,
        forced: bool,
        batch_size: int = 500,
    ) -> tuple[tuple[EscalationRule, ...], int | None, int | None]:
        """Make the plans those of ``rules``: unless ``forced``, nothing when the stored basis
        (``stored``, or read now when ``UNREAD``) is the engine's, complete. Else: store the
        engine's basis as incomplete (with the version read: a conflict reads again), plan
        every open ticket, store it as complete. Returns the rules (read again after a
        conflict, when they come from the store), the version of the complete basis (None:
        the engine keeps none) and how many tickets it planned (None: none)."""
        planned: int | None = None
        for _ in range(self._max_retries):
            digest = self._digest(rules)
            if digest is None:
                return rules, None, planned
            if stored is UNREAD:
                stored = self.stored()
            assert not isinstance(stored, Unread)  # for mypy
            found = None if stored is None else stored.value
            version = 0 if stored is None else stored.version
            if not forced and found == PlanBasis(digest=digest, complete=True):
                return rules, version, planned
            if forced or found is None or found.digest != digest:
                try:
                    mark = self._bases.put(
                        PLAN_BASIS_KEY,
                        PlanBasis(digest=digest, complete=False),
                        expected_version=version,
                    ).version
                except ConcurrencyError:  # another engine stored one meanwhile
                    rules, stored = self._load()
                    continue
            else:  # another engine began to plan from this basis (and may have died): plan too
                mark = version
            planned = self._plan_all(rules, batch_size)
            done = self._complete(digest, mark)
            if done is not None:
                return rules, done, planned
            forced = False  # another basis was stored meanwhile: its engine plans after it
            rules, stored = self._load()
        raise ConcurrencyError(
            f"the plan basis (the key {PLAN_BASIS_KEY!r} of the rules role) kept changing "
            f"under the escalation engine: {self._max_retries} attempts conflicted; engines "
            "with other rules, book or program share the store"
        )

    def _complete(self, digest: str, mark: int) -> int | None:
        """Store the basis ``digest`` as complete, after planning every open ticket from it
        since version ``mark``; None when another basis was stored since (plan again)."""
        expected = mark
        for _ in range(self._max_retries):
            try:
                done: int = self._bases.put(
                    PLAN_BASIS_KEY,
                    PlanBasis(digest=digest, complete=True),
                    expected_version=expected,
                ).version
            except ConcurrencyError:
                pass
            else:
                return done
            later = [v for v in self._bases.history(PLAN_BASIS_KEY) if v.version > mark]
            if not later or any(
                not isinstance(v.value, PlanBasis) or v.value.digest != digest for v in later
            ):
                return None
            # Engines of the same basis only: the plans made since ``mark`` are all its own.
            if later[-1].value.complete:
                return int(later[-1].version)
            expected = later[-1].version
        return None
