"""Names: the slug of a title (Prefect flow, deployment and artifact names) and the closest known
name to a misspelt one (the "did you mean" of every error)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


def slug(text: str, default: str = "sequence") -> str:
    """`My Sequence (v2)` -> `my-sequence-v2`: lowercase letters, digits and dashes only (what
    Prefect accepts as an artifact key); `default` when nothing is left."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or default


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The closest choice to `word`, or None when nothing is close."""
    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.5)
    return match[0] if match else None
