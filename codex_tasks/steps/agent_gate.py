"""The gates an agent's changes pass before anything reaches the workspace.

1. Guardrails on paths: nothing under `.git` or `.codex/`, nothing outside the workspace (a
   symlink pointing out, or an absolute one, counts), no `.github/workflows` unless the sequence
   allows it (`metadata.forbid_github_workflows: false`), not the running sequence file.
2. The secret scan over every changed file (a secret or a forbidden file such as `.env`).
3. The tests, in the strict sandbox, over the scratch copy with the changes: a run that collects
   fewer tests than the baseline did fails (so deleting the tests is no way through); no tests
   before and after skips the gate with a note.
Every refusal raises `StepFailed` saying why; it becomes the step's error block.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from codex_tasks.core.files import write_json_atomic
from codex_tasks.core.redact import register_values
from codex_tasks.errors import StepFailed, StepTimeout
from codex_tasks.repo.secret_scan import forbidden_files, scan_paths
from codex_tasks.steps.agent_scratch import Changes

Spawn = Callable[..., subprocess.Popen[bytes]]
Kill = Callable[[subprocess.Popen[bytes]], None]


def refuse_paths(changes: Changes, scratch: Path, *, workflows_allowed: bool, sequence_rel: str | None,
                 declared: tuple[str, ...] = ()) -> None:
    """Refuse a patch that touches what an agent may not (see the module docstring). A declared
    output is the step's contract, so it may live under `.codex/` (e.g. `.codex/logs/notes.md`)."""
    why: list[str] = []
    for rel in changes.paths:
        parts = PurePosixPath(rel).parts
        if ".git" in parts:
            why.append(f"{rel}: inside .git")
        elif parts and parts[0] == ".codex" and (rel not in declared or (len(parts) > 1 and parts[1] == "runs")):
            why.append(f"{rel}: inside .codex/ (the run folders)")
        elif rel.startswith("..") or PurePosixPath(rel).is_absolute():
            why.append(f"{rel}: outside the workspace")
        elif not workflows_allowed and rel.startswith(".github/workflows/"):
            why.append(f"{rel}: .github/workflows is forbidden by the sequence")
        elif sequence_rel and rel == sequence_rel:
            why.append(f"{rel}: the running sequence file")
        full = scratch / rel
        if full.is_symlink():
            target = os.readlink(full)
            resolved = (full.parent / target).resolve()
            if os.path.isabs(target) or not resolved.is_relative_to(scratch.resolve()):
                why.append(f"{rel}: a symlink pointing outside the workspace ({target})")
    if why:
        raise StepFailed(f"the agent's patch was refused: {why[0]}" + (f" (and {len(why) - 1} more)" if len(why) > 1 else ""),
                         context="\n".join(why))


def scan_changes(changes: Changes, scratch: Path, report_dir: Path) -> None:
    """Refuse a patch that adds a secret or a forbidden file."""
    files = [(scratch / p, p) for p in changes.paths if (scratch / p).is_file() and not (scratch / p).is_symlink()]
    findings, _ = scan_paths(files, workers=1)
    findings += forbidden_files(files, [".env", ".env.*", "!.env.example", "!.env.sample", "!.env.template"])
    register_values(f.secret for f in findings if f.secret)
    write_json_atomic(report_dir / "gate_findings.json", [f.public() for f in findings])
    if findings:
        first = findings[0]
        raise StepFailed(
            f"the agent's patch adds {len(findings)} secret(s) or forbidden file(s); first: "
            f"{first.path}:{first.line} ({first.rule})",
            context="\n".join(f"{f.path}:{f.line}: {f.rule} {f.preview}" for f in findings[:20]),
        )


_COUNT = re.compile(r"(\d+) (passed|failed|error|errors|skipped|xfailed|xpassed|deselected|tests? collected)")


def _pytest(scratch: Path, args: list[str], log_path: Path, *, env: dict[str, str], spawn: Spawn, kill: Kill,
            timeout: float, cancelled: Callable[[], bool]) -> tuple[int, str]:
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    full_env = {**env, "PYTHONDONTWRITEBYTECODE": "1"}
    with open(log_path, "wb") as out:
        proc = spawn(argv, cwd=scratch, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                code = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline or cancelled():
                    kill(proc)
                    raise StepTimeout(f"the test gate ran past {timeout:g} s and was killed") from None
    kill(proc)  # whatever the tests left running goes with them
    return code, log_path.read_text(encoding="utf-8", errors="replace")


def count_tests(scratch: Path, report_dir: Path, **kw: Any) -> int:
    """How many tests pytest collects in `scratch` (0 when none, or none can be collected)."""
    code, text = _pytest(scratch, ["--collect-only", "-q"], report_dir / "collect.log", **kw)
    return sum(1 for line in text.splitlines() if "::" in line and not line.startswith(("ERROR", "FAILED")))


def run_test_gate(scratch: Path, args: list[str], report_dir: Path, *, before: int, **kw: Any) -> dict[str, Any]:
    """Run the tests over the changed scratch copy; raise when they fail or fewer are collected."""
    report_dir.mkdir(parents=True, exist_ok=True)
    after = count_tests(scratch, report_dir, **kw)
    result: dict[str, Any] = {"collected_before": before, "collected_after": after}
    if before == 0 and after == 0:
        result["note"] = "no tests before or after the change: the test gate was skipped"
        return result
    if after < before:
        raise StepFailed(f"the test gate collects {after} test(s), fewer than the {before} before the agent's change",
                         context="an agent may not delete or break the collection of tests")
    code, text = _pytest(scratch, args, report_dir / "pytest.log", **kw)
    last = text.strip().splitlines()[-1] if text.strip() else ""
    counts = {m.group(2).replace("errors", "error"): int(m.group(1)) for m in _COUNT.finditer(last)}
    result.update(exit_code=code, passed=counts.get("passed", 0), failed=counts.get("failed", 0),
                  errors=counts.get("error", 0), skipped=counts.get("skipped", 0))
    write_json_atomic(report_dir / "test_results.json", result)
    if code != 0:
        raise StepFailed(f"the tests fail in the scratch copy with the agent's change (pytest exit {code})",
                         context=text[-2000:])
    return result
