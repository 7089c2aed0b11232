"""A command that only reads a store (``export``) refuses a SQLite file that does not exist
(a typo) instead of creating an empty store and exporting nothing with exit code 0; commands
that write a store still create it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from csmcore.cli import _app
from csmcore.storage import open_store


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
