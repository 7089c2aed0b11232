"""Composable, serialisable predicates over subjects: tickets, and the subjects later engines add.

A condition answers one question about a :class:`~csmcore.tickets.Ticket`: ``cond.matches(t)``.
SLA policies use them to pick the policy that applies, escalation rules to decide when to fire.
Conditions are immutable values; ``&``, ``|`` and ``~`` combine them, and they round-trip through
:func:`csmcore.serialization.to_data` / :func:`~csmcore.serialization.from_data` to JSON-safe data.

>>> from csmcore.conditions import Field, HasTags
>>> urgent_vip = (Field("priority") >= "high") & HasTags({"vip"})
>>> urgent_vip
All(Compare('priority', '>=', <Priority.HIGH: 'high'>), HasTags(['vip']))

Every condition is checked when it is built: an unknown field name, an operator a field does not
support, or a value of the wrong type (``Field("priority") == "hgh"``) raises
:class:`~csmcore.errors.ValidationError` there and then, never later while evaluating.

Conditions read named fields of a *subject* through readers the subject's own package registers
(:func:`register_subject` with a :class:`Subject` of :class:`SubjectField`): this package never
imports the domain. :mod:`csmcore.tickets` registers the ticket's fields when it is imported
(``import csmcore`` does). The ticket's fields and the attribute each one reads (``FIELDS`` gives
the kind of each):

=================  ===========  =================================================================
field              kind         reads
=================  ===========  =================================================================
``status``         enum         ``ticket.status`` (a :class:`~csmcore.tickets.Status` category)
``status_name``    str          ``ticket.status_name`` (custom name, else the category value)
``priority``       enum         ``ticket.priority``; ``<``/``>`` compare by ``Priority.rank``
``channel``        enum         ``ticket.channel``
``created_by``     enum         ``ticket.created_by`` (a :class:`~csmcore.tickets.Role`)
``group``          str          ``ticket.group`` (None when unassigned)
``assignee``       str          ``ticket.assignee`` (None when unassigned)
``requester``      str          ``ticket.requester``
``subject``        str          ``ticket.subject``
``tags``           tags         ``ticket.tags`` (only through :class:`HasTags`)
``merged``         bool         ``ticket.merged_into is not None``
``fields.<name>``  custom       ``ticket.fields.get(name)`` (None when unset)
=================  ===========  =================================================================

Operators by kind: ``Eq`` and ``In`` on every kind but ``tags``; ``Compare`` on ``priority`` and
custom fields (numbers compare with numbers, strings with strings; anything else, including an
unset field, does not match). Custom field values are compared with their type: ``True`` does not
equal ``1``, while ``1`` equals ``1.0``.

Serialised form: ``{"op": "eq" | "in" | "cmp" | "tags" | "all" | "any" | "not" | "always" |
"never", ...}``; malformed data raises :class:`~csmcore.errors.SerializationError` naming the path
(``$.conditions[1].value``).

Code that walks conditions (the codec, SQL push-down) dispatches on the node class through a
:class:`ConditionVisitor`; each class names its serialised ``data_op`` and its ``children``, and a
new kind of node registers its handlers (:func:`register_condition_codec` for the codec).
"""

from __future__ import annotations

from collections.abc import Iterator

from csmcore._boundary import guarded
from csmcore.conditions._codec import (
    register_condition_codec,
    structure_condition,
    unstructure_condition,
)
from csmcore.conditions._dispatch import ConditionVisitor
from csmcore.conditions._nodes import (
    MAX_CONDITION_DEPTH,
    All,
    Always,
    AnyOf,
    Compare,
    Condition,
    Eq,
    Field,
    HasTags,
    In,
    Never,
    Not,
)
from csmcore.conditions._subjects import (
    CUSTOM_PREFIX,
    FIELDS,
    KINDS,
    Subject,
    SubjectField,
    field_kind,
    register_subject,
    resolve_field,
    subjects,
    unregister_subject,
)

__all__ = [
    "CUSTOM_PREFIX",
    "FIELDS",
    "KINDS",
    "MAX_CONDITION_DEPTH",
    "All",
    "Always",
    "AnyOf",
    "Compare",
    "Condition",
    "ConditionVisitor",
    "Eq",
    "Field",
    "HasTags",
    "In",
    "Never",
    "Not",
    "Subject",
    "SubjectField",
    "field_kind",
    "register_condition_codec",
    "register_subject",
    "resolve_field",
    "structure_condition",
    "subjects",
    "unregister_subject",
    "unstructure_condition",
    "walk",
]


@guarded
def walk(condition: Condition) -> Iterator[Condition]:
    """``condition`` and every condition inside it, depth first, parents before children.

    >>> [type(c).__name__ for c in walk(Not(All(Always(), Never())))]
    ['Not', 'All', 'Always', 'Never']
    """
    yield condition
    for child in condition.children:
        yield from walk(child)
