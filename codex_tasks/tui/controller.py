"""A run started by this TUI: `run_sequence` in a worker thread of this process.

The runner installs its signal handlers only on the main thread (Textual's), so here the
`cancel_event` does what Ctrl-C / `codex-tasks cancel` do in a plain run: the run stops at the
next step boundary (a shell step is stopped at once), state saved, resumable.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codex_tasks.runs.rundir import RunDir


@dataclass(frozen=True)
class Launcher:
    """How the TUI starts runs, handed in by the CLI: the TUI never imports the runner.

    Run options are the CLI's dataclass, opaque here except for `file` and the fields a started
    run is given (`on_started`, `on_event`, `quiet`, `cancel_event`)."""

    parse: Callable[[str, list[str], str | None], Any]  # FILE, run options, workspace -> options
    check: Callable[[Any], Any]  # raises CodexTasksError on bad input, before the screen opens
    run: Callable[[Any], Any]  # runs to the end; the result has `exit_code` and `status`
    resume: Callable[[dict[str, Any], str], Any]  # a run's state.json and id -> options resuming it


class RunController:
    """Starts one run (or a resume) in a daemon thread and reports on it; thread-safe."""

    def __init__(self, options: Any, launcher: Launcher) -> None:
        self.options = options
        self.launcher = launcher
        self.cancel_event = threading.Event()
        self.started = threading.Event()  # set once the run folder exists (or the start failed)
        self.rundir: RunDir | None = None
        self.error: BaseException | None = None
        self.exit_code: int | None = None
        self.status: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> Path | None:
        return self.rundir.path if self.rundir is not None else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        user_started = self.options.on_started

        def on_started(rd: RunDir) -> None:
            self.rundir = rd
            self.started.set()
            if user_started is not None:
                user_started(rd)

        opts = dataclasses.replace(self.options, on_started=on_started, quiet=True, on_event=None,
                                   cancel_event=self.cancel_event)

        def target() -> None:
            try:
                result = self.launcher.run(opts)
                self.exit_code, self.status = result.exit_code, result.status
            except BaseException as exc:  # reported by the TUI (bad input: exit 2)
                self.error = exc
                self.exit_code = int(getattr(exc, "exit_code", 2) or 2)
            finally:
                self.started.set()

        self._thread = threading.Thread(target=target, name="codex-tasks-run", daemon=True)
        self._thread.start()

    def cancel(self) -> bool:
        """Ask the run to stop cleanly (status `cancelled`); False when it is not running."""
        if not self.running:
            return False
        if self.rundir is not None:
            self.rundir.state["cancel_status"] = "cancelled"
        self.cancel_event.set()
        return True

    def join(self, timeout: float | None = None) -> int | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.exit_code
