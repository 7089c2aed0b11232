"""The registry of stable type tags: the names stored and serialized data use for csmcore types.

A tag is declared once, next to the class it names (``@serializable("sla_policy")``). Stored data
names its type by tag, never by module path, so a class can move between modules without
breaking anything users wrote. A tag may have aliases (names older releases wrote, such as the
module path ``"csmcore.sla:SlaPolicy"``); reading resolves them to the same type. Each tag also
carries the current version of its payload and the upcasters that turn an older payload into
the current one.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar

import attrs

from csmcore._boundary import guard_class, guarded
from csmcore.errors import CsmError, SerializationError, ValidationError, invalid_type

__all__ = [
    "TypeInfo",
    "Upcaster",
    "registered_types",
    "schema_of",
    "schema_versions",
    "serializable",
    "tag_of",
    "type_info",
    "upcast",
    "upcast_tagged",
]

T = TypeVar("T", bound=type)

Upcaster = Callable[[Any], Any]
"""Turns the payload of version ``n`` of a tag into the payload of version ``n + 1``."""

_TAG: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


@guard_class
@attrs.frozen(kw_only=True)
class TypeInfo:
    """What the registry knows of one tag.

    ``version`` is the version of the payload this release writes (from 1). ``upcasters[n]``
    turns a version-``n`` payload into a version-``n + 1`` one, for every ``n < version``.
    """

    tag: str
    cls: type
    version: int = 1
    aliases: tuple[str, ...] = ()
    upcasters: Mapping[int, Upcaster] = attrs.field(factory=dict)


_lock = threading.Lock()
_by_tag: dict[str, TypeInfo] = {}
_by_alias: dict[str, TypeInfo] = {}
_by_class: dict[type, TypeInfo] = {}
_by_name: dict[str, TypeInfo] = {}
"""Tags and aliases together, for the one lookup per stored event in :func:`upcast_tagged`."""
_versions: dict[type, int] = {}
_versions_view: Final[Mapping[type, int]] = MappingProxyType(_versions)


@guarded
def serializable(
    tag: str,
    *,
    version: int = 1,
    aliases: Iterable[str] = (),
    upcasters: Mapping[int, Upcaster] | None = None,
) -> Callable[[T], T]:
    """Class decorator that declares the stable ``tag`` of a class.

    ``aliases`` are other names that read as this type (the names older releases wrote).
    ``version`` is the payload version written now; ``upcasters`` maps each older version ``n``
    to a function turning a version-``n`` payload into version ``n + 1``.

    Raises :class:`~csmcore.errors.ValidationError` for a malformed tag (lower-case words joined
    by ``_``, namespaced by ``.``: ``"ticket.created"``), a tag or alias already taken by another
    class, a version below 1, or a missing upcaster.

    The class's constructor and the public methods it defines are put behind the public
    boundary (``csmcore._boundary.guard_class``): whatever they raise below reaches callers
    as a :class:`~csmcore.errors.CsmError`, with the original as ``__cause__``.

    >>> import attrs
    >>> @serializable("example.point_doc")
    ... @attrs.frozen
    ... class PointDoc:
    ...     x: int
    >>> tag_of(PointDoc)
    'example.point_doc'
    >>> type_info("example.point_doc").cls is PointDoc
    True
    """
    if not isinstance(tag, str) or not _TAG.match(tag):
        raise ValidationError(
            f"tag={tag!r} is not a type tag; use lower-case words joined by '_', namespaced by "
            "'.', such as 'sla_policy' or 'ticket.created'"
        )
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValidationError(f"version={version!r} is not a whole number >= 1")
    steps = dict(upcasters or {})
    missing = [n for n in range(1, version) if n not in steps]
    if missing:
        raise ValidationError(
            f"tag {tag!r} is at version {version} but has no upcaster from version(s) {missing}"
        )
    alias_list = tuple(aliases)

    def declare(cls: T) -> T:
        info = TypeInfo(tag=tag, cls=cls, version=version, aliases=alias_list, upcasters=steps)
        with _lock:
            for name in (tag, *alias_list):
                known = _by_tag.get(name) or _by_alias.get(name)
                if known is not None and known.cls is not cls:
                    raise ValidationError(
                        f"type tag {name!r} already names {known.cls.__qualname__}; "
                        f"choose another one for {cls.__qualname__}"
                    )
            old = _by_class.get(cls)
            if old is not None and old.tag != tag:
                raise ValidationError(
                    f"{cls.__qualname__} already has the tag {old.tag!r}; a class has one tag"
                )
            if old is not None:  # declared again (a reload): the new declaration replaces it
                for alias in old.aliases:
                    _by_alias.pop(alias, None)
                    _by_name.pop(alias, None)
            _by_tag[tag] = info
            _by_name[tag] = info
            for alias in alias_list:
                _by_alias[alias] = info
                _by_name[alias] = info
            _by_class[cls] = info
            _versions[cls] = version
        # every stored type is a public entry point: its constructor and public methods run
        # behind the one boundary (csmcore._boundary), so no declaration is needed per type
        guard_class(cls)
        return cls

    return declare


@guarded
def tag_of(cls: type) -> str:
    """The stable tag of ``cls``; :class:`~csmcore.errors.SerializationError` if it has none."""
    info = _by_class.get(cls)
    if info is None:
        raise _no_tag(cls)
    return info.tag


def _no_tag(cls: type) -> SerializationError:
    return SerializationError(
        f"{getattr(cls, '__qualname__', cls)!r} has no type tag; declare one with "
        "@csmcore.serialization.serializable('your_tag')"
    )


@guarded
def type_info(name: str) -> TypeInfo:
    """The registered type whose tag or alias is ``name``.

    Raises :class:`~csmcore.errors.SerializationError` naming the known tags when there is none.
    """
    info = _by_tag.get(name) if isinstance(name, str) else None
    if info is None and isinstance(name, str):
        info = _by_alias.get(name)
    if info is None:
        raise SerializationError(
            f"type {name!r} is not a known csmcore type; known tags: {sorted(_by_tag)}"
        )
    return info


@guarded
def schema_of(cls: type) -> int:
    """The payload schema version this release writes for ``cls`` (``version`` of its tag).

    Raises :class:`~csmcore.errors.SerializationError` when ``cls`` has no tag. (Encoders call
    it once per event they write, so it is one dictionary lookup.)
    """
    try:
        info = _by_class.get(cls)
    except TypeError:  # not even hashable: certainly no registered class
        info = None
    if info is None:
        raise _no_tag(cls)
    return info.version


def schema_versions() -> Mapping[type, int]:
    """Every tagged class and the schema version this release writes for it, as a read-only
    view that follows later declarations.

    For code that looks a version up per value it writes or reads (the event codecs): keep the
    view and index it (``versions[cls]``), which costs less than a :func:`schema_of` call.

    >>> from csmcore.tickets import Merged
    >>> versions = schema_versions()
    >>> versions[Merged] == schema_of(Merged)
    True
    """
    return _versions_view


def registered_types() -> dict[str, type]:
    """Every registered tag and its class (aliases not included), sorted by tag."""
    return {tag: _by_tag[tag].cls for tag in sorted(_by_tag)}


@guarded
def upcast(info: TypeInfo, data: Any, version: int) -> Any:
    """``data`` written at payload ``version`` of ``info``'s tag, brought up to the current one.

    Raises :class:`~csmcore.errors.SerializationError` for a version below 1 or newer than this
    release knows (data written by a newer csmcore).
    """
    if not isinstance(info, TypeInfo):
        raise invalid_type("info", info, "a TypeInfo (csmcore.serialization.type_info(tag))")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SerializationError(
            f"{info.tag!r} payload version {version!r} is not a whole number >= 1"
        )
    if version > info.version:
        raise SerializationError(
            f"{info.tag!r} payload version {version} is newer than this csmcore reads "
            f"(up to {info.version}); upgrade csmcore"
        )
    for step in range(version, info.version):
        try:
            data = info.upcasters[step](data)
        except CsmError:
            raise
        except Exception as err:  # a failing upcaster means the stored payload is malformed
            raise SerializationError(
                f"{info.tag!r} payload cannot be upcast from version {step} to {step + 1}: "
                f"{type(err).__name__}: {err}"
            ) from err
    return data


def _json_copy(value: Any) -> Any:
    """A copy of JSON-like ``value`` sharing no dict or list with it (an upcaster may change
    what it is given, and the caller's data must stay as it was)."""
    if type(value) is dict:
        return {k: _json_copy(v) for k, v in value.items()}
    if type(value) is list:
        return [_json_copy(v) for v in value]
    return value


@guarded
def upcast_tagged(data: Any, path: str = "$") -> Any:
    """A payload that names its type under ``"type"``, brought to the current schema.

    Such a payload (a ticket event: ``{"type": "ticket.commented", ..., "schema": 1}``) records
    its schema version under ``"schema"``; a payload without it was written before schema
    versions existed and is version 1. A payload at the current version of its tag is returned
    as it is (the very same object); an older one is copied (nested dicts and lists too, so
    ``data`` is never changed), run through the upcasters of its tag and returned with
    ``"schema"`` set to the current version, so that reading the result again upcasts nothing.
    Anything that is not a ``dict``, or names no known tag, is returned unchanged (its decoder
    reports it).

    Raises :class:`~csmcore.errors.SerializationError` naming ``path`` for a ``"schema"`` that
    is not a whole number >= 1, is newer than this release reads, or that the upcasters cannot
    bring up to date.

    The event decoders (:func:`csmcore.tickets.event_from_data`, and so ``from_data``) call
    this themselves; call it only for payloads you decode some other way.

    >>> upcast_tagged({"type": "ticket.merged", "into": "T-1", "schema": 1})
    {'type': 'ticket.merged', 'into': 'T-1', 'schema': 1}
    >>> upcast_tagged({"type": "ticket.merged", "into": "T-1", "schema": 99})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    csmcore.errors.SerializationError: $.schema: ... version 99 is newer than this csmcore reads...
    """
    if type(data) is not dict:
        return data
    version = data.get("schema", 1)
    name = data.get("type")
    info = _by_name.get(name) if type(name) is str else None
    if info is None:
        if type(version) is int and version >= 1:
            return data  # no known tag: left to the decoder, which names the problem
        raise SerializationError(f"{path}.schema: {version!r} is not a whole number >= 1")
    if type(version) is int and version == info.version:
        return data  # the usual case: current
    payload = {k: _json_copy(v) for k, v in data.items() if k != "schema"}
    try:
        upcast_data = upcast(info, payload, version)
    except SerializationError as err:
        raise SerializationError(f"{path}.schema: {err}") from err
    if type(upcast_data) is dict:
        upcast_data["schema"] = info.version
    return upcast_data
