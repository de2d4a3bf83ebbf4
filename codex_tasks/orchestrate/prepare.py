"""What every command does before it runs anything: find the file, load it, resolve the
parameters, plan. `validate`, `plan`, `run` (and `tui FILE`) and `serve` all start here, so a file
that one of them accepts, the others accept too. Nothing is written.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codex_tasks.core.names import closest
from codex_tasks.core.process import is_alive
from codex_tasks.core.resources import resolve_sequence_ref
from codex_tasks.errors import CodexTasksError, RunNotFound, SpecErrors, UsageError
from codex_tasks.orchestrate.bindings import output_errors
from codex_tasks.orchestrate.legacy_params import apply_aliases, root_workspace
from codex_tasks.orchestrate.options import RunOptions
from codex_tasks.orchestrate.plan import Plan, build_plan, check_placeholders
from codex_tasks.render.params import declared_names, parse_cli_params, resolve_params, restore_stored
from codex_tasks.runs.events import now_iso
from codex_tasks.runs.rundir import (
    RESUMABLE,
    RunDir,
    find_run,
    list_run_dirs,
    new_run_id,
    runs_root,
)
from codex_tasks.sequence.load import LoadedSequence, load_sequence
from codex_tasks.steps import load_kind


@dataclass
class PreparedRun:
    """A sequence ready to run: every check that bad input can fail has passed."""

    file: Path  # the sequence file, resolved (a `builtin:NAME` becomes the shipped file)
    loaded: LoadedSequence
    plan: Plan
    workspace: Path
    run_id: str
    values: dict[str, Any]  # the resolved parameters, built-ins included
    previous: RunDir | None = None  # the run this one resumes


def prepare_run(
    file: str,
    params: list[str] | None = None,
    workspace: str | Path | None = None,
    *,
    only: list[str] | None = None,
    from_step: str | None = None,
    resume: str | bool | None = None,
    run_id: str | None = None,
    environ: Mapping[str, str] | None = None,
    strict_placeholders: bool = False,
    bind: bool = True,
    strict: bool = False,
) -> PreparedRun:
    """Load `file`, resolve `params` (`K=V` strings), plan. Raises `CodexTasksError` (exit 2).

    `resume`: a run id, or True for the newest resumable run of this file; its stored parameters
    are reused. `run_id`: a fixed id for commands that only look (`plan`, `validate`); by default
    a new one. `environ`: where `CODEX_PARAM_*` come from (`os.environ`). `strict_placeholders`:
    also report placeholders that name no parameter in steps the plan would not render. `bind`:
    bind declared outputs to the kinds that write them; `strict`: outputs nothing writes are errors.
    """
    path = resolve_sequence_ref(file)
    loaded = load_sequence(path)
    if strict_placeholders:
        errors = check_placeholders(loaded, declared_names(loaded.spec))
        if errors:
            raise SpecErrors(errors)
    cli = parse_cli_params(params or [])

    ws = Path(workspace or root_workspace(loaded, cli) or os.getcwd()).resolve()  # legacy `root` is the workspace
    if not ws.is_dir():
        raise UsageError(f"--workspace {ws}: not a folder")
    previous = find_resumable(ws, path, resume) if resume else None
    if previous is not None and only is None and from_step is None:
        # a resumed --only / --from run resumes that selection, unless the resume names its own
        before = previous.state.get("options") or {}
        only, from_step = before.get("only"), before.get("from")
    # a secret was stored as its hash only: the resume must be given it again (exit 2 naming it)
    stored = restore_stored(previous.state.get("params", {}), cli) if previous is not None else None
    rid = previous.run_id if previous is not None else (run_id or new_run_id())
    builtins = {"run_id": rid, "run_dir": str(runs_root(ws) / rid), "workspace": str(ws), "timestamp": now_iso()}
    values = resolve_params(loaded.spec, cli, builtins, environ, stored=stored)
    apply_aliases(loaded, values, cli)  # `log_dir` drives `{logs_dir}`
    plan = build_plan(loaded, values, only=only, from_step=from_step, bind=bind)
    if strict and output_errors(plan):
        raise SpecErrors(output_errors(plan))
    return PreparedRun(file=path, loaded=loaded, plan=plan, workspace=ws, run_id=rid, values=values,
                       previous=previous)


def find_resumable(workspace: Path, file: Path, ref: str | bool) -> RunDir:
    """The run to resume: `ref` names it, or (True) the newest resumable run of `file`."""
    if isinstance(ref, str):
        rd = find_run(workspace, ref)
    else:
        target = str(file.resolve())
        candidates = []
        for d in list_run_dirs(workspace):
            try:
                r = RunDir.open(d)
            except CodexTasksError:
                continue
            if r.state.get("sequence_file") == target and r.state.get("status") in RESUMABLE:
                candidates.append(r)
        if not candidates:
            raise RunNotFound(f"no failed, cancelled or killed run of {file} to resume in {runs_root(workspace)}",
                              hint="run it without --resume")
        rd = candidates[-1]
    status = rd.state.get("status")
    if status == "running" and is_alive(rd.state.get("pid")) and rd.state.get("pid") != os.getpid():
        raise UsageError(f"run {rd.run_id} is still running (pid {rd.state.get('pid')})",
                         hint=f"codex-tasks cancel {rd.run_id} first")
    if status not in RESUMABLE:
        raise UsageError(f"run {rd.run_id} {status}; nothing to resume", hint="run it without --resume")
    return rd


_RUNNER = re.compile(r"local|dask(:[0-9]+)?|dask=(tcp|tls|ucx|inproc)://[^\s/:]+(:[0-9]{1,5})?/?")


def check_runner(spec: str) -> None:
    """`--runner` is `local`, `dask`, `dask:N` or `dask=tcp://HOST:PORT` (exit 2 otherwise, before
    a run folder exists, so no failed run is left for `--resume` to pick up)."""
    if not _RUNNER.fullmatch(spec):
        raise UsageError(f"--runner {spec}: not a runner",
                         hint="use local, dask, dask:N (N local workers) or dask=tcp://HOST:PORT")


def check_force(force: set[str] | None, plan: Plan) -> None:
    """Every id in `--force=IDS` names a step (exit 2 with the closest one otherwise)."""
    ids = [s.id for s in plan.steps()]
    unknown = sorted(set(force or ()) - set(ids))
    if unknown:
        guess = closest(unknown[0], ids)
        raise UsageError(f"--force={','.join(unknown)}: no such step in this sequence",
                         hint=f"did you mean {guess!r}?" if guess else "`codex-tasks plan FILE` lists the step ids")


def prepare_options(opts: RunOptions) -> PreparedRun:
    """`prepare_run` for the run these options describe, and the agents it will start checked."""
    check_runner(opts.runner)
    prepared = prepare_run(opts.file, opts.params, opts.workspace, only=opts.only, from_step=opts.from_step,
                           resume=opts.resume, bind=opts.bind, strict=opts.strict)
    check_force(opts.force, prepared.plan)
    if not (opts.dry_run or prepared.values.get("dry_run") is True):
        _agent_preflight(prepared.plan, opts)
    return prepared


def _agent_preflight(plan: Plan, opts: RunOptions) -> None:
    """A missing Codex binary or sandbox is bad environment (exit 2), found before anything runs."""
    steps = [s for s in plan.steps() if not s.skip]
    if not (opts.repair or opts.agent or any(s.repair or s.kind == "agent" for s in steps)):
        return  # no agent here: its kind (scratch copies, gates, the Codex driver) is not even loaded
    agent = load_kind("agent")  # through the kind table, as every kind is reached
    if opts.repair:
        agent.preflight(agent.config_for_agent(opts.repair, unsandboxed=opts.unsandboxed_agents))
    for s in steps:
        if s.repair:
            agent.preflight(agent.config_for_agent(str(s.repair.get("agent", "codex")),
                                                   unsandboxed=opts.unsandboxed_agents))
    if opts.agent and any(s.kind == "manual" for s in steps):
        agent.preflight(agent.config_for_agent(opts.agent, unsandboxed=opts.unsandboxed_agents))
    for s in steps:
        if s.kind == "agent" and s.config is not None:
            cfg = s.config.model_copy(update={"sandbox_required": False}) if opts.unsandboxed_agents else s.config
            agent.preflight(cfg)
