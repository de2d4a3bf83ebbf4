"""The agent's scratch copy of the workspace, and what the agent changed in it.

The workspace's files (git-tracked and untracked-but-not-ignored ones in a git repository; every
file but caches and `.codex/` otherwise) are copied into the step's folder in the run folder,
`steps/<id>/scratch`, kept there until the step has ended. Files the secret scan flags are left
out, so no secret reaches the model; earlier steps' outputs are copied in even where they are
git-ignored. The copy gets its own git baseline commit: the agent's changes are the diff against
it. A copy rather than a `git worktree`: it includes uncommitted work, and the user's `.git`
(refs, worktree list) is never touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from codex_tasks.core.redact import register_values
from codex_tasks.errors import StepFailed
from codex_tasks.repo.secret_scan import PRUNE_DIRS, forbidden_files, scan_paths

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "codex-tasks", "GIT_AUTHOR_EMAIL": "codex-tasks@localhost",
    "GIT_COMMITTER_NAME": "codex-tasks", "GIT_COMMITTER_EMAIL": "codex-tasks@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """git in the scratch copy, with no hooks, no signing and no user config in the way."""
    proc = subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false", "-c", "core.autocrlf=false",
         *args], cwd=cwd, capture_output=True, env={**os.environ, **_GIT_ENV}, check=False,
    )
    if check and proc.returncode != 0:
        raise StepFailed(f"git {args[0]} failed in the scratch copy", context=proc.stderr.decode(errors="replace")[-2000:])
    return proc


def workspace_files(ws: Path) -> list[str]:
    """The workspace's files, relative: what git would see (tracked + not ignored), else a walk."""
    probe = subprocess.run(["git", "-C", str(ws), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                           check=False)
    if probe.returncode == 0:
        out = subprocess.run(
            ["git", "-C", str(ws), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True,
        ).stdout.decode("utf-8", "surrogateescape")
        return [p for p in out.split("\0") if p and not p.startswith(".codex/")]
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(ws):
        dirnames[:] = [d for d in dirnames if d not in PRUNE_DIRS]
        rel_dir = Path(dirpath).relative_to(ws)
        files.extend((rel_dir / f).as_posix() for f in filenames)
    return files


def secret_flagged(ws: Path, files: list[str]) -> set[str]:
    """Files the secret scan flags (a secret inside, or a forbidden file such as `.env`)."""
    pairs = [(ws / rel, rel) for rel in files if (ws / rel).is_file() and not (ws / rel).is_symlink()]
    findings, _ = scan_paths(pairs, workers=1)
    findings += forbidden_files(pairs, [".env", ".env.*", "!.env.example", "!.env.sample", "!.env.template"])
    register_values(f.secret for f in findings if f.secret)  # and redact them wherever they show up
    return {f.path for f in findings}


@dataclass
class Scratch:
    """A scratch copy: its root and what was left out of it."""

    root: Path
    left_out: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # earlier outputs copied in although git-ignored
    seconds: float = 0.0  # how long making it took (the step summary's `timings`)


def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
        return
    # Content and the executable bit are all git (and so the patch) sees: no copystat/xattrs,
    # which cost as much as the copy itself.
    shutil.copyfile(src, dst)
    mode = src.stat().st_mode
    if mode & 0o111:
        os.chmod(dst, mode & 0o777)


def make_scratch(ws: Path, root: Path, *, extra_files: list[str] = ()) -> Scratch:  # type: ignore[assignment]
    """Copy the workspace into `root` (emptied first), leaving secret-flagged files out; commit a baseline."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    files = workspace_files(ws)
    flagged = secret_flagged(ws, files)
    scratch = Scratch(root, left_out=sorted(flagged))
    listed = set(files)
    for rel in files:
        src = ws / rel
        if rel in flagged or not (src.is_file() or src.is_symlink()):
            continue  # a secret, or deleted but still in the index
        _copy(src, root / rel)
    for rel in extra_files:
        src = ws / rel
        if rel in listed or rel.startswith(".codex/") or not src.is_file():
            continue
        if secret_flagged(ws, [rel]):
            scratch.left_out.append(rel)
            continue
        _copy(src, root / rel)
        scratch.extra.append(rel)
    if not (root / ".git").exists():
        git(root, "init", "-q")
    # Earlier outputs are part of the baseline even when a .gitignore hides them (-f).
    git(root, "add", "-A")
    if scratch.extra:
        git(root, "add", "-f", "--", *scratch.extra)
    git(root, "commit", "-q", "--allow-empty", "--no-verify", "-m", "codex-tasks baseline")
    return scratch


@dataclass
class Changes:
    """The agent's changes against the baseline."""

    patch: str
    status: dict[str, str]  # path -> git status letter (A, M, D, T, ...)

    @property
    def paths(self) -> list[str]:
        return sorted(self.status)


def collect_changes(root: Path, *, force_add: list[str] = ()) -> Changes:  # type: ignore[assignment]
    """Stage everything the agent changed (declared outputs too, even where git-ignored) and diff it."""
    git(root, "add", "-A")
    present = [p for p in force_add if (root / p).exists() or (root / p).is_symlink()]
    if present:
        git(root, "add", "-f", "--", *present)
    patch = git(root, "diff", "--cached", "--binary", "--no-color", "--no-renames", "HEAD").stdout
    raw = git(root, "diff", "--cached", "--name-status", "-z", "--no-renames", "HEAD").stdout.decode(
        "utf-8", "surrogateescape")
    parts = [p for p in raw.split("\0") if p]
    status = {parts[i + 1]: parts[i] for i in range(0, len(parts) - 1, 2)}
    return Changes(patch.decode("utf-8", "surrogateescape"), status)
