"""The run folder `.codex/runs/<run-id>/` and its live state.

`state.json` is the run's state, rewritten atomically after every step change (a kill at any
moment leaves the last whole state); `summary.json` is written from it when the run ends.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from codex_tasks.core.files import read_json, write_json_atomic, write_text_atomic
from codex_tasks.core.process import is_alive
from codex_tasks.core.redact import redact_obj
from codex_tasks.errors import RunNotFound
from codex_tasks.runs.events import EventLog, now_iso

CODEX_DIR = ".codex"
REMOTE_STATE = "step_state.json"
CANCEL_FILE = "cancel.requested"
FINAL_STATUSES = ("succeeded", "failed", "cached", "manual", "skipped", "not_run")
# Run statuses `--resume` continues ("running": only once its process is gone, i.e. killed).
RESUMABLE = ("failed", "interrupted", "cancelled", "running")


def new_run_id() -> str:
    """Sortable and unique: `20261130-031502-a1b2`."""
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def codex_dir(workspace: Path) -> Path:
    """`.codex/` in the workspace, with its own `.gitignore` so runs never dirty git status."""
    d = workspace / CODEX_DIR
    d.mkdir(parents=True, exist_ok=True)
    ignore = d / ".gitignore"
    if not ignore.exists():
        write_text_atomic(ignore, "# written by codex-tasks: run folders, cache and stores stay out of git\n*\n")
    return d


def runs_root(workspace: Path) -> Path:
    return workspace / CODEX_DIR / "runs"


@dataclass
class RunDir:
    """One run folder and its state."""

    path: Path
    run_id: str
    state: dict[str, Any] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _events: EventLog | None = field(default=None, repr=False)
    remote: bool = False  # a copy in another process (a Dask worker): it never writes state.json

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {"path": self.path, "run_id": self.run_id, "state": self.state}

    def __setstate__(self, data: dict[str, Any]) -> None:
        self.path, self.run_id, self.state = data["path"], data["run_id"], data["state"]
        self._lock = threading.RLock()
        self._events = None
        self.remote = True

    # ------------------------------------------------------------ creation and lookup

    @classmethod
    def create(cls, workspace: Path, run_id: str | None = None) -> RunDir:
        codex_dir(workspace)
        run_id = run_id or new_run_id()
        path = runs_root(workspace) / run_id
        path.mkdir(parents=True, exist_ok=False)
        (path / "steps").mkdir()
        return cls(path=path, run_id=run_id)

    @classmethod
    def open(cls, path: Path) -> RunDir:
        state_file = path / "state.json"
        if not state_file.is_file():
            raise RunNotFound(f"{path} is not a codex-tasks run folder (no state.json)")
        rd = cls(path=path, run_id=path.name)
        rd.state = read_json(state_file)
        return rd

    @property
    def events(self) -> EventLog:
        if self._events is None:
            self._events = EventLog(self.path / "events.ndjson", self.run_id)
        return self._events

    def step_dir(self, step_id: str) -> Path:
        safe = step_id.replace("/", "_").replace(os.sep, "_")
        return self.path / "steps" / safe

    # ------------------------------------------------------------ state

    def save(self) -> None:
        if self.remote:
            return
        with self._lock:
            self.state["updated"] = now_iso()
            # values are redacted as they enter the state (update_step), not on every save
            write_json_atomic(self.path / "state.json", self.state, redacted=False, compact=True)

    def update_step(self, step_id: str, *, persist: bool = True, **fields: Any) -> dict[str, Any]:
        """Change a step's entry; `persist=False` keeps it in memory until the next save (a step's
        'running' mark: a kill before the step ends loses nothing that resume needs)."""
        with self._lock:
            entry: dict[str, Any] = self.state.setdefault("steps", {}).setdefault(step_id, {})
            entry.update(redact_obj(fields))
            if self.remote:
                # the run's process owns state.json; it merges this file when the step ends
                if persist:
                    write_json_atomic(self.step_dir(step_id) / REMOTE_STATE, entry, redacted=False)
            elif persist:
                self.save()
            return dict(entry)

    def merge_remote(self, step_id: str) -> bool:
        """Take in a step's state written by another process (see `remote`)."""
        f = self.step_dir(step_id) / REMOTE_STATE
        try:
            entry = read_json(f)
        except (OSError, ValueError):
            return False
        f.unlink(missing_ok=True)
        if isinstance(entry, dict):
            self.update_step(step_id, **entry)
            return True
        return False

    def request_cancel(self) -> None:
        """Leave a mark that processes without our signal handler (Dask workers) watch for."""
        (self.path / CANCEL_FILE).touch()

    def step_state(self, step_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.state.get("steps", {}).get(step_id, {}))

    def step_status(self, step_id: str) -> str | None:
        """A step's status (no copy of its entry: the scheduler asks this for every waiting step)."""
        with self._lock:
            status = self.state.get("steps", {}).get(step_id, {}).get("status")
            return None if status is None else str(status)


def find_run(workspace: Path, ref: str | None = None) -> RunDir:
    """A run by id, folder path, or (None) the newest one in the workspace."""
    if ref:
        p = Path(ref)
        if (p / "state.json").is_file():
            return RunDir.open(p)
        candidate = runs_root(workspace) / ref
        if (candidate / "state.json").is_file():
            return RunDir.open(candidate)
        matches = [d for d in list_run_dirs(workspace) if d.name.startswith(ref)]
        if len(matches) == 1:
            return RunDir.open(matches[0])
        raise RunNotFound(f"no run {ref!r} in {runs_root(workspace)}", hint="codex-tasks runs lists them")
    dirs = list_run_dirs(workspace)
    if not dirs:
        raise RunNotFound(f"no runs in {runs_root(workspace)}", hint="start one with codex-tasks run FILE")
    return RunDir.open(dirs[-1])


def list_run_dirs(workspace: Path) -> list[Path]:
    """Run folders, oldest first."""
    root = runs_root(workspace)
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.is_dir() and (d / "state.json").is_file())


def prune_runs(workspace: Path, keep: int) -> list[str]:
    """Remove all but the newest `keep` run folders; never the newest failed one, never a running one."""
    dirs = list_run_dirs(workspace)
    states = {d: _safe_state(d) for d in dirs}
    failed = [d for d in dirs if states[d].get("status") in ("failed", "interrupted", "cancelled")]
    protect = {failed[-1]} if failed else set()
    protect |= {d for d in dirs if states[d].get("status") == "running" and is_alive(states[d].get("pid"))}
    keep_set = set(dirs[-keep:]) if keep > 0 else set()
    removed = []
    for d in dirs:
        if d in keep_set or d in protect:
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d.name)
    return removed


def _safe_state(d: Path) -> dict[str, Any]:
    try:
        data = read_json(d / "state.json")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}




def elapsed(start: float) -> float:
    return round(time.time() - start, 3)
