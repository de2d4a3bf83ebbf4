"""Wall time of the flagship sequence: a first run, then an unchanged second run (mostly cached).

    .venv/bin/python bench/flagship.py [--keep] [--param K=V]...

Runs in a temporary copy of the repository (tracked and untracked-but-not-ignored files, made a
git repository of its own), so the checkout is never touched. Prints both wall times, their ratio
(goal: under 0.10) and how many steps the second run served from the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODEX = str(Path(sys.executable).parent / "codex-tasks")
FLAGSHIP = "codex_ready_task_sequence.yaml"


def repo_files(root: Path) -> list[str]:
    """The files a fresh clone would have (plus untracked, non-ignored work in progress)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True).stdout.decode()
        return [f for f in out.split("\0") if f and (root / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", ".codex", "__pycache__", ".mypy_cache", ".ruff_cache", "site", "build", "dist"}
        files = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in skip]
            files += [os.path.relpath(os.path.join(dirpath, f), root) for f in filenames]
        return files


def copy_repo(dest: Path, root: Path = ROOT) -> Path:
    """Copy the repository into `dest` and commit it there, so `git` steps see a clean checkout."""
    for rel in repo_files(root):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, target)
    if shutil.which("git"):
        env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
               "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}
        for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
            subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)
    return dest


def timed_run(ws: Path, params: list[str]) -> tuple[float, dict[str, int], int]:
    args = [CODEX, "run", FLAGSHIP, "--quiet"] + [a for p in params for a in ("--param", p)]
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ws, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
    runs = sorted((ws / ".codex" / "runs").iterdir())
    counts = json.loads((runs[-1] / "summary.json").read_text()).get("counts", {})
    return wall, counts, proc.returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy")
    ap.add_argument("--param", action="append", default=[], metavar="K=V")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="codex-flagship-bench-"))
    try:
        ws = copy_repo(tmp / "repo")
        first, c1, rc1 = timed_run(ws, args.param)
        second, c2, rc2 = timed_run(ws, args.param)
        total = sum(c2.values()) or 1
        print(f"flagship first run:  {first:7.1f} s  exit {rc1}  {c1}")
        print(f"flagship second run: {second:7.1f} s  exit {rc2}  {c2}")
        print(f"ratio second/first:  {second / first:7.3f}  (goal < 0.10); "
              f"{c2.get('cached', 0)}/{total} steps cached")
        if args.keep:
            print(f"kept: {ws}")
        return 0 if rc1 == rc2 == 0 else 1
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
