"""Write a verified patch plan, keeping a rollback bundle of the original bytes; restore from it.

The bundle (`manifest.json` + `files/N`) holds the original bytes and modes of every touched file
and which files did not exist, so a rollback restores the tree byte for byte.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from codex_tasks.errors import StepFailed
from codex_tasks.repo.patch_apply import FileChange, PatchPlan, sha256_bytes


def _write_atomic(path: Path, data: bytes, mode: int | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".codex-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode if mode is not None else 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _remove(path: Path, root: Path) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    # Drop folders the deletion left empty, as git does (never the root itself).
    parent = path.parent
    real_root = Path(os.path.realpath(root))
    while parent != real_root and real_root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def write_bundle(plan: PatchPlan, bundle_dir: Path) -> Path:
    """Keep the original bytes of every file the plan touches; returns the manifest path."""
    files_dir = bundle_dir / "files"
    files_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for k, ch in enumerate(plan.changes.values()):
        entry: dict[str, Any] = {"path": ch.rel, "existed": ch.before is not None, "mode": ch.mode}
        if ch.before is not None:
            (files_dir / str(k)).write_bytes(ch.before)
            entry["blob"] = f"files/{k}"
            entry["sha256_before"] = sha256_bytes(ch.before)
        entry["sha256_after"] = sha256_bytes(ch.after) if ch.after is not None else None
        entries.append(entry)
    manifest = bundle_dir / "manifest.json"
    manifest.write_text(json.dumps({"root": str(os.path.realpath(plan.root)), "files": entries}, indent=2) + "\n")
    return manifest


def commit_plan(plan: PatchPlan) -> None:
    """Write every planned change; if a write fails midway, put back what was written."""
    done: list[FileChange] = []
    failing: FileChange | None = None
    try:
        for ch in plan.changes.values():
            if ch.before == ch.after:
                continue
            failing = ch  # named in the error: the restore loop below reuses no name of it
            if ch.after is None:
                _remove(ch.real, plan.root)
            else:
                _write_atomic(ch.real, ch.after, ch.mode)
            done.append(ch)
    except OSError as exc:
        for written in reversed(done):
            if written.before is None:
                _remove(written.real, plan.root)
            else:
                _write_atomic(written.real, written.before, written.mode)
        name = failing.rel if failing is not None else "?"
        raise StepFailed(f"writing {name} failed ({exc}); the files written before it were restored") from exc


def rollback_bundle(bundle_dir: Path, *, force: bool = False) -> list[str]:
    """Restore the original bytes recorded in a rollback bundle; returns the restored paths.

    Refuses (`StepFailed`) when a file was changed after the patch, unless `force`.
    """
    manifest_path = bundle_dir / "manifest.json"
    if not manifest_path.is_file():
        raise StepFailed(f"no rollback bundle at {bundle_dir}")
    manifest = json.loads(manifest_path.read_text())
    root = Path(manifest["root"])
    changed = []
    pending = []
    for entry in manifest["files"]:
        path = root / entry["path"]
        current = sha256_bytes(path.read_bytes()) if path.is_file() else None
        if current == entry.get("sha256_before"):
            continue  # already as it was
        if current != entry["sha256_after"]:
            changed.append(entry["path"])
        pending.append(entry)
    if changed and not force:
        raise StepFailed(
            f"refusing to roll back: {', '.join(changed)} changed after the patch was applied",
            hint="pass force=True (codex-tasks rollback --force) to restore the original bytes anyway",
        )
    restored = []
    for entry in pending:
        path = root / entry["path"]
        if entry["existed"]:
            _write_atomic(path, (bundle_dir / entry["blob"]).read_bytes(), entry.get("mode"))
        else:
            _remove(path, root)
        restored.append(entry["path"])
    return restored
