"""Entry points and the quit question (no Prefect needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import RUN_ID, run_async

from codex_tasks.cli import tui_launcher
from codex_tasks.errors import RunNotFound, UsageError
from codex_tasks.orchestrate.options import RunOptions, parse_run_args
from codex_tasks.tui.launch import is_sequence_file, main
from codex_tasks.tui.screens import QuitScreen


def test_run_args_become_run_options() -> None:
    opts = parse_run_args("seq.yaml", ["-p", "a=1", "--param", "b=2", "--only", "x,y", "--resume=R1",
                                       "--force", "--max-parallel", "2", "--strict"], workspace="/ws")
    assert opts.params == ["a=1", "b=2"] and opts.only == ["x", "y"] and opts.resume == "R1"
    assert opts.force == set() and opts.max_parallel == 2 and opts.strict and opts.workspace == "/ws"
    with pytest.raises(UsageError):
        parse_run_args("seq.yaml", ["--bogus"])


def test_targets_are_told_apart(tmp_path: Path, fixture_run: Path) -> None:
    seq = tmp_path / "s.yaml"
    seq.write_text("title: x\n")
    assert is_sequence_file(str(seq)) and is_sequence_file("builtin:hello")
    assert not is_sequence_file(str(fixture_run))
    with pytest.raises(RunNotFound):
        main("no-such-run", None, str(tmp_path), tui_launcher())
    with pytest.raises(UsageError):
        main(str(fixture_run), ["--only", "x"], str(tmp_path), tui_launcher())


class StubController:
    """Stands in for a run this TUI started and that is still going."""

    def __init__(self, path: Path) -> None:
        self.options = RunOptions(file="seq.yaml")
        self.launcher = tui_launcher()
        self.path = path
        self.rundir = None
        self.error = None
        self.running = True
        self.cancelled = False

    def cancel(self) -> bool:
        self.cancelled = True
        return True


@pytest.mark.parametrize(("key", "result", "cancelled"), [("l", "leave", False), ("c", "cancel", True)])
def test_quit_asks_when_our_run_is_still_going(fixture_run: Path, make_app, key: str, result: str,
                                               cancelled: bool) -> None:
    ctl = StubController(fixture_run)

    async def body() -> None:
        app = make_app(controller=ctl)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.model.run_id == RUN_ID  # attached through the controller
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, QuitScreen)
            await pilot.press(key)
        assert app.return_value == result

    run_async(body)
    assert ctl.cancelled is cancelled


def test_quit_question_escape_stays(fixture_run: Path, make_app) -> None:
    async def body() -> None:
        app = make_app(controller=StubController(fixture_run))
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("q")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, QuitScreen) and app.is_running

    run_async(body)
