"""One run at a time per workspace, and nothing left running by a run that died.

`.codex/run.lock` is held with `flock` for the whole run; the kernel drops the lock when the
holding process dies, however it dies (SIGKILL included), so a held lock always means a live run.
Beside it, `.codex/run.lock.json` names the holder (pid, run id), and the lock file itself gets
one line, the process group, for every child the run spawns (through `core.process.spawn`): an
append to a file already open, not a rewrite (an atomic rename per step cost milliseconds). When a
run starts and finds a holder record left by a dead run, it first ends what is still alive of it
— each recorded group, and any process whose environment carries the dead run's `CODEX_RUN_ID` —
and waits until it is gone, so a `--resume` never runs a step beside the same step of the killed
run.
"""

from __future__ import annotations

import errno
import fcntl
import os
import signal
import threading
import time
from pathlib import Path
from typing import IO, Any

from codex_tasks.core import process
from codex_tasks.core.files import read_json, write_json_atomic
from codex_tasks.errors import DiskFull, UsageError


class WorkspaceBusy(UsageError):
    """Another run holds this workspace's run lock."""


def _reap(run_id: str, groups: list[int], *, timeout: float = 10.0) -> list[int]:
    """SIGKILL what is left of dead run `run_id`; returns the pids that were ended."""
    ended: list[int] = []
    for pgid in dict.fromkeys(g for g in groups if process.group_alive(g)):
        members = [pid for pid in process.processes_with_env("CODEX_RUN_ID", run_id) if _pgid(pid) == pgid]
        if members:  # only a group whose processes carry the run id: a reused pgid is left alone
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            ended += members
    for pid in process.processes_with_env("CODEX_RUN_ID", run_id):
        try:
            os.kill(pid, signal.SIGKILL)
            ended.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + timeout
    while process.processes_with_env("CODEX_RUN_ID", run_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    return sorted(set(ended))


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


class RunLock:
    """The workspace's run lock; `acquire` it before a run writes anything, `release` at the end."""

    def __init__(self, workspace: Path) -> None:
        self.dir = workspace / ".codex"
        self.path = self.dir / "run.lock"
        self.info_path = self.dir / "run.lock.json"
        self._fh: IO[str] | None = None
        self._mutex = threading.Lock()
        self.info: dict[str, Any] = {}
        self.reaped: list[int] = []

    def acquire(self, run_id: str) -> RunLock:
        """Take the lock for `run_id`, or raise `WorkspaceBusy` naming the holder (exit 2)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole run
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            holder = self._read_info()
            raise WorkspaceBusy(
                f"another run holds {self.dir}: run {holder.get('run_id', '?')} (pid {holder.get('pid', '?')})",
                hint=f"wait for it, or stop it with `codex-tasks cancel {holder.get('run_id', 'RUN_ID')}`") from None
        self._fh = fh
        left = self._read_info()
        if left.get("run_id"):  # written by a run that died without releasing: end what it left
            groups = [int(g) for g in left.get("groups", [])] + self._recorded_groups()
            self.reaped = _reap(str(left["run_id"]), groups)
        os.ftruncate(fh.fileno(), 0)  # the groups recorded from here on are this run's
        self.info = {"pid": os.getpid(), "run_id": run_id}
        write_json_atomic(self.info_path, self.info)
        process.spawn_listeners.append(self.record_group)
        return self

    def _recorded_groups(self) -> list[int]:
        """The process groups in the lock file, one a line (an unterminated last line is skipped;
        `_reap` touches a group only if its processes carry the dead run's id)."""
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return [int(line) for line in text.split("\n")[:-1] if line.strip().isdigit()]

    def _read_info(self) -> dict[str, Any]:
        try:
            info = read_json(self.info_path)
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    def record_group(self, pgid: int) -> None:
        """Remember a child's process group (called by `core.process.spawn`): one line appended to
        the lock file, which is open for the whole run (O_APPEND: one write, never interleaved)."""
        with self._mutex:
            if self._fh is None:
                return
            try:
                os.write(self._fh.fileno(), f"\n{pgid}\n".encode())  # a torn line before it stays alone
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise DiskFull(self.path) from None
                raise

    def release(self) -> None:
        """Drop the lock; the record goes with it (nothing of this run is left to reap)."""
        with self._mutex:
            if self.record_group in process.spawn_listeners:
                process.spawn_listeners.remove(self.record_group)
            if self._fh is None:
                return
            self.info_path.unlink(missing_ok=True)
            os.ftruncate(self._fh.fileno(), 0)
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
