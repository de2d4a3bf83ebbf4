"""`audit`: scan a repository for unfinished work and remote / cost-incurring calls.

Writes, in the step folder: `stub_scan.json` (findings and unparsed files), `capability_mapping.json`
(capability bucket -> files, findings by kind), `cost_incurring_refs.txt` and `audit_summary.md`.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from codex_tasks.core.redact import redact
from codex_tasks.errors import StepFailed
from codex_tasks.repo.audit_defaults import DEFAULT_BUCKETS, DEFAULT_REMOTE_PATTERNS
from codex_tasks.repo.audit_scan import audit_files, bucket_matcher, iter_sources
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "audit"
CACHE = "default"


class Bucket(BaseModel):
    """How a capability bucket is recognised."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(default_factory=list, description="Path globs (relative to `root`) that belong to the bucket.")
    keywords: list[str] = Field(default_factory=list, description="Words that, found in a path or a finding's text, map it to the bucket.")


def _default_buckets() -> dict[str, Bucket]:
    return {name: Bucket(**spec) for name, spec in DEFAULT_BUCKETS.items()}


def _default_remote() -> list[str]:
    return list(DEFAULT_REMOTE_PATTERNS)


class With(WithModel):
    """Scan a repository: TODOs, NotImplementedError, stubs, remote calls, capability buckets."""

    root: str = Field(default=".", description="Folder to scan, relative to the workspace.")
    include: list[str] = Field(default_factory=lambda: ["**/*.py"], description="Globs of files to scan (relative to `root`).")
    exclude: list[str] = Field(default_factory=list, description="Globs of files or folders to skip (`.git`, `.venv`, caches and `.codex` always are).")
    buckets: dict[str, Bucket] = Field(default_factory=_default_buckets, description="Capability name -> path globs and keywords; replaces the default set.")
    remote_patterns: list[str] = Field(
        default_factory=_default_remote,
        description="Dotted names of remote / cost-incurring modules and calls (`requests` also matches `requests.get`; globs like `*.from_pretrained`).",
    )
    workers: int | None = Field(default=None, ge=1, le=1024, description="Processes to scan with (default: every core).")


def deps(cfg: With, ctx: StepContext) -> list[str]:
    root = cfg.root.rstrip("/")
    return [f"{root}/{g}" if root not in ("", ".") else g for g in cfg.include]


def outputs(cfg: With, ctx: StepContext) -> list[str]:
    return [str(ctx.step_dir / n) for n in ("stub_scan.json", "capability_mapping.json", "cost_incurring_refs.txt", "audit_summary.md")]


def run(cfg: With, ctx: StepContext) -> StepResult:
    root = ctx.resolve(cfg.root)
    if not root.is_dir():
        raise StepFailed(f"audit root is not a folder: {root}")
    items = iter_sources(root, cfg.include, cfg.exclude)
    results = audit_files(
        items, cfg.remote_patterns, workers=cfg.workers, progress=lambda d, t: ctx.progress(d, t, "files")
    )
    if not items:
        ctx.progress(0, 0, "files")
    match = bucket_matcher({k: v.model_dump() for k, v in cfg.buckets.items()})
    findings: list[dict[str, Any]] = []
    unparsed = sorted(r.path for r in results if not r.parsed)
    mapping: dict[str, dict[str, Any]] = {
        name: {"files": [], "findings": 0, "by_kind": {}} for name in cfg.buckets
    }
    unmapped_files = []
    for r in results:
        file_buckets = match(r.path, "")
        for b in file_buckets:
            mapping[b]["files"].append(r.path)
        if not file_buckets:
            unmapped_files.append(r.path)
        for f in r.findings:
            f.buckets = sorted(set(file_buckets) | set(match("", f.text)))
            findings.append({"path": f.path, "line": f.line, "kind": f.kind, "text": f.text, "buckets": f.buckets})
            for b in f.buckets:
                mapping[b]["findings"] += 1
                mapping[b]["by_kind"][f.kind] = mapping[b]["by_kind"].get(f.kind, 0) + 1
    findings.sort(key=lambda f: (f["path"], f["line"], f["kind"]))
    for found in findings:  # a finding keeps its file and line; a secret in the quoted source line is masked
        found["text"] = redact(str(found["text"]))
    counts = Counter(f["kind"] for f in findings)
    for kind in ("todo", "not_implemented", "stub", "remote"):
        ctx.metric(f"audit.{kind}", counts.get(kind, 0))

    d = ctx.step_dir
    d.mkdir(parents=True, exist_ok=True)
    (d / "stub_scan.json").write_text(
        json.dumps({"root": str(root), "files_scanned": len(results), "findings": findings, "unparsed": unparsed}, indent=2) + "\n"
    )
    (d / "capability_mapping.json").write_text(
        json.dumps({"buckets": mapping, "unmapped_files": unmapped_files}, indent=2) + "\n"
    )
    remote = [f for f in findings if f["kind"] == "remote"]
    (d / "cost_incurring_refs.txt").write_text("".join(f"{f['path']}:{f['line']}: {f['text']}\n" for f in remote))
    (d / "audit_summary.md").write_text(_summary_md(root, len(results), counts, unparsed, mapping, findings))
    note = (
        f"{len(results)} files: {counts.get('todo', 0)} TODO, {counts.get('not_implemented', 0)} NotImplementedError, "
        f"{counts.get('stub', 0)} stubs, {counts.get('remote', 0)} remote refs, {len(unparsed)} unparsed"
    )
    ctx.log(note)
    return StepResult(
        outputs=outputs(cfg, ctx),
        summary={"files": len(results), **{k: counts.get(k, 0) for k in ("todo", "not_implemented", "stub", "remote")},
                 "unparsed": len(unparsed)},
        note=note,
    )


def _summary_md(root: Any, files: int, counts: Counter[str], unparsed: list[str], mapping: dict[str, Any],
                findings: list[dict[str, Any]]) -> str:
    lines = [
        f"# Audit of `{root}`",
        "",
        f"{files} files scanned.",
        "",
        "| kind | count |",
        "| --- | ---: |",
        *[f"| {k} | {counts.get(k, 0)} |" for k in ("todo", "not_implemented", "stub", "remote")],
        "",
        "## Capability buckets",
        "",
        "| bucket | files | findings |",
        "| --- | ---: | ---: |",
        *[f"| {name} | {len(v['files'])} | {v['findings']} |" for name, v in mapping.items()],
        "",
    ]
    if unparsed:
        lines += ["## Files that do not parse", "", *[f"- `{p}`" for p in unparsed], ""]
    if findings:
        lines += ["## First findings", ""]
        lines += [f"- `{f['path']}:{f['line']}` {f['kind']}: {f['text'][:100]}" for f in findings[:30]]
        lines.append("")
    return "\n".join(lines)
