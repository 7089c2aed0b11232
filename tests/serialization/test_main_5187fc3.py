"""Data written by main at commit 5187fc3 (durations as float seconds) reads as it read then.

``tests/fixtures/main_5187fc3`` was written by that commit (see ``make_fixture.py`` there): a
SQLite store with two versions of a policy whose targets have fractional and very long
durations, the ``to_data`` of those policies and targets, and the microseconds of every
duration as that commit read them back. This release writes durations as exact text and must
read the old numbers exactly as that commit did, including the one it changed (100,000 days
and 1 microsecond, stored as a float, read back with 2 microseconds).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from csmcore.serialization import from_data
from csmcore.sla import SlaPolicy, SlaTarget
from csmcore.storage import Store, open_store
from tests.old_stores import copy_of

FIXTURE = Path(__file__).parent.parent / "fixtures" / "main_5187fc3"
DOCUMENTS: dict[str, Any] = json.loads((FIXTURE / "documents.json").read_text("utf-8"))
READ_BACK: dict[str, Any] = json.loads((FIXTURE / "read_back.json").read_text("utf-8"))
US = timedelta(microseconds=1)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return copy_of(FIXTURE.name, tmp_path)


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{db}")
    try:
        yield opened
    finally:
        opened.close()


def _stored_targets(db: Path) -> list[Any]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT data FROM csm_documents ORDER BY version").fetchall()
    finally:
        conn.close()
    return [t["within"] for (d,) in rows for t in json.loads(d)["data"]["targets"]]


def _micros(policy: SlaPolicy) -> list[int]:
    return [t.within // US for t in policy.targets]


def test_the_fixture_holds_float_seconds(db: Path) -> None:
    stored = _stored_targets(db)
    assert any(isinstance(w, float) for w in stored)
    assert all(isinstance(w, int | float) for w in stored)
    assert 8640000000.000002 in stored  # 100,000 days + 1 µs, already changed by the float


def test_the_store_reads_every_duration_as_that_commit_read_it(store: Store) -> None:
    history = [v.value for v in store.policies.history("exact")]
    assert [_micros(p) for p in history] == READ_BACK["store"]


def test_the_documents_read_as_that_commit_read_them() -> None:
    policies = [from_data(p, SlaPolicy) for p in DOCUMENTS["policies"]]
    assert [_micros(p) for p in policies] == READ_BACK["documents"]
    targets = [from_data(t, SlaTarget).within // US for t in DOCUMENTS["targets"]]
    assert targets == READ_BACK["targets"]


def test_rewriting_an_old_policy_stores_it_exactly(db: Path, store: Store) -> None:
    """What that commit wrote and read back changed, this release stores as written."""
    latest = store.policies.get("exact")
    exact = attrs.evolve(
        latest.value,
        version=latest.version + 1,
        targets=[
            attrs.evolve(latest.value.targets[0], within=timedelta(microseconds=us))
            for us in READ_BACK["written"]
        ],
    )
    assert READ_BACK["written"] != READ_BACK["store"][0]  # the float changed one of them
    store.policies.put("exact", exact, expected_version=latest.version)
    assert _micros(store.policies.get("exact").value) == READ_BACK["written"]
    rewritten = _stored_targets(db)[-len(READ_BACK["written"]) :]
    assert all(isinstance(w, str) for w in rewritten)
    assert store.policies.get("exact").value == exact
