"""TUI test fixtures: the shipped finished run folder, a fixed clock, an app factory."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))

from make_fixture import RUN_ID, T0  # noqa: E402

FIXTURE_RUN = FIXTURES / RUN_ID
FIXED_NOW = T0 + 60.0


def fixed_clock() -> float:
    return FIXED_NOW


@pytest.fixture
def fixture_run(tmp_path: Path) -> Path:
    """A private copy of the shipped finished run (tests may write next to it)."""
    return Path(shutil.copytree(FIXTURE_RUN, tmp_path / RUN_ID))


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., Any]:
    from codex_tasks.tui.app import RunApp

    def _make(path: Path | None = None, **kw: Any) -> RunApp:
        kw.setdefault("clock", fixed_clock)
        kw.setdefault("poll_interval", 0.05)
        kw.setdefault("save_dir", tmp_path / "saved")
        kw.setdefault("check_process", False)
        return RunApp(path, **kw)

    return _make


def run_async(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run an async test body (no pytest-asyncio needed)."""
    return asyncio.run(fn())


def cell_text(table: Any, row_key: str, column: str) -> str:
    return str(table.get_cell(row_key, column))
