"""Copies of the stores that earlier commits and releases wrote (``tests/fixtures/<name>``),
for the tests that read old data with the current code."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
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
