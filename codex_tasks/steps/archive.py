"""`archive`: zip a run's artifacts with a SHA-256 manifest; `verify_zip` checks one.

The zip holds `MANIFEST.json` (`{"files": [{"path", "size", "sha256"}]}`) next to the files.
Files a `safety_scan` step of this run flagged are refused unless `allow_flagged`.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import Field

from codex_tasks.core.files import sha256_file, write_json_atomic
from codex_tasks.core.patterns import match_any
from codex_tasks.errors import StepFailed
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "archive"
CACHE = "never"
MANIFEST = "MANIFEST.json"


class With(WithModel):
    """Zip artifacts with a SHA-256 manifest."""

    paths: list[str] | None = Field(
        default=None, description="Files or folders to archive, relative to the workspace (default: this run's folder and the logs dir)."
    )
    out: str | None = Field(default=None, description="Zip file to write (default: `codex_run_artifacts.zip` in the run folder).")
    exclude: list[str] = Field(default_factory=list, description="Globs (relative to the workspace) to leave out.")
    allow_flagged: bool = Field(default=False, description="Archive files a safety_scan of this run flagged (refused by default).")


def _flagged(ctx: StepContext) -> set[str]:
    """Workspace-relative paths that safety_scan steps of this run reported."""
    flagged: set[str] = set()
    for findings in (ctx.run_dir / "steps").glob("*/findings.json"):
        try:
            for f in json.loads(findings.read_text()):
                flagged.add(str(f["path"]))
        except (ValueError, KeyError, TypeError):
            continue
    return flagged


def _default_paths(ctx: StepContext) -> list[Path]:
    paths = [ctx.run_dir]
    logs = ctx.params.get("logs_dir") or ctx.params.get("default_logs_dir")
    if logs:
        p = ctx.resolve(str(logs))
        if p.exists():
            paths.append(p)
    return paths


def run(cfg: With, ctx: StepContext) -> StepResult:
    out = ctx.resolve(cfg.out) if cfg.out else ctx.run_dir / "codex_run_artifacts.zip"
    roots = [ctx.resolve(p) for p in cfg.paths] if cfg.paths is not None else _default_paths(ctx)
    ws = ctx.workspace.resolve()
    files: dict[str, Path] = {}
    for root in roots:
        if not root.exists():
            raise StepFailed(f"archive path does not exist: {root}")
        candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())
        for p in candidates:
            rp = p.resolve()
            if rp == out.resolve() or p.name.startswith(f".{out.name}."):
                continue
            rel = rp.relative_to(ws).as_posix() if rp.is_relative_to(ws) else rp.as_posix().lstrip("/")
            if cfg.exclude and match_any(rel, cfg.exclude):
                continue
            files[rel] = p
    flagged = sorted(set(files) & _flagged(ctx))
    if flagged and not cfg.allow_flagged:
        raise StepFailed(
            f"refusing to archive {len(flagged)} file(s) the safety scan flagged: {', '.join(flagged[:5])}",
            hint="exclude them, or set allow_flagged: true",
        )
    entries = []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    total = len(files)
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for k, (rel, p) in enumerate(sorted(files.items()), 1):
            entries.append({"path": rel, "size": p.stat().st_size, "sha256": sha256_file(p)})
            zf.write(p, rel)
            if k % 50 == 0 or k == total:
                ctx.progress(k, total, "files")
        manifest = {"created": datetime.now(UTC).isoformat(timespec="seconds"), "run_id": ctx.run_id, "files": entries}
        zf.writestr(MANIFEST, json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, out)
    (ctx.step_dir / MANIFEST).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(ctx.step_dir / MANIFEST, manifest)
    size = out.stat().st_size
    note = f"{len(entries)} file(s) -> {out.name} ({size} bytes)"
    ctx.log(note)
    return StepResult(outputs=[str(out), str(ctx.step_dir / MANIFEST)],
                      summary={"files": len(entries), "zip": str(out), "bytes": size, "flagged_included": len(flagged)},
                      note=note)


@dataclass
class VerifyResult:
    """What `verify_zip` found."""

    ok: bool
    files: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "files": self.files, "problems": self.problems}


def verify_zip(path: Path | str) -> VerifyResult:
    """Check every file in the zip against its MANIFEST.json (size and SHA-256), and that no file
    is missing or unlisted. This is `codex-tasks verify ZIP` (exit 0 when `ok`, else 1)."""
    problems: list[str] = []
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        return VerifyResult(False, 0, [f"not a readable zip: {exc}"])
    with zf:
        names = set(zf.namelist())
        if MANIFEST not in names:
            return VerifyResult(False, 0, [f"no {MANIFEST} in the zip"])
        try:
            manifest = json.loads(zf.read(MANIFEST))
            entries = manifest["files"]
        except (ValueError, KeyError) as exc:
            return VerifyResult(False, 0, [f"{MANIFEST} is not valid: {exc}"])
        listed = set()
        for e in entries:
            name = e["path"]
            listed.add(name)
            if name not in names:
                problems.append(f"missing: {name}")
                continue
            h = hashlib.sha256()
            size = 0
            try:
                with zf.open(name) as fh:
                    while block := fh.read(1 << 20):
                        h.update(block)
                        size += len(block)
            except (zipfile.BadZipFile, OSError) as exc:
                problems.append(f"unreadable: {name} ({exc})")
                continue
            if size != e["size"]:
                problems.append(f"size differs: {name} ({size} != {e['size']})")
            if h.hexdigest() != e["sha256"]:
                problems.append(f"sha256 differs: {name}")
        for extra in sorted(names - listed - {MANIFEST}):
            if not extra.endswith("/"):
                problems.append(f"not in manifest: {extra}")
    return VerifyResult(not problems, len(entries), problems)
