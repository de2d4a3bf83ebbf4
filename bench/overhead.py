"""Start-up and per-step overhead of codex-tasks, against bare Python and a hand-written Prefect flow.

(a) `codex-tasks --help` and `codex-tasks validate` wall time minus `python -c pass`.
(b) a 100-step no-op sequence through `codex-tasks run` against a hand-written Prefect 3 flow that
    calls 100 tasks directly, one after another, each doing the same work (running `true` in
    bash), on the same (managed) server. Also the marginal per-step cost from 1- and 100-step runs.

Medians of interleaved repeats. Usage: .venv/bin/python bench/overhead.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

BIN = Path(sys.executable).parent
CODEX = str(BIN / "codex-tasks")

HAND_FLOW = textwrap.dedent("""\
    import subprocess, sys
    from prefect import flow, task
    from prefect.settings import temporary_settings

    N = int(sys.argv[1])

    @task(persist_result=False)
    def step(i: int) -> int:
        return subprocess.run(["bash", "-euo", "pipefail", "-c", "true"]).returncode

    @flow(name="hand-written", persist_result=False)
    def hand() -> None:
        for i in range(N):
            step(i)

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        hand()
    """)


def seq(n: int) -> str:
    steps = "\n".join(f"      - id: s{i}\n        commands: ['true']" for i in range(n))
    return f"title: noop {n}\nphases:\n  - id: p\n    steps:\n{steps}\n"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-800:]}")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from codex_tasks.orchestrate.prefect.server import ensure_server

    url = ensure_server()
    env = {**os.environ, "PREFECT_API_URL": url, "DO_NOT_TRACK": "1",
           "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    with tempfile.TemporaryDirectory() as d:
        ws = Path(d)
        (ws / "s100.yaml").write_text(seq(100))
        (ws / "s1.yaml").write_text(seq(1))
        (ws / "hand.py").write_text(HAND_FLOW)
        py = sys.executable
        t: dict[str, list[float]] = {k: [] for k in
                                     ("pass", "help", "validate", "run100", "hand100", "run1", "hand1")}
        for _ in range(args.repeats):
            t["pass"].append(timed([py, "-c", "pass"], ws, env))
            t["help"].append(timed([CODEX, "--help"], ws, env))
            t["validate"].append(timed([CODEX, "validate", "s100.yaml"], ws, env))
            t["run100"].append(timed([CODEX, "run", "s100.yaml", "-q"], ws, env))
            t["hand100"].append(timed([py, "hand.py", "100"], ws, env))
            t["run1"].append(timed([CODEX, "run", "s1.yaml", "-q"], ws, env))
            t["hand1"].append(timed([py, "hand.py", "1"], ws, env))
        m = {k: statistics.median(v) for k, v in t.items()}
    print(f"median of {args.repeats} interleaved repeats (seconds)")
    print(f"  python -c pass            {m['pass']:.3f}")
    print(f"  codex-tasks --help        {m['help']:.3f}   (+{m['help'] - m['pass']:.3f} over bare Python; goal < 0.3)")
    print(f"  codex-tasks validate      {m['validate']:.3f}   (+{m['validate'] - m['pass']:.3f} over bare Python; goal < 0.3)")
    print(f"  100 steps: codex-tasks    {m['run100']:.3f}")
    print(f"  100 steps: hand-written   {m['hand100']:.3f}")
    print(f"  ratio codex/hand (whole process, 100 steps): {m['run100'] / m['hand100']:.2f}x  (goal <= 1.2x)")
    per_codex = (m["run100"] - m["run1"]) / 99
    per_hand = (m["hand100"] - m["hand1"]) / 99
    print(f"  per-step marginal: codex {per_codex * 1000:.1f} ms, hand {per_hand * 1000:.1f} ms, "
          f"ratio {per_codex / per_hand:.2f}x")


if __name__ == "__main__":
    main()
