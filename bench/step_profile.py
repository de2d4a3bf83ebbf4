"""Where a step's milliseconds go: a 100-step no-op sequence run in this process, with timers
(`time.perf_counter`) around the pieces of the per-step path, and a bubblewrap spawn cost check.

In-process and per piece, so it is far less sensitive to a shared machine's load than the
wall-clock bench (`bench/overhead.py`): a piece's time is its own, whatever ran before it.

    .venv/bin/python bench/step_profile.py                 # pieces, 100 steps, 3 runs
    .venv/bin/python bench/step_profile.py --cprofile 25   # also the top 25 functions (cProfile)

The managed server is codex-tasks' own, found as a user's run finds it (`CODEX_TASKS_HOME`);
set it to a home whose server is already running to skip the first start.

Pieces (milliseconds a step, median over the runs; nested pieces are also inside their parent):

- `prefect task call`: one Prefect task run, the whole call (what the flow pays a step),
- `execute_step`: codex-tasks' own work inside it; `prefect task call` minus this is Prefect's,
- `decide`, `state writes` (state.json), `events` (events.ndjson), `step log`,
- `spawn`: starting bash in its PID namespace, `bash runs`: reading its output until it exits,
- `hash outputs`.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

N_STEPS = 100


def seq(n: int) -> str:
    steps = "\n".join(f"      - id: s{i}\n        commands: ['true']" for i in range(n))
    return f"title: noop {n}\nphases:\n  - id: p\n    steps:\n{steps}\n"


class Timers:
    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, attr)
        timers = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timers.total[label] += time.perf_counter() - t0
                timers.count[label] += 1

        setattr(owner, attr, timed)


def install(timers: Timers) -> None:
    from codex_tasks.orchestrate import execute, runner
    from codex_tasks.orchestrate.prefect import flow, setup
    from codex_tasks.runs import events, lock, rundir
    from codex_tasks.steps import base, shell

    timers.wrap(flow.PhaseScheduler, "_call_direct", "prefect task call")
    timers.wrap(flow, "execute_step", "execute_step")
    timers.wrap(execute, "decide", "decide")
    timers.wrap(execute, "hash_outputs", "hash outputs")
    timers.wrap(rundir.RunDir, "save", "state writes")
    timers.wrap(events.EventLog, "emit", "events")
    timers.wrap(base.StepContext, "log", "step log")
    timers.wrap(shell, "spawn", "spawn")
    timers.wrap(shell, "_stream", "bash runs")
    timers.wrap(lock.RunLock, "record_group", "  run lock record (inside spawn)")
    # once a run, not a step (shown in ms a run)
    timers.wrap(runner, "prepare_options", "run: prepare")
    timers.wrap(runner, "_run_with_prefect", "run: the flow, all of it")
    timers.wrap(runner, "_close_run", "run: close")
    timers.wrap(runner, "write_summary", "run:   summary.json")
    timers.wrap(runner, "write_report", "run:   report")
    timers.wrap(setup, "attach_report", "run:   Prefect artifacts")


def one_run(ws: Path, profile: cProfile.Profile | None) -> tuple[float, float]:
    """Run the sequence once: (whole run_sequence seconds, flow seconds)."""
    from codex_tasks.orchestrate.options import RunOptions
    from codex_tasks.orchestrate.prefect import flow
    from codex_tasks.orchestrate.runner import run_sequence

    spans: dict[str, float] = {}
    original = flow.PhaseScheduler.run_phase

    def run_phase(self: Any, steps: Any) -> None:
        t0 = time.perf_counter()
        if profile is not None:
            profile.enable()
        try:
            original(self, steps)
        finally:
            if profile is not None:
                profile.disable()
            spans["phase"] = time.perf_counter() - t0

    flow.PhaseScheduler.run_phase = run_phase  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        result = run_sequence(RunOptions(file=str(ws / "s.yaml"), workspace=str(ws), quiet=True))
        whole = time.perf_counter() - t0
    finally:
        flow.PhaseScheduler.run_phase = original  # type: ignore[method-assign]
    if result.exit_code != 0:
        raise SystemExit(f"the run failed: {result.status}")
    return whole, spans["phase"]


def hand_run(n: int) -> dict[str, float]:
    """The hand-written flow of bench/overhead.py, in this process against the same server:
    ms a step for the whole phase, the task call, and Prefect around the task's own work."""
    from prefect import flow, task
    from prefect.settings import temporary_settings

    spent: dict[str, float] = defaultdict(float)

    @task(persist_result=False)
    def step(i: int) -> int:
        t0 = time.perf_counter()
        code = subprocess.run(["bash", "-euo", "pipefail", "-c", "true"]).returncode
        spent["work"] += time.perf_counter() - t0
        return code

    @flow(name="hand-written", persist_result=False)
    def hand() -> None:
        t0 = time.perf_counter()
        for i in range(n):
            t1 = time.perf_counter()
            step(i)
            spent["call"] += time.perf_counter() - t1
        spent["phase"] = time.perf_counter() - t0

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        t0 = time.perf_counter()
        hand()
        spent["flow"] = time.perf_counter() - t0
    return {"the flow, all of it (ms a run)": spent["flow"] * 1000, "phase": spent["phase"] / n * 1000, "prefect task call": spent["call"] / n * 1000,
            "subprocess.run": spent["work"] / n * 1000,
            "= prefect around the step": (spent["call"] - spent["work"]) / n * 1000}


def spawn_costs(n: int) -> dict[str, float]:
    """ms per `bash -euo pipefail -c true`: plain subprocess, `spawn` without and with bubblewrap."""
    from codex_tasks.core.process import Sandbox, sandbox_available, spawn

    argv = ["bash", "-euo", "pipefail", "-c", "true"]
    out: dict[str, list[float]] = defaultdict(list)
    sandbox_available()  # the probe is cached; not part of a step
    for _ in range(n):  # interleaved, so load hits all three alike
        t0 = time.perf_counter()
        subprocess.run(argv, stdin=subprocess.DEVNULL, check=True)
        out["subprocess.run (the hand flow's way)"].append(time.perf_counter() - t0)
        for mode in ("none", "pid"):
            t0 = time.perf_counter()
            proc = spawn(argv, cwd=os.getcwd(), sandbox=Sandbox(mode), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            assert proc.stdout is not None
            proc.stdout.read()
            proc.stdout.close()
            proc.wait()
            out[f"spawn, sandbox {mode!r}"].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1000 for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=N_STEPS)
    ap.add_argument("--cprofile", type=int, default=0, metavar="TOP",
                    help="profile the phase of the last run with cProfile; print the TOP functions")
    ap.add_argument("--spawns", type=int, default=100, help="spawns per mode in the spawn check (0: skip)")
    args = ap.parse_args()
    os.environ.pop("PREFECT_API_URL", None)
    import codex_tasks

    print(f"codex_tasks from {Path(codex_tasks.__file__).parent}; "
          f"load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    timers_per_run: list[dict[str, float]] = []
    hands: list[dict[str, float]] = []
    walls: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as d:
        ws = Path(d)
        (ws / "s.yaml").write_text(seq(args.steps))
        one_run(ws, None)  # warm-up: imports, the server's first queries
        for i in range(args.runs):
            timers = Timers()
            saved = _snapshot()
            install(timers)
            profile = cProfile.Profile() if args.cprofile and i == args.runs - 1 else None
            try:
                walls.append(one_run(ws, profile))
            finally:
                _restore(saved)
            timers_per_run.append({k: v / args.steps * 1000 for k, v in timers.total.items()})
            hands.append(hand_run(args.steps))  # interleaved with the codex-tasks runs
            if profile is not None:
                stats = pstats.Stats(profile, stream=sys.stdout)
                print(f"\ncProfile of the phase (run {i + 1}), by own time:")
                stats.sort_stats("tottime").print_stats(args.cprofile)
                print("by cumulative time:")
                stats.sort_stats("cumulative").print_stats(args.cprofile)
    n = args.steps
    print(f"{n} no-op shell steps, {args.runs} runs in this process; ms a step (median over the runs)")
    print(f"  whole run_sequence / {n}     {statistics.median(w for w, _ in walls) / n * 1000:7.2f}")
    print(f"  the phase (all steps) / {n}  {statistics.median(p for _, p in walls) / n * 1000:7.2f}")
    labels = ["prefect task call", "execute_step", "decide", "state writes", "events", "step log",
              "spawn", "  run lock record (inside spawn)", "bash runs", "hash outputs"]
    for label in labels:
        vals = [t.get(label, 0.0) for t in timers_per_run]
        print(f"  {label:<28} {statistics.median(vals):7.2f}   (runs: {', '.join(f'{v:.2f}' for v in vals)})")
    for label in ("run: prepare", "run: the flow, all of it", "run: close", "run:   summary.json", "run:   report", "run:   Prefect artifacts"):
        vals = [t.get(label, 0.0) * n for t in timers_per_run]  # back to ms a run
        print(f"  {label:<28} {statistics.median(vals):7.1f} ms a run   (runs: {', '.join(f'{v:.1f}' for v in vals)})")
    call = statistics.median(t.get("prefect task call", 0.0) - t.get("execute_step", 0.0) for t in timers_per_run)
    print(f"  {'= prefect around the step':<28} {call:7.2f}")
    print(f"the hand-written flow ({n} tasks, same process and server), ms a step:")
    for label in ("the flow, all of it (ms a run)", "phase", "prefect task call", "subprocess.run",
                  "= prefect around the step"):
        vals = [h[label] for h in hands]
        print(f"  {label:<28} {statistics.median(vals):7.2f}   (runs: {', '.join(f'{v:.2f}' for v in vals)})")
    if args.spawns:
        print(f"one `bash -euo pipefail -c true`, median of {args.spawns} (ms):")
        for k, v in spawn_costs(args.spawns).items():
            print(f"  {k:<40} {v:7.2f}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


def _snapshot() -> list[tuple[Any, str, Any]]:
    from codex_tasks.orchestrate import execute, runner
    from codex_tasks.orchestrate.prefect import flow, setup
    from codex_tasks.runs import events, lock, rundir
    from codex_tasks.steps import base, shell

    pairs = [(flow.PhaseScheduler, "_call_direct"), (flow, "execute_step"), (execute, "decide"),
             (execute, "hash_outputs"), (rundir.RunDir, "save"), (events.EventLog, "emit"),
             (base.StepContext, "log"), (shell, "spawn"), (shell, "_stream"), (lock.RunLock, "record_group"),
             (runner, "prepare_options"), (runner, "_run_with_prefect"), (runner, "_close_run"), (runner, "write_summary"), (runner, "write_report"),
             (setup, "attach_report")]
    return [(o, a, o.__dict__[a]) for o, a in pairs]


def _restore(saved: list[tuple[Any, str, Any]]) -> None:
    for owner, attr, value in saved:
        setattr(owner, attr, value)


if __name__ == "__main__":
    main()
