"""Escalation rules written by commit 0c2ce82 (the first that stored them) still read.

``tests/fixtures/main_0c2ce82_rules`` was written by that commit (see ``make_fixture.py``
there): a SQLite store holding rules in its ``rules`` role, the ``to_data`` and
``to_document`` of those rules (durations as float or int seconds), and each level's trigger
as that commit read it back. That commit asked the offsets of one target to increase whatever
clock each counted in; a level is now refused only where it can never fire after one listed
before it (see ``EscalationRule``), which that order implies, so every rule it accepted must
still build, with every level read exactly as it read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from csmcore.escalation import ConditionHeld, DueOffset, EscalationRule, PercentUsed
from csmcore.serialization import from_data, from_document, to_data
from csmcore.storage import Store
from tests.old_stores import opened_copy

FIXTURE = Path(__file__).parent.parent / "fixtures" / "main_0c2ce82_rules"
DOCUMENTS: dict[str, Any] = json.loads((FIXTURE / "documents.json").read_text("utf-8"))
READ_BACK: dict[str, Any] = json.loads((FIXTURE / "read_back.json").read_text("utf-8"))
US = timedelta(microseconds=1)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A copy of that commit's store (opening it migrates it forward)."""
    with opened_copy(FIXTURE.name, tmp_path) as opened:
        yield opened


def triggers(rule: EscalationRule) -> list[list[Any]]:
    """Each level's trigger as ``make_fixture.py`` records it."""
    out: list[list[Any]] = []
    for level in rule.levels:
        t = level.trigger
        if isinstance(t, PercentUsed):
            out.append(["percent", t.target, str(t.percent), None, None])
        elif isinstance(t, DueOffset):
            out.append(["due", t.target, t.offset // US, t.business_hours, t.calendar])
        else:
            assert isinstance(t, ConditionHeld)
            out.append(["held", None, t.duration // US, t.business_hours, t.calendar])
    return out


def test_the_fixture_holds_seconds_as_numbers_and_offsets_across_clocks() -> None:
    offsets = [
        level["trigger"]
        for level in DOCUMENTS["data"][0]["levels"]
        if level["trigger"]["kind"] == "due"
    ]
    assert all(isinstance(t["offset"], int | float) for t in offsets)
    assert {(t["business_hours"], t["calendar"]) for t in offsets} == {
        (True, None),
        (False, None),
        (True, "office"),
    }
    precise = DOCUMENTS["data"][2]["levels"]
    assert isinstance(precise[0]["trigger"]["offset"], float)


def test_the_documents_read_as_that_commit_read_them() -> None:
    rules = [from_data(data, EscalationRule) for data in DOCUMENTS["data"]]
    assert [triggers(r) for r in rules] == READ_BACK["triggers"]
    assert [len(r.levels) for r in rules] == READ_BACK["levels"]
    documents = [from_document(doc, EscalationRule) for doc in DOCUMENTS["documents"]]
    assert documents == rules
    # written again by this release, they read back equal
    assert [from_data(json.loads(json.dumps(to_data(r))), EscalationRule) for r in rules] == rules


def test_the_store_reads_every_version_as_that_commit_read_it(store: Store) -> None:
    history = [v.value for v in store.rules.history("clocks")]
    assert [v.version for v in store.rules.history("clocks")] == [1, 2]
    latest = store.rules.get("precise").value
    assert [triggers(r) for r in [*history, latest]] == READ_BACK["triggers"]
    assert all(isinstance(r, EscalationRule) for r in [*history, latest])
