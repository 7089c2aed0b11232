"""The worked example of docs/howto-adapter.md, csmcore.testing.example_adapter (a complete
adapter over one JSON file), proved with the public conformance suite exactly as a third-party
author would.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from csmcore.storage import open_store, register_adapter
from csmcore.testing.builders import T0, make_comment, make_ticket
from csmcore.testing.example_adapter import JsonFiles, open_jsonfile
from csmcore.testing.storage_suite import StorageSuite, StoreFactory

# -- proving it -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _register_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    # A distributed adapter declares an entry point instead:
    #   [project.entry-points."csmcore.storage"]
    #   jsonfile = "my_package.jsonfile:open_jsonfile"
    import csmcore.storage

    monkeypatch.setattr(csmcore.storage, "_registered", {})
    register_adapter("jsonfile", open_jsonfile)


class TestJsonFileStore(StorageSuite):
    opt_out: ClassVar[dict[str, str]] = {
        "pushdown": "it filters every condition in Python; nothing is selected in the file",
    }
    # the scheme is registered in this process only: writer processes import the opener
    opener = "csmcore.testing.example_adapter:open_jsonfile"

    agreement_examples = 6  # every operation rewrites and fsyncs the file: keep the run short
    race_rounds = 40

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return JsonFiles(tmp_path)


def test_the_file_records_each_event_with_its_schema(tmp_path: Path) -> None:
    """``kit.encode_event`` gives every event its ``"schema"``; data an older adapter wrote
    without it (version 1) still reads."""
    ticket = make_ticket("T-1")
    ticket = ticket.apply(make_comment(T0 + timedelta(minutes=5)))
    url = f"jsonfile:///{tmp_path / 'schema.json'}"
    store = open_store(url)
    try:
        store.tickets.add(ticket)
    finally:
        store.close()

    def check_and_strip(state: dict[str, Any]) -> None:
        events = state["tickets"]["T-1"]
        assert [e["schema"] for e in events] == [2, 1]  # ticket.created is at 2 (issue 10)
        for event in events:
            del event["schema"]

    JsonFiles.edit(url, check_and_strip)  # behind the adapter's back, as the suite's hooks do
    store = open_store(url)
    try:
        assert store.tickets.get("T-1") == ticket
    finally:
        store.close()
