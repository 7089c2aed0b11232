"""The one cattrs converter that turns csmcore objects into JSON-safe data and back, and the
registry of the stable type tags that stored data uses to name csmcore types.

``to_data(obj)`` gives plain ``dict`` / ``list`` / ``str`` / ``int`` / ``float`` / ``bool`` /
``None`` values that ``json.dumps`` accepts; ``from_data(data, cls)`` rebuilds an equal object.
Malformed data raises :class:`~csmcore.errors.SerializationError` whose message names the path
of every bad value (``$.hours.mon[0]``).

Domain modules register their hooks on :data:`converter` and declare their tags with
:func:`serializable` when they are imported; importing ``csmcore`` registers all of them.

>>> import json
>>> from csmcore import BusinessCalendar
>>> cal = BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="Europe/Berlin")
>>> data = to_data(cal)
>>> from_data(json.loads(json.dumps(data)), BusinessCalendar) == cal
True
>>> tag_of(BusinessCalendar)
'business_calendar'
"""

from __future__ import annotations

from csmcore.serialization._converter import converter, describe_error, from_data, to_data
from csmcore.serialization._registry import (
    TypeInfo,
    Upcaster,
    registered_types,
    serializable,
    tag_of,
    type_info,
    upcast,
)

__all__ = [
    "TypeInfo",
    "Upcaster",
    "converter",
    "describe_error",
    "from_data",
    "registered_types",
    "serializable",
    "tag_of",
    "to_data",
    "type_info",
    "upcast",
]
