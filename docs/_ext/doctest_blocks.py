"""A griffe extension for the API reference: doctest examples in docstrings become code blocks.

csmcore's docstrings hold doctests (``>>>`` lines and their output) that pytest runs. Markdown
would render them as running text (and read ``[...]`` in an output as a link); this extension
fences each run of doctest lines as a ``pycon`` code block when mkdocstrings loads the package.
The docstrings in the source are not changed.
"""

from __future__ import annotations

from typing import Any

from griffe import Extension, Object


def fence_doctests(text: str) -> str:
    """``text`` with every doctest (from a ``>>>`` line to the next blank line) fenced."""
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        stripped = line.strip()
        if not inside and stripped.startswith(">>>"):
            out.append("```pycon")
            inside = True
        elif inside and not stripped:
            out.append("```")
            inside = False
        out.append(line.strip() if inside else line)
    if inside:
        out.append("```")
    return "\n".join(out)


class DoctestBlocks(Extension):
    """Fence the doctests of every docstring loaded."""

    def on_instance(self, *, obj: Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
