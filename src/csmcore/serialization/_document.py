"""The document envelope: an object as ``{"type": tag, "schema": n, "data": to_data(obj)}``.

The envelope names the object's type by its stable tag and records the schema version of the
payload, so that a reader can rebuild the object without being told what it is, resolve the
names older releases wrote (module paths such as ``"csmcore.sla:SlaPolicy"``), and bring an
older payload up to date with the tag's upcasters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar, overload

from csmcore._boundary import guarded
from csmcore._values import check_keys
from csmcore.errors import SerializationError
from csmcore.serialization._converter import from_data, to_data
from csmcore.serialization._registry import schema_of, tag_of, type_info, upcast

__all__ = ["from_document", "to_document"]

T = TypeVar("T")

_KEYS: Final = frozenset({"type", "schema", "data"})


@guarded
def to_document(obj: object) -> dict[str, Any]:
    """``obj`` in its envelope: ``{"type": tag, "schema": n, "data": to_data(obj)}``.

    ``tag`` is the stable tag of ``type(obj)`` and ``n`` the schema version this release writes
    for it; the result is JSON-safe and :func:`from_document` turns it back into an equal object.
    Raises :class:`~csmcore.errors.SerializationError` for an object whose type has no tag
    (declare one with :func:`~csmcore.serialization.serializable`) or that cannot be serialised.

    >>> from csmcore import BusinessCalendar
    >>> doc = to_document(BusinessCalendar.always())
    >>> doc["type"], doc["schema"]
    ('business_calendar', 1)
    >>> from_document(doc) == BusinessCalendar.always()
    True
    """
    cls = type(obj)
    return {"type": tag_of(cls), "schema": schema_of(cls), "data": to_data(obj)}


@overload
def from_document(doc: Any) -> Any: ...


@overload
def from_document(doc: Any, cls: type[T]) -> T: ...


@guarded
def from_document(doc: Any, cls: type[Any] | None = None) -> Any:
    """The object in the envelope ``doc`` (what :func:`to_document` made, or an older release).

    ``doc["type"]`` is a tag or one of its aliases (the module path the previous release wrote,
    ``"csmcore.calendars:BusinessCalendar"``); ``doc["schema"]`` is the schema version of
    ``doc["data"]``, 1 when absent (the previous release wrote none). A payload older than this
    release is run through the tag's upcasters first. With ``cls``, the document must hold a
    ``cls`` (or a subclass).

    Raises :class:`~csmcore.errors.SerializationError`, whose message starts with the path of
    the problem, when ``doc`` is not a mapping with exactly the keys ``type``, ``data`` and
    optionally ``schema``; names an unknown type or one that is not ``cls``; has a ``schema``
    that is not a whole number >= 1 or is newer than this release reads (written by a newer
    csmcore); or holds data that does not build the type.

    >>> from csmcore import BusinessCalendar
    >>> old = {"type": "csmcore.calendars:BusinessCalendar",
    ...        "data": to_data(BusinessCalendar.always())}
    >>> from_document(old, BusinessCalendar) == BusinessCalendar.always()
    True
    >>> from_document({"type": "business_calendar", "schema": 7, "data": {}})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.SerializationError: $.schema: 'business_calendar' payload version 7 is newer...
    >>> from_document({"type": "nope", "data": {}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.SerializationError: $.type: type 'nope' is not a known csmcore type; ...
    """
    if not isinstance(doc, Mapping):
        raise SerializationError(
            f"$: {doc!r} is not a document; expected a mapping with the keys 'type', 'data' "
            "and (optionally) 'schema'"
        )
    check_keys(doc, _KEYS, ("type", "data"), where=" in a document")
    name = doc["type"]
    if not isinstance(name, str):
        raise SerializationError(f"$.type: {name!r} is not a type tag (a string)")
    try:
        info = type_info(name)
    except SerializationError as err:
        raise SerializationError(f"$.type: {err}") from err
    if cls is not None and not (isinstance(cls, type) and issubclass(info.cls, cls)):
        raise SerializationError(
            f"$.type: {name!r} names a {info.cls.__qualname__}, not a "
            f"{getattr(cls, '__qualname__', cls)}"
        )
    schema = doc.get("schema", 1)
    if isinstance(schema, bool) or not isinstance(schema, int) or schema < 1:
        raise SerializationError(f"$.schema: {schema!r} is not a whole number >= 1")
    if schema > info.version:
        raise SerializationError(
            f"$.schema: {info.tag!r} payload version {schema} is newer than this csmcore reads "
            f"(up to {info.version}); upgrade csmcore"
        )
    try:
        data = upcast(info, doc["data"], schema)
    except SerializationError as err:
        raise SerializationError(f"$.data: {err}") from err
    try:
        return from_data(data, info.cls)
    except SerializationError as err:
        raise SerializationError(f"$.data: {err}") from err
