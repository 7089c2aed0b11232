"""Every example written in a docstring of ``src/csmcore`` runs as a test.

pytest collects docstring examples with the standard library's doctest finder
(``--doctest-modules``), which skips an object it does not consider part of the module it
examines: a method of a class whose ``__module__`` was set to the package that presents it
(``csmcore.services.Dispatcher``), for instance, is found in neither module, and its example
would silently never run. This test lists the docstrings holding ``>>>`` (read from the
source) and checks that the finder finds each of them in some module of csmcore."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
from pathlib import Path

import csmcore

SRC = Path(csmcore.__file__).parent


def _written() -> set[str]:
    """Qualified names (``Class.method``) of the docstrings in the source that hold ``>>>``."""
    found: set[str] = set()

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + child.name
                doc = ast.get_docstring(child)
                if doc and ">>>" in doc:
                    found.add(name)
                walk(child, name + ".")

    for path in SRC.rglob("*.py"):
        walk(ast.parse(path.read_text("utf-8")), "")
    return found


def _collected() -> set[str]:
    """The names of the doctests the finder finds in every module of csmcore."""
    finder = doctest.DocTestFinder()
    names: set[str] = set()
    for info in pkgutil.walk_packages(csmcore.__path__, "csmcore."):
        module = importlib.import_module(info.name)
        names.update(test.name for test in finder.find(module) if test.examples)
    return names


def test_every_docstring_example_is_collected() -> None:
    collected = _collected()
    missing = sorted(
        name
        for name in _written()
        if not any(c == name or c.endswith("." + name) for c in collected)
    )
    assert missing == [], (
        "docstring examples the doctest finder never finds (they would never run); move "
        f"them to the class docstring or to docs/: {missing}"
    )
