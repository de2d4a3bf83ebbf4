"""Parse patches into one model: unified diffs (git-style and plain) and the `*** Begin Patch` format.

Parsing never touches the file system. Lines are kept without their line ending; where a file's
ending goes is decided when the patch is applied (`patch_apply`), so CRLF files and files without
a final newline survive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from codex_tasks.errors import PatchConflict

Op = Literal["update", "add", "delete"]

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_NO_EOL = "\\ No newline at end of file"


@dataclass
class Hunk:
    """One hunk: the lines it expects (`old`) and the lines it writes (`new`)."""

    old: list[str]
    new: list[str]
    old_start: int | None = None  # 1-based line of the first old line (unified diffs only)
    anchor: str | None = None  # `@@ <line>` context anchor (Begin Patch only)
    at_eof: bool = False  # must match at the end of the file (`*** End of File`)
    old_no_eol: bool = False  # the old side's last line has no newline
    new_no_eol: bool = False  # the new side's last line has no newline
    header: str = ""  # the hunk's header line, for messages
    # (" " | "-" | "+", text, ending) in order; ending is "\r\n"/"\n" when the patch text is
    # CRLF-aware (then it is written as given), else None (the file's own ending is used).
    ops: list[tuple[str, str, str | None]] = field(default_factory=list)

    def add(self, tag: str, text: str, eol: str | None = None) -> None:
        self.ops.append((tag, text, eol))
        if tag != "+":
            self.old.append(text)
        if tag != "-":
            self.new.append(text)


@dataclass
class FilePatch:
    """The changes to one file."""

    op: Op
    path: str  # the file the patch reads (for `add`: the file it creates)
    new_path: str | None = None  # set when the file is moved / renamed
    hunks: list[Hunk] = field(default_factory=list)
    new_mode: str | None = None  # git `new file mode` / `new mode`, e.g. "100755"
    binary: bool = False
    old_blob: str | None = None  # git `index <old>..<new>` abbreviated blob id (for three-way)
    crlf: bool = False  # the patch text itself used CRLF (used for the lines of added files)

    @property
    def target(self) -> str:
        return self.new_path or self.path


class _Lines(list[str]):
    """The patch's lines without endings; `eol[i]` is line i's ending when the text has CRs."""

    eol: list[str | None]


def _split_lines(text: str) -> _Lines:
    """Split on LF only, dropping a trailing CR but remembering it (a diff that changes a file's
    line endings carries them on its lines)."""
    raw = text.split("\n")
    if raw and raw[-1] == "":
        raw.pop()
    lines = _Lines(ln[:-1] if ln.endswith("\r") else ln for ln in raw)
    aware = "\r\n" in text
    lines.eol = [("\r\n" if ln.endswith("\r") else "\n") if aware else None for ln in raw]
    return lines


def _eol(lines: list[str], i: int) -> str | None:
    return lines.eol[i] if isinstance(lines, _Lines) else None


def parse_patch(text: str, source: str = "<patch>") -> list[FilePatch]:
    """Parse patch text of either format. Raises `PatchConflict` when it is not a patch."""
    lines = _split_lines(text)
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if first == "*** Begin Patch":
        patches = _parse_begin_patch(lines, source)
    else:
        patches = _parse_unified(lines, source)
    if not patches:
        raise PatchConflict(f"{source}: no file changes found (not a unified diff or *** Begin Patch text)")
    crlf = text.count("\r\n") * 2 > text.count("\n")
    for fp in patches:
        fp.crlf = crlf
    return patches


# --- unified diffs -------------------------------------------------------------------------------


def _unquote_git_path(raw: str) -> str:
    """Git quotes paths with unusual characters as C strings: "a/b\\tc"."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        body = raw[1:-1]
        out = bytearray()
        i = 0
        escapes = {"n": b"\n", "t": b"\t", '"': b'"', "\\": b"\\", "a": b"\a", "b": b"\b", "r": b"\r"}
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                if nxt in escapes:
                    out += escapes[nxt]
                    i += 2
                    continue
                if re.match(r"[0-7]{3}", body[i + 1 : i + 4]):
                    out.append(int(body[i + 1 : i + 4], 8))
                    i += 4
                    continue
            out += ch.encode("utf-8", "surrogateescape")
            i += 1
        return out.decode("utf-8", "surrogateescape")
    return raw


def _header_path(raw: str, prefix: str) -> str | None:
    """The path of a `---`/`+++` line: timestamp dropped, `/dev/null` -> None, `a/`/`b/` stripped."""
    raw = raw.rstrip()
    if not raw.startswith('"') and "\t" in raw:
        raw = raw.split("\t", 1)[0]
    path = _unquote_git_path(raw)
    if path == "/dev/null":
        return None
    if path.startswith(prefix):
        path = path[len(prefix) :]
    return path


def _git_header_paths(line: str) -> tuple[str | None, str | None]:
    """`diff --git a/x b/y` -> ("x", "y") when unambiguous."""
    rest = line[len("diff --git ") :]
    m = re.match(r'^("(?:[^"\\]|\\.)*")\s+("(?:[^"\\]|\\.)*")$', rest)
    if m:
        return _strip(_unquote_git_path(m.group(1)), "a/"), _strip(_unquote_git_path(m.group(2)), "b/")
    if rest.startswith("a/") and " b/" in rest:
        # Same path on both sides is the common case: split in the middle.
        half = (len(rest) - 1) // 2
        if rest[half] == " " and rest[2:half] == rest[half + 3 :]:
            return rest[2:half], rest[half + 3 :]
        a, b = rest.split(" b/", 1)
        return a[2:], b
    return None, None


def _strip(path: str, prefix: str) -> str:
    return path[len(prefix) :] if path.startswith(prefix) else path


def _parse_unified(lines: _Lines, source: str) -> list[FilePatch]:
    patches: list[FilePatch] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        if line.startswith("diff --git "):
            i = _parse_git_file(lines, i, patches, source)
        elif line.startswith("--- ") and i + 1 < n and lines[i + 1].startswith("+++ "):
            old = _header_path(line[4:], "a/")
            new = _header_path(lines[i + 1][4:], "b/")
            fp = _file_patch_from_paths(old, new, source, i + 1)
            i = _parse_hunks(lines, i + 2, fp, source)
            patches.append(fp)
        else:
            i += 1  # commentary, `diff -u` command lines, `Index:` lines ...
    return patches


def _file_patch_from_paths(old: str | None, new: str | None, source: str, lineno: int) -> FilePatch:
    if old is None and new is None:
        raise PatchConflict(f"{source}:{lineno}: both sides of the file header are /dev/null")
    if old is None:
        assert new is not None
        return FilePatch("add", new)
    if new is None:
        return FilePatch("delete", old)
    return FilePatch("update", old, new_path=new if new != old else None)


def _parse_git_file(lines: list[str], i: int, patches: list[FilePatch], source: str) -> int:
    a, b = _git_header_paths(lines[i])
    op: Op = "update"
    rename_from = rename_to = None
    new_mode = None
    old_blob: str | None = None
    binary = False
    old_hdr: str | None = None
    new_hdr: str | None = None
    have_headers = False
    i += 1
    n = len(lines)
    while i < n and not lines[i].startswith(("diff --git ", "@@ ")):
        line = lines[i]
        if line.startswith("new file mode "):
            op, new_mode = "add", line.split()[-1]
        elif line.startswith("deleted file mode "):
            op = "delete"
        elif line.startswith("new mode "):
            new_mode = line.split()[-1]
        elif line.startswith(("rename from ", "copy from ")):
            rename_from = _unquote_git_path(line.split(" ", 2)[2])
        elif line.startswith(("rename to ", "copy to ")):
            rename_to = _unquote_git_path(line.split(" ", 2)[2])
        elif line.startswith("index ") and ".." in line:
            old_blob = line.split()[1].split("..")[0]
        elif line.startswith("Binary files ") or line == "GIT binary patch":
            binary = True
        elif line.startswith("--- ") and i + 1 < n and lines[i + 1].startswith("+++ "):
            old_hdr = _header_path(line[4:], "a/")
            new_hdr = _header_path(lines[i + 1][4:], "b/")
            have_headers = True
            i += 2
            break
        i += 1
    if have_headers:
        fp = _file_patch_from_paths(old_hdr, new_hdr, source, i)
    else:
        old_p = rename_from or a
        new_p = rename_to or b
        if old_p is None or new_p is None:
            raise PatchConflict(f"{source}:{i}: cannot read the paths of `diff --git` header")
        if op == "add":
            fp = FilePatch("add", new_p)
        elif op == "delete":
            fp = FilePatch("delete", old_p)
        else:
            fp = FilePatch("update", old_p, new_path=new_p if new_p != old_p else None)
    if rename_from and rename_to and fp.op == "update":
        fp.path, fp.new_path = rename_from, rename_to
    fp.new_mode = new_mode
    fp.old_blob = old_blob if old_blob and set(old_blob) != {"0"} else None
    fp.binary = binary
    if binary:
        # Skip the binary payload; applying it is refused later with a clear message.
        while i < n and not lines[i].startswith("diff --git "):
            i += 1
        patches.append(fp)
        return i
    i = _parse_hunks(lines, i, fp, source)
    patches.append(fp)
    return i


def _parse_hunks(lines: list[str], i: int, fp: FilePatch, source: str) -> int:
    n = len(lines)
    while i < n:
        m = _HUNK_HEADER.match(lines[i])
        if not m:
            break
        old_start = int(m.group(1))
        old_count = int(m.group(2)) if m.group(2) is not None else 1
        new_count = int(m.group(4)) if m.group(4) is not None else 1
        hunk = Hunk([], [], old_start=old_start, header=lines[i])
        i += 1
        old_left, new_left = old_count, new_count
        last = ""
        while i < n and (old_left > 0 or new_left > 0 or lines[i].startswith("\\")):
            line = lines[i]
            tag = line[:1]
            if line.startswith("\\"):
                # "\ No newline at end of file" applies to the line just before it.
                if last in (" ", "-"):
                    hunk.old_no_eol = True
                if last in (" ", "+"):
                    hunk.new_no_eol = True
                i += 1
                continue
            if tag == " " or line == "":
                hunk.add(" ", line[1:], _eol(lines, i))
                old_left -= 1
                new_left -= 1
                last = " "
            elif tag == "-":
                hunk.add("-", line[1:], _eol(lines, i))
                old_left -= 1
                last = "-"
            elif tag == "+":
                hunk.add("+", line[1:], _eol(lines, i))
                new_left -= 1
                last = "+"
            else:
                raise PatchConflict(
                    f"{source}:{i + 1}: {fp.target}: hunk {hunk.header!r} ends early "
                    f"({old_left} old / {new_left} new lines missing)"
                )
            i += 1
        if old_left < 0 or new_left < 0 or old_left > 0 or new_left > 0:
            raise PatchConflict(f"{source}: {fp.target}: hunk {hunk.header!r} has the wrong line counts")
        fp.hunks.append(hunk)
    return i


# --- *** Begin Patch -----------------------------------------------------------------------------


def _parse_begin_patch(lines: list[str], source: str) -> list[FilePatch]:
    start = next(k for k, ln in enumerate(lines) if ln.strip())
    i = start + 1
    n = len(lines)
    patches: list[FilePatch] = []
    ended = False
    while i < n:
        line = lines[i]
        stripped = line.strip()
        if stripped == "*** End Patch":
            ended = True
            break
        if line.startswith("*** Add File: "):
            fp = FilePatch("add", line[len("*** Add File: ") :].strip())
            i += 1
            hunk = Hunk([], [], old_start=1, header=line)
            while i < n and lines[i].startswith("+"):
                hunk.add("+", lines[i][1:], _eol(lines, i))
                i += 1
            fp.hunks.append(hunk)
            patches.append(fp)
        elif line.startswith("*** Delete File: "):
            patches.append(FilePatch("delete", line[len("*** Delete File: ") :].strip()))
            i += 1
        elif line.startswith("*** Update File: "):
            fp = FilePatch("update", line[len("*** Update File: ") :].strip())
            i += 1
            if i < n and lines[i].startswith("*** Move to: "):
                fp.new_path = lines[i][len("*** Move to: ") :].strip()
                i += 1
            i = _parse_chunks(lines, i, fp, source)
            if not fp.hunks and fp.new_path is None:
                raise PatchConflict(f"{source}:{i}: *** Update File: {fp.path} has no changes")
            patches.append(fp)
        elif not stripped:
            i += 1
        else:
            raise PatchConflict(f"{source}:{i + 1}: unexpected line in *** Begin Patch text: {line[:80]!r}")
    if not ended:
        raise PatchConflict(f"{source}: *** Begin Patch without *** End Patch")
    if not patches:
        raise PatchConflict(f"{source}: *** Begin Patch text changes no file")
    return patches


def _parse_chunks(lines: list[str], i: int, fp: FilePatch, source: str) -> int:
    n = len(lines)
    hunk: Hunk | None = None
    while i < n:
        line = lines[i]
        if line.startswith("*** End of File"):
            if hunk is not None:
                hunk.at_eof = True
            i += 1
            continue
        if line.startswith("*** "):
            break
        if line.startswith("@@"):
            anchor = line[2:].strip() or None
            hunk = Hunk([], [], anchor=anchor, header=line)
            fp.hunks.append(hunk)
            i += 1
            continue
        if hunk is None:
            hunk = Hunk([], [], header="@@")
            fp.hunks.append(hunk)
        if line == "" and _only_blank_until_directive(lines, i):
            i += 1  # blank lines before `*** End Patch` are layout, not context
            continue
        tag = line[:1]
        if tag in (" ", "-", "+") or line == "":
            hunk.add(tag or " ", line[1:], _eol(lines, i))
        else:
            raise PatchConflict(f"{source}:{i + 1}: {fp.path}: unexpected line in a change: {line[:80]!r}")
        i += 1
    fp.hunks = [h for h in fp.hunks if h.old or h.new]
    return i


def _only_blank_until_directive(lines: list[str], i: int) -> bool:
    for line in lines[i:]:
        if line.startswith("*** "):
            return True
        if line != "":
            return False
    return True
