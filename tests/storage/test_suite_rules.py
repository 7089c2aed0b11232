"""The conformance suite's own rules for hooks and opt-outs (the suite, not an adapter).

A check that needs a hook runs with it, is skipped with the reason a store declares in
``opt_out``, and FAILS when the store does neither, saying what to provide or declare.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from csmcore.storage import Store, open_store
from csmcore.testing.storage_suite import (
    CAPABILITIES,
    BackendFaults,
    LedgerFaults,
    OldSchemas,
    PushdownProbe,
    SchemaAccess,
    StorageSuite,
)

HOOKS: dict[Any, tuple[str, list[str]]] = {
    SchemaAccess: (
        "schema",
        ["schema_version", "read_schema_version", "write_schema_version", "schema_layout"],
    ),
    OldSchemas: ("migrations", ["write_old_schema"]),
    BackendFaults: ("faults", ["unreachable_url", "break_backend"]),
    LedgerFaults: ("ledger faults", ["fail_ledger_entry", "heal_ledger"]),
    PushdownProbe: ("pushdown", ["pushes_down", "reads"]),
}
"""Each hook protocol: its opt-out key and the members it asks for."""


def _memory() -> Store:
    return open_store("memory://")


class _Bare(StorageSuite):  # not collected: its name does not start with "Test"
    pass


@pytest.mark.parametrize("protocol", list(HOOKS), ids=[p.__name__ for p in HOOKS])
def test_a_missing_hook_without_an_opt_out_fails_saying_what_to_do(protocol: Any) -> None:
    with pytest.raises(pytest.fail.Exception) as info:
        _Bare().hook(_memory, protocol)
    message = str(info.value)
    key, members = HOOKS[protocol]
    assert f"no {protocol.__name__} hook" in message
    assert f"opt_out = {{{key!r}:" in message
    assert [m for m in members if m not in message] == []


@pytest.mark.parametrize("protocol", list(HOOKS), ids=[p.__name__ for p in HOOKS])
def test_an_opt_out_skips_with_its_reason(protocol: Any) -> None:
    class OptedOut(_Bare):
        opt_out: ClassVar[Mapping[str, str]] = {HOOKS[protocol][0]: "a reason given here"}

    with pytest.raises(pytest.skip.Exception, match="a reason given here"):
        OptedOut().hook(_memory, protocol)


@pytest.mark.parametrize("protocol", list(HOOKS), ids=[p.__name__ for p in HOOKS])
def test_a_factory_with_the_hook_is_used(protocol: Any, sqlite_factory: Any) -> None:
    assert _Bare().hook(sqlite_factory, protocol) is sqlite_factory


@pytest.mark.parametrize(
    ("opt_out", "message"),
    [
        ({"fault": "no backend"}, r"\['fault'\], which name no capability"),
        ({"faults": "  "}, r"no reason for \['faults'\]"),
        ({"reopen": ""}, r"no reason for \['reopen'\]"),
    ],
)
def test_an_opt_out_with_an_unknown_key_or_no_reason_fails(
    opt_out: Mapping[str, str], message: str
) -> None:
    class Declared(_Bare):
        pass

    Declared.opt_out = opt_out
    with pytest.raises(pytest.fail.Exception, match=message):
        Declared().check_opt_out()
    with pytest.raises(pytest.fail.Exception, match=message):
        Declared().require("processes")


def test_every_capability_can_be_opted_out_of() -> None:
    class All(_Bare):
        opt_out: ClassVar[Mapping[str, str]] = {c: f"no {c}" for c in CAPABILITIES}

    All().check_opt_out()
    for capability in CAPABILITIES:
        with pytest.raises(pytest.skip.Exception, match=f"no {capability}"):
            All().require(capability)


def test_no_two_groups_define_a_check_of_the_same_name() -> None:
    """A store mixes the groups into one test class, where a check of one group would hide
    another group's check of the same name (pytest would run only one of them)."""
    from csmcore.testing.storage_suite import GROUPS

    defined: dict[str, set[str]] = {}
    for classes in GROUPS.values():
        for group in classes:
            for cls in group.__mro__:
                for name in vars(cls):
                    if name.startswith("test_"):
                        defined.setdefault(name, set()).add(cls.__qualname__)
    assert {n: c for n, c in defined.items() if len(c) > 1} == {}
