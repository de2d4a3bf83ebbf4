"""Carry out a bound step: its own lines, then the kinds its outputs are bound to, each result written
in the legacy layout (published as JSON Schemas under docs/schema/legacy/) exactly where declared.

Each kind runs with its defaults in a sub-folder of the step folder (`steps/<id>/<kind>/`); the
legacy files are then written from what the kind recorded there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from codex_tasks.core.files import write_text_atomic
from codex_tasks.errors import StepFailed
from codex_tasks.orchestrate.bindings import Binding, BindingRule
from codex_tasks.orchestrate.legacy_params import test_settings
from codex_tasks.steps import load_kind
from codex_tasks.steps.base import StepContext, StepResult

if TYPE_CHECKING:
    from codex_tasks.orchestrate.context import RunContext
    from codex_tasks.orchestrate.plan import PlannedStep

SNIPPET = 2000  # characters of stdout/stderr kept per command in verification_results.json
KIND_ORDER = ("commands", "provenance", "audit", "test", "changelog", "archive", "errors", "report")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def _write_json(path: Path, data: Any) -> None:
    _write(path, json.dumps(data, indent=2, default=str) + "\n")


# ------------------------------------------------------------------ provenance


def _provenance_files(sub: Path, ctx: StepContext, bindings: list[Binding]) -> None:
    record = json.loads((sub / "provenance.json").read_text())
    for b in bindings:
        dest, name = ctx.resolve(b.output), b.rule.file
        if name == "provenance.json":
            _write_json(dest, record)
        elif name == "pip_freeze.txt":
            _write(dest, (sub / "pip_freeze.txt").read_text())
        elif name == "git_commit.txt":
            git = record.get("git") or {}
            state = "dirty" if git.get("dirty") else "clean"
            _write(dest, f"{git.get('commit') or 'no-git'}\n{state if git.get('commit') else 'no-git'}\n")
        elif name == "env_snapshot.json":
            _write_json(dest, {
                "timestamp": record["timestamp"],
                "python": record["python"],
                "platform": record["platform"],
                "cpu": record["cpu"],
                "ram_bytes": record.get("ram_bytes"),
                "gpus": record.get("gpus", []),
                "torch": record.get("torch"),
                "cuda": record.get("cuda"),
                "packages": record.get("packages", 0),
                "git": record.get("git"),
                "env_flags": {k: os.environ[k] for k in sorted(os.environ) if k.startswith("CODEX_")
                              and not k.startswith("CODEX_PARAM_")},
            })


# ------------------------------------------------------------------ audit

_GROUPS = {
    "notebooks": (".ipynb",),
    "scripts": (".sh", ".bash", ".ps1", ".bat"),
    "config": (".toml", ".yaml", ".yml", ".json", ".ini", ".cfg", ".conf", ".env.example"),
    "docs": (".md", ".rst", ".txt", ".adoc"),
    "code": (".py", ".pyi", ".c", ".cc", ".cpp", ".h", ".rs", ".go", ".js", ".ts", ".java"),
}
_SKIP_DIRS = {".git", ".codex", ".venv", "venv", "__pycache__", "node_modules", ".mypy_cache",
              ".pytest_cache", ".ruff_cache", ".tox"}


def file_group(rel: str) -> str:
    """code / config / tests / docs / scripts / notebooks / other, by path and suffix."""
    p = PurePosixPath(rel)
    lower = rel.lower()
    if any(part in ("tests", "test") for part in p.parts[:-1]) or p.name.startswith("test_") or p.name.endswith("_test.py"):
        return "tests"
    if p.parts[0] == "scripts" and len(p.parts) > 1:
        return "scripts"
    if p.parts[0] == "docs" and len(p.parts) > 1:
        return "docs"
    for group, suffixes in _GROUPS.items():
        if lower.endswith(suffixes):
            return group
    return "other"


def workspace_index(root: Path) -> dict[str, Any]:
    """Every file under `root` (version-control and tool folders left out), grouped."""
    groups: dict[str, list[str]] = {g: [] for g in ("code", "config", "tests", "docs", "scripts", "notebooks", "other")}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            groups[file_group(rel)].append(rel)
    return {"root": str(root), "total": sum(len(v) for v in groups.values()), "groups": groups}


def _capability(buckets: list[str]) -> str:
    return buckets[0] if buckets else "unmapped"


def _audit_files(sub: Path, ctx: StepContext, bindings: list[Binding]) -> None:
    scan = json.loads((sub / "stub_scan.json").read_text())
    mapping = json.loads((sub / "capability_mapping.json").read_text())
    findings = [{"file": f["path"], "line": f["line"], "kind": f["kind"], "snippet": f["text"],
                 "capability": _capability(f.get("buckets", []))} for f in scan["findings"]]
    for b in bindings:
        dest, name = ctx.resolve(b.output), b.rule.file
        if name == "stub_scan.json":
            _write_json(dest, {"root": scan["root"], "files_scanned": scan["files_scanned"], "findings": findings,
                               "unparsed": scan.get("unparsed", [])})
        elif name == "stub_report.json":
            by_kind: dict[str, int] = defaultdict(int)
            by_cap: dict[str, int] = defaultdict(int)
            for f in findings:
                by_kind[f["kind"]] += 1
                by_cap[f["capability"]] += 1
            _write_json(dest, {"files_scanned": scan["files_scanned"], "total": len(findings),
                               "by_kind": dict(by_kind), "by_capability": dict(by_cap), "findings": findings})
        elif name == "capability_mapping.json":
            _write_json(dest, mapping)
        elif name == "cost_incurring_refs.txt":
            _write(dest, (sub / "cost_incurring_refs.txt").read_text())
        elif name == "workspace_index.json":
            _write_json(dest, workspace_index(ctx.workspace))
        elif name == "deferred.md":
            _write(dest, deferred_markdown([f for f in findings if f["kind"] == "remote"]))


def deferred_markdown(remote: list[dict[str, Any]]) -> str:
    """Modules that need external services, from the audit's remote references, with reasons."""
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in remote:
        by_file[f["file"]].append(f)
    lines = ["# Deferred: modules that need external services", ""]
    if not by_file:
        lines += ["The audit found no remote or cost-incurring references; nothing is deferred.", ""]
    for file, refs in sorted(by_file.items()):
        lines.append(f"## `{file}`")
        lines.append("")
        lines.append(f"Deferred: {len(refs)} remote / cost-incurring reference(s); it cannot run offline.")
        lines.append("")
        lines += [f"- line {r['line']}: `{r['snippet'][:120]}` ({r['capability']})" for r in refs]
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------ the step's own commands, recorded


def record_commands(step: PlannedStep, ctx: StepContext, bindings: list[Binding]) -> bool:
    """Run each of the step's lines in its own bash, record pass/fail; True when all passed."""
    results = []
    env = {**os.environ, **ctx.env}
    for section, line in step.lines:
        try:
            proc = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=ctx.workspace, env=env,
                                  capture_output=True, text=True, timeout=ctx.timeout, check=False)
            code, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            code, out, err = 124, str(exc.stdout or ""), f"timed out after {ctx.timeout} s"
        ctx.log(f"[{section}] {line} -> exit {code}")
        results.append({"section": section, "command": line, "exit_code": code, "passed": code == 0,
                        "stdout": out[-SNIPPET:], "stderr": err[-SNIPPET:]})
    ok = all(r["passed"] for r in results)
    record = {"step_id": step.id, "passed": ok, "total": len(results),
              "failed": sum(not r["passed"] for r in results), "results": results}
    for b in bindings:
        _write_json(ctx.resolve(b.output), record)
    return ok


# ------------------------------------------------------------------ run-level sinks


def refresh_sinks(run: RunContext) -> None:
    """Mirror the run's error blocks and report into every sink created so far."""
    for b in list(run.sinks):
        dest = run.workspace / b.output if not Path(b.output).is_absolute() else Path(b.output)
        if b.kind == "errors":
            src = run.rundir.path / "error_captures.ndjson"
            text = src.read_text(encoding="utf-8") if src.exists() else ""
            if b.rule.file.endswith(".md"):
                text = error_questions(text)
            _write(dest, text)
        elif b.kind == "change_log":
            _write(dest, change_log(run))
        elif b.kind == "report":
            report = run.rundir.path / "report.md"
            _write(dest, report.read_text(encoding="utf-8") if report.exists() else
                   f"# {run.plan.title}\n\nRun {run.rundir.run_id} is in progress; this file is rewritten when it ends.\n")


def change_log(run: RunContext) -> str:
    """`timestamp | phase_id | step_id | status | details` rows, one per step that has a status."""
    rows = ["| timestamp | phase_id | step_id | status | details |", "| --- | --- | --- | --- | --- |"]
    for step_id, st in run.rundir.state.get("steps", {}).items():
        if st.get("status") in (None, "running"):
            continue
        details = str(st.get("error") or st.get("note") or "").replace("|", "\\|").replace("\n", " ")[:200]
        when = st.get("finished") or st.get("started") or ""
        rows.append(f"| {when} | {st.get('phase_id', '')} | {step_id} | {st.get('status')} | {details} |")
    return f"# Change log: {run.plan.title}\n\nRun {run.rundir.run_id}.\n\n" + "\n".join(rows) + "\n"


def root_wrapper_sinks(run: RunContext) -> None:
    """Runs of the `codex_task_sequence:` shape keep a change log and a questions file, as its runner did:
    in `{logs_dir}` when the sequence has one, else in the workspace root."""
    folder = str(run.params.get("logs_dir") or "").strip().rstrip("/")
    for name, kind, what in (("codex_change_log.md", "change_log", "timestamp | phase_id | step_id | status | details"),
                             ("codex_error_questions.md", "errors", "the run's error blocks")):
        path = f"{folder}/{name}" if folder else name
        run.sinks.append(Binding(output=path, rule=BindingRule(file=name, kind=kind, what=what, sink=True),
                                 why="the codex_task_sequence shape keeps it"))
    refresh_sinks(run)


def error_questions(ndjson: str) -> str:
    """The legacy text form: each rendered error block, separated by a blank line."""
    blocks = []
    for line in ndjson.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line
        if isinstance(rec, dict) and rec.get("rendered"):
            blocks.append(str(rec["rendered"]).strip())
    return "\n\n".join(blocks) + ("\n" if blocks else "")


# ------------------------------------------------------------------ the bound step


def run_bound_step(step: PlannedStep, run: RunContext, ctx: StepContext) -> StepResult:
    """Own lines first (recorded when bound to verification_results.json), then each bound kind."""
    by_kind: dict[str, list[Binding]] = defaultdict(list)
    for b in step.bindings:
        by_kind[b.kind].append(b)
    bound_paths = {b.output for b in step.bindings}
    declared = [p for p, _ in step.outputs]
    if "commands" in by_kind:
        if not record_commands(step, ctx, by_kind["commands"]):
            raise StepFailed("a verification command failed",
                             context=f"see {', '.join(b.output for b in by_kind['commands'])}")
    elif step.lines:
        shell = load_kind("shell")
        own = dataclasses.replace(ctx, declared_outputs=[p for p in declared if p not in bound_paths])
        shell.run(shell.With(), own)
    notes = [f"commands -> {', '.join(PurePosixPath(b.output).name for b in by_kind['commands'])}"] \
        if "commands" in by_kind else []
    for kind in sorted(by_kind, key=KIND_ORDER.index):
        if kind == "commands":
            continue
        group = by_kind[kind]
        if kind in ("errors", "report"):
            run.sinks.extend(b for b in group if b not in run.sinks)
            refresh_sinks(run)
        else:
            _run_kind(kind, group, ctx, load_kind, run)
        notes.append(f"{kind} -> {', '.join(PurePosixPath(b.output).name for b in group)}")
    missing = [p for p in declared if not ctx.resolve(p).exists()]
    if missing:
        raise StepFailed(f"declared output missing: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
                         context="outputs: " + ", ".join(declared), hint="nothing bound or written it")
    return StepResult(outputs=[p for p in declared if p not in {b.output for b in step.bindings if b.sink}],
                      note="bound: " + "; ".join(notes))


def _run_kind(kind: str, group: list[Binding], ctx: StepContext, load_kind: Any, run: RunContext) -> None:
    sub_ctx = dataclasses.replace(ctx, step_dir=ctx.step_dir / kind)
    sub_ctx.step_dir.mkdir(parents=True, exist_ok=True)
    module = load_kind(kind)
    if kind == "provenance":
        module.run(module.With(), sub_ctx)
        _provenance_files(sub_ctx.step_dir, ctx, group)
    elif kind == "audit":
        module.run(module.With(), sub_ctx)
        _audit_files(sub_ctx.step_dir, ctx, group)
    elif kind == "test":
        failure: StepFailed | None = None

        try:
            module.run(test_settings(module.With(), run), sub_ctx)
        except StepFailed as exc:  # the results are written before the step fails
            failure = exc
        src = sub_ctx.step_dir / "test_results.json"
        if src.exists():
            for b in group:
                _write(ctx.resolve(b.output), src.read_text())
        if failure is not None:
            raise failure
    elif kind == "changelog":
        for b in group:
            module.run(module.With(path=b.output), sub_ctx)
    elif kind == "archive":
        for b in group:
            module.run(module.With(out=b.output), sub_ctx)
    else:  # pragma: no cover - the table names only the kinds above
        raise StepFailed(f"no layout for bound kind {kind!r}")
    for b in group:  # a kind's own file with the same name would be a copy; the declared place is what counts
        if not ctx.resolve(b.output).exists():
            shutil.copyfile(sub_ctx.step_dir / b.rule.file, ctx.resolve(b.output))
