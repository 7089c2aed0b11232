"""The ``csmcore`` command line (install the extra: ``pip install 'csmcore[cli]'``).

Commands: ``demo`` (a simulated support desk into the embedded SQLite store, then its report),
``report`` (an export's SLAs and KPIs as text, ``--json`` and ``--html``), ``backtest`` (the same
history under a candidate policy) and ``export`` (a store as csmcore-jsonl). See docs/cli.md.

Public modules: :mod:`csmcore.cli.importers` (the importer protocol and registry),
:mod:`csmcore.cli.policy_file` (policy and calendar files), :mod:`csmcore.cli.report` (the
report mapping and its section registry).
"""

from __future__ import annotations

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run ``csmcore`` with ``argv`` (default: the process's arguments); returns the exit code."""
    from csmcore.cli._app import main as run

    return run(argv)
