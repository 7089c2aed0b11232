"""Policy and calendar files: TOML and JSON, friendly durations, errors that name the path."""

from __future__ import annotations

import json
import tomllib
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csmcore.cli.policy_file import (
    default_book,
    default_calendar,
    load_book,
    load_calendar,
    parse_duration,
)
from csmcore.errors import ValidationError
from csmcore.sla import SlaMetric

POLICY = """
[calendar]
timezone = "Europe/Rome"
hours = { mon = [["09:00", "18:00"]], tue = [["09:00", "18:00"]] }
holidays = ["2025-12-25"]

[[policies]]
name = "vip"
position = 1
condition = { op = "eq", field = "priority", value = "urgent" }

[[policies.targets]]
metric = "first_reply"
within = "30m"

[[policies]]
name = "standard"
position = 10
default = true

[[policies.targets]]
metric = "first_reply"
within = "1d 2h"
priority = "high"

[[policies.targets]]
metric = "total_resolution"
within = "PT40H"
"""


def test_a_toml_file_gives_policies_calendar_and_durations(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY, encoding="utf-8")
    book = load_book(path)
    vip, standard = sorted(book.policies, key=lambda p: p.position)
    assert vip.targets[0].within == timedelta(minutes=30)
    assert standard.targets[0].within == timedelta(days=1, hours=2)
    assert standard.targets[1].metric is SlaMetric.TOTAL_RESOLUTION
    assert standard.targets[1].within == timedelta(hours=40)
    assert book.calendar.timezone_name == "Europe/Rome"
    assert date(2025, 12, 25) in book.calendar.holidays


def test_a_json_file_reads_the_same_as_toml(tmp_path: Path) -> None:
    import tomllib

    toml = tmp_path / "p.toml"
    toml.write_text(POLICY, encoding="utf-8")
    as_json = tmp_path / "p.json"
    as_json.write_text(json.dumps(tomllib.loads(POLICY)), encoding="utf-8")
    assert load_book(as_json) == load_book(toml)


def test_no_file_gives_the_default_book_in_the_zone() -> None:
    book = load_book(None, timezone="America/New_York")
    assert book == default_book(default_calendar("America/New_York"))
    metrics = {t.metric for t in book.policies[0].targets}
    assert metrics == {SlaMetric.FIRST_REPLY, SlaMetric.TOTAL_RESOLUTION}


def test_a_calendar_file_replaces_the_policy_files_calendar(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    cal = tmp_path / "cal.toml"
    cal.write_text('timezone = "UTC"\nhours = { sat = [["10:00", "14:00"]] }\n', encoding="utf-8")
    book = load_book(policy, calendar=load_calendar(cal))
    assert book.calendar.timezone_name == "UTC"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policies = 3", r"p\.toml: 'policies' must be a non-empty list"),
        ("policies = []", r"'policies' must be a non-empty list"),
        ("x = 1\npolicies = []", r"unknown key\(s\) 'x'; accepted: policies, calendar"),
        ("[[policies]\n", r"p\.toml: is not valid TOML"),
        (
            '[[policies]]\nname = "a"\nposition = 1\ndefault = true\n'
            '[[policies.targets]]\nmetric = "first_reply"\nwithin = "4 parsecs"\n',
            r"p\.toml: policies\[0\]\.targets\[0\]\.within: '4 parsecs' is not a duration",
        ),
        (
            '[[policies]]\nname = "a"\nposition = 1\ndefault = true\n'
            '[[policies.targets]]\nmetric = "fastest_reply"\nwithin = "4h"\n',
            r"p\.toml: policies\[0\]: .*fastest_reply",
        ),
        (
            '[[policies]]\nname = "a"\nposition = 1\ncondition = { op = "always" }\n'
            '[[policies.targets]]\nmetric = "first_reply"\nwithin = "4h"\n'
            '[[policies]]\nname = "b"\nposition = 1\ndefault = true\n'
            '[[policies.targets]]\nmetric = "first_reply"\nwithin = "4h"\n',
            r"p\.toml: .*position",
        ),
    ],
)
def test_bad_files_name_the_file_and_the_path(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError, match=message):
        load_book(path)


def test_a_missing_file_is_a_validation_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"nothere\.toml: cannot be read"):
        load_book(tmp_path / "nothere.toml")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_bytes(b"\xff\xfe policies")
    with pytest.raises(ValidationError, match="is not UTF-8"):
        load_book(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4h", timedelta(hours=4)),
        ("1d 2h 30m", timedelta(days=1, hours=2, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        ("PT4H", timedelta(hours=4)),
        ("P1DT30M", timedelta(days=1, minutes=30)),
        (45, timedelta(seconds=45)),
    ],
)
def test_durations_in_files(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "4", "4x", "h", "-4h", "4h4", True, None, [1]])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValidationError, match=r"is not a duration|out of range"):
        parse_duration(text)


@given(st.integers(0, 10**6), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_written_parts_add_up(days: int, hours: int, minutes: int, seconds: int) -> None:
    text = f"{days}d {hours}h {minutes}m {seconds}s"
    expected = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if expected.total_seconds() > 10**9:
        with pytest.raises(ValidationError, match="out of range"):
            parse_duration(text)
    else:
        assert parse_duration(text) == expected


@pytest.mark.parametrize("depth", [900, 100_000])
@pytest.mark.parametrize("suffix", [".json", ".toml"])
def test_a_file_nested_too_deeply_is_refused(tmp_path: Path, suffix: str, depth: int) -> None:
    # the parsers (or the walk over the data) ran out of stack: a RecursionError, exit code 1
    path = tmp_path / f"p{suffix}"
    nested = "[" * depth + "]" * depth
    text = f'{{"policies": {nested}}}' if suffix == ".json" else f"policies = {nested}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValidationError, match=rf"p\{suffix}: is nested too deeply"):
        load_book(path)


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ('business_hours = "false"', "business_hours"),
        ('business_hours = "no"', "business_hours"),
        ("business_hours = 0", "business_hours"),
        ('pausable = "true"', "pausable"),
    ],
)
def test_a_flag_written_as_text_or_a_number_is_refused_not_read_as_true(
    tmp_path: Path, line: str, where: str
) -> None:
    # "false" in quotes used to be read with bool(): a calendar-time target became business
    # time without a word.
    path = tmp_path / "p.toml"
    path.write_text(
        '[[policies]]\nname = "a"\nposition = 1\ndefault = true\n'
        f'[[policies.targets]]\nmetric = "first_reply"\nwithin = "4h"\n{line}\n',
        encoding="utf-8",
    )
    with pytest.raises(
        ValidationError, match=r"p\.toml: policies\[0\]: .*is not a boolean; accepted: true, false"
    ):
        load_book(path)
    with pytest.raises(ValidationError, match=rf"targets\[0\]\.{where}"):
        load_book(path)


def test_a_default_written_as_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(
        json.dumps(
            {
                "policies": [
                    {
                        "name": "a",
                        "position": 1,
                        "default": "false",
                        "targets": [{"metric": "first_reply", "within": "4h"}],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    with pytest.raises(
        ValidationError, match=r"p\.json: policies\[0\]: .*'false' is not a boolean"
    ):
        load_book(path)


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_a_file_saved_with_a_byte_order_mark_reads_as_without(tmp_path: Path, suffix: str) -> None:
    # Notepad and PowerShell 5 write UTF-8 with a byte-order mark: the file was refused as
    # "not valid TOML: Invalid statement (at line 1, column 1)", though exports with one read
    path = tmp_path / f"p{suffix}"
    text = POLICY if suffix == ".toml" else json.dumps(tomllib.loads(POLICY))
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    plain = tmp_path / f"plain{suffix}"
    plain.write_text(text, encoding="utf-8")
    assert load_book(path) == load_book(plain)
    calendar = tmp_path / f"c{suffix}"
    calendar.write_bytes(path.read_bytes())
    assert load_calendar(calendar) == load_book(plain).calendar


def test_the_tutorials_policy_file_loads(tmp_path: Path) -> None:
    # its inline table of hours spanned two lines, which TOML does not allow: a support lead
    # copying it got "is not valid TOML ... (at line 3, column 94)"
    tutorial = Path(__file__).resolve().parents[2] / "docs" / "tutorial.md"
    block = tutorial.read_text(encoding="utf-8").split("```toml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "policy.toml"
    path.write_text(block, encoding="utf-8")
    book = load_book(path)
    assert set(book.calendar.hours) == {"mon", "tue", "wed", "thu", "fri"}
    resolution = book.policies[0].targets[1]
    assert resolution.metric is SlaMetric.TOTAL_RESOLUTION
    assert resolution.within == timedelta(hours=27)
