"""Execute one planned step: act on `decide` (skip / manual / kept / cached / run), the kind's run,
outputs, events, state, and error capture. Knows nothing of Prefect (prefect/flow.py wraps it in a task).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_tasks.core.redact import redact
from codex_tasks.errors import RunInterrupted, StepFailed
from codex_tasks.orchestrate.atomic import is_atomic_task, run_atomic_task
from codex_tasks.orchestrate.context import (
    RunContext,
    capture_error,
    check_declared_outputs,
)
from codex_tasks.orchestrate.decide import decide
from codex_tasks.orchestrate.layouts import run_bound_step
from codex_tasks.orchestrate.legacy_params import gpu_request
from codex_tasks.orchestrate.plan import PlannedStep
from codex_tasks.orchestrate.repair import repair, repair_spec
from codex_tasks.runs.cache import link_tree
from codex_tasks.runs.events import now_iso
from codex_tasks.runs.hashing import expand, path_hash
from codex_tasks.steps.base import StepContext, StepResult, kind_outputs

OK_STATUSES = ("succeeded", "cached", "manual", "skipped")


@dataclass
class Outcome:
    status: str
    error: str | None = None
    retryable: bool = False

    def __post_init__(self) -> None:
        # the error becomes a Prefect state message and a retried task's exception, which Prefect
        # stores in its own database: through the redaction hook like every other write
        if self.error:
            self.error = redact(self.error)


def hash_outputs(paths: list[str], run: RunContext) -> list[dict[str, Any]]:
    memo = run.cache.memo if run.cache else None
    out = []
    seen = set()
    for p in paths:
        for full in expand(p, run.workspace) or [run.workspace / p]:
            if not full.exists() or str(full) in seen:
                continue
            seen.add(str(full))
            try:
                rel = full.relative_to(run.workspace).as_posix()
            except ValueError:
                rel = str(full)
            info = path_hash(full, memo)
            out.append({"path": rel, "sha256": info["sha256"], "size": info["size"]})
    return out


def _finish(step: PlannedStep, run: RunContext, status: str, start: float | None, **fields: Any) -> Outcome:
    now = time.time()
    duration = round(now - start, 3) if start else 0.0
    run.rundir.update_step(step.id, status=status, finished=now_iso(now), duration=duration, **fields)
    run.rundir.events.emit(f"step.{status}", step_id=step.id, phase_id=step.phase_id, duration=duration,
                           note=fields.get("note"), error=fields.get("error"))
    return Outcome(status, fields.get("error"))


def record_not_run(step: PlannedStep, run: RunContext, reason: str) -> None:
    run.rundir.update_step(step.id, status="not_run", phase_id=step.phase_id, kind=step.kind, note=reason,
                           description=step.description)
    run.rundir.events.emit("step.not_run", step_id=step.id, phase_id=step.phase_id, note=reason)


def execute_step(step: PlannedStep, run: RunContext, *, attempt: int = 1, final_attempt: bool = True) -> Outcome:
    """Run (or skip, or serve from cache) one step and record everything about it."""
    rd = run.rundir
    base: dict[str, Any] = {"phase_id": step.phase_id, "kind": step.kind, "description": step.description,
            "step_dir": str(rd.step_dir(step.id))}
    if run.cancel_event.is_set() and not step.skip:
        record_not_run(step, run, "run interrupted")
        return Outcome("not_run")
    decision = decide(step, run)
    if decision.action == "skipped":
        rd.update_step(step.id, status="skipped", note=decision.reason, **base)
        rd.events.emit("step.skipped", step_id=step.id, phase_id=step.phase_id, note=decision.reason)
        return Outcome("skipped")
    expected = [p for p, _ in step.outputs]
    if decision.action == "fail":
        start = time.time()
        rd.update_step(step.id, status="running", started=now_iso(start), **base)
        exc = StepFailed(decision.reason, context=step.description,
                         hint="give it actions/commands, or run without --strict")
        msg = capture_error(step, run, exc)
        return _finish(step, run, "failed", start, error=msg, expected_outputs=expected)
    if decision.action == "manual":
        rd.update_step(step.id, status="manual", note=decision.reason, expected_outputs=expected, **base)
        rd.events.emit("step.manual", step_id=step.id, phase_id=step.phase_id, note=decision.reason)
        return Outcome("manual")
    entry, fp = decision.entry or {}, decision.fingerprint
    if decision.action == "kept":  # entry: its state in the earlier attempt
        rd.update_step(step.id, **{**entry, "note": decision.reason})
        rd.events.emit("step.kept", step_id=step.id, phase_id=step.phase_id,
                       note=f"succeeded in attempt {entry.get('attempt', 1)}")
        return Outcome(str(entry["status"]))
    if decision.rerun:
        rd.events.emit("log", step_id=step.id, line=f"rerunning: {decision.rerun}")
    if decision.action == "cached":
        linked = link_tree(Path(entry.get("step_dir", "")), rd.step_dir(step.id)) if entry.get("step_dir") else 0
        rd.update_step(step.id, status="cached", fingerprint=fp, outputs=entry.get("outputs", []),
                       summary=entry.get("summary", {}), note=decision.reason, linked_files=linked,
                       cached_from=entry.get("run_id"), started=now_iso(), finished=now_iso(),
                       duration=0.0, attempt=rd.state.get("attempt", 1), **base)
        rd.events.emit("step.cached", step_id=step.id, phase_id=step.phase_id, note=decision.reason)
        return Outcome("cached")

    module, cfg, ctx = decision.module, decision.config, decision.context
    assert ctx is not None
    start = time.time()
    rd.update_step(step.id, persist=False, status="running", started=now_iso(start), attempts=attempt, **base)
    rd.events.emit("step.started", step_id=step.id, phase_id=step.phase_id, kind=step.kind,
                   description=step.description, attempt=attempt)
    ctx.log(f"# {now_iso(start)} step {step.id} ({step.kind}), attempt {attempt}", event=False)
    try:
        if run.refuse_gpu:
            asked = gpu_request(step)
            if asked:
                raise StepFailed(f"refused: the step asks for a GPU ({asked}) and CODEX_ABORT_ON_GPU_PULL is set",
                                 hint="use device: cpu, or unset CODEX_ABORT_ON_GPU_PULL")
        if run.dry_run and (step.bindings or not getattr(module, "SUPPORTS_DRY_RUN", False)):
            result = _dry_run(step, ctx)
        elif step.bindings:
            result = run_bound_step(step, run, ctx)
            check_declared_outputs(ctx, result)
        elif step.kind == "manual" and not run.dry_run and is_atomic_task(step, run):
            result = run_atomic_task(step, run, ctx)
        else:
            result = module.run(cfg, ctx)
            check_declared_outputs(ctx, result)
        declared = kind_outputs(module, cfg, ctx) + [p for p in result.outputs if p not in ctx.declared_outputs]
        outputs: list[dict[str, Any]] = hash_outputs(list(dict.fromkeys(ctx.declared_outputs + declared)), run) if not run.dry_run else []
    except RunInterrupted as exc:
        _finish(step, run, "not_run", start, note=f"interrupted: {exc.message}")
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            _finish(step, run, "not_run", start, note="interrupted")
            raise
        if not final_attempt:
            rd.events.emit("step.retry", step_id=step.id, phase_id=step.phase_id, attempt=attempt,
                           error=getattr(exc, "message", str(exc)))
            return Outcome("failed", getattr(exc, "message", str(exc)), retryable=True)

        spec = None if run.dry_run else repair_spec(step, run)
        if spec is None:
            msg = capture_error(step, run, exc)
            return _finish(step, run, "failed", start, error=msg, fingerprint=fp)
        repaired, msg = repair(step, run, module, cfg, ctx, exc, spec)
        if repaired is None:
            return _finish(step, run, "failed", start, error=msg, fingerprint=fp)
        result = repaired
        outputs = hash_outputs(list(dict.fromkeys(ctx.declared_outputs + kind_outputs(module, cfg, ctx)
                                                  + [p for p in result.outputs if p not in ctx.declared_outputs])), run)
    status = "manual" if result.status == "manual" else "succeeded"
    note = result.note or ("dry run" if run.dry_run else "")
    outcome = _finish(step, run, status, start, outputs=outputs, summary=result.summary, note=note,
                      fingerprint=fp, attempt=rd.state.get("attempt", 1))
    if fp is not None and run.cache is not None and status == "succeeded":
        run.cache.put(fp, {"step_id": step.id, "kind": step.kind, "run_id": rd.run_id, "created": now_iso(),
                           "outputs": outputs, "summary": result.summary, "step_dir": str(rd.step_dir(step.id))})
    return outcome


def _dry_run(step: PlannedStep, ctx: StepContext) -> StepResult:
    """What the step would do, logged; nothing is executed or written outside the run folder."""
    if step.lines:
        for section, line in step.lines:
            ctx.log(f"[dry-run] {section}: {line}")
    elif not step.bindings:
        ctx.log(f"[dry-run] {step.kind} with {json.dumps(step.with_raw, default=str)}")
    for b in step.bindings:
        ctx.log(f"[dry-run] would run {b.kind} -> {b.output} ({b.why})")
    for p, _ in step.outputs:
        ctx.log(f"[dry-run] would produce {p}")
    return StepResult(note="dry run: not executed")
