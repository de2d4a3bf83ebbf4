"""Benchmark: how fast the TUI consumes a run's events (headless).

    .venv/bin/python bench/tui_events.py [--events 100000] [--steps 250] [--batch 1000] [--repeat 3]

Writes a synthetic run folder (plan.json + events.ndjson: step starts/ends, progress, metrics,
logs) and measures, median of the repeats:

1. reader + model: `RunFolder.poll` + `RunModel.apply` over the whole log, read in batches;
2. reader + model + table: the same through a headless `RunApp`, the log appended `--batch`
   events at a time and polled after each append (as when tailing a live run), the screen painted
   at Textual's frame rate meanwhile; also the worst case, a full repaint after every batch;
3. full replay: a headless `RunApp` opened on the finished 100k-event run, until every event is
   folded in and the screen has settled.

Goals: >= 20,000 events/s for (2); (3) under 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codex_tasks.tui.model import RunModel  # noqa: E402
from codex_tasks.tui.source import RunFolder  # noqa: E402

T0 = 1796040000.0


def synthetic_events(n_events: int, n_steps: int) -> tuple[list[str], list[dict[str, object]]]:
    """Serialized events (about `n_events`) and the plan steps, in run order."""
    per_step = max(4, n_events // n_steps)
    steps = [{"id": f"step-{i:04d}", "phase_id": f"P{i // 50}", "kind": "train" if i % 10 == 0 else "shell",
              "description": f"synthetic step {i}"} for i in range(n_steps)]
    lines = [json.dumps({"time": T0, "ts": "", "type": "run.started", "title": "Synthetic 100k", "attempt": 1})]
    t = T0
    phase = None
    for s in steps:
        if s["phase_id"] != phase:
            if phase is not None:
                lines.append(json.dumps({"time": t, "type": "phase.finished", "phase_id": phase}))
            phase = s["phase_id"]
            lines.append(json.dumps({"time": t, "type": "phase.started", "phase_id": phase, "name": f"Phase {phase}"}))
        sid = s["id"]
        lines.append(json.dumps({"time": t, "ts": "", "type": "step.started", "step_id": sid, "phase_id": phase,
                                 "kind": s["kind"], "attempt": 1}))
        body = per_step - 2
        for k in range(body):
            t += 0.01
            r = k % 4
            if r in (0, 1):
                lines.append(json.dumps({"time": t, "ts": "", "type": "progress", "step_id": sid, "done": k + 1,
                                         "total": body, "unit": "step", "rate": 100.0, "loss": 5.0 / (k + 1)}))
            elif r == 2:
                lines.append(json.dumps({"time": t, "ts": "", "type": "metric", "step_id": sid, "name": "loss",
                                         "value": 5.0 / (k + 1), "step": k, "split": "train"}))
            else:
                lines.append(json.dumps({"time": t, "ts": "", "type": "log", "step_id": sid,
                                         "line": f"step {k} of {sid}: loss {5.0 / (k + 1):.4f}"}))
        lines.append(json.dumps({"time": t, "ts": "", "type": "step.succeeded", "step_id": sid, "phase_id": phase,
                                 "duration": round(body * 0.01, 3), "note": f"{body} events"}))
    lines.append(json.dumps({"time": t, "type": "phase.finished", "phase_id": phase}))
    lines.append(json.dumps({"time": t, "ts": "", "type": "run.finished", "status": "succeeded",
                             "duration": round(t - T0, 3)}))
    return lines, steps


def write_run(root: Path, lines: list[str], steps: list[dict[str, object]], *, events: bool = True) -> Path:
    run = root / "20261130-000000-bench"
    (run / "steps").mkdir(parents=True, exist_ok=True)
    (run / "plan.json").write_text(json.dumps({"title": "Synthetic 100k", "steps": steps}))
    (run / "state.json").write_text(json.dumps({"run_id": run.name, "title": "Synthetic 100k",
                                                "status": "succeeded"}))
    (run / "events.ndjson").write_text("\n".join(lines) + "\n" if events else "")
    return run


def bench_model(run: Path, n: int) -> float:
    """Seconds for reader + model over the whole log (1 MB batches)."""
    start = time.perf_counter()
    folder = RunFolder(run)
    model = RunModel(folder.run_id)
    model.seed_plan(folder.plan_steps())
    while True:
        batch = folder.poll(max_bytes=1 << 20)
        if not batch:
            break
        model.apply(batch)
    elapsed = time.perf_counter() - start
    assert model.events_seen == n, (model.events_seen, n)
    return elapsed


def bench_tailing(root: Path, lines: list[str], steps: list[dict[str, object]], batch: int,
                  frame_per_batch: bool = False) -> float:
    """Seconds for the app to consume the log appended `batch` events at a time: each append is
    polled at once (reader + model + table and panel updates); the screen is painted at Textual's
    own frame rate in between (or, with `frame_per_batch`, after every batch: the worst case)."""
    from codex_tasks.tui.app import RunApp

    run = write_run(root, lines, steps, events=False)
    chunks = ["\n".join(lines[i:i + batch]) + "\n" for i in range(0, len(lines), batch)]

    async def body() -> float:
        app = RunApp(run, clock=lambda: T0, poll_interval=3600, check_process=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            start = time.perf_counter()
            with open(run / "events.ndjson", "a") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                    fh.flush()
                    app.poll()
                    if frame_per_batch:
                        await pilot.pause()
                    else:
                        await asyncio.sleep(0)  # the event loop runs: messages, timers, frames
            await pilot.pause()  # the last frame
            spent = time.perf_counter() - start
            assert app.model.events_seen == len(lines), (app.model.events_seen, len(lines))
            return spent

    return asyncio.run(body())


def bench_replay(run: Path, n: int) -> float:
    """Seconds from opening the finished run in a headless app to a settled screen with all events."""
    from codex_tasks.tui.app import RunApp

    async def body() -> float:
        start = time.perf_counter()
        app = RunApp(run, clock=lambda: T0, poll_interval=0.05, check_process=False)
        async with app.run_test(size=(120, 40)) as pilot:
            while app.model.events_seen < n:
                await pilot.pause(0.01)
            await pilot.pause()
            await app.workers.wait_for_complete()
            return time.perf_counter() - start

    return asyncio.run(body())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--batch", type=int, default=1000, help="events per append while tailing")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    lines, steps = synthetic_events(args.events, args.steps)
    n = len(lines)
    size = sum(len(ln) + 1 for ln in lines) / 1e6
    print(f"synthetic run: {n} events, {args.steps} steps, {size:.1f} MB")
    model_s, tail_s, frame_s, replay_s = [], [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="tui-bench-") as tmp:
            run = write_run(Path(tmp) / "a", lines, steps)
            model_s.append(bench_model(run, n))
            replay_s.append(bench_replay(run, n))
            tail_s.append(bench_tailing(Path(tmp) / "b", lines, steps, args.batch))
            frame_s.append(bench_tailing(Path(tmp) / "c", lines, steps, args.batch, frame_per_batch=True))
    m, t, r = statistics.median(model_s), statistics.median(tail_s), statistics.median(replay_s)
    f = statistics.median(frame_s)
    print(f"reader + model:          {n / m:10,.0f} events/s  ({m:.2f} s)")
    print(f"reader + model + table:  {n / t:10,.0f} events/s  ({t:.2f} s, {args.batch}-event appends)"
          f"   goal >= 20,000  {'ok' if n / t >= 20_000 else 'MISSED'}")
    print(f"  ... a full repaint after every {args.batch}-event batch (worst case): {n / f:,.0f} events/s ({f:.2f} s)")
    print(f"full replay ({n} events): {r:.2f} s   goal < 10 s  {'ok' if r < 10 else 'MISSED'}")


if __name__ == "__main__":
    main()
