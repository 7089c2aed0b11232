"""The registry of storage roles: each role is declared once, and stores say which they offer.

A role has a name (the attribute of a store and of a unit of work that gives it), the
:mod:`~csmcore.storage.protocols` protocol it satisfies, whether every store must offer it, and,
for a document role, the type of value it holds. The four roles of the first release are required:
``tickets``, ``calendars`` (:class:`~csmcore.calendars.BusinessCalendar`), ``policies``
(:class:`~csmcore.sla.SlaPolicy`) and ``rules``. Roles declared later are optional, so a store
written before them keeps working: the loyalty ``ledger`` (declared in
:mod:`csmcore.storage.ledger`), ``firings`` (escalation firings recorded once, and the schedule
of tickets) and ``outbox`` (notifications waiting for delivery).

A store lists the roles it offers in a ``roles`` attribute (a set of role names); a store
without one offers the required roles. :func:`role_of` gives a role of a store, or raises
:class:`~csmcore.errors.UnsupportedRole` naming the store, the role and the roles it offers.

>>> from csmcore.storage import open_store
>>> store = open_store("memory://")
>>> sorted(offered_roles(store))
['calendars', 'firings', 'ledger', 'outbox', 'policies', 'rules', 'tickets']
>>> role_of(store, "policies") is store.policies
True
>>> storage_role("calendars").check_value("not a calendar")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
csmcore.errors.ValidationError: the calendars role holds ... values; value='not a calendar' is ...
>>> store.close()
"""

from __future__ import annotations

import reprlib
import threading
from collections.abc import Callable
from typing import Any

import attrs

from csmcore._boundary import guard_class, guarded
from csmcore.calendars import BusinessCalendar
from csmcore.errors import SerializationError, UnsupportedRole, ValidationError, invalid_type
from csmcore.serialization import tag_of
from csmcore.sla import SlaPolicy
from csmcore.storage.protocols import (
    CalendarRepository,
    FiringRepository,
    OutboxRepository,
    PolicyRepository,
    RuleRepository,
    TicketRepository,
)

__all__ = [
    "BUILTIN_ROLES",
    "CALENDARS",
    "ESCALATION_ROLES",
    "FIRINGS",
    "OUTBOX",
    "POLICIES",
    "RULES",
    "TICKETS",
    "StorageRole",
    "declare_role",
    "offered_roles",
    "role_of",
    "storage_role",
    "storage_roles",
]


_REPR = reprlib.Repr()
_REPR.maxother = 60  # enough to recognise a value, short enough for a message


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _has_tag(value: object) -> bool:
    try:
        tag_of(type(value))
    except SerializationError:
        return False
    return True


@guard_class
@attrs.frozen(kw_only=True)
class StorageRole:
    """One storage role, as declared with :func:`declare_role`.

    ``name`` is the attribute of a store (and of a unit of work) that gives the role;
    ``protocol`` the :class:`typing.Protocol` the role's object satisfies; ``required`` says
    whether every store must offer it (only the roles of the first release are required).
    For a document role, ``document`` is True and ``value_type`` the type (or types) of the
    values it holds, or None when ``accepts`` (a predicate) decides; ``description`` says in
    words what the role holds, for messages.
    """

    name: str
    protocol: type
    required: bool = False
    document: bool = False
    value_type: type | tuple[type, ...] | None = None
    accepts: Callable[[object], bool] | None = attrs.field(default=None, eq=False)
    description: str = ""

    def check_value(self, value: object) -> object:
        """Return ``value`` when this document role holds it; else raise
        :class:`~csmcore.errors.ValidationError` naming the role, the value's type and what the
        role accepts. Roles that are not document roles accept anything here."""
        if not self.document:
            return value
        if self.value_type is not None:
            ok = isinstance(value, self.value_type)
        else:
            ok = self.accepts is None or self.accepts(value)
        if not ok:
            raise ValidationError(
                f"the {self.name} role holds {self.description}; value={_REPR.repr(value)} "
                f"is a {_type_name(type(value))}"
            )
        return value


_roles: dict[str, StorageRole] = {}
_lock = threading.Lock()


@guarded
def declare_role(role: StorageRole) -> StorageRole:
    """Add ``role`` to the registry and return it.

    Declaring the same role again is harmless; declaring another role under a name already
    taken, or a name that is not a Python identifier, raises
    :class:`~csmcore.errors.ValidationError`. Declare new roles optional (``required=False``):
    stores written before the role existed do not offer it.
    """
    if not isinstance(role, StorageRole):
        raise ValidationError(f"role={role!r} is a {type(role).__name__}; expected a StorageRole")
    if not role.name.isidentifier() or role.name.startswith("_"):
        raise ValidationError(
            f"role name {role.name!r} is not a public Python identifier such as 'firings'"
        )
    with _lock:
        found = _roles.get(role.name)
        if found is not None and found != role:
            raise ValidationError(
                f"the storage role {role.name!r} is already declared as {found!r}; "
                "choose another name"
            )
        _roles[role.name] = role
    return role


def storage_role(name: str) -> StorageRole:
    """The role declared under ``name``; :class:`~csmcore.errors.ValidationError` naming the
    declared roles when there is none."""
    found = _roles.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValidationError(
            f"{name!r} is not a declared storage role; declared roles: {sorted(_roles)}"
        )
    return found


def storage_roles() -> tuple[StorageRole, ...]:
    """Every declared role, in the order of declaration (the required ones first)."""
    return tuple(_roles.values())


def offered_roles(store: object) -> frozenset[str]:
    """The names of the roles ``store`` (or a unit of work) offers: its ``roles`` attribute,
    else the required roles (a store written before roles were declared)."""
    declared = getattr(store, "roles", None)
    if declared is None:
        return frozenset(r.name for r in _roles.values() if r.required)
    return frozenset(declared)


def _describe(store: object) -> str:
    url = getattr(store, "url", None)
    kind = type(store).__qualname__
    return f"{kind} at {url}" if isinstance(url, str) else kind


@guarded
def role_of(store: object, name: str) -> Any:
    """The object that plays role ``name`` in ``store`` (a store or a unit of work).

    Raises :class:`~csmcore.errors.ValidationError` when ``name`` is not a declared role, and
    :class:`~csmcore.errors.UnsupportedRole` naming the store, the role and the roles it offers
    when the store does not offer it (or lists it in ``roles`` without an attribute for it).
    """
    role = storage_role(name)
    if not hasattr(store, "roles") and not hasattr(store, "tickets"):  # not a store at all
        raise invalid_type(
            "store", store, "a store (csmcore.storage.open_store) or one of its units of work"
        )
    offered = offered_roles(store)
    if role.name not in offered:
        raise UnsupportedRole(
            f"the store {_describe(store)} does not offer the storage role {role.name!r}; "
            f"it offers {sorted(offered)}. Use a store whose adapter implements "
            f"{role.protocol.__qualname__}, or do without {role.name!r}"
        )
    try:
        return getattr(store, role.name)
    except AttributeError as err:  # an adapter bug: it lists a role it has nothing for
        raise UnsupportedRole(
            f"the store {_describe(store)} lists the role {role.name!r} in its roles but has "
            f"no attribute {role.name!r} ({err}); an adapter must give the store and its units "
            f"of work an attribute {role.name} implementing {role.protocol.__qualname__} for "
            "every role its roles attribute lists"
        ) from err


TICKETS = declare_role(
    StorageRole(
        name="tickets",
        protocol=TicketRepository,
        required=True,
        description="tickets with their event history",
    )
)
"""Tickets with their event history (:class:`~csmcore.storage.protocols.TicketRepository`)."""

CALENDARS = declare_role(
    StorageRole(
        name="calendars",
        protocol=CalendarRepository,
        required=True,
        document=True,
        value_type=BusinessCalendar,
        description="csmcore.calendars.BusinessCalendar values",
    )
)
"""Business calendars (:class:`~csmcore.storage.protocols.CalendarRepository`)."""

POLICIES = declare_role(
    StorageRole(
        name="policies",
        protocol=PolicyRepository,
        required=True,
        document=True,
        value_type=SlaPolicy,
        description="csmcore.sla.SlaPolicy values",
    )
)
"""SLA policies (:class:`~csmcore.storage.protocols.PolicyRepository`)."""

RULES = declare_role(
    StorageRole(
        name="rules",
        protocol=RuleRepository,
        required=True,
        document=True,
        accepts=_has_tag,
        description=(
            "escalation rules: for now any csmcore type with a registered serialization tag "
            "(see csmcore.serialization.serializable)"
        ),
    )
)
"""Escalation rules (:class:`~csmcore.storage.protocols.RuleRepository`); until escalation
gives them a type, any csmcore type with a registered serialization tag."""

BUILTIN_ROLES = frozenset(r.name for r in (TICKETS, CALENDARS, POLICIES, RULES))
"""The roles every built-in store offers."""

FIRINGS = declare_role(
    StorageRole(
        name="firings",
        protocol=FiringRepository,
        description="escalation firings, each recorded once, and the schedule of tickets",
    )
)
"""Escalation firings and the per-ticket schedule
(:class:`~csmcore.storage.protocols.FiringRepository`); optional."""

OUTBOX = declare_role(
    StorageRole(
        name="outbox",
        protocol=OutboxRepository,
        description="notifications waiting for delivery (the transactional outbox)",
    )
)
"""The notification outbox (:class:`~csmcore.storage.protocols.OutboxRepository`); optional."""

ESCALATION_ROLES = frozenset(r.name for r in (FIRINGS, OUTBOX))
"""The optional roles the built-in stores (memory, SQLite, PostgreSQL) also offer."""
