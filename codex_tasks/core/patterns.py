"""Path globs with `**`, matched against `/`-separated relative paths (gitignore-like).

`*` and `?` stay inside one path segment, `**` spans segments, a pattern without `/` matches the
file name at any depth, and a pattern ending in `/**` matches everything below a folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


@lru_cache(maxsize=512)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile one glob to a regex over relative paths."""
    pat = pattern.strip()
    while pat.startswith("./"):
        pat = pat[2:]
    anchored = "/" in pat.rstrip("/")
    pat = pat.rstrip("/") if not pat.endswith("/**") else pat
    out = []
    i = 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif pat[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pat[i] == "?":
            out.append("[^/]")
            i += 1
        elif pat[i] == "[":
            j = pat.find("]", i)
            if j < 0:
                out.append(re.escape(pat[i]))
                i += 1
            else:
                out.append(pat[i : j + 1])
                i = j + 1
        else:
            out.append(re.escape(pat[i]))
            i += 1
    body = "".join(out)
    prefix = "" if anchored else "(?:.*/)?"
    # A folder pattern also matches everything below it.
    return re.compile(f"^{prefix}{body}(?:/.*)?$")


def glob_match(path: str, pattern: str) -> bool:
    """True if the relative path matches the glob."""
    return glob_regex(pattern).match(path) is not None


def match_any(path: str, patterns: Iterable[str]) -> bool:
    """Gitignore-style: the last matching pattern wins, and `!pattern` un-matches."""
    result = False
    for pat in patterns:
        if pat.startswith("!"):
            if result and glob_match(path, pat[1:]):
                result = False
        elif not result and glob_match(path, pat):
            result = True
    return result
