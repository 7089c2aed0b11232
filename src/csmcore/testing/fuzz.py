"""Fuzz csmcore's public entry points with malformed input (needs ``csmcore[testing]``).

csmcore promises that bad input never escapes: every public entry point either answers or
raises a :class:`~csmcore.errors.CsmError`, and does so in bounded time. This module checks the
promise with Hypothesis: strategies for malformed input of every public type (wrong types,
instants outside the supported range, naive datetimes, huge integers, deep nesting, NaN and
infinities, text with NUL and lone surrogates, malformed ``from_data`` payloads for every
registered type, absurd calendar rules), and a registry of entry points, each declared once
with :func:`entry_point`, that :func:`check_entry_point` calls with them.

Run it in a test module::

    import pytest
    from csmcore.testing import fuzz

    @pytest.mark.parametrize("name", sorted(fuzz.entry_points()))
    def test_bad_input_never_escapes(name):
        fuzz.check_entry_point(name)

Each call runs under a hang detector: :func:`time_limit` (``CSMCORE_FUZZ_CALL_SECONDS``, 10 s by
default) interrupts a call that runs longer and fails the example with :class:`Hang`. It is
deliberately generous: it finds calls that never end (a loop over centuries of business time),
not slow ones; speed belongs in ``benchmarks/``. It uses ``SIGALRM``, so it only works in the
main thread on POSIX; elsewhere calls run unguarded.

How hard it runs: :func:`fuzz_settings` gives ``CSMCORE_FUZZ_EXAMPLES`` examples per entry
point (25 by default, with a fixed seed, so a CI run is short and repeatable). Set
``CSMCORE_FUZZ_EXAMPLES=20000`` (and ``CSMCORE_FUZZ_RANDOM=1`` for fresh random draws instead
of the fixed seed) for the long run before a release; see ``docs/fuzzing.md``.

Adapter authors run the store group of the conformance suite,
:class:`csmcore.testing.storage_suite.StoreFuzzTests`, which feeds the same malformed input to
every role of their store.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from csmcore import conditions as cd
from csmcore.calendars import BusinessCalendar
from csmcore.clock import FixedClock
from csmcore.errors import CsmError
from csmcore.serialization import from_data, registered_types, to_data
from csmcore.sla import SlaBook, SlaPolicy, SlaTarget
from csmcore.testing import strategies as cs
from csmcore.testing._junk import (
    deep,
    hours_values,
    huge_ints,
    junk,
    junk_durations,
    junk_instants,
    junk_payloads,
    junk_text,
    rules,
)
from csmcore.tickets import Ticket

__all__ = [
    "Call",
    "EntryPoint",
    "Hang",
    "check_call",
    "check_entry_point",
    "deep",
    "entry_point",
    "entry_points",
    "fuzz_settings",
    "huge_ints",
    "junk",
    "junk_durations",
    "junk_instants",
    "junk_payloads",
    "junk_text",
    "rules",
    "time_limit",
]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def call_seconds() -> float:
    """The hang detector's limit per call, from ``CSMCORE_FUZZ_CALL_SECONDS`` (10 by default)."""
    value = os.environ.get("CSMCORE_FUZZ_CALL_SECONDS", "")
    return float(value) if value.strip() else 10.0


class Hang(BaseException):
    """A call ran longer than the hang detector allows. A ``BaseException``, so that no
    ``except Exception`` (csmcore's boundary included) can swallow it."""


@contextmanager
def time_limit(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`Hang` naming ``what`` if the block runs longer than ``seconds`` (a hang
    detector, not a speed test; only in the main thread on POSIX, else the block runs
    unguarded)."""
    usable = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and seconds > 0
    )
    if not usable:
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"{what} ran for more than {seconds:g} s (CSMCORE_FUZZ_CALL_SECONDS)")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__name__}>"
    return text if len(text) <= 300 else text[:300] + "..."


def check_call(what: str, call: Callable[[], Any], seconds: float | None = None) -> Any:
    """Run ``call()``: fail unless it returns or raises a :class:`CsmError`, within the hang
    detector's limit. Returns what the call returned (None after a CsmError). Iterators in the
    result are not consumed: consume them inside ``call``."""
    limit = call_seconds() if seconds is None else seconds
    try:
        with time_limit(limit, what):
            return call()
    except CsmError:
        return None
    except (Hang, KeyboardInterrupt, SystemExit):
        raise
    except BaseException as err:
        raise AssertionError(
            f"{what} raised {type(err).__name__}: {_short(err)}; every public entry point "
            f"must answer bad input with a csmcore.errors.CsmError"
        ) from err


# -- the registry ----------------------------------------------------------------------------


@attrs.frozen
class Call:
    """One drawn call: its description (for the failure message) and the thunk to run."""

    what: str
    run: Callable[[], Any]


@attrs.frozen
class EntryPoint:
    """A public entry point to fuzz: ``calls`` draws :class:`Call` objects for it."""

    name: str
    calls: Callable[[], st.SearchStrategy[Call]]


_registry: dict[str, EntryPoint] = {}


def entry_point(name: str) -> Callable[[Callable[[], st.SearchStrategy[Call]]], Any]:
    """Declare an entry point to fuzz: decorate a function returning a strategy of
    :class:`Call`. Declared once, found by :func:`entry_points` (and so by every fuzz run)."""

    def declare(calls: Callable[[], st.SearchStrategy[Call]]) -> Any:
        _registry[name] = EntryPoint(name=name, calls=calls)
        return calls

    return declare


def entry_points() -> Mapping[str, EntryPoint]:
    """Every declared entry point by name (``from_data`` is one per registered type)."""
    _declare_from_data()
    return dict(_registry)


def fuzz_settings() -> settings:
    """Hypothesis settings of a fuzz run: ``CSMCORE_FUZZ_EXAMPLES`` examples (25 by default),
    a fixed seed unless ``CSMCORE_FUZZ_RANDOM`` is set, no deadline (the hang detector is the
    time limit)."""
    return settings(
        max_examples=_env_int("CSMCORE_FUZZ_EXAMPLES", 25),
        derandomize=not os.environ.get("CSMCORE_FUZZ_RANDOM", "").strip(),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


def check_entry_point(name: str) -> None:
    """Fuzz the declared entry point ``name`` (see :func:`check_call`)."""
    calls = entry_points()[name].calls()

    @fuzz_settings()
    @given(calls)
    def run(call: Call) -> None:
        check_call(call.what, call.run)

    run()


def _call(what: str, run: Callable[[], Any]) -> Call:
    return Call(what=what, run=run)


@st.composite
def _calls_of(draw: st.DrawFn, /, label: str, fn: Callable[..., Any], **args: Any) -> Call:
    values = {key: draw(strategy) for key, strategy in args.items()}
    shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
    return _call(f"{label}({shown})", lambda: fn(**values))


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly valid values of ``strategy``, sometimes junk."""
    return st.one_of(strategy, strategy, junk())


# -- the entry points of csmcore --------------------------------------------------------------

_CALENDARS = st.one_of(
    cs.calendars(),
    st.just(BusinessCalendar.always(timezone="UTC")),
)


@entry_point("BusinessCalendar")
def _calendar_builds() -> st.SearchStrategy[Call]:
    return _calls_of(
        "BusinessCalendar",
        BusinessCalendar,
        timezone=_maybe(st.sampled_from(("UTC", "Europe/Berlin"))),
        hours=hours_values(),
        holidays=_maybe(st.lists(st.dates(), max_size=3)),
        recurring_holidays=st.one_of(st.just(()), rules()),
        closures=st.one_of(
            st.just(()), st.lists(st.tuples(junk_instants(), junk_instants()), max_size=2), junk()
        ),
    )


@entry_point("BusinessCalendar.weekly")
def _weekly() -> st.SearchStrategy[Call]:
    return _calls_of(
        "BusinessCalendar.weekly",
        BusinessCalendar.weekly,
        open=_maybe(st.just("09:00")),
        close=_maybe(st.just("17:00")),
        days=_maybe(st.sampled_from(("mon-fri", "sat,sun", "fri-mon"))),
        timezone=_maybe(st.just("UTC")),
        holidays=_maybe(st.just(())),
    )


@entry_point("BusinessCalendar methods")
def _calendar_methods() -> st.SearchStrategy[Call]:
    @st.composite
    def draw_call(draw: st.DrawFn) -> Call:
        cal = draw(_CALENDARS)
        method = draw(
            st.sampled_from(
                ("add", "elapsed", "is_open", "next_open", "next_close", "open_intervals")
            )
        )
        a = draw(junk_instants())
        if method == "add":
            d = draw(junk_durations())
            return _call(f"{_short(cal)}.add({_short(a)}, {_short(d)})", lambda: cal.add(a, d))
        if method in ("elapsed", "open_intervals"):
            b = draw(st.one_of(junk_instants(), st.builds(lambda: a)))
            if method == "elapsed":
                return _call(
                    f"{_short(cal)}.elapsed({_short(a)}, {_short(b)})", lambda: cal.elapsed(a, b)
                )
            return _call(
                f"list({_short(cal)}.open_intervals({_short(a)}, {_short(b)}))",
                lambda: list(cal.open_intervals(a, b)),
            )
        return _call(f"{_short(cal)}.{method}({_short(a)})", lambda: getattr(cal, method)(a))

    return draw_call()


@entry_point("Ticket.create")
def _ticket_create() -> st.SearchStrategy[Call]:
    return _calls_of(
        "Ticket.create",
        Ticket.create,
        at=junk_instants(),
        ticket_id=_maybe(cs.ticket_ids()),
        created_by=_maybe(st.sampled_from(("requester", "agent"))),
        channel=_maybe(st.sampled_from(("web", "email"))),
        priority=_maybe(st.sampled_from(("low", "normal", "high"))),
        requester=_maybe(cs.names()),
        subject=_maybe(junk_text()),
        tags=_maybe(st.frozensets(cs.tags(), max_size=3)),
        fields=_maybe(st.dictionaries(junk_text(), junk(), max_size=3)),
    )


@entry_point("Ticket methods")
def _ticket_methods() -> st.SearchStrategy[Call]:
    @st.composite
    def draw_call(draw: st.DrawFn) -> Call:
        ticket = draw(cs.tickets(max_events=4))
        at = draw(junk_instants())
        method = draw(
            st.sampled_from(
                ("set_status", "set_priority", "assign", "comment", "tag", "set_fields", "as_of")
            )
        )
        if method == "as_of":
            return _call(f"{_short(ticket)}.as_of({_short(at)})", lambda: ticket.as_of(at))
        value = draw(junk())
        args: tuple[Any, ...]
        if method == "comment":
            role = draw(st.one_of(st.sampled_from(("agent", "requester", "system")), junk()))
            args = (at, role)
            kwargs: dict[str, Any] = {"author": value, "public": draw(junk())}
        elif method == "tag":
            args = (at,)
            kwargs = {"add": value}
        else:
            args = (at, value)
            kwargs = {}
        fn = getattr(ticket, method)
        return _call(
            f"{ticket.id!r}.{method}(*{_short(args)}, **{_short(kwargs)})",
            lambda: fn(*args, **kwargs),
        )

    return draw_call()


def _use(condition: Any, ticket: Any) -> None:
    """What the condition entry points do with a condition built: hash, repr, match, round-trip."""
    hash(condition)
    repr(condition)
    condition.matches(ticket)
    from_data(to_data(condition), cd.Condition)


@entry_point("conditions")
def _conditions() -> st.SearchStrategy[Call]:
    @st.composite
    def draw_call(draw: st.DrawFn) -> Call:
        kind = draw(st.sampled_from(("Eq", "In", "Compare", "HasTags", "Not", "All", "AnyOf")))
        field = draw(st.one_of(st.sampled_from(("status", "priority", "fields.x", "tags")), junk()))
        value = draw(junk())
        if kind == "Eq":
            build: Callable[[], Any] = lambda: cd.Eq(field, value)  # noqa: E731
        elif kind == "In":
            build = lambda: cd.In(field, value)  # noqa: E731
        elif kind == "Compare":
            op = draw(st.one_of(st.sampled_from(("<", ">=", "==")), junk()))
            build = lambda: cd.Compare(field, op, value)  # noqa: E731
        elif kind == "HasTags":
            build = lambda: cd.HasTags(value)  # noqa: E731
        elif kind == "Not":
            build = lambda: cd.Not(value)  # noqa: E731
        else:
            parts = draw(st.lists(st.one_of(cs.conditions(), junk()), max_size=3))
            cls = cd.All if kind == "All" else cd.AnyOf
            build = lambda: cls(*parts)  # noqa: E731
        ticket = draw(cs.tickets(max_events=3))

        def run() -> None:
            _use(build(), ticket)

        return _call(f"{kind}({_short(field)}, {_short(value)}) and its methods", run)

    return draw_call()


@entry_point("deep conditions")
def _deep_conditions() -> st.SearchStrategy[Call]:
    @st.composite
    def draw_call(draw: st.DrawFn) -> Call:
        depth = draw(st.sampled_from((50, 500, 2_000)))
        shape = draw(st.sampled_from(("Not", "All", "AnyOf")))
        ticket = draw(cs.tickets(max_events=2))

        def run() -> None:
            condition: Any = cd.Eq("status", "open")
            for _ in range(depth):
                condition = (
                    cd.Not(condition)
                    if shape == "Not"
                    else (cd.All if shape == "All" else cd.AnyOf)(condition, cd.Always())
                )
            _use(condition, ticket)

        return _call(f"{shape} nested {depth} deep, built and used", run)

    return draw_call()


@entry_point("SLA models")
def _sla_models() -> st.SearchStrategy[Call]:
    return st.one_of(
        _calls_of(
            "SlaTarget",
            SlaTarget,
            metric=_maybe(st.sampled_from(("first_reply", "total_resolution"))),
            within=junk_durations(),
            business_hours=_maybe(st.booleans()),
        ),
        _calls_of(
            "SlaPolicy",
            SlaPolicy,
            name=_maybe(cs.names()),
            position=_maybe(st.integers(0, 5)),
            targets=_maybe(st.lists(cs.sla_targets(), max_size=2)),
            condition=_maybe(cs.conditions()),
            default=junk(),
        ),
        _calls_of(
            "SlaBook",
            SlaBook,
            policies=_maybe(st.lists(cs.sla_policies(), max_size=2)),
            calendar=_maybe(_CALENDARS),
            calendars=_maybe(st.just({})),
        ),
    )


@entry_point("SlaBook.evaluate")
def _sla_evaluate() -> st.SearchStrategy[Call]:
    @st.composite
    def draw_call(draw: st.DrawFn) -> Call:
        book = draw(cs.sla_books())
        ticket = draw(st.one_of(cs.tickets(max_events=4), cs.tickets(max_events=4), junk()))
        at = draw(junk_instants())
        if draw(st.booleans()):
            return _call(
                f"evaluate({_short(ticket)}, {_short(at)})", lambda: book.evaluate(ticket, at)
            )
        return _call(
            f"next_change({_short(ticket)}, {_short(at)})", lambda: book.next_change(ticket, at)
        )

    return draw_call()


@entry_point("FixedClock")
def _clock() -> st.SearchStrategy[Call]:
    @st.composite
    def draw_call(draw: st.DrawFn) -> Call:
        start = draw(junk_instants())
        delta = draw(junk_durations())
        then = draw(junk_instants())

        def run() -> None:
            clock = FixedClock(start)
            clock.advance(delta)
            clock.set(then)

        return _call(
            f"FixedClock({_short(start)}).advance({_short(delta)}).set({_short(then)})", run
        )

    return draw_call()


@entry_point("to_data")
def _to_data() -> st.SearchStrategy[Call]:
    return _calls_of("to_data", to_data, obj=junk())


_SCRATCH: list[str] = []


def _scratch_folder() -> str:
    """A temporary folder for the files fuzzed store URLs create, removed when the process
    exits."""
    if not _SCRATCH:
        import atexit
        import shutil
        import tempfile

        _SCRATCH.append(tempfile.mkdtemp(prefix="csmcore-fuzz-"))
        atexit.register(shutil.rmtree, _SCRATCH[0], True)
    return _SCRATCH[0]


@entry_point("open_store")
def _open_store() -> st.SearchStrategy[Call]:
    from csmcore.storage import open_store

    def opened(url: Any) -> None:
        store = open_store(url)
        store.close()

    # SQLite paths are made inside a private temporary folder (removed at exit), never in the
    # working directory: a fuzzed name that opens must not leave a database in the user's tree.
    folder = _scratch_folder()
    urls = st.one_of(
        junk(),
        st.builds(lambda s: f"sqlite:///{folder}/{s}", junk_text()),
        st.builds(lambda s: f"memory://{s}", junk_text()),
        st.builds(lambda s: f"nosuchscheme://{s}", junk_text()),
        st.sampled_from(
            (
                f"sqlite:///{folder}/a\x00b.db",
                f"sqlite:///{folder}/\ud800.db",
                "",
                "://",
                "sqlite://",
            )
        ),
    )
    return _calls_of("open_store", opened, url=urls)


_FROM_DATA_DONE: set[type] = set()


def _declare_from_data() -> None:
    """One entry point ``from_data(<tag>)`` per registered type (found by the registry, so a
    type declared later is fuzzed without a line here)."""
    for tag, cls in sorted(registered_types().items()):
        if cls in _FROM_DATA_DONE or cls.__module__.startswith("__"):
            continue
        _FROM_DATA_DONE.add(cls)

        def calls(cls: type = cls) -> st.SearchStrategy[Call]:
            return st.builds(
                lambda data: _call(
                    f"from_data({_short(data)}, {cls.__name__})", lambda: from_data(data, cls)
                ),
                junk_payloads(cls),
            )

        _registry[f"from_data({tag})"] = EntryPoint(name=f"from_data({tag})", calls=calls)


@entry_point("Ticket.from_events and apply")
def _ticket_history() -> st.SearchStrategy[Call]:
    @st.composite
    def draw_call(draw: st.DrawFn) -> Call:
        ticket = draw(cs.tickets(max_events=3))
        odd = draw(st.one_of(junk(), cs.ticket_events(), st.lists(junk(), max_size=3)))
        if draw(st.booleans()):
            events = [*ticket.events, odd]
            return _call(
                f"Ticket.from_events(... + {_short(odd)})", lambda: Ticket.from_events(events)
            )
        return _call(f"{ticket.id!r}.apply({_short(odd)})", lambda: ticket.apply(odd))

    return draw_call()


@entry_point("rebuild and backtest")
def _rebuild() -> st.SearchStrategy[Call]:
    from csmcore.sla import backtest, rebuild

    @st.composite
    def draw_call(draw: st.DrawFn) -> Call:
        book = draw(cs.sla_books())
        tickets = draw(st.one_of(st.lists(cs.tickets(max_events=3), max_size=2), junk()))
        other = draw(st.one_of(cs.sla_books(), junk()))
        at = draw(junk_instants())
        if draw(st.booleans()):
            return _call(
                f"rebuild({_short(tickets)}, old={_short(other)}, at={_short(at)})",
                lambda: rebuild(tickets, old=other, new=book, at=at),
            )
        return _call(
            f"backtest({_short(tickets)}, candidate={_short(other)}, at={_short(at)})",
            lambda: backtest(tickets, baseline=book, candidate=other, at=at),
        )

    return draw_call()
