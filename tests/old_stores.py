"""Copies of the stores that earlier commits and releases wrote (``tests/fixtures/<name>``),
for the tests that read old data with the current code."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from csmcore.storage import Store, open_store

FIXTURES = Path(__file__).parent / "fixtures"


def copy_of(name: str, directory: Path) -> Path:
    """A copy of ``tests/fixtures/<name>/store.db`` in ``directory`` (opening a store migrates
    it forward: the fixture itself must stay as that release wrote it)."""
    path = directory / "store.db"
    shutil.copyfile(FIXTURES / name / "store.db", path)
    return path


@contextmanager
def opened_copy(name: str, directory: Path) -> Iterator[Store]:
    """:func:`copy_of`, opened as a SQLite store and closed afterwards."""
    store = open_store(f"sqlite:///{copy_of(name, directory)}")
    try:
        yield store
    finally:
        store.close()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ledger_inserts(documents: Mapping[str, Sequence[dict[str, object]]]) -> list[str]:
    """SQL statements writing stored ledger entry documents (member -> its documents, in
    order, as an earlier release stored them) into ``csm_ledger`` as they are, seq from 1."""
    return [
        "INSERT INTO csm_ledger (member_id, seq, key, data) VALUES ("
        f"{_literal(member)}, {seq}, {_literal(str(doc['data']['key']))}, "  # type: ignore[index]
        f"{_literal(json.dumps(doc))})"
        for member, docs in documents.items()
        for seq, doc in enumerate(docs, 1)
    ]
