"""`agent`: a described step carried out by a coding agent in a scratch copy, held to its contract.

The agent is the real Codex CLI (`agent: codex`, the default: `codex exec --json --ephemeral`,
prompt on stdin, its events streamed live) or any command (`agent: "CMD"` / `command: [argv]`,
the generic agent, run in the strict sandbox). It works in a scratch copy of the workspace kept in
the step's folder (`agent_scratch.py`); its changes pass the gates (`agent_gate.py`: guardrails,
secret scan, tests), then the step's declared outputs come back on their own path and the rest
as a patch, with a rollback bundle (`agent_apply.py`). `apply: false` keeps the change for
`codex-tasks apply RUN STEP`.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from codex_tasks.core.redact import is_registered, redact
from codex_tasks.errors import StepFailed
from codex_tasks.steps.agent_codex import resolve_codex_bin
from codex_tasks.steps.agent_prompt import PromptInputs, load_template, render_description, render_prompt
from codex_tasks.steps.agent_sandbox import check_sandbox
from codex_tasks.steps.agent_scratch import git, make_scratch
from codex_tasks.steps.agent_session import carry_out
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "agent"
CACHE = "opt_in"  # only with an explicit `cache: true`: keyed by the rendered prompt, inputs, agent, model
SUPPORTS_DRY_RUN = True  # a dry run renders and shows the prompt; no model is called


class With(WithModel):
    """Carry out this step with a coding agent in a scratch copy; gate and apply its changes."""

    agent: str = Field(default="codex", description="`codex` (the Codex CLI) or a command line for any other agent.")
    command: list[str] | None = Field(
        default=None, description="The generic agent as argv (overrides `agent`); `{prompt_file}` and `{workdir}` are replaced.")
    bin: str | None = Field(default=None, description="The Codex CLI binary (default: CODEX_TASKS_CODEX_BIN, `codex` on PATH, the project's copy).")
    sandbox: Literal["read-only", "workspace-write", "danger-full-access"] = Field(
        default="workspace-write", description="Codex's own sandbox; with `read-only` its final message becomes the step's declared report.")
    model: str | None = Field(default=None, description="Model name for Codex (`-m`).")
    profile: str | None = Field(default=None, description="Codex config profile (`-p`).")
    oss: bool = Field(default=False, description="Use a local open-source model server (`--oss`).")
    local_provider: str | None = Field(default=None, description="Local provider for `--oss`, e.g. `ollama` or `lmstudio`.")
    config: dict[str, Any] = Field(default_factory=dict, description="Codex config overrides, each sent as `-c key=value` (TOML values).")
    network: bool = Field(default=False, description="Let the agent's commands reach the network.")
    sandbox_required: bool = Field(default=True, description="Refuse to run when no sandbox (bubblewrap + user namespaces) is available.")
    task: str | None = Field(default=None, description="What to do (default: the step's description).")
    prompt_template: str | None = Field(
        default=None, description="The prompt's Jinja2 template: a file path (.j2/.md) or inline text; default templates/agent_prompt.md.j2.")
    timeout: float = Field(default=900, gt=0, le=86_400, description="Seconds the agent may run before it is killed (the hard stop).")
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000_000, description="Token budget (input + output), checked after each Codex turn.")
    scan: bool = Field(default=True, description="Refuse a change that adds a secret or a forbidden file.")
    test_args: list[str] | None = Field(
        default_factory=lambda: ["-q"], description="pytest arguments of the test gate in the scratch copy; null skips it.")
    test_timeout: float = Field(default=600, gt=0, le=86_400, description="Seconds the test gate may run.")
    apply: bool = Field(default=True, description="Apply the gated change (false: keep it for `codex-tasks apply RUN STEP`).")
    require_changes: bool = Field(default=False, description="Fail when the agent changed nothing (always so when outputs are declared).")
    keep_scratch: bool = Field(default=False, description="Keep the scratch copy after the step (in the step's folder).")
    max_findings: int = Field(default=30, ge=0, le=10_000, description="Audit findings to put in the prompt.")

    @property
    def is_codex(self) -> bool:
        return self.command is None and self.agent.strip() == "codex"


def config_for_agent(agent: str, *, apply: bool = True, unsandboxed: bool = False) -> With:
    """The `with:` of an agent step for `run --agent AGENT` (`codex` or a command line)."""
    if agent.strip() == "codex":
        return With(agent="codex", apply=apply, sandbox_required=not unsandboxed)
    return With(agent=agent, command=shlex.split(agent), apply=apply, sandbox_required=not unsandboxed)


config_for_command = config_for_agent


def preflight(cfg: With) -> None:
    """Checks that fail a run before it starts (exit 2): the Codex binary, the sandbox."""
    if cfg.is_codex:
        resolve_codex_bin(cfg.bin)
    else:
        check_sandbox(cfg.sandbox_required)


def cache_key(cfg: With, ctx: StepContext) -> str:
    """What an agent step's cache entry is keyed by, besides its `with:` and `deps` (only with
    `cache: true`): the rendered task, the prompt template, the declared outputs, agent and model."""
    import hashlib

    task = render_description(cfg.task or ctx.description, dict(ctx.params))
    parts = [task, load_template(cfg.prompt_template, ctx), json.dumps(ctx.declared_outputs),
             cfg.agent, json.dumps(cfg.command), str(cfg.model), str(cfg.profile), json.dumps(cfg.config, sort_keys=True)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def run_description_step(agent: str, ctx: StepContext, *, apply: bool = True) -> StepResult:
    """Run a description-only step with the agent given by `run --agent AGENT`."""
    return run(config_for_agent(agent, apply=apply), ctx)


def _sequence_rel(ctx: StepContext) -> str | None:
    try:
        seq = Path(json.loads((ctx.run_dir / "state.json").read_text()).get("sequence_file") or "")
        return seq.resolve().relative_to(ctx.workspace.resolve()).as_posix() if seq.name else None
    except (OSError, ValueError):
        return None


def _earlier_outputs(ctx: StepContext) -> list[str]:
    """Workspace-relative outputs of the steps before this one in the plan."""
    if ctx.outputs_of is None:
        return []
    try:
        order = [s["id"] for s in json.loads((ctx.run_dir / "plan.json").read_text())["steps"]]
    except (OSError, ValueError, KeyError):
        return []
    out: list[str] = []
    for sid in order[: order.index(ctx.step_id)] if ctx.step_id in order else []:
        out += [o["path"] for o in ctx.outputs_of(sid) if o.get("path") and not Path(o["path"]).is_absolute()]
    return list(dict.fromkeys(out))


def _declared(ctx: StepContext) -> list[str]:
    """Declared outputs as workspace-relative paths."""
    out = []
    for p in ctx.declared_outputs:
        full = ctx.resolve(p)
        try:
            out.append(full.resolve().relative_to(ctx.workspace.resolve()).as_posix())
        except ValueError:
            raise StepFailed(f"declared output {p} is outside the workspace; an agent cannot produce it") from None
    return out


def _partial_diff(scratch_root: Path) -> str:
    """The diff a killed earlier attempt left in its scratch copy (described in the new prompt)."""
    if not (scratch_root / ".git").is_dir():
        return ""
    git(scratch_root, "add", "-A", check=False)
    return git(scratch_root, "diff", "--cached", "--no-color", "HEAD", check=False).stdout.decode("utf-8", "replace")


def _agent_env(ctx: StepContext, scratch: Path, prompt_file: Path) -> dict[str, str]:
    """The agent's environment: no secret parameter in it, under any name (the run's own variables
    are dropped when the redaction hook would mask them; inherited ones when they hold a value
    registered as secret: provider-looking keys such as OPENAI_API_KEY stay, Codex needs them)."""
    import os

    inherited = {k: v for k, v in os.environ.items() if not is_registered(v)}
    run_env = {k: v for k, v in ctx.env.items() if redact(v) == v}
    return {**inherited, **run_env, "CODEX_TASKS_PROMPT_FILE": str(prompt_file), "CODEX_TASKS_WORKDIR": str(scratch),
            "CODEX_TASKS_STEP_ID": ctx.step_id, "CODEX_RUN_ID": ctx.run_id}


def run(cfg: With, ctx: StepContext, *, repair: str = "") -> StepResult:
    """Carry out the step (module docstring); `repair` is a failing step's error block, given by
    the repair loop (orchestrate/repair.py)."""
    task = cfg.task or ctx.description
    if not task.strip() and not repair:
        raise StepFailed("the agent step has no task: give it a description or `task`")
    d = ctx.step_dir
    d.mkdir(parents=True, exist_ok=True)
    declared = _declared(ctx)
    scratch_root = d / "scratch"
    partial = _partial_diff(scratch_root) if ctx.resuming or scratch_root.exists() else ""
    if partial:
        (d / "partial.patch").write_text(partial)
    earlier = _earlier_outputs(ctx)
    notes = dict(getattr(ctx, "declared_output_notes", {}) or {})
    inputs = PromptInputs(outputs=[{"path": p, "description": notes.get(p, "")} for p in declared],
                          earlier_outputs=earlier, sequence_rel=_sequence_rel(ctx), partial_diff=partial,
                          repair=repair, max_findings=cfg.max_findings)
    prompt = render_prompt(ctx, task, inputs, cfg.prompt_template)
    prompt_file = d / "prompt.md"
    prompt_file.write_text(prompt)
    who = "codex" if cfg.is_codex else shlex.join(cfg.command or shlex.split(cfg.agent))
    if ctx.dry_run:
        ctx.events.emit("agent", step_id=ctx.step_id, kind="prompt", agent=who, text=prompt)
        return StepResult(outputs=[str(prompt_file)], note=f"dry run: the prompt for {who} is in {prompt_file}")
    preflight(cfg)
    import time

    t0 = time.perf_counter()
    scratch = make_scratch(ctx.workspace, scratch_root, extra_files=earlier)
    scratch.seconds = round(time.perf_counter() - t0, 3)
    try:
        return carry_out(cfg, ctx, scratch, prompt, prompt_file, _agent_env(ctx, scratch.root, prompt_file),
                         declared, inputs.sequence_rel)
    finally:
        if not cfg.keep_scratch:
            shutil.rmtree(scratch_root, ignore_errors=True)
