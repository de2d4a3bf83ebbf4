"""What a plain `run` prints: step starts, progress (plain every 10% off a terminal, a live bar on one),
the end of each step, and the last lines of a failing step's log."""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from codex_tasks.orchestrate.console import RunConsole, progress_text
from codex_tasks.runs.rundir import RunDir
from tests.conftest import CODEX, run_cli


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


def test_a_finished_steps_bar_goes_and_a_late_progress_event_brings_it_back_nowhere(tmp_path: Path) -> None:
    """Once a step has finished, its bar is gone from the live display, also when a progress event
    of that step is read after its end (a tmux capture once showed train's bar at 100% under the
    next step's lines); a new attempt of the step (step.started) draws it again."""
    rd = RunDir.create(tmp_path)
    console = RunConsole(file=io.StringIO(), terminal=True)
    console.follow(rd)
    try:
        events = train_events(20)
        for ev in events[:11]:
            console(ev)
        assert console.progress is not None and [t.description for t in console.progress.tasks] == ["train"]
        console({"type": "step.succeeded", "step_id": "train", "duration": 1.0})
        assert console.progress.tasks == []
        console(events[11])  # late
        assert console.progress.tasks == []
        console({"type": "step.started", "step_id": "train", "kind": "train", "attempt": 2})
        console(events[12])
        assert [t.description for t in console.progress.tasks] == ["train"]
    finally:
        console.stop()


# ---------------------------------------------------------------- a real terminal (tmux, 80×24)

TRAIN_SEQ = textwrap.dedent("""\
    title: tiny train in tmux
    phases:
      - id: ml
        steps:
          - id: tok
            uses: tokenize
            with: {corpus: ["src/*.py"], kind: sentencepiece, vocab_size: 300, block_size: 32, out: data}
          - id: train
            uses: train
            with:
              model: {config: {type: gpt2, n_layer: 1, n_head: 2, n_embd: 32, n_positions: 32}}
              data: data
              batch_size: 4
              max_steps: 400
              threads: 1
              checkpoint: {every: 100, keep_last: 1}
              mlflow: {enabled: false}
              system_metrics_every: 0
              out: model
          - id: after
            commands: ['echo after training']
    """)
CODE = "def f{i}(x):\n    # a comment {i}\n    return x * {i} + {j}\n\n\nclass C{i}:\n    value = '{i}-{j}'\n\n"
TRAIN_LINE = re.compile(r"^\s*train\s+\S*\s*\d+%\s+(\d+)/400\b")


def _tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, timeout=20).stdout


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_in_tmux_at_80x24_the_train_progress_line_shows_and_updates(tmp_path: Path, prefect_url: str) -> None:
    """Issue 15's acceptance at tiny size: a plain `run` in a real 80×24 terminal shows train's live
    progress line before the next step starts, and the line changes while it trains; off a
    terminal the same run's output holds plain progress lines for train."""
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    for k in range(4):
        (ws / "src" / f"m{k}.py").write_text("".join(CODE.format(i=i, j=k) for i in range(30)))
    (ws / "seq.yaml").write_text(TRAIN_SEQ)
    keep = ("PATH", "HOME", "CODEX_TASKS_HOME", "PREFECT_API_URL", "MPLCONFIGDIR", "LANG", "LC_ALL")
    env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in keep if k in os.environ)
    done_file = tmp_path / "exit_code"
    cmd = (f"cd {shlex.quote(str(ws))} && env {env} TERM=xterm-256color HF_HUB_OFFLINE=1 {shlex.quote(CODEX)} "
           f"run seq.yaml; echo $? > {shlex.quote(str(done_file))}; sleep 60")
    sock = f"codex-run-{uuid.uuid4().hex[:8]}"
    _tmux(sock, "new-session", "-d", "-x", "80", "-y", "24", cmd)
    seen: list[str] = []  # the train progress lines, as captured, each different from the last
    pane = ""
    try:
        deadline = time.monotonic() + 300
        while not done_file.exists():
            assert time.monotonic() < deadline, f"the run did not finish:\n{pane}"
            pane = _tmux(sock, "capture-pane", "-p", "-t", "0")
            lines = pane.splitlines()
            progress = [ln for ln in lines if TRAIN_LINE.match(ln)]
            if progress and (not seen or progress[0] != seen[-1]):
                assert not any("▶ after" in ln for ln in lines), f"after started while train's bar shows:\n{pane}"
                assert len(progress[0]) <= 80
                seen.append(progress[0])
            time.sleep(0.1)
        assert done_file.read_text().strip() == "0", pane
    finally:
        _tmux(sock, "kill-server")
    assert len(seen) >= 2, f"the train progress line never changed: {seen}"
    done = [int(m.group(1)) for s in seen if (m := TRAIN_LINE.match(s))]
    assert done == sorted(done) and done[-1] > done[0]
    assert "loss " in seen[-1] and "tok/s" in seen[-1]

    piped = run_cli("run", "seq.yaml", "--force=train", cwd=ws, env={"HF_HUB_OFFLINE": "1"}, check=0).stdout
    plain = [ln for ln in piped.splitlines() if re.match(r"^    train \d+/400 · loss ", ln)]
    assert len(plain) >= 5 and "\x1b[" not in piped, piped  # the first report, then every 10%
    assert piped.index(plain[-1]) < piped.index("▶ after")
