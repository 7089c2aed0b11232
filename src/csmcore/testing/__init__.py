"""Testing helpers for csmcore users and adapter authors (``pip install 'csmcore[testing]'``).

- :mod:`csmcore.testing.strategies`: Hypothesis strategies for every domain type.
- :mod:`csmcore.testing.storage_suite`: the storage conformance suite.
- :mod:`csmcore.testing.pytest_plugin`: fixtures (a fixed clock, a store) and ``--csmcore-store``.

Importing ``csmcore`` never imports this package; importing this package imports nothing heavy
either: each submodule imports Hypothesis or pytest only when it is itself imported.
"""

from __future__ import annotations

__all__ = ["_hypothesis_setup_hook"]


def _hypothesis_setup_hook() -> None:
    """Called by Hypothesis (entry-point group ``hypothesis``) once it is imported: registers
    csmcore's domain types for ``st.from_type``."""
    from csmcore.testing import strategies

    strategies.register_types()
