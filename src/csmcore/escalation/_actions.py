"""Actions: what a level does when it fires. A protocol, a registry, and the built-ins.

An action is an immutable value with a registered name (``@action("set_priority")``); its
``apply`` takes the ticket and an :class:`ActionContext` and returns an :class:`ActionResult`:
the changed ticket, the ordinary ticket events that changed it (with the rule as actor), and
requests for effects outside the ticket (a :class:`NotificationRequest`; later a loyalty grant),
which the engine routes by type. ``apply`` is pure: no I/O, no clock.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Final, Protocol, TypeVar, cast, runtime_checkable

import attrs

from csmcore._time import require_aware
from csmcore._values import check_text, coerce_enum, frozen_set, is_bool, show
from csmcore.errors import ValidationError, invalid_type
from csmcore.serialization import serializable
from csmcore.sla import SlaBook
from csmcore.tickets import Commented, Priority, Role, Status, Ticket, TicketEvent

if TYPE_CHECKING:
    from csmcore.escalation._plan import Firing

__all__ = [
    "Action",
    "ActionContext",
    "ActionResult",
    "AddNote",
    "AddTags",
    "Assign",
    "NotificationRequest",
    "Notify",
    "RemoveTags",
    "SetPriority",
    "SetStatus",
    "action",
    "action_class",
    "action_name",
    "actions",
]


@attrs.frozen(kw_only=True)
class ActionContext:
    """What an action may read besides the ticket.

    ``at`` is the instant the action's events carry (the firing instant, or the ticket's last
    event if that is later); ``actor`` names the rule (``"escalation:<rule name>"``);
    ``firing`` is the firing being applied; ``book`` gives calendars by name; ``index`` is the
    action's position in its level (part of its idempotency key).
    """

    at: datetime
    actor: str
    firing: Firing
    book: SlaBook
    index: int = 0

    @property
    def idempotency_key(self) -> str:
        """A key stable across runs and processes: the firing's key and the action index."""
        return f"{self.firing.key_text}/{self.index}"


@serializable(
    "escalation.notification_request", aliases=("csmcore.escalation:NotificationRequest",)
)
@attrs.frozen(kw_only=True)
class NotificationRequest:
    """A notification to deliver, for the engine's outbox.

    ``not_before`` is the earliest delivery instant (the next open time of a calendar for a
    notification held to business hours, else the firing instant). ``idempotency_key`` is
    stable for a firing and action, so a host can drop duplicates of an at-least-once delivery.
    ``data`` holds JSON-safe values for the template (the ticket id, rule, level, target and
    cycle are added under ``ticket_id``, ``rule``, ``level``, ``target``, ``cycle``).

    ``business_hours`` (with ``calendar``, a calendar name of the SLA book, None: its default
    calendar) says the notification asked to be delivered during business hours only: a
    dispatcher holds its first delivery and its retries to that calendar's open time too, not
    only to ``not_before``. Data stored before these two fields existed reads them as False
    and None.
    """

    channel: str
    recipient: str
    template: str
    data: Mapping[str, Any]
    not_before: datetime
    idempotency_key: str
    ticket_id: str
    business_hours: bool = False
    calendar: str | None = None


@attrs.frozen(kw_only=True)
class ActionResult:
    """What applying an action gives: the new ticket, the ticket events that made it (already
    applied, in order; empty when nothing changed) and the requests for effects outside the
    ticket (notifications; later loyalty grants), each a serializable value."""

    ticket: Ticket
    events: tuple[TicketEvent, ...] = ()
    requests: tuple[Any, ...] = ()


@runtime_checkable
class Action(Protocol):
    """What an action offers: its registered ``name`` and a pure ``apply``."""

    name: ClassVar[str]

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        """The ticket after the action, the events and the outside requests."""
        ...


_lock = threading.Lock()
_registry: dict[str, type[Any]] = {}
A = TypeVar("A", bound=type[Any])


def action(name: str) -> Callable[[A], A]:
    """Class decorator: register an action class under ``name`` (also its serialised
    ``"action"`` value) and its serialization tag ``"escalation.action.<name>"``.

    The class must be an attrs class with an ``apply(ticket, context)`` method. Raises
    ValidationError for a malformed name or one already taken by another class.

    >>> action_class("set_priority").__name__
    'SetPriority'
    """
    if not isinstance(name, str) or not name.replace("_", "a").isalnum() or name != name.lower():
        raise ValidationError(
            f"name={name!r} is not an action name; use lower-case words joined by '_'"
        )

    def register(cls: A) -> A:
        if not attrs.has(cast(type, cls)) or not callable(getattr(cls, "apply", None)):
            raise ValidationError(f"{cls!r} is not an attrs class with an apply() method")
        with _lock:
            known = _registry.get(name)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise ValidationError(f"action name {name!r} is already taken by {known!r}")
            cls.name = name
            # Resolve string annotations now, while the defining module's names are there; a
            # forward reference is left for cattrs to resolve when first used.
            with contextlib.suppress(NameError):
                attrs.resolve_types(cls)
            module = cls.__module__
            public = "csmcore.escalation" if module.startswith("csmcore.escalation.") else module
            serializable(f"escalation.action.{name}", aliases=(f"{public}:{cls.__qualname__}",))(
                cls
            )
            _registry[name] = cls
        return cls

    return register


def actions() -> tuple[str, ...]:
    """The registered action names, sorted."""
    return tuple(sorted(_registry))


def action_class(name: object) -> type[Any]:
    """The class registered as ``name``; ValidationError naming the known ones otherwise."""
    found = _registry.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValidationError(
            f"action={name!r} is not a known action; known: {list(actions())}",
            field="action",
            value=name,
        )
    return found


def action_name(value: object) -> str:
    """The registered name of an action value; ValidationError if it is not one."""
    name = getattr(type(value), "name", None)
    if not isinstance(name, str) or _registry.get(name) is not type(value):
        raise invalid_type(
            "action", value, f"an action registered with @action, one of {list(actions())}"
        )
    return name


# --------------------------------------------------------------------------------------------
# Built-in actions
# --------------------------------------------------------------------------------------------


def _text(argument: str) -> Any:
    def check(_: object, __: object, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise invalid_type(argument, value, "a non-empty string")
        check_text(value, argument)

    return check


def _optional(argument: str) -> Any:
    return attrs.validators.optional(_text(argument))


def _tags(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise invalid_type("tags", value, "a tag or a collection of tags")
    tags = frozen_set(value, "tags", "tags (non-empty strings)")
    if not tags:
        raise ValidationError("tags=() is empty; give at least one tag", field="tags")
    for tag in tags:
        if not isinstance(tag, str) or not tag or tag != tag.strip():
            raise ValidationError(f"tags holds {tag!r}; a tag is a non-empty string", field="tags")
        check_text(tag, "tag")
    return tuple(sorted(tags))


def _priority(value: object) -> Priority:
    return coerce_enum(Priority, value, "priority")


def _status(value: object) -> Status:
    return coerce_enum(Status, value, "status")


def _merged(ticket: Ticket) -> bool:
    """A merged ticket takes no further event: the actions that change a ticket do nothing."""
    return ticket.merged_into is not None


def _finish(ticket: Ticket, change: tuple[Ticket, Any]) -> ActionResult:
    new, event = change
    return ActionResult(ticket=new, events=(event,))


@action("set_priority")
@attrs.frozen(kw_only=True)
class SetPriority:
    """Set the ticket's priority (no event when it already has it, or on a merged ticket)."""

    name: ClassVar[str]
    priority: Priority = attrs.field(converter=_priority)

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        """A :class:`~csmcore.tickets.PriorityChanged` by the rule."""
        if ticket.priority is self.priority or _merged(ticket):
            return ActionResult(ticket=ticket)
        return _finish(ticket, ticket.set_priority(context.at, self.priority, actor=context.actor))


@action("assign")
@attrs.frozen(kw_only=True)
class Assign:
    """Assign to an agent and/or a group (None leaves that part as it is; give at least one).
    No event when the ticket is already so assigned, or is merged."""

    name: ClassVar[str]
    agent: str | None = attrs.field(default=None, validator=_optional("agent"))
    group: str | None = attrs.field(default=None, validator=_optional("group"))

    def __attrs_post_init__(self) -> None:
        if self.agent is None and self.group is None:
            raise ValidationError("Assign needs an agent, a group or both", field="agent")

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        """An :class:`~csmcore.tickets.Assigned` by the rule."""
        agent = ticket.assignee if self.agent is None else self.agent
        group = ticket.group if self.group is None else self.group
        if (agent, group) == (ticket.assignee, ticket.group) or _merged(ticket):
            return ActionResult(ticket=ticket)
        return _finish(ticket, ticket.assign(context.at, agent, group, actor=context.actor))


@action("add_tags")
@attrs.frozen(kw_only=True)
class AddTags:
    """Add tags (no event when the ticket has them all, or is merged)."""

    name: ClassVar[str]
    tags: tuple[str, ...] = attrs.field(converter=_tags)

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        """A :class:`~csmcore.tickets.TagsChanged` by the rule."""
        missing = frozenset(self.tags) - ticket.tags
        if not missing or _merged(ticket):
            return ActionResult(ticket=ticket)
        return _finish(ticket, ticket.tag(context.at, add=missing, actor=context.actor))


@action("remove_tags")
@attrs.frozen(kw_only=True)
class RemoveTags:
    """Remove tags (no event when the ticket has none of them, or is merged)."""

    name: ClassVar[str]
    tags: tuple[str, ...] = attrs.field(converter=_tags)

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        """A :class:`~csmcore.tickets.TagsChanged` by the rule."""
        present = frozenset(self.tags) & ticket.tags
        if not present or _merged(ticket):
            return ActionResult(ticket=ticket)
        return _finish(ticket, ticket.tag(context.at, remove=present, actor=context.actor))


@action("set_status")
@attrs.frozen(kw_only=True)
class SetStatus:
    """Move the ticket to a status category (no event when it is already there). A move the
    ticket's history forbids (a closed ticket, a return to new) raises InvalidTransition."""

    name: ClassVar[str]
    status: Status = attrs.field(converter=_status)

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        """A :class:`~csmcore.tickets.StatusChanged` (or Reopened) by the rule."""
        if ticket.status is self.status:
            return ActionResult(ticket=ticket)
        return _finish(ticket, ticket.set_status(context.at, self.status, actor=context.actor))


NOTE_CHANNEL: Final = "ticket_note"
"""The channel of the request that carries an internal note's text to the host."""


@action("add_note")
@attrs.frozen(kw_only=True)
class AddNote:
    """Add an internal note: a :class:`~csmcore.tickets.Commented` event (``public=False``,
    written by the system, the rule as actor) and, since ticket events carry no text, a
    :class:`NotificationRequest` on channel ``"ticket_note"`` to the ticket with ``data``
    ``{"text": text}``, for the host to store the text. Skipped (nothing) on a closed ticket."""

    name: ClassVar[str]
    text: str = attrs.field(validator=_text("text"))

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        """The note event and the request carrying its text."""
        if ticket.status is Status.CLOSED:
            return ActionResult(ticket=ticket)
        new, event = ticket.comment(context.at, Role.SYSTEM, public=False, actor=context.actor)
        request = NotificationRequest(
            channel=NOTE_CHANNEL,
            recipient=ticket.id,
            template="internal_note",
            data={**_about(context), "text": self.text},
            not_before=context.at,
            idempotency_key=context.idempotency_key,
            ticket_id=ticket.id,
        )
        return ActionResult(ticket=new, events=(event,), requests=(request,))


def _about(context: ActionContext) -> dict[str, Any]:
    firing = context.firing
    return {
        "ticket_id": firing.ticket_id,
        "rule": firing.rule,
        "level": firing.level,
        "target": firing.target,
        "cycle": firing.cycle,
    }


_RECIPIENTS: Final[dict[str, Callable[[Ticket, ActionContext], str | None]]] = {
    # the ticket as the level's actions leave it (an Assign before the Notify counts)
    "$assignee": lambda t, _: t.assignee,
    "$group": lambda t, _: t.group,
    # the requester at the firing instant, as the rule's conditions and GrantPoints read
    # them: a run made after a change of requester reaches whom an on-time run did
    "$requester": lambda t, c: t.as_of(c.firing.at).requester,
}


def _data(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise invalid_type("data", value, "a mapping of names to JSON-safe values")
    out = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise invalid_type("data key", key, "a non-empty string")
        check_text(key, "data key")
        if isinstance(item, str):
            check_text(item, f"data[{key!r}]")
        elif item is not None and not isinstance(item, bool | int | float):
            raise invalid_type(f"data[{key!r}]", item, "a string, a number, a bool or None")
        elif isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"data[{key!r}]={item!r} is not a finite number", field="data")
        out[key] = item
    return out


@action("notify")
@attrs.frozen(kw_only=True)
class Notify:
    """Ask for a notification: ``channel`` (``"email"``, ``"slack"``, any name the host's
    notifiers know), ``recipient`` (an address, or ``"$assignee"``, ``"$group"`` resolved
    from the ticket as the level's actions leave it, after an :class:`Assign` before it, or
    ``"$requester"``, the requester at the firing instant, so that a run made after a change
    of requester reaches whom a run on time did; an unset one skips the notification),
    ``template`` and template ``data``.

    ``business_hours=True`` holds the notification until the next open time of ``calendar``
    (a calendar name of the SLA book; None: its default calendar).
    """

    name: ClassVar[str]
    channel: str = attrs.field(validator=_text("channel"))
    recipient: str = attrs.field(validator=_text("recipient"))
    template: str = attrs.field(validator=_text("template"))
    data: Mapping[str, Any] = attrs.field(factory=dict, converter=_data, hash=False)
    business_hours: bool = attrs.field(default=False, validator=is_bool)
    calendar: str | None = attrs.field(default=None, validator=_optional("calendar"))

    def __attrs_post_init__(self) -> None:
        if self.recipient.startswith("$") and self.recipient not in _RECIPIENTS:
            raise ValidationError(
                f"recipient={self.recipient!r} is not a known placeholder; accepted: "
                f"{sorted(_RECIPIENTS)} or an address",
                field="recipient",
                value=self.recipient,
            )
        if self.calendar is not None and not self.business_hours:
            raise ValidationError(
                f"calendar={show(self.calendar)} applies with business_hours=True only",
                field="calendar",
                value=self.calendar,
            )

    def apply(self, ticket: Ticket, context: ActionContext) -> ActionResult:
        """A :class:`NotificationRequest`; the ticket is unchanged."""
        reader = _RECIPIENTS.get(self.recipient)
        recipient = self.recipient if reader is None else reader(ticket, context)
        if recipient is None:
            return ActionResult(ticket=ticket)
        at = require_aware(context.at, "at")
        if self.business_hours:
            at = context.book.calendar_named(self.calendar).next_open(at)
        request = NotificationRequest(
            channel=self.channel,
            recipient=recipient,
            template=self.template,
            data={**self.data, **_about(context)},
            not_before=at,
            idempotency_key=context.idempotency_key,
            ticket_id=ticket.id,
            business_hours=self.business_hours,
            calendar=self.calendar,
        )
        return ActionResult(ticket=ticket, requests=(request,))


_ = Commented  # the note's event class, named in the docs

# Resolved here, where the names exist: the package presents these classes as its own.
attrs.resolve_types(NotificationRequest)
