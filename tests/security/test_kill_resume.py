"""A kill leaves nothing running: SIGKILL of a run at random points leaves no process carrying its
run id (checked through /proc) and no step's work done twice after `--resume`; one run at a time
per workspace; SIGTERM stops a run as Ctrl-C does (interrupted, resumable, exit 130)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from codex_tasks.core.process import processes_with_env, sandbox_available
from tests.conftest import CODEX, run_cli, wait_for

STEPS = 4


def _sequence(tmp_path: Path) -> Path:
    steps = "\n".join(
        f"""      - id: s{i}
        commands: ["echo s{i} start >> work.txt", "sleep 0.6", "echo s{i} end >> work.txt"]"""
        for i in range(STEPS))
    f = tmp_path / "seq.yaml"
    f.write_text(textwrap.dedent("""\
        version: "2"
        title: kill sweep
        phases:
          - id: p
            steps:
        """) + steps + "\n")
    return f


def _start(f: Path, ws: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([CODEX, "run", str(f)], cwd=ws, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ))


def _lines(ws: Path) -> list[str]:
    work = ws / "work.txt"
    return work.read_text().splitlines() if work.exists() else []


def _run_id(ws: Path) -> str:
    runs = wait_for(lambda: sorted((ws / ".codex" / "runs").glob("*/state.json")), "the run folder")
    return runs[-1].parent.name


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_sigkill_at_a_random_point_leaves_nothing_and_resume_does_no_work_twice(trial, tmp_path, prefect_url):
    rng = random.Random(trial)
    ws = tmp_path / "ws"
    ws.mkdir()
    f = _sequence(tmp_path)
    k = rng.randrange(STEPS)  # kill while step k sleeps, at a random moment of its sleep
    proc = _start(f, ws)
    wait_for(lambda: f"s{k} start" in _lines(ws), f"step s{k} to start")
    time.sleep(rng.uniform(0.0, 0.3))  # the random point inside the step (not a wait for a condition)
    os.killpg(proc.pid, signal.SIGKILL)  # the run's whole process group, as a closed terminal would
    proc.wait(timeout=30)
    run_id = _run_id(ws)
    if sandbox_available():  # the step's PID namespace dies with the run: nothing survives the kill itself
        wait_for(lambda: not processes_with_env("CODEX_RUN_ID", run_id), "the killed run's processes to end", 10)
    resumed = run_cli("run", str(f), "--resume", cwd=ws, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert processes_with_env("CODEX_RUN_ID", run_id) == []
    lines = _lines(ws)
    for i in range(STEPS):
        assert lines.count(f"s{i} end") == 1, (i, lines)  # no step's work done twice
        assert lines.count(f"s{i} start") == (2 if i == k else 1), (i, lines)
    state = json.loads((ws / ".codex" / "runs" / run_id / "state.json").read_text())
    assert state["status"] == "succeeded"


def test_a_second_run_names_the_holder_and_sigterm_stops_the_first_like_ctrl_c(tmp_path, prefect_url):
    ws = tmp_path / "ws"
    ws.mkdir()
    f = tmp_path / "slow.yaml"
    f.write_text(textwrap.dedent("""\
        version: "2"
        title: slow
        phases:
          - id: p
            steps:
              - id: wait
                commands: ["echo started > started.txt", "sleep 60"]
              - id: after
                commands: ["touch after.txt"]
        """))
    first = _start(f, ws)
    wait_for(lambda: (ws / "started.txt").exists(), "the first run's step")
    second = run_cli("run", str(f), cwd=ws)
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"pid {first.pid}" in second.stdout + second.stderr
    run_id = _run_id(ws)
    first.send_signal(signal.SIGTERM)
    out, _ = first.communicate(timeout=60)
    assert first.returncode == 130, out
    assert "Traceback" not in out
    state = json.loads((ws / ".codex" / "runs" / run_id / "state.json").read_text())
    assert state["status"] == "interrupted"
    assert processes_with_env("CODEX_RUN_ID", run_id) == []
    assert not (ws / "after.txt").exists()
    assert not (ws / ".codex" / "run.lock.json").exists()  # released: nothing left to reap


def test_a_resume_ends_what_a_dead_run_left_before_starting(tmp_path):
    """Without the PID namespace (bubblewrap missing), the run lock's record is what ends leftovers."""
    from codex_tasks.core.process import Sandbox, spawn
    from codex_tasks.runs.lock import RunLock

    ws = tmp_path / "ws"
    ws.mkdir()
    dead = RunLock(ws).acquire("dead-run")
    orphan = spawn(["sleep", "300"], cwd=ws, env={**os.environ, "CODEX_RUN_ID": "dead-run"}, sandbox=Sandbox("none"))
    dead._fh.close()  # type: ignore[union-attr]  # the holder "dies": the kernel drops its flock
    dead._fh = None
    assert processes_with_env("CODEX_RUN_ID", "dead-run") == [orphan.pid]
    fresh = RunLock(ws).acquire("dead-run")
    try:
        assert fresh.reaped == [orphan.pid]
        orphan.wait(timeout=10)
        assert processes_with_env("CODEX_RUN_ID", "dead-run") == []
    finally:
        fresh.release()
        dead.release()
