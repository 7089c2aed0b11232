"""The public boundary (csmcore._boundary): what it translates, and that every public entry point
is behind it, checked by walking the public API so an entry point added later cannot slip by."""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import types
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

import attrs
import pytest

import csmcore
from csmcore import _boundary
from csmcore._boundary import exempt, guard_class, guarded, inline, is_guarded, translate
from csmcore.errors import (
    CsmError,
    InternalError,
    InvalidType,
    LimitError,
    NotFound,
    SerializationError,
    StorageError,
    ValidationError,
)
from csmcore.testing import fuzz

NOT_WALKED = frozenset({"testing", "cli"})
"""Packages outside the library's boundary: ``csmcore.testing`` is the test kit (its helpers are
meant to fail loudly inside tests) and ``csmcore.cli`` the command, which answers bad input with
exit codes (tests/cli)."""


def _public_modules() -> tuple[str, ...]:
    """``csmcore`` and every public module and package directly under it, found on disk, so a
    package added later is walked without editing a list here."""
    import csmcore

    found = [
        f"csmcore.{info.name}"
        for info in pkgutil.iter_modules(csmcore.__path__)
        if not info.name.startswith("_") and info.name not in NOT_WALKED
    ]
    return ("csmcore", *sorted(found), *PUBLIC_SUBPACKAGES)


PUBLIC_SUBPACKAGES = ("csmcore.tickets.importing",)
"""Public packages below the first level that users call directly (docs/howto-import.md)."""

PUBLIC_MODULES = _public_modules()
"""The modules whose ``__all__`` is the public API the boundary covers."""

STORE_URLS = ("memory://", "sqlite:///:memory:")
"""Stores reached through ``open_store``: their classes are walked too."""

NOT_ENTRY_POINTS: dict[str, str] = {
    # pure accessors and registry look-ups: they take no input that could be malformed, or
    # their input is a key whose absence is already a CsmError
    "csmcore.serialization.registered_types": "a read-only view of the registry, no arguments",
    "csmcore.serialization.schema_versions": "a read-only view of the registry, no arguments",
    "csmcore.conditions.subjects": "a read-only view of the registry, no arguments",
    "csmcore.tickets.event_types": "a read-only view of the registry, no arguments",
    "csmcore.storage.available_schemes": "a read-only list of the registered URL schemes",
    "csmcore.SystemClock.now": "no arguments: datetime.now(timezone.utc)",
    "csmcore.FixedClock.now": "no arguments: returns the stored instant",
    "csmcore.storage.offered_roles": "reads the roles attribute of the store given",
}
"""Public callables deliberately left outside the boundary, each with the reason."""


def _public_objects() -> Iterator[tuple[str, Any]]:
    seen: set[int] = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{module_name}.{name}", obj
    from csmcore.storage import open_store

    for url in STORE_URLS:
        store: Any = open_store(url)
        try:
            for cls in {type(store), *(type(store.role(r)) for r in store.roles)}:
                if id(cls) not in seen:
                    seen.add(id(cls))
                    yield f"{cls.__module__}.{cls.__qualname__}", cls
        finally:
            store.close()


def _is_walked_class(cls: type) -> bool:
    if issubclass(cls, BaseException | enum.Enum):
        return False  # exceptions and enumerations: no behaviour that takes input
    if Protocol in getattr(cls, "__mro__", ()) or getattr(cls, "_is_protocol", False):
        return False  # a typing.Protocol describes an interface; its implementations are walked
    return cls.__module__.startswith("csmcore")


def _entry_points() -> Iterator[tuple[str, Any]]:
    for name, obj in _public_objects():
        if isinstance(obj, types.ModuleType) or not callable(obj):
            continue
        if inspect.isclass(obj):
            if not _is_walked_class(obj):
                continue
            members: dict[str, Any] = {}
            for klass in reversed(obj.__mro__):  # the most derived definition wins
                if klass.__module__.startswith("csmcore"):
                    members.update(vars(klass))
            for member_name, member in sorted(members.items()):
                if member_name != "__init__" and member_name.startswith("_"):
                    continue
                if inspect.isfunction(member) or isinstance(member, classmethod | staticmethod):
                    yield f"{name}.{member_name}", member
        elif inspect.isfunction(obj):
            yield name, obj


ENTRY_POINTS = sorted(_entry_points(), key=lambda pair: pair[0])


def test_the_walk_finds_the_entry_points_of_every_area() -> None:
    names = {name for name, _ in ENTRY_POINTS}
    for expected in (
        "csmcore.BusinessCalendar.add",
        "csmcore.BusinessCalendar.__init__",
        "csmcore.Ticket.create",
        "csmcore.SlaBook.evaluate",
        "csmcore.from_data",
        "csmcore.FixedClock.advance",
        "csmcore.storage.open_store",
        "csmcore.storage.memory.MemoryStore.close",
    ):
        assert expected in names, expected
    assert len(ENTRY_POINTS) > 100


def test_every_public_entry_point_is_behind_the_boundary() -> None:
    missing = [
        name for name, fn in ENTRY_POINTS if not is_guarded(fn) and name not in NOT_ENTRY_POINTS
    ]
    assert missing == [], (
        "public entry points outside csmcore._boundary (decorate them with @guarded, the class "
        "with @guard_class, mark a hot method @inline, or list a pure accessor in "
        f"NOT_ENTRY_POINTS with the reason): {missing}"
    )


def test_the_allow_list_names_only_public_callables() -> None:
    names = {name for name, _ in ENTRY_POINTS}
    stale = [k for k in NOT_ENTRY_POINTS if k not in names]
    assert stale == []


# -- what the boundary translates ------------------------------------------------------------


def _raise(err: BaseException) -> None:
    raise err


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (TypeError("t"), InvalidType),
        (AttributeError("'str' object has no attribute 'keys'"), InvalidType),
        (ValueError("v"), ValidationError),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), ValidationError),
        (OverflowError("date value out of range"), ValidationError),
        (ZeroDivisionError("z"), ValidationError),
        (IndexError("i"), ValidationError),
        (KeyError("k"), ValidationError),
        (RecursionError("maximum recursion depth exceeded"), LimitError),
        (OSError("disk"), InternalError),
        (RuntimeError("bug"), InternalError),
    ],
)
def test_lower_level_failures_become_csm_errors_keeping_the_cause(
    raised: Exception, expected: type[CsmError]
) -> None:
    entry = guarded(_raise, where="example.entry")
    with pytest.raises(expected) as caught:
        entry(raised)
    assert type(caught.value) is expected
    assert caught.value.__cause__ is raised
    assert str(caught.value).startswith("example.entry: ")


def test_an_internal_error_is_a_runtime_error_and_asks_for_a_report() -> None:
    with pytest.raises(RuntimeError, match="please report it"):
        guarded(_raise)(StopIteration("x"))


@pytest.mark.parametrize(
    "raised",
    [
        NotFound("n"),
        SerializationError("s"),
        MemoryError(),
        KeyboardInterrupt(),
        SystemExit(3),
        GeneratorExit(),
    ],
)
def test_csm_errors_and_process_exceptions_cross_unchanged(raised: BaseException) -> None:
    cause = ValueError("original")
    raised.__cause__ = cause
    with pytest.raises(type(raised)) as caught:
        guarded(_raise)(raised)
    assert caught.value is raised
    assert caught.value.__cause__ is cause


def test_a_kind_turns_every_input_failure_into_that_class() -> None:
    entry = guarded(_raise, kind=SerializationError)
    for raised in (TypeError("t"), AttributeError("a"), ValueError("v"), KeyError("k")):
        with pytest.raises(SerializationError):
            entry(raised)


def test_a_fallback_replaces_internal_error() -> None:
    with pytest.raises(StorageError) as caught:
        guarded(_raise, fallback=StorageError)(OSError("disk"))
    assert type(caught.value) is StorageError


def test_generators_are_translated_while_iterating() -> None:
    @guarded
    def numbers() -> Iterator[int]:
        yield 1
        raise OverflowError("too big")

    it = numbers()
    assert next(it) == 1
    with pytest.raises(ValidationError) as caught:
        next(it)
    assert isinstance(caught.value.__cause__, OverflowError)


def test_guard_iter_translates_a_lazy_result() -> None:
    def lazy() -> Iterator[int]:
        yield 1
        raise TypeError("x")

    with pytest.raises(InvalidType):
        list(_boundary.guard_iter(lazy(), "lazy"))


def test_a_huge_message_is_cut_and_an_unprintable_one_named() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise ValueError("no")

    with pytest.raises(InternalError, match="Unprintable"):
        guarded(_raise)(Unprintable())
    with pytest.raises(ValidationError) as caught:
        guarded(_raise)(ValueError("x" * 10_000))
    assert len(str(caught.value)) < 1_000


def test_guard_class_wraps_constructor_and_public_methods_and_keeps_aliases() -> None:
    @guard_class
    class Thing:
        def __init__(self, x: int) -> None:
            self.x = 1 // x

        def method(self) -> int:
            return [0][self.x]

        alias = method

        @classmethod
        def build(cls, y: object) -> Thing:
            return cls(int(y))  # type: ignore[call-overload]

        @staticmethod
        def helper(z: str) -> int:
            return int(z)

        @exempt("an accessor for the example")
        def accessor(self) -> int:
            return self.x

        def _private(self) -> None:
            raise TypeError("private methods are not entry points")

    with pytest.raises(ValidationError):
        Thing(0)
    with pytest.raises(ValidationError):
        Thing(1).method()
    assert Thing.alias is Thing.method
    with pytest.raises(InvalidType):
        Thing.build(None)
    with pytest.raises(ValidationError):
        Thing.helper("x")
    assert is_guarded(Thing.accessor)
    assert not hasattr(Thing.accessor, "__wrapped__")
    with pytest.raises(TypeError) as caught:
        Thing(1)._private()
    assert not isinstance(caught.value, CsmError)


def test_inline_refuses_a_method_that_does_not_translate() -> None:
    with pytest.raises(TypeError, match="never calls translate"):

        @inline("x")
        def plain() -> None:
            return None


def test_translate_returns_a_passing_error_itself() -> None:
    err = NotFound("n")
    assert translate(err, "x") is err


# -- regression: the probe classes of issue 11 that bare exceptions escaped from ---------------

AT = datetime(2025, 3, 4, 10, tzinfo=timezone.utc)


def test_an_overflowing_due_time_reaches_the_caller_as_validation_error() -> None:
    from csmcore.testing.builders import make_ticket

    book = csmcore.SlaBook(
        policies=[
            csmcore.SlaPolicy(
                name="p",
                position=1,
                default=True,
                targets=[
                    csmcore.SlaTarget(
                        metric=csmcore.SlaMetric.TOTAL_RESOLUTION,
                        within=timedelta(days=3_000_000),
                        business_hours=False,
                    )
                ],
            )
        ],
        calendar=csmcore.BusinessCalendar.always(timezone="UTC"),
    )
    with pytest.raises(ValidationError) as caught:
        book.evaluate(make_ticket("T-1", at=AT), AT + timedelta(hours=1))
    assert isinstance(caught.value.__cause__, OverflowError)


def _probes() -> dict[str, Callable[[], object]]:
    """The issue's probes that escaped as other exceptions, one call each."""
    from csmcore.storage import open_store
    from csmcore.testing.builders import make_ticket

    utc = timezone.utc
    end, start = datetime.max.replace(tzinfo=utc), datetime.min.replace(tzinfo=utc)
    cal = csmcore.BusinessCalendar.weekly("09:00", "17:00", timezone="UTC")
    ticket = make_ticket("P-1", at=AT)
    loose: Any = csmcore  # the probes pass wrong types on purpose
    book = csmcore.SlaBook(
        policies=[
            csmcore.SlaPolicy(
                name="p",
                position=1,
                default=True,
                targets=[csmcore.SlaTarget(metric=csmcore.SlaMetric.FIRST_REPLY, within=HOUR)],
            )
        ],
        calendar=cal,
    )

    def nested_not(depth: int) -> Any:
        condition: Any = csmcore.Eq("status", "open")
        for _ in range(depth):
            condition = csmcore.Not(condition)
        return condition

    def store_put(url: str, value: object) -> None:
        store: Any = open_store(url)
        try:
            store.policies.put("k", value, expected_version=0)
        finally:
            store.close()

    return {
        "from_data('', SlaPolicy)": lambda: csmcore.from_data("", csmcore.SlaPolicy),
        "from_data({None: 1})": lambda: csmcore.from_data({None: 1, "x": 2}, csmcore.SlaPolicy),
        "from_data(inf, timedelta)": lambda: csmcore.from_data(float("inf"), timedelta),
        "from_data(2000 deep)": lambda: csmcore.from_data(fuzz.deep(2_000), csmcore.SlaPolicy),
        "is_open(max)": lambda: cal.is_open(end),
        "next_open(min)": lambda: cal.next_open(start),
        "next_close(max)": lambda: cal.next_close(end),
        "open_intervals(min, max)": lambda: list(cal.open_intervals(start, end)),
        "Ticket.create(at=max)": lambda: make_ticket("P-2", at=end),
        "comment(max)": lambda: ticket.comment(end, author="a", author_role=csmcore.Role.AGENT),
        "set_status(max)": lambda: ticket.set_status(end, "open"),
        "tag(min)": lambda: ticket.tag(start, add={"x"}),
        "FixedClock.advance past max": lambda: csmcore.FixedClock(AT).advance(timedelta.max),
        "evaluate(max)": lambda: book.evaluate(ticket, end),
        "SlaBook(calendar=0)": lambda: loose.SlaBook(policies=[], calendar=0),
        "SlaBook(calendars='x')": lambda: csmcore.SlaBook(policies=[], calendar=cal, calendars="x"),
        "weekly(days=0)": lambda: loose.BusinessCalendar.weekly("09:00", "17:00", days=0),
        "set_fields(at, -1)": lambda: loose.Ticket.set_fields(ticket, AT + HOUR, -1),
        "HasTags([['a']])": lambda: csmcore.HasTags([["a"]]),
        "Compare('priority', [], 'high')": lambda: loose.Compare("priority", [], "high"),
        "holidays=b'x'": lambda: csmcore.BusinessCalendar.weekly("09:00", "17:00", holidays=b"x"),
        "Eq huge int, repr": lambda: repr(csmcore.Eq("fields.n", 10**5000)),
        "Not 2000 deep, hash": lambda: hash(nested_not(2_000)),
        "Not 2000 deep, to_data": lambda: csmcore.to_data(nested_not(2_000)),
        "open_store NUL": lambda: open_store("sqlite:///a\x00b.db"),
        "open_store lone surrogate": lambda: open_store("sqlite:///\ud800.db"),
        "sqlite put FixedClock": lambda: store_put("sqlite:///:memory:", csmcore.FixedClock(AT)),
        "memory put FixedClock": lambda: store_put("memory://", csmcore.FixedClock(AT)),
    }


HOUR = timedelta(hours=1)
PROBES = _probes()


@pytest.mark.parametrize("probe", sorted(PROBES))
def test_each_probe_of_issue_11_ends_in_a_csm_error_or_an_answer(probe: str) -> None:
    # check_call fails, naming the probe, for any other exception (or a hang)
    fuzz.check_call(probe, PROBES[probe])


def test_an_override_of_an_exempt_method_stays_unwrapped() -> None:
    class Base:
        @exempt("a primitive for the example")
        def primitive(self) -> int:
            return 1

    @guard_class
    class Derived(Base):
        def primitive(self) -> int:
            raise TypeError("passes through: callers translate")

    assert is_guarded(Derived.primitive)
    with pytest.raises(TypeError) as caught:
        Derived().primitive()
    assert not isinstance(caught.value, CsmError)


# -- what the boundary can say about the value at fault (bad-input audit) ---------------------


@guard_class
@attrs.frozen(kw_only=True)
class _Validated:
    name: str = attrs.field(validator=attrs.validators.instance_of(str))
    size: str = attrs.field(default="s", validator=attrs.validators.in_(("s", "m")))


def test_an_attrs_validator_failure_names_the_field_the_value_and_what_is_accepted() -> None:
    with pytest.raises(InvalidType) as caught:
        _Validated(name=None)  # type: ignore[arg-type]
    assert str(caught.value) == "name=None is a NoneType; expected a str"
    assert (caught.value.field, caught.value.value) == ("name", None)
    with pytest.raises(ValidationError) as refused:
        _Validated(name="a", size="xl")
    assert str(refused.value) == "size='xl' is not one of ('s', 'm')"
    assert refused.value.field == "size"


def test_csmcore_types_with_attrs_validators_name_the_bad_value() -> None:
    from csmcore.calendars import CountryHolidays
    from csmcore.conditions import Always
    from csmcore.escalation import AddTags, EscalationLevel, EscalationRule, PercentUsed

    with pytest.raises(InvalidType, match=r"^country=None is a NoneType; expected a str$"):
        CountryHolidays(country=None)  # type: ignore[arg-type]
    with pytest.raises(InvalidType, match=r"^description=5 is a int; expected a str$"):
        EscalationRule(
            name="r",
            condition=Always(),
            levels=[
                EscalationLevel(
                    trigger=PercentUsed(target="first_reply", percent=50),
                    actions=[AddTags(tags="a")],
                )
            ],
            description=5,  # type: ignore[arg-type]
        )


def _describe(text: object) -> str:
    raise ValidationError(f"text={text!r} is not a description")  # repr fails for a huge int


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (10**5000, "text=<an integer of 5001 digits> is outside the integers of at most 640"),
        ([1, 10**5000], "text=<list> holds <an integer of 5001 digits>; csmcore accepts"),
        ({"k": -(10**5000)}, "text=<dict> holds -<an integer of 5001 digits>; csmcore accepts"),
    ],
    ids=["int", "list", "dict"],
)
def test_an_integer_too_long_to_print_is_named_with_its_argument(value: object, shown: str) -> None:
    entry = guarded(_describe, where="describe")
    with pytest.raises(ValidationError) as caught:
        entry(value)
    assert str(caught.value).startswith(f"describe: {shown}")
    assert caught.value.field == "text"
    with pytest.raises(ValidationError) as by_keyword:
        entry(text=value)
    assert str(by_keyword.value) == str(caught.value)


def test_csmcore_entry_points_name_an_unprintable_integer() -> None:
    from csmcore.sla import SlaMetric, SlaPolicy, SlaTarget
    from csmcore.storage import open_store

    target = SlaTarget(metric=SlaMetric.FIRST_REPLY, within=timedelta(hours=1))
    with pytest.raises(ValidationError, match=r"name=<an integer of 5001 digits> is outside"):
        SlaPolicy(name=10**5000, position=1, targets=[target])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"url=<an integer of 5001 digits> is outside"):
        open_store(10**5000)  # type: ignore[arg-type]
