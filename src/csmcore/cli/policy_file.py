"""SLA policy and calendar files for the command line (TOML or JSON), and the default book.

A policy file holds a list of policies and, optionally, the business calendar their targets
count in. The policies and the calendar are written as csmcore's serialized data
(:mod:`csmcore.serialization`), with one convenience: a duration (``within``) may be written as
text such as ``"4h"``, ``"1d 4h"``, ``"90m"``, ``"45s"`` or ISO 8601 ``"PT4H"``; a bare number
is seconds. A day ``d`` is 24 hours, in business time too: ``"1d"`` of a 09:00-17:00 calendar is
three working days.

.. code-block:: toml

    [calendar]                       # optional: default Mon-Fri 09:00-17:00 in --timezone
    timezone = "Europe/Rome"
    hours = { mon = [["09:00", "18:00"]], tue = [["09:00", "18:00"]] }
    holidays = ["2025-12-25"]

    [[policies]]
    name = "standard"
    position = 10
    default = true

    [[policies.targets]]
    metric = "first_reply"
    within = "4h"
    priority = "high"

Every fault names the file and the path inside it (``policy.toml: policies[0].targets[1].within:
...``) and raises :class:`~csmcore.errors.ValidationError`.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> path = folder / "policy.toml"
>>> _ = path.write_text('[[policies]]\\nname = "p"\\nposition = 1\\ndefault = true\\n'
...                     '[[policies.targets]]\\nmetric = "first_reply"\\nwithin = "2h 30m"\\n')
>>> book = load_book(path, timezone="Europe/Rome")
>>> book.policies[0].targets[0].within
datetime.timedelta(seconds=9000)
>>> _ = path.write_text('[[policies]]\\nname = "p"\\nposition = 1\\ndefault = true\\n'
...                     '[[policies.targets]]\\nmetric = "first_reply"\\nwithin = "soon"\\n')
>>> load_book(path)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
csmcore.errors.ValidationError: policy.toml: policies[0].targets[0].within: 'soon' is not ...
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from csmcore.calendars import BusinessCalendar
from csmcore.cli._text import not_utf8
from csmcore.errors import CsmError, ValidationError
from csmcore.serialization import from_data, to_data
from csmcore.sla import SlaBook, SlaMetric, SlaPolicy, SlaTarget

__all__ = ["default_book", "default_calendar", "load_book", "load_calendar", "parse_duration"]

_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(d|h|m|s)\s*", re.IGNORECASE)
_ISO = re.compile(
    r"P(?:(\d+)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_ACCEPTED = "accepted: '4h', '1d 2h 30m', '90s', ISO 8601 'PT4H', or a number of seconds"


def parse_duration(value: object, where: str = "duration") -> timedelta:
    """The positive or zero duration ``value`` names (text or a number of seconds).

    >>> parse_duration("1d 2h 30m"), parse_duration("PT45M"), parse_duration(90)
    (datetime.timedelta(days=1, seconds=9000), datetime.timedelta(seconds=2700), \
datetime.timedelta(seconds=90))
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValidationError(f"{where}: {value!r} is not a duration; {_ACCEPTED}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        iso = _ISO.match(text)
        if iso is not None and text.upper() not in ("P", "PT"):
            days, hours, minutes, secs = (float(g) if g else 0.0 for g in iso.groups())
            seconds = days * 86400 + hours * 3600 + minutes * 60 + secs
        else:
            parts = _PART.findall(text)
            if not parts or "".join(f"{n}{u}" for n, u in parts) != re.sub(r"\s+", "", text):
                raise ValidationError(f"{where}: {value!r} is not a duration; {_ACCEPTED}")
            seconds = sum(float(n) * _UNITS[u.lower()] for n, u in parts)
    if not 0 <= seconds <= 10**9 or seconds != seconds:
        raise ValidationError(
            f"{where}: {value!r} is out of range; expected 0 to 1,000,000,000 seconds"
        )
    return timedelta(seconds=seconds)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Notepad) is skipped
    except OSError as err:
        raise ValidationError(f"{path}: cannot be read: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise ValidationError(not_utf8(path, err)) from err
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as err:
            raise ValidationError(f"{path.name}: is not valid JSON: {err}") from err
        except RecursionError:
            raise _too_deep(path.name) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValidationError(f"{path.name}: is not valid TOML: {err}") from err
    except RecursionError:
        raise _too_deep(path.name) from None


def _too_deep(file: str) -> ValidationError:
    return ValidationError(
        f"{file}: is nested too deeply; expected tables of policies, targets and conditions"
    )


def _durations(data: Any, where: str) -> Any:
    """``data`` with every ``within`` written as text or seconds turned into converter data."""
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            here = f"{where}.{key}" if where else str(key)
            if key == "within" and not isinstance(value, Mapping):
                out[key] = to_data(parse_duration(value, here))
            else:
                out[key] = _durations(value, here)
        return out
    if isinstance(data, list):
        return [_durations(item, f"{where}[{i}]") for i, item in enumerate(data)]
    return data


def _structure(data: Any, cls: type[Any], where: str, file: str) -> Any:
    try:
        return from_data(data, cls)
    except CsmError as err:
        raise ValidationError(f"{file}: {where}: {err}") from err


def default_calendar(timezone: str = "UTC") -> BusinessCalendar:
    """Monday to Friday, 09:00 to 17:00 in ``timezone``, no holidays: the calendar used when
    none is given."""
    return BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone=timezone)


def default_book(calendar: BusinessCalendar) -> SlaBook:
    """The book used when no policy file is given: first reply and resolution by priority.

    First reply within 1, 4, 8 and 24 business hours and resolution (``total_resolution``)
    within 8, 24, 40 and 80 business hours for urgent, high, normal and low tickets: targets in
    the range the established help desks ship as examples (Zendesk's and Freshdesk's sample
    policies), meant as a starting point, not a recommendation.
    """
    hour = timedelta(hours=1)
    reply = {"urgent": 1, "high": 4, "normal": 8, "low": 24}
    resolve = {"urgent": 8, "high": 24, "normal": 40, "low": 80}
    targets = [
        SlaTarget(metric=SlaMetric.FIRST_REPLY, within=n * hour, priority=p)
        for p, n in reply.items()
    ] + [
        SlaTarget(metric=SlaMetric.TOTAL_RESOLUTION, within=n * hour, priority=p)
        for p, n in resolve.items()
    ]
    policy = SlaPolicy(name="default", position=1000, default=True, targets=targets)
    return SlaBook(policies=[policy], calendar=calendar)


def load_calendar(path: Path, *, timezone: str | None = None) -> BusinessCalendar:
    """The calendar in ``path`` (TOML or JSON: the calendar's data, or a table ``calendar``).

    ``timezone`` replaces the file's zone when given.
    """
    data = _read(path)
    if isinstance(data, Mapping) and "calendar" in data:
        data, where = data["calendar"], "calendar"
    else:
        where = "(top level)"
    return _calendar(data, where, path.name, timezone)


def _calendar(data: Any, where: str, file: str, timezone: str | None) -> BusinessCalendar:
    if timezone is not None and isinstance(data, Mapping):
        data = {**data, "timezone": timezone}
    calendar: BusinessCalendar = _structure(data, BusinessCalendar, where, file)
    return calendar


def load_book(
    path: Path | None,
    *,
    calendar: BusinessCalendar | None = None,
    timezone: str = "UTC",
) -> SlaBook:
    """The SLA book of the policy file ``path`` (None: :func:`default_book`).

    The calendar is, in order: ``calendar`` when given, the file's own ``calendar`` table, else
    :func:`default_calendar` in ``timezone``. Raises ValidationError naming the file and path.
    """
    if path is None:
        return default_book(calendar or default_calendar(timezone))
    file = path.name
    data = _read(path)
    if not isinstance(data, Mapping):
        raise ValidationError(
            f"{file}: expected a table with 'policies', got {type(data).__name__}"
        )
    unknown = sorted(set(data) - {"policies", "calendar"})
    if unknown:
        raise ValidationError(
            f"{file}: unknown key(s) {', '.join(map(repr, unknown))}; accepted: policies, calendar"
        )
    raw = data.get("policies")
    if not isinstance(raw, list) or not raw:
        raise ValidationError(f"{file}: 'policies' must be a non-empty list of policies")
    policies = []
    for i, item in enumerate(raw):
        try:
            item = _durations(item, f"policies[{i}]")
        except ValidationError as err:
            raise ValidationError(f"{file}: {err}") from err
        except RecursionError:
            raise _too_deep(file) from None
        policies.append(_structure(item, SlaPolicy, f"policies[{i}]", file))
    if calendar is None:
        calendar = (
            _calendar(data["calendar"], "calendar", file, None)
            if "calendar" in data
            else default_calendar(timezone)
        )
    try:
        return SlaBook(policies=policies, calendar=calendar)
    except CsmError as err:
        raise ValidationError(f"{file}: {err}") from err
