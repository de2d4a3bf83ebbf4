"""The spawn primitive: sessions, PID namespaces that die with the step, the strict sandbox."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from codex_tasks.core.process import (
    Sandbox,
    is_alive,
    kill_tree,
    processes_with_env,
    sandbox_available,
    sandbox_unavailable_reason,
    spawn,
)
from codex_tasks.errors import SandboxUnavailable

needs_bwrap = pytest.mark.skipif(not sandbox_available() and not os.environ.get("CI"),
                                 reason=f"{sandbox_unavailable_reason()}")


def _wait(cond, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def _marker_env() -> tuple[str, dict[str, str]]:
    tag = uuid.uuid4().hex
    return tag, {**os.environ, "CODEX_TASKS_TEST_TAG": tag}


DAEMON = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    fd = os.open(os.devnull, os.O_RDWR)\n"
          "    os.dup2(fd, 1); os.dup2(fd, 2)\n    time.sleep(300)\nelse:\n    print('started', flush=True)\n")


@needs_bwrap
def test_pid_mode_kills_a_daemon_when_the_child_exits(tmp_path: Path) -> None:
    tag, env = _marker_env()
    proc = spawn([sys.executable, "-c", DAEMON], cwd=tmp_path, env=env, sandbox=Sandbox("pid"),
                 stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=60)
    assert b"started" in out and proc.returncode == 0
    assert _wait(lambda: not processes_with_env("CODEX_TASKS_TEST_TAG", tag)), "a daemon outlived its step"


def test_none_mode_lets_a_daemon_escape_which_is_why_pid_mode_exists(tmp_path: Path) -> None:
    tag, env = _marker_env()
    proc = spawn([sys.executable, "-c", DAEMON], cwd=tmp_path, env=env, sandbox=Sandbox("none"),
                 stdout=subprocess.PIPE)
    proc.communicate(timeout=60)
    left = processes_with_env("CODEX_TASKS_TEST_TAG", tag)
    try:
        assert left, "the control case: a setsid daemon survives a plain session"
    finally:
        for pid in left:
            os.kill(pid, 9)


@needs_bwrap
def test_kill_tree_ends_every_process_of_a_step(tmp_path: Path) -> None:
    tag, env = _marker_env()
    proc = spawn(["bash", "-c", "sleep 300 & sleep 300 & wait"], cwd=tmp_path, env=env)
    assert _wait(lambda: len(processes_with_env("CODEX_TASKS_TEST_TAG", tag)) >= 3)
    kill_tree(proc, grace=1.0)
    assert proc.returncode is not None
    assert _wait(lambda: not processes_with_env("CODEX_TASKS_TEST_TAG", tag))
    assert not is_alive(proc.pid)


@needs_bwrap
def test_strict_mode_is_read_only_outside_the_writable_paths_and_offline(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    # outside /tmp (the sandbox has a private /tmp, where a write would land unseen): under $HOME
    home_dir = Path.home() / ".cache" / f"codex-tasks-test-{uuid.uuid4().hex}"
    home_dir.mkdir(parents=True)
    outside = home_dir / "outside.txt"
    script = (f"echo ok > {scratch}/inside.txt; "
              f"echo bad > {outside} 2>/dev/null && echo WROTE_OUTSIDE; "
              "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 9), 1)' 2>/dev/null || echo NO_NET")
    proc = spawn(["bash", "-c", script], cwd=scratch, sandbox=Sandbox("strict", (scratch,), network=False),
                 stdout=subprocess.PIPE)
    out, _ = proc.communicate(timeout=60)
    assert (scratch / "inside.txt").read_text() == "ok\n"
    assert not outside.exists() and b"WROTE_OUTSIDE" not in out
    assert b"NO_NET" in out
    home_dir.rmdir()


def test_strict_mode_refuses_without_bubblewrap_unless_allowed(tmp_path: Path, monkeypatch) -> None:
    import codex_tasks.core.process as process

    monkeypatch.setattr(process, "sandbox_available", lambda: False)
    with pytest.raises(SandboxUnavailable):
        spawn(["true"], cwd=tmp_path, sandbox=Sandbox("strict", (tmp_path,)), allow_unsandboxed=False)
    proc = spawn(["true"], cwd=tmp_path, sandbox=Sandbox("strict", (tmp_path,)), allow_unsandboxed=True)
    assert proc.wait(timeout=30) == 0
