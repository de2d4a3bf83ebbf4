"""`codex-tasks doctor`: what this machine and workspace offer, and what to fix, in one screen.

Each check reads, never changes: it starts no server and writes no file. A check is `ok`, `warn`
(works, but something a user may want to act on) or `fail` (a run that needs it will fail); the
command exits 1 when any check fails, else 0.
"""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from codex_tasks import __version__
from codex_tasks.core.process import sandbox_unavailable_reason
from codex_tasks.errors import CodexTasksError
from codex_tasks.orchestrate.prefect import server
from codex_tasks.steps.agent_codex import CODEX_PIN, INSTALL_HINT, resolve_codex_bin

Status = Literal["ok", "warn", "fail"]
MARKS = {"ok": "✓", "warn": "!", "fail": "✗"}
PACKAGES = ("torch", "transformers", "prefect", "mlflow", "textual", "pydantic")
DISK_WARN_GB, DISK_FAIL_GB = 5.0, 1.0


@dataclass
class Check:
    """One line of the report: what was checked, how it stands, what was found, how to fix it."""

    name: str
    status: Status
    detail: str
    hint: str | None = None


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 20) -> str | None:
    """stdout of a command that succeeded, else None (missing binary, error, timeout)."""
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def check_versions() -> list[Check]:
    """Python, codex-tasks and the libraries it drives."""
    checks = [Check("python", "ok", f"{platform.python_version()} ({sys.executable})"),
              Check("codex-tasks", "ok", __version__)]
    for name in PACKAGES:
        try:
            checks.append(Check(name, "ok", metadata.version(name)))
        except metadata.PackageNotFoundError:
            checks.append(Check(name, "fail", "not installed", "run `make install`"))
    return checks


def check_torch() -> list[Check]:
    """The device training would use, CUDA, and pynvml (GPU metrics)."""
    checks = []
    try:
        import torch
    except ImportError:
        return [Check("torch device", "fail", "torch is not importable", "run `make install`")]
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        checks.append(Check("torch device", "ok", f"cuda: {torch.cuda.device_count()} GPU(s): {names}; "
                                                  f"CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}"))
    else:
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        checks.append(Check("torch device", "ok", f"cpu ({os.cpu_count()} cores; torch is {built})"))
    try:
        import pynvml
    except ImportError:
        checks.append(Check("pynvml", "warn", "not installed: no GPU system metrics", "pip install nvidia-ml-py"))
        return checks
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # no driver: normal on a CPU machine
        checks.append(Check("pynvml", "ok", f"no NVIDIA driver ({type(exc).__name__}): GPU metrics off"))
        return checks
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        count = pynvml.nvmlDeviceGetCount()
    finally:
        pynvml.nvmlShutdown()
    checks.append(Check("pynvml", "ok", f"driver {driver}, {count} GPU(s)"))
    return checks


def check_prefect() -> Check:
    """The Prefect API a run would use: PREFECT_API_URL, else the managed local server."""
    st = server.status()
    if not st["managed"]:
        if st["running"]:
            return Check("prefect server", "ok", f"{st['url']} (PREFECT_API_URL) answers")
        return Check("prefect server", "fail", f"PREFECT_API_URL={st['url']} does not answer",
                     "start that server, or unset PREFECT_API_URL to use the managed local one")
    if st["running"]:
        return Check("prefect server", "ok", f"managed, running at {st['ui_url']}")
    return Check("prefect server", "ok", "managed, not running: the first run starts it (~30 s)")


def check_mlflow(workspace: Path) -> Check:
    """The workspace's MLflow store (`.codex/mlflow.db`), read directly with sqlite3."""
    db = workspace / ".codex" / "mlflow.db"
    if not db.exists():
        return Check("mlflow store", "ok", f"none yet in {db.parent} (the first train step creates it)")
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            experiments = conn.execute("SELECT count(*) FROM experiments").fetchone()[0]
            runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    except sqlite3.Error as exc:
        return Check("mlflow store", "fail", f"{db} is not a readable MLflow store ({exc})",
                     "move it aside; the next train step creates a new one")
    return Check("mlflow store", "ok", f"{db}: {experiments} experiment(s), {runs} run(s); `codex-tasks mlflow` shows it")


def check_agent() -> list[Check]:
    """The Codex CLI (version against the pin) and the sandbox its commands run in."""
    checks = []
    try:
        binary = resolve_codex_bin()
    except CodexTasksError as exc:
        checks.append(Check("codex cli", "warn", f"{exc.message}: agent steps cannot run", INSTALL_HINT))
    else:
        out = _run([binary, "--version"]) or ""
        version = out.split()[-1] if out else "?"
        if version == CODEX_PIN:
            checks.append(Check("codex cli", "ok", f"{version} ({binary})"))
        else:
            checks.append(Check("codex cli", "warn", f"{version} at {binary}; tested with {CODEX_PIN}",
                                "run `make install` for the pinned copy in .tools/, or set CODEX_TASKS_CODEX_BIN"))
    reason = sandbox_unavailable_reason()
    if reason:
        checks.append(Check("sandbox", "warn", reason + ": agent commands and test gates run unconfined",
                            "apt-get install bubblewrap; enable user namespaces (sysctl kernel.unprivileged_userns_clone=1)"))
    else:
        checks.append(Check("sandbox", "ok", f"bubblewrap works ({shutil.which('bwrap')}), user namespaces on"))
    codex_home = os.environ.get("CODEX_HOME")
    if codex_home and Path(codex_home).resolve().is_relative_to("/tmp") and not reason:
        checks.append(Check("CODEX_HOME", "warn", f"{codex_home} is under /tmp: Codex refuses to link its sandbox "
                                                  "helper there, so every agent command fails",
                            "point CODEX_HOME outside /tmp (e.g. ~/.codex)"))
    return checks


def check_disk(workspace: Path) -> Check:
    """Free space where runs, checkpoints and the MLflow store are written."""
    free_gb = shutil.disk_usage(workspace).free / 1e9
    detail = f"{free_gb:.1f} GB free in {workspace}"
    if free_gb < DISK_FAIL_GB:
        return Check("disk", "fail", detail, "free some space: `codex-tasks runs prune --keep N` or delete old checkpoints")
    if free_gb < DISK_WARN_GB:
        return Check("disk", "warn", detail, "checkpoints of a real model need more; free some space")
    return Check("disk", "ok", detail)


def check_git(workspace: Path) -> Check:
    """git (provenance, patches and agent steps use it) and whether the workspace is a repository."""
    version = _run(["git", "--version"])
    if version is None:
        return Check("git", "warn", "git is not installed: provenance, patch and agent steps need it",
                     "apt-get install git")
    top = _run(["git", "rev-parse", "--show-toplevel"], cwd=workspace)
    where = f"repository {top}" if top else "the workspace is not a git repository (provenance records no commit)"
    return Check("git", "ok", f"{version.removeprefix('git version ')}; {where}")


def run_checks(workspace: Path) -> list[Check]:
    """Every check, in the order they are shown."""
    steps: list[Callable[[], Check | list[Check]]] = [
        check_versions, check_torch, check_prefect, lambda: check_mlflow(workspace), check_agent,
        lambda: check_disk(workspace), lambda: check_git(workspace)]
    checks: list[Check] = []
    for step in steps:
        result = step()
        checks += result if isinstance(result, list) else [result]
    return checks


def render(checks: list[Check]) -> str:
    """`✓ name  detail` lines, a `→ hint` under each problem, and a closing count."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{MARKS[c.status]} {c.name.ljust(width)}  {c.detail}")
        if c.hint and c.status != "ok":
            lines.append(f"  {' ' * width}  → {c.hint}")
    problems = [c for c in checks if c.status != "ok"]
    fails = sum(c.status == "fail" for c in checks)
    lines.append("all good" if not problems else f"{fails} failed, {len(problems) - fails} warning(s)")
    return "\n".join(lines)


def as_json(checks: list[Check]) -> dict[str, Any]:
    """`{"ok": bool, "checks": [{name, status, detail, hint}, ...]}`."""
    return {"ok": all(c.status != "fail" for c in checks), "checks": [asdict(c) for c in checks]}
