"""The events log: one JSON object a line, appended by many writers, read while it grows.

Event shape: `{"time": <epoch s>, "ts": <ISO 8601 UTC>, "type": <type>, ...fields}` with types
`run.started|finished|failed|resumed|interrupted`, `phase.started|finished`,
`step.started|finished|failed|skipped|cached|manual|not_run|retry`, `progress` (`step_id`, `done`,
`total`, `unit`, optional `rate`), `metric` (`step_id`, `name`, `value`, optional `step`,
`split`), and `log` (`step_id`, `line`).

Writers append each event as one whole line with a single `write` on an O_APPEND descriptor,
under a thread lock and an `fcntl` lock, so lines from threads and processes never interleave.
Readers skip a torn (unterminated) last line and pick it up on the next read.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codex_tasks.core.redact import redact_obj
from codex_tasks.errors import DiskFull


def now_iso(t: float | None = None) -> str:
    """ISO 8601 UTC timestamp with milliseconds."""
    return datetime.fromtimestamp(time.time() if t is None else t, UTC).isoformat(timespec="milliseconds")


class EventLog:
    """Append-only NDJSON writer, safe for threads and processes."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._lock = threading.Lock()
        self.listeners: list[Any] = []  # callables receiving each event (the CLI's live printer)
        self._fd: int | None = None  # opened on the first append, kept for the next ones
        self._fd_pid = 0  # the process that opened it: a forked child opens its own
        self._closer: weakref.finalize[Any, Any] | None = None
        path.parent.mkdir(parents=True, exist_ok=True)

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "run_id": self.run_id}

    def __setstate__(self, data: dict[str, Any]) -> None:
        self.__init__(data["path"], data["run_id"])  # type: ignore[misc]

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        """Append one event and return it (as written, redacted)."""
        t = time.time()
        event: dict[str, Any] = {"time": round(t, 6), "ts": now_iso(t), "type": type, "run_id": self.run_id}
        event.update({k: v for k, v in fields.items() if v is not None})
        event = redact_obj(event)
        self._append_line(json.dumps(event, default=str, ensure_ascii=False))
        for listener in self.listeners:
            listener(event)
        return event

    def _descriptor(self) -> int:
        """The O_APPEND descriptor of this process, opened once (an open and a close per event
        were a third of an append's system calls); closed when the log is collected or closed."""
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._fd_pid = os.getpid()
            self._closer = weakref.finalize(self, _close_quietly, self._fd)
        return self._fd

    def close(self) -> None:
        with self._lock:
            if self._closer is not None:
                self._closer()
            self._fd, self._closer = None, None

    def _append_line(self, text: str) -> None:
        """Append one whole line: one write on an O_APPEND descriptor, under both locks."""
        data = (text + "\n").encode("utf-8")  # json.dumps never writes a raw newline
        with self._lock:
            try:
                fd = self._descriptor()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    size = os.fstat(fd).st_size
                    if size and os.pread(fd, 1, size - 1) != b"\n":
                        data = b"\n" + data  # a torn last line (a crash or a full disk mid-write) stays alone
                    while data:  # a short write (a nearly full disk) goes on until done or ENOSPC
                        data = data[os.write(fd, data):]
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise DiskFull(self.path) from None
                raise


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


class EventReader:
    """Incremental reader: `read_new()` returns the whole events appended since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read_new(self, max_bytes: int | None = 64 << 20) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read() if max_bytes is None else fh.read(max_bytes)
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []  # only a torn line so far
        chunk = data[: end + 1]
        self.offset += end + 1
        events = []
        for raw in chunk.splitlines():
            if not raw.strip():
                continue
            try:
                events.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # a corrupt line (e.g. from a crash mid-write) is skipped, not fatal
        return events


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete event in the file."""
    yield from EventReader(path).read_new(max_bytes=None)
