"""The one place where lower-level failures become the :class:`~csmcore.errors.CsmError` family.

Every public entry point (a constructor, a converter function, a calendar, ticket, SLA or store
method) runs behind this boundary, so that bad input never escapes as a bare ``TypeError``,
``OverflowError`` or ``RecursionError`` raised somewhere below. What crosses the boundary:

==================================================  ==========================================
raised below the entry point                         what the caller gets (original as
                                                     ``__cause__``)
==================================================  ==========================================
a :class:`~csmcore.errors.CsmError`                  itself, unchanged
``KeyboardInterrupt``, ``SystemExit``,               itself, unchanged (not failures of the
``GeneratorExit``, ``MemoryError``,                  input: the process is being stopped or is
``NotImplementedError``                              out of memory, or an extension left an
                                                     abstract method out)
``RecursionError``                                   :class:`~csmcore.errors.LimitError` (input
                                                     nested deeper than csmcore can follow)
``TypeError``, ``AttributeError``                    :class:`~csmcore.errors.InvalidType` (a
                                                     ``ValidationError`` and a ``TypeError``)
``ValueError`` (so ``UnicodeError``),                :class:`~csmcore.errors.ValidationError`
``ArithmeticError`` (so ``OverflowError``),
``LookupError`` (so ``IndexError``, ``KeyError``)
anything else (``OSError``, a bug)                   the entry point's ``fallback``:
                                                     :class:`~csmcore.errors.InternalError` by
                                                     default, ``StorageError`` for stores
==================================================  ==========================================

An entry point given a ``kind`` (the converter: ``SerializationError``) maps every input failure
(the rows from ``RecursionError`` to ``LookupError``) to that class instead.

Three ways to put an entry point behind the boundary, all recognised by :func:`is_guarded` (a
test walks the public API and fails for an entry point that is not):

- :func:`guarded`: a decorator that wraps a function (a generator function is wrapped as a
  generator, so failures while iterating are translated too);
- :func:`guard_class`: wraps ``__init__`` and every public method, class method and static
  method a class defines itself (``@serializable`` applies it to every stored type, and the
  storage base classes to every subclass, so later types and adapters are covered without a
  line of their own);
- :func:`inline`: marks a hot method that catches and calls :func:`translate` inside its own
  body (a ``try`` costs nothing on CPython 3.11+ until something is raised, where a wrapper
  costs a call); the check verifies that the body calls ``translate``.

A method a class should leave unwrapped is marked :func:`exempt` with a reason.

A package puts everything it exports behind the boundary with one line at the end of its
``__init__``: ``guard_exports(__name__)`` (:func:`guard_exports`), so a function or class added
to its ``__all__`` later is covered without a line of its own.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar, cast, overload

from csmcore.errors import (
    INT_RANGE_TEXT,
    MAX_INT,
    CsmError,
    InternalError,
    InvalidType,
    LimitError,
    ValidationError,
    invalid_type,
    show,
)

__all__ = [
    "PASS",
    "exempt",
    "guard_class",
    "guard_iter",
    "guarded",
    "inline",
    "is_guarded",
    "translate",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
C = TypeVar("C", bound=type)

MARK = "__csm_boundary__"
"""Attribute set on a guarded function: the name of the entry point (or ``"exempt: why"``)."""

_MESSAGE_LIMIT = 300

PASS: tuple[type[BaseException], ...] = (CsmError, MemoryError, NotImplementedError)
"""What crosses the boundary unchanged (besides what is not an ``Exception``): csmcore's own
errors, ``MemoryError``, and ``NotImplementedError`` (an abstract method an extension left
out: the extension author's programming error, reported as such). An inline
boundary catches these first::

    try:
        ...
    except PASS:
        raise
    except Exception as err:
        raise translate(err, "BusinessCalendar.add") from err
"""


def _safe_str(err: BaseException) -> str:
    try:
        text = str(err)
    except Exception:  # str() of a huge int or of an odd object may fail in its turn
        return type(err).__name__
    if len(text) > _MESSAGE_LIMIT:
        text = text[:_MESSAGE_LIMIT] + "..."
    return text


def translate(
    err: Exception,
    where: str,
    *,
    kind: type[CsmError] | None = None,
    fallback: type[CsmError] = InternalError,
    message: str | None = None,
) -> CsmError:
    """The :class:`~csmcore.errors.CsmError` that ``err``, raised below the entry point
    ``where``, stands for (see the module's table); raise it ``from err`` after letting
    :data:`PASS` through. ``err`` itself comes back for a member of :data:`PASS`.

    With a ``kind``, a ``CsmError`` of another class becomes a ``kind`` too (the converter
    answers only ``SerializationError``; a constructor's ``ValidationError`` is its cause).
    ``message`` replaces the default text (``"<where>: <type>: <err>"``) when the entry point
    can say more (the converter names the path of the bad value).
    """
    if isinstance(err, MemoryError | NotImplementedError) or (
        isinstance(err, CsmError) and (kind is None or isinstance(err, kind))
    ):
        return err  # type: ignore[return-value]
    detail = message or f"{where}: {type(err).__name__}: {_safe_str(err)}"
    if isinstance(err, RecursionError):
        if kind is not None:
            return kind(detail)
        return LimitError(
            message
            or f"{where}: the input nests deeper than csmcore can follow "
            f"(RecursionError); see the limits in docs/limits.md"
        )
    if kind is not None and isinstance(err, CsmError):
        return kind(message or f"{where}: {_safe_str(err)}")
    if isinstance(err, TypeError | AttributeError):
        return (kind or InvalidType)(detail)
    if isinstance(err, ValueError | ArithmeticError | LookupError):
        return (kind or ValidationError)(detail)
    if fallback is InternalError and message is None:
        detail += " (an unexpected failure inside csmcore: please report it with the traceback)"
    return fallback(detail)


def _accepted(expected: object) -> str:
    """``a str`` / ``a str or a int`` for the type(s) an attrs ``instance_of`` wanted."""
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(f"a {getattr(k, '__name__', k)}" for k in kinds)


_SEARCH_DEPTH = 4
_SEARCH_ITEMS = 1_000


def _huge_int_in(value: object, depth: int = 0) -> int | None:
    """The first integer of more than 640 digits in ``value`` (looking a few levels into
    lists, tuples, sets and dicts, keys too), or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if abs(value) > MAX_INT else None
    if depth >= _SEARCH_DEPTH:
        return None
    items: Any
    if isinstance(value, dict):
        items = (part for pair in value.items() for part in pair)
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    else:
        return None
    for index, item in enumerate(items):
        if index >= _SEARCH_ITEMS:
            break
        found = _huge_int_in(item, depth + 1)
        if found is not None:
            return found
    return None


def _arguments(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``(name, value)`` of each argument of the call ``fn(*args, **kwargs)`` but ``self``."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs).arguments
    except (TypeError, ValueError):
        bound = {f"argument {i + 1}": a for i, a in enumerate(args)} | kwargs
    for name, value in bound.items():
        if name in ("self", "cls"):
            continue
        yield name, value


def explain(
    err: Exception,
    where: str,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    kind: type[CsmError] | None = None,
) -> CsmError | None:
    """A :class:`~csmcore.errors.CsmError` naming the argument and value at fault, for two
    failures that name neither themselves (None for any other ``err``):

    - an ``attrs`` validator's refusal (``instance_of``, ``in_``), whose message is attrs'
      own, with the field's whole definition;
    - the ``ValueError`` Python raises when a message, a key or a document turns an integer of
      more than 4,300 digits into text: the argument that holds it is named, with the size.
    """
    import attrs

    error: CsmError | None = None
    if len(err.args) == 4 and isinstance(err.args[1], attrs.Attribute):
        field = err.args[1].alias or err.args[1].name
        value = err.args[3]
        if isinstance(err, TypeError):
            error = invalid_type(field, value, _accepted(err.args[2]))
        elif isinstance(err, ValueError):
            error = ValidationError(
                f"{field}={show(value)} is not one of {show(err.args[2])}",
                field=field,
                value=value,
            )
    elif isinstance(err, ValueError) and "integer string conversion" in _safe_str(err):
        for name, value in _arguments(fn, args, kwargs):
            huge = _huge_int_in(value)
            if huge is None:
                continue
            if huge is value:
                text = f"{where}: {name}={show(value)} is outside the {INT_RANGE_TEXT}"
            else:
                text = (
                    f"{where}: {name}={show(value)} holds {show(huge)}; csmcore accepts "
                    f"{INT_RANGE_TEXT}"
                )
            error = ValidationError(text, field=name, value=value)
            break
    if error is not None and kind is not None and not isinstance(error, kind):
        return kind(str(error), field=error.field, value=error.value)
    return error


def guard_iter(iterator: Iterator[T], where: str, **how: Any) -> Generator[T, None, Any]:
    """``iterator``, with what it raises while iterating translated as at ``where`` (for an
    entry point that checks its arguments, then returns a lazy iterator)."""
    try:
        return (yield from iterator)
    except PASS:
        raise
    except Exception as err:
        raise translate(err, where, **how) from err


def _where(fn: Callable[..., Any], where: str | None) -> str:
    return where or str(getattr(fn, "__qualname__", getattr(fn, "__name__", repr(fn))))


@overload
def guarded(fn: F, /) -> F: ...


@overload
def guarded(
    fn: None = None,
    /,
    *,
    where: str | None = None,
    kind: type[CsmError] | None = None,
    fallback: type[CsmError] = InternalError,
) -> Callable[[F], F]: ...


@overload
def guarded(
    fn: F,
    /,
    *,
    where: str | None = None,
    kind: type[CsmError] | None = None,
    fallback: type[CsmError] = InternalError,
) -> F: ...


def guarded(
    fn: F | None = None,
    /,
    *,
    where: str | None = None,
    kind: type[CsmError] | None = None,
    fallback: type[CsmError] = InternalError,
) -> Any:
    """Put the function ``fn`` behind the boundary (usable bare or with arguments)."""

    def wrap(fn: F) -> F:
        if is_guarded(fn):
            return fn
        name = _where(fn, where)
        wrapper: Callable[..., Any]
        if inspect.isgeneratorfunction(fn):

            def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, None, Any]:
                try:
                    return (yield from fn(*args, **kwargs))
                except PASS:
                    raise
                except Exception as err:
                    raise (
                        explain(err, name, fn, args, kwargs, kind)
                        or translate(err, name, kind=kind, fallback=fallback)
                    ) from err

            wrapper = gen_wrapper
        else:

            def call_wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return fn(*args, **kwargs)
                except PASS:
                    raise
                except Exception as err:
                    raise (
                        explain(err, name, fn, args, kwargs, kind)
                        or translate(err, name, kind=kind, fallback=fallback)
                    ) from err

            wrapper = call_wrapper
        functools.update_wrapper(wrapper, fn)
        setattr(wrapper, MARK, name)
        return cast(F, wrapper)

    return wrap if fn is None else wrap(fn)


def inline(where: str) -> Callable[[F], F]:
    """Mark ``fn`` as translating inside its own body (it must call :func:`translate`)."""

    def mark(fn: F) -> F:
        if "translate" not in fn.__code__.co_names:
            raise TypeError(f"{fn.__qualname__} is marked inline but never calls translate()")
        setattr(fn, MARK, where)
        return fn

    return mark


def exempt(reason: str) -> Callable[[F], F]:
    """Leave ``fn`` unwrapped by :func:`guard_class`, saying why (a pure accessor, a hook or
    primitive that entry points call behind their own boundary, ...). Overrides of it in
    subclasses stay unwrapped too."""

    def mark(fn: F) -> F:
        setattr(fn, MARK, f"exempt: {reason}")
        return fn

    return mark


def _exempt_above(cls: type, name: str) -> str:
    """The exemption of the nearest base class's ``name``, or ``""``."""
    for base in cls.__mro__[1:]:
        member = vars(base).get(name)
        if member is not None:
            if isinstance(member, classmethod | staticmethod):
                member = member.__func__
            mark = str(getattr(member, MARK, ""))
            return mark if mark.startswith("exempt:") else ""
    return ""


def is_guarded(fn: object) -> bool:
    """True when ``fn`` (a function, method, class method or static method) is behind the
    boundary or explicitly exempt."""
    if isinstance(fn, classmethod | staticmethod):
        fn = fn.__func__
    fn = getattr(fn, "__func__", fn)  # a bound method
    return isinstance(getattr(fn, MARK, None), str)


@overload
def guard_class(cls: C, /) -> C: ...


@overload
def guard_class(
    cls: None = None, /, *, fallback: type[CsmError] = InternalError
) -> Callable[[C], C]: ...


@overload
def guard_class(cls: C, /, *, fallback: type[CsmError] = InternalError) -> C: ...


def guard_class(
    cls: C | None = None,
    /,
    *,
    fallback: type[CsmError] = InternalError,
) -> Any:
    """Wrap ``__init__`` and the public methods ``cls`` defines itself (see the module)."""

    def wrap(cls: C) -> C:
        done: dict[int, Any] = {}  # an alias (``open = create``) stays the same object
        for name, member in list(vars(cls).items()):
            if id(member) in done:
                setattr(cls, name, done[id(member)])
                continue
            if name != "__init__" and name.startswith("_"):
                continue
            reason = _exempt_above(cls, name)
            if reason:  # an override of a method a base class exempts stays unwrapped
                inner = getattr(member, "__func__", member)
                if inspect.isfunction(inner) and not is_guarded(inner):
                    setattr(inner, MARK, reason)
                continue
            where = f"{cls.__name__}.{name}" if name != "__init__" else cls.__name__
            if isinstance(member, classmethod | staticmethod):
                inner = member.__func__
                if not is_guarded(inner):
                    done[id(member)] = type(member)(guarded(inner, where=where, fallback=fallback))
                    setattr(cls, name, done[id(member)])
            elif inspect.isfunction(member) and not is_guarded(member):
                done[id(member)] = guarded(member, where=where, fallback=fallback)
                setattr(cls, name, done[id(member)])
        return cls

    return wrap if cls is None else wrap(cls)


def guard_exports(module_name: str, /, *, fallback: type[CsmError] = InternalError) -> None:
    """Put every function and class that the module ``module_name`` lists in ``__all__`` behind
    the boundary: a function is replaced, in that module's namespace, by its :func:`guarded`
    wrapper (callers inside the package keep calling the original); a class is guarded in place
    with :func:`guard_class`. Modules, enumerations, exceptions, protocols, constants and what
    is already guarded are left as they are. Call it at the end of a package's ``__init__``.
    """
    import enum
    import sys
    from typing import Protocol

    module = sys.modules[module_name]
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if inspect.isclass(obj):
            if (
                issubclass(obj, BaseException | enum.Enum)
                or Protocol in obj.__mro__
                or getattr(obj, "_is_protocol", False)
                or not obj.__module__.startswith("csmcore")
            ):
                continue
            guard_class(obj, fallback=fallback)
        elif inspect.isfunction(obj) and not is_guarded(obj):
            setattr(module, name, guarded(obj, where=name, fallback=fallback))
