"""`metrics.ndjson` and `metrics.csv`: one row per point (timestamp, run_id, step, split, metric, value)."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

from codex_tasks.core.files import write_text_atomic

FIELDS = ["timestamp", "run_id", "step", "split", "metric", "value"]


class MetricsLog:
    """Appends metric rows to both files (thread-safe); `truncate_after` drops rows of undone steps."""

    def __init__(self, folder: Path, run_id: str) -> None:
        self.folder = folder
        self.run_id = run_id
        self.ndjson = folder / "metrics.ndjson"
        self.csv = folder / "metrics.csv"
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, metric: str, value: float, *, step: int | None, split: str) -> None:
        row = {
            "timestamp": round(time.time(), 3),
            "run_id": self.run_id,
            "step": step,
            "split": split,
            "metric": metric,
            "value": float(value),
        }
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([row[f] if row[f] is not None else "" for f in FIELDS])
        with self._lock:
            new_csv = not self.csv.exists()
            with open(self.ndjson, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            with open(self.csv, "a", encoding="utf-8", newline="") as fh:
                if new_csv:
                    fh.write(",".join(FIELDS) + "\n")
                fh.write(buf.getvalue())

    def rows(self) -> list[dict[str, Any]]:
        if not self.ndjson.exists():
            return []
        out = []
        for line in self.ndjson.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line from a killed writer
        return out

    def truncate_after(self, step: int) -> None:
        """Keep only rows up to `step` (resuming from a checkpoint redoes the later steps)."""
        with self._lock:
            rows = [r for r in self.rows() if r.get("step") is None or r["step"] <= step]
            self._rewrite(rows)

    def clear(self) -> None:
        with self._lock:
            self._rewrite([])

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        for path, text in ((self.ndjson, "".join(json.dumps(r) + "\n" for r in rows)), (self.csv, self._csv_text(rows))):
            write_text_atomic(path, text, redacted=False)

    @staticmethod
    def _csv_text(rows: list[dict[str, Any]]) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(FIELDS)
        for r in rows:
            w.writerow([r.get(f) if r.get(f) is not None else "" for f in FIELDS])
        return buf.getvalue()
