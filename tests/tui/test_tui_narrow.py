"""The TUI at 80×24, the documented minimum: what matters stays on screen; cancelling asks first."""

from __future__ import annotations

import json
import time
from pathlib import Path

from conftest import FIXED_NOW, run_async
from textual.widgets import Label

from codex_tasks.tui import format as fmt
from codex_tasks.tui.model import ProgressView
from codex_tasks.tui.screens import ConfirmCancelScreen
from codex_tasks.tui.widgets import ProgressPanel, RunHeader
from codex_tasks.tui.widgets.progress import progress_line

LONG_TITLE = "A sequence title long enough that it can never fit an eighty-column header line"


def training(done: float = 120) -> ProgressView:
    pv = ProgressView(step_id="train", done=done, total=300, unit="step", rate=2.0, loss=4.2134, tokens_per_s=7512.0)
    return pv


def test_progress_line_drops_whole_fields_by_priority() -> None:
    pv = training()
    assert progress_line(pv) == "120/300 · loss 4.21 · 7.5k tok/s · ETA 1:30 · 2 step/s"
    assert progress_line(pv, 45) == "120/300 · loss 4.21 · 7.5k tok/s · ETA 1:30"  # step rate goes first
    assert progress_line(pv, 36) == "120/300 · loss 4.21 · ETA 1:30"  # then tokens/s
    assert progress_line(pv, 24) == "120/300 · ETA 1:30"  # then the loss; ETA outlives it
    assert progress_line(pv, 5) == "120/300"  # the count always stays
    tokenizing = ProgressView(step_id="tok", done=2.5e6, total=5e6, unit="B")
    assert progress_line(tokenizing).startswith("2.5M/5.0M B")
    assert progress_line(ProgressView(step_id="train", waiting=True)) == "starting…"


def test_fit_fields_keeps_order_and_skips_empty_fields() -> None:
    assert fmt.fit_fields([(0, "a"), (2, ""), (1, "bb")], None) == "a · bb"
    assert fmt.fit_fields([(1, "first"), (0, "second")], 8) == "second"
    assert fmt.compact(7512) == "7.5k" and fmt.compact(850.4) == "850"
    assert fmt.short_clock(62) == "1:02" and fmt.short_clock(3723) == "1:02:03"


def live_run(root: Path) -> Path:
    """A run folder whose train step has started and not yet reported progress."""
    run = root / "20261130-120000-live"
    run.mkdir(parents=True)
    t0 = FIXED_NOW - 30
    events = [{"time": t0, "type": "run.started", "title": LONG_TITLE},
              {"time": t0 + 1, "type": "step.started", "step_id": "train", "phase_id": "P1", "kind": "train"}]
    (run / "events.ndjson").write_text("".join(json.dumps(e) + "\n" for e in events))
    (run / "state.json").write_text(json.dumps({"run_id": run.name, "title": LONG_TITLE, "status": "running",
                                                "workspace": str(root)}))
    return run


def append(run: Path, *events: dict) -> None:
    with open(run / "events.ndjson", "a") as fh:
        fh.writelines(json.dumps(e) + "\n" for e in events)


def test_80x24_header_progress_and_tokens_per_second(tmp_path: Path, make_app) -> None:
    run = live_run(tmp_path)

    async def body() -> None:
        app = make_app(run)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            header = str(app.query_one(RunHeader).render())
            assert header.startswith("● running  0:00:30  A sequence title")  # state and elapsed first
            assert len(header) <= 78 and header.endswith("…  " + run.name)  # the title is cut, not the clock
            panel = app.query_one(ProgressPanel)
            info = lambda: str(panel.query_one(".info", Label).render()).strip()  # noqa: E731
            assert panel.step_ids == ["train"] and info() == "starting…"  # shown before the first step
            append(run, {"time": FIXED_NOW - 20, "type": "progress", "step_id": "train", "done": 1, "total": 300,
                         "unit": "step", "loss": 8.9, "tokens_per_s": 7512.0},
                   {"time": FIXED_NOW - 10, "type": "progress", "step_id": "train", "done": 21, "total": 300,
                    "unit": "step", "loss": 6.25, "tokens_per_s": 7600.0})
            deadline = time.monotonic() + 60
            while info() == "starting…" and time.monotonic() < deadline:  # the app polls the events file
                await pilot.pause(0.05)
            text = info()
            assert text == "21/300 · loss 6.25 · 7.6k tok/s · ETA 2:20", text  # 42 cells: all but step/s

    run_async(body)


def test_c_asks_before_cancelling_and_no_keeps_the_run(tmp_path: Path, make_app) -> None:
    run = live_run(tmp_path)

    async def body() -> None:
        app = make_app(run)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await pilot.press("c")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmCancelScreen)
            question = app.screen.query_one("#question", Label)
            assert question.size.height >= 2 and question.size.width <= 76  # the question wraps inside 80 columns
            await pilot.press("n")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmCancelScreen)
            assert not (run / "cancel.requested").exists() and app.model.is_live
            await pilot.press("c")
            await pilot.pause()
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmCancelScreen) and app.model.is_live

    run_async(body)


def test_the_timers_skip_a_screen_being_torn_down(tmp_path: Path, make_app) -> None:
    """The once-a-second tick and the poll may fire while the app exits and its widgets are gone
    (a fresh-clone CI run once failed with NoMatches for RunHeader from `tick`): they draw nothing."""
    run = live_run(tmp_path)

    async def body() -> None:
        app = make_app(run)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await app.default_screen.query(RunHeader).remove()
            app.tick()
            app.poll()
            assert not app.default_screen.query(RunHeader)

    run_async(body)
