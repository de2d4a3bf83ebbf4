"""Files: atomic writes (temp file in the same folder, then rename) and a file's SHA-256.

A reader (or a process killed at any moment) sees the old file or the new one, never half of
one. `fsync=True` also survives a power cut; state files skip it, since a sync per step would
cost more than the step itself. Every text written here goes through the redaction hook first.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from codex_tasks.core.redact import redact, redact_obj
from codex_tasks.errors import DiskFull


def write_text_atomic(path: Path, text: str, *, redacted: bool = True, fsync: bool = False) -> None:
    """Write `text` to `path` so a reader sees the old file or the new one, never half of one."""
    data = redact(text) if redacted else text
    # one writer per process and thread at a time: a fixed temp name is unique, and cheaper than mkstemp
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fh_ = open(tmp, "w", encoding="utf-8")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh_ = open(tmp, "w", encoding="utf-8")
    try:
        with fh_ as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            raise DiskFull(path) from None  # the old file is intact: the run stays resumable
        raise


def write_json_atomic(path: Path, obj: Any, *, redacted: bool = True, compact: bool = False,
                      sort_keys: bool = False) -> None:
    """Write `obj` as JSON, atomically: indented for people, or `compact` for files rewritten often
    (json's C encoder only runs without `indent`; indenting a run's state cost ~5 ms a save).
    `sort_keys` for files whose bytes are hashed (the engine's metadata)."""
    data = redact_obj(obj) if redacted else obj
    text = json.dumps(data, separators=(",", ":"), sort_keys=sort_keys, default=str) if compact else \
        json.dumps(data, indent=2, sort_keys=sort_keys, default=str)
    write_text_atomic(path, text + "\n", redacted=False)


def read_json(path: Path) -> Any:
    """Read a JSON file written by `write_json_atomic`."""
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, read in chunks (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
