"""How the SQL stores write custom field names and numbers into ``csm_tickets.fields`` so that
conditions pushed down to SQL compare them as Python does (private; :mod:`._sql` uses them)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal

__all__ = [
    "DECIMAL_COMPARISONS",
    "EXACT_FLOAT",
    "decimal_bounds",
    "field_key",
    "json_number",
]


_KEY_ESCAPES = re.compile(r'[%"\\\x00-\x1f]')
"""What a custom field name cannot hold as it is in ``csm_tickets.fields``: SQLite's JSON paths
compare a label with the key's text as written (no escapes), so a key has to be written without
any JSON escape: ``%``, ``"``, ``\\`` and control characters are percent-encoded."""

EXACT_FLOAT = 2.0**53
"""From here on every float is a whole number, written in ``fields`` as that exact integer
(its shortest ``repr`` may be another number: ``1e+23`` is 99999999999999991611392)."""


_KEYS: dict[str, str] = {}
"""Keys already worked out (field names repeat across tickets); at most 4,096."""


def field_key(name: str) -> str:
    """The key of the custom field ``name`` in ``csm_tickets.fields`` (``name`` itself unless
    it holds ``%``, ``"``, ``\\`` or a control character, which are percent-encoded)."""
    key = _KEYS.get(name)
    if key is None:
        if _KEY_ESCAPES.search(name) is None:
            key = name
        else:
            key = _KEY_ESCAPES.sub(lambda m: f"%{ord(m.group()):02X}", name)
        if len(_KEYS) < 4096:
            _KEYS[name] = key
    return key


def json_number(value: int | float) -> int | float:
    """A number as ``fields`` holds it: whole floats of 2**53 and more as the exact integer, so
    that both backends compare it with integers as Python does."""
    if isinstance(value, float) and abs(value) >= EXACT_FLOAT:
        return int(value)
    return value


_HUGE_DIGITS = 4000
"""Digits (before the point) beyond which :func:`decimal_bounds` stops being exact: Python
writes no integer of more than 4,300 digits as text by default."""


def decimal_bounds(value: Decimal) -> tuple[int | float, int | float]:
    """Two numbers ``lo <= value <= hi`` (as :func:`json_number` writes them) with no int or
    float strictly between them other than ``value`` itself: ``lo == hi == value`` when an int
    or a float equals ``value``; else the int or float just below and just above it.

    Then, for any int or float ``x``, ``value == x`` is ``lo = x AND hi = x``, ``value < x`` is
    ``hi <= x AND lo < x``, ``value <= x`` is ``hi <= x``, ``value > x`` is ``lo >= x AND
    hi > x`` and ``value >= x`` is ``lo >= x`` (:data:`DECIMAL_COMPARISONS`).

    >>> decimal_bounds(Decimal("10.50")), decimal_bounds(Decimal("2E+1"))
    ((10.5, 10.5), (20, 20))
    >>> decimal_bounds(Decimal("0.1"))
    (0.09999999999999999, 0.1)
    >>> decimal_bounds(Decimal("9007199254740993.5"))
    (9007199254740993, 9007199254740994)

    A ``Decimal`` of more than 4,000 digits before the point gets the bounds of 10**4000 (its
    sign kept): it compares as Python does with every number of fewer digits.
    """
    if value.adjusted() >= _HUGE_DIGITS:
        edge = 10**_HUGE_DIGITS
        return (edge, edge + 1) if value > 0 else (-edge - 1, -edge)
    if value == value.to_integral_value():
        whole = int(value)
        return whole, whole
    if abs(value) >= EXACT_FLOAT:  # every float here is whole: the ints around it
        below = math.floor(value)
        return below, below + 1
    near = float(value)  # correctly rounded, so the float next to it is on the other side
    if Decimal(near) == value:
        return near, near
    if Decimal(near) < value:
        return near, math.nextafter(near, math.inf)
    return math.nextafter(near, -math.inf), near


DECIMAL_COMPARISONS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "<": (("hi", "<="), ("lo", "<")),
    "<=": (("hi", "<="),),
    ">": (("lo", ">="), ("hi", ">")),
    ">=": (("lo", ">="),),
}
"""``decimal op x`` for an int or float ``x``, as tests on the bounds of
:func:`decimal_bounds`: each one ``(bound, operator)``, all of them true."""
