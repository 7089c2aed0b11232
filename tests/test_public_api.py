"""The public API: what ``import csmcore`` gives, and what it must not drag in."""

from __future__ import annotations

import inspect
import subprocess
import sys

import csmcore


def test_import_csmcore_imports_no_optional_or_test_dependency() -> None:
    code = (
        "import sys, csmcore\n"
        "heavy = ('hypothesis', 'pytest', 'psycopg', 'psycopg_pool', 'holidays', 'pandas')\n"
        "print(','.join(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_every_exported_name_exists_and_public_callables_are_documented() -> None:
    assert len(set(csmcore.__all__)) == len(csmcore.__all__)
    missing = [name for name in csmcore.__all__ if not hasattr(csmcore, name)]
    assert missing == []
    undocumented = [
        name
        for name in csmcore.__all__
        if (inspect.isclass(getattr(csmcore, name)) or inspect.isfunction(getattr(csmcore, name)))
        and not inspect.getdoc(getattr(csmcore, name))
    ]
    assert undocumented == []
