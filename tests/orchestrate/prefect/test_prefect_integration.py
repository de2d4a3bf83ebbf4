"""History in the Prefect UI, scheduled runs, and Dask scale-out (real server, real Chromium, real Dask)."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import CODEX, ROOT, run_cli
from tests.orchestrate.test_runner import _api, _flow_run, _task_runs

ARTIFACTS = ROOT / "test-artifacts"

SEQ = textwrap.dedent("""\
    title: "UI history"
    params:
      level: {type: int, default: 3}
    phases:
      - id: p
        steps:
          - id: build
            commands: ['echo build']
          - id: flaky
            retries: 1
            retry_delay: 0
            commands: ['test -f once || { touch once; exit 1; }']
    """)


def test_run_history_in_prefect_and_ui(tmp_path: Path, prefect_url: str) -> None:
    (tmp_path / "s.yaml").write_text(SEQ)
    run_cli("run", "s.yaml", "--param", "level=5", cwd=tmp_path, check=0)
    run_id = sorted((tmp_path / ".codex" / "runs").iterdir())[-1].name
    fr = _flow_run(prefect_url, run_id)
    assert fr["state_type"] == "COMPLETED"
    assert "sequence:UI history" in fr["tags"] and not any(t.startswith("param:") for t in fr["tags"])
    assert fr["parameters"].get("level") == 5  # the sequence's parameters are the flow run's (issue 15)
    trs = {t["name"]: t for t in _task_runs(prefect_url, fr["id"], expect=2)}
    assert set(trs) == {"build", "flaky"}
    assert trs["flaky"]["run_count"] == 2  # the retry is visible
    arts = _api(prefect_url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [fr["id"]]}}})
    kinds = {a["type"]: a for a in arts}
    assert "markdown" in kinds and run_id in kinds["markdown"]["data"]
    assert "table" in kinds
    status = json.loads(run_cli("server", "status", "--json", cwd=tmp_path, check=0).stdout)
    assert status["running"] is True and status["url"] == prefect_url
    assert run_cli("server", "open", cwd=tmp_path, check=0).stdout.strip() == prefect_url.removesuffix("/api")

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "prefect-ui-flow-run.png"
    page = f"{prefect_url.removesuffix('/api')}/runs/flow-run/{fr['id']}"
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'chrome'}",
         "--virtual-time-budget=20000", "--window-size=1280,900", f"--screenshot={shot}", "--dump-dom", page],
        capture_output=True, text=True, timeout=120)
    assert run_id in proc.stdout, "the flow-runs page shows the run id"
    assert shot.is_file() and shot.stat().st_size > 10_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TICK = textwrap.dedent("""\
    title: tick
    phases:
      - id: p
        steps:
          - id: tick
            commands: ['date >> ticks.txt']
          - id: flaky
            commands: ['test -f once || { touch once; echo the widget is missing >&2; exit 3; }']
    """)
STARTED = re.compile(r"^\d\d:\d\d:\d\d run (\S+) started \(scheduled\)$")
ENDED = re.compile(r"^\d\d:\d\d:\d\d run (\S+) (completed · 2 steps · \d+\.\d s"
                   r"|failed at step flaky: exit code 3: the widget is missing — (codex-tasks show \S+))$")


@pytest.mark.slow
def test_serve_says_a_line_per_scheduled_run_and_its_commands_work(tmp_path: Path, prefect_url: str) -> None:
    """`serve` prints a line when each scheduled run starts and one when it ends (the first fails,
    the next succeed), nothing of Prefect's runner, and only commands that work; no scheduled run
    leaves a pickled result in Prefect's result storage (issue 15.4)."""
    (tmp_path / "s.yaml").write_text(TICK)
    storage = tmp_path / "prefect-storage"  # where Prefect would pickle a result or an exception
    name = f"tick-{os.getpid()}"
    proc = subprocess.Popen([CODEX, "serve", "s.yaml", "--interval", "5", "--name", name], cwd=tmp_path,
                            env={**os.environ, "PREFECT_LOCAL_STORAGE_PATH": str(storage)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    out: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while not any(ENDED.match(x) and "completed" in x for x in out):  # a failed run, then a good one
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "serve exited:\n" + "\n".join(out)
            out.append(line)
        banner = next(x for x in out if x.startswith("run it now: "))
        listing = run_cli("schedule", "ls", cwd=tmp_path, check=0).stdout
        assert name in listing
        pause = banner.split("; pause: ", 1)[1].split()
        assert pause[:3] == ["codex-tasks", "schedule", "pause"]
        assert "paused" in run_cli(*pause[1:], cwd=tmp_path, check=0).stdout
        rows = json.loads(run_cli("schedule", "ls", "--json", cwd=tmp_path, check=0).stdout)
        assert next(r for r in rows if r["name"] == name)["paused"] is True
        run_cli("schedule", "resume", name, cwd=tmp_path, check=0)
    finally:
        before = list(out)  # what it said while serving; a run SIGTERM stops may say more
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode in (0, -signal.SIGTERM, 143)
    while (line := lines.get(timeout=30)) is not None:
        out.append(line)
    text = "\n".join(out)
    started = [m.group(1) for x in out if (m := STARTED.match(x))]
    ended = [m for x in out if (m := ENDED.match(x))]
    assert len(ended) >= 2 and [m.group(1) for m in ended] == started[:len(ended)], text
    assert "failed at step flaky" in ended[0].group(2) and "completed" in ended[1].group(2), text
    # nothing but the banner and the per-run lines: no Prefect runner logs, warnings or tracebacks
    others = [x for x in before if not (STARTED.match(x) or ENDED.match(x))]
    assert len(others) == 2 and others[0].startswith("serving ") and others[1] == banner, text
    assert "prefect deployment run" not in text and "Traceback" not in text
    # every command it suggested works: `show` for the failed run, and `run it now`
    show = ended[0].group(3).split()
    assert show[:2] == ["codex-tasks", "show"] and "exit code 3" in run_cli(*show[1:], cwd=tmp_path, check=0).stdout
    now = banner.removeprefix("run it now: ").split("; pause: ")[0].split()
    assert now[:2] == ["codex-tasks", "run"] and " succeeded: " in run_cli(*now[1:], cwd=tmp_path, check=0).stdout
    assert run_cli("schedule", "pause", "no-such-schedule", cwd=tmp_path).returncode == 2
    # scheduled flow runs are named by run id; Prefect kept no result of them
    first = started[0]
    runs = _api(prefect_url, "/flow_runs/filter", {"flow_runs": {"name": {"any_": [first, f"{first} scheduled"]}}})
    assert {r["name"] for r in runs} == {first, f"{first} scheduled"}
    assert {r["state_type"] for r in runs} == {"FAILED"}
    arts = _api(prefect_url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [r["id"] for r in runs]}}})
    assert not [a for a in arts if a["type"] == "result"]
    assert not storage.exists() or not any(storage.iterdir()), sorted(storage.iterdir())


FOUR = textwrap.dedent("""\
    title: four
    phases:
      - id: p
        steps:
          - {id: a, needs: [], commands: ['sleep 1; echo a > a.txt']}
          - {id: b, needs: [], commands: ['sleep 1; echo b > b.txt']}
          - {id: c, needs: [], commands: ['sleep 1']}
          - {id: d, needs: [], commands: ['sleep 1']}
    """)


def _overlap(run_dir: Path) -> bool:
    events = [json.loads(x) for x in (run_dir / "events.ndjson").read_text().splitlines()]
    start = {e["step_id"]: e["time"] for e in events if e["type"] == "step.started"}
    end = {e["step_id"]: e["time"] for e in events if e["type"] == "step.succeeded"}
    spans = sorted((start[k], end[k]) for k in start)
    return any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1))


def _check_dask_run(ws: Path) -> None:
    run_dir = sorted((ws / ".codex" / "runs").iterdir())[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {s["status"] for s in summary["steps"]} == {"succeeded"}
    for sid in "abcd":
        assert (run_dir / "steps" / sid / "step.log").is_file()
    assert _overlap(run_dir)
    assert (ws / "a.txt").read_text() == "a\n"


@pytest.mark.slow
def test_dask_local_cluster(tmp_path: Path, prefect_url: str) -> None:
    (tmp_path / "s.yaml").write_text(FOUR)
    run_cli("run", "s.yaml", "--runner", "dask:2", cwd=tmp_path, check=0, timeout=400)
    _check_dask_run(tmp_path)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _wait_until(cond, timeout: float, what: str) -> None:
    """Poll `cond` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_dask_external_scheduler(tmp_path: Path, prefect_url: str) -> None:
    (tmp_path / "s.yaml").write_text(FOUR)
    port = _free_port()
    dask = str(Path(sys.executable).parent / "dask")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        _wait_until(lambda: _accepts(port), 60, "the Dask scheduler listens")
        for _ in range(2):
            procs.append(subprocess.Popen([dask, "worker", f"tcp://127.0.0.1:{port}", "--nthreads", "1",
                                           "--no-dashboard"], cwd=tmp_path, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout="30s") as client:
            _wait_until(lambda: len(client.scheduler_info()["workers"]) >= 2, 120, "both Dask workers joined")
        run_cli("run", "s.yaml", f"--runner=dask=tcp://127.0.0.1:{port}", cwd=tmp_path, check=0, timeout=400)
        _check_dask_run(tmp_path)
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def test_dask_unreachable_address_is_exit_2(tmp_path: Path, prefect_url: str) -> None:
    (tmp_path / "s.yaml").write_text(FOUR)
    proc = run_cli("run", "s.yaml", f"--runner=dask=tcp://127.0.0.1:{_free_port()}", cwd=tmp_path)
    assert proc.returncode == 2 and "cannot reach the Dask scheduler" in proc.stderr
    assert "Traceback" not in proc.stderr
