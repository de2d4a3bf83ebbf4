"""`codex-tasks cancel RUN`: ask a running run to stop cleanly (state saved, resumable)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from codex_tasks.core.process import is_alive
from codex_tasks.errors import UsageError
from codex_tasks.runs.rundir import RunDir, find_run


def cancel_run(workspace: Path, ref: str | None, wait: float = 60.0) -> str:
    rd = find_run(workspace, ref)
    pid = rd.state.get("pid")
    if rd.state.get("status") != "running" or not is_alive(pid):
        raise UsageError(f"run {rd.run_id} is not running (status {rd.state.get('status')})")
    os.kill(int(str(pid)), signal.SIGUSR1)  # the run's handler stops it as Ctrl-C does, status "cancelled"
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        st = RunDir.open(rd.path).state
        if st.get("status") != "running":
            return f"run {rd.run_id} {st.get('status')}; resume with: codex-tasks run FILE --resume={rd.run_id}"
        time.sleep(0.2)
    return f"asked run {rd.run_id} (pid {pid}) to stop; it has not finished yet"
