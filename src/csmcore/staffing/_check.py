"""Argument checks shared by the staffing functions (messages name the value and the range)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import attrs

from csmcore._values import show
from csmcore.errors import ValidationError, invalid_type

_US = timedelta(microseconds=1)
_MAX_COUNT = 10**15
"""The most agents a count may hold: far beyond any queue, and exact as a float."""


def number(value: object, argument: str) -> float:
    """``value`` as a finite float (int and float accepted, bool refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_type(argument, value, "a number (int or float)")
    try:
        result = float(value)
    except OverflowError:  # an int beyond the float range (about 1.8e308)
        result = math.inf
    if not math.isfinite(result):
        raise ValidationError(
            f"{argument}={show(value)} is not finite; expected a finite number",
            field=argument,
            value=value,
        )
    return result


def non_negative(value: object, argument: str) -> float:
    """A finite number >= 0."""
    result = number(value, argument)
    if result < 0:
        raise ValidationError(
            f"{argument}={show(value)} is negative; expected a number >= 0",
            field=argument,
            value=value,
        )
    return result


def count(value: object, argument: str) -> int:
    """An int >= 0 (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(argument, value, "an int (a number of agents)")
    if value < 0:
        raise ValidationError(
            f"{argument}={value!r} is negative; expected an int >= 0",
            field=argument,
            value=value,
        )
    if value > _MAX_COUNT:
        raise ValidationError(
            f"{argument}={show(value)} is too large; expected an int <= {_MAX_COUNT:.0e}",
            field=argument,
            value=value,
        )
    return value


def seconds(value: object, argument: str, *, positive: bool) -> float:
    """A timedelta's length in seconds; > 0 when ``positive``, else >= 0."""
    if not isinstance(value, timedelta):
        raise invalid_type(argument, value, "a datetime.timedelta")
    us = value // _US
    if us < 0 or (positive and us == 0):
        accepted = "a positive duration" if positive else "a duration >= 0"
        raise ValidationError(
            f"{argument}={show(value)} is not accepted; expected {accepted}",
            field=argument,
            value=value,
        )
    return us / 1e6


def fraction(value: object, argument: str, *, low_closed: bool, high_closed: bool) -> float:
    """A number within (0, 1) with the ends included as asked."""
    result = number(value, argument)
    ok_low = result >= 0 if low_closed else result > 0
    ok_high = result <= 1 if high_closed else result < 1
    if not (ok_low and ok_high):
        interval = f"{'[' if low_closed else '('}0, 1{']' if high_closed else ')'}"
        raise ValidationError(
            f"{argument}={show(value)} is outside {interval}; expected a fraction in {interval} "
            f"(0.8 for 80%)",
            field=argument,
            value=value,
        )
    return result


# -- attrs validators of the result values (a result built by hand is checked as well)

T = TypeVar("T")


def builder(cls: type[T]) -> Callable[..., T]:
    """A function making an instance of the slotted, frozen attrs class ``cls`` from its field
    values in declaration order, without running its validators.

    For results the staffing functions computed, valid by construction, where the validators
    would cost more than the Erlang arithmetic for small traffic. It writes through the slots'
    descriptors, as attrs' own ``__init__`` does for a frozen class.
    """
    setters = tuple(getattr(cls, field.name).__set__ for field in attrs.fields(cls))  # type: ignore[arg-type]
    new = object.__new__

    def build(*values: Any) -> T:
        instance = new(cls)
        for setter, value in zip(setters, values, strict=True):
            setter(instance, value)
        return instance

    return build


def v_probability(_instance: object, attribute: Any, value: Any) -> None:
    """A number in [0, 1]."""
    fraction(value, attribute.name, low_closed=True, high_closed=True)


def v_non_negative(_instance: object, attribute: Any, value: Any) -> None:
    """A finite number >= 0."""
    non_negative(value, attribute.name)


def v_count(_instance: object, attribute: Any, value: Any) -> None:
    """An int >= 0."""
    count(value, attribute.name)


def v_duration(_instance: object, attribute: Any, value: Any) -> None:
    """A timedelta >= 0."""
    seconds(value, attribute.name, positive=False)
