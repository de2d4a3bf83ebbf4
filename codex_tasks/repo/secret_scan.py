"""Find secrets and forbidden files in trees: fast, parallel over files, never echoing a secret.

Per file: skip binaries (a NUL byte in the first 8 KiB) and files over a size limit, then run the
provider rules whose keywords occur in the text, and the assignment rules on the lines that name a
secret-ish thing. Findings carry a redacted preview and a fingerprint (the first 16 hex digits of
the SHA-256 of the secret) that an allowlist can name.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from codex_tasks.core.patterns import match_any
from codex_tasks.core.secret_rules import (
    _NAME_KEYWORDS,
    PRIVATE_KEY_HEADER,
    _token_rules_for,
    find_assignments,
    is_code_path,
    redact_tokens,
)

MASK = "[REDACTED]"
ALLOW_MARKERS = ("codex: allow-secret", "pragma: allowlist secret")
PRUNE_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache",
     ".pytest_cache", ".tox", ".nox", ".codex", ".eggs"}
)
DEFAULT_FORBID = [".env", ".env.*", "!.env.example", "!.env.sample", "!.env.template", "!.env.dist",
                  ".github/workflows/**"]


@dataclass
class Finding:
    """One secret (or forbidden file) at one place."""

    path: str
    line: int
    rule: str
    severity: str
    preview: str
    fingerprint: str
    secret: str = ""  # kept in memory only (for allowlists and the redaction hook); never written

    def public(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("secret")
        return d


@dataclass(frozen=True)
class ExtraRule:
    """A user rule: a regex (group 1, or the whole match, is the secret)."""

    name: str
    regex: str
    severity: str = "high"


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _preview(line: str, start: int, end: int) -> str:
    text = line[:start] + MASK + line[end:]
    text = redact_tokens(text, MASK).strip()
    return text if len(text) <= 160 else text[:157] + "..."


def _placeholder_password(value: str) -> bool:
    """`{pw}`, `${PW}`, `<password>`, `%s`, `****`, `password`: a template, not a credential."""
    return any(c in value for c in "{}$<>%") or set(value) <= {"*", "x", "X", "."} or value.lower() in (
        "password", "pass", "passwd", "pwd", "secret", "changeme"
    )


def _line_bounds(text: str, offset: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return start, len(text) if end < 0 else end


def scan_text(text: str, path: str, extra: list[ExtraRule] | None = None) -> list[Finding]:
    """Every secret in one file's text (allow markers honoured, duplicates dropped)."""
    findings: list[Finding] = []
    seen: set[tuple[int, str]] = set()
    line_starts: list[int] | None = None

    def lineno(offset: int) -> int:
        nonlocal line_starts
        if line_starts is None:
            line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        return bisect.bisect_right(line_starts, offset)

    def add(rule: str, severity: str, offset: int, secret: str) -> None:
        if not secret or (rule == "connection-string-password" and _placeholder_password(secret)):
            return
        n = lineno(offset)
        if (n, secret) in seen:
            return
        ls, le = _line_bounds(text, offset)
        line = text[ls:le]
        if any(marker in line for marker in ALLOW_MARKERS):
            return
        seen.add((n, secret))
        col = offset - ls
        first_line_secret = secret.split("\n", 1)[0]
        findings.append(
            Finding(path, n, rule, severity, _preview(line, col, col + len(first_line_secret)), fingerprint(secret), secret)
        )

    key_blocks: list[tuple[int, int]] = []
    for rule in _token_rules_for(text):
        for m in rule.pattern.finditer(text):
            g = rule.group
            add(rule.name, rule.severity, m.start(g), m.group(g))
            if rule.name == "private-key":
                key_blocks.append(m.span())
    if "PRIVATE KEY" in text:
        for m in PRIVATE_KEY_HEADER.finditer(text):
            if not any(s <= m.start() < e for s, e in key_blocks):
                ls, le = _line_bounds(text, m.start())
                add("private-key", "high", m.start(), text[m.start() : le])
    for user_rule in extra or ():
        pattern = re.compile(user_rule.regex)
        for m in pattern.finditer(text):
            g = 1 if pattern.groups else 0
            add(user_rule.name, user_rule.severity, m.start(g), m.group(g) or "")
    lower = text.lower()
    if _NAME_KEYWORDS.search(lower):
        code = is_code_path(path)
        done_lines: set[int] = set()
        for m in _NAME_KEYWORDS.finditer(lower):
            ls, le = _line_bounds(text, m.start())
            if ls in done_lines:
                continue
            done_lines.add(ls)
            line = text[ls:le]
            for hit in find_assignments(line, code=code):
                rule_name = "password-assignment" if hit.password else "secret-assignment"
                add(rule_name, "medium", ls + hit.start, hit.value)
    findings.sort(key=lambda f: f.line)
    return findings


def scan_file(path: Path, rel: str, extra: list[ExtraRule] | None = None, max_bytes: int = 2 << 20) -> list[Finding]:
    """Scan one file; binaries and files over `max_bytes` are skipped."""
    try:
        if path.stat().st_size > max_bytes:
            return []
        data = path.read_bytes()
    except OSError:
        return []
    if b"\0" in data[:8192]:
        return []
    return scan_text(data.decode("utf-8", "replace"), rel, extra)


def _scan_chunk(items: list[tuple[str, str]], extra: list[ExtraRule], max_bytes: int) -> tuple[int, list[Finding]]:
    out: list[Finding] = []
    for abs_path, rel in items:
        out.extend(scan_file(Path(abs_path), rel, extra, max_bytes))
    return len(items), out


def iter_files(root: Path, rel_base: Path | None, exclude: list[str]) -> Iterator[tuple[Path, str]]:
    """Regular files under `root` (symlinks not followed, the usual caches pruned), with their
    paths relative to `rel_base` (or `root`)."""
    base = rel_base or root
    if root.is_file():
        yield root, _rel(root, base)
        return
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = [
            n for n in dirnames if n not in PRUNE_DIRS and not (exclude and match_any(_rel(d / n, base), exclude))
        ]
        for name in filenames:
            p = d / name
            rel = _rel(p, base)
            if exclude and match_any(rel, exclude):
                continue
            if p.is_symlink() or not p.is_file():
                continue
            yield p, rel


def _rel(p: Path, base: Path) -> str:
    try:
        return p.relative_to(base).as_posix()
    except ValueError:
        return p.as_posix()


def scan_paths(
    files: Iterable[tuple[Path, str]],
    *,
    extra: list[ExtraRule] | None = None,
    max_bytes: int = 2 << 20,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Finding], int]:
    """Scan files, in parallel processes when there are many; returns (findings, files scanned)."""
    items = [(str(p), rel) for p, rel in files]
    extra = extra or []
    total = len(items)
    workers = workers or min(os.cpu_count() or 1, 8)
    findings: list[Finding] = []
    if workers <= 1 or total < 200:
        for k, (abs_path, rel) in enumerate(items, 1):
            findings.extend(scan_file(Path(abs_path), rel, extra, max_bytes))
            if progress and (k % 100 == 0 or k == total):
                progress(k, total)
    else:
        # the process pool (multiprocessing, logging) loads only for a scan large enough to use it
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        chunk = max(16, min(256, total // (workers * 8) or 1))
        chunks = [items[i : i + chunk] for i in range(0, total, chunk)]
        done = 0
        # fork is unsafe once other threads run (Prefect's pool): then forkserver.
        method = "fork" if threading.active_count() == 1 else "forkserver"
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(method)) as pool:
                futures = [pool.submit(_scan_chunk, c, extra, max_bytes) for c in chunks]
                for fut in as_completed(futures):
                    n, found = fut.result()
                    done += n
                    findings.extend(found)
                    if progress:
                        progress(done, total)
        except BrokenProcessPool:
            # Workers could not start (e.g. an unimportable __main__): scan here instead.
            return scan_paths(items_as_paths(items), extra=extra, max_bytes=max_bytes, workers=1, progress=progress)
    findings.sort(key=lambda f: (f.path, f.line, f.rule))
    return findings, total


def items_as_paths(items: list[tuple[str, str]]) -> list[tuple[Path, str]]:
    return [(Path(a), rel) for a, rel in items]


def forbidden_files(files: Iterable[tuple[Path, str]], forbid: list[str]) -> list[Finding]:
    """Files whose path matches a forbidden glob (e.g. `.env`, `.github/workflows/**`)."""
    out = []
    for _, rel in files:
        if forbid and match_any(rel, forbid):
            out.append(Finding(rel, 0, "forbidden-file", "high", f"forbidden file: {rel}", fingerprint("file:" + rel)))
    return out


def apply_allowlist(findings: list[Finding], paths: list[str], fingerprints: list[str]) -> tuple[list[Finding], int]:
    """Drop allowlisted findings; returns (kept, number dropped)."""
    fps = {f.lower() for f in fingerprints}
    kept = [f for f in findings if not (f.fingerprint in fps or (paths and match_any(f.path, paths)))]
    return kept, len(findings) - len(kept)
