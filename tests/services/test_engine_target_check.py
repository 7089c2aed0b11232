"""The engine's check of target keys against its book: ``EscalationEngine(store, book, rules)``
refuses a trigger on a key no policy has, a ``GrantPoints`` policy's ``per_target`` key no
policy has, and a condition reading ``sla.<target>.*`` of such a key; the rules read from the
store (``rules=None``) are checked the same way when ``rules()`` reads a new set of stored
versions, before anything is written. Every valid setup is accepted: targets of any policy and
any version of it, keyed by name or by metric, held conditions (no target), conditions reading
the SLA fields of a target of the book or of none; and an accepted trigger fires."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from csmcore.calendars import BusinessCalendar
from csmcore.conditions import Always, Condition, Eq, Field, HasTags
from csmcore.errors import ValidationError
from csmcore.escalation import (
    AddTags,
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    GrantPoints,
    Notify,
    PercentUsed,
)
from csmcore.loyalty import Program, RecoveryPolicy, SpendRule, Tier, TierPolicy
from csmcore.services import EscalationEngine
from csmcore.services import _book_check as book_check
from csmcore.services import _rule_source as engine_module
from csmcore.sla import SlaBook, SlaPolicy, SlaTarget
from csmcore.storage import Store, open_store, role_of
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


def grant(name: str, per_target: dict[str, int], trigger: object = None) -> EscalationRule:
    """A rule granting points (``per_target``) at the first reply's breach, after a tag."""
    return EscalationRule(
        name=name,
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=trigger or PercentUsed(target="first_reply", percent=100),  # type: ignore[arg-type]
                actions=[
                    AddTags(tags={name}),
                    GrantPoints(policy=RecoveryPolicy(points=100, per_target=per_target)),
                ],
            )
        ],
    )


BOOK_KEYS = "first_reply, reply, total_resolution, vip reply"

VALID = [
    rule("vip", PercentUsed(target="vip reply", percent=50)),  # a named target, 1st policy
    rule("metric", DueOffset.after("total_resolution", H)),  # keyed by metric, 2nd policy
    rule("renamed", PercentUsed(target="reply", percent=75)),  # only in version 2
    rule("held", ConditionHeld(duration=H)),  # no target
    rule("both", PercentUsed(target="first_reply", percent=50), ConditionHeld(duration=H)),
    # per_target keys of a target of one policy only (the vip one, version 2 of standard), of
    # targets of several, worth nothing (0 leaves a target out), on a held level (no target)
    grant("grant", {"vip reply": 300, "reply": 200, "first_reply": 150, "total_resolution": 0}),
    grant("held-grant", {"vip reply": 5}, ConditionHeld(duration=1000 * H)),
    grant("no-keys", {}),
    # conditions reading the SLA fields of a target of the book, or of no target
    EscalationRule(
        name="conditions",
        condition=(Field("sla.vip reply.percent") > 10) | Eq("sla.any_breached", True),
        levels=[
            EscalationLevel(
                trigger=ConditionHeld(
                    duration=1000 * H,
                    condition=(Field("sla.max_percent") > 50) & Eq("sla.reply.state", None),
                ),
                actions=[AddTags(tags={"conditions"})],
            )
        ],
    ),
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


@pytest.mark.parametrize("key", ["vip_reply", "frist_reply", "resolution", "Reply"])
def test_a_per_target_key_no_policy_has_is_refused(key: str) -> None:
    # a typo'd per_target key would silently leave the meant target at the policy's points
    store = open_store("memory://")
    try:
        typo = grant("recovery", {"first_reply": 150, key: 300})
        with pytest.raises(ValidationError) as caught:
            EscalationEngine(store, BOOK, [*VALID, typo])
    finally:
        store.close()
    assert str(caught.value) == (
        f"rules[{len(VALID)}] ('recovery') levels[0] actions[1] (GrantPoints): per_target key "
        f"{key!r} is no target of the book, so its points would never apply (a breach earns "
        f"the policy's points=100 instead); the book's targets: {BOOK_KEYS}"
    )
    assert (caught.value.field, caught.value.value) == ("per_target", key)


def test_a_grant_on_a_level_of_a_valid_target_is_checked_too() -> None:
    # the level's trigger is valid: the per_target key alone is named
    store = open_store("memory://")
    try:
        held = grant("held", {"first reply": 1}, ConditionHeld(duration=H))
        with pytest.raises(ValidationError, match=r"\('held'\) levels\[0\] actions\[1\]"):
            EscalationEngine(store, BOOK, [held])
    finally:
        store.close()


def _conditioned(rule_condition: Condition, held: Condition | None = None) -> EscalationRule:
    return EscalationRule(
        name="watch",
        condition=rule_condition,
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=50),
                actions=[AddTags(tags={"half"})],
            ),
            EscalationLevel(
                trigger=ConditionHeld(duration=H, condition=held),
                actions=[AddTags(tags={"held"})],
            ),
        ],
    )


@pytest.mark.parametrize(
    ("watch", "where", "field"),
    [
        (
            _conditioned(Field("sla.frist_reply.percent") > 50),
            "condition",
            "sla.frist_reply.percent",
        ),
        (  # a typo'd "state is None" would always hold
            _conditioned(Always(), HasTags(["vip"]) & Eq("sla.resolution.state", None)),
            "levels[1] condition",
            "sla.resolution.state",
        ),
    ],
)
def test_a_condition_on_the_sla_of_a_target_the_book_lacks_is_refused(
    watch: EscalationRule, where: str, field: str
) -> None:
    key = field.split(".")[1]
    store = open_store("memory://")
    try:
        with pytest.raises(ValidationError) as caught:
            EscalationEngine(store, BOOK, [watch])
        assert str(caught.value) == (
            f"rules[0] ('watch') {where}: field {field!r} reads target {key!r}, which is no "
            "target of the book, so it always reads None; the book's targets: "
            f"{BOOK_KEYS}"
        )
        assert (caught.value.field, caught.value.value) == ("target", key)
        store.rules.put("watch", watch, expected_version=0)
        with pytest.raises(
            ValidationError,
            match=rf"^stored rule 'watch' \(version 1, named "
            rf"'watch'\) {re.escape(where)}: field {field!r}",
        ):
            EscalationEngine(store, BOOK).rules()
    finally:
        store.close()


# --- rules read from the store ------------------------------------------------------------------


def _state(store: Store) -> tuple[object, ...]:
    """Everything the engine writes: tickets, firing records, plans, outbox, ledger."""
    firings = role_of(store, "firings")
    tickets = sorted(store.tickets.find(Always()), key=lambda t: t.id)
    return (
        [(t.id, t.version) for t in tickets],
        sorted(f.firing.key_text for f in firings.list()),
        [firings.planned(t.id) for t in tickets],
        [m.key for m in role_of(store, "outbox").list()],
        [
            (e.key, e.points)
            for e in role_of(store, "ledger").read("ann", lambda s: tuple(s.entries))
        ],
    )


TYPO = EscalationRule(  # stored under "page": its second level's target is misspelt
    name="page-manager",
    condition=Always(),
    levels=[
        EscalationLevel(
            trigger=PercentUsed(target="first_reply", percent=50),
            actions=[AddTags(tags={"half"})],
        ),
        EscalationLevel(trigger=DueOffset.after("resolution", H), actions=[AddTags(tags={"late"})]),
    ],
)
TYPO_MESSAGE = (
    "stored rule 'page' (version {version}, named 'page-manager') levels[1]: target "
    "'resolution' is no target of the book, so the level would never fire; the book's "
    f"targets: {BOOK_KEYS}; store a corrected version: store.rules.put('page', <the rule "
    "corrected>, expected_version={version})"
)


def test_a_stored_rule_on_a_target_the_book_lacks_is_refused_until_corrected(
    store: Store,
) -> None:
    good = rule("warn", PercentUsed(target="first_reply", percent=50))
    store.rules.put("warn", good, expected_version=0)
    store.tickets.add_many([make_ticket("T-1", at=T0, requester="ann")])
    engine = EscalationEngine(store, BOOK)
    assert engine.ticket_changed("T-1") == T0 + 4 * H  # 50 % of standard's 8 hours
    assert len(engine.run(T0 + 5 * H).firings) == 1
    store.rules.put("page", TYPO, expected_version=0)
    before = _state(store)
    calls: list[Callable[[], object]] = [
        engine.rules,
        lambda: engine.run(T0 + 50 * H),
        engine.plan_all,
        lambda: engine.ticket_changed("T-1"),
        lambda: engine.dry_run(T0, T0 + 50 * H),
    ]
    for call in calls:
        with pytest.raises(ValidationError) as caught:
            call()
        assert str(caught.value) == TYPO_MESSAGE.format(version=1)
        assert (caught.value.field, caught.value.value) == ("target", "resolution")
        assert _state(store) == before  # refused before any unit of work wrote
    with pytest.raises(ValidationError) as caught:  # the plans may be the old rules'
        engine.next_due()
    assert str(caught.value) == TYPO_MESSAGE.format(version=1)
    # a new version still wrong is refused under its version; the corrected one runs
    store.rules.put("page", TYPO, expected_version=1)
    with pytest.raises(ValidationError, match=r"'page' \(version 2, named 'page-manager'\)"):
        engine.run(T0 + 50 * H)
    assert _state(store) == before
    fixed = EscalationRule(
        name="page-manager",
        condition=Always(),
        levels=[
            TYPO.levels[0],
            EscalationLevel(
                trigger=DueOffset.after("total_resolution", H), actions=[AddTags(tags={"late"})]
            ),
        ],
    )
    store.rules.put("page", fixed, expected_version=2)
    assert engine.rules() == (fixed, good)  # by key: "page" before "warn"
    assert engine.plan_all() == 1
    fired = engine.run(T0 + 50 * H).firings
    assert [(p.firing.rule, p.firing.target, p.firing.at) for p in fired] == [
        ("page-manager", "first_reply", T0 + 4 * H),
        ("page-manager", "total_resolution", T0 + 41 * H),
    ]


def test_a_stored_grant_with_a_per_target_key_the_book_lacks_is_refused(store: Store) -> None:
    store.rules.put("recovery", grant("recovery", {"frist_reply": 300}), expected_version=0)
    store.tickets.add_many([make_ticket("T-1", at=T0, requester="ann")])
    engine = EscalationEngine(store, BOOK)
    before = _state(store)
    with pytest.raises(ValidationError) as caught:
        engine.plan_all()
    assert str(caught.value) == (
        "stored rule 'recovery' (version 1, named 'recovery') levels[0] actions[1] "
        "(GrantPoints): per_target key 'frist_reply' is no target of the book, so its points "
        "would never apply (a breach earns the policy's points=100 instead); the book's "
        f"targets: {BOOK_KEYS}; store a corrected version: store.rules.put('recovery', <the "
        "rule corrected>, expected_version=1)"
    )
    assert (caught.value.field, caught.value.value) == ("per_target", "frist_reply")
    with pytest.raises(ValidationError, match="frist_reply"):
        engine.run(T0 + 50 * H)
    assert _state(store) == before
    fixed = grant("recovery", {"first_reply": 300})
    store.rules.put("recovery", fixed, expected_version=1)
    assert engine.plan_all() == 1
    (fired,) = engine.run(T0 + 50 * H).firings
    assert fired.firing.at == T0 + 8 * H  # the breach of standard's first reply
    assert _state(store)[4] == [("sla-recovery:T-1:first_reply:1", 300)]


def test_every_valid_setup_is_accepted_from_the_store() -> None:
    store = open_store("memory://")
    try:
        for index, valid in enumerate(VALID):
            store.rules.put(f"{index:02}", valid, expected_version=0)
        assert EscalationEngine(store, BOOK).rules() == tuple(VALID)
    finally:
        store.close()


def test_stored_rules_are_checked_once_per_set_of_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[int] = []
    check = book_check.check_against_book

    def counting(rules: object, book: SlaBook) -> None:
        checked.append(1)
        check(rules, book)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "check_against_book", counting)
    store = open_store("memory://")
    try:
        store.rules.put("vip", VALID[0], expected_version=0)
        engine = EscalationEngine(store, BOOK)
        first = engine.rules()
        assert engine.rules() is first
        assert engine.rules() is first
        assert len(checked) == 1
        store.rules.put("page", TYPO, expected_version=0)  # a new set of versions
        for _ in range(3):
            with pytest.raises(ValidationError, match="'page'"):
                engine.rules()
        assert len(checked) == 2
        store.rules.put("page", VALID[1], expected_version=1)
        assert engine.rules() == (VALID[1], VALID[0])
        assert len(checked) == 3
    finally:
        store.close()


def test_a_run_reads_the_stored_rules_once_and_a_rule_stored_meanwhile_waits(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run checks the stored rules as it starts and keeps them to its end, also where it
    # plans again the tickets of a member its grants wrote to: a bad rule stored while it
    # runs never stops it halfway (some tickets written, others not); the next run refuses it.
    program = Program(
        name="shop",
        rules=[SpendRule(name="base", points=Decimal(1))],
        tiers=TierPolicy(tiers=[Tier(name="gold", threshold=500)]),
    )
    gold = EscalationRule(  # reads the member: a grant to ann plans her tickets again
        name="gold",
        condition=Field("member.tier") == "gold",
        levels=[
            EscalationLevel(
                trigger=DueOffset.after("first_reply", H), actions=[AddTags(tags={"gold"})]
            )
        ],
    )
    store.rules.put("gold", gold, expected_version=0)
    store.rules.put("recovery", grant("recovery", {"first_reply": 600}), expected_version=0)
    store.tickets.add_many([make_ticket(f"T-{n}", at=T0, requester="ann") for n in (1, 2)])
    engine = EscalationEngine(store, BOOK, loyalty=program, batch_size=1)
    assert engine.plan_all() == 2
    stored: list[int] = []
    keep = engine._keep

    def keep_then_store_a_typo(states: Any) -> None:
        keep(states)  # called once a unit of work of the run committed
        if not stored:  # T-1's, which granted ann points: her tickets are planned again next
            stored.append(store.rules.put("page", TYPO, expected_version=0).version)

    monkeypatch.setattr(engine, "_keep", keep_then_store_a_typo)
    run = engine.run(T0 + 10 * H)
    assert stored == [1]
    assert [(p.firing.ticket_id, p.firing.rule) for p in run.firings] == [
        ("T-1", "recovery"),
        ("T-2", "recovery"),
        ("T-1", "gold"),  # ann is gold from the grant at 17:00 on: both tickets' 18:00
        ("T-2", "gold"),
    ]
    assert run.failed == ()
    with pytest.raises(ValidationError, match="stored rule 'page'"):
        engine.run(T0 + 20 * H)


@pytest.mark.parametrize(
    "trigger",
    [
        DueOffset.after("first_reply", H, business_hours=True, calendar="support-eu"),
        PercentUsed(target="first_reply", percent=50),  # a valid level before the bad one
        ConditionHeld(duration=H, business_hours=True, calendar="Support"),
    ],
)
def test_a_trigger_counting_in_a_calendar_the_book_lacks_is_refused(trigger: Any) -> None:
    # A business-time trigger names a calendar of the book; an unknown one failed every run of
    # every ticket (NotFound, retried each retry_failed) instead of being refused up front.
    book = attrs_evolve_calendars(BOOK, {"support": BOOK.calendar})
    bad = DueOffset.before("first_reply", H, business_hours=True, calendar="suport")
    levels: list[Any] = [trigger, bad] if isinstance(trigger, PercentUsed) else [trigger]
    named = "suport" if isinstance(trigger, PercentUsed) else trigger.calendar
    store = open_store("memory://")
    try:
        with pytest.raises(ValidationError) as caught:
            EscalationEngine(store, book, [*VALID, rule("cal", *levels)])
        message = str(caught.value)
        assert f"rules[{len(VALID)}] ('cal') levels[{len(levels) - 1}]" in message
        assert f"calendar {named!r} is no calendar of the book" in message
        assert message.endswith("the book's calendars: support (and the default, calendar=None)")
        assert (caught.value.field, caught.value.value) == ("calendar", named)
        # the named calendar and the default one are accepted
        good = DueOffset.after("first_reply", H, business_hours=True, calendar="support")
        EscalationEngine(store, book, [rule("ok", good, ConditionHeld(duration=2 * H))])
    finally:
        store.close()


def test_a_stored_rule_counting_in_a_calendar_the_book_lacks_is_refused(store: Store) -> None:
    bad = rule("cal", ConditionHeld(duration=H, business_hours=True, calendar="nope"))
    store.rules.put("cal", bad, expected_version=0)
    store.tickets.add_many([make_ticket("T-1", at=T0, requester="ann")])
    engine = EscalationEngine(store, BOOK)
    before = _state(store)
    with pytest.raises(ValidationError, match=r"stored rule 'cal' \(version 1.*calendar 'nope'"):
        engine.run(T0 + 5 * H)
    assert _state(store) == before


def attrs_evolve_calendars(book: SlaBook, calendars: dict[str, BusinessCalendar]) -> SlaBook:
    return SlaBook(policies=book.policies, calendar=book.calendar, calendars=calendars)


def _notify_held_to(calendar: str) -> EscalationRule:
    return EscalationRule(
        name="page",
        condition=Always(),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent=50),
                actions=[
                    AddTags(tags={"late"}),
                    Notify(
                        channel="email",
                        recipient="lead",
                        template="late",
                        business_hours=True,
                        calendar=calendar,
                    ),
                ],
            )
        ],
    )


def test_a_notification_held_to_a_calendar_the_book_lacks_is_refused() -> None:
    # Notify(business_hours=True, calendar=...) holds its message to a calendar of the book; an
    # unknown name was accepted and failed every run of every ticket the rule applies to
    # (NotFound "calendar 'suport' is not in this book", retried each retry_failed).
    book = attrs_evolve_calendars(BOOK, {"support": BOOK.calendar})
    store = open_store("memory://")
    try:
        with pytest.raises(ValidationError) as caught:
            EscalationEngine(store, book, [*VALID, _notify_held_to("suport")])
        message = str(caught.value)
        assert f"rules[{len(VALID)}] ('page') levels[0] actions[1] (Notify)" in message
        assert "calendar 'suport' is no calendar of the book" in message
        assert message.endswith("the book's calendars: support (and the default, calendar=None)")
        assert (caught.value.field, caught.value.value) == ("calendar", "suport")
        EscalationEngine(store, book, [_notify_held_to("support")])  # a calendar of the book
    finally:
        store.close()


def test_a_stored_notification_held_to_a_calendar_the_book_lacks_is_refused(
    store: Store,
) -> None:
    store.rules.put("page", _notify_held_to("nope"), expected_version=0)
    store.tickets.add_many([make_ticket("T-1", at=T0, requester="ann")])
    engine = EscalationEngine(store, BOOK)
    before = _state(store)
    with pytest.raises(ValidationError, match=r"stored rule 'page' \(version 1.*calendar 'nope'"):
        engine.run(T0 + 5 * H)
    assert _state(store) == before
