"""Helpers of :mod:`csmcore.testing.strategies`: the checks of strategy arguments (made when a
strategy function is called, as Hypothesis's own strategies do) and the strategies derived from
an event type's declaration (its attrs fields and their types).

Every bad argument raises :class:`hypothesis.errors.InvalidArgument` naming the argument(s).
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import attrs
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from csmcore.errors import CsmError
from csmcore.tickets import FrozenMap, TicketEventBase

__all__ = [
    "RANGE",
    "check_bool",
    "check_classes",
    "check_instant",
    "check_optional_bool",
    "check_size",
    "check_strategy",
    "check_text",
    "check_timedelta",
    "check_whole",
    "derived_event_strategy",
    "reuse",
]

P = ParamSpec("P")
R = TypeVar("R")

_REUSED = 256
"""How many strategies a :func:`reuse` factory keeps (per factory), least recently used out."""


def _key_part(value: object) -> tuple[type, object]:
    # the type too: True == 1 == 1.0, and an argument the factory refuses must never find the
    # strategy of one it accepted
    return (type(value), value)


def reuse(factory: Callable[P, R]) -> Callable[P, R]:
    """The strategy ``factory`` returns, built once per arguments and then returned again.

    Hypothesis validates and analyses a strategy object the first time it draws from it; a
    composite strategy that called a factory at every draw built and validated the whole
    strategy again each time, which made the large strategies (books, SLA changes, backtests)
    fail Hypothesis's ``too_slow`` health check. Arguments that cannot be hashed (a list of
    kinds) go straight to ``factory``; the factory still checks every argument the first time.
    """
    cache: OrderedDict[object, R] = OrderedDict()

    @functools.wraps(factory)
    def reused(*args: P.args, **kwargs: P.kwargs) -> R:
        key = (
            tuple(_key_part(a) for a in args),
            tuple(sorted((k, _key_part(v)) for k, v in kwargs.items())),
        )
        try:
            found = cache.get(key)
        except TypeError:  # an unhashable argument
            return factory(*args, **kwargs)
        if found is None:
            found = cache[key] = factory(*args, **kwargs)
            if len(cache) > _REUSED:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        return found

    return reused


def check_whole(name: str, value: object, minimum: int) -> int:
    """``value`` as a whole number >= ``minimum``; InvalidArgument naming ``name`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{name}={value!r} must be a whole number >= {minimum}")
    return value


def check_size(
    min_name: str, min_value: object, max_name: str, max_value: object, *, minimum: int = 0
) -> None:
    """Both bounds whole numbers >= ``minimum`` (``max_value`` may be None: no bound), and
    ``min_value <= max_value``; InvalidArgument naming both otherwise."""
    low = check_whole(min_name, min_value, minimum)
    if max_value is None:
        return
    high = check_whole(max_name, max_value, minimum)
    if low > high:
        raise InvalidArgument(
            f"{min_name}={low!r} is greater than {max_name}={high!r}; "
            f"expected {min_name} <= {max_name}"
        )


def check_strategy(name: str, value: object) -> None:
    """``value`` is None or a Hypothesis strategy."""
    if value is not None and not isinstance(value, st.SearchStrategy):
        raise InvalidArgument(
            f"{name}={value!r} is not a Hypothesis strategy (or None); pass e.g. st.just(...)"
        )


def check_instant(name: str, value: object) -> datetime:
    """``value`` is an aware datetime."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidArgument(f"{name}={value!r} is not an aware datetime")
    return value


def check_timedelta(name: str, value: object) -> timedelta:
    """``value`` is a timedelta of zero or more."""
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidArgument(f"{name}={value!r} is not a timedelta of zero or more")
    return value


def check_bool(name: str, value: object) -> None:
    """``value`` is True or False."""
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} is not a bool (True or False)")


def check_optional_bool(name: str, value: object) -> None:
    """``value`` is None, True or False."""
    if value is not None and not isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} is neither None nor a bool")


def check_text(name: str, value: object) -> None:
    """``value`` is a string."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{name}={value!r} is not a string")


def check_classes(name: str, value: object, known: Collection[type], what: str) -> list[type]:
    """``value`` is a non-empty collection of classes among ``known`` (``what`` names them)."""
    if isinstance(value, str | bytes) or not isinstance(value, Collection):
        raise InvalidArgument(f"{name}={value!r} is not a collection of {what}")
    chosen = list(value)
    if not chosen or any(c not in known for c in chosen):
        raise InvalidArgument(
            f"{name}={value!r}: expected {what} among {', '.join(k.__name__ for k in known)}"
        )
    return chosen


# --------------------------------------------------------------------------------------------
# Strategies derived from an event declaration
# --------------------------------------------------------------------------------------------


Scalars = Callable[[], st.SearchStrategy[Any]]

RANGE = "csmcore.range"
"""The attrs metadata key of an event's int field giving its accepted ``(low, high)`` range,
which the derived strategy draws from (the event's own validators still decide)."""


def _for_type(tp: Any, parts: Mapping[str, Scalars]) -> st.SearchStrategy[Any]:
    """A strategy for values of the annotation ``tp`` (names, tags and field values drawn
    the way csmcore's own strategies draw them)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([_for_type(arg, parts) for arg in typing.get_args(tp)])
    if tp is type(None) or tp is None:
        return st.none()
    if tp is str:
        return parts["names"]()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(-1000, 1000)
    if tp is float:
        return st.floats(allow_nan=False, allow_infinity=False, width=32)
    if tp is datetime:
        return parts["instants"]()
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from(list(tp))
    if origin is frozenset:
        return st.frozensets(parts["tags"](), max_size=3)
    if origin is FrozenMap or tp is FrozenMap:
        return st.dictionaries(parts["field_names"](), parts["field_values"](), max_size=3)
    return st.from_type(tp)


def derived_event_strategy(
    cls: type[TicketEventBase], at: st.SearchStrategy[datetime], parts: Mapping[str, Scalars]
) -> st.SearchStrategy[TicketEventBase]:
    """Valid instances of the declared event ``cls``: each init field drawn from its annotated
    type; draws its validators refuse are rejected (so give a tailored strategy to an event
    whose fields take a narrow range, or declare an int field's range in its attrs metadata:
    ``attrs.field(metadata={RANGE: (low, high)})``, :data:`RANGE` being ``"csmcore.range"``)."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in attrs.fields(cls):
        if not field.init or field.name == "at":
            continue
        bounds = field.metadata.get(RANGE)
        if bounds is not None:
            fields[field.name] = st.integers(*bounds)
        else:
            fields[field.name] = _for_type(hints.get(field.name, Any), parts)

    @st.composite
    def build(draw: st.DrawFn) -> TicketEventBase:
        kwargs = {name: draw(strategy) for name, strategy in fields.items()}
        try:
            return cls(at=draw(at), **kwargs)
        except (CsmError, TypeError, ValueError):
            assume(False)  # a value the event's validators refuse: not a valid draw
            raise  # pragma: no cover - assume(False) does not return

    return build()
