"""The engine's check of trigger targets against its book (``EscalationEngine(store, book,
rules)`` refuses a key no policy has) accepts every valid setup: targets of any policy and any
version of it, keyed by name or by metric, held conditions (no target), and rules read from
the store (not checked, as documented); and an accepted trigger fires."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Always, HasTags
from csmcore.errors import ValidationError
from csmcore.escalation import (
    AddTags,
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    PercentUsed,
)
from csmcore.services import EscalationEngine
from csmcore.sla import SlaBook, SlaPolicy, SlaTarget
from csmcore.storage import open_store
from csmcore.testing.builders import make_ticket

T0 = datetime(2025, 1, 6, 9, tzinfo=timezone.utc)
H = timedelta(hours=1)
BOOK = SlaBook(
    policies=[
        SlaPolicy(
            name="vip",
            position=0,
            condition=HasTags(["vip"]),
            targets=[
                SlaTarget(
                    metric="first_reply", within=2 * H, business_hours=False, name="vip reply"
                )
            ],
        ),
        SlaPolicy(
            name="standard",
            position=1,
            default=True,
            targets=[
                SlaTarget(metric="first_reply", within=8 * H, business_hours=False),
                SlaTarget(metric="total_resolution", within=40 * H, business_hours=False),
            ],
        ),
        SlaPolicy(  # a later version renames its target: open tickets may still hold the old
            name="standard",
            position=1,
            default=True,
            version=2,
            effective_from=T0 + 1000 * H,
            targets=[
                SlaTarget(metric="first_reply", within=8 * H, business_hours=False, name="reply")
            ],
        ),
    ],
    calendar=BusinessCalendar.weekly("09:00", "17:00", days="mon-fri", timezone="UTC"),
)


def rule(name: str, *triggers: PercentUsed | DueOffset | ConditionHeld) -> EscalationRule:
    return EscalationRule(
        name=name,
        condition=Always(),
        levels=[
            EscalationLevel(trigger=t, actions=[AddTags(tags={f"{name}-{n}"})])
            for n, t in enumerate(triggers)
        ],
    )


VALID = [
    rule("vip", PercentUsed(target="vip reply", percent=50)),  # a named target, 1st policy
    rule("metric", DueOffset.after("total_resolution", H)),  # keyed by metric, 2nd policy
    rule("renamed", PercentUsed(target="reply", percent=75)),  # only in version 2
    rule("held", ConditionHeld(duration=H)),  # no target
    rule("both", PercentUsed(target="first_reply", percent=50), ConditionHeld(duration=H)),
]


def test_every_valid_setup_is_accepted_and_a_named_target_fires() -> None:
    store = open_store("memory://")
    try:
        engine = EscalationEngine(store, BOOK, VALID)
        assert engine.rules() == tuple(VALID)
        store.tickets.add_many([make_ticket("T-1", at=T0, tags={"vip"})])
        assert engine.ticket_changed("T-1") == T0 + H  # 50 % of the vip target's 2 hours
        fired = engine.run(T0 + H)
        assert [(p.firing.rule, p.firing.target) for p in fired.firings] == [
            ("vip", "vip reply"),
            ("held", None),
            ("both", None),  # its held level; its first_reply level is not this ticket's
        ]
    finally:
        store.close()


@pytest.mark.parametrize(
    "target",
    ["vip_reply", "Reply", "first reply", "first_response"],
)
def test_a_key_no_version_of_any_policy_has_is_refused(target: str) -> None:
    store = open_store("memory://")
    try:
        with pytest.raises(ValidationError, match=f"target {target!r} is no target of the book"):
            EscalationEngine(store, BOOK, [*VALID, rule("typo", DueOffset.after(target, H))])
    finally:
        store.close()


def test_rules_read_from_the_store_are_not_checked() -> None:
    # documented: the engine reads them at each run, where a refusal would stop every rule
    store = open_store("memory://")
    try:
        typo = rule("typo", DueOffset.after("resolution", H))
        store.rules.put("typo", typo, expected_version=0)
        assert EscalationEngine(store, BOOK).rules() == (typo,)
    finally:
        store.close()
