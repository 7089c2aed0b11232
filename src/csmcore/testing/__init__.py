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
    """Called by Hypothesis (entry-point group ``hypothesis``) while it is being imported:
    registers csmcore's domain types for ``st.from_type``.

    Each registration defers to :mod:`csmcore.testing.strategies` until first use, because
    that module itself imports Hypothesis (and may be what triggered this hook).
    """
    import importlib

    from hypothesis import strategies as st

    from csmcore.calendars import BusinessCalendar
    from csmcore.conditions import Condition
    from csmcore.sla import SlaPolicy, SlaTarget
    from csmcore.tickets import StatusMap, Ticket, TicketCreated

    factories: dict[type, str] = {
        Ticket: "tickets",
        TicketCreated: "ticket_created",
        BusinessCalendar: "calendars",
        StatusMap: "status_maps",
        Condition: "conditions",
        SlaTarget: "sla_targets",
        SlaPolicy: "sla_policies",
    }

    def deferred(name: str) -> st.SearchStrategy[object]:
        def build() -> st.SearchStrategy[object]:
            module = importlib.import_module("csmcore.testing.strategies")
            strategy: st.SearchStrategy[object] = getattr(module, name)()
            return strategy

        return st.deferred(build)

    for cls, name in factories.items():
        st.register_type_strategy(cls, deferred(name))
