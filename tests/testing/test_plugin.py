"""The pytest plugin: fixtures and the --csmcore-store option, exercised in a separate pytest
run so that the plugin is loaded through its pytest11 entry point, as for any user."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

USER_TESTS = """
from datetime import datetime, timedelta, timezone

from csmcore.conditions import Always
from csmcore.testing.builders import make_ticket


def test_clock_is_fixed_and_movable(csm_clock):
    assert csm_clock.now() == datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)
    assert csm_clock.now() == csm_clock.now()
    assert csm_clock.advance(timedelta(hours=1)).now().hour == 10


def test_store_first(csm_store, csm_store_url):
    print("KIND", type(csm_store).__name__, csm_store_url)
    csm_store.tickets.add(make_ticket("T-1"))
    assert csm_store.tickets.count(Always()) == 1


def test_store_second_is_fresh(csm_store):
    assert csm_store.tickets.count(Always()) == 0
    csm_store.tickets.add(make_ticket("T-1"))


def test_factory_builds_separate_stores(csm_store_factory):
    one, two = csm_store_factory(), csm_store_factory()
    one.tickets.add(make_ticket("T-1"))
    assert two.tickets.count(Always()) == 0
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "CSMCORE_STORE"}
    # The child runs in tmp_path: a relative PYTHONPATH (PYTHONPATH=src) would stop naming this
    # checkout there, and the child would test whatever csmcore is installed instead.
    paths = env.get("PYTHONPATH", "").split(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in paths if p)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_fixtures_default_to_a_memory_store(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    assert "KIND MemoryStore memory" in result.stdout


def test_option_selects_sqlite(tmp_path: Path) -> None:
    result = _run(tmp_path, "--csmcore-store=sqlite")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KIND SqliteStore sqlite" in result.stdout


def test_option_selects_postgres_with_a_schema_per_store(tmp_path: Path) -> None:
    dsn = os.environ.get("CSMCORE_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip("CSMCORE_TEST_POSTGRES_DSN is not set (CI sets it); PostgreSQL tests skipped")
    result = _run(tmp_path, f"--csmcore-store={dsn}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KIND PostgresStore" in result.stdout


def test_option_is_documented_in_help(tmp_path: Path) -> None:
    result = _run(tmp_path, "--help")
    assert "--csmcore-store=KIND" in result.stdout


THIRD_PARTY_CONFTEST = """
from csmcore.storage import register_adapter
from csmcore.testing.example_adapter import open_jsonfile

register_adapter("jsonfile", open_jsonfile)
"""


def test_a_third_party_url_with_unique_gives_a_fresh_store_each_time(tmp_path: Path) -> None:
    """A third-party adapter's URL holding ``{unique}`` gets a new name there for each store,
    so ``csm_store`` is fresh and empty in every test, as the fixture promises."""
    (tmp_path / "conftest.py").write_text(THIRD_PARTY_CONFTEST)
    url = f"jsonfile:///{tmp_path / 'csm-{unique}.json'}"
    result = _run(tmp_path, f"--csmcore-store={url}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout
    assert "KIND JsonFileStore" in result.stdout
    assert len(list(tmp_path.glob("csm-*.json"))) == 4  # one file per store built


def test_a_third_party_url_without_unique_is_shared_and_the_help_says_so(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(THIRD_PARTY_CONFTEST)
    url = f"jsonfile:///{tmp_path / 'shared.json'}"
    result = _run(tmp_path, f"--csmcore-store={url}")
    assert "FAILED test_user.py::test_store_second_is_fresh" in result.stdout  # data is shared
    assert "{unique}" in _run(tmp_path, "--help").stdout
