"""open_store: URL schemes, the adapter registry, entry points and driver hints."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest

import csmcore.storage as storage
from csmcore.errors import StorageError, ValidationError
from csmcore.storage import available_schemes, open_store, register_adapter, unregister_adapter
from csmcore.storage.memory import MemoryStore
from csmcore.storage.protocols import Store
from csmcore.storage.sqlite import SqliteStore


def test_memory_url_opens_a_fresh_memory_store() -> None:
    first, second = open_store("memory://"), open_store("memory://")
    assert isinstance(first, MemoryStore)
    assert first is not second
    assert isinstance(first, Store)


def test_sqlite_urls_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_store("sqlite:///rel.db")
    absolute = open_store(f"sqlite:///{tmp_path}/abs.db?timeout=2")
    try:
        assert isinstance(relative, SqliteStore)
        assert isinstance(absolute, SqliteStore)
        assert relative.path == "rel.db"
        assert (tmp_path / "rel.db").exists()
        assert absolute.path == f"{tmp_path}/abs.db"
        assert absolute.url == f"sqlite:///{tmp_path}/abs.db"
    finally:
        relative.close()
        absolute.close()


def test_a_sqlite_file_in_a_missing_directory_names_the_directory(tmp_path: Path) -> None:
    # sqlite3 says only "unable to open database file"; a host pointing the store at
    # /var/lib/desk/desk.db before creating the directory could not tell why.
    missing = tmp_path / "no" / "such"
    with pytest.raises(StorageError) as info:
        open_store(f"sqlite:///{missing / 'desk.db'}")
    assert str(info.value) == (
        f"cannot open SQLite file {str(missing / 'desk.db')!r}: unable to open database file; "
        f"its directory {str(missing)!r} does not exist (the store creates the file, not its "
        "directory)"
    )
    assert not missing.exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mongodb://localhost/x", "unknown scheme 'mongodb'.*memory, postgres, postgresql, sqlite"),
        ("tickets.db", "not a store URL"),
        (42, "not a store URL"),
        ("sqlite:///", "not a SQLite URL"),
        ("sqlite:///x.db?journal=off", r"unknown parameters \['journal'\]"),
        ("sqlite:///x.db?timeout=soon", "timeout='soon' is not a number"),
    ],
)
def test_bad_urls_raise_validation_error_naming_them(
    url: Any, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # only the built-in schemes: a scheme another test or a docs example registered at run
    # time would be listed too
    monkeypatch.setattr(storage, "_registered", {})
    with pytest.raises(ValidationError, match=message):
        open_store(url)


def test_missing_postgres_driver_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes "import psycopg" fail
    monkeypatch.delitem(sys.modules, "csmcore.storage.postgres", raising=False)
    with pytest.raises(StorageError, match=r"pip install 'csmcore\[postgres\]'") as info:
        open_store("postgresql://nobody@127.0.0.1:1/none")
    assert isinstance(info.value.__cause__, ImportError)


def test_register_adapter_makes_a_scheme_openable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "_registered", {})
    opened: list[str] = []

    def opener(url: str) -> Store:
        opened.append(url)
        return MemoryStore()

    register_adapter("mine", opener)
    assert isinstance(open_store("mine://anything"), MemoryStore)
    assert opened == ["mine://anything"]
    assert "mine" in available_schemes()


@pytest.mark.parametrize(
    ("scheme", "opener", "message"),
    [
        ("sqlite", MemoryStore, "built in"),
        ("My", MemoryStore, "lower-case"),
        ("ok", "not callable", "not callable"),
    ],
)
def test_register_adapter_rejects_bad_input(scheme: str, opener: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        register_adapter(scheme, opener)


def test_unregister_adapter_undoes_a_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "_registered", {})

    def first(url: str) -> Store:
        return MemoryStore()

    def second(url: str) -> Store:
        return MemoryStore()

    register_adapter("mine", first)
    # replace one for a while, then put it back
    replaced = unregister_adapter("mine")
    register_adapter("mine", second)
    assert replaced is first
    assert unregister_adapter("mine") is second
    register_adapter("mine", replaced)
    assert storage._registered == {"mine": first}
    unregister_adapter("mine")
    assert "mine" not in available_schemes()
    with pytest.raises(ValidationError, match="unknown scheme 'mine'"):
        open_store("mine://x")


def test_an_entry_point_scheme_is_back_once_its_override_is_unregistered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(storage, "_registered", {})
    ep = EntryPoint(name="viaep", value="csmcore.storage:_open_memory", group="csmcore.storage")
    monkeypatch.setattr(storage, "entry_points", _fake_entry_points(ep))
    register_adapter("viaep", lambda url: open_store("sqlite:///:memory:"))
    assert isinstance(open_store("viaep://x"), SqliteStore)
    unregister_adapter("viaep")
    assert isinstance(open_store("viaep://x"), MemoryStore)
    with pytest.raises(ValidationError, match="entry-point group") as info:
        unregister_adapter("viaep")  # an entry point is not removed at run time
    assert "'viaep'" in str(info.value)


@pytest.mark.parametrize(
    ("scheme", "message"),
    [
        ("sqlite", "scheme='sqlite' is built in and cannot be unregistered"),
        ("postgres", "scheme='postgres' is built in"),
        ("nosuch", r"scheme='nosuch' is not registered at run time; registered: \['mine'\]"),
        (5, r"scheme=5 is not registered at run time; registered: \['mine'\]"),
        (None, "scheme=None is not registered"),
    ],
)
def test_unregister_adapter_refuses_what_it_cannot_remove(
    monkeypatch: pytest.MonkeyPatch, scheme: Any, message: str
) -> None:
    monkeypatch.setattr(storage, "_registered", {})
    register_adapter("mine", MemoryStore)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=message):
        unregister_adapter(scheme)
    assert list(storage._registered) == ["mine"]  # nothing removed


def _fake_entry_points(*eps: EntryPoint) -> Any:
    def entry_points(*, group: str) -> list[EntryPoint]:
        assert group == "csmcore.storage"
        return list(eps)

    return entry_points


def test_entry_point_adapters_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint(name="viaep", value="csmcore.storage:_open_memory", group="csmcore.storage")
    monkeypatch.setattr(storage, "entry_points", _fake_entry_points(ep))
    assert "viaep" in available_schemes()
    assert isinstance(open_store("viaep://x"), MemoryStore)


def test_entry_point_that_cannot_be_imported_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint(name="broken", value="no_such_module_csm:opener", group="g")
    monkeypatch.setattr(storage, "entry_points", _fake_entry_points(ep))
    with pytest.raises(StorageError, match=r"no_such_module_csm:opener.*cannot be imported"):
        open_store("broken://x")


def test_unreachable_postgres_raises_storage_error() -> None:
    pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    with pytest.raises(StorageError, match="PostgreSQL") as info:
        open_store("postgresql://postgres@127.0.0.1:1/test?pool_timeout=1&connect_timeout=1")
    assert info.value.__cause__ is not None


def test_import_csmcore_stays_light() -> None:
    import subprocess

    code = (
        "import sys, csmcore, csmcore.storage; "
        "s = csmcore.storage.open_store('memory://'); "
        "heavy = [m for m in ('hypothesis', 'pytest', 'psycopg', 'holidays') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("sqlite:///tick\x00ets.db", "path"),
        ("sqlite:///tick\ud800ets.db", "path"),
        ("sqlite:///t.db?timeout=\x001", "query"),
        ("postgresql://postgres@127.0.0.1:5432/te\x00st", "path"),
        ("postgresql://post\x00gres@127.0.0.1:5432/test", "host"),
        ("postgresql://postgres@127.0.0.1/test?sslmode=\udfff", "query"),
        ("memory://\x00", "user, password, host or port"),
    ],
)
def test_nul_or_lone_surrogate_in_a_url_is_refused(url: str, part: str, tmp_path: Path) -> None:
    # regression (issue 11): SQLite raised ValueError / UnicodeEncodeError, and PostgreSQL
    # connected to the database name cut at the NUL
    with pytest.raises(ValidationError, match=part) as info:
        open_store(url)
    assert repr(url) in str(info.value)
