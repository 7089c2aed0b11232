"""Testing helpers for csmcore users and adapter authors (``pip install 'csmcore[testing]'``).

- :mod:`csmcore.testing.strategies`: Hypothesis strategies for every domain type.
- :mod:`csmcore.testing.storage_suite`: the storage conformance suite.
- :mod:`csmcore.testing.pytest_plugin`: fixtures (a fixed clock, a store) and ``--csmcore-store``.

Importing ``csmcore`` never imports this package; importing this package imports nothing heavy
either: each submodule imports Hypothesis or pytest only when it is itself imported.
"""

from __future__ import annotations

__all__ = ["_hypothesis_setup_hook"]


def _registered_types() -> tuple[type, ...]:
    """csmcore's domain types that :mod:`csmcore.testing.strategies` registers for
    ``st.from_type`` (enums need no registration: Hypothesis samples their members).

    Derived from the serialization registry: every csmcore type with a stable tag, every
    ticket event type declared now (csmcore's or not), and the bases ``TicketEventBase`` and
    ``Condition``. A class defined where nothing can import it (a doctest's) is left out.
    """
    import sys

    import csmcore  # registers every csmcore type
    from csmcore import conditions as cd
    from csmcore import tickets
    from csmcore.serialization import registered_types

    # event types as declared now: a class whose declaration was withdrawn (a test's, a
    # doctest's) may keep its tag in the serialization registry but has no strategy
    found: list[type] = [tickets.TicketEventBase, cd.Condition, *tickets.event_types()]
    for cls in registered_types().values():
        if issubclass(cls, tickets.TicketEventBase):
            continue
        if cls.__module__.partition(".")[0] == csmcore.__name__:
            module = sys.modules.get(cls.__module__)
            if getattr(module, cls.__name__, None) is cls:
                found.append(cls)
    return tuple(found)


def _hypothesis_setup_hook() -> None:
    """Called by Hypothesis (entry-point group ``hypothesis``) while it is being imported:
    registers csmcore's domain types for ``st.from_type``.

    Each registration defers to :mod:`csmcore.testing.strategies` until first use, because
    that module itself imports Hypothesis (and may be what triggered this hook).
    """
    import importlib

    from hypothesis import strategies as st

    def deferred(cls: type) -> st.SearchStrategy[object]:
        def build() -> st.SearchStrategy[object]:
            module = importlib.import_module("csmcore.testing.strategies")
            strategy: st.SearchStrategy[object] = module._strategy_for(cls)
            return strategy

        return st.deferred(build)

    for cls in _registered_types():
        st.register_type_strategy(cls, deferred(cls))
