"""What happens to one planned step: skipped, manual, kept from an earlier attempt, served from the
cache, or run, and why. `execute.execute_step` acts on the decision; `codex-tasks plan` shows it,
so the plan predicts the cache with the very code the run uses.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tasks import __version__
from codex_tasks.orchestrate.bindings import sink_paths
from codex_tasks.orchestrate.legacy_params import test_settings
from codex_tasks.orchestrate.plan import PlannedStep
from codex_tasks.runs.cache import CacheIndex
from codex_tasks.runs.hashing import deps_hash
from codex_tasks.steps import load_kind
from codex_tasks.steps.base import StepContext, kind_deps

if TYPE_CHECKING:
    from codex_tasks.orchestrate.context import RunContext

ACTIONS = ("skipped", "manual", "fail", "kept", "cached", "run")


@dataclass
class Decision:
    """One of ACTIONS with its reason; for a step that runs or is served, what it runs with."""

    action: str
    reason: str
    module: Any = None  # the step kind's module
    config: Any = None  # its `with:` model
    context: StepContext | None = None
    fingerprint: str | None = None  # when the step may be served from the cache
    entry: dict[str, Any] | None = None  # cached: the cache entry; kept: the earlier attempt's state
    rerun: str | None = None  # a step that succeeded in an earlier attempt runs again: why


def kind_module(step: PlannedStep) -> Any:
    """The module that runs `step` (a manual step is a shell step without lines)."""
    return load_kind("shell" if step.kind in ("shell", "manual") else step.kind)


def step_context(step: PlannedStep, run: RunContext) -> StepContext:
    """What the step kind sees of the run."""
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
        forced=run.forced(step.id),
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


def _not_cacheable(step: PlannedStep, module: Any) -> str:
    if getattr(module, "CACHE", "never") == "never" or step.kind == "manual":
        return "not cacheable"
    return "shell steps cache only with outputs and cache: true" if step.kind == "shell" else "cache off"


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
    cache_key = getattr(module, "cache_key", None)  # e.g. an agent step: its rendered task, template, model
    if cache_key is not None:
        h.update(b"key " + cache_key(cfg, ctx).encode() + b"\n")
    h.update(b"deps " + deps_hash(deps, run.workspace, run.cache.memo).encode() + b"\n")
    for up in step.needs:
        h.update(f"upstream {up} ".encode())
        outs = run.rundir.step_state(up).get("outputs", [])
        h.update(json.dumps([(o.get("path"), o.get("sha256")) for o in outs]).encode() + b"\n")
    return h.hexdigest()


def decide(step: PlannedStep, run: RunContext) -> Decision:
    """What to do with `step` in `run` now (its upstream steps have finished)."""
    if step.skip:
        return Decision("skipped", step.skip)
    if step.manual and not run.agent_command:
        if run.strict:
            return Decision("fail", "manual step under --strict: it has only a description")
        expected = [p for p, _ in step.outputs]
        return Decision("manual", "needs a person" + (f"; expected outputs: {', '.join(expected)}"
                                                             if expected else ""))
    module = kind_module(step)
    ctx = step_context(step, run)
    cfg = step.config if step.config is not None else module.With()
    if step.manual:
        # `run --agent`: a description-only step goes to the coding agent (scratch tree, gated patch)
        module = load_kind("agent")
        cfg = module.config_for_agent(str(run.agent_command), unsandboxed=run.unsandboxed_agents)
    elif step.kind == "test":
        cfg = test_settings(cfg, run)  # CODEX_COLLECT_COVERAGE, coverage_threshold
    elif step.kind == "agent" and run.unsandboxed_agents:
        cfg = cfg.model_copy(update={"sandbox_required": False})
    decision = Decision("run", _not_cacheable(step, module), module=module, config=cfg, context=ctx)
    if step.bindings:
        kinds = list(dict.fromkeys(b.kind for b in step.bindings))
        decision.reason = f"bound to {', '.join(kinds)} ({len(step.bindings)} output(s))"
    if run.dry_run:
        decision.reason = "dry run"
    elif cache_mode(step, module) and run.cache is not None:
        try:
            decision.fingerprint = fingerprint(step, run, ctx, module)
            run.fingerprints[step.id] = decision.fingerprint
        except OSError as exc:
            decision.reason = f"no fingerprint: {exc}"
    fp = decision.fingerprint
    if run.forced(step.id):
        decision.reason = "forced (--force)"
        return decision

    # Resume: a step that finished in an earlier attempt is kept when nothing changed.
    prev = run.previous.get(step.id)
    if run.resuming and prev and prev.get("status") in ("succeeded", "cached"):
        changed = fp is not None and prev.get("fingerprint") not in (None, fp)
        intact = (run.cache or CacheIndex(run.workspace)).outputs_intact(prev, run.workspace)
        # A finished agent step is never rerun by --resume: its outputs may since have been edited
        # by the steps after it, and a second agent session would cost tokens for nothing.
        if step.kind == "agent" or (step.manual and run.agent_command):
            changed, intact = False, None
        if not changed and intact is None:
            decision.action, decision.entry = "kept", prev
            decision.reason = f"kept from attempt {prev.get('attempt', 1)}"
            return decision
        decision.rerun = "its fingerprint changed" if changed else intact

    if fp is not None and run.cache is not None:
        entry = run.cache.get(fp)
        broken = run.cache.outputs_intact(entry, run.workspace) if entry is not None else None
        if entry is None:
            decision.reason = "no cache entry for its fingerprint"
        elif broken:
            decision.reason = f"cache entry found but {broken}"
        else:
            decision.action, decision.entry = "cached", entry
            decision.reason = f"fingerprint {fp[:12]}, from run {entry.get('run_id')}"  # shown after "cached"
    return decision
