"""Repair: when a step fails, a coding agent gets its error block and the step runs again.

A step's `repair: {agent, attempts}` (or `run --repair AGENT [--repair-attempts N]` for every
step) turns a final failure into at most N attempts of: record the failure's error block (with
its attempt number) → the agent gets the rendered block (the step's own `template` if it has
one), the step's lines and its log tail as its prompt → its change is gated and applied with a
rollback bundle (`steps/<id>/repair-<k>/rollback`) → the step runs again. A change after which
the step still fails is rolled back. The step ends `succeeded` ("repaired after k attempt(s)")
or `failed`, with every attempt's block in `error_captures.ndjson`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from codex_tasks.errors import CodexTasksError, RunInterrupted
from codex_tasks.orchestrate.context import capture_error_record, check_declared_outputs
from codex_tasks.repo.patch_write import rollback_bundle
from codex_tasks.steps import load_kind
from codex_tasks.steps.base import StepContext, StepResult

if TYPE_CHECKING:
    from codex_tasks.orchestrate.context import RunContext
    from codex_tasks.orchestrate.plan import PlannedStep


def repair_spec(step: PlannedStep, run: RunContext) -> dict[str, Any] | None:
    """The step's own `repair:`, else the run's `--repair`, else None."""
    if step.kind == "manual":
        return None
    if step.repair:
        return step.repair
    agent = getattr(run, "repair_agent", None)
    if agent:
        return {"agent": agent, "attempts": int(getattr(run, "repair_attempts", 1) or 1)}
    return None


def repair_prompt(block: str, step: PlannedStep, log_tail: str) -> str:
    """What the repair agent is told, besides the step's description."""
    lines = "\n".join(f"  {section}: {line}" for section, line in step.lines)
    return (f"The step failed. Its error block:\n\n{block.strip()}\n\n"
            + (f"The step's lines (run again after your change):\n{lines}\n\n" if lines else "")
            + (f"The end of its log:\n```\n{log_tail.strip()}\n```\n\n" if log_tail.strip() else "")
            + "Change the repository so that the step succeeds while keeping its intended behaviour; "
              "do not edit the step or weaken its assertions.")


def _log_tail(ctx: StepContext, n: int = 3000) -> str:
    return ctx.log_path.read_text(encoding="utf-8", errors="replace")[-n:] if ctx.log_path.is_file() else ""


def _agent_ctx(ctx: StepContext, k: int) -> StepContext:
    """The repair agent's context: the step's, with its own folder and no declared outputs
    (the rerun holds the step to them)."""
    from dataclasses import replace

    return replace(ctx, step_dir=ctx.step_dir / f"repair-{k}", declared_outputs=[], declared_output_notes={})


def repair(step: PlannedStep, run: RunContext, module: Any, cfg: Any, ctx: StepContext, failure: BaseException,
           spec: dict[str, Any]) -> tuple[StepResult | None, str]:
    """Up to `spec["attempts"]` repairs of a failed step. Returns (its result, note) when a rerun
    succeeded, else (None, the last error message); every failure's block is already recorded."""
    attempts = int(spec.get("attempts", 1))
    events = run.rundir.events
    message = ""
    for k in range(1, attempts + 1):
        record = capture_error_record(step, run, failure, repair_attempt=k - 1, final=False)
        message = str(record["error_message"])
        events.emit("step.repair", step_id=step.id, phase_id=step.phase_id, attempt=k, of=attempts,
                    agent=spec.get("agent", "codex"), error=message)
        ctx.log(f"repair attempt {k}/{attempts} with {spec.get('agent', 'codex')}: {message}")
        actx = _agent_ctx(ctx, k)
        agent = load_kind("agent")  # through the kind table, as every kind is reached
        acfg = agent.config_for_agent(str(spec.get("agent", "codex")), unsandboxed=run.unsandboxed_agents)
        acfg = acfg.model_copy(update={"task": step.description or f"Make step {step.id} succeed."})
        try:
            agent.run(acfg, actx, repair=repair_prompt(str(record.get("rendered", message)), step, _log_tail(ctx)))
        except RunInterrupted:
            raise
        except CodexTasksError as exc:  # the agent itself failed or was refused: that attempt is spent
            failure = exc
            continue
        bundle = actx.step_dir / "rollback"
        try:
            result = module.run(cfg, ctx)
            check_declared_outputs(ctx, result)
        except RunInterrupted:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the rerun is the next attempt's input
            failure = exc
            if (bundle / "manifest.json").is_file():
                restored = rollback_bundle(bundle, force=True)
                ctx.log(f"repair attempt {k} did not fix the step; rolled back {len(restored)} file(s)")
            continue
        note = f"repaired after {k} attempt(s)"
        events.emit("step.repaired", step_id=step.id, phase_id=step.phase_id, attempt=k)
        result.note = f"{note}; {result.note}" if result.note else note
        result.summary = {**result.summary, "repair_attempts": k}
        return result, note
    record = capture_error_record(step, run, failure, repair_attempt=attempts, final=True)
    return None, f"{record['error_message']} (not repaired after {attempts} attempt(s))"
