"""Incremental runs: a 50-step sequence's first run against its fully cached rerun, and the
content-hashing rate over a 200 MB dep folder with a cold and a warm stat-keyed memo.

Goals (issue 3): cached rerun < 10% of the first run; warm re-hashing >= 20x cold.
Usage: .venv/bin/python bench/cache.py [--steps 50] [--mb 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CODEX = str(Path(sys.executable).parent / "codex-tasks")

# ~0.2 s of real work per step: a bash loop that hashes its own output a few thousand times
WORK = "for i in $(seq 1 400); do echo $i; done | sha256sum > out_{i}.txt; sleep 0.15"


def sequence(n: int) -> str:
    steps = []
    for i in range(n):
        steps.append(f"      - id: s{i}\n        cache: true\n        deps: [inputs/in_{i}.txt]\n"
                     f"        commands: ['cat inputs/in_{i}.txt > /dev/null; {WORK.format(i=i)}']\n"
                     f"        outputs: [{{path: out_{i}.txt}}]")
    return "title: cache bench\nphases:\n  - id: p\n    steps:\n" + "\n".join(steps) + "\n"


def timed_run(ws: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([CODEX, "run", "seq.yaml", "-q", *extra], cwd=ws, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-1000:])
    return time.perf_counter() - t0


def hashing(mb: int) -> tuple[float, float]:
    from codex_tasks.runs.hashing import HashMemo, deps_hash

    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "data").mkdir()
        chunk = os.urandom(1 << 20)
        for i in range(mb):
            (root / "data" / f"f{i:04d}.bin").write_bytes(chunk[i % 251:] + chunk[: i % 251])
        memo_file = root / "memo.json"
        t0 = time.perf_counter()
        memo = HashMemo(memo_file)
        cold_digest = deps_hash(["data"], root, memo)
        memo.save()
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        memo2 = HashMemo(memo_file)  # a new run: the memo comes from disk
        warm_digest = deps_hash(["data"], root, memo2)
        warm = time.perf_counter() - t0
        assert cold_digest == warm_digest
    return mb / cold, mb / warm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    firsts, cached = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as d:
            ws = Path(d)
            (ws / "inputs").mkdir()
            for i in range(args.steps):
                (ws / "inputs" / f"in_{i}.txt").write_text(f"input {i}\n" * 100)
            (ws / "seq.yaml").write_text(sequence(args.steps))
            firsts.append(timed_run(ws))
            cached.append(timed_run(ws))
    first, again = statistics.median(firsts), statistics.median(cached)
    print(f"{args.steps}-step sequence, ~0.2 s of work a step, median of {args.repeats}:")
    print(f"  first run        {first:.2f} s")
    print(f"  cached rerun     {again:.2f} s   ({again / first * 100:.1f}% of the first run; goal < 10%)")
    rates = [hashing(args.mb) for _ in range(args.repeats)]
    cold = statistics.median(r[0] for r in rates)
    warm = statistics.median(r[1] for r in rates)
    print(f"hashing a {args.mb} MB dep folder ({args.mb} files):")
    print(f"  cold memo        {cold:.0f} MB/s")
    print(f"  warm memo        {warm:.0f} MB/s   ({warm / cold:.0f}x cold; goal >= 20x)")


if __name__ == "__main__":
    main()
