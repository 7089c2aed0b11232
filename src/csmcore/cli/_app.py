"""The ``csmcore`` command: click commands over importers, the report and the stores."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, TextIO, TypeVar, cast

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from csmcore._time import RANGE_TEXT, in_range_us, resolve_zone
from csmcore.calendars import BusinessCalendar
from csmcore.cli import report as report_module
from csmcore.cli._text import not_utf8, render_text
from csmcore.cli.importers import (
    Importer,
    ImportOptions,
    formats_matching,
    importer_named,
    importer_names,
    required_columns,
    write_jsonl,
)
from csmcore.cli.policy_file import load_book, load_calendar
from csmcore.errors import CsmError, ValidationError
from csmcore.sla import SlaBook, backtest
from csmcore.tickets import Ticket
from csmcore.tickets.importing import ImportReport

__all__ = ["EXIT_BAD_INPUT", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USAGE", "cli", "main"]

EXIT_OK = 0
EXIT_INTERNAL = 1
"""An unexpected failure inside csmcore: a bug to report (the traceback is printed)."""
EXIT_USAGE = 2
"""A wrong option or argument (click's own usage error)."""
EXIT_BAD_INPUT = 3
"""Bad input: an unreadable or malformed file, a policy that does not validate, rows rejected
under ``--strict``, an output file that cannot be written."""

F = TypeVar("F", bound=Callable[..., Any])


class BadInput(click.ClickException):
    """Bad input, reported on stderr with exit code 3."""

    exit_code = EXIT_BAD_INPUT


def _err_console(quiet: bool) -> Console:
    return Console(stderr=True, quiet=quiet)


class _CountingReader:
    """A text stream that reports how many bytes of the file were read (for the progress bar)."""

    def __init__(self, raw: IO[bytes], advance: Callable[[int], None]) -> None:
        self._raw = raw
        self._text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        self._advance = advance
        self._last = 0

    def _tick(self) -> None:
        position = self._raw.tell()
        if position != self._last:
            self._advance(position - self._last)
            self._last = position

    def readline(self, size: int | None = -1) -> str:
        line = self._text.readline(-1 if size is None else size)
        self._tick()
        return line

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def read(self, size: int | None = -1) -> str:
        text = self._text.read(-1 if size is None else size)
        self._tick()
        return text


@contextmanager
def _progress(path: Path, quiet: bool) -> Iterator[TextIO]:
    """Open ``path`` for an importer, with a progress bar on stderr when it is a terminal."""
    show = not quiet and sys.stderr.isatty()
    try:
        raw = path.open("rb")
    except OSError as err:
        raise BadInput(f"{path}: cannot be read: {err.strerror or err}") from err
    with raw:
        if not show:
            yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            return
        size = path.stat().st_size
        columns = (
            TextColumn("importing {task.description}"),
            BarColumn(),
            DownloadColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=_err_console(False), transient=True) as bar:
            task = bar.add_task(escape(path.name), total=size)  # a name, not markup
            yield cast(TextIO, _CountingReader(raw, lambda n: bar.advance(task, n)))


def _import(
    path: Path, fmt: str, zone: str, strict: bool, quiet: bool
) -> tuple[list[Ticket], ImportReport, list[int]]:
    importer = importer_named(fmt)
    report = ImportReport()
    lines: list[int] = []
    options = ImportOptions(timezone=zone, strict=strict, row_lines=lines)
    with _progress(path, quiet) as stream:
        try:
            tickets = [i.ticket for i in importer.read(stream, options=options, report=report)]
        except UnicodeDecodeError as err:
            raise BadInput(not_utf8(path, err)) from err
        except CsmError as err:  # a fault that stops the import: say in which file
            if isinstance(err.__cause__, UnicodeDecodeError):  # read behind the boundary
                raise BadInput(not_utf8(path, err.__cause__)) from err
            raise BadInput(_failed_import(path, fmt, importer, err)) from err
    if strict and report.rejected:
        first = report.rejected[0]
        line = report_module.file_line(first.row, lines, importer.header_lines)
        where = "" if line is None else f"line {line}: "
        raise BadInput(
            f"{path}: {len(report.rejected):,} ticket(s) rejected under --strict; first: "
            f"ticket {first.ticket_id!r}, {where}{first.message} (nothing was stored)"
        )
    return tickets, report, lines


_SHOWN_COLUMNS = 5
_SHOWN_CHARS = 30


def _header_of(path: Path) -> list[str] | None:
    """The first line of ``path`` read as a CSV header; None when ``path`` is not a regular
    file (a pipe cannot be read twice) or its first line cannot be read as one."""
    try:
        if not path.is_file():
            return None
        with path.open(encoding="utf-8-sig", newline="") as stream:
            line = stream.readline(1 << 20)
        return next(csv.reader([line]), None)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError):
        return None


def _columns_text(columns: Sequence[str]) -> str:
    """The first few ``columns``, each cut short, and how many there are."""

    def one(name: str) -> str:
        return repr(name if len(name) <= _SHOWN_CHARS else name[: _SHOWN_CHARS - 3] + "...")

    shown = ", ".join(one(c) for c in columns[:_SHOWN_COLUMNS])
    more = ", ..." if len(columns) > _SHOWN_COLUMNS else ""
    return f"{shown}{more} ({len(columns):,} in all)"


def _failed_import(path: Path, fmt: str, importer: Importer, err: CsmError) -> str:
    """The message for an import of ``path`` that ``err`` stopped, with a hint when the file's
    header says ``--format`` is wrong: the format used, the file's first columns, and the
    registered formats whose declared columns (:func:`required_columns`) are all there."""
    plain = f"{path}: {err}"
    header = _header_of(path)
    if header is None:
        return plain
    needed = required_columns(importer)
    missing = [c for c in needed if c not in header]
    matching = [name for name in formats_matching(header) if name != fmt]
    if (needed and not missing) or not (missing or matching):
        return plain  # the header fits --format (or says nothing): the fault is elsewhere
    if matching:
        formats = " or ".join(f"--format {name}" for name in matching)
        advice = f"they include every column {formats} needs: try {formats}"
    else:
        advice = (
            "no registered format's declared columns are all there; known formats: "
            f"{', '.join(importer_names())}"
        )
    if not missing:
        return (
            f"{plain}. Read as a CSV header instead of --format {fmt}, its first line has the "
            f"columns {_columns_text(header)}; {advice}"
        )
    more = "" if len(missing) == 1 else f" (and {len(missing) - 1:,} more)"
    return (
        f"{path}: --format {fmt} needs the column {missing[0]!r}{more}, which the header "
        f"lacks; its columns: {_columns_text(header)}; {advice}"
    )


def _store_tickets(url: str, tickets: list[Ticket]) -> int:
    """Write ``tickets`` to the store at ``url`` in one unit of work: all or nothing."""
    from csmcore.storage import open_store

    store = open_store(url)
    try:
        with store.unit_of_work() as unit:
            return unit.tickets.add_many(tickets)
    finally:
        store.close()


_SQLITE_PREFIX = "sqlite:///"


def _existing_store(url: str, command: str) -> None:
    """Refuse, for a command that only reads a store, a SQLite URL whose file does not exist.

    Opening it would create an empty store there and read nothing from it (a typo in the path
    gave "exported 0 tickets" and exit code 0). The path is the URL's text after
    ``sqlite:///`` up to ``?``, read from the current folder when relative, as the SQLite
    store reads it; its private ``:memory:`` database and the other schemes (``memory://``,
    ``postgresql://``, an adapter's) are left to :func:`~csmcore.storage.open_store`.
    """
    if not url.lower().startswith(_SQLITE_PREFIX):
        return
    path = url[len(_SQLITE_PREFIX) :].partition("?")[0]
    if path == ":memory:":
        return
    if not path:
        what = "names no SQLite file"
        done = "nothing was created"
    elif os.path.exists(path):
        problem = _not_a_store(path)
        if problem is None:
            return
        what = f"names {path!r}, which {problem}"
        done = "the file was left unchanged"
    else:
        where = "" if os.path.isabs(path) else f" (looked for at {os.path.abspath(path)})"
        what = f"names the SQLite file {path!r}, which does not exist{where}"
        done = "nothing was created"
    raise BadInput(
        f"--store {url!r} {what}; 'csmcore {command}' only reads a store, so it takes an "
        f"existing csmcore SQLite store ({done}). Check the path, or create a store "
        "first: 'csmcore demo --path FILE' (a simulated desk) or 'csmcore report INPUT "
        "--format F --store sqlite:///FILE' (an export's tickets)"
    )


def _not_a_store(path: str) -> str | None:
    """Why the existing file ``path`` is not a csmcore SQLite store, or None when it has
    csmcore's tables (``csm_meta``, or the tables a damaged store kept, which the store then
    names); read without writing to it.

    The file is opened read-only and, unless its ``-wal`` and ``-shm`` files are there (a store
    in use, whose latest writes may be in the ``-wal`` only), as immutable: a read-only
    connection to a WAL database would otherwise create both files next to it.
    """
    import sqlite3

    if not os.path.isfile(path):
        return "is not a file"
    try:
        with open(path, "rb") as f:
            header = f.read(16)
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if header and header != b"SQLite format 3\x00":
        return "is not a SQLite database"
    in_use = os.path.exists(f"{path}-wal") and os.path.exists(f"{path}-shm")
    uri = Path(path).resolve().as_uri() + ("?mode=ro" if in_use else "?mode=ro&immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as err:
        return f"cannot be opened read-only ({err})"
    try:
        rows = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN "
            "('csm_meta', 'csm_tickets', 'csm_events', 'csm_documents')"
        ).fetchall()
    except sqlite3.DatabaseError as err:
        return f"is not a SQLite database ({err})"
    finally:
        conn.close()
    if rows:
        return None
    return "has no csmcore tables (no csm_meta table: an empty file or another application's data)"


def _instant(text: str | None, tickets: list[Ticket]) -> datetime:
    if text is None:
        if not tickets:
            return datetime.now(timezone.utc)
        return max(t.updated_at for t in tickets)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise BadInput(
            f"--at {text!r} is not an ISO 8601 instant (2025-03-01T12:00+01:00)"
        ) from err
    if value.tzinfo is None:
        raise BadInput(f"--at {text!r} has no UTC offset; write it as 2025-03-01T12:00+01:00")
    try:
        in_range_us(value, "--at")
    except ValidationError as err:
        raise BadInput(
            f"--at {text!r} is outside the supported range of instants; {RANGE_TEXT}"
        ) from err
    return value


def _book(policy: Path | None, calendar_file: Path | None, zone: str) -> SlaBook:
    calendar: BusinessCalendar | None = None
    if calendar_file is not None:
        calendar = load_calendar(calendar_file)
    return load_book(policy, calendar=calendar, timezone=zone)


def _stdout_closed() -> None:
    """Stop quietly, with code 1, when the reader of stdout went away (``csmcore export | head``):
    as rich does for the text report, and as Python's documentation advises (stdout goes to
    ``os.devnull`` so the interpreter's last flush fails no more)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # no file descriptor (a test runner)
        pass
    sys.exit(EXIT_INTERNAL)


def _handle_errors(command: F) -> F:
    """Turn csmcore's own errors into exit code 3 and anything unexpected into exit code 1."""

    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except CsmError as err:
            raise BadInput(str(err)) from err
        except BrokenPipeError:
            _stdout_closed()
        except Exception:
            traceback.print_exc()
            click.echo(
                "csmcore: internal error (a bug: please report it with the traceback above)",
                err=True,
            )
            sys.exit(EXIT_INTERNAL)

    run.__name__ = command.__name__
    run.__doc__ = command.__doc__
    return run  # type: ignore[return-value]


_FORMAT = click.Choice(importer_names())
_PATH = click.Path(path_type=Path, dir_okay=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="csmcore")
def cli() -> None:
    """csmcore: SLA and KPI reports on help desk exports.

    \b
    Examples:
      csmcore demo --seed 7
      csmcore report tickets.csv --format servicenow --timezone Europe/Rome
      csmcore backtest tickets.csv --format servicenow --policy stricter.toml

    Exit codes: 0 success, 1 internal error (a bug), 2 wrong usage, 3 bad input.
    """


def _input_options(command: F) -> F:
    options = [
        click.argument("input", type=_PATH),
        click.option(
            "--format",
            "fmt",
            type=_FORMAT,
            required=True,
            help="The export's format (see 'Formats' in docs/cli.md).",
        ),
        click.option(
            "--calendar",
            "calendar_file",
            type=_PATH,
            help="Business calendar file (TOML or JSON); default: the policy file's own, else "
            "Mon-Fri 09:00-17:00 in --timezone.",
        ),
        click.option(
            "--timezone",
            "zone",
            default="UTC",
            show_default=True,
            help="Zone of naive timestamps in the export, of the default calendar, and of the "
            "dates shown, e.g. Europe/Rome.",
        ),
        click.option(
            "--at",
            "at_text",
            help="Judge as of this ISO 8601 instant; default: the export's last event.",
        ),
        click.option(
            "--strict",
            is_flag=True,
            help="Reject tickets with a fault instead of repairing them, and exit with code 3 "
            "(naming the first) if any was rejected; nothing is stored.",
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar and no text report."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@cli.command()
@_input_options
@click.option("--policy", type=_PATH, help="SLA policy file (TOML or JSON); default: built-in.")
@click.option("--store", "store_url", help="Also store the imported tickets at this store URL.")
@click.option("--json", "json_out", type=_PATH, help="Write the figures as JSON to this file.")
@click.option("--html", "html_out", type=_PATH, help="Write an HTML report with charts.")
@_handle_errors
def report(
    input: Path,
    fmt: str,
    calendar_file: Path | None,
    zone: str,
    at_text: str | None,
    strict: bool,
    quiet: bool,
    policy: Path | None,
    store_url: str | None,
    json_out: Path | None,
    html_out: Path | None,
) -> None:
    """Import an export and report its SLAs and KPIs.

    \b
    Example:
      csmcore report servicenow.csv --format servicenow --timezone UTC \\
          --policy policy.toml --json report.json --html report.html
    """
    book = _book(policy, calendar_file, zone)
    tickets, imported, lines = _import(input, fmt, zone, strict, quiet)
    if store_url is not None:
        stored = _store_tickets(store_url, tickets)
        _err_console(quiet).print(f"stored {stored:,} tickets in {store_url}")
    data = report_module.ReportInput(
        tickets=tickets,
        book=book,
        at=_instant(at_text, tickets),
        timezone=zone,
        import_report=imported,
        source=input.name,
        format=fmt,
        header_lines=importer_named(fmt).header_lines,
        row_lines=lines,
        policy_source=None if policy is None else policy.name,
    )
    figures = report_module.build_report(data)
    _write_outputs(figures, json_out, html_out)
    if not quiet:
        render_text(figures, Console())


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Report a file that cannot be written (a missing folder, no permission, a full disk) as
    bad input naming it (exit code 3), not as an internal error."""
    try:
        yield
    except OSError as err:
        raise BadInput(f"{path}: cannot be written: {err.strerror or err}") from err


def _write_outputs(figures: dict[str, Any], json_out: Path | None, html_out: Path | None) -> None:
    if json_out is not None:
        with _writing(json_out):
            json_out.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n", "utf-8")
    if html_out is not None:
        try:
            from csmcore.cli.html import render_html
        except ImportError as err:
            raise BadInput(
                f"--html needs the report extra: pip install 'csmcore[report]' ({err})"
            ) from err
        page = render_html(figures)
        with _writing(html_out):
            html_out.write_text(page, "utf-8")


@cli.command(name="backtest")
@_input_options
@click.option("--policy", type=_PATH, required=True, help="The candidate policy file.")
@click.option("--against", type=_PATH, help="The policy file in force; default: the built-in book.")
@_handle_errors
def backtest_command(
    input: Path,
    fmt: str,
    calendar_file: Path | None,
    zone: str,
    at_text: str | None,
    strict: bool,
    quiet: bool,
    policy: Path,
    against: Path | None,
) -> None:
    """Judge the same history under a candidate policy, side by side with the current one.

    \b
    Example:
      csmcore backtest tickets.csv --format servicenow --policy new.toml --against old.toml
    """
    candidate = _book(policy, calendar_file, zone)
    baseline = _book(against, calendar_file, zone)
    tickets, _, _ = _import(input, fmt, zone, strict, quiet)
    at = _instant(at_text, tickets)
    existing = [t for t in tickets if t.created_at <= at]  # the others did not exist yet
    result = backtest(existing, baseline=baseline, candidate=candidate, at=at)
    if quiet:
        return
    from rich.table import Table

    table = Table(
        title=f"Achievement over {result.tickets:,} tickets at "
        f"{at.astimezone(resolve_zone(zone)).isoformat()}: policy in "
        "force (now) and candidate"
    )
    for column in ("target", "now", "candidate", "breached now", "breached candidate"):
        table.add_column(column, justify="left" if column == "target" else "right")
    keys = list(
        dict.fromkeys([r.target for r in result.baseline] + [r.target for r in result.candidate])
    )
    rows = {(r.target, False): r for r in result.baseline}
    rows.update({(r.target, True): r for r in result.candidate})

    def rate(row: Any) -> str:
        return (
            "-"
            if row is None or row.achievement_rate is None
            else (f"{100 * row.achievement_rate:.1f} %")
        )

    for key in keys:
        old, new = rows.get((key, False)), rows.get((key, True))
        table.add_row(
            key,
            rate(old),
            rate(new),
            "-" if old is None else f"{old.breached:,}",
            "-" if new is None else f"{new.breached:,}",
        )
    Console().print(table)


@cli.command()
@click.option(
    "--store", "store_url", required=True, help="The store to export, e.g. sqlite:///t.db"
)
@click.argument("output", type=_PATH, required=False)
@_handle_errors
def export(store_url: str, output: Path | None) -> None:
    """Write every ticket of a store as csmcore-jsonl (to OUTPUT, or stdout).

    \b
    Example:
      csmcore export --store sqlite:///desk.db tickets.jsonl
    """
    from csmcore.conditions import Always
    from csmcore.storage import open_store

    _existing_store(store_url, "export")
    store = open_store(store_url)
    try:
        tickets = (t for batch in store.tickets.stream(Always()) for t in batch)
        if output is None:
            count = write_jsonl(tickets, sys.stdout)
        else:
            with _writing(output), output.open("w", encoding="utf-8", newline="\n") as stream:
                count = write_jsonl(tickets, stream)
    finally:
        store.close()
    click.echo(f"exported {count:,} tickets", err=True)


def default_demo_path() -> Path:
    """Where ``csmcore demo`` keeps its SQLite store: ``$XDG_DATA_HOME/csmcore/demo.db``
    (``~/.local/share/csmcore/demo.db`` when the variable is unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "csmcore" / "demo.db"


@cli.command()
@click.option("--seed", default=1, show_default=True, help="Seed of the simulation.")
@click.option("--weeks", default=4, show_default=True, help="Weeks simulated (1 to 52).")
@click.option(
    "--path",
    "db_path",
    type=_PATH,
    help="SQLite file to write (replaced); default: $XDG_DATA_HOME/csmcore/demo.db.",
)
@click.option("--json", "json_out", type=_PATH, help="Write the figures as JSON to this file.")
@click.option("--html", "html_out", type=_PATH, help="Write an HTML report with charts.")
@click.option("--quiet", "-q", is_flag=True, help="No text report.")
@_handle_errors
def demo(
    seed: int,
    weeks: int,
    db_path: Path | None,
    json_out: Path | None,
    html_out: Path | None,
    quiet: bool,
) -> None:
    """Simulate a support desk for a few weeks into a SQLite store, then report on it.

    The desk's escalation rules fire (a warning at 75 % of the first-reply target, the support
    manager told of resolution breaches) and a nightly service-recovery job grants loyalty
    points for breaches, into the same store's ledger.

    \b
    Example:
      csmcore demo --seed 7 --weeks 6 --html demo.html
    """
    from csmcore.cli.demo import run_jobs, simulate
    from csmcore.conditions import Always
    from csmcore.services import Ledger
    from csmcore.storage import open_store

    desk = simulate(seed=seed, weeks=weeks)
    path = (db_path or default_demo_path()).resolve()
    with _writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    stored = _store_tickets(url, list(desk.tickets))
    from csmcore.cli.policy_file import default_book

    book = default_book(desk.calendar)
    store = open_store(url)
    try:
        tickets = [t for batch in store.tickets.stream(Always()) for t in batch]
        activity = run_jobs(desk, book, Ledger(store))
    finally:
        store.close()
    data = report_module.ReportInput(
        tickets=tickets,
        book=book,
        at=desk.end,
        timezone=desk.calendar.timezone_name or "UTC",
        source=f"csmcore demo --seed {seed} --weeks {weeks}",
        firings=activity.firings,
        grants=activity.grants,
    )
    figures = report_module.build_report(data)
    _write_outputs(figures, json_out, html_out)
    if not quiet:
        render_text(figures, Console())
    click.echo(f"demo store: {path} ({stored:,} tickets; open it with sqlite:///{path})", err=True)


def main(argv: list[str] | None = None) -> int:
    """Run the command with ``argv`` (default: the process's); returns the exit code."""
    try:
        cli.main(args=argv, prog_name="csmcore", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code or 0)
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERNAL
    return EXIT_OK
