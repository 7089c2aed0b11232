"""A command that only reads a store (``export``) refuses a SQLite file that does not exist
(a typo) instead of creating an empty store and exporting nothing with exit code 0; commands
that write a store still create it."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from csmcore.cli import _app
from csmcore.storage import open_store
from tests.old_stores import copy_of


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app.cli, list(args), prog_name="csmcore")
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    """Run in ``tmp_path``, so a relative SQLite path lands (or would land) there."""
    before = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


def _refused(url: str, written: str) -> str:
    code, out, err = run("export", "--store", url)
    assert code == _app.EXIT_BAD_INPUT, err
    assert out == ""
    assert written in err  # the path as the user wrote it
    assert "does not exist" in err
    assert "csmcore demo --path" in err  # how to make one
    assert "exported" not in err
    assert "internal error" not in err
    return err


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///typo.db",
        "sqlite:///typo.db?timeout=5",
        "sqlite:///typo.db?timeout=5&statement_timeout=10",
        "SQLite:///typo.db",
    ],
)
def test_export_refuses_a_relative_sqlite_path_that_does_not_exist(in_tmp: Path, url: str) -> None:
    err = _refused(url, "typo.db")
    assert str(in_tmp / "typo.db") in err  # and where it looked for it
    assert list(in_tmp.iterdir()) == []  # nothing created: no typo.db, -wal or -shm


def test_export_refuses_an_absolute_sqlite_path_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "typo.db"
    _refused(f"sqlite:///{path}", str(path))
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_an_empty_sqlite_path(in_tmp: Path) -> None:
    # sqlite:///?timeout=5 names no file (SQLite would open a temporary database).
    code, _, err = run("export", "--store", "sqlite:///?timeout=5")
    assert code == _app.EXIT_BAD_INPUT, err
    assert "sqlite:///?timeout=5" in err
    assert "exported" not in err
    assert list(in_tmp.iterdir()) == []


def test_export_to_a_file_also_refuses_and_writes_no_output(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    path = tmp_path / "typo.db"
    code, _, err = run("export", "--store", f"sqlite:///{path}", str(out))
    assert code == _app.EXIT_BAD_INPUT, err
    assert not path.exists()
    assert not out.exists()


def test_export_of_an_existing_store_still_works(in_tmp: Path) -> None:
    open_store("sqlite:///desk.db").close()
    for url in ("sqlite:///desk.db", f"sqlite:///{in_tmp / 'desk.db'}?timeout=5"):
        code, out, err = run("export", "--store", url)
        assert code == 0, err
        assert out == ""
        assert "exported 0 tickets" in err


def test_memory_urls_are_unchanged(in_tmp: Path) -> None:
    for url in ("memory://", "sqlite:///:memory:"):
        code, _, err = run("export", "--store", url)
        assert code == 0, err
        assert "exported 0 tickets" in err
    assert list(in_tmp.iterdir()) == []


def test_a_malformed_sqlite_url_is_bad_input_and_creates_nothing(in_tmp: Path) -> None:
    for url in ("sqlite:///typo.db?colour=blue", "sqlite://typo.db", "sqlite:///"):
        code, _, err = run("export", "--store", url)
        assert code == _app.EXIT_BAD_INPUT, err
        assert "exported" not in err
    open_store("sqlite:///desk.db").close()
    code, _, err = run("export", "--store", "sqlite:///desk.db?colour=blue")
    assert code == _app.EXIT_BAD_INPUT, err
    assert "unknown parameters" in err  # an existing file: the URL's own fault is named
    assert sorted(p.name for p in in_tmp.iterdir() if not p.name.startswith("desk.db")) == []


def test_report_store_still_creates_a_new_sqlite_store(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text("")
    path = tmp_path / "new.db"
    code, _, err = run(
        "report", str(data), "--format", "csmcore-jsonl", "--store", f"sqlite:///{path}", "-q"
    )
    assert code == 0, err
    assert path.exists()
    code, _, err = run("export", "--store", f"sqlite:///{path}")
    assert code == 0, err


def test_demo_still_creates_its_store(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    code, _, err = run("demo", "--weeks", "1", "--quiet", "--path", str(path))
    assert code == 0, err
    assert path.exists()


# --- an existing file that is not a csmcore store: refused, left byte-for-byte unchanged --------


def _fingerprint(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file of ``directory``: its content's hash and its mtime (ns)."""
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(directory.iterdir())
    }


def _refused_unchanged(directory: Path, path: Path, what: str) -> str:
    before = _fingerprint(directory)
    code, out, err = run("export", "--store", f"sqlite:///{path}")
    assert code == _app.EXIT_BAD_INPUT, err
    assert out == ""
    assert str(path) in err
    assert what in err
    assert "existing csmcore SQLite store" in err  # what is accepted
    assert "csmcore demo --path" in err  # and how to make one
    assert "exported" not in err
    assert "internal error" not in err
    assert _fingerprint(directory) == before  # the file as it was; no -wal, -shm or journal
    return err


def _other_app_db(path: Path, *, wal: bool) -> None:
    conn = sqlite3.connect(path)
    try:
        if wal:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE songs (title TEXT)")
        conn.execute("INSERT INTO songs VALUES ('x')")
        conn.commit()
    finally:
        conn.close()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_export_refuses_an_empty_file_and_leaves_it_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    _refused_unchanged(tmp_path, path, "no csmcore tables")
    assert path.read_bytes() == b""


def test_export_refuses_a_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("id,subject\n1,hello\n" * 100)
    _refused_unchanged(tmp_path, path, "not a SQLite database")


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-journal", "wal"])
def test_export_refuses_another_applications_sqlite_database(tmp_path: Path, wal: bool) -> None:
    path = tmp_path / "music.db"
    _other_app_db(path, wal=wal)
    _refused_unchanged(tmp_path, path, "no csmcore tables")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
    finally:
        conn.close()
    assert names == ["songs"]


def test_export_refuses_a_relative_path_to_a_foreign_file(in_tmp: Path) -> None:
    (in_tmp / "empty.db").write_bytes(b"")
    code, _, err = run("export", "--store", "sqlite:///empty.db?timeout=5")
    assert code == _app.EXIT_BAD_INPUT, err
    assert "'empty.db'" in err
    assert (in_tmp / "empty.db").read_bytes() == b""
    assert sorted(p.name for p in in_tmp.iterdir()) == ["empty.db"]


def test_export_of_a_closed_wal_store_creates_no_side_files_before_opening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the check itself reads a WAL store without creating -wal or -shm
    path = tmp_path / "desk.db"
    open_store(f"sqlite:///{path}").close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["desk.db"]
    before = _fingerprint(tmp_path)
    _app._existing_store(f"sqlite:///{path}", "export")
    assert _fingerprint(tmp_path) == before


def test_export_of_a_store_another_process_has_open_still_works(tmp_path: Path) -> None:
    # a store in use: its tables may be only in the -wal file so far
    path = tmp_path / "desk.db"
    writer = open_store(f"sqlite:///{path}")
    try:
        code, _, err = run("export", "--store", f"sqlite:///{path}")
        assert code == 0, err
        assert "exported 0 tickets" in err
    finally:
        writer.close()


@pytest.mark.parametrize(
    "name", ["release_0_1_0_dev0", "main_5187fc3", "main_b7cf9f5_ledger", "main_e31c18b_requesters"]
)
def test_export_of_an_older_release_store_still_works(tmp_path: Path, name: str) -> None:
    path = copy_of(name, tmp_path)
    code, _, err = run("export", "--store", f"sqlite:///{path}", str(tmp_path / "t.jsonl"))
    assert code == 0, err
    assert "exported" in err
    assert (tmp_path / "t.jsonl").exists()


def test_a_store_whose_path_has_uri_characters_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "a b#c%20d"
    folder.mkdir()
    path = folder / "desk.db"
    open_store(f"sqlite:///{path}").close()
    code, _, err = run("export", "--store", f"sqlite:///{path}")
    assert code == 0, err
    (folder / "other.db").write_bytes(b"")
    _refused_unchanged(folder, folder / "other.db", "no csmcore tables")
