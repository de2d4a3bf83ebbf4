"""The one redaction hook every write of the run folder passes through.

Rules come from `codex_tasks.core.secret_rules` (provider formats) plus exact values registered at run
time: parameters typed `secret` and values a `safety_scan` step found.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from codex_tasks.core.secret_rules import PRIVATE_KEY_HEADER, redact_tokens

MASK = "[REDACTED]"

_lock = threading.Lock()
_values: set[str] = set()


def register_values(values: Iterable[str]) -> None:
    """Redact these exact strings from everything written from now on (values of 4+ chars)."""
    with _lock:
        _values.update(v for v in values if isinstance(v, str) and len(v) >= 4)


def registered_values() -> list[str]:
    """The exact values registered so far: what a child process (a torchrun rank) must be handed so
    its own writes are redacted as this process's are (never written to disk for that)."""
    with _lock:
        return sorted(_values)


def is_registered(value: str) -> bool:
    """True when `value` contains a value registered as secret (a `secret` parameter, a scan finding)."""
    with _lock:
        return any(v in value for v in _values)


def clear_values() -> None:
    """Forget run-time values (between runs in one process, e.g. tests)."""
    with _lock:
        _values.clear()


def redact(text: str) -> str:
    """Return `text` with every known secret replaced by the mask."""
    if not text:
        return text
    # Longest first, so a value that contains another is masked whole.
    for value in sorted(_values, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return redact_tokens(text, MASK)


def redact_obj(obj: Any) -> Any:
    """Redact every string inside a JSON-like structure (keys are kept)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [redact_obj(v) for v in obj]
    return obj


class LineRedactor:
    """Redacts a stream read line by line, where a secret may span lines: every line of a PEM
    private-key block (BEGIN through END) is masked, not only a whole block seen at once."""

    def __init__(self) -> None:
        self.in_block = False

    def feed(self, line: str) -> str:
        """The redacted form of the next line."""
        if self.in_block:
            if "-----END " in line and "PRIVATE KEY" in line:
                self.in_block = False
            return MASK
        match = PRIVATE_KEY_HEADER.search(line)
        if match:
            rest = line[match.end():]
            self.in_block = not ("-----END " in rest and "PRIVATE KEY" in rest)
            return redact(line[: match.start()]) + MASK
        return redact(line)
