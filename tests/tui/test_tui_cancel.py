"""`c` cancels a run: one started by this TUI (in-process) or one started by another process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_async

from codex_tasks.cli import tui_launcher
from codex_tasks.orchestrate.options import RunOptions
from codex_tasks.tui.controller import RunController

SEQUENCE = """\
version: "1.0"
title: Cancel me
phases:
  - id: C1
    name: Wait
    steps:
      - id: wait
        description: Sleeps long.
        commands:
          - sleep 60
      - id: later
        description: Never reached.
        commands:
          - echo later
"""


async def _wait(pilot, cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.05)
        if cond():
            return
    raise AssertionError("timed out")


def test_c_cancels_a_run_started_here(tmp_path: Path, make_app, prefect_url: str) -> None:
    (tmp_path / "seq.yaml").write_text(SEQUENCE)
    ctl = RunController(RunOptions(file=str(tmp_path / "seq.yaml"), workspace=str(tmp_path)), tui_launcher())
    ctl.start()

    async def body() -> None:
        app = make_app(controller=ctl, clock=time.time)
        async with app.run_test(size=(100, 30)) as pilot:
            await _wait(pilot, lambda: app.model.steps.get("wait") is not None
                        and app.model.steps["wait"].status == "running")
            await pilot.press("c")
            await _wait(pilot, lambda: not ctl.running and not app.model.is_live)
            assert app.model.status == "cancelled"
            assert app.model.steps["later"].status == "not_run"

    run_async(body)
    assert ctl.exit_code == 130


@pytest.mark.slow
def test_c_cancels_a_run_started_elsewhere_and_quitting_leaves_it(tmp_path: Path, make_app,
                                                                   prefect_url: str) -> None:
    (tmp_path / "seq.yaml").write_text(SEQUENCE)
    codex = str(Path(sys.executable).parent / "codex-tasks")
    proc = subprocess.Popen([codex, "run", "seq.yaml", "-q"], cwd=tmp_path, env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        runs = tmp_path / ".codex" / "runs"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (runs.is_dir() and any(runs.glob("*/state.json"))):
            time.sleep(0.1)
        run_dir = next(runs.glob("*/state.json")).parent

        async def body() -> None:
            # first a TUI that only watches and quits: the run goes on
            app = make_app(run_dir, clock=time.time, check_process=True)
            async with app.run_test(size=(100, 30)) as pilot:
                await _wait(pilot, lambda: app.model.steps.get("wait") is not None
                            and app.model.steps["wait"].status == "running")
                await pilot.press("q")
            assert proc.poll() is None
            # then one that cancels it, as `codex-tasks cancel` does
            app = make_app(run_dir, clock=time.time, check_process=True)
            async with app.run_test(size=(100, 30)) as pilot:
                await _wait(pilot, lambda: app.model.status == "running")
                await pilot.press("c")
                await _wait(pilot, lambda: app.model.status == "cancelled")

        run_async(body)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
