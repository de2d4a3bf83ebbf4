"""`provenance`: record where a run came from, so its results can be trusted and reproduced.

Writes `provenance.json` (environment, hardware, git state, seeds, parameters, hashes) and
`pip_freeze.txt` in the step folder; with `sbom: true` also a CycloneDX SBOM (`sbom.cdx.json`).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import Field

from codex_tasks import __version__
from codex_tasks.core.files import sha256_file
from codex_tasks.core.hardware import gpus
from codex_tasks.core.redact import redact_obj
from codex_tasks.errors import StepFailed
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "provenance"
CACHE = "never"


class With(WithModel):
    """Record the environment, hardware, git state, seeds, parameters and hashes of a run."""

    outputs_of: list[str] = Field(default_factory=list, description="Step ids whose recorded outputs get their SHA-256 listed.")
    inputs: list[str] = Field(default_factory=list, description="Extra files (relative to the workspace) to hash as inputs.")
    sbom: bool = Field(default=False, description="Also write a CycloneDX SBOM of the environment (`sbom.cdx.json`, offline).")


def _git(ws: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ws), *args], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(ws: Path) -> dict[str, Any]:
    """Commit, branch and dirty flag (`None`s outside a git repository)."""
    commit = _git(ws, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None, "is_repo": _git(ws, "rev-parse", "--git-dir") is not None}
    branch = _git(ws, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(ws, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "branch": branch, "dirty": bool(status), "is_repo": True}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # psutil missing or unsupported platform
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None


def torch_info() -> dict[str, Any]:
    """torch and CUDA versions, read without importing torch (which takes seconds)."""
    try:
        version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        return {"torch": None, "cuda": None}
    cuda = None
    try:
        from importlib.util import find_spec

        spec = find_spec("torch")
        if spec and spec.origin:
            text = (Path(spec.origin).parent / "version.py").read_text()
            for line in text.splitlines():
                if line.startswith("cuda"):
                    value = line.split("=", 1)[1].strip().strip("'\"")
                    cuda = None if value in ("None", "") else value
    except OSError:
        pass
    return {"torch": version, "cuda": cuda}


def pip_freeze() -> list[str]:
    """`name==version` of every installed distribution, sorted (as `pip freeze`, without pip)."""
    seen = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return sorted(seen.values(), key=str.lower)


def _seeds(params: Any) -> dict[str, Any]:
    seeds = {k: v for k, v in dict(params).items() if "seed" in k.lower()}
    if "PYTHONHASHSEED" in os.environ:
        seeds["PYTHONHASHSEED"] = os.environ["PYTHONHASHSEED"]
    return seeds


def run(cfg: With, ctx: StepContext) -> StepResult:
    ctx.step_dir.mkdir(parents=True, exist_ok=True)
    seq = ctx.run_dir / "sequence.yaml"
    outputs_of: dict[str, list[dict[str, Any]]] = {}
    for step_id in cfg.outputs_of:
        recorded = ctx.outputs_of(step_id) if ctx.outputs_of else None
        if recorded is None:
            raise StepFailed(f"outputs_of: no recorded outputs for step {step_id!r} in this run",
                             hint="list steps that ran before this one")
        outputs_of[step_id] = [{"path": o["path"], "sha256": o.get("sha256"), "size": o.get("size")} for o in recorded]
    inputs = []
    for rel in cfg.inputs:
        p = ctx.resolve(rel)
        if not p.is_file():
            raise StepFailed(f"input not found: {rel}")
        inputs.append({"path": rel, "sha256": sha256_file(p), "size": p.stat().st_size})
    freeze = pip_freeze()
    record: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": ctx.run_id,
        "codex_tasks_version": __version__,
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "platform": {"system": platform.system(), "release": platform.release(), "machine": platform.machine(),
                     "platform": platform.platform()},
        "cpu": {"model": cpu_model(), "count": os.cpu_count()},
        "ram_bytes": ram_bytes(),
        "gpus": gpus(),
        **torch_info(),
        "seeds": _seeds(ctx.params),
        "git": git_state(ctx.workspace),
        "sequence_sha256": sha256_file(seq) if seq.is_file() else None,
        "params": dict(ctx.params),
        "inputs": inputs,
        "outputs_of": outputs_of,
        "packages": len(freeze),
    }
    (ctx.step_dir / "pip_freeze.txt").write_text("\n".join(freeze) + "\n")
    out = [str(ctx.step_dir / "provenance.json"), str(ctx.step_dir / "pip_freeze.txt")]
    if cfg.sbom:
        sbom = ctx.step_dir / "sbom.cdx.json"
        exe = Path(sys.executable).parent / "cyclonedx-py"
        cmd = [str(exe) if exe.exists() else "cyclonedx-py", "environment", "--no-validate", "-o", str(sbom), sys.executable]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StepFailed(f"SBOM generation failed: {exc}", hint="install cyclonedx-bom") from exc
        if proc.returncode != 0:
            raise StepFailed("SBOM generation failed", context=proc.stderr[-2000:], hint="install cyclonedx-bom")
        record["sbom"] = sbom.name
        out.append(str(sbom))

    (ctx.step_dir / "provenance.json").write_text(json.dumps(redact_obj(record), indent=2, default=str) + "\n")
    git = record["git"]
    where = f"git {str(git['commit'])[:10]}{' (dirty)' if git['dirty'] else ''}" if git["commit"] else "not a git repository"
    note = f"python {record['python']['version']}, {len(freeze)} packages, {where}"
    ctx.log(note)
    return StepResult(outputs=out, summary={"git_commit": git["commit"], "dirty": git["dirty"], "gpus": len(record["gpus"])}, note=note)
