"""Checkpoint folders: written atomically, verified by SHA-256, pruned by recency and a metric.

A checkpoint is `<root>/step-00000050/` holding the files the trainer writes, `state.json` (step,
data position, RNG states, metrics, config) and, written last, `checksums.json` (SHA-256 and size of
every other file). It is built in `.tmp-step-00000050-<pid>/` and renamed into place, so a kill at
any moment leaves either the whole checkpoint or none of it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tasks.core.files import sha256_file, write_json_atomic
from codex_tasks.core.process import is_alive

MANIFEST = "checksums.json"
STATE = "state.json"
CURRENT = "training.json"  # beside the checkpoint folder: which training it continues (see `start_training`)
_NAME = re.compile(r"^step-(\d+)$")
_TMP = re.compile(r"^\.tmp-step-\d+-(\d+)$")


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(root: Path, step: int, write_files: Callable[[Path], None], state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically: files, `state.json`, `checksums.json`, then one rename."""
    root.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(step)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    write_files(tmp)
    (tmp / STATE).write_text(json.dumps(state, indent=2, sort_keys=True, default=str), encoding="utf-8")
    manifest = {}
    for f in sorted(tmp.iterdir()):
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
        manifest[f.name] = {"sha256": sha256_file(f), "size": f.stat().st_size}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    with open(tmp / MANIFEST, "rb") as fh:
        os.fsync(fh.fileno())
    _fsync_dir(tmp)
    final = root / name
    if final.exists():  # e.g. a cancel right after a periodic save of the same step
        old = root / f".old-{name}-{os.getpid()}"
        os.rename(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.rename(tmp, final)
    _fsync_dir(root)
    return final


@dataclass
class CheckpointInfo:
    path: Path
    step: int
    valid: bool
    reason: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)


def _quick_check(path: Path) -> str:
    """'' when the manifest lists files that all exist with their recorded sizes, else why not."""
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {MANIFEST} (an unfinished write?)"
    except (OSError, ValueError) as e:
        return f"unreadable {MANIFEST}: {e}"
    for fname, facts in manifest.items():
        f = path / fname
        if not f.is_file():
            return f"{fname} is missing"
        if f.stat().st_size != facts.get("size"):
            return f"{fname} has {f.stat().st_size} bytes, expected {facts.get('size')}"
    if STATE not in manifest:
        return f"{STATE} is not in {MANIFEST}"
    return ""


def verify_checkpoint(path: Path) -> str:
    """'' when every file matches its SHA-256 in the manifest, else the first mismatch."""
    reason = _quick_check(path)
    if reason:
        return reason
    manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    for fname, facts in manifest.items():
        if sha256_file(path / fname) != facts["sha256"]:
            return f"{fname} does not match its SHA-256"
    return ""


def list_checkpoints(root: Path) -> list[CheckpointInfo]:
    """Every `step-*` folder, oldest first, with a quick validity check (sizes, not hashes)."""
    if not root.is_dir():
        return []
    infos = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if not (m and p.is_dir()):
            continue
        reason = _quick_check(p)
        state: dict[str, Any] = {}
        if not reason:
            try:
                state = json.loads((p / STATE).read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                reason = f"unreadable {STATE}: {e}"
        metrics = {k: float(v) for k, v in state.get("metrics", {}).items() if isinstance(v, int | float)}
        infos.append(CheckpointInfo(p, int(m.group(1)), not reason, reason, metrics, state))
    return sorted(infos, key=lambda c: c.step)


def start_training(root: Path, training: str) -> None:
    """Mark `training` as the one the checkpoints in `root` continue (`training.json` beside `root`).

    Checkpoints of earlier trainings stay on disk but are ignored by `resume: auto` and by
    retention, so a forced rerun from scratch never resumes into, nor deletes, an older training.
    """
    root.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root.parent / CURRENT, {"training": training, "folder": root.name, "time": time.time()})


def current_training(root: Path) -> str | None:
    """The training the checkpoints in `root` continue; None for a folder made before trainings had ids."""
    try:
        value = json.loads((root.parent / CURRENT).read_text(encoding="utf-8")).get("training")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def of_training(info: CheckpointInfo, training: str | None) -> bool:
    """True when `info` belongs to `training` (every checkpoint does when the folder has no current training)."""
    return training is None or info.state.get("training") == training


def newest_valid(root: Path, log: Callable[[str], None], accept: Callable[[CheckpointInfo], bool] | None = None) -> CheckpointInfo | None:
    """The newest checkpoint whose hashes verify (and that `accept` takes); corrupt ones are reported."""
    for info in reversed(list_checkpoints(root)):
        reason = info.reason or verify_checkpoint(info.path)
        if reason:
            log(f"checkpoint {info.path.name} is corrupt ({reason}); trying the previous one")
            continue
        if accept is not None and not accept(info):
            continue
        return info
    return None


def plan_retention(
    infos: list[CheckpointInfo], keep_last: int, keep_best: int, metric: str, mode: str
) -> tuple[list[CheckpointInfo], list[CheckpointInfo]]:
    """(keep, remove): the newest `keep_last` valid ones, plus the best `keep_best` of the older ones.

    Invalid checkpoints are removed; valid ones lacking the metric are never "best". So at most
    `keep_last + keep_best` remain, exactly that many when enough carry the metric.
    """
    valid = sorted((c for c in infos if c.valid), key=lambda c: c.step)
    last = valid[-keep_last:] if keep_last > 0 else []
    older = [c for c in valid if c not in last and metric in c.metrics]
    older.sort(key=lambda c: (c.metrics[metric] if mode == "min" else -c.metrics[metric], -c.step))
    keep = sorted(last + older[:keep_best], key=lambda c: c.step)
    remove = [c for c in infos if c not in keep]
    return keep, remove


def _stale_tmp_dirs(root: Path) -> list[Path]:
    """Temp folders of writers that are gone (a killed run's half-written checkpoint)."""
    stale = []
    for p in root.iterdir() if root.is_dir() else []:
        m = _TMP.match(p.name)
        if not m:
            continue
        pid = int(m.group(1))
        if not is_alive(pid) or pid == os.getpid():
            stale.append(p)
    return stale


def prune_checkpoints(
    root: Path, keep_last: int, keep_best: int, metric: str, mode: str, *, dry_run: bool = False,
    training: str | None = None,
) -> dict[str, Any]:
    """Apply retention to a checkpoint folder (to one `training`'s checkpoints only, when given; the
    others are left alone); returns what was (or would be) kept and removed."""
    infos = [c for c in list_checkpoints(root) if training is None or c.state.get("training") == training]
    keep, remove = plan_retention(infos, keep_last, keep_best, metric, mode)
    stale = _stale_tmp_dirs(root)
    if not dry_run:
        for c in remove:
            shutil.rmtree(c.path, ignore_errors=True)
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)
    return {
        "kept": [c.path.name for c in keep],
        "removed": [c.path.name for c in remove],
        "corrupt": {c.path.name: c.reason for c in remove if not c.valid},
        "stale_temp": [p.name for p in stale],
        "dry_run": dry_run,
    }
