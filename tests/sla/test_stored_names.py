"""Data written before the renames of 0.1.0.dev0 (``SlaTarget.clock`` is now ``timer``) reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from csmcore.errors import SerializationError
from csmcore.serialization import from_data, to_data, type_info
from csmcore.sla import CustomTimer, SlaBook, SlaMetric, SlaPolicy, SlaTarget

FIXTURE = Path(__file__).parents[1] / "fixtures" / "release_0_1_0_dev0" / "documents.json"


def _documents() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())
    return data


def test_targets_written_with_the_old_clock_key_read_as_timers() -> None:
    documents = _documents()
    old = [t for p in documents["policies"] for t in p["targets"] if t.get("clock") is not None]
    assert old  # the fixture has custom targets written under "clock"
    policies = [from_data(p, SlaPolicy) for p in documents["policies"]]
    timers = [t.timer for p in policies for t in p.targets if t.metric is SlaMetric.CUSTOM]
    assert len(timers) == len(old)
    assert all(isinstance(timer, CustomTimer) for timer in timers)
    book = from_data(documents["book"], SlaBook)
    assert book.policies == tuple(sorted(policies, key=lambda p: (p.position, p.name, p.version)))


def test_targets_are_written_with_the_timer_key_and_read_back() -> None:
    policy = from_data(_documents()["policies"][0], SlaPolicy)
    for target in policy.targets:
        data = to_data(target)
        assert "timer" in data
        assert "clock" not in data
        assert from_data(data, SlaTarget) == target


def test_a_target_with_both_the_old_and_the_new_key_is_refused() -> None:
    policy = from_data(_documents()["policies"][0], SlaPolicy)
    custom = next(t for t in policy.targets if t.timer is not None)
    data = to_data(custom)
    data["clock"] = data["timer"]
    with pytest.raises(SerializationError, match="'timer' and its old name 'clock'"):
        from_data(data, SlaTarget)


def test_the_custom_timer_tag_keeps_its_old_module_path_alias() -> None:
    assert type_info("sla_custom_timer").cls is CustomTimer
    assert type_info("csmcore.sla:CustomClock").cls is CustomTimer
