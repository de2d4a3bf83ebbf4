"""A real run (the real runner and Prefect server) shown live: pending → running → done, then `r`."""

from __future__ import annotations

import time
from pathlib import Path

from conftest import cell_text, run_async

from codex_tasks.cli import tui_launcher
from codex_tasks.orchestrate.options import RunOptions
from codex_tasks.tui.controller import RunController
from codex_tasks.tui.widgets import StepsTable

SEQUENCE = """\
version: "1.0"
title: Live TUI check
phases:
  - id: P1
    name: Go
    steps:
      - id: first
        description: Takes a moment.
        commands:
          - sleep 1.5
          - echo first done
      - id: second
        description: Passes once the gate exists.
        commands:
          - test -f gate.txt
          - echo second done
"""


def test_live_run_goes_pending_running_done_then_resumes(tmp_path: Path, make_app, prefect_url: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    seq = ws / "live.yaml"
    seq.write_text(SEQUENCE)
    controller = RunController(RunOptions(file=str(seq), workspace=str(ws)), tui_launcher())
    controller.start()
    seen: dict[str, list[str]] = {"first": [], "second": []}

    async def wait_for(app, pilot, done, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await pilot.pause(0.05)
            table = app.query_one(StepsTable)
            for sid, statuses in seen.items():
                try:
                    word = cell_text(table, sid, "status").split(" ", 1)[1]
                except Exception:
                    continue  # the run folder is not there yet
                if not statuses or statuses[-1] != word:
                    statuses.append(word)
            if done():
                return
        raise AssertionError(f"timed out; seen {seen}, run {app.model.status}")

    async def body() -> None:
        app = make_app(controller=controller, clock=time.time)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_for(app, pilot, lambda: app.model.status == "failed" and not controller.running)
            assert seen["first"][:3] == ["pending", "running", "done"]
            assert seen["second"][-1] == "failed"
            assert app.folder is not None and app.folder.errors()  # the error block is there
            assert any("first done" in ln for ln in (app.folder.path / "steps" / "first" / "step.log")
                       .read_text().splitlines())
            # `r` resumes the failed run in this process; the kept step stays done
            (ws / "gate.txt").write_text("ok")
            await pilot.press("r")
            await wait_for(app, pilot, lambda: app.model.status == "succeeded" and not app.owns_running_run)
            table = app.query_one(StepsTable)
            assert cell_text(table, "second", "status") == "✓ done"
            assert "attempt 1" in cell_text(table, "first", "note")
            assert app.model.attempt == 2
            await pilot.press("q")  # the run is over: no question
        assert app.return_value is None

    run_async(body)
    controller.join(30)
