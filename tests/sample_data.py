"""Where the tests find the shared sample exports (the command line's and the importers'), and
the skip when they are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(
    os.environ.get("CSMCORE_SAMPLE_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
SNOW = DATA / "servicenow_incident_sample.csv"
HELP = DATA / "helpdesk_event_log.csv"

needs_data = pytest.mark.skipif(
    not DATA.is_dir(),
    reason=f"the shared sample folder {DATA} is absent (set CSMCORE_SAMPLE_DATA to another)",
)
