"""SVG snapshots (pytest-textual-snapshot) of the replayed fixture run: deterministic, fixed clock.

Update after an intended change: `pytest tests/tui/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from conftest import FIXTURE_RUN, fixed_clock

from codex_tasks.tui.app import RunApp


def fixture_app() -> RunApp:
    return RunApp(FIXTURE_RUN, clock=fixed_clock, poll_interval=0.05, check_process=False)


def test_main_screen_80x24(snap_compare) -> None:
    assert snap_compare(fixture_app(), terminal_size=(80, 24))


def test_main_screen_120x40(snap_compare) -> None:
    assert snap_compare(fixture_app(), terminal_size=(120, 40))


def test_errors_panel(snap_compare) -> None:
    assert snap_compare(fixture_app(), press=["e"], terminal_size=(100, 30))
