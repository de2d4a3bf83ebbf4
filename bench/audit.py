"""Benchmark: files/s of the `audit` step over this interpreter's standard library.

    .venv/bin/python bench/audit.py [--workers N] [--repeat 3]

Goal: >= 300 files/s on 2 cores. Prints the median of the repeats, single-process and parallel.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import sysconfig
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codex_tasks.repo.audit_defaults import DEFAULT_REMOTE_PATTERNS  # noqa: E402
from codex_tasks.repo.audit_scan import audit_files, iter_sources  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = Path(sysconfig.get_paths()["stdlib"])
    items = iter_sources(root, ["**/*.py"], ["site-packages/**"])
    size = sum(os.path.getsize(p) for p, _ in items) / 1e6
    print(f"corpus: {root} ({len(items)} .py files, {size:.1f} MB); load average {os.getloadavg()[0]:.1f}")
    for workers in sorted({1, args.workers}):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            results = audit_files(items, DEFAULT_REMOTE_PATTERNS, workers=workers)
            times.append(time.perf_counter() - t0)
        dt = statistics.median(times)
        kinds: dict[str, int] = {}
        for r in results:
            for f in r.findings:
                kinds[f.kind] = kinds.get(f.kind, 0) + 1
        unparsed = sum(not r.parsed for r in results)
        print(f"workers={workers}: {dt:.2f} s, {len(items) / dt:.0f} files/s, {size / dt:.1f} MB/s; "
              f"findings {kinds}, unparsed {unparsed}")


if __name__ == "__main__":
    main()
