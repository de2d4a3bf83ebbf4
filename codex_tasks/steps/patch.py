"""`patch`: apply unified diffs and `*** Begin Patch` text, all files or none, with rollback.

Every hunk of every patch is verified in memory before any file is written; on a failure the tree
is left byte-identical and the step fails naming the file and hunk. The original bytes of every
touched file are kept in `rollback/` in the step folder; `rollback(run_dir, step_id)` (the CLI's
`codex-tasks rollback RUN STEP`) puts them back.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from codex_tasks.core.files import write_json_atomic
from codex_tasks.errors import PatchConflict, StepFailed
from codex_tasks.repo.patch_apply import plan_patches
from codex_tasks.repo.patch_parse import parse_patch
from codex_tasks.repo.patch_write import commit_plan, rollback_bundle, write_bundle
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "patch"
CACHE = "opt_in"
SUPPORTS_DRY_RUN = True  # `run --dry-run` checks every hunk and writes nothing


def cacheable(cfg: With) -> bool:
    """Only a check is worth caching: an applied patch changed the tree it would be keyed by."""
    return bool(cfg.check_only)


class With(WithModel):
    """Apply patches to a tree, all files or none."""

    patches: list[str] = Field(
        min_length=1,
        description=(
            "Patches to apply, in order. An entry containing a newline is inline patch text; "
            "otherwise it is a patch file path relative to the workspace. Unified diffs (git-style "
            "or plain) and the `*** Begin Patch` format are accepted."
        ),
    )
    root: str = Field(default=".", description="Folder the paths inside the patches are relative to (`a/`, `b/` stripped).")

    @field_validator("root")
    @classmethod
    def _inside_workspace(cls, value: str) -> str:
        """A patch never writes outside the workspace: no absolute root, no `..`."""
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError(f"root {value!r} leaves the workspace; give a folder inside it")
        return value
    check_only: bool = Field(default=False, description="Only verify that every hunk applies; write nothing.")
    three_way: bool = Field(
        default=False,
        description=(
            "When a hunk's context does not match, rebuild the pre-image from the git repository "
            "(the diff's `index` line) and merge; conflicts still fail the step with nothing written."
        ),
    )


def _load_texts(cfg: With, ctx: StepContext) -> list[tuple[str, str]]:
    texts = []
    for k, entry in enumerate(cfg.patches, 1):
        if "\n" in entry:
            texts.append((f"patches[{k}] (inline)", entry))
            continue
        path = ctx.resolve(entry)
        if not path.is_file():
            raise StepFailed(f"patch file not found: {entry}", hint="paths are relative to the workspace")
        texts.append((entry, path.read_bytes().decode("utf-8", "surrogateescape")))
    return texts


def deps(cfg: With, ctx: StepContext) -> list[str]:
    return [p for p in cfg.patches if "\n" not in p]


def outputs(cfg: With, ctx: StepContext) -> list[str]:
    return []


def run(cfg: With, ctx: StepContext) -> StepResult:
    root = ctx.resolve(cfg.root)
    parsed = []
    for source, text in _load_texts(cfg, ctx):
        parsed.extend(parse_patch(text, source))
    ctx.progress(0, len(parsed), "files")
    plan = plan_patches(root, parsed, three_way=cfg.three_way)
    files = plan.summary()
    report = {"root": str(root), "check_only": cfg.check_only or ctx.dry_run, "files": files}
    ctx.step_dir.mkdir(parents=True, exist_ok=True)
    report_path = ctx.step_dir / "patch_report.json"
    if cfg.check_only or ctx.dry_run:
        report["applied"] = False
        write_json_atomic(report_path, report)
        ctx.log(f"patch check: {len(files)} file(s) would change; nothing written")
        ctx.progress(len(parsed), len(parsed), "files")
        return StepResult(
            outputs=[str(report_path)],
            summary={"files": len(files), "applied": False},
            note=f"{len(files)} file(s) would change (check only)",
        )
    bundle = ctx.step_dir / "rollback"
    write_bundle(plan, bundle)
    commit_plan(plan)
    for f in files:
        ctx.log(f"{f['action']} {f['path']} (+{f['added']} -{f['removed']})")
    report["applied"] = True
    report["rollback"] = str(bundle)
    write_json_atomic(report_path, report)
    ctx.progress(len(parsed), len(parsed), "files")
    changed = [str(Path(root) / f["path"]) for f in files if f["action"] != "delete"]
    return StepResult(
        outputs=[str(report_path), *changed],
        summary={"files": len(files), "applied": True, "rollback": str(bundle)},
        note=f"applied to {len(files)} file(s); rollback bundle kept",
    )


def rollback(run_dir: Path | str, step_id: str, *, force: bool = False) -> list[str]:
    """Restore the files a `patch` step changed, from its rollback bundle; returns their paths.

    This is `codex-tasks rollback RUN STEP`. Refuses (`StepFailed`) when a file changed after the
    patch, unless `force`.
    """
    bundle = Path(run_dir) / "steps" / step_id / "rollback"
    if not bundle.is_dir():
        raise StepFailed(f"step {step_id!r} of this run kept no rollback bundle (was it a patch step that applied?)")
    return rollback_bundle(bundle, force=force)


__all__ = ["NAME", "CACHE", "With", "run", "rollback", "PatchConflict"]
