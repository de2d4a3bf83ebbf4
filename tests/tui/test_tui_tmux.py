"""End to end in a real terminal: tmux runs `codex-tasks tui FILE`, we read the pane."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

ROW = re.compile(r"^\S (?P<status>done|failed|not run|running|pending)\s+(?P<id>\S+)")
SEQUENCE = """\
version: "1.0"
title: Tmux check
phases:
  - id: T1
    name: Work
    steps:
      - id: hello
        description: Says hello.
        commands:
          - echo hello from tmux
      - id: broken
        description: Always fails.
        commands:
          - exit 3
      - id: after
        description: Never reached.
        commands:
          - echo unreachable
"""


def tmux(sock: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, timeout=20).stdout


def test_tui_in_tmux_shows_step_ids_and_final_statuses(tmp_path: Path, prefect_url: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "seq.yaml").write_text(SEQUENCE)
    sock = f"codex-tui-{uuid.uuid4().hex[:8]}"
    keep = ("PATH", "HOME", "CODEX_TASKS_HOME", "PREFECT_API_URL", "DO_NOT_TRACK", "LANG", "LC_ALL")
    env = " ".join(f"{k}={shlex.quote(os.environ[k])}" for k in keep if k in os.environ)
    done_file = tmp_path / "exit_code"
    codex = str(Path(sys.executable).parent / "codex-tasks")
    cmd = (f"cd {shlex.quote(str(ws))} && env {env} TERM=xterm-256color {shlex.quote(codex)} "
           f"tui seq.yaml --workspace {shlex.quote(str(ws))}; "
           f"echo $? > {shlex.quote(str(done_file))}; sleep 30")
    tmux(sock, "new-session", "-d", "-x", "100", "-y", "30", cmd)
    try:
        pane = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            time.sleep(0.5)
            pane = tmux(sock, "capture-pane", "-p", "-t", "0")
            if "● failed" in pane and "not run" in pane:
                break
        else:
            pytest.fail(f"the TUI never showed the finished run:\n{pane}")
        rows = {m.group("id"): (m.group("status"), ln) for ln in pane.splitlines()
                if (m := ROW.match(ln.strip("│ ")))}
        assert rows["hello"][0] == "done"
        assert rows["broken"][0] == "failed" and "3" in rows["broken"][1]
        assert rows["after"][0] == "not run"
        assert "Tmux check" in pane
        tmux(sock, "send-keys", "-t", "0", "q")  # finished: quits without asking
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not done_file.exists():
            time.sleep(0.2)
        assert done_file.read_text().strip() == "1"  # the run's exit code: a step failed
    finally:
        tmux(sock, "kill-server")
