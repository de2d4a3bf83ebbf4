"""The step-kind interface.

A kind is one module in `codex_tasks/steps/` that defines:

- `NAME`: the kind's name (what `uses:` says),
- `With`: a Pydantic model of its `with:` mapping (field descriptions become the docs); the module
  imports nothing heavy at top level — torch, transformers, prefect load inside `run`,
- `CACHE`: `"default"` (cached unless `cache: false`), `"opt_in"` (only with `cache: true`) or
  `"never"`,
- `run(cfg: With, ctx: StepContext) -> StepResult`: does the work; raises `StepFailed` (or a
  subclass) with a one-line reason on failure,
- optionally `deps(cfg, ctx) -> list[str]` and `outputs(cfg, ctx) -> list[str]`: paths/globs
  (relative to the workspace) that key the cache and that the step writes,
- optionally `cacheable(cfg) -> bool` (only some configurations may be cached) and
  `SUPPORTS_DRY_RUN = True` (its `run` honours `ctx.dry_run`; otherwise a dry run only logs).

Progress leaves a step only through `ctx` (events); a kind never imports the CLI or the TUI.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from codex_tasks.core.redact import redact


class WithModel(BaseModel):
    """Base of every kind's `with:` model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class EventSink(Protocol):
    def emit(self, type: str, **fields: Any) -> Any: ...


@dataclass
class StepContext:
    """Everything a step kind may use while it runs."""

    step_id: str
    phase_id: str
    workspace: Path
    step_dir: Path  # the step's own folder in the run folder: report files go here
    run_dir: Path
    run_id: str
    params: Mapping[str, Any]
    events: EventSink
    env: dict[str, str] = field(default_factory=dict)  # extra environment for subprocesses
    description: str = ""
    timeout: float | None = None
    dry_run: bool = False
    resuming: bool = False  # this is a resumed attempt of the run
    previous_step_dir: Path | None = None  # the step folder of the previous attempt, if any
    cancel_event: threading.Event = field(default_factory=threading.Event)
    outputs_of: Callable[[str], list[dict[str, Any]]] | None = None  # step id -> recorded outputs
    lines: list[tuple[str, str]] = field(default_factory=list)  # shell steps: (section, rendered line)
    declared_outputs: list[str] = field(default_factory=list)  # the step's `outputs:` paths, rendered
    declared_output_notes: dict[str, str] = field(default_factory=dict)  # path -> its `description`
    conditions: list[str] = field(default_factory=list)  # the step's prose preconditions (v1.1)
    policy: dict[str, Any] = field(default_factory=dict)  # the step's free `policy` mapping (v1.1)
    _log_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def log_path(self) -> Path:
        return self.step_dir / "step.log"

    def log(self, line: str, *, event: bool = True) -> None:
        """Append a line to the step's log (and, by default, a `log` event)."""
        line = redact(line.rstrip("\n"))
        with self._log_lock:
            self.step_dir.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        if event:
            self.events.emit("log", step_id=self.step_id, line=line)

    def progress(self, done: float, total: float | None, unit: str = "it", **extra: Any) -> None:
        """Report progress (the TUI draws a bar with rate and ETA from these)."""
        self.events.emit("progress", step_id=self.step_id, done=done, total=total, unit=unit, **extra)

    def metric(self, name: str, value: float, *, step: int | None = None, split: str | None = None) -> None:
        """Report one metric point."""
        self.events.emit("metric", step_id=self.step_id, name=name, value=value, step=step, split=split)

    def resolve(self, path: str | Path) -> Path:
        """A path relative to the workspace (absolute paths are kept)."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.workspace / p

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()


@dataclass
class StepResult:
    """What a step returns: the files it produced and a short summary."""

    outputs: list[str] = field(default_factory=list)  # files/folders it wrote (workspace-relative or absolute)
    summary: dict[str, Any] = field(default_factory=dict)  # small JSON-able facts for summary.json
    note: str = ""  # one short line for the report and the TUI
    status: str = "succeeded"  # or "manual" (a step that had nothing to execute)


class StepKindModule(Protocol):
    NAME: str
    CACHE: str
    With: type[BaseModel]

    def run(self, cfg: Any, ctx: StepContext) -> StepResult: ...


def kind_deps(module: Any, cfg: Any, ctx: StepContext) -> list[str]:
    fn = getattr(module, "deps", None)
    return list(fn(cfg, ctx)) if fn else []


def kind_outputs(module: Any, cfg: Any, ctx: StepContext) -> list[str]:
    fn = getattr(module, "outputs", None)
    return list(fn(cfg, ctx)) if fn else []
