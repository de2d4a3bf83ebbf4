"""A torchrun rank's hooks: an orphaned rank (its launcher gone) cancels, so it checkpoints and stops."""

from __future__ import annotations

import os
import subprocess
import sys

from codex_tasks.engine.rank_worker import WorkerHooks


def test_a_rank_cancels_once_its_launcher_has_exited(tmp_path):
    # the launcher is a child waiting on its stdin; after it exits it stays a zombie (unreaped),
    # which counts as gone: the rank must not run on for a launcher that will never read its output
    launcher = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        hooks = WorkerHooks(rank=1, cancel_file=str(tmp_path / "cancel"), parent_pid=launcher.pid)
        assert not hooks.cancelled
        assert launcher.stdin is not None
        launcher.stdin.close()
        os.waitid(os.P_PID, launcher.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        assert hooks.cancelled
    finally:
        launcher.kill()
        launcher.wait()


def test_the_cancel_file_cancels_a_rank_whose_launcher_lives(tmp_path):
    hooks = WorkerHooks(rank=0, cancel_file=str(tmp_path / "cancel"), parent_pid=os.getpid())
    assert not hooks.cancelled
    (tmp_path / "cancel").touch()
    assert hooks.cancelled
