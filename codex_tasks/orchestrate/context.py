"""What every step of one run shares (`RunContext`), and what every executor of a step records
the same way: the error block of a failure and the check of its declared outputs. Below
`execute.py` and `repair.py`, which both use them (repair retries a step that execute ran).
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tasks.core.redact import register_values, registered_values
from codex_tasks.errors import CodexTasksError, StepFailed, with_hint
from codex_tasks.orchestrate.layouts import refresh_sinks
from codex_tasks.orchestrate.plan import Plan, PlannedStep
from codex_tasks.runs.cache import CacheIndex
from codex_tasks.runs.errorcap import append_error, build_error_record
from codex_tasks.runs.hashing import expand
from codex_tasks.runs.rundir import CANCEL_FILE, RunDir
from codex_tasks.steps.base import StepContext, StepResult


@dataclass
class RunContext:
    """What every step of one run shares."""

    plan: Plan
    rundir: RunDir
    workspace: Path
    params: dict[str, Any]
    env: dict[str, str]
    dry_run: bool = False
    strict: bool = False
    force: set[str] | None = None  # None: nothing forced; empty set: everything
    resuming: bool = False
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)  # step states of earlier attempts
    agent_command: str | None = None  # `run --agent`: `codex` or a command line
    unsandboxed_agents: bool = False  # `run --unsandboxed-agents`: the user opted out of the sandbox
    repair_agent: str | None = None  # `run --repair AGENT`: repair every failing step (orchestrate/repair.py)
    repair_attempts: int = 1
    cancel_event: threading.Event = field(default_factory=threading.Event)
    cache: CacheIndex | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)  # metadata.honor_env_flags set in the environment
    refuse_gpu: bool = False  # CODEX_ABORT_ON_GPU_PULL (metadata.honor_env_flags): a step asking for a GPU fails
    sinks: list[Any] = field(default_factory=list)  # bindings.Binding of run-level sinks created so far

    def __getstate__(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.pop("cancel_event")
        # the values the redaction hook masks travel along (in memory, as the parameters do): a
        # Dask worker's writes (step.log, events, reports) are then masked as this process's are
        data["_secrets"] = registered_values()
        return data

    def __setstate__(self, data: dict[str, Any]) -> None:
        # In another process (a Dask worker): cancel is seen through the run folder's mark.
        register_values(data.pop("_secrets", None) or [])
        self.__dict__.update(data)
        self.cancel_event = threading.Event()
        mark = self.rundir.path / CANCEL_FILE
        event = self.cancel_event

        def watch() -> None:
            while not event.is_set():
                if mark.exists():
                    event.set()
                time.sleep(0.5)

        threading.Thread(target=watch, daemon=True).start()

    def forced(self, step_id: str) -> bool:
        return self.force is not None and (not self.force or step_id in self.force)


def capture_error(step: PlannedStep, run: RunContext, exc: BaseException, **extra: Any) -> str:
    """Write the error block (NDJSON) and return the one-line message."""
    return str(capture_error_record(step, run, exc, **extra)["error_message"])


def capture_error_record(step: PlannedStep, run: RunContext, exc: BaseException, **extra: Any) -> dict[str, Any]:
    """Write the error block (NDJSON, with `extra` fields such as a repair attempt) and return it."""
    if isinstance(exc, StepFailed):
        message, context, tb = with_hint(exc.message, exc.hint), exc.context, ""
    elif isinstance(exc, CodexTasksError):
        message, context, tb = exc.message, exc.hint or "", ""
    else:
        message = f"{type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(exc)[-6:])
        context = tb
    if not context:
        context = f"step {step.id} ({step.kind}) in phase {step.phase_id}"
    record = build_error_record(
        step_id=step.id,
        phase_id=step.phase_id,
        description=step.description,
        error_type=type(exc).__name__,
        error_message=message,
        context=context,
        traceback_tail=tb,
        template=step.template,
    )
    record.update(extra)
    append_error(run.rundir.path / "error_captures.ndjson", record)
    if run.sinks:
        refresh_sinks(run)
    return record


def check_declared_outputs(ctx: StepContext, result: StepResult) -> None:
    """Declared outputs are the contract of every step that is carried out (agent or not)."""
    if ctx.dry_run or result.status == "manual":
        return
    # an agent change kept, not applied: its outputs arrive with `codex-tasks apply`
    deferred = {ctx.resolve(p).resolve() for p in result.summary.get("outputs_deferred", [])}
    missing = [p for p in ctx.declared_outputs if ctx.resolve(p).resolve() not in deferred
               and not ctx.resolve(p).exists() and not expand(p, ctx.workspace)]
    if missing:
        raise StepFailed(
            f"declared output missing: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            context="outputs: " + ", ".join(ctx.declared_outputs),
            hint="the step must create every path listed under 'outputs'",
        )
