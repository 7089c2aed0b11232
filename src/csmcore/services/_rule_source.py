"""Where an escalation engine's rules come from: the rules given in code, checked against the
book once, or the latest version of each rule in the store's ``rules`` role, read at each call
(one list of versions and only the documents that changed, where the role offers
:class:`~csmcore.storage.LatestVersions`) and checked against the book once per new set of
stored versions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from csmcore._values import check_iterable
from csmcore.errors import ValidationError
from csmcore.escalation import EscalationRule
from csmcore.services._book_check import check_against_book
from csmcore.services._plan_basis import UNREAD, Unread, checked_basis
from csmcore.sla import SlaBook
from csmcore.storage import PLAN_BASIS_KEY, LatestVersions, Store, Versioned

__all__ = ["RuleSource"]

Rules = tuple[EscalationRule, ...]


class RuleSource:
    """The rules of an engine on ``store`` with ``book``: ``given`` (checked now, ValidationError
    naming the index or the rule), or (None) the store's, by key, read by :meth:`load`."""

    def __init__(self, store: Store, book: SlaBook, given: Iterable[EscalationRule] | None):
        self._store = store
        self._book = book
        self._given: Rules | None = None
        self._documents: dict[str, Versioned[Any]] = {}
        """The documents of the ``rules`` role last read, by key (see _stored_documents)."""
        # the stored versions last read, and their rules or why the book refuses them
        self._read: tuple[list[tuple[str, int]], Rules | ValidationError] | None = None
        if given is None:
            return
        self._given = tuple(check_iterable(given, "rules", "an iterable of EscalationRule"))
        for index, rule in enumerate(self._given):
            if not isinstance(rule, EscalationRule):
                raise ValidationError(
                    f"rules[{index}]={rule!r} is a {type(rule).__name__}; expected an "
                    "EscalationRule"
                )
        check_against_book(
            ((f"rules[{i}] ({rule.name!r})", rule, "") for i, rule in enumerate(self._given)),
            book,
        )

    def load(self) -> tuple[Rules, Versioned[Any] | Unread | None]:
        """The rules, and the stored :class:`~csmcore.storage.PlanBasis` when reading the rules
        from the store read it too (else ``UNREAD``; None when none is stored). ValidationError
        for a stored rule the book refuses, or a basis key holding something else."""
        if self._given is not None:
            return self._given, UNREAD
        found = []
        versions = []
        basis: Versioned[Any] | None = None
        for key, stored in self._stored_documents():
            if key == PLAN_BASIS_KEY:
                basis = checked_basis(stored)
            elif isinstance(stored.value, EscalationRule):
                found.append(stored.value)
                versions.append((key, stored.version))
        # The same stored versions give the same rule objects as last time, so what the
        # engine remembers of each ticket's walk (kept per rule set) still applies; and the
        # same verdict of the check against the book.
        last = self._read
        if last is None or last[0] != versions:
            rules = tuple(found)
            try:
                check_against_book(
                    (
                        (
                            f"stored rule {key!r} (version {version}, named {rule.name!r})",
                            rule,
                            f"; store a corrected version: store.rules.put({key!r}, <the rule "
                            f"corrected>, expected_version={version})",
                        )
                        for (key, version), rule in zip(versions, rules, strict=True)
                    ),
                    self._book,
                )
            except ValidationError as err:
                last = self._read = (versions, err)
            else:
                last = self._read = (versions, rules)
        checked = last[1]
        if isinstance(checked, ValidationError):  # a new error each time: no traceback grows
            raise ValidationError(*checked.args, field=checked.field, value=checked.value)
        return checked, basis

    def _stored_documents(self) -> list[tuple[str, Versioned[Any]]]:
        """The latest version of every key of the ``rules`` role, by key. When the role offers
        :class:`~csmcore.storage.LatestVersions`, one list of versions and a read of each
        document whose version is not the one last read; else ``keys`` and a read of each."""
        repository = self._store.rules
        if not isinstance(repository, LatestVersions):
            return [(key, repository.get(key)) for key in repository.keys()]  # noqa: SIM118
        known = self._documents  # replaced, never changed: calls in other threads may read it
        fresh: dict[str, Versioned[Any]] = {}
        for key, version in repository.latest_versions().items():
            seen = known.get(key)
            # a later version than listed (stored meanwhile) is kept as read
            fresh[key] = (
                seen if seen is not None and seen.version == version else repository.get(key)
            )
        self._documents = fresh
        return list(fresh.items())
