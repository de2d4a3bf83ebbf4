"""Apply parsed patches to a tree: every hunk verified in memory first, then all files or none.

File contents are handled as bytes, line by line, so line endings (LF, CRLF, mixed), a missing
final newline and non-UTF-8 bytes survive. Paths are confined to the root: absolute paths, `..`,
`.git/` and symlinks that lead outside are refused. Writing the plan and the rollback bundle
is `patch_write`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codex_tasks.errors import PatchConflict
from codex_tasks.repo.patch_parse import FilePatch, Hunk

Line = tuple[bytes, bytes]  # (content without its ending, ending: b"\n" | b"\r\n" | b"")


class PathRefused(PatchConflict):
    """A path in a patch points outside the root (absolute, `..`, a symlink) or into `.git`."""


@dataclass
class FileChange:
    """The planned new state of one file."""

    rel: str  # path relative to the (real) root
    real: Path
    before: bytes | None  # None: did not exist
    after: bytes | None  # None: deleted
    mode: int | None = None  # permission bits to set on the written file
    hunks: int = 0
    added: int = 0
    removed: int = 0


@dataclass
class PatchPlan:
    """Every file a set of patches changes, computed without writing anything."""

    root: Path
    changes: dict[Path, FileChange] = field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        out = []
        for ch in self.changes.values():
            if ch.before == ch.after:
                continue
            action = "add" if ch.before is None else "delete" if ch.after is None else "update"
            out.append({"path": ch.rel, "action": action, "hunks": ch.hunks, "added": ch.added, "removed": ch.removed})
        return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- paths --------------------------------------------------------------------------------------


def confine(root: Path, rel: str) -> tuple[Path, str]:
    """The real path of `rel` under `root` and its root-relative name; `PathRefused` if it escapes."""
    if not rel or "\x00" in rel:
        raise PathRefused(f"empty or invalid path {rel!r} in patch")
    if rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":") or rel.startswith("~"):
        raise PathRefused(f"absolute path refused: {rel}")
    parts = rel.replace("\\", "/").split("/")
    if ".." in parts:
        raise PathRefused(f"path with '..' refused: {rel}")
    if ".git" in parts:
        raise PathRefused(f"path inside .git refused: {rel}")
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(real_root / rel))
    try:
        inside = real.relative_to(real_root)
    except ValueError:
        raise PathRefused(f"path leaves the root through a symlink: {rel} -> {real}") from None
    if not inside.parts:
        raise PathRefused(f"path is the root itself: {rel}")
    return real, inside.as_posix()


# --- lines --------------------------------------------------------------------------------------


def split_lines(data: bytes) -> list[Line]:
    lines: list[Line] = []
    start = 0
    n = len(data)
    while start < n:
        end = data.find(b"\n", start)
        if end < 0:
            lines.append((data[start:], b""))
            break
        if end > start and data[end - 1 : end] == b"\r":
            lines.append((data[start : end - 1], b"\r\n"))
        else:
            lines.append((data[start:end], b"\n"))
        start = end + 1
    return lines


def join_lines(lines: list[Line]) -> bytes:
    return b"".join(c + e for c, e in lines)


def _dominant_eol(lines: list[Line], default: bytes = b"\n") -> bytes:
    crlf = sum(1 for _, e in lines if e == b"\r\n")
    lf = sum(1 for _, e in lines if e == b"\n")
    if crlf == lf == 0:
        return default
    return b"\r\n" if crlf > lf else b"\n"


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _matches(lines: list[Line], pos: int, old: list[bytes], loose: bool) -> bool:
    if pos < 0 or pos + len(old) > len(lines):
        return False
    for k, want in enumerate(old):
        have = lines[pos + k][0]
        if have == want:
            continue
        if loose and have.rstrip() == want.rstrip():
            continue
        return False
    return True


def _locate(lines: list[Line], hunk: Hunk, cursor: int, loose: bool, shift: int = 0) -> int | None:
    """Where the hunk's old lines are, at or after `cursor`; None when they are not there."""
    old = [_enc(t) for t in hunk.old]
    n = len(lines)
    if hunk.old_start is not None and hunk.anchor is None:
        # Unified diff: the stated line first, then the nearest offset (as `git apply` does).
        expected = (max(hunk.old_start - 1, 0) if old else hunk.old_start) + shift
        expected = min(max(expected, 0), n)
        if not old:
            return expected if expected >= cursor else None
        if hunk.old_no_eol:
            pos = n - len(old)
            return pos if pos >= cursor and _matches(lines, pos, old, False) else None
        for delta in range(0, n + 1):
            for pos in (expected - delta, expected + delta) if delta else (expected,):
                if pos >= cursor and _matches(lines, pos, old, False):
                    return pos
        return None
    # *** Begin Patch: context-located, after an optional `@@ anchor` line.
    if hunk.anchor is not None:
        want = _enc(hunk.anchor).strip()
        found = next((k for k in range(cursor, n) if lines[k][0].strip() == want), None)
        if found is None:
            return None
        cursor = found + 1
    if not old:
        return n  # pure insertion: at the end of the file
    if hunk.at_eof:
        pos = n - len(old)
        for lenient in (False, True):
            if pos >= cursor and _matches(lines, pos, old, lenient):
                return pos
        return None
    for lenient in (False, True) if loose else (False,):
        for pos in range(cursor, n - len(old) + 1):
            if _matches(lines, pos, old, lenient):
                return pos
    return None


def _apply_hunk(lines: list[Line], pos: int, hunk: Hunk, eol: bytes) -> list[Line]:
    """Replace the hunk's old lines at `pos` with its new lines, keeping context lines' bytes."""
    old_region = lines[pos : pos + len(hunk.old)]
    reaches_eof = pos + len(hunk.old) >= len(lines)
    had_final_eol = not lines or lines[-1][1] != b""
    new_region: list[Line] = []
    k = 0
    for tag, text, own_eol in hunk.ops:
        if tag == " ":
            line = old_region[k]
            if own_eol is not None and line[1]:
                line = (line[0], _enc(own_eol))  # a CRLF-aware diff may change endings of context
            new_region.append(line)
            k += 1
        elif tag == "-":
            k += 1
        else:
            new_region.append((_enc(text), _enc(own_eol) if own_eol is not None else eol))
    out = lines[:pos] + new_region + lines[pos + len(hunk.old) :]
    # Every line but the last needs an ending; the last one follows the patch or the file.
    for j in range(len(out) - 1):
        if out[j][1] == b"":
            out[j] = (out[j][0], eol)
    if out and reaches_eof:
        last_c, last_e = out[-1]
        if hunk.new_no_eol and reaches_eof:
            out[-1] = (last_c, b"")
        elif hunk.old_no_eol:
            out[-1] = (last_c, last_e or eol)
        elif reaches_eof:
            out[-1] = (last_c, (last_e or eol) if had_final_eol else b"")
    return out


# --- planning -----------------------------------------------------------------------------------


class _Tree:
    """A copy-on-write view of the files under the root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.changes: dict[Path, FileChange] = {}

    def get(self, rel: str) -> tuple[Path, str, bytes | None]:
        real, name = confine(self.root, rel)
        if real in self.changes:
            return real, name, self.changes[real].after
        if real.is_dir():
            raise PatchConflict(f"{rel}: is a directory")
        data = real.read_bytes() if real.is_file() else None
        return real, name, data

    def put(self, real: Path, name: str, data: bytes | None, mode: int | None = None) -> FileChange:
        ch = self.changes.get(real)
        if ch is None:
            before = real.read_bytes() if real.is_file() else None
            ch = FileChange(name, real, before, data)
            if before is not None:
                ch.mode = stat.S_IMODE(real.stat().st_mode)
            self.changes[real] = ch
        ch.after = data
        if mode is not None:
            ch.mode = mode
        return ch


def _apply_hunks(
    data: bytes, fp: FilePatch, loose: bool, errors: list[str], label: str
) -> tuple[bytes | None, int, int]:
    lines = split_lines(data)
    eol = _dominant_eol(lines, b"\r\n" if fp.crlf else b"\n")
    cursor = 0
    added = removed = 0
    failed = False
    shift = 0  # how far earlier hunks moved the lines below them
    for number, hunk in enumerate(fp.hunks, 1):
        pos = _locate(lines, hunk, cursor, loose, shift)
        if pos is None:
            where = f" near line {hunk.old_start}" if hunk.old_start else ""
            first = hunk.old[0] if hunk.old else ""
            errors.append(
                f"{label}: hunk {number} ({hunk.header.strip() or '@@'}) does not apply: "
                f"expected lines not found{where} (first: {first[:60]!r})"
            )
            failed = True
            continue
        lines = _apply_hunk(lines, pos, hunk, eol)
        cursor = pos + len(hunk.new)
        shift += len(hunk.new) - len(hunk.old)
        added += sum(1 for t, _, _ in hunk.ops if t == "+")
        removed += sum(1 for t, _, _ in hunk.ops if t == "-")
    if failed:
        return None, added, removed
    return join_lines(lines), added, removed


def _mode_bits(git_mode: str | None) -> int | None:
    if not git_mode:
        return None
    return 0o755 if git_mode.endswith("755") else 0o644


def plan_patches(root: Path, patches: list[FilePatch], *, three_way: bool = False) -> PatchPlan:
    """Verify every hunk against the tree and compute the new bytes of every file.

    Raises `PatchConflict` naming every file and hunk that does not apply; writes nothing.
    """
    if not root.is_dir():
        raise PatchConflict(f"patch root does not exist or is not a folder: {root}")
    tree = _Tree(root)
    errors: list[str] = []
    for fp in patches:
        try:
            _plan_one(tree, fp, errors, three_way)
        except PathRefused:
            raise
        except PatchConflict as exc:
            errors.append(exc.message)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise PatchConflict(
            f"{errors[0]}{more}; nothing was written",
            context="\n".join(errors),
            hint="regenerate the patch against the current tree, or set three_way: true in a git repository",
        )
    return PatchPlan(root, tree.changes)


def _plan_one(tree: _Tree, fp: FilePatch, errors: list[str], three_way: bool) -> None:
    label = fp.target
    if fp.binary:
        raise PatchConflict(f"{label}: binary patches are not supported")
    real, name, data = tree.get(fp.path)
    if fp.op == "add":
        if data is not None:
            raise PatchConflict(f"{label}: cannot add, the file already exists")
        new, added, _ = _apply_hunks(b"", fp, False, errors, label)
        if new is not None:
            ch = tree.put(real, name, new, _mode_bits(fp.new_mode) or 0o644)
            ch.hunks, ch.added = len(fp.hunks), added
        return
    if data is None:
        raise PatchConflict(f"{label}: cannot {fp.op}, the file does not exist")
    if fp.op == "delete":
        if fp.hunks:
            # A git delete diff carries the whole old content: it must still be what is on disk.
            rest, _, removed = _apply_hunks(data, fp, False, errors, label)
            if rest is None:
                return
            if rest.strip():
                raise PatchConflict(f"{label}: cannot delete, the file has changed since the patch was made")
        ch = tree.put(real, name, None)
        ch.removed = len(split_lines(data))
        return
    local: list[str] = []
    new, added, removed = _apply_hunks(data, fp, fp.hunks[0].old_start is None if fp.hunks else False, local, label)
    if new is None and three_way:
        new = _three_way(tree.root, fp, data, local)
    if new is None:
        errors.extend(local)
        return
    mode = _mode_bits(fp.new_mode)
    if fp.new_path and fp.new_path != fp.path:
        new_real, new_name, existing = tree.get(fp.new_path)
        if existing is not None:
            raise PatchConflict(f"{label}: cannot move {fp.path} there, the file already exists")
        old_mode = tree.changes[real].mode if real in tree.changes else stat.S_IMODE(real.stat().st_mode)
        tree.put(real, name, None)
        ch = tree.put(new_real, new_name, new, mode or old_mode)
    else:
        ch = tree.put(real, name, new, mode)
    ch.hunks += len(fp.hunks)
    ch.added += added
    ch.removed += removed


def _three_way(root: Path, fp: FilePatch, current: bytes, errors: list[str]) -> bytes | None:
    """Rebuild the patch's pre-image from git and merge (`git merge-file`); None on conflict."""
    if not fp.old_blob or shutil.which("git") is None:
        errors.append(f"{fp.target}: three-way merge needs a git diff with an `index` line")
        return None
    got = subprocess.run(
        ["git", "-C", str(root), "cat-file", "blob", fp.old_blob], capture_output=True, check=False
    )
    if got.returncode != 0:
        errors.append(f"{fp.target}: three-way merge: blob {fp.old_blob} is not in the repository")
        return None
    base = got.stdout
    theirs, _, _ = _apply_hunks(base, fp, False, errors, fp.target)
    if theirs is None:
        return None
    with tempfile.TemporaryDirectory(prefix="codex-3way-") as tmp:
        paths = []
        for name, blob in (("ours", current), ("base", base), ("theirs", theirs)):
            p = Path(tmp) / name
            p.write_bytes(blob)
            paths.append(str(p))
        merged = subprocess.run(["git", "merge-file", "-p", "-q", *paths], capture_output=True, check=False)
    if merged.returncode != 0:
        errors.append(f"{fp.target}: three-way merge has conflicts")
        return None
    del errors[:]  # the merge resolved what the plain apply could not
    return merged.stdout
