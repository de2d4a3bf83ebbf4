"""The step cache: fingerprint -> recorded outputs, under `.codex/cache/`.

One JSON file per entry (`entries/<fingerprint>.json`), written atomically, so concurrent runs
never corrupt the index; a file lock serialises writers of the same entry.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from codex_tasks.core.files import write_json_atomic
from codex_tasks.runs.hashing import HashMemo, path_hash


class CacheIndex:
    def __init__(self, workspace: Path) -> None:
        self.root = workspace / ".codex" / "cache"
        self.entries = self.root / "entries"
        self.memo = HashMemo(self.root / "hashmemo.json")

    def get(self, fingerprint: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.entries / f"{fingerprint}.json").read_text())
            return data if isinstance(data, dict) else None
        except (OSError, ValueError):
            return None

    def put(self, fingerprint: str, entry: dict[str, Any]) -> None:
        from filelock import FileLock

        self.entries.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.entries / f"{fingerprint}.lock"), timeout=60):
            # through the redaction hook: a step's summary and output paths may carry what a secret
            # parameter put in its `with:` fields (one small write per step, unlike state.json)
            write_json_atomic(self.entries / f"{fingerprint}.json", entry)
        try:
            os.unlink(self.entries / f"{fingerprint}.lock")
        except OSError:
            pass

    def outputs_intact(self, entry: dict[str, Any], workspace: Path) -> str | None:
        """None when every recorded output is on disk with its recorded hash, else why not."""
        for out in entry.get("outputs", []):
            p = Path(out["path"])
            full = p if p.is_absolute() else workspace / p
            if not full.exists():
                return f"output {out['path']} is missing"
            try:
                if path_hash(full, self.memo)["sha256"] != out["sha256"]:
                    return f"output {out['path']} changed"
            except OSError as exc:
                return f"output {out['path']} unreadable: {exc}"
        return None

    def list(self) -> list[dict[str, Any]]:
        out = []
        if self.entries.is_dir():
            for f in sorted(self.entries.glob("*.json")):
                try:
                    data = json.loads(f.read_text())
                    data["fingerprint"] = f.stem
                    out.append(data)
                except (OSError, ValueError):
                    continue
        return out

    def clear(self) -> int:
        n = len(list(self.entries.glob("*.json"))) if self.entries.is_dir() else 0
        shutil.rmtree(self.root, ignore_errors=True)
        return n


def link_tree(src: Path, dst: Path) -> int:
    """Hard-link (else copy) every file of `src` into `dst`; returns the number of files."""
    n = 0
    if not src.is_dir():
        return 0
    for f in src.rglob("*"):
        if not f.is_file():
            continue
        target = dst / f.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        try:
            os.link(f, target)
        except OSError:
            shutil.copy2(f, target)
        n += 1
    return n
