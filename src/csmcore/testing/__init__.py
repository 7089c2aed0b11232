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
    ``st.from_type`` (enums need no registration: Hypothesis samples their members)."""
    from csmcore import conditions as cd
    from csmcore import sla, tickets
    from csmcore.calendars import BusinessCalendar, CountryHolidays

    return (
        tickets.Ticket,
        tickets.StatusMap,
        tickets.TicketEventBase,
        tickets.TicketCreated,
        tickets.StatusChanged,
        tickets.PriorityChanged,
        tickets.Assigned,
        tickets.Commented,
        tickets.TagsChanged,
        tickets.FieldsChanged,
        tickets.Merged,
        tickets.Reopened,
        cd.Condition,
        cd.All,
        cd.AnyOf,
        cd.Not,
        cd.Always,
        cd.Never,
        cd.Eq,
        cd.In,
        cd.Compare,
        cd.HasTags,
        BusinessCalendar,
        CountryHolidays,
        sla.CustomTimer,
        sla.SlaTarget,
        sla.SlaPolicy,
        sla.SlaBook,
        sla.SlaStatus,
        sla.SlaChange,
        sla.Backtest,
        sla.BacktestRow,
    )


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
