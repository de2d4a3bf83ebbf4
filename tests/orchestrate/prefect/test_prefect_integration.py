"""History in the Prefect UI, scheduled runs, and Dask scale-out (real server, real Chromium, real Dask)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
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


@pytest.mark.slow
def test_serve_on_an_interval(tmp_path: Path, prefect_url: str) -> None:
    (tmp_path / "s.yaml").write_text("title: tick\nphases:\n  - id: p\n    steps:\n      - id: tick\n        commands: ['date >> ticks.txt']\n")
    name = f"tick-{os.getpid()}"
    proc = subprocess.Popen([CODEX, "serve", "s.yaml", "--interval", "10", "--name", name], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 150
        done: list[str] = []
        while time.monotonic() < deadline:
            runs = tmp_path / ".codex" / "runs"
            done = [d.name for d in runs.iterdir()
                    if (d / "summary.json").exists() and json.loads((d / "summary.json").read_text())["status"] == "succeeded"] \
                if runs.is_dir() else []
            if len(done) >= 2:
                break
            time.sleep(1)
        assert len(done) >= 2, "two scheduled runs completed"
        listing = run_cli("schedule", "ls", cwd=tmp_path, check=0).stdout
        assert name in listing
        assert "paused" in run_cli("schedule", "pause", name, cwd=tmp_path, check=0).stdout
        rows = json.loads(run_cli("schedule", "ls", "--json", cwd=tmp_path, check=0).stdout)
        assert next(r for r in rows if r["name"] == name)["paused"] is True
        run_cli("schedule", "resume", name, cwd=tmp_path, check=0)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode in (0, -signal.SIGTERM, 143)
    assert run_cli("schedule", "pause", "no-such-schedule", cwd=tmp_path).returncode == 2
    # only commands that work (no Prefect banner), and scheduled flow runs named by run id
    out = proc.stdout.read() if proc.stdout else ""
    assert "run it now: codex-tasks run" in out, out
    assert "prefect deployment run" not in out and "Traceback" not in out
    names = {r["name"] for r in _api(prefect_url, "/flow_runs/filter",
                                      {"flow_runs": {"name": {"any_": [done[0], f"{done[0]} scheduled"]}}})}
    assert names == {done[0], f"{done[0]} scheduled"}


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
