"""What a plain `run` prints: step starts, progress (plain every 10% off a terminal, a live bar on one),
the end of each step, and the last lines of a failing step's log."""

from __future__ import annotations

import io
from pathlib import Path

from codex_tasks.orchestrate.console import RunConsole, progress_text
from codex_tasks.runs.rundir import RunDir


def train_events(total: int = 300) -> list[dict]:
    evs = [{"time": 100.0, "type": "step.started", "step_id": "train", "kind": "train", "attempt": 1}]
    for done in range(1, total + 1):
        evs.append({"time": 100.0 + done * 0.1, "type": "progress", "step_id": "train", "done": done, "total": total,
                    "unit": "step", "rate": 10.0, "loss": 9.0 - done / 100, "tokens_per_s": 7512.0})
    evs.append({"time": 131.0, "type": "step.succeeded", "step_id": "train", "duration": 31.0, "note": "300 steps"})
    return evs


def test_progress_text_reads_like_the_tui() -> None:
    ev = {"done": 120, "total": 300, "unit": "step", "rate": 2.0, "loss": 4.2134, "tokens_per_s": 7512.0}
    assert progress_text(ev) == "120/300 · loss 4.21 · 7.5k tok/s · ETA 1:30"
    assert progress_text({"done": 2.5e6, "total": 5e6, "unit": "B"}) == "2.5M/5.0M B"


def test_off_a_terminal_progress_is_a_line_every_ten_percent(tmp_path: Path) -> None:
    out = io.StringIO()
    console = RunConsole(file=out, terminal=False)
    for ev in train_events():
        console(ev)
    lines = out.getvalue().splitlines()
    assert lines[0] == "  ▶ train (train)"
    progress = [ln for ln in lines if ln.startswith("    train ")]
    assert len(progress) == 11 and progress[1].startswith("    train 30/300 · loss 8.7")  # first, 10%, … 100%
    assert lines[-1] == "  ✓ train succeeded (31.00s): 300 steps"
    assert "\x1b[" not in out.getvalue()  # no colour off a terminal


def test_without_a_total_a_line_every_thirty_seconds() -> None:
    out = io.StringIO()
    console = RunConsole(file=out, terminal=False)
    for k in range(1, 121):  # two minutes of the run's own time, one event a second
        console({"time": float(k), "type": "progress", "step_id": "agent", "done": k, "total": None, "unit": "turn"})
    assert len([ln for ln in out.getvalue().splitlines() if ln.startswith("    agent ")]) == 4


def test_a_failing_step_shows_the_end_of_its_log(tmp_path: Path) -> None:
    rd = RunDir.create(tmp_path)
    log = rd.step_dir("lint")
    log.mkdir(parents=True)
    (log / "step.log").write_text("# 2026-11-30T12:00:00 step lint (shell), attempt 1\n"
                                  + "".join(f"src/app.py:{i}:1: E302 expected 2 blank lines\n" for i in range(30)))
    out = io.StringIO()
    console = RunConsole(file=out, terminal=False)
    console._run_path = rd.path  # as follow() sets it, without the thread
    console({"type": "step.failed", "step_id": "lint", "error": "command failed (exit 1): ruff check src"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "  ✗ lint failed: command failed (exit 1): ruff check src"
    assert len(lines) == 21 and lines[1] == "    │ src/app.py:10:1: E302 expected 2 blank lines" and "attempt 1" not in out.getvalue()


def test_on_a_terminal_a_live_bar_and_colour_unless_no_color(tmp_path: Path, monkeypatch) -> None:
    rd = RunDir.create(tmp_path)
    out = io.StringIO()
    console = RunConsole(file=out, terminal=True)
    console.follow(rd)
    try:
        for ev in train_events(20)[:11]:
            console(ev)
        assert console.progress is not None
        task = console.progress.tasks[0]
        assert task.description == "train" and task.completed == 10 and "loss" in task.fields["info"]
    finally:
        console.stop()
    assert "\x1b[" in out.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    plain = io.StringIO()
    bare = RunConsole(file=plain, terminal=True)
    bare({"type": "step.failed", "step_id": "x", "error": "boom"})
    assert "\x1b[" not in plain.getvalue() and "✗ x failed: boom" in plain.getvalue()
