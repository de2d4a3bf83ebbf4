"""`safety_scan`: find secrets and forbidden files; redact; fail closed.

Findings go to `findings.json` in the step folder, each with a redacted preview (never the secret
itself) and a fingerprint an allowlist can name. The exact values found are registered with the
redaction hook, so nothing codex-tasks writes afterwards contains them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from codex_tasks.core.files import write_json_atomic
from codex_tasks.core.redact import register_values
from codex_tasks.errors import StepFailed
from codex_tasks.repo.secret_scan import (
    DEFAULT_FORBID,
    ExtraRule,
    apply_allowlist,
    forbidden_files,
    iter_files,
    scan_paths,
)
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "safety_scan"
CACHE = "opt_in"


class Rule(BaseModel):
    """An extra detection rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Rule name shown in findings.")
    regex: str = Field(description="Python regular expression; group 1 (or the whole match) is the secret.")
    severity: Literal["high", "medium", "low"] = Field(default="high", description="Severity of its findings.")


class Allowlist(BaseModel):
    """What is allowed to look like a secret."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(default_factory=list, description="Globs (relative to the workspace) whose findings are ignored, e.g. `tests/fixtures/**`.")
    fingerprints: list[str] = Field(default_factory=list, description="Fingerprints (from findings.json) of known, accepted values.")


def _default_forbid() -> list[str]:
    return list(DEFAULT_FORBID)


class With(WithModel):
    """Scan files for secrets and forbidden files."""

    paths: list[str] | None = Field(
        default=None, description="Files or folders to scan, relative to the workspace (default: the workspace and this run's folder)."
    )
    exclude: list[str] = Field(default_factory=list, description="Globs of paths not to scan (`.git`, `.venv`, caches and `.codex` are always skipped inside folders).")
    rules: list[Rule] = Field(default_factory=list, description="Extra regex rules, on top of the built-in provider and assignment rules.")
    allowlist: Allowlist = Field(default_factory=Allowlist, description="Paths and fingerprints to ignore; a line with `# codex: allow-secret` is always ignored.")
    fail_on: Literal["any", "high", "none"] = Field(default="any", description="Fail the step on any finding, only on high-severity ones, or never.")
    forbid: list[str] = Field(
        default_factory=_default_forbid,
        description="Globs of files that must not exist (`!glob` excepts); default: `.env` files and `.github/workflows/**`.",
    )
    max_file_bytes: int = Field(default=2 << 20, ge=1, le=1 << 30, description="Files larger than this are skipped (as are binaries).")
    workers: int | None = Field(default=None, ge=1, le=1024, description="Processes to scan with (default: every core).")


def outputs(cfg: With, ctx: StepContext) -> list[str]:
    return [str(ctx.step_dir / "findings.json")]


def run(cfg: With, ctx: StepContext) -> StepResult:
    roots = [ctx.resolve(p) for p in cfg.paths] if cfg.paths is not None else [ctx.workspace, ctx.run_dir]
    files = []
    seen = set()
    for root in roots:
        if not root.exists():
            raise StepFailed(f"scan path does not exist: {root}")
        base = ctx.workspace if root.resolve().is_relative_to(ctx.workspace.resolve()) else root
        for path, rel in iter_files(root, base, cfg.exclude):
            key = path.resolve()
            # Our own report folder holds only redacted previews.
            if key in seen or key.is_relative_to(ctx.step_dir.resolve()):
                continue
            seen.add(key)
            files.append((path, rel))
    extra = [ExtraRule(r.name, r.regex, r.severity) for r in cfg.rules]
    findings, scanned = scan_paths(
        files, extra=extra, max_bytes=cfg.max_file_bytes, workers=cfg.workers,
        progress=lambda done, total: ctx.progress(done, total, "files"),
    )
    findings += forbidden_files(files, cfg.forbid)
    register_values(f.secret for f in findings if f.secret)
    kept, allowed = apply_allowlist(findings, cfg.allowlist.paths, cfg.allowlist.fingerprints)
    ctx.step_dir.mkdir(parents=True, exist_ok=True)
    out = ctx.step_dir / "findings.json"
    write_json_atomic(out, [f.public() for f in kept])
    high = sum(1 for f in kept if f.severity == "high")
    for f in kept[:50]:
        ctx.log(f"{f.severity}: {f.path}:{f.line}: {f.rule}: {f.preview}")
    ctx.metric("findings", len(kept))
    summary = {"files": scanned, "findings": len(kept), "high": high, "allowlisted": allowed}
    note = f"{len(kept)} finding(s) ({high} high) in {scanned} file(s); {allowed} allowlisted"
    failing = kept if cfg.fail_on == "any" else [f for f in kept if f.severity == "high"] if cfg.fail_on == "high" else []
    if failing:
        first = failing[0]
        raise StepFailed(
            f"{len(failing)} secret(s) or forbidden file(s) found; first: {first.path}:{first.line} ({first.rule})",
            context="\n".join(f"{f.path}:{f.line}: {f.rule} [{f.severity}] {f.preview}" for f in failing[:20]),
            hint="remove the secret, or allowlist it (allowlist.paths / allowlist.fingerprints / `# codex: allow-secret`)",
        )
    return StepResult(outputs=[str(out)], summary=summary, note=note)
