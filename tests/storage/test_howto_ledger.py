"""The ledger role of docs/howto-adapter.md ("Optional roles"), taken from the page as it stands
and added to the example adapter, passes the suite's ledger groups: the page's recipe works."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from csmcore.storage import kit, open_store, register_adapter
from csmcore.storage.roles import BUILTIN_ROLES
from csmcore.testing.example_adapter import JsonFileStore
from csmcore.testing.storage_suite import LedgerTests, LedgerUnitOfWorkTests, StoreFactory

HOWTO = Path(__file__).parents[2] / "docs" / "howto-adapter.md"


def _snippet() -> Any:
    """The page's ``class _Ledger``, compiled."""
    blocks = re.findall(r"```python\n(.*?)```", HOWTO.read_text(encoding="utf-8"), re.S)
    (block,) = [b for b in blocks if "class _Ledger" in b]
    namespace: dict[str, Any] = {"kit": kit}
    exec(compile(block, str(HOWTO), "exec"), namespace)
    return namespace["_Ledger"]


_Ledger = _snippet()


class LedgerJsonStore(JsonFileStore):
    """The example adapter with the page's ledger role, on the store and in units of work."""

    def __init__(self, path: str) -> None:
        self.roles = BUILTIN_ROLES | {"ledger"}
        super().__init__(path)
        self.ledger = _Ledger(self, None)

    @property
    def url(self) -> str:
        return f"howtoledger:///{self.path}"

    def _load(self) -> dict[str, Any]:
        state = super()._load()
        state.setdefault("ledger", {})
        return state

    @contextmanager
    def unit_of_work(self) -> Iterator[Any]:
        with super().unit_of_work() as uow:
            uow.roles = self.roles
            setattr(uow, "ledger", _Ledger(self, uow.tickets._unit))  # noqa: B010
            yield uow


def open_howto_ledger(url: str) -> LedgerJsonStore:
    return LedgerJsonStore(url.removeprefix("howtoledger:///"))


@pytest.fixture(autouse=True)
def _register_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    import csmcore.storage

    monkeypatch.setattr(csmcore.storage, "_registered", {})
    register_adapter("howtoledger", open_howto_ledger)


class TestHowtoLedger(LedgerTests, LedgerUnitOfWorkTests):
    opener = f"{__name__}:open_howto_ledger"
    ledger_examples = 6  # every write rewrites and syncs the file: keep the run short

    opt_out: ClassVar[dict[str, str]] = {
        "ledger faults": "the ledger is part of one JSON file that each commit writes whole: "
        "the file system has no way to refuse one entry",
    }

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: open_store(f"howtoledger:///{tmp_path / uuid.uuid4().hex}.json")
