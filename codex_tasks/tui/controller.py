"""A run started by this TUI: `run_sequence` in a worker thread of this process.

The runner installs its signal handlers only on the main thread (Textual's), so here the
`cancel_event` does what Ctrl-C / `codex-tasks cancel` do in a plain run: the run stops at the
next step boundary (a shell step is stopped at once), state saved, resumable.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from codex_tasks.orchestrate.runner import RunOptions
    from codex_tasks.runs.rundir import RunDir


def supports_cancel_event() -> bool:
    """Whether `RunOptions` takes a `cancel_event` (needed to cancel an in-process run)."""
    from codex_tasks.orchestrate.runner import RunOptions

    return "cancel_event" in {f.name for f in dataclasses.fields(RunOptions)}


class RunController:
    """Starts one run (or a resume) in a daemon thread and reports on it; thread-safe."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
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
        from codex_tasks.orchestrate.runner import run_sequence

        user_started = self.options.on_started

        def on_started(rd: RunDir) -> None:
            self.rundir = rd
            self.started.set()
            if user_started is not None:
                user_started(rd)

        extra: dict[str, Any] = {"on_started": on_started, "quiet": True, "on_event": None}
        if supports_cancel_event():
            extra["cancel_event"] = self.cancel_event
        opts = dataclasses.replace(self.options, **extra)

        def target() -> None:
            try:
                result = run_sequence(opts)
                self.exit_code, self.status = result.exit_code, result.status
            except BaseException as exc:  # reported by the TUI (bad input: exit 2)
                self.error = exc
                self.exit_code = int(getattr(exc, "exit_code", 2) or 2)
            finally:
                self.started.set()

        self._thread = threading.Thread(target=target, name="codex-tasks-run", daemon=True)
        self._thread.start()

    def cancel(self) -> bool:
        """Ask the run to stop cleanly (status `cancelled`); False when this runner cannot."""
        if not self.running:
            return False
        if self.rundir is not None:
            self.rundir.state["cancel_status"] = "cancelled"
        self.cancel_event.set()
        return supports_cancel_event()

    def join(self, timeout: float | None = None) -> int | None:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.exit_code
