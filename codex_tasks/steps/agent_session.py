"""One agent session in a scratch copy: run the agent, collect its change, gate it, bring it back."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from codex_tasks.errors import StepFailed, StepTimeout
from codex_tasks.steps.agent_apply import apply_change, keep_change
from codex_tasks.steps.agent_codex import (
    CodexOptions,
    codex_argv,
    prefect_logger,
    resolve_codex_bin,
    run_codex,
)
from codex_tasks.steps.agent_gate import count_tests, refuse_paths, run_test_gate, scan_changes
from codex_tasks.steps.agent_sandbox import end, spawn_pid, spawn_strict
from codex_tasks.steps.agent_scratch import Changes, Scratch, collect_changes, git
from codex_tasks.steps.base import StepContext, StepResult

if TYPE_CHECKING:
    from codex_tasks.steps.agent import With


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-n:] if path.is_file() else ""


def _emitter(ctx: StepContext, agent: str) -> Any:
    logger = prefect_logger()

    def emit(kind: str, fields: dict[str, Any]) -> None:
        ctx.events.emit("agent", step_id=ctx.step_id, agent=agent, kind=kind, **fields)
        line = _line(kind, fields)
        if line:
            ctx.log(line)  # a `log` event too: the TUI's log pane shows it as it happens
            if logger is not None:
                logger.info(line)

    return emit


def _line(kind: str, f: dict[str, Any]) -> str:
    if kind == "command":
        return f"agent $ {f['command']}  (exit {f.get('exit_code')})"
    if kind == "file_change":
        return "agent changed " + ", ".join(f"{c['path']} ({c['kind']})" for c in f.get("changes", []))
    if kind == "message":
        return "agent: " + str(f.get("text", "")).splitlines()[0][:200] if f.get("text") else ""
    if kind == "usage":
        return "agent tokens: " + ", ".join(f"{k}={v}" for k, v in f.get("total", {}).items())
    if kind in ("error", "failed", "warning"):
        return f"agent {kind}: {f.get('text', '')}"
    return ""


def run_codex_agent(cfg: With, ctx: StepContext, scratch: Path, prompt: str, env: dict[str, str],
                    declared: list[str]) -> dict[str, Any]:
    """Run the Codex CLI; returns the step summary facts. Fails the step on `error` / `turn.failed`."""
    # Codex's sandbox keeps a `.codex/` folder read-only; a declared output there (e.g. the legacy
    # `.codex/logs`) needs it writable in the scratch copy. The guardrails still refuse the rest.
    add_dirs: tuple[Path, ...] = ()
    if any(p.split("/", 1)[0] == ".codex" for p in declared):
        (scratch / ".codex").mkdir(exist_ok=True)
        add_dirs = (scratch / ".codex",)
    opts = CodexOptions(bin=resolve_codex_bin(cfg.bin), sandbox=cfg.sandbox, model=cfg.model, profile=cfg.profile,
                        oss=cfg.oss, local_provider=cfg.local_provider, config=cfg.config, network=cfg.network,
                        add_dirs=add_dirs)
    last = ctx.step_dir / "agent_last_message.md"
    last.unlink(missing_ok=True)
    argv = codex_argv(opts, scratch, last)
    log_path = ctx.step_dir / "agent.ndjson"
    ctx.log(f"agent: codex exec ({cfg.sandbox}) in the scratch copy")
    code, tx = run_codex(argv, cwd=scratch, prompt=prompt, env=env, log_path=log_path,
                         timeout=min(cfg.timeout, ctx.timeout or cfg.timeout), emit=_emitter(ctx, "codex"),
                         cancelled=lambda: ctx.cancelled, max_tokens=cfg.max_tokens, spawn=spawn_pid, kill=end)
    summary = {"agent": "codex", "model": cfg.model, "exit_code": code, **tx.summary()}
    ctx.events.emit("agent", step_id=ctx.step_id, agent="codex", kind="finished", exit_code=code, usage=tx.usage)
    if tx.failure:
        raise StepFailed(f"the agent failed: {tx.failure}", context=_tail(log_path))
    if code != 0:
        raise StepFailed(f"the Codex CLI exited with code {code}", context=_tail(log_path))
    if cfg.max_tokens is not None and tx.total_tokens > cfg.max_tokens:
        raise StepFailed(f"the agent used {tx.total_tokens} tokens, over its budget max_tokens={cfg.max_tokens}; "
                         "nothing was applied")
    if cfg.sandbox == "read-only" and last.is_file():
        # Its final message is the step's single declared report (or kept in the step folder).
        if len(declared) == 1:
            target = scratch / declared[0]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(last.read_bytes())
    return summary


def run_generic_agent(cfg: With, ctx: StepContext, scratch: Path, prompt: str, prompt_file: Path,
                      env: dict[str, str]) -> dict[str, Any]:
    """Run any agent command in the strict sandbox, prompt on stdin; every process it started ends with it."""
    import shlex
    import time

    argv = [a.replace("{prompt_file}", str(prompt_file)).replace("{workdir}", str(scratch))
            for a in (cfg.command or shlex.split(cfg.agent))]
    ctx.log(f"agent: {shlex.join(argv)} in the scratch copy (strict sandbox)")
    log_path = ctx.step_dir / "agent.log"
    timeout = min(cfg.timeout, ctx.timeout or cfg.timeout)
    with open(log_path, "wb") as log:
        try:
            proc = spawn_strict(argv, cwd=scratch, env=env, writable=(scratch,), network=cfg.network,
                                required=cfg.sandbox_required, stdin=subprocess.PIPE, stdout=log,
                                stderr=subprocess.STDOUT)
        except OSError as exc:
            raise StepFailed(f"cannot start the agent command {argv[0]!r}: {exc}") from exc
        assert proc.stdin is not None
        try:
            proc.stdin.write(prompt.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the agent does not read stdin
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    code = proc.wait(timeout=0.1)
                    break
                except subprocess.TimeoutExpired:
                    if ctx.cancelled:
                        raise StepFailed("the agent was cancelled") from None
                    if time.monotonic() > deadline:
                        raise StepTimeout(f"the agent ran past its timeout of {timeout:g} s and was killed") from None
        finally:
            end(proc)  # a daemon it left behind goes too
    if code != 0:
        raise StepFailed(f"the agent exited with code {code}", context=_tail(log_path))
    return {"agent": argv[0], "exit_code": code}


def carry_out(cfg: With, ctx: StepContext, scratch: Scratch, prompt: str, prompt_file: Path, env: dict[str, str],
              declared: list[str], sequence_rel: str | None) -> StepResult:
    """Run the agent in `scratch`, then gate and bring back its change."""
    gate_kw = _gate_kw(cfg, ctx, scratch.root, env)
    import time

    clock = time.perf_counter()
    timings = {"scratch": scratch.seconds}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    before = count_tests(scratch.root, _gate_dir(ctx), **gate_kw) if cfg.test_args is not None else 0
    lap("tests_before")
    if cfg.is_codex:
        summary = run_codex_agent(cfg, ctx, scratch.root, prompt, env, declared)
    else:
        summary = run_generic_agent(cfg, ctx, scratch.root, prompt, prompt_file, env)
    lap("agent")
    summary["timings"] = timings  # filled in as the step goes on
    summary["left_out"] = scratch.left_out

    changes = collect_changes(scratch.root, force_add=declared)
    lap("collect")
    summary["changed_files"] = changes.paths
    outputs = [str(prompt_file)]
    if not changes.paths:
        if declared:
            raise StepFailed("the agent changed nothing, and the step declares outputs: "
                             + ", ".join(declared), context=_tail(ctx.step_dir / "step.log"))
        if cfg.require_changes:
            raise StepFailed("the agent made no changes")
        return StepResult(outputs=outputs, summary=summary, note="the agent made no changes")
    missing = [p for p in declared if p not in changes.status and not (scratch.root / p).exists()]
    if missing:
        raise StepFailed(f"declared output missing: {missing[0]}", context="the agent did not write "
                         + ", ".join(missing))
    _gate(cfg, ctx, scratch.root, changes, sequence_rel, before, gate_kw, summary, declared)
    lap("gates")
    result = _bring_back(cfg, ctx, scratch.root, changes, declared, summary, outputs)
    lap("apply")
    return result


def _gate_dir(ctx: StepContext) -> Path:
    d = ctx.step_dir / "gate_tests"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _gate_kw(cfg: With, ctx: StepContext, scratch: Path, env: dict[str, str]) -> dict[str, Any]:
    def spawn(argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        return spawn_strict(argv, writable=(scratch,), network=False, required=cfg.sandbox_required, **kw)

    return {"env": env, "spawn": spawn, "kill": end, "timeout": cfg.test_timeout, "cancelled": lambda: ctx.cancelled}


def _gate(cfg: With, ctx: StepContext, scratch: Path, changes: Changes, sequence_rel: str | None, before: int,
          gate_kw: dict[str, Any], summary: dict[str, Any], declared: list[str]) -> None:
    refuse_paths(changes, scratch, workflows_allowed=ctx.params.get("forbid_github_workflows") is False,
                 sequence_rel=sequence_rel, declared=tuple(declared))
    if cfg.scan:
        scan_changes(changes, scratch, ctx.step_dir)
    if cfg.test_args is not None:
        result = run_test_gate(scratch, cfg.test_args, _gate_dir(ctx), before=before, **gate_kw)
        summary["test_gate"] = result
        if result.get("note"):
            ctx.log(result["note"])


def _bring_back(cfg: With, ctx: StepContext, scratch: Path, changes: Changes, declared: list[str],
                summary: dict[str, Any], outputs: list[str]) -> StepResult:
    rest = [p for p in changes.paths if p not in declared]
    patch = ""
    if rest:
        patch = git(scratch, "diff", "--cached", "--binary", "--no-color", "--no-renames", "HEAD", "--",
                    *rest).stdout.decode("utf-8", "surrogateescape")
        if "GIT binary patch" in patch:
            raise StepFailed("the agent changed binary files that are not declared outputs; binary patches are not "
                             "applied", context="\n".join(rest))
    keep_change(ctx.step_dir, scratch, patch, [p for p in declared if (scratch / p).is_file()])
    outputs.append(str(ctx.step_dir / "agent.patch"))
    note = f"agent changed {len(changes.paths)} file(s); the change passed the gates"
    if cfg.apply:
        written = apply_change(ctx.step_dir, ctx.workspace)
        summary["applied"] = written
        note += " and was applied (rollback bundle kept)"
    else:
        summary["outputs_deferred"] = declared
        note += f"; kept, not applied: codex-tasks apply {ctx.run_id} {ctx.step_id}"
    ctx.log(note)
    return StepResult(outputs=outputs, summary=summary, note=note)
