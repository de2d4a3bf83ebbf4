"""Start-up and per-step overhead of codex-tasks, against bare Python and a hand-written Prefect flow.

(a) `codex-tasks --help` and `codex-tasks validate` wall time minus `python -c pass`.
(b) 1- and 100-step no-op sequences through `codex-tasks run` against a hand-written Prefect 3
    script whose flow calls 1 or 100 tasks directly, one after another, each doing the same work
    (running `true` in bash), on the same managed server. Reported: the marginal cost per step
    ((t100 - t1) / 99, each side) and their ratio (goal <= 1.2x), and the one-step run against the
    one-task script (goal <= 0.8x).

Fair terms: every step executes through Prefect on both sides (one task run per step, also for the
one-step run); after every timed process the bench reads the flow run and its task runs back from
the server and fails unless all are there and Completed; both sides' heartbeat settings are printed
(the hand script reports its own, and the server's heartbeat events are counted for both).
The cases run in a rotated order each round, so each side follows a large run as often as the
other. Medians of the rounds; read the ratios, not the absolute times, on a shared machine.

The managed server is codex-tasks' own (`ensure_server`, with its tuning), in a fresh home unless
`--home` is given, and is stopped at the end. The hand script talks to it by `PREFECT_API_URL`;
codex-tasks finds it as it does for a user (its state file under `CODEX_TASKS_HOME`).

Usage: .venv/bin/python bench/overhead.py [--repeats N] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
CODEX = str(BIN / "codex-tasks")
CASES = ("run100", "hand100", "run1", "hand1")
PREFECT_DEFAULTS = {  # Prefect 3.9.1's defaults for what codex-tasks tunes (server.SERVER_TUNING)
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "1",
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_FLUSH_INTERVAL": "5",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "20",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "5",
}

HAND_FLOW = textwrap.dedent("""\
    import subprocess, sys
    from prefect import flow, task
    from prefect.settings import get_current_settings, temporary_settings

    N = int(sys.argv[1])

    @task(persist_result=False)
    def step(i: int) -> int:
        return subprocess.run(["bash", "-euo", "pipefail", "-c", "true"]).returncode

    @flow(name="hand-written", persist_result=False, flow_run_name=sys.argv[2])
    def hand() -> None:
        print(f"heartbeat_frequency={get_current_settings().flows.heartbeat_frequency}")
        for i in range(N):
            step(i)

    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        hand()
    """)


def seq(n: int) -> str:
    steps = "\n".join(f"      - id: s{i}\n        commands: ['true']" for i in range(n))
    return f"title: noop {n}\nphases:\n  - id: p\n    steps:\n{steps}\n"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-800:]}")
    return dt, proc.stdout


def api(url: str, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def read_back(url: str, flow_run_name: str, n: int, deadline_s: float = 120.0) -> str:
    """Wait until the server holds the flow run and its n task runs, all Completed; its id."""
    deadline = time.monotonic() + deadline_s
    seen = "nothing"
    while time.monotonic() < deadline:
        runs = api(url, "/flow_runs/filter", {"flow_runs": {"name": {"any_": [flow_run_name]}}})
        if runs:
            fr = runs[0]
            tasks = api(url, "/task_runs/filter", {"flow_runs": {"id": {"any_": [fr["id"]]}}, "limit": 200})
            done = [t for t in tasks if (t.get("state") or {}).get("type") == "COMPLETED"]
            seen = f"flow run {fr['state']['type'] if fr.get('state') else None}, {len(done)}/{n} task runs Completed"
            if (fr.get("state") or {}).get("type") == "COMPLETED" and len(tasks) == n and len(done) == n:
                return str(fr["id"])
        time.sleep(0.2)
    raise SystemExit(f"the server does not hold flow run {flow_run_name} with {n} Completed task runs: {seen}")


def heartbeat_events(url: str, flow_run_ids: list[str]) -> int:
    body = {"filter": {"event": {"prefix": ["prefect.flow-run.heartbeat"]},
                       "any_resource": {"id": [f"prefect.flow-run.{i}" for i in flow_run_ids]}},
            "limit": 50}
    return int(api(url, "/events/filter", body).get("total", 0))


def count_503(log: Path) -> int:
    try:
        return log.read_text(errors="replace").count("Encountered retryable exception in request")
    except OSError:
        return 0


def newest_run_id(ws: Path) -> str:
    runs = sorted((ws / ".codex" / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return runs[-1].name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--home", help="CODEX_TASKS_HOME for the managed server (default: a fresh one); "
                    "its server is stopped at the end")
    ap.add_argument("--server-defaults", action="store_true",
                    help="start the managed server with Prefect's defaults instead of codex-tasks' tuning")
    args = ap.parse_args()
    from codex_tasks.orchestrate.prefect import server

    with tempfile.TemporaryDirectory() as d:
        ws = Path(d) / "ws"
        ws.mkdir()
        os.environ["CODEX_TASKS_HOME"] = args.home or str(Path(d) / "home")
        os.environ.pop("PREFECT_API_URL", None)
        # the server logs each request it answers with 503 (a retryable database error)
        os.environ["PREFECT_SERVER_LOG_RETRYABLE_ERRORS"] = "true"
        if args.server_defaults:  # Prefect's own defaults instead of codex-tasks' tuning (the user's env wins)
            os.environ.update(PREFECT_DEFAULTS)
        server.START_TIMEOUT = 600  # a fresh database is migrated first: minutes on a loaded machine
        url = server.ensure_server()
        log = server.server_home() / "server.log"
        busy_before = count_503(log)
        try:
            run(args.repeats, ws, url)
            print(f"  503 answers (retryable database errors) logged by the server during the bench: "
                  f"{count_503(log) - busy_before}")
        finally:
            server.stop()


def run(repeats: int, ws: Path, url: str) -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    codex_env = dict(base)  # finds the managed server by CODEX_TASKS_HOME, as a user's run does
    hand_env = {**base, "PREFECT_API_URL": url, "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL"}
    (ws / "s100.yaml").write_text(seq(100))
    (ws / "s1.yaml").write_text(seq(1))
    (ws / "hand.py").write_text(HAND_FLOW)
    py = sys.executable
    flow_runs: dict[str, list[str]] = {"codex": [], "hand": []}
    hand_heartbeat: set[str] = set()

    def case(name: str) -> float:
        n = 100 if name.endswith("100") else 1
        if name.startswith("run"):
            dt, _ = timed([CODEX, "run", f"s{n}.yaml", "-q"], ws, codex_env)
            flow_runs["codex"].append(read_back(url, newest_run_id(ws), n))
        else:
            run_name = f"hand-{uuid.uuid4().hex[:8]}"
            dt, out = timed([py, "hand.py", str(n), run_name], ws, hand_env)
            hand_heartbeat.update(line for line in out.splitlines() if line.startswith("heartbeat_frequency="))
            flow_runs["hand"].append(read_back(url, run_name, n))
        return dt

    for name in CASES:  # warm-up: byte-code, the server's first queries, the page cache
        case(name)
    t: dict[str, list[float]] = {k: [] for k in ("pass", "help", "validate", *CASES)}
    for r in range(repeats):
        t["pass"].append(timed([py, "-c", "pass"], ws, hand_env)[0])
        t["help"].append(timed([CODEX, "--help"], ws, codex_env)[0])
        t["validate"].append(timed([CODEX, "validate", "s100.yaml"], ws, codex_env)[0])
        for name in CASES[r % len(CASES):] + CASES[:r % len(CASES)]:
            t[name].append(case(name))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in t.items()), flush=True)
    time.sleep(6)  # the event persister flushes every few seconds
    beats = {side: heartbeat_events(url, ids) for side, ids in flow_runs.items()}
    report(t, repeats, beats, hand_heartbeat)


def report(t: dict[str, list[float]], repeats: int, beats: dict[str, int], hand_heartbeat: set[str]) -> None:
    m = {k: statistics.median(v) for k, v in t.items()}
    per = {side: [(a - b) / 99 for a, b in zip(t[f"{k}100"], t[f"{k}1"], strict=True)]
           for side, k in (("codex", "run"), ("hand", "hand"))}
    print(f"median of {repeats} interleaved rounds (seconds); load average {os.getloadavg()[0]:.2f} at the end")
    print(f"  python -c pass            {m['pass']:.3f}")
    print(f"  codex-tasks --help        {m['help']:.3f}   (+{m['help'] - m['pass']:.3f} over bare Python; goal < 0.3)")
    print(f"  codex-tasks validate      {m['validate']:.3f}   (+{m['validate'] - m['pass']:.3f} over bare Python; goal < 0.3)")
    print(f"  100 steps: codex-tasks {m['run100']:.3f}, hand-written {m['hand100']:.3f}  "
          f"(whole process {m['run100'] / m['hand100']:.2f}x)")
    print(f"  1 step:    codex-tasks {m['run1']:.3f}, hand-written {m['hand1']:.3f}  "
          f"ratio {m['run1'] / m['hand1']:.2f}x  (goal <= 0.8x)")
    pc, ph = (m["run100"] - m["run1"]) / 99, (m["hand100"] - m["hand1"]) / 99
    print(f"  per-step marginal (from medians): codex {pc * 1000:.1f} ms, hand {ph * 1000:.1f} ms, "
          f"ratio {pc / ph:.2f}x  (goal <= 1.2x)")
    rounds = [c / h for c, h in zip(per["codex"], per["hand"], strict=True)]
    print(f"  per-step marginal, per round: ratios {', '.join(f'{x:.2f}' for x in rounds)}; "
          f"median {statistics.median(rounds):.2f}x")
    print(f"  one-step ratio, per round: {', '.join(f'{a / b:.2f}' for a, b in zip(t['run1'], t['hand1'], strict=True))}")
    print(f"  heartbeat: hand script reports {', '.join(sorted(hand_heartbeat)) or '?'}; codex-tasks sets "
          f"flows.heartbeat_frequency=None; heartbeat events on the server: codex {beats['codex']}, hand {beats['hand']}")
    print(f"  every timed run read back from the server: {repeats * 2 + 2} flow runs a side, all task runs Completed")


if __name__ == "__main__":
    main()
