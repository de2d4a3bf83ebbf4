"""Content hashing of files and folders, with a stat-keyed memo.

A file's hash is re-read only when its (size, mtime_ns, inode) changed since it was last hashed,
so unchanged large files cost one `stat` per run. The memo lives in `.codex/cache/hashmemo.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from codex_tasks.core.files import sha256_file, write_json_atomic
from codex_tasks.core.patterns import has_magic, walk_matches

CHUNK = 1 << 20
_SKIP_DIRS = frozenset({".git", ".codex", ".venv", "__pycache__", "node_modules", ".mypy_cache", ".ruff_cache"})


class HashMemo:
    """path -> (size, mtime_ns, ino, sha256), persisted as JSON."""

    def __init__(self, file: Path | None = None) -> None:
        self.file = file
        self._lock = threading.Lock()
        self._data: dict[str, list[Any]] = {}
        self._dirty = False
        if file and file.is_file():
            try:
                loaded = json.loads(file.read_text())
                if isinstance(loaded, dict):
                    self._data = loaded
            except (OSError, ValueError):
                self._data = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"file": self.file}

    def __setstate__(self, data: dict[str, Any]) -> None:
        self.__init__(data["file"])  # type: ignore[misc]

    def file_hash(self, path: Path) -> str:
        st = path.stat()
        key = str(path.resolve())
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        with self._lock:
            hit = self._data.get(key)
        if hit and hit[:3] == stamp:
            return str(hit[3])
        digest = sha256_file(path)
        with self._lock:
            self._data[key] = stamp + [digest]
            self._dirty = True
        return digest

    def save(self) -> None:
        if not self.file or not self._dirty:
            return
        from filelock import FileLock

        self.file.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.file) + ".lock", timeout=60):
            merged: dict[str, Any] = {}
            if self.file.is_file():
                try:
                    merged = json.loads(self.file.read_text())
                except (OSError, ValueError):
                    merged = {}
            with self._lock:
                merged.update(self._data)
                self._dirty = False
            write_json_atomic(self.file, merged, redacted=False, compact=True)


def iter_files(root: Path) -> Iterable[Path]:
    """Every file under a folder, sorted, skipping VCS/venv/cache folders."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            yield Path(dirpath) / name


def path_hash(path: Path, memo: HashMemo | None = None) -> dict[str, Any]:
    """`{"sha256", "size", "files"}` of a file or a folder (content and relative names, not mtimes)."""
    memo = memo or HashMemo()
    if path.is_file():
        return {"sha256": memo.file_hash(path), "size": path.stat().st_size, "files": 1}
    if path.is_dir():
        h = hashlib.sha256()
        size = files = 0
        for f in iter_files(path):
            if not f.is_file():
                continue
            rel = f.relative_to(path).as_posix()
            h.update(rel.encode() + b"\0" + memo.file_hash(f).encode() + b"\n")
            size += f.stat().st_size
            files += 1
        return {"sha256": h.hexdigest(), "size": size, "files": files}
    raise FileNotFoundError(str(path))


def expand(pattern: str, workspace: Path) -> list[Path]:
    """A path or glob (relative to the workspace) -> existing paths, sorted. Globs are
    gitignore-style (core/patterns.py); a matching folder counts once, as a whole."""
    p = Path(pattern).expanduser()
    if has_magic(str(pattern)):
        return sorted(walk_matches(workspace, str(p), skip_dirs=_SKIP_DIRS))
    full = p if p.is_absolute() else workspace / p
    return [full] if full.exists() else []


def deps_hash(patterns: list[str], workspace: Path, memo: HashMemo) -> str:
    """One digest over the content of every path the patterns name (missing ones count as missing)."""
    h = hashlib.sha256()
    for pattern in patterns:
        h.update(b"pattern:" + pattern.encode() + b"\n")
        found = expand(pattern, workspace)
        if not found:
            h.update(b"missing\n")
        for path in found:
            try:
                rel = path.relative_to(workspace).as_posix()
            except ValueError:
                rel = str(path)
            h.update(rel.encode() + b"=" + path_hash(path, memo)["sha256"].encode() + b"\n")
    return h.hexdigest()
