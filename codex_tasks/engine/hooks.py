"""How the engine reports progress, metrics and log lines, and learns it should stop."""

from __future__ import annotations

import sys
import threading
from typing import Any


class Hooks:
    """Default hooks: print log lines to stderr, drop progress and metrics.

    Step kinds pass a subclass that turns these calls into run events.
    """

    def __init__(self, cancel_event: threading.Event | None = None) -> None:
        self.cancel_event = cancel_event or threading.Event()

    def progress(self, done: float, total: float | None, unit: str, **extra: Any) -> None:
        """One progress report (every training step)."""

    def metric(self, name: str, value: float, *, step: int | None = None, split: str | None = None) -> None:
        """One metric point."""

    def log(self, line: str) -> None:
        """One human-readable line."""
        print(line, file=sys.stderr, flush=True)

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


class CallbackHooks(Hooks):
    """Hooks that forward to plain callables (a step kind passes `ctx.progress`, `ctx.metric`, `ctx.log`)."""

    def __init__(
        self,
        progress: Any = None,
        metric: Any = None,
        log: Any = None,
        cancel_event: threading.Event | None = None,
    ) -> None:
        super().__init__(cancel_event)
        self._progress = progress
        self._metric = metric
        self._log = log

    def progress(self, done: float, total: float | None, unit: str, **extra: Any) -> None:
        if self._progress:
            self._progress(done, total, unit, **extra)

    def metric(self, name: str, value: float, *, step: int | None = None, split: str | None = None) -> None:
        if self._metric:
            self._metric(name, value, step=step, split=split)

    def log(self, line: str) -> None:
        if self._log:
            self._log(line)
        else:
            super().log(line)
