"""The shipped fuzz test (csmcore.testing.fuzz), run over every declared entry point.

CI runs it with a fixed seed and CSMCORE_FUZZ_EXAMPLES examples per entry point (25 by
default); docs/fuzzing.md describes the long run for releases."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from csmcore.errors import CsmError, ValidationError
from csmcore.serialization import registered_types
from csmcore.testing import fuzz


@pytest.mark.parametrize("name", sorted(fuzz.entry_points()))
def test_bad_input_never_escapes(name: str) -> None:
    fuzz.check_entry_point(name)


def test_every_registered_type_has_a_from_data_entry_point() -> None:
    names = set(fuzz.entry_points())
    for tag, cls in registered_types().items():
        if cls.__module__.startswith("csmcore"):
            assert f"from_data({tag})" in names


def test_an_entry_point_is_declared_once_and_found() -> None:
    @fuzz.entry_point("example entry point")
    def calls() -> st.SearchStrategy[fuzz.Call]:
        return st.just(fuzz.Call(what="nothing", run=lambda: None))

    try:
        assert fuzz.entry_points()["example entry point"].calls is calls
        fuzz.check_entry_point("example entry point")
    finally:
        fuzz._registry.pop("example entry point")


def test_check_call_accepts_answers_and_csm_errors() -> None:
    assert fuzz.check_call("answer", lambda: 3) == 3

    def refuse() -> None:
        raise ValidationError("no")

    assert fuzz.check_call("refusal", refuse) is None


def test_check_call_fails_for_an_escaping_exception_naming_the_call() -> None:
    def escape() -> None:
        raise OverflowError("date value out of range")

    with pytest.raises(AssertionError, match=r"cal\.add\(\.\.\.\) raised OverflowError"):
        fuzz.check_call("cal.add(...)", escape)


def test_the_hang_detector_interrupts_a_call_that_never_ends() -> None:
    def forever() -> None:
        while True:
            time.sleep(0.01)

    with pytest.raises(fuzz.Hang, match="forever"):
        fuzz.check_call("forever", forever, seconds=0.05)


def test_a_failing_entry_point_fails_the_fuzz_run() -> None:
    @fuzz.entry_point("example escaping entry point")
    def calls() -> st.SearchStrategy[fuzz.Call]:
        return st.builds(
            lambda n: fuzz.Call(what=f"1 // {n}", run=lambda: 1 // n), st.integers(0, 3)
        )

    try:
        with pytest.raises(AssertionError, match="ZeroDivisionError"):
            fuzz.check_entry_point("example escaping entry point")
    finally:
        fuzz._registry.pop("example escaping entry point")


def test_the_fixed_seed_and_example_count_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CSMCORE_FUZZ_EXAMPLES", raising=False)
    monkeypatch.delenv("CSMCORE_FUZZ_RANDOM", raising=False)
    assert fuzz.fuzz_settings().max_examples == 25
    assert fuzz.fuzz_settings().derandomize
    monkeypatch.setenv("CSMCORE_FUZZ_EXAMPLES", "20000")
    monkeypatch.setenv("CSMCORE_FUZZ_RANDOM", "1")
    assert fuzz.fuzz_settings().max_examples == 20000
    assert not fuzz.fuzz_settings().derandomize


@given(fuzz.junk())
def test_junk_is_drawn_without_failing(value: object) -> None:
    repr_or_none: Iterator[str] | None = None
    del repr_or_none
    assert value is value


def test_deep_builds_without_recursion() -> None:
    value = fuzz.deep(100_000)
    depth = 0
    while isinstance(value, list):
        value = value[0]
        depth += 1
    assert depth == 100_000


def test_the_ticket_methods_entry_point_calls_comment_with_its_required_arguments() -> None:
    # comment() needs an author_role: the entry point gave none, so every drawn comment call
    # stopped at Python's "missing 1 required positional argument" and none was fuzzed
    refusals: list[str] = []

    @settings(max_examples=150, derandomize=True, database=None, deadline=None)
    @given(fuzz.entry_points()["Ticket methods"].calls())
    def run(call: fuzz.Call) -> None:
        if ".comment(" not in call.what:
            return
        try:
            call.run()
        except CsmError as err:
            refusals.append(str(err))

    run()
    assert refusals
    assert not [r for r in refusals if "missing 1 required" in r], refusals[:3]
