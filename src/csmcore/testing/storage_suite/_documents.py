"""The document roles ``calendars``, ``policies`` and ``rules``: :class:`VersionedTests` and
:class:`DocumentRoleTests`."""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore.calendars import BusinessCalendar
from csmcore.clock import FixedClock
from csmcore.errors import (
    ConcurrencyError,
    NotFound,
    ValidationError,
)
from csmcore.storage import open_store
from csmcore.storage.protocols import LatestVersions, Store, VersionedRepository
from csmcore.testing import strategies as cs
from csmcore.testing.builders import T0, make_policy
from csmcore.testing.storage_suite._base import (
    StoreFixtures,
    property_settings,
)

DOCUMENT_TEXTS = (
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\udc00\ud800",  # low then high: not a pair
    "\ud83d\x00\ude00",
    "\x00\U0001f600\ud83d",
    "\u2028\u2029\x7f\ufeff",
    'quote " backslash \\ slash / controls \x01\x1f',
)
"""Text a document keeps exactly although no ticket may hold it: JSON escapes NUL and lone
surrogates."""

JOINED_SURROGATES = ("\ud83d\ude00", "a\udbff\udfffb", "\ud800\udc00\ud800")
"""A high surrogate directly followed by a low one: JSON reads the pair back as the one character
it stands for, so every store refuses it in a document."""


def _survives_json(text: str) -> bool:
    decoded: object = json.loads(json.dumps(text))
    return decoded == text


def _document_text() -> st.SearchStrategy[str]:
    """Any text, surrogates and NUL included (``st.text()`` never draws surrogates)."""
    odd = st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\u00e9", "\U0001f600"])
    return (
        st.lists(odd | st.characters(), min_size=1, max_size=12)
        .map("".join)
        .filter(lambda text: bool(text.strip()))
    )


class VersionedTests(StoreFixtures):
    """Versioned documents: calendars, policies, rules."""

    def test_nul_and_lone_surrogates_inside_a_document_round_trip(self, store: Store) -> None:
        policies = {
            f"p{n}": make_policy(text, target=f"<{text}>") for n, text in enumerate(DOCUMENT_TEXTS)
        }
        plain = make_policy("plain")
        for key, policy in policies.items():
            store.policies.put(key, policy, expected_version=0)
            store.policies.put(key, plain, expected_version=1)
        handles = [store] if "reopen" in self.opt_out else [store, open_store(store.url)]
        try:
            for handle in handles:
                for key, policy in policies.items():
                    got = handle.policies.get(key, version=1).value
                    assert got == policy
                    assert (got.name, got.targets[0].name) == (policy.name, f"<{policy.name}>")
                    assert [v.value for v in handle.policies.history(key)] == [policy, plain]
        finally:
            for handle in handles[1:]:
                handle.close()

    def test_surrogates_side_by_side_in_a_document_are_refused(self, store: Store) -> None:
        for joined in JOINED_SURROGATES:
            for policy in (make_policy(joined), make_policy("ok", target=joined)):
                with pytest.raises(ValidationError):
                    store.policies.put("p", policy, expected_version=0)
                with store.unit_of_work() as uow, pytest.raises(ValidationError):
                    uow.policies.put("p", policy, expected_version=0)
        assert store.policies.keys() == []

    def test_any_text_in_a_document_round_trips_or_is_refused(self, store: Store) -> None:
        counter = itertools.count()

        @property_settings
        @given(text=_document_text())
        def check(text: str) -> None:
            key = f"d{next(counter)}"
            policy = make_policy(text)
            if _survives_json(text):
                store.policies.put(key, policy, expected_version=0)
                assert store.policies.get(key).value.name == text
            else:
                with pytest.raises(ValidationError):
                    store.policies.put(key, policy, expected_version=0)
                assert store.policies.history(key) == []

        check()

    def test_every_version_stays_readable(self, store: Store) -> None:
        v1 = BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin")
        v2 = BusinessCalendar.weekly("08:00", "16:00", timezone="Europe/Berlin")
        first = store.calendars.put("support", v1, expected_version=0)
        second = store.calendars.put("support", v2, expected_version=1)
        assert (first.version, second.version) == (1, 2)
        assert store.calendars.get("support").value == v2
        assert store.calendars.get("support").version == 2
        assert store.calendars.get("support", version=1).value == v1
        assert [v.value for v in store.calendars.history("support")] == [v1, v2]
        assert store.calendars.keys() == ["support"]

    def test_round_trips_any_calendar(self, store: Store) -> None:
        counter = itertools.count()

        @property_settings
        @given(calendar=cs.calendars())
        def check(calendar: BusinessCalendar) -> None:
            key = f"cal-{next(counter)}"
            store.calendars.put(key, calendar, expected_version=0)
            assert store.calendars.get(key).value == calendar

        check()

    def test_stale_version_raises_and_writes_nothing(self, store: Store) -> None:
        cal = BusinessCalendar.always()
        store.calendars.put("k", cal, expected_version=0)
        for stale in (0, 2):
            with pytest.raises(ConcurrencyError, match="version 1"):
                store.calendars.put("k", cal, expected_version=stale)
        assert len(store.calendars.history("k")) == 1

    def test_missing_keys_and_versions_raise_not_found(self, store: Store) -> None:
        with pytest.raises(NotFound, match="'nope'"):
            store.calendars.get("nope")
        store.calendars.put("k", BusinessCalendar.always(), expected_version=0)
        with pytest.raises(NotFound, match="no version 5"):
            store.calendars.get("k", version=5)
        assert store.calendars.history("nope") == []

    def test_roles_are_separate(self, store: Store) -> None:
        store.calendars.put("same", BusinessCalendar.always(), expected_version=0)
        assert store.policies.keys() == []
        assert store.rules.keys() == []
        with pytest.raises(NotFound):
            store.policies.get("same")

    def test_latest_versions_lists_what_get_gives(self, store: Store) -> None:
        """The optional :class:`~csmcore.storage.LatestVersions`: after any puts, in and out
        of units of work (committed or rolled back), every key of ``keys`` with the version
        ``get`` gives, sorted, in and out of a unit of work (which sees its own puts)."""
        for role in ("calendars", "policies", "rules"):
            _latest(getattr(store, role))  # skips, saying so, where a role does not offer it
        values = _right_values()
        counter = itertools.count()

        @property_settings
        @given(
            steps=st.lists(
                st.tuples(
                    st.sampled_from(sorted(values)),
                    st.sampled_from(["a", "b", "B", "é", "a b", "a/1"]),
                    st.sampled_from(["store", "commit", "rollback"]),
                ),
                max_size=8,
            )
        )
        def check(steps: list[tuple[str, str, str]]) -> None:
            prefix = f"k{next(counter)}-"
            for role, key, where in steps:
                if where == "store":
                    repo = getattr(store, role)
                    latest = repo.latest_versions().get(prefix + key, 0)
                    repo.put(prefix + key, values[role], expected_version=latest)
                    continue
                with contextlib.suppress(_RolledBack), store.unit_of_work() as uow:
                    repo = getattr(uow, role)
                    latest = repo.latest_versions().get(prefix + key, 0)
                    repo.put(prefix + key, values[role], expected_version=latest)
                    _assert_lists_latest(repo, f"in a unit of work, after a put of {role} {key!r}")
                    if where == "rollback":
                        raise _RolledBack
            for role in values:
                _assert_lists_latest(getattr(store, role), f"on the store, after {steps}")

        check()

    def test_document_bad_arguments_raise_validation_error(self, store: Store) -> None:
        with pytest.raises(ValidationError, match="key"):
            store.calendars.put("", BusinessCalendar.always(), expected_version=0)
        with pytest.raises(ValidationError, match="expected_version"):
            store.calendars.put("k", BusinessCalendar.always(), expected_version=-1)
        with pytest.raises(ValidationError, match="csmcore"):
            store.calendars.put("k", {"not": "a domain object"}, expected_version=0)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="version"):
            store.calendars.get("k", version=0)
        assert store.calendars.keys() == []


class _RolledBack(Exception):
    """Leaves a unit of work so that it writes nothing."""


def _latest(repository: object) -> LatestVersions:
    """``repository`` when it offers the optional :class:`~csmcore.storage.LatestVersions`;
    skips the running test otherwise (the escalation engine then reads every key)."""
    if not isinstance(repository, LatestVersions):
        pytest.skip(
            f"the document role ({type(repository).__name__}) does not offer the optional "
            "LatestVersions (latest_versions): the escalation engine reads every key instead"
        )
    return repository


def _assert_lists_latest(repository: VersionedRepository[Any], where: str) -> None:
    listed = _latest(repository).latest_versions()
    expected = {key: repository.get(key).version for key in repository.keys()}  # noqa: SIM118
    assert listed == expected, (
        f"{where}: latest_versions() must give every key of keys() with the version get(key) "
        "gives (a unit of work's own puts included, a rolled-back one's left out); "
        f"got {listed}, expected {expected}"
    )
    assert list(listed) == sorted(listed), (
        f"{where}: latest_versions() must list its keys sorted by code point, as keys() "
        f"does; got {list(listed)}"
    )


def _wrong_values() -> dict[str, list[object]]:
    """For each document role, values of types it does not hold."""
    clock = FixedClock(T0)
    calendar = BusinessCalendar.always()
    policy = make_policy("wrong role")
    return {
        "calendars": [policy, clock, {"not": "a calendar"}],
        "policies": [calendar, clock, "a policy's name"],
        "rules": [clock, object(), ["not", "a", "rule"]],
    }


def _right_values() -> dict[str, object]:
    """For each document role, a value it holds."""
    return {
        "calendars": BusinessCalendar.weekly("09:00", "17:00", timezone="Europe/Berlin"),
        "policies": make_policy("gold"),
        "rules": make_policy("a tagged csmcore value"),  # until rules get their own type
    }


class DocumentRoleTests(StoreFixtures):
    """Typed document roles: each role holds its own type and refuses others, before writing.

    ``document_roles`` names the roles to check (all three by default); an adapter that offers
    only some of them lists those.
    """

    document_roles: ClassVar[tuple[str, ...]] = ("calendars", "policies", "rules")
    """The document roles this store offers and the suite checks."""

    def test_a_value_of_another_type_is_refused_and_nothing_is_written(self, store: Store) -> None:
        wrong = _wrong_values()
        for role in self.document_roles:
            for value in wrong[role]:
                type_name = type(value).__qualname__
                with pytest.raises(ValidationError) as info:
                    getattr(store, role).put("k", value, expected_version=0)
                with store.unit_of_work() as uow, pytest.raises(ValidationError) as in_uow:
                    getattr(uow, role).put("k", value, expected_version=0)
                for writer, error in (("store", info.value), ("unit of work", in_uow.value)):
                    message = str(error)
                    assert f"the {role} role holds" in message, (
                        f"{writer}: name the role: {message}"
                    )
                    assert type_name in message, f"{writer}, name the type: {message}"
            assert getattr(store, role).keys() == []
            assert getattr(store, role).history("k") == []

    def test_the_message_says_what_the_role_accepts(self, store: Store) -> None:
        accepted = {"calendars": "BusinessCalendar", "policies": "SlaPolicy", "rules": "tag"}
        for role in self.document_roles:
            with pytest.raises(ValidationError, match=accepted[role]):
                getattr(store, role).put("k", FixedClock(T0), expected_version=0)

    def test_a_bad_key_is_reported_before_the_type(self, store: Store) -> None:
        for role in self.document_roles:
            with pytest.raises(ValidationError, match="key="):
                getattr(store, role).put("", FixedClock(T0), expected_version=0)

    def test_each_role_keeps_its_own_type(self, store: Store) -> None:
        right = _right_values()
        for role in self.document_roles:
            documents = getattr(store, role)
            assert documents.put("k", right[role], expected_version=0).version == 1
            assert documents.get("k").value == right[role]
        with store.unit_of_work() as uow:
            for role in self.document_roles:
                getattr(uow, role).put("k", right[role], expected_version=1)
        for role in self.document_roles:
            assert [v.value for v in getattr(store, role).history("k")] == [right[role]] * 2
