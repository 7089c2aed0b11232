"""The HTML report in a real browser: headless Chromium loads the page and draws every chart.

Chromium runs the page's JavaScript (plotly, embedded in the file) with no network; the DOM it
dumps must hold one sized SVG chart per chart div, with its data drawn. A screenshot is written
to pytest's temporary folder (never into the repository) for a person to look at.

Chromium comes from Debian's ``chromium`` package, which ``.ci/run`` installs; without it this
module skips with a reason, except under ``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("plotly", reason="the [report] extra (plotly) is not installed")

from csmcore.cli.demo import run_jobs, simulate
from csmcore.cli.html import render_html
from csmcore.cli.policy_file import default_book
from csmcore.cli.report import ReportInput, build_report
from csmcore.services import Ledger
from csmcore.storage import open_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None and os.environ.get("CI") == "true":
    pytest.fail("CI=true but chromium is not installed (.ci/run installs it)", pytrace=False)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (apt install chromium)"
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
    "--window-size=1200,2600",
]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    desk = simulate(seed=2, weeks=3)
    book = default_book(desk.calendar)
    activity = run_jobs(desk, book, Ledger(open_store("memory://")))
    report = build_report(
        ReportInput(
            tickets=desk.tickets,
            book=book,
            at=desk.end,
            timezone="Europe/Berlin",
            firings=activity.firings,
            grants=activity.grants,
        )
    )
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    return path


def test_the_page_is_self_contained(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    # No external script, style sheet or image: everything is in the file.
    assert not re.search(r"<script[^>]+src=", text)
    assert not re.search(r"<link[^>]+href=\"https?:", text)
    assert text.count("plotly.js v") >= 1  # the library is embedded once
    assert 'id="weekly-volume"' in text


def test_every_chart_renders_with_its_data(page: Path, tmp_path: Path) -> None:
    done = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    charts = (
        "weekly-volume",
        "first-reply-distribution",
        "sla-achievement",
        "backlog",
        "escalations",
        "points-granted",
    )
    for chart_id in charts:
        start = dom.find(f'id="{chart_id}"')
        found = re.findall(r"id=\"([a-z-]+)\"", dom)
        assert start >= 0, f"chart {chart_id} missing from the rendered page: {found}"
        block = dom[start : start + 200_000]
        svg = re.search(r'<svg class="main-svg"[^>]*width="(\d+)" height="(\d+)"', block)
        assert svg is not None, f"chart {chart_id} was not drawn"
        width, height = int(svg.group(1)), int(svg.group(2))
        assert width >= 300, (chart_id, width)
        assert height == 420, (chart_id, height)
        # Bars are drawn as paths in a "bars" trace, lines as "js-line" paths.
        assert re.search(r'class="(?:point|js-line)"', block), f"{chart_id} has no data drawn"


def test_a_screenshot_is_taken_outside_the_repository(page: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000
