"""How a ticket event type is declared: the base class, the state it folds into, the
``@event_type`` decorator and its registry, and the generic (reference) event codec.

Everything csmcore knows of an event type comes from its declaration: the stable tag (through
:func:`csmcore.serialization.serializable`), the fields (the attrs fields of the class), the
validation (its converters and validators), the transition rule (:meth:`TicketEventBase.check`),
how it changes a ticket (:meth:`TicketEventBase.fold`) and its codec (the generic one below, or
fast hooks given to the decorator). Hypothesis strategies are derived from the same registry by
:mod:`csmcore.testing.strategies`.
"""

from __future__ import annotations

import enum
import threading
import typing
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final, TypeVar

import attrs

from csmcore._boundary import exempt, guard_class, guarded
from csmcore._time import to_us
from csmcore._values import as_utc, coerce_enum
from csmcore.errors import ErrorCode, SerializationError, ValidationError, invalid_type
from csmcore.serialization import (
    converter,
    schema_versions,
    serializable,
    type_info,
    upcast_tagged,
)
from csmcore.tickets._enums import Priority, Status
from csmcore.tickets._values import (
    FrozenMap,
    field_map,
    fields_from_data,
    fields_to_data,
    instant,
    optional_text,
    tag_set,
)

__all__ = [
    "EventSpec",
    "Refusal",
    "TicketEventBase",
    "TicketState",
    "Unusual",
    "event_from_data",
    "event_spec",
    "event_to_data",
    "event_type",
    "event_types",
    "reference_event_from_data",
    "reference_event_to_data",
]


@guard_class
class Refusal(str):
    """Why an event may not follow, with its stable reason ``code``: what
    :meth:`TicketEventBase.check` may return instead of a plain string (which gets the code
    ``"invalid_transition"``). The code becomes the ``code`` of the
    :class:`~csmcore.errors.InvalidTransition` raised.

    >>> why = Refusal("the ticket is frozen", code="ticket_frozen")
    >>> why, why.code
    ('the ticket is frozen', 'ticket_frozen')
    """

    __slots__ = ("code",)

    code: str

    def __new__(cls, why: str, *, code: str = ErrorCode.INVALID_TRANSITION) -> Refusal:
        self = super().__new__(cls, why)
        self.code = code
        return self


class _EventSlots:
    """The non-attrs base of every event: one plain slot, ``_at_us``, that is no attrs field
    (so ``attrs.asdict(event)`` and equality never see it)."""

    __slots__ = ("_at_us",)

    _at_us: int
    """``at`` as microseconds since the Unix epoch (UTC), set when the event is built: engines
    that order and measure many events (the SLA engine) read it instead of doing datetime
    arithmetic per event."""

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # Pickling and copying rebuild the event through _restore, which sets the slot too (the
        # state attrs itself would pickle holds the attrs fields only). No __getattr__ fallback:
        # a class with one loses CPython's fast attribute lookups on every event.
        cls: Any = type(self)
        fields = {a.name: getattr(self, a.name) for a in attrs.fields(cls)}
        return (_restore, (cls, fields))


def _restore(cls: type[Any], fields: dict[str, Any]) -> Any:
    """An event of ``cls`` with ``fields`` as they were (no validation: they were valid)."""
    event = object.__new__(cls)
    for name, value in fields.items():
        object.__setattr__(event, name, value)
    object.__setattr__(event, "_at_us", to_us(fields["at"]))
    return event


@guard_class
@attrs.frozen(kw_only=True)
class TicketEventBase(_EventSlots):
    """Fields every ticket event has.

    ``at`` is the aware instant of the change (stored converted to UTC; a naive datetime raises
    :class:`~csmcore.errors.NaiveDatetimeError`); ``actor`` optionally names who made it.

    Events also carry ``_at_us``, ``at`` as microseconds since the Unix epoch, worked out once
    when the event is built (also when a declared subclass has its own ``__attrs_post_init__``:
    :func:`event_type` sets it first); it is a plain slot, not an attrs field.
    """

    at: datetime = attrs.field(converter=instant)
    actor: str | None = attrs.field(default=None, validator=optional_text("actor"))

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_at_us", to_us(self.at))

    @exempt("a hook of the event protocol: Ticket.apply calls it behind its boundary")
    def check(self, state: TicketState, ticket_id: str) -> str | None:
        """Why this event may not follow a ticket in ``state`` (None: it may).

        Called after the rules every event shares (time order, nothing after a merge). The
        reason becomes the message of the :class:`~csmcore.errors.InvalidTransition` raised;
        return a :class:`Refusal` to give it a reason code of its own.
        """
        return self._refusal(state._values, ticket_id)

    @exempt("a hook of the event protocol: Ticket.apply calls it behind its boundary")
    def fold(self, state: TicketState) -> TicketState:
        """The ticket state after this event (the base class: unchanged).

        Never mutate ``state``: return ``state.replace(...)``.
        """
        return TicketState(self._advance(state._values))

    # The fold itself works on the raw list inside TicketState (cheap to copy and index). The
    # built-in events override these two; for a declared event that overrides check or fold,
    # @event_type routes them through its public methods.

    def _refusal(self, values: list[Any], ticket_id: str) -> str | None:
        return None

    def _advance(self, values: list[Any]) -> list[Any]:
        return values


def _with_at_us(post_init: Callable[[Any], None]) -> Callable[[Any], None]:
    """``post_init`` of a declared event, setting ``_at_us`` first (whether or not it calls
    ``TicketEventBase.__attrs_post_init__`` itself)."""

    def run(self: Any) -> None:
        object.__setattr__(self, "_at_us", to_us(self.at))
        post_init(self)

    return run


def _refusal_via_check(event: TicketEventBase, values: list[Any], ticket_id: str) -> str | None:
    return event.check(TicketState(values), ticket_id)


def _advance_via_fold(event: TicketEventBase, values: list[Any]) -> list[Any]:
    state = event.fold(TicketState(values))
    if not isinstance(state, TicketState):
        raise ValidationError(
            f"{type(event).__name__}.fold returned {state!r}; it must return a TicketState "
            "(state.replace(...), or state itself)"
        )
    return state._values


# --------------------------------------------------------------------------------------------
# The state a history folds into
# --------------------------------------------------------------------------------------------

# Positions in TicketState (a list, so that copying and reading it is cheap).
(
    STATUS,
    STATUS_NAME,
    PRIORITY,
    GROUP,
    ASSIGNEE,
    TAGS,
    FIELDS,
    MERGED,
    SOLVED,
    REOPENS,
    REQUESTER,
    PRIORITY_NAME,
) = range(12)
_INDEX: Final[dict[str, int]] = {
    "status": STATUS,
    "status_name": STATUS_NAME,
    "priority": PRIORITY,
    "group": GROUP,
    "assignee": ASSIGNEE,
    "tags": TAGS,
    "fields": FIELDS,
    "merged_into": MERGED,
    "solved_at": SOLVED,
    "reopens": REOPENS,
    "requester": REQUESTER,
    "priority_name": PRIORITY_NAME,
}


@guard_class
class TicketState:
    """The changeable state of a ticket, derived from its history by folding each event.

    Read it by name (``state.status``, ``state.fields``, ...); change it only through
    :meth:`replace`, which returns a new state. A state is never mutated once a ticket holds it,
    so tickets that differ only by events that change nothing share it.
    """

    __slots__ = ("_values",)

    def __init__(self, values: list[Any]) -> None:
        self._values = values

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={self._values[i]!r}" for name, i in _INDEX.items())
        return f"TicketState({shown})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TicketState):
            return NotImplemented
        return self._values == other._values

    __hash__ = None  # type: ignore[assignment]

    @property
    def status(self) -> Status:
        """The status category."""
        value: Status = self._values[STATUS]
        return value

    @property
    def status_name(self) -> str | None:
        """The custom status name, or None."""
        value: str | None = self._values[STATUS_NAME]
        return value

    @property
    def priority(self) -> Priority:
        """The priority."""
        value: Priority = self._values[PRIORITY]
        return value

    @property
    def group(self) -> str | None:
        """The assigned group, or None."""
        value: str | None = self._values[GROUP]
        return value

    @property
    def assignee(self) -> str | None:
        """The assigned agent, or None."""
        value: str | None = self._values[ASSIGNEE]
        return value

    @property
    def tags(self) -> frozenset[str]:
        """The tags."""
        value: frozenset[str] = self._values[TAGS]
        return value

    @property
    def fields(self) -> FrozenMap[str, Any]:
        """The custom fields (unset fields are absent)."""
        value: FrozenMap[str, Any] = self._values[FIELDS]
        return value

    @property
    def merged_into(self) -> str | None:
        """The id of the ticket this one was merged into, or None."""
        value: str | None = self._values[MERGED]
        return value

    @property
    def solved_at(self) -> datetime | None:
        """The latest instant the ticket became solved or closed (a merge closes it), or None."""
        value: datetime | None = self._values[SOLVED]
        return value

    @property
    def reopens(self) -> int:
        """How many times the ticket was reopened."""
        value: int = self._values[REOPENS]
        return value

    @property
    def priority_name(self) -> str | None:
        """The custom priority name, or None."""
        value: str | None = self._values[PRIORITY_NAME]
        return value

    @property
    def requester(self) -> str:
        """The current requester (the creation's, until a RequesterChanged)."""
        value: str = self._values[REQUESTER]
        return value

    def replace(self, **changes: Any) -> TicketState:
        """A new state with ``changes`` (names as the properties above).

        ``fields`` is checked like custom fields (a None value removes the field) and ``tags``
        like tags; ``status`` and ``priority`` take the member or its value; ``requester`` is
        a non-empty string; ``group``, ``assignee``, ``merged_into``, ``status_name`` and
        ``priority_name`` a non-empty string or None; ``solved_at`` an aware datetime or None;
        ``reopens`` a whole number >= 0. Raises ValidationError (or InvalidType) for an
        unknown name or a value of the wrong kind, naming it, so that a declared event's fold
        cannot leave a ticket with a requester of None or a status that is a plain string.
        """
        new = self._values.copy()
        for name, value in changes.items():
            index = _INDEX.get(name)
            if index is None:
                raise ValidationError(
                    f"{name}= is not part of a ticket's state; accepted: {', '.join(_INDEX)}"
                )
            if name == "fields" and not isinstance(value, FrozenMap):
                value = field_map({k: v for k, v in dict(value).items() if v is not None}, "fields")
            elif name == "tags":
                value = tag_set(value, "tags")
            else:
                value = _checked_state_value(name, value)
            new[index] = value
        return TicketState(new)


_OPTIONAL_TEXT: Final = frozenset(
    {"group", "assignee", "merged_into", "status_name", "priority_name"}
)


def _checked_state_value(name: str, value: Any) -> Any:
    """``value`` for the state slot ``name`` (see :meth:`TicketState.replace`), checked."""
    if name == "status":
        return value if type(value) is Status else coerce_enum(Status, value, "status")
    if name == "priority":
        return value if type(value) is Priority else coerce_enum(Priority, value, "priority")
    if name == "requester" or (name in _OPTIONAL_TEXT and value is not None):
        if not isinstance(value, str) or not value:
            accepted = "a non-empty string" + ("" if name == "requester" else " or None")
            raise invalid_type(name, value, accepted)
        return value
    if name == "solved_at":
        if value is not None and not (isinstance(value, datetime) and value.tzinfo is not None):
            raise invalid_type(name, value, "an aware datetime or None")
        return None if value is None else as_utc(value)
    if name == "reopens" and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise invalid_type(name, value, "a whole number >= 0")
    return value


# --------------------------------------------------------------------------------------------
# The registry of event types
# --------------------------------------------------------------------------------------------


class Unusual(Exception):
    """Raised by a fast decoder: the reference decoder handles this data instead."""


Encoder = Callable[[Any], dict[str, Any]]
Decoder = Callable[[Any, dict[str, Any]], Any]


@guard_class
class EventSpec:
    """What the registry knows of one event type (see :func:`event_type`); read-only.

    ``names`` are its init fields in declaration order (the keys of its data besides
    ``"type"`` and ``"schema"``), ``required`` those without a default, ``keys`` every key its
    data may have, ``lists`` the fields written as JSON lists (frozensets), ``instants`` the
    datetime fields (``at`` included), ``maps`` the custom-field maps (FrozenMap fields, whose
    datetime and Decimal values have a tagged JSON form); ``encode`` and ``decode`` are its
    codec hooks
    (``encode`` gives the data without ``"schema"``, which :func:`event_to_data` adds;
    ``decode`` None: the generic decoder only).
    """

    __slots__ = (
        "cls",
        "decode",
        "encode",
        "instants",
        "keys",
        "lists",
        "maps",
        "names",
        "required",
        "tag",
    )

    def __init__(
        self,
        *,
        cls: type[TicketEventBase],
        tag: str,
        names: tuple[str, ...],
        required: frozenset[str],
        lists: frozenset[str],
        instants: frozenset[str],
        maps: frozenset[str] = frozenset(),
        encode: Encoder,
        decode: Decoder | None,
    ) -> None:
        self.cls = cls
        self.tag = tag
        self.names = names
        self.required = required
        self.keys = frozenset({"type", "schema", *names})
        self.lists = lists
        self.instants = instants
        self.maps = maps
        self.encode = encode
        self.decode = decode

    def __repr__(self) -> str:
        return f"EventSpec({self.tag!r}, {self.cls.__qualname__})"


_lock = threading.Lock()
_SPECS: dict[type, EventSpec] = {}
_BY_NAME: dict[str, EventSpec] = {}  # tag and aliases
_ENCODE: dict[type, Encoder] = {}  # the encode hook of each declared class
_RESERVED: Final = frozenset({"type", "schema"})  # keys of the data that are no field
_VERSION: Final = schema_versions()  # class -> schema version of its tag (a live view)

_Ev = TypeVar("_Ev", bound=type[TicketEventBase])
_is_attrs: Callable[[type], bool] = attrs.has  # (no TypeGuard: keep the class's own type)


@guarded
def event_type(
    tag: str,
    *,
    aliases: Iterable[str] = (),
    version: int = 1,
    upcasters: Mapping[int, Callable[[Any], Any]] | None = None,
    encode: Encoder | None = None,
    decode: Decoder | None = None,
) -> Callable[[_Ev], _Ev]:
    """Class decorator declaring a ticket event type; apply it above ``@attrs.frozen``.

    ``tag``, ``aliases``, ``version`` and ``upcasters`` go to
    :func:`csmcore.serialization.serializable`. The class must subclass
    :class:`TicketEventBase`; it overrides :meth:`~TicketEventBase.check` and
    :meth:`~TicketEventBase.fold` for its rules. Its data is ``{"type": tag, <field>: value,
    ..., "schema": version}``, written and read by a generic codec built from its attrs fields,
    unless fast hooks are given: ``encode(event)`` returns the data without ``"schema"`` (equal
    to the generic codec's; :func:`event_to_data` adds ``"schema"``), and ``decode(cls, data)``
    returns the event or raises :class:`Unusual` (or KeyError, TypeError, ValueError) to leave
    the data to the generic decoder. ``decode`` is only given data at the current version (it
    may hold ``"schema"``): data of an older version is first run through the ``upcasters``,
    each of which receives the whole data of one version (``"type"`` and the fields, without
    ``"schema"``) and returns that of the next.

    Raises :class:`~csmcore.errors.ValidationError` for a class that is not an attrs subclass
    of TicketEventBase, has a field named ``type`` or ``schema`` (the keys the data reserves),
    or a tag the serialization registry refuses.
    """
    alias_list = tuple(aliases)
    declare = serializable(tag, aliases=alias_list, version=version, upcasters=upcasters)

    def register(cls: _Ev) -> _Ev:
        if (
            not (isinstance(cls, type) and issubclass(cls, TicketEventBase) and _is_attrs(cls))
            or cls is TicketEventBase
        ):
            raise ValidationError(
                f"{cls!r} is not an attrs subclass of TicketEventBase; declare events as "
                "@event_type('ticket.x') above @attrs.frozen(kw_only=True)"
            )
        reserved = sorted(_RESERVED.intersection(a.name for a in attrs.fields(cls)))
        if reserved:
            raise ValidationError(
                f"{cls.__qualname__} has a field named {reserved[0]!r}; an event's data uses "
                f"the keys {sorted(_RESERVED)} itself, so rename the field"
            )
        declare(cls)
        event_cls: type[TicketEventBase] = cls
        own_post_init = event_cls.__attrs_post_init__
        if own_post_init is not TicketEventBase.__attrs_post_init__:
            event_cls.__attrs_post_init__ = _with_at_us(own_post_init)  # type: ignore[method-assign,assignment]
        if event_cls.check is not TicketEventBase.check:
            event_cls._refusal = _refusal_via_check  # type: ignore[method-assign,assignment]
        if event_cls.fold is not TicketEventBase.fold:
            event_cls._advance = _advance_via_fold  # type: ignore[method-assign,assignment]
        fields = [a for a in attrs.fields(event_cls) if a.init]
        names = tuple(a.name for a in fields)
        spec = EventSpec(
            cls=event_cls,
            tag=tag,
            names=names,
            required=frozenset(a.name for a in fields if a.default is attrs.NOTHING),
            lists=frozenset(a.name for a in fields if _is_set_type(a.type)),
            instants=frozenset(a.name for a in fields if _is_datetime_type(a.type)),
            maps=frozenset(a.name for a in fields if _is_map_type(a.type)),
            encode=encode if encode is not None else _reference_encoder(tag, names),
            decode=decode,
        )
        with _lock:
            _SPECS[event_cls] = spec
            _ENCODE[event_cls] = spec.encode
            for name in (tag, *alias_list):
                _BY_NAME[name] = spec
        converter.register_unstructure_hook(event_cls, _with_schema(event_cls, spec.encode))
        converter.register_structure_hook(event_cls, _structure_hook)
        return cls

    return register


def _with_schema(cls: type, encode: Encoder) -> Encoder:
    """``encode`` of declared event class ``cls``, adding the schema version of its tag."""

    def unstructure(event: Any) -> dict[str, Any]:
        data = encode(event)
        data["schema"] = _VERSION[cls]
        return data

    return unstructure


def _is_set_type(annotation: object) -> bool:
    """A frozenset annotation, resolved or still a string."""
    if isinstance(annotation, str):
        return annotation.startswith("frozenset")
    return annotation is frozenset or typing.get_origin(annotation) is frozenset


def _is_map_type(annotation: object) -> bool:
    """A FrozenMap annotation, resolved or still a string."""
    if isinstance(annotation, str):
        return annotation.startswith("FrozenMap")
    return annotation is FrozenMap or typing.get_origin(annotation) is FrozenMap


def _is_datetime_type(annotation: object) -> bool:
    """A datetime annotation, resolved or still a string."""
    return annotation is datetime or annotation in ("datetime", "datetime.datetime")


@guarded
def event_spec(cls: type) -> EventSpec:
    """The declaration of event class ``cls``; SerializationError if it was not declared."""
    spec = _SPECS.get(cls)
    if spec is None:
        raise SerializationError(
            f"{getattr(cls, '__qualname__', cls)!r} is not a declared ticket event type; "
            "declare it with @csmcore.tickets.event_type('ticket.your_event')"
        )
    return spec


def event_types() -> tuple[type[TicketEventBase], ...]:
    """Every declared event class, in the order they were declared."""
    return tuple(_SPECS)


# --------------------------------------------------------------------------------------------
# The generic (reference) codec
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, FrozenMap):
        return fields_to_data(value)
    return value


def _reference_encoder(tag: str, names: tuple[str, ...]) -> Encoder:
    def encode(event: Any) -> dict[str, Any]:
        data: dict[str, Any] = {"type": tag}
        for name in names:
            data[name] = _plain(getattr(event, name))
        return data

    return encode


def reference_event_to_data(event: TicketEventBase) -> dict[str, Any]:
    """The generic, field-by-field encoding of ``event`` with the schema version of its tag
    (:func:`event_to_data` must give the same data, in the same key order)."""
    spec = event_spec(type(event))
    data = _reference_encoder(spec.tag, spec.names)(event)
    data["schema"] = _VERSION[spec.cls]
    return data


def _spec_named(kind: object) -> EventSpec | None:
    if not isinstance(kind, str):
        return None
    try:
        info = type_info(kind)
    except SerializationError:
        return None
    return _SPECS.get(info.cls)


def reference_event_from_data(data: Any, path: str = "$") -> TicketEventBase:
    """The generic event decoder: checks every key, builds through the validating ``__init__``.

    Accepts every tag and alias of a declared event type (``"ticket.merged"`` and the older
    ``"merged"``), with or without ``"schema"`` (without: version 1); data of an older version
    is upcast first (:func:`csmcore.serialization.upcast_tagged`, on a copy). Fast decoders fall
    back to it for anything unusual, so its messages are the ones a caller sees:
    SerializationError naming ``path`` (``<path>.schema`` for a version newer than this release
    reads).
    """
    if not isinstance(data, Mapping):
        raise SerializationError(f"{path}: {data!r} is not a mapping with a 'type' key")
    kind = data.get("type")
    spec = _spec_named(kind)
    if spec is None:
        accepted = sorted(s.tag for s in _SPECS.values())
        raise SerializationError(
            f"{path}.type: {kind!r} is not an event type; accepted: {accepted}"
        )
    if data.get("schema", 1) is not _VERSION[spec.cls]:  # see event_from_data
        data = upcast_tagged(dict(data), path)
        if not isinstance(data, Mapping):
            raise SerializationError(
                f"{path}: the upcasters of {kind!r} gave {data!r}, not a mapping of fields"
            )
    names = spec.names
    extra = set(data) - spec.keys
    if extra:
        raise SerializationError(
            f"{path}: unknown keys {sorted(extra)} for a {kind!r} event; accepted: {sorted(names)}"
        )
    missing = spec.required - set(data)
    if missing:
        raise SerializationError(f"{path}.{sorted(missing)[0]}: required field missing")
    kwargs: dict[str, Any] = {}
    for name in names:
        if name not in data:
            continue
        value = data[name]
        if name in spec.instants:
            if not isinstance(value, str):
                raise SerializationError(f"{path}.{name}: {value!r} is not an ISO 8601 datetime")
            try:
                value = datetime.fromisoformat(value)
            except ValueError as err:
                raise SerializationError(
                    f"{path}.{name}: {value!r} is not an ISO 8601 datetime"
                ) from err
        elif name in spec.lists and not isinstance(value, list):
            raise SerializationError(f"{path}.{name}: {value!r} is not a list of tags")
        elif name in spec.maps and isinstance(value, Mapping):
            try:
                value = fields_from_data(value, name)
            except ValidationError as err:
                raise SerializationError(
                    f"{path}.{name}: {err}", field=err.field, value=err.value
                ) from err
        kwargs[name] = value
    try:
        return spec.cls(**kwargs)
    except ValidationError as err:
        raise SerializationError(f"{path}: {err}", field=err.field, value=err.value) from err
    except TypeError as err:
        raise SerializationError(f"{path}: {err}") from err


# --------------------------------------------------------------------------------------------
# The codec storage and the converter use
# --------------------------------------------------------------------------------------------


@guarded
def event_to_data(event: TicketEventBase) -> dict[str, Any]:
    """JSON-safe data of ``event``: ``{"type": its tag, <field>: value, ..., "schema": n}``,
    ``n`` being the schema version of the tag (:func:`csmcore.serialization.schema_of`), so
    that a later release knows which upcasters the data needs.

    Built-in events use their fast encoders (equal to the generic one). Raises
    SerializationError for an event type that was not declared.
    """
    cls = type(event)
    encode = _ENCODE.get(cls)
    if encode is None:
        return reference_event_to_data(event)  # raises, naming the undeclared class
    data = encode(event)
    data["schema"] = _VERSION[cls]
    return data


@guarded
def event_from_data(data: Any, path: str = "$") -> TicketEventBase:
    """The event ``data`` describes (any tag or alias of a declared type); SerializationError
    naming ``path`` when it is malformed.

    Data without ``"schema"`` is version 1 (what 0.1.0.dev0 wrote); data of an older version
    than this release writes is upcast first, on a copy (``data`` is never changed); a newer
    version raises SerializationError naming ``<path>.schema``.
    """
    if type(data) is dict:
        kind = data.get("type")
        spec = _BY_NAME.get(kind) if type(kind) is str else None
        if spec is not None:
            # The usual data is at the current version: the same (small, cached) int object.
            # Anything else, equal or not, goes through upcast_tagged, which decides exactly.
            if data.get("schema", 1) is not _VERSION[spec.cls]:
                current = upcast_tagged(data, path)  # a copy at the current version, or raises
                if type(current) is not dict:  # the upcasters gave no mapping
                    return reference_event_from_data(data, path)  # (which names the problem)
                data = current
            if spec.decode is not None:
                try:
                    event: TicketEventBase = spec.decode(spec.cls, data)
                    return event
                except (Unusual, KeyError, TypeError, ValueError):
                    pass  # unusual or malformed: the reference decoder decides (names the path)
    return reference_event_from_data(data, path)


def fast_event_from_data(data: Any) -> TicketEventBase | None:
    """The event the fast decoder of ``data``'s type builds, or None when it declines (it
    declines data of another schema version than the current one: only the full decoder
    upcasts)."""
    if type(data) is not dict:
        return None
    kind = data.get("type")
    spec = _BY_NAME.get(kind) if type(kind) is str else None
    if spec is None or spec.decode is None:
        return None
    version = data.get("schema", 1)
    if type(version) is not int or version != _VERSION[spec.cls]:
        return None
    try:
        event: TicketEventBase = spec.decode(spec.cls, data)
    except (Unusual, KeyError, TypeError, ValueError):
        return None
    return event


def _structure_hook(data: Any, cls: Any) -> TicketEventBase:
    event = event_from_data(data, "$")
    if cls in _SPECS and type(event) is not cls:
        raise SerializationError(
            f"$.type: {data['type']!r} is not {_SPECS[cls].tag!r} (expected a {cls.__name__})"
        )
    return event
