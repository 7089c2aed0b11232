"""Data written before the renames of 0.1.0.dev0 reads, and is written in the same form:
``SlaTarget.clock`` is now ``timer`` in Python and keeps its serialized key ``"clock"``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from csmcore.errors import SerializationError
from csmcore.serialization import from_data, to_data, type_info
from csmcore.sla import CustomTimer, SlaBook, SlaMetric, SlaPolicy, SlaTarget
from tests.serialization.durations import as_written_now

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


def test_targets_are_written_as_the_old_release_wrote_them_but_durations_as_text() -> None:
    documents = _documents()
    policies = [from_data(p, SlaPolicy) for p in documents["policies"]]
    assert [to_data(p) for p in policies] == as_written_now(documents["policies"])
    assert to_data(from_data(documents["book"], SlaBook)) == as_written_now(documents["book"])
    for target in (t for p in policies for t in p.targets):
        data = to_data(target)
        assert "clock" in data
        assert "timer" not in data
        assert from_data(data, SlaTarget) == target


def test_the_python_name_is_not_a_data_key() -> None:
    policy = from_data(_documents()["policies"][0], SlaPolicy)
    custom = next(t for t in policy.targets if t.timer is not None)
    data = to_data(custom)
    data["timer"] = data.pop("clock")
    with pytest.raises(SerializationError, match="timer"):
        from_data(data, SlaTarget)


def test_the_custom_timer_tag_keeps_its_old_module_path_alias() -> None:
    assert type_info("sla_custom_timer").cls is CustomTimer
    assert type_info("csmcore.sla:CustomClock").cls is CustomTimer


def test_errors_in_a_timer_name_its_data_key() -> None:
    policy = to_data(from_data(_documents()["policies"][0], SlaPolicy))
    index = next(i for i, t in enumerate(policy["targets"]) if t["clock"] is not None)
    policy["targets"][index]["clock"]["start_on"] = ["nope"]
    with pytest.raises(SerializationError, match=rf"\$\.targets\[{index}\]\.clock\.start_on\[0\]"):
        from_data(policy, SlaPolicy)
