"""Atomic writes for the run folder: temp file in the same folder, then rename.

A reader (or a process killed at any moment) sees the old file or the new one, never half of
one. `fsync=True` also survives a power cut; state files skip it, since a sync per step would
cost more than the step itself. Every text written here goes through the redaction hook first.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from codex_tasks.runs.redact import redact, redact_obj


def write_text_atomic(path: Path, text: str, *, redacted: bool = True, fsync: bool = False) -> None:
    """Write `text` to `path` so a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = redact(text) if redacted else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_json_atomic(path: Path, obj: Any, *, redacted: bool = True) -> None:
    """Write `obj` as indented JSON, atomically."""
    data = redact_obj(obj) if redacted else obj
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", redacted=False)


def read_json(path: Path) -> Any:
    """Read a JSON file written by `write_json_atomic`."""
    return json.loads(path.read_text(encoding="utf-8"))
