"""Bring a gated agent change back to the workspace, now or later (`codex-tasks apply RUN STEP`).

Two routes, one rollback bundle: the step's declared outputs come back on their own path, byte for
byte (so an output under a git-ignored folder, or a binary report, still arrives); everything else
the agent changed comes back as `agent.patch` (text only). What is kept in the step folder for a
later apply: `agent.patch`, `agent_outputs/<path>` and `agent_change.json` (what to apply).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from codex_tasks.core.files import write_json_atomic
from codex_tasks.errors import StepFailed
from codex_tasks.repo.patch_apply import FileChange, PatchPlan, confine, plan_patches
from codex_tasks.repo.patch_parse import parse_patch
from codex_tasks.repo.patch_write import commit_plan, write_bundle

CHANGE_FILE = "agent_change.json"
OUTPUTS_DIR = "agent_outputs"


def keep_change(step_dir: Path, scratch: Path, patch: str, outputs: list[str]) -> dict[str, Any]:
    """Keep the patch and the declared outputs' bytes in the step folder; returns the change record."""
    (step_dir / "agent.patch").write_text(patch, encoding="utf-8", errors="surrogateescape")
    kept = step_dir / OUTPUTS_DIR
    if kept.exists():
        shutil.rmtree(kept)
    for rel in outputs:
        src = scratch / rel
        if src.is_file() and not src.is_symlink():
            (kept / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, kept / rel)
    record = {"patch": "agent.patch", "outputs": [o for o in outputs if (kept / o).is_file()], "applied": False}
    write_json_atomic(step_dir / CHANGE_FILE, record)
    return record


def apply_change(step_dir: Path, workspace: Path) -> list[str]:
    """Apply a kept change to `workspace`, all files or none, with a rollback bundle in
    `step_dir/rollback`; returns the paths written."""
    record_path = step_dir / CHANGE_FILE
    if not record_path.is_file():
        raise StepFailed(f"no kept agent change in {step_dir}", hint="only agent steps keep a change to apply")
    record = json.loads(record_path.read_text())
    if record.get("applied"):
        raise StepFailed(f"the agent change in {step_dir} was applied already",
                         hint=f"roll it back first: codex-tasks rollback RUN {step_dir.name}")
    patch = (step_dir / record["patch"]).read_text(encoding="utf-8", errors="surrogateescape")
    plan = plan_patches(workspace, parse_patch(patch, "agent.patch")) if patch.strip() else PatchPlan(workspace, {})
    for rel in record.get("outputs", []):
        real, inside = confine(workspace, rel)
        before = real.read_bytes() if real.is_file() else None
        after = (step_dir / OUTPUTS_DIR / rel).read_bytes()
        plan.changes[real] = FileChange(inside, real, before, after, mode=None)
    bundle = step_dir / "rollback"
    if bundle.exists():
        shutil.rmtree(bundle)
    write_bundle(plan, bundle)
    commit_plan(plan)
    record["applied"] = True
    write_json_atomic(record_path, record)
    return sorted(ch.rel for ch in plan.changes.values() if ch.before != ch.after)


def describe_changes(run_dir: Path, step_ids: list[str]) -> str:
    """Every agent step's kept change in a run: whether it was applied, its outputs, its patch."""
    parts: list[str] = []
    for sid in step_ids:
        d = run_dir / "steps" / sid
        record_path = d / CHANGE_FILE
        if not record_path.is_file():
            continue
        record = json.loads(record_path.read_text())
        parts.append(f"# step {sid}: {'applied' if record.get('applied') else 'kept, not applied'}\n")
        parts += [f"# declared output: {o}\n" for o in record.get("outputs", [])]
        patch = (d / record["patch"]).read_text(encoding="utf-8", errors="replace")
        parts.append(patch if patch.endswith("\n") or not patch else patch + "\n")
    return "".join(parts) or "no agent changes in this run\n"
