"""Entry points: `codex-tasks tui [FILE | RUN]`, `codex-tasks run --tui`.

A sequence FILE is run in a worker thread of this process and shown; a RUN (id, id prefix, or
folder; default the newest) is watched while it runs elsewhere, or replayed when finished.
Quitting never stops a run started by another process. Runs are started through the `Launcher`
the CLI hands in (the TUI reads run folders; it never imports the runner).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from codex_tasks.errors import UsageError
from codex_tasks.runs.rundir import find_run
from codex_tasks.tui.app import RunApp
from codex_tasks.tui.controller import Launcher, RunController


def is_sequence_file(target: str) -> bool:
    p = Path(target)
    return target.startswith("builtin:") or (p.is_file() and p.suffix.lower() in (".yaml", ".yml", ".json"))


def main(target: str | None, run_args: list[str] | None, workspace: str | None, launcher: Launcher) -> int:
    """`codex-tasks tui [FILE | RUN] [run options]`. Returns the exit code: for a run started here,
    the run's (0, 1, 130); 0 after watching; `CodexTasksError` (exit 2) on bad input."""
    if target is not None and is_sequence_file(target):
        return run_with_tui(launcher.parse(target, list(run_args or []), workspace), launcher)
    if run_args:
        raise UsageError(f"run options ({' '.join(run_args)}) apply only to a sequence FILE",
                         hint="codex-tasks tui FILE [options] starts a run; codex-tasks tui RUN watches one")
    ws = Path(workspace or os.getcwd()).resolve()
    rd = find_run(ws, target)
    return watch(rd.path, launcher)


def watch(path: Path, launcher: Launcher | None = None) -> int:
    """Watch (or replay) the run folder at `path`; a run resumed from the TUI is waited for."""
    app = RunApp(path, launcher=launcher)
    with _cancel_on_signal(app):
        app.run()
    return _finish(app, app.return_value)


def run_with_tui(opts: Any, launcher: Launcher) -> int:
    """Start the run in a worker thread and show it (`codex-tasks tui FILE`, `run --tui`)."""
    # Steps may use multiprocessing (audit / safety_scan over many files). Its resource tracker is
    # started lazily with this process's stderr fd, which Textual replaces while the app runs
    # ("ValueError: bad value(s) in fds_to_keep"): start it now, while the real fd is there.
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    launcher.check(opts)  # bad input (file, parameter, option) fails here, before the screen opens
    controller = RunController(opts, launcher)
    controller.start()
    app = RunApp(controller=controller)
    with _cancel_on_signal(app):
        app.run()
    return _finish(app, app.return_value)


class _cancel_on_signal:
    """While the TUI runs, SIGUSR1 (`codex-tasks cancel`) and SIGTERM cancel this process's run
    cleanly instead of killing the process (the runner's own handlers exist only on the main
    thread, which Textual holds)."""

    def __init__(self, app: RunApp) -> None:
        self.app = app
        self.old: dict[int, Any] = {}

    def __enter__(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            ctl = self.app.controller
            if ctl is not None and ctl.running:
                ctl.cancel()
            elif signum == signal.SIGTERM:
                raise KeyboardInterrupt

        for s in (signal.SIGUSR1, signal.SIGTERM):
            self.old[s] = signal.signal(s, handler)

    def __exit__(self, *exc: object) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)


def _finish(app: RunApp, choice: str | None) -> int:
    """After the screen closed: wait for a run this process still runs, then report it."""
    ctl = app.controller
    if ctl is None:
        return 0
    if ctl.error is not None and ctl.rundir is None:
        ctl.join()
        raise ctl.error
    if ctl.running:
        run_id = ctl.rundir.run_id if ctl.rundir else "(starting)"
        if choice == "cancel":
            print(f"codex-tasks: cancelling run {run_id} (state is saved)…", file=sys.stderr)
        else:
            print(f"codex-tasks: run {run_id} continues here; watch it with `codex-tasks tui {run_id}` "
                  f"from another terminal; Ctrl-C stops it cleanly (state saved)", file=sys.stderr)
        _join_interruptibly(ctl)
    if ctl.rundir is not None:
        print(f"run {ctl.rundir.run_id} {ctl.status}: {ctl.rundir.path}")
    return ctl.exit_code if ctl.exit_code is not None else 0


def _join_interruptibly(ctl: Any) -> None:
    """Wait for the run thread; Ctrl-C (or SIGTERM, SIGUSR1) cancels it cleanly, a second one leaves now."""
    hits = {"n": 0}

    def handler(signum: int, frame: Any) -> None:
        hits["n"] += 1
        ctl.cancel()
        if hits["n"] > 1:
            raise KeyboardInterrupt
        print("\ncodex-tasks: stopping (state is saved; Ctrl-C again to leave at once)", file=sys.stderr)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)}
    try:
        while ctl.running:
            ctl.join(0.2)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
