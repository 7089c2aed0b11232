"""The shipped conformance suite's groups are mixed into one test class (``class
TestMyStore(StorageSuite, LedgerTests, FiringTests, OutboxTests)``), so two groups defining a
test of the same name would let one shadow the other: the shadowed check would silently never
run. This happened (FiringTests and OutboxTests both had ``test_bad_arguments_are_refused`` and
``test_satisfies_the_protocol``; TicketTests and VersionedTests both had
``test_bad_arguments_raise_validation_error``), so the names are checked here."""

from __future__ import annotations

import inspect

from csmcore.testing import storage_suite


def _groups() -> dict[str, type]:
    return {
        name: value
        for name in storage_suite.__all__
        if inspect.isclass(value := getattr(storage_suite, name))
        and (name.endswith("Tests") or name == "StorageSuite")
    }


def test_no_two_groups_define_a_test_of_the_same_name() -> None:
    owners: dict[str, set[str]] = {}
    for group in _groups().values():
        for cls in group.__mro__:
            for name in vars(cls):
                if name.startswith("test_"):
                    owners.setdefault(name, set()).add(cls.__qualname__)
    shared = {name: sorted(found) for name, found in owners.items() if len(found) > 1}
    assert shared == {}


def test_every_test_of_every_group_runs_in_a_class_mixing_them_all() -> None:
    groups = _groups()
    assert {"StorageSuite", "LedgerTests", "FiringTests", "OutboxTests"} <= set(groups)
    # as the docs mix them: the whole suite and every group it leaves out (optional roles)
    suite = storage_suite.StorageSuite
    extra = [g for n, g in sorted(groups.items()) if g is not suite and g not in suite.__mro__]
    bases = (suite, *extra)
    everything = type("Everything", bases, {})
    collected = {name for name in dir(everything) if name.startswith("test_")}
    for group in groups.values():
        for cls in group.__mro__:
            for name, value in vars(cls).items():
                if name.startswith("test_"):
                    assert getattr(everything, name) is value, f"{cls.__qualname__}.{name}"
    assert collected
