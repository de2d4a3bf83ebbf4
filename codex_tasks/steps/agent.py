"""`agent`: hand a description-only step to an external coding agent, in a scratch tree.

The workspace's files (git-tracked and untracked-but-not-ignored ones in a git repository; every
file but caches and `.codex/` otherwise) are copied to a scratch folder that gets its own git
baseline commit; the agent command runs there with the prompt on stdin (and in the file named by
`CODEX_TASKS_PROMPT_FILE`). Its changes come back as `agent.patch`, which must pass a secret scan
and the tests in the scratch tree. The user's tree is never edited by the agent; with
`apply: true` the gated patch is applied through the `patch` machinery (with a rollback bundle).

A copy rather than a `git worktree` of the user's repository: the copy includes uncommitted work,
and the user's `.git` (refs, worktree list) is never touched.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from codex_tasks.errors import StepFailed, StepTimeout
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "agent"
CACHE = "never"

DEFAULT_PROMPT = """\
You are working in a scratch copy of a code repository (the current directory).
Make the smallest change that completes this task; do not touch unrelated files.

Task ({{ step_id }}): {{ task }}
{% if findings %}
Audit findings that may be relevant:
{% for f in findings %}- {{ f.path }}:{{ f.line }} [{{ f.kind }}] {{ f.text }}
{% endfor %}{% endif %}{% if errors %}
Errors from earlier steps of this run:
{% for e in errors %}- {{ e }}
{% endfor %}{% endif %}
Your changes are collected as a patch, scanned for secrets and tested before they are applied.
"""

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "codex-tasks", "GIT_AUTHOR_EMAIL": "codex-tasks@localhost",
    "GIT_COMMITTER_NAME": "codex-tasks", "GIT_COMMITTER_EMAIL": "codex-tasks@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class With(WithModel):
    """Run an external coding agent on this step's task in a scratch tree; collect a gated patch."""

    command: list[str] = Field(
        min_length=1,
        description="The agent command as argv; `{prompt_file}` and `{workdir}` are replaced. The prompt is also on stdin.",
    )
    task: str | None = Field(default=None, description="What to do (default: the step's description).")
    prompt_template: str | None = Field(
        default=None, description="Jinja2 template of the prompt (`task`, `step_id`, `findings`, `errors`); default: a built-in one."
    )
    timeout: float = Field(default=900, gt=0, le=86_400, description="Seconds the agent may run before it is killed.")
    scan: bool = Field(default=True, description="Scan the files the agent changed for secrets and forbidden files.")
    test_args: list[str] | None = Field(
        default_factory=lambda: ["-q"], description="pytest arguments for the tests run in the scratch tree; null skips tests."
    )
    apply: bool = Field(default=False, description="Apply the gated patch to the workspace (with a rollback bundle).")
    require_changes: bool = Field(default=False, description="Fail when the agent changed nothing.")
    keep_scratch: bool = Field(default=False, description="Keep the scratch tree (its path is in the step summary).")
    max_findings: int = Field(default=30, ge=0, le=10_000, description="Audit findings to put in the prompt.")


def config_for_command(command_line: str, *, apply: bool = True) -> With:
    """The `with:` of an agent step for `codex-tasks run --agent "CMD"` (a shell-like command line)."""
    return With(command=shlex.split(command_line), apply=apply)


def run_description_step(command_line: str, ctx: StepContext, *, apply: bool = True) -> StepResult:
    """Run a description-only step with the agent command given by `run --agent "CMD"`."""
    return run(config_for_command(command_line, apply=apply), ctx)


def _git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, capture_output=True, env={**os.environ, **_GIT_ENV}, check=False,
    )
    if check and proc.returncode != 0:
        raise StepFailed(f"git {args[0]} failed in the scratch tree", context=proc.stderr.decode(errors="replace")[-2000:])
    return proc


def _workspace_files(ws: Path) -> list[str]:
    from codex_tasks.repo.secret_scan import PRUNE_DIRS

    probe = subprocess.run(["git", "-C", str(ws), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False)
    if probe.returncode == 0:
        out = subprocess.run(
            ["git", "-C", str(ws), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True,
        ).stdout.decode("utf-8", "surrogateescape")
        return [p for p in out.split("\0") if p and not p.startswith(".codex/")]
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(ws):
        dirnames[:] = [d for d in dirnames if d not in PRUNE_DIRS]
        rel_dir = Path(dirpath).relative_to(ws)
        files.extend((rel_dir / f).as_posix() for f in filenames)
    return files


def make_scratch(ws: Path) -> Path:
    """Copy the workspace into a new scratch folder and commit a baseline there."""
    scratch = Path(tempfile.mkdtemp(prefix="codex-agent-"))
    for rel in _workspace_files(ws):
        src = ws / rel
        dst = scratch / rel
        if not (src.is_file() or src.is_symlink()):
            continue  # deleted but still in the index
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    _git(scratch, "init", "-q")
    _git(scratch, "add", "-A")
    _git(scratch, "commit", "-q", "--allow-empty", "--no-verify", "-m", "codex-tasks baseline")
    return scratch


def _prompt_context(ctx: StepContext, max_findings: int) -> tuple[list[dict[str, Any]], list[str]]:
    findings: list[dict[str, Any]] = []
    for scan in sorted((ctx.run_dir / "steps").glob("*/stub_scan.json")):
        try:
            findings.extend(json.loads(scan.read_text()).get("findings", []))
        except ValueError:
            continue
    errors = []
    captures = ctx.run_dir / "error_captures.ndjson"
    if captures.is_file():
        for line in captures.read_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            errors.append(f"[{rec.get('step_id')}] {rec.get('error_message', '')}".strip())
    return findings[:max_findings], errors[-10:]


def _run_agent(argv: list[str], scratch: Path, prompt: str, prompt_file: Path, log_path: Path, timeout: float,
               ctx: StepContext) -> int:
    env = {**os.environ, **ctx.env, "CODEX_TASKS_PROMPT_FILE": str(prompt_file), "CODEX_TASKS_WORKDIR": str(scratch),
           "CODEX_TASKS_STEP_ID": ctx.step_id}
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(argv, cwd=scratch, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                    env=env, start_new_session=True)
        except OSError as exc:
            raise StepFailed(f"cannot start the agent command {argv[0]!r}: {exc}") from exc
        assert proc.stdin is not None
        try:
            proc.stdin.write(prompt.encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the agent does not read stdin
        deadline = time.monotonic() + timeout
        while True:
            try:
                return proc.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline or ctx.cancelled:
                    _kill_group(proc)
                    if ctx.cancelled:
                        raise StepFailed("the agent was cancelled") from None
                    raise StepTimeout(f"the agent ran past its timeout of {timeout:g} s and was killed") from None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-n:] if path.is_file() else ""


def run(cfg: With, ctx: StepContext) -> StepResult:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    task = cfg.task or ctx.description
    if not task.strip():
        raise StepFailed("the agent step has no task: give it a description or `task`")
    findings, errors = _prompt_context(ctx, cfg.max_findings)
    env = SandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
    prompt = env.from_string(cfg.prompt_template or DEFAULT_PROMPT).render(
        task=task, step_id=ctx.step_id, findings=findings, errors=errors
    )
    d = ctx.step_dir
    d.mkdir(parents=True, exist_ok=True)
    prompt_file = d / "prompt.md"
    prompt_file.write_text(prompt)
    log_path = d / "agent.log"
    scratch = make_scratch(ctx.workspace)
    summary: dict[str, Any] = {"scratch": str(scratch) if cfg.keep_scratch else None}
    try:
        argv = [a.replace("{prompt_file}", str(prompt_file)).replace("{workdir}", str(scratch)) for a in cfg.command]
        ctx.log(f"agent: {shlex.join(argv)} in a scratch tree")
        code = _run_agent(argv, scratch, prompt, prompt_file, log_path, cfg.timeout, ctx)
        if code != 0:
            raise StepFailed(f"the agent exited with code {code}", context=_tail(log_path))
        _git(scratch, "add", "-A")
        patch = _git(scratch, "diff", "--cached", "--binary", "--no-color", "HEAD").stdout.decode("utf-8", "surrogateescape")
        changed = [p for p in _git(scratch, "diff", "--cached", "--name-only", "HEAD").stdout.decode().splitlines() if p]
        patch_path = d / "agent.patch"
        patch_path.write_text(patch, encoding="utf-8", errors="surrogateescape")
        summary.update({"changed_files": changed, "patch": str(patch_path)})
        if not changed:
            if cfg.require_changes:
                raise StepFailed("the agent made no changes", context=_tail(log_path))
            return StepResult(outputs=[str(patch_path), str(prompt_file)], summary=summary, note="the agent made no changes")
        if "GIT binary patch" in patch:
            raise StepFailed("the agent changed binary files; binary patches are not applied",
                             context="\n".join(changed))
        if cfg.scan:
            _gate_scan(scratch, changed, d)
        if cfg.test_args is not None:
            _gate_tests(scratch, cfg.test_args, d, ctx)
        note = f"agent changed {len(changed)} file(s); patch passed the gates"
        if cfg.apply:
            _apply(patch, ctx)
            note += " and was applied (rollback bundle kept)"
        ctx.log(note)
        return StepResult(outputs=[str(patch_path), str(prompt_file), str(log_path)], summary=summary, note=note)
    finally:
        if not cfg.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _gate_scan(scratch: Path, changed: list[str], d: Path) -> None:
    from codex_tasks.core.redact import register_values
    from codex_tasks.repo.secret_scan import DEFAULT_FORBID, forbidden_files, scan_paths

    files = [(scratch / p, p) for p in changed if (scratch / p).is_file()]
    findings, _ = scan_paths(files, workers=1)
    findings += forbidden_files(files, DEFAULT_FORBID)
    register_values(f.secret for f in findings if f.secret)
    (d / "gate_findings.json").write_text(json.dumps([f.public() for f in findings], indent=2) + "\n")
    if findings:
        first = findings[0]
        raise StepFailed(
            f"the agent's patch adds {len(findings)} secret(s) or forbidden file(s); first: {first.path}:{first.line} ({first.rule})",
            context="\n".join(f"{f.path}:{f.line}: {f.rule} {f.preview}" for f in findings[:20]),
        )


def _gate_tests(scratch: Path, args: list[str], d: Path, ctx: StepContext) -> None:
    from codex_tasks.steps.test_runner import run_pytest

    res = run_pytest(scratch, d / "gate_tests", [], args, env=ctx.env, cancel=lambda: ctx.cancelled)
    tail = res.pop("log_tail")
    (d / "gate_tests" / "test_results.json").write_text(json.dumps(res, indent=2) + "\n")
    if res["failed"] or res["errors"] or res["exit_code"] not in (0, 5):
        first = res["failing"][0]["id"] if res["failing"] else f"exit code {res['exit_code']}"
        raise StepFailed(f"tests fail in the scratch tree with the agent's patch; first: {first}", context=tail[-2000:])


def _apply(patch: str, ctx: StepContext) -> None:
    from codex_tasks.repo.patch_apply import plan_patches
    from codex_tasks.repo.patch_parse import parse_patch
    from codex_tasks.repo.patch_write import commit_plan, write_bundle

    plan = plan_patches(ctx.workspace, parse_patch(patch, "agent.patch"))
    write_bundle(plan, ctx.step_dir / "rollback")
    commit_plan(plan)
