"""Changes of a ticket as triggers of custom timers (:class:`Transition`)."""

from __future__ import annotations

from typing import Any

import attrs

from csmcore.conditions import Condition, resolve_field
from csmcore.errors import ValidationError
from csmcore.serialization import serializable
from csmcore.sla._enums import SlaError
from csmcore.tickets import Ticket

__all__ = ["Transition"]


def _check_condition(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, Condition):
        raise SlaError(
            f"{attribute.name}={value!r} is not a condition; build one with csmcore.conditions "
            "(e.g. Eq('group', 'L2')) or leave it None"
        )


def _check_field(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    try:
        resolve_field(value)
    except ValidationError as err:
        raise SlaError(f"Transition: {err}") from err


@serializable("sla_transition", aliases=("csmcore.sla:Transition",))
@attrs.frozen(kw_only=True)
class Transition:
    """A change of the ticket at one event, used as a trigger of a :class:`CustomTimer`.

    It fires at an event when every part given holds:

    - ``field``: the event changed that field's value (a field name conditions accept:
      ``"priority"``, ``"group"``, ``"status"``, ``"fields.plan"``, ...);
    - ``before``: the condition held on the ticket just before the event;
    - ``after``: the condition holds just after it.

    Without ``field``, the event must also change the truth of the conditions given: ``after``
    did not hold before, or ``before`` no longer holds after. So
    ``Transition(after=Eq("group", "L2"))`` is "the group changes to L2" (once per change, not at
    every later event while the group is L2), ``Transition(before=Eq("status", "pending"))`` is
    "the status leaves pending" and ``Transition(field="priority")`` is "the priority changes".
    The creation event changes nothing: a transition never fires on it.

    Raises :class:`SlaError` when no part is given, for an unknown field, or a value that is
    not a condition.
    """

    field: str | None = attrs.field(default=None, validator=_check_field)
    before: Condition | None = attrs.field(default=None, validator=_check_condition)
    after: Condition | None = attrs.field(default=None, validator=_check_condition)

    def __attrs_post_init__(self) -> None:
        if self.field is None and self.before is None and self.after is None:
            raise SlaError(
                "Transition needs a field, a before condition or an after condition "
                "(e.g. Transition(after=Eq('group', 'L2')))"
            )

    def fires(self, before: Ticket, after: Ticket) -> bool:
        """Whether the event that turned ``before`` into ``after`` is this change."""
        if self.field is not None:
            read = resolve_field(self.field).read
            if read(before) == read(after):
                return False
        was = self.before
        now = self.after
        if was is not None and not was.matches(before):
            return False
        if now is not None and not now.matches(after):
            return False
        if self.field is not None:
            return True
        return (now is not None and not now.matches(before)) or (
            was is not None and not was.matches(after)
        )


attrs.resolve_types(Transition)
