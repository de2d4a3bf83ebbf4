"""Atomic-patch tasks carried out by the agent: the change may touch only the task's patchset files,
is applied with a rollback bundle, then gated by the task's `validation` commands, and rolled back
when one fails.

The task's patchset and validation come from the atomic-patch front-end (`sequence/shapes.py`),
kept under the step's `policy`.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from codex_tasks.errors import StepFailed
from codex_tasks.repo.patch_write import rollback_bundle
from codex_tasks.steps import load_kind
from codex_tasks.steps.agent_apply import apply_change
from codex_tasks.steps.base import StepContext, StepResult

if TYPE_CHECKING:
    from codex_tasks.orchestrate.context import RunContext
    from codex_tasks.orchestrate.plan import PlannedStep

SNIPPET = 2000


def is_atomic_task(step: PlannedStep, run: RunContext) -> bool:
    """A task of an atomic-patch file, going to the agent."""
    return bool(run.agent_command) and run.plan.loaded.shape == "atomic_patch" and "patchset" in step.policy


def run_atomic_task(step: PlannedStep, run: RunContext, ctx: StepContext) -> StepResult:
    """Agent in a scratch copy (nothing applied) -> patchset check -> apply -> validation -> rollback on failure."""
    assert run.agent_command is not None
    agent = load_kind("agent")  # through the kind table: no agent code loads for a run without agents
    cfg = agent.config_for_agent(run.agent_command, apply=False, unsandboxed=run.unsandboxed_agents)
    result: StepResult = agent.run(cfg, ctx)
    allowed = {str(p) for p in step.policy.get("patchset", [])}
    changed = [str(p) for p in result.summary.get("changed_files", [])]
    outside = sorted(p for p in changed if p not in allowed)
    if outside:
        raise StepFailed(f"the change touches files outside the task's patchset: {', '.join(outside[:5])}",
                         context="patchset: " + ", ".join(sorted(allowed)),
                         hint="nothing was applied; widen the patchset or narrow the task")
    written = apply_change(ctx.step_dir, ctx.workspace) if changed else []
    env = {**os.environ, **ctx.env}
    for command in step.policy.get("validation", []):
        try:
            proc = subprocess.run(["bash", "-o", "pipefail", "-c", str(command)], cwd=ctx.workspace, env=env,
                                  capture_output=True, text=True, timeout=ctx.timeout, check=False)
            code, out = proc.returncode, (proc.stdout + proc.stderr)[-SNIPPET:]
        except subprocess.TimeoutExpired:
            code, out = 124, f"timed out after {ctx.timeout} s"
        ctx.log(f"[validation] {command} -> exit {code}")
        if code != 0:
            restored = rollback_bundle(ctx.step_dir / "rollback") if written else []
            raise StepFailed(f"validation failed: {command} (exit {code}); the change was rolled back"
                             + (f" ({len(restored)} file(s) restored)" if restored else ""),
                             context=out, hint=str(step.policy.get("rollback") or ""))
    result.summary["applied"] = written
    result.summary["validated"] = list(step.policy.get("validation", []))
    result.note = f"{len(written)} file(s) changed within the patchset; {len(step.policy.get('validation', []))} validation command(s) passed"
    return result
