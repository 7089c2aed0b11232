"""Converter hooks for the SLA types (registered on import of the package)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cattrs.errors import AttributeValidationNote, ClassValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from csmcore._values import check_keys
from csmcore.calendars import BusinessCalendar
from csmcore.errors import SerializationError, ValidationError
from csmcore.serialization import converter
from csmcore.sla._book import SlaBook
from csmcore.sla._enums import SlaTrigger
from csmcore.sla._policy import CustomTimer, SlaPolicy, SlaTarget

__all__: list[str] = []


def _unstructure_book(book: SlaBook) -> dict[str, Any]:
    return {
        "policies": [converter.unstructure(p, SlaPolicy) for p in book.policies],
        "calendar": converter.unstructure(book.calendar, BusinessCalendar),
        "calendars": {
            name: converter.unstructure(cal, BusinessCalendar) for name, cal in book.calendars
        },
    }


_BOOK_KEYS = frozenset({"policies", "calendar", "calendars"})


def _structure_book(data: Any, _: type) -> SlaBook:
    if not isinstance(data, Mapping):
        raise SerializationError(f"$: {data!r} is not a mapping of book fields")
    check_keys(data, _BOOK_KEYS, ("policies", "calendar"))
    if not isinstance(data["policies"], list):
        raise SerializationError(f"$.policies: {data['policies']!r} is not a list")
    policies = []
    for index, item in enumerate(data["policies"]):
        try:
            policies.append(converter.structure(item, SlaPolicy))
        except Exception as err:  # cattrs groups; re-raised naming the path
            from csmcore.serialization import describe_error as _describe

            raise SerializationError(f"$.policies[{index}]: {_describe(err)}") from err
    calendars = {}
    raw = data.get("calendars", {})
    if not isinstance(raw, Mapping):
        raise SerializationError(f"$.calendars: {raw!r} is not a mapping of name to calendar")
    for name, item in raw.items():
        try:
            calendars[name] = converter.structure(item, BusinessCalendar)
        except Exception as err:
            raise SerializationError(f"$.calendars.{name}: {err}") from err
    try:
        calendar = converter.structure(data["calendar"], BusinessCalendar)
    except Exception as err:
        raise SerializationError(f"$.calendar: {err}") from err
    try:
        return SlaBook(policies=policies, calendar=calendar, calendars=calendars)
    except ValidationError as err:
        raise SerializationError(f"$: {err}") from err


converter.register_unstructure_hook(SlaBook, _unstructure_book)
converter.register_structure_hook(SlaBook, _structure_book)
converter.register_unstructure_hook_func(
    lambda cls: cls == frozenset[SlaTrigger],
    lambda value: sorted(item.value for item in value),
)


# SlaTarget's field ``timer`` was called ``clock`` in 0.1.0.dev0. Its serialized key stays
# ``"clock"``, so stored data and the JSON users wrote keep their form, and read and write alike.
# cattrs names a failing field by its attribute in error paths; those say "clock", the key the
# data has.
_TIMER_KEY = "clock"


def _structure_target_hook(cls: type[SlaTarget]) -> Callable[[Any, type], SlaTarget]:
    fields: Callable[[Any, type], SlaTarget] = make_dict_structure_fn(
        cls, converter, timer=override(rename=_TIMER_KEY)
    )

    def structure(data: Any, target_cls: type) -> SlaTarget:
        if not isinstance(data, Mapping):  # checked before the generated hook calls .keys()
            raise SerializationError(
                f"expected a mapping of SlaTarget fields, got {type(data).__name__}"
            )
        try:
            return fields(data, target_cls)
        except ClassValidationError as err:
            for exc in err.exceptions:
                notes = getattr(exc, "__notes__", None)
                if notes:
                    exc.__notes__ = [_renamed_note(note) for note in notes]
            raise

    return structure


def _renamed_note(note: Any) -> Any:
    if isinstance(note, AttributeValidationNote) and note.name == "timer":
        text = str(note).replace("@ attribute timer", f"@ attribute {_TIMER_KEY}")
        return AttributeValidationNote(text, _TIMER_KEY, note.type)
    return note


converter.register_unstructure_hook_factory(
    lambda cls: cls is CustomTimer,
    # Options added in issue 10 are written only when set (stored timers keep their form).
    lambda cls: make_dict_unstructure_fn(
        cls,
        converter,
        restart=override(omit_if_default=True),
        start_on_change=override(omit_if_default=True),
        stop_on_change=override(omit_if_default=True),
        reset_on_change=override(omit_if_default=True),
    ),
)
converter.register_structure_hook_factory(lambda cls: cls is SlaTarget, _structure_target_hook)
converter.register_unstructure_hook_factory(
    lambda cls: cls is SlaTarget,
    lambda cls: make_dict_unstructure_fn(
        cls,
        converter,
        timer=override(rename=_TIMER_KEY),
        # Options added in issue 10 are written only when set, so the data of a target that
        # does not use them reads and writes exactly as before.
        pausable=override(omit_if_default=True),
        on_reset=override(omit_if_default=True),
    ),
)
