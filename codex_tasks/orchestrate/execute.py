"""Execute one planned step: skip / manual / resume / cache decisions, the kind's run, outputs,
events, state, and error capture. Knows nothing of Prefect (compile.py wraps it in a task).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tasks import __version__
from codex_tasks.errors import CodexTasksError, RunInterrupted, StepFailed
from codex_tasks.orchestrate.atomic import is_atomic_task, run_atomic_task
from codex_tasks.orchestrate.bindings import sink_paths
from codex_tasks.orchestrate.plan import Plan, PlannedStep
from codex_tasks.runs.cache import CacheIndex, link_tree
from codex_tasks.runs.errorcap import append_error, build_error_record
from codex_tasks.runs.events import now_iso
from codex_tasks.runs.hashing import deps_hash, expand, path_hash
from codex_tasks.runs.rundir import CANCEL_FILE, RunDir
from codex_tasks.steps.base import StepContext, StepResult, kind_deps, kind_outputs

OK_STATUSES = ("succeeded", "cached", "manual", "skipped")


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
    cancel_event: threading.Event = field(default_factory=threading.Event)
    cache: CacheIndex | None = None
    fingerprints: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)  # metadata.honor_env_flags set in the environment
    refuse_gpu: bool = False  # CODEX_ABORT_ON_GPU_PULL (metadata.honor_env_flags): a step asking for a GPU fails
    sinks: list[Any] = field(default_factory=list)  # bindings.Binding of run-level sinks created so far

    def __getstate__(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.pop("cancel_event")
        return data

    def __setstate__(self, data: dict[str, Any]) -> None:
        # In another process (a Dask worker): cancel is seen through the run folder's mark.
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


@dataclass
class Outcome:
    status: str
    error: str | None = None
    retryable: bool = False


def _kind_module(step: PlannedStep) -> Any:
    from codex_tasks.steps import load_kind

    return load_kind("shell" if step.kind in ("shell", "manual") else step.kind)


def _context(step: PlannedStep, run: RunContext, attempt: int = 1) -> StepContext:
    prev = run.previous.get(step.id, {})
    prev_dir = Path(prev["step_dir"]) if prev.get("step_dir") and run.resuming else None
    return StepContext(
        step_id=step.id,
        phase_id=step.phase_id,
        workspace=run.workspace,
        step_dir=run.rundir.step_dir(step.id),
        run_dir=run.rundir.path,
        run_id=run.rundir.run_id,
        params=run.params,
        events=run.rundir.events,
        env={**run.env, **step.env, "CODEX_STEP_ID": step.id, "CODEX_PHASE_ID": step.phase_id},
        description=step.description,
        timeout=step.timeout,
        dry_run=run.dry_run,
        resuming=run.resuming,
        previous_step_dir=prev_dir,
        cancel_event=run.cancel_event,
        outputs_of=lambda sid: list(run.rundir.step_state(sid).get("outputs", [])),
        lines=list(step.lines),
        declared_outputs=[p for p, _ in step.outputs if p not in sink_paths(step)],
        declared_output_notes={p: d for p, d in step.outputs},
        conditions=list(step.conditions),
        policy=dict(step.policy),
    )


def cache_mode(step: PlannedStep, module: Any) -> bool:
    """Whether this step may be served from the cache."""
    default = getattr(module, "CACHE", "never")
    if step.kind == "manual" or default == "never":
        return False
    allowed = getattr(module, "cacheable", None)  # a kind may cache only some configurations
    if allowed is not None and step.config is not None and not allowed(step.config):
        return False
    if step.kind == "shell":
        return bool(step.cache) and bool(step.outputs)
    if default == "default":
        return step.cache is not False
    return bool(step.cache)  # opt_in


def fingerprint(step: PlannedStep, run: RunContext, ctx: StepContext, module: Any) -> str:
    """SHA-256 over kind, rendered config/lines/env, deps content, upstream outputs, version.
    Per-run values (run id, run dir, timestamps) never enter it."""
    assert run.cache is not None
    h = hashlib.sha256()
    h.update(f"codex-tasks {__version__}\nkind {step.kind}\n".encode())
    h.update(json.dumps(step.with_raw, sort_keys=True, default=str).encode() + b"\n")
    h.update(json.dumps(step.lines).encode() + b"\n")
    h.update(json.dumps(sorted(step.env.items())).encode() + b"\n")
    h.update(json.dumps([p for p, _ in step.outputs if p not in sink_paths(step)]).encode() + b"\n")
    cfg = step.config if step.config is not None else module.With()
    deps = list(step.deps) + kind_deps(module, cfg, ctx)
    h.update(b"deps " + deps_hash(deps, run.workspace, run.cache.memo).encode() + b"\n")
    for up in step.needs:
        h.update(f"upstream {up} ".encode())
        outs = run.rundir.step_state(up).get("outputs", [])
        h.update(json.dumps([(o.get("path"), o.get("sha256")) for o in outs]).encode() + b"\n")
    return h.hexdigest()


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


def capture_error(step: PlannedStep, run: RunContext, exc: BaseException) -> str:
    """Write the error block (NDJSON) and return the one-line message."""
    if isinstance(exc, StepFailed):
        message, context = exc.message, exc.context
        if exc.hint:
            message += f" (hint: {exc.hint})"
        tb = ""
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
    append_error(run.rundir.path / "error_captures.ndjson", record)
    if run.sinks:
        from codex_tasks.orchestrate.layouts import refresh_sinks

        refresh_sinks(run)
    return message


def execute_step(step: PlannedStep, run: RunContext, *, attempt: int = 1, final_attempt: bool = True) -> Outcome:
    """Run (or skip, or serve from cache) one step and record everything about it."""
    rd = run.rundir
    base: dict[str, Any] = {"phase_id": step.phase_id, "kind": step.kind, "description": step.description,
            "step_dir": str(rd.step_dir(step.id))}
    if step.skip:
        rd.update_step(step.id, status="skipped", note=step.skip, **base)
        rd.events.emit("step.skipped", step_id=step.id, phase_id=step.phase_id, note=step.skip)
        return Outcome("skipped")
    if run.cancel_event.is_set():
        record_not_run(step, run, "run interrupted")
        return Outcome("not_run")

    if step.kind == "manual" and not step.bindings and not run.agent_command:
        expected = [p for p, _ in step.outputs]
        if run.strict:
            start = time.time()
            rd.update_step(step.id, status="running", started=now_iso(start), **base)
            exc = StepFailed("manual step under --strict: it has only a description",
                             context=step.description,
                             hint="give it actions/commands, or run without --strict")
            msg = capture_error(step, run, exc)
            return _finish(step, run, "failed", start, error=msg, expected_outputs=expected)
        note = "manual: needs a person" + (f"; expected outputs: {', '.join(expected)}" if expected else "")
        rd.update_step(step.id, status="manual", note=note, expected_outputs=expected, **base)
        rd.events.emit("step.manual", step_id=step.id, phase_id=step.phase_id, note=note)
        return Outcome("manual")

    module = _kind_module(step)
    ctx = _context(step, run, attempt)
    cfg = step.config if step.config is not None else module.With()
    if step.kind == "manual" and not step.bindings and run.agent_command:
        # `run --agent CMD`: a description-only step goes to the coding agent (scratch tree, gated patch)
        from codex_tasks.steps import agent

        module = agent
        cfg = agent.config_for_agent(run.agent_command, unsandboxed=run.unsandboxed_agents)
    elif step.kind == "test":
        cfg = test_settings(cfg, run)
    elif step.kind == "agent" and run.unsandboxed_agents:
        cfg = cfg.model_copy(update={"sandbox_required": False})
    cacheable = cache_mode(step, module) and not run.dry_run
    fp = None
    if cacheable and run.cache is not None:
        try:
            fp = fingerprint(step, run, ctx, module)
            run.fingerprints[step.id] = fp
        except OSError:
            fp = None

    # Resume: a step that finished in an earlier attempt is kept when nothing changed.
    prev = run.previous.get(step.id)
    if run.resuming and prev and prev.get("status") in ("succeeded", "cached") and not run.forced(step.id):
        changed = fp is not None and prev.get("fingerprint") not in (None, fp)
        intact = (run.cache or CacheIndex(run.workspace)).outputs_intact(prev, run.workspace)
        if not changed and intact is None:
            rd.update_step(step.id, **{**prev, "note": f"kept from attempt {prev.get('attempt', 1)}"})
            rd.events.emit("step.kept", step_id=step.id, phase_id=step.phase_id,
                           note=f"succeeded in attempt {prev.get('attempt', 1)}")
            return Outcome(str(prev["status"]))
        reason = "its fingerprint changed" if changed else intact
        rd.events.emit("log", step_id=step.id, line=f"rerunning: {reason}")

    if fp is not None and run.cache is not None and not run.forced(step.id):
        entry = run.cache.get(fp)
        if entry is not None and run.cache.outputs_intact(entry, run.workspace) is None:
            linked = link_tree(Path(entry.get("step_dir", "")), rd.step_dir(step.id)) if entry.get("step_dir") else 0
            note = f"cached (fingerprint {fp[:12]}, from run {entry.get('run_id')})"
            rd.update_step(step.id, status="cached", fingerprint=fp, outputs=entry.get("outputs", []),
                           summary=entry.get("summary", {}), note=note, linked_files=linked,
                           cached_from=entry.get("run_id"), started=now_iso(), finished=now_iso(),
                           duration=0.0, attempt=rd.state.get("attempt", 1), **base)
            rd.events.emit("step.cached", step_id=step.id, phase_id=step.phase_id, note=note)
            return Outcome("cached")

    start = time.time()
    rd.update_step(step.id, persist=False, status="running", started=now_iso(start), attempts=attempt, **base)
    rd.events.emit("step.started", step_id=step.id, phase_id=step.phase_id, kind=step.kind,
                   description=step.description, attempt=attempt)
    ctx.log(f"# {now_iso(start)} step {step.id} ({step.kind}), attempt {attempt}", event=False)
    try:
        if run.refuse_gpu:
            from codex_tasks.orchestrate.legacy_params import gpu_request

            asked = gpu_request(step)
            if asked:
                raise StepFailed(f"refused: the step asks for a GPU ({asked}) and CODEX_ABORT_ON_GPU_PULL is set",
                                 hint="use device: cpu, or unset CODEX_ABORT_ON_GPU_PULL")
        if run.dry_run and (step.bindings or not getattr(module, "SUPPORTS_DRY_RUN", False)):
            result = _dry_run(step, ctx)
        elif step.bindings:
            from codex_tasks.orchestrate.layouts import run_bound_step

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
        msg = capture_error(step, run, exc)
        return _finish(step, run, "failed", start, error=msg, fingerprint=fp)
    status = "manual" if result.status == "manual" else "succeeded"
    note = result.note or ("dry run" if run.dry_run else "")
    outcome = _finish(step, run, status, start, outputs=outputs, summary=result.summary, note=note,
                      fingerprint=fp, attempt=rd.state.get("attempt", 1))
    if fp is not None and run.cache is not None and status == "succeeded":
        run.cache.put(fp, {"step_id": step.id, "kind": step.kind, "run_id": rd.run_id, "created": now_iso(),
                           "outputs": outputs, "summary": result.summary, "step_dir": str(rd.step_dir(step.id))})
    return outcome


def test_settings(cfg: Any, run: RunContext) -> Any:
    """CODEX_COLLECT_COVERAGE (when honoured) turns coverage on; the legacy `coverage_threshold`
    parameter then fails a test step under it."""
    if "CODEX_COLLECT_COVERAGE" not in run.flags:
        return cfg
    threshold = run.params.get("coverage_threshold")
    update: dict[str, Any] = {"coverage": True}
    if cfg.coverage_threshold is None and isinstance(threshold, int | float) and not isinstance(threshold, bool):
        update["coverage_threshold"] = float(threshold)
    return cfg.model_copy(update=update)


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
