"""Reading one run folder for the TUI: the events tail, plan, state, error blocks, step logs.

Only reads; never writes into the run folder. Each read is cheap and incremental (byte offsets),
so polling a few times a second costs nothing while the run is idle.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from codex_tasks.core.process import is_alive
from codex_tasks.runs.errorcap import read_error_file
from codex_tasks.runs.events import EventReader

BATCH_BYTES = 8 << 20  # one poll reads at most this much of the events log


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class RunFolder:
    """A run folder `.codex/runs/<id>/`, read while it grows."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.run_id = self.path.name
        self.events_path = self.path / "events.ndjson"
        self._reader = EventReader(self.events_path)
        self._errors_size = -1
        self._errors: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ events

    def poll(self, max_bytes: int = BATCH_BYTES) -> list[dict[str, Any]]:
        """The whole events appended since the last poll (a torn last line waits for the next)."""
        return self._reader.read_new(max_bytes=max_bytes)

    @property
    def behind(self) -> bool:
        """More of the events log is on disk than has been read."""
        try:
            return self.events_path.stat().st_size > self._reader.offset
        except OSError:
            return False

    # ------------------------------------------------------------------ files

    def state(self) -> dict[str, Any]:
        data = _json(self.path / "state.json")
        return data if isinstance(data, dict) else {}

    def plan_steps(self) -> list[dict[str, Any]]:
        data = _json(self.path / "plan.json")
        steps = data.get("steps") if isinstance(data, dict) else None
        return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []

    def summary(self) -> dict[str, Any]:
        data = _json(self.path / "summary.json")
        return data if isinstance(data, dict) else {}

    def phase_names(self) -> dict[str, str]:
        """Phase id -> name from the resolved sequence.yaml (best effort)."""
        try:
            import yaml

            doc = yaml.safe_load((self.path / "sequence.yaml").read_text(encoding="utf-8"))
        except Exception:  # a missing or odd sequence only costs the names
            return {}
        names: dict[str, str] = {}
        phases = doc.get("phases") if isinstance(doc, dict) else None
        for ph in phases if isinstance(phases, list) else []:
            if isinstance(ph, dict):
                pid = ph.get("id", ph.get("number"))
                if pid is not None and ph.get("name"):
                    names[str(pid)] = str(ph["name"])
        return names

    def errors(self) -> list[dict[str, Any]]:
        """The error blocks (re-read only when the file grew)."""
        path = self.path / "error_captures.ndjson"
        try:
            size = path.stat().st_size
        except OSError:
            return self._errors
        if size != self._errors_size:
            try:
                self._errors = read_error_file(path)
                self._errors_size = size
            except OSError:
                pass
        return self._errors

    def step_log_path(self, step_id: str) -> Path:
        safe = step_id.replace("/", "_").replace(os.sep, "_")
        return self.path / "steps" / safe / "step.log"

    def read_step_log(self, step_id: str, offset: int = 0, max_tail: int = 256 << 10) -> tuple[list[str], int]:
        """Whole lines of a step's log after `offset` (the last `max_tail` bytes on a first read),
        and the new offset. A torn last line waits for the next read."""
        path = self.step_log_path(step_id)
        try:
            size = path.stat().st_size
            if size < offset:
                offset = 0  # rewritten
            with open(path, "rb") as fh:
                start = max(offset, size - max_tail) if offset == 0 else offset
                fh.seek(start)
                data = fh.read()
        except OSError:
            return [], offset
        end = data.rfind(b"\n")
        if end < 0:
            return [], offset if offset else start
        text = data[: end + 1].decode("utf-8", errors="replace")
        lines = text.splitlines()
        if start > 0 and offset == 0 and lines:
            lines = lines[1:]  # the first line of a tail is cut
        return lines, start + end + 1

    def process_alive(self) -> bool | None:
        """Whether the process recorded as running the run is alive (None: no process recorded)."""
        st = self.state()
        if st.get("status") != "running":
            return None
        return is_alive(st.get("pid"))
