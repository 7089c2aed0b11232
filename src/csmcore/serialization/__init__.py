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

``to_document(obj)`` wraps ``to_data(obj)`` in an envelope that names the type by its tag and
records the schema version of the payload; ``from_document(doc)`` reads it back, including the
documents older releases wrote (a module path as the type, no schema), and runs the upcasters
of an older schema (see ``docs/serialization.md``):

>>> doc = to_document(cal)
>>> doc["type"], doc["schema"]
('business_calendar', 1)
>>> from_document(json.loads(json.dumps(doc)), BusinessCalendar) == cal
True
"""

from __future__ import annotations

from csmcore.serialization._converter import (
    MAX_NESTING_DEPTH,
    check_depth,
    converter,
    describe_error,
    from_data,
    to_data,
)
from csmcore.serialization._document import from_document, to_document
from csmcore.serialization._registry import (
    TypeInfo,
    Upcaster,
    registered_types,
    schema_of,
    schema_versions,
    serializable,
    tag_of,
    type_info,
    upcast,
    upcast_tagged,
)

__all__ = [
    "MAX_NESTING_DEPTH",
    "TypeInfo",
    "Upcaster",
    "check_depth",
    "converter",
    "describe_error",
    "from_data",
    "from_document",
    "registered_types",
    "schema_of",
    "schema_versions",
    "serializable",
    "tag_of",
    "to_data",
    "to_document",
    "type_info",
    "upcast",
    "upcast_tagged",
]
