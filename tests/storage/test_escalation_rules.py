"""Escalation rules in the ``rules`` document role: stored versioned and read back equal, on
the memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from csmcore.conditions import Eq, Field
from csmcore.errors import ConcurrencyError
from csmcore.escalation import (
    AddNote,
    ConditionHeld,
    DueOffset,
    EscalationLevel,
    EscalationRule,
    Notify,
    PercentUsed,
    SetPriority,
)
from csmcore.storage import Store, open_store

H = timedelta(hours=1)


def rule(version: int) -> EscalationRule:
    return EscalationRule(
        name="reply-75",
        version=version,
        condition=(Field("priority") >= "high") & (Field("sla.max_percent") > 10),
        levels=[
            EscalationLevel(
                trigger=PercentUsed(target="first_reply", percent="75.5"),
                actions=[
                    Notify(
                        channel="email",
                        recipient="$group",
                        template="warn",
                        data={"why": "75 %"},
                        business_hours=True,
                    )
                ],
            ),
            EscalationLevel(
                trigger=DueOffset.after("first_reply", 2 * H, business_hours=True),
                actions=[SetPriority(priority="urgent"), AddNote(text="paged")],
            ),
            EscalationLevel(
                trigger=ConditionHeld(duration=H, condition=Eq("assignee", None)),
                actions=[AddNote(text="still nobody")],
            ),
        ],
    )


def check(store: Store) -> None:
    try:
        first = store.rules.put("reply-75", rule(1), expected_version=0)
        second = store.rules.put("reply-75", rule(2), expected_version=1)
        assert (first.version, second.version) == (1, 2)
        assert store.rules.get("reply-75").value == rule(2)
        assert store.rules.get("reply-75", version=1).value == rule(1)
        assert [v.value for v in store.rules.history("reply-75")] == [rule(1), rule(2)]
        with pytest.raises(ConcurrencyError):
            store.rules.put("reply-75", rule(3), expected_version=1)
        with store.unit_of_work() as uow:
            uow.rules.put("other", rule(1), expected_version=0)
        assert store.rules.keys() == ["other", "reply-75"]
    finally:
        store.close()


def test_memory() -> None:
    check(open_store("memory://"))


def test_sqlite(sqlite_factory: Callable[[], Store]) -> None:
    check(sqlite_factory())


def test_postgres(postgres_factory: Callable[[], Store]) -> None:
    check(postgres_factory())
