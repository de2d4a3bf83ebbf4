"""Path patterns: one dialect everywhere, gitignore's (through `pathspec`).

Used for a step's `deps` and output globs, the `corpus` / `exclude` of tokenize, the audit's
`include` / `exclude` and buckets, the safety scan and the archive. Paths are `/`-separated and
relative to a root (the workspace, usually):

- `*` and `?` stay inside one path part; `**` spans parts (`docs/**/*.md`).
- A pattern without a `/` (other than a trailing one) matches at any depth: `*.py` matches
  `setup.py` and `pkg/mod.py`. A pattern with a `/` is anchored to the root: `src/*.py` matches
  `src/a.py` only; a leading `/` anchors a pattern without one (`/*.py`: top-level files only).
- A pattern that matches a folder matches everything in it: `build/`, `data/*`, `.venv/**`.
- In a list, a later `!pattern` takes back what earlier ones matched: the last match wins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

from pathspec import GitIgnoreSpec

MAGIC = "*?["


def has_magic(pattern: str) -> bool:
    """Whether `pattern` is a glob rather than a plain path."""
    return any(c in pattern for c in MAGIC)


def _clean(pattern: str) -> str:
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    return pat


@lru_cache(maxsize=512)
def compile_patterns(patterns: tuple[str, ...]) -> GitIgnoreSpec:
    """A gitignore-style matcher for these patterns, in order."""
    return GitIgnoreSpec.from_lines([_clean(p) for p in patterns])


def glob_match(path: str, pattern: str) -> bool:
    """True if the relative path matches the pattern."""
    return compile_patterns((pattern,)).match_file(path)


def match_any(path: str, patterns: Iterable[str]) -> bool:
    """True if the relative path is matched by the list (the last matching pattern wins, `!` negates)."""
    return compile_patterns(tuple(patterns)).match_file(path)


def walk_matches(root: Path, pattern: str, *, skip_dirs: frozenset[str] = frozenset()) -> Iterator[Path]:
    """Existing paths under `root` that `pattern` matches, in sorted walk order. A folder that
    matches is yielded once, not its contents. The walk starts at the pattern's plain leading
    folders (`src/**/*.py` walks `src/` only) and never enters a folder named in `skip_dirs`.
    An absolute pattern (`/data/*.txt`) is matched from the file system's root."""
    pat = _clean(pattern)
    absolute = Path(pat).is_absolute()  # here a leading `/` is the file system's root
    anchored = absolute or "/" in pat.rstrip("/")
    parts = pat.strip("/").split("/") if anchored else [pat]
    base = Path("/") if absolute else root
    i = 0
    while anchored and i < len(parts) - 1 and not has_magic(parts[i]):
        i += 1
    base = base.joinpath(*parts[:i]) if i else base
    if not base.is_dir():
        return
    rest = ("/" + "/".join(parts[i:])) if anchored else pat
    spec = compile_patterns((rest,))
    for dirpath, dirnames, filenames in os.walk(base):
        rel_dir = os.path.relpath(dirpath, base).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        keep = []
        for d in sorted(dirnames):
            if d in skip_dirs:
                continue
            if spec.match_file(rel_dir + d):
                yield Path(dirpath) / d
            else:
                keep.append(d)
        dirnames[:] = keep
        for name in sorted(filenames):
            if spec.match_file(rel_dir + name):
                yield Path(dirpath) / name
