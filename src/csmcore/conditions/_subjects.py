"""Subjects: what conditions read. A subject (a ticket; later an SLA status, a loyalty member)
offers named fields; its own package declares them and registers them here, so the condition
classes never import the domain.

A field declares its ``kind`` (``"enum"``, ``"str"``, ``"bool"``, ``"tags"`` or ``"custom"``),
how to read it from a subject object (``read``), the enum its values are coerced to
(``values``, for kind ``"enum"``) and, when ``<``/``>`` apply, the key values are compared by
(``order``). A subject may also offer custom fields under a prefix (``"fields.<name>"``).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from csmcore._boundary import guard_class, guarded
from csmcore._values import check_text
from csmcore.errors import ValidationError

__all__ = [
    "CUSTOM_PREFIX",
    "FIELDS",
    "KINDS",
    "Subject",
    "SubjectField",
    "field_kind",
    "register_subject",
    "resolve_field",
    "subjects",
    "unregister_subject",
]

KINDS: Final = ("enum", "str", "bool", "tags", "custom")
"""The kinds of field a condition can read."""

CUSTOM_PREFIX: Final = "fields."
"""The prefix of the ticket's custom field names: ``"fields.plan"`` reads
``ticket.fields.get("plan")``."""

Reader = Callable[[Any], Any]


@guard_class
class SubjectField:
    """One named field of a subject, as conditions see it.

    ``kind`` is one of :data:`KINDS`; ``read(subject)`` returns the field's value;
    ``values`` is the enum class of an ``"enum"`` field (condition values are coerced to its
    members); ``order`` maps a value to the key ``Compare`` uses (None: ``<`` and ``>`` do not
    apply, except to custom fields, which compare numbers with numbers and strings with
    strings). Raises ValidationError for an unknown kind or an enum field without ``values``.
    """

    __slots__ = ("kind", "name", "order", "read", "values")

    def __init__(
        self,
        name: str,
        kind: str,
        read: Reader,
        *,
        values: type[enum.Enum] | None = None,
        order: Callable[[Any], Any] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValidationError(f"kind={kind!r} is not a field kind; accepted: {list(KINDS)}")
        if (kind == "enum") != (values is not None):
            raise ValidationError(
                f"field {name!r}: values= (the enum class) is given exactly for kind 'enum'"
            )
        self.name = name
        self.kind = kind
        self.read = read
        self.values = values
        self.order = order

    def __repr__(self) -> str:
        return f"SubjectField({self.name!r}, {self.kind!r})"


@guard_class
class Subject:
    """A kind of object conditions can match, and the fields it offers.

    ``custom_prefix`` and ``read_custom`` offer free-form custom fields: the field
    ``custom_prefix + key`` is read by ``read_custom(key)`` (a function returning the reader);
    ``custom_hint`` says in messages what such a field is (default: ``"'<prefix><name>' for a
    custom field"``).
    """

    __slots__ = ("custom_hint", "custom_prefix", "fields", "name", "read_custom")

    def __init__(
        self,
        name: str,
        fields: Iterable[SubjectField],
        *,
        custom_prefix: str | None = None,
        read_custom: Callable[[str], Reader] | None = None,
        custom_hint: str | None = None,
    ) -> None:
        if (custom_prefix is None) != (read_custom is None):
            raise ValidationError("custom_prefix= and read_custom= are given together or not")
        self.custom_hint = custom_hint or f"'{custom_prefix}<name>' for a custom field"
        self.name = name
        self.fields: Mapping[str, SubjectField] = {f.name: f for f in fields}
        self.custom_prefix = custom_prefix
        self.read_custom = read_custom

    def __repr__(self) -> str:
        return f"Subject({self.name!r}, {list(self.fields)!r})"


_lock = threading.Lock()
_subjects: dict[str, Subject] = {}
_fields: dict[str, SubjectField] = {}
_custom: dict[str, SubjectField] = {}  # custom fields resolved once, by full name


@guarded
def register_subject(subject: Subject) -> None:
    """Make ``subject``'s fields readable by conditions (registering a subject's name again
    replaces it). Raises ValidationError when a field name or custom prefix is already
    another subject's: a field name names one field of one subject."""
    with _lock:
        others = [s for s in _subjects.values() if s.name != subject.name]
        for other in others:
            taken = set(other.fields) & set(subject.fields)
            if taken or (
                subject.custom_prefix is not None and subject.custom_prefix == other.custom_prefix
            ):
                raise ValidationError(
                    f"subject {subject.name!r}: {sorted(taken) or subject.custom_prefix!r} "
                    f"already belongs to subject {other.name!r}"
                )
        _subjects[subject.name] = subject
        _fields.clear()
        _custom.clear()
        for each in _subjects.values():
            _fields.update(each.fields)


@guarded
def unregister_subject(name: str) -> None:
    """Forget the subject ``name`` (conditions already built keep their readers); a name not
    registered is ignored. Meant for tests and plugins that register a subject for a while."""
    with _lock:
        _subjects.pop(name, None)
        _fields.clear()
        _custom.clear()
        for each in _subjects.values():
            _fields.update(each.fields)


def subjects() -> tuple[Subject, ...]:
    """The registered subjects, in the order they were first registered."""
    return tuple(_subjects.values())


def _unknown(name: object) -> ValidationError:
    subjects = [s.name for s in _subjects.values()]
    names = (
        " or ".join(subjects)
        if len(subjects) < 3
        else f"{', '.join(subjects[:-1])} or {subjects[-1]}"
    ) or "known"
    hints = "".join(f", or {s.custom_hint}" for s in _subjects.values() if s.custom_prefix)
    return ValidationError(
        f"field={name!r} is not a {names} field; accepted: {', '.join(_fields)}{hints}"
    )


@guarded
def resolve_field(name: object) -> SubjectField:
    """The field named ``name`` of a registered subject; ValidationError naming the known ones."""
    if isinstance(name, str):
        found = _fields.get(name) or _custom.get(name)
        if found is not None:
            return found
        for subject in _subjects.values():
            prefix = subject.custom_prefix
            if prefix and name.startswith(prefix) and len(name) > len(prefix):
                check_text(name, "field")
                assert subject.read_custom is not None
                found = SubjectField(name, "custom", subject.read_custom(name[len(prefix) :]))
                _custom[name] = found
                return found
    raise _unknown(name)


@guarded
def field_kind(name: object) -> str:
    """The kind of field ``name`` (see :data:`FIELDS`); ValidationError for an unknown one."""
    return resolve_field(name).kind


class _FieldKinds(Mapping[str, str]):
    """The fields of one subject and their kinds, read live from the registry."""

    __slots__ = ("_subject",)

    def __init__(self, subject: str) -> None:
        self._subject = subject

    def _map(self) -> Mapping[str, SubjectField]:
        found = _subjects.get(self._subject)
        return found.fields if found is not None else {}

    def __getitem__(self, key: str) -> str:
        return self._map()[key].kind

    def __iter__(self) -> Iterator[str]:
        return iter(self._map())

    def __len__(self) -> int:
        return len(self._map())

    def __repr__(self) -> str:
        return f"FIELDS({dict(self)!r})"


FIELDS: Final[Mapping[str, str]] = _FieldKinds("ticket")
"""The ticket's field names and their kinds (registered by :mod:`csmcore.tickets`); custom
fields are ``"fields.<name>"`` of kind ``"custom"``."""
