"""The managed Prefect server killed mid-run: the run says so within seconds (not after Prefect's
client has retried for minutes), before the next step starts, exits 2 without a traceback, and
stays resumable — `--resume` restarts the server and finishes the work, nothing done twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import textwrap
from pathlib import Path

import pytest

from codex_tasks.core.process import is_alive
from tests.conftest import CODEX, run_cli, wait_for

SEQUENCE = textwrap.dedent("""\
    version: "2"
    title: server fault
    phases:
      - id: p
        steps:
          - id: a
            commands: ["echo a >> a.log", "touch a.started", "while [ -f hold ]; do sleep 0.05; done"]
          - id: b
            commands: ["echo b >> b.log"]
    """)


def _own_home(tmp_path: Path, session_url: str) -> Path:
    """A codex-tasks home of this test's own, so its server can be killed: the session server's
    database is copied (SQLite's backup API), so the new server skips the first-run migrations."""
    from codex_tasks.orchestrate.prefect.server import server_home

    home = tmp_path / "home"
    (home / "prefect").mkdir(parents=True)
    src = server_home() / "prefect.db"
    if src.is_file():
        with sqlite3.connect(src) as a, sqlite3.connect(home / "prefect" / "prefect.db") as b:
            a.backup(b)
    return home


@pytest.mark.slow
def test_server_killed_mid_step_is_reported_within_seconds_and_resume_finishes(tmp_path, prefect_url, monkeypatch):
    home = _own_home(tmp_path, prefect_url)
    monkeypatch.setenv("CODEX_TASKS_HOME", str(home))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    try:
        _kill_and_resume(tmp_path, home)
    finally:
        from codex_tasks.orchestrate.prefect import server

        server.stop()  # this test's own server (the one the resume started), not the session's


def _kill_and_resume(tmp_path: Path, home: Path) -> None:
    env = dict(os.environ)
    ws = tmp_path / "ws"
    ws.mkdir()
    seq = ws / "seq.yaml"
    seq.write_text(SEQUENCE)
    (ws / "hold").touch()
    proc = subprocess.Popen([CODEX, "run", str(seq)], cwd=ws, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for(lambda: (ws / "a.started").exists() or proc.poll() is not None, "step a to start")
        assert proc.poll() is None, proc.communicate()
        server = json.loads((home / "prefect" / "server.json").read_text())
        os.kill(int(server["pid"]), signal.SIGKILL)
        # Prefect's client alone would retry for ~3.5 minutes; the watch stops the run in seconds
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 2, (out, err)
    assert "Traceback" not in out + err, err
    assert f"the managed Prefect server (pid {server['pid']}) exited" in err, err
    assert "--resume" in err, err
    assert not (ws / "b.log").exists()  # reported before the next step started
    rd = next((ws / ".codex" / "runs").iterdir())
    state = json.loads((rd / "state.json").read_text())
    assert state["status"] == "interrupted" and state["pid"] is None
    assert state["steps"]["a"]["status"] != "succeeded"
    events = [json.loads(line) for line in (rd / "events.ndjson").read_text().splitlines()]
    assert events[-1]["type"] == "run.interrupted"
    assert any("exited during run" in str(e.get("line", "")) for e in events)

    (ws / "hold").unlink()
    assert not is_alive(int(server["pid"]))
    resumed = run_cli("run", str(seq), "--resume", cwd=ws, env=env, timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (ws / "b.log").read_text() == "b\n"  # b once; a ran again (it was interrupted)
    assert json.loads((rd / "state.json").read_text())["status"] == "succeeded"
