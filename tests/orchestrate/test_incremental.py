"""Caching, resume after failure or SIGKILL, cancel, parallel steps (real runs, real Prefect)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

from tests.conftest import CODEX, run_cli
from tests.orchestrate.test_runner import _api, _flow_run, _task_runs


def _latest(ws: Path) -> tuple[Path, dict]:
    run_dir = sorted((ws / ".codex" / "runs").iterdir())[-1]
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def _statuses(ws: Path) -> dict[str, str]:
    return {s["id"]: s["status"] for s in _latest(ws)[1]["steps"]}


CACHED = textwrap.dedent("""\
    title: cache
    phases:
      - id: p
        steps:
          - id: a
            cache: true
            deps: [a.txt]
            commands: ['cat a.txt > out_a.txt', 'echo a >> counter']
            outputs: [{path: out_a.txt}]
          - id: b
            cache: true
            commands: ['cat out_a.txt out_a.txt > out_b.txt', 'echo b >> counter']
            outputs: [{path: out_b.txt}]
          - id: c
            needs: []
            cache: true
            deps: ["data/*.txt"]
            commands: ['cat data/*.txt > out_c.txt', 'echo c >> counter']
            outputs: [{path: out_c.txt}]
          - id: plain
            needs: []
            commands: ['echo plain >> counter']
    """)


def _counter(ws: Path) -> list[str]:
    return (ws / "counter").read_text().split()


def test_cache_hits_changes_and_force(tmp_path: Path, prefect_url: str) -> None:
    ws = tmp_path
    (ws / "s.yaml").write_text(CACHED)
    (ws / "a.txt").write_text("one\n")
    (ws / "data").mkdir()
    (ws / "data" / "x.txt").write_text("x\n")
    run_cli("run", "s.yaml", cwd=ws, check=0)
    assert sorted(_counter(ws)) == ["a", "b", "c", "plain"]
    # second run: every cacheable step cached, none executed (the plain step is not cacheable)
    (ws / "counter").write_text("")
    run_cli("run", "s.yaml", cwd=ws, check=0)
    assert _counter(ws) == ["plain"]
    assert _statuses(ws) == {"a": "cached", "b": "cached", "c": "cached", "plain": "succeeded"}
    run_dir, _ = _latest(ws)
    events = [json.loads(x) for x in (run_dir / "events.ndjson").read_text().splitlines()]
    assert {e["step_id"] for e in events if e["type"] == "step.cached"} == {"a", "b", "c"}
    # the cached step's report files are linked into the new run folder
    assert (run_dir / "steps" / "a" / "step.log").is_file()
    # the Prefect history has the run too, its cached steps in Prefect's own Cached state
    fr = _flow_run(prefect_url, run_dir.name)
    trs = {t["name"]: t["state_name"] for t in _task_runs(prefect_url, fr["id"], expect=4)}
    assert trs == {"a": "Cached", "b": "Cached", "c": "Cached", "plain": "Completed"}
    # plan says so too, without running anything
    plan = json.loads(run_cli("plan", "s.yaml", "--format", "json", cwd=ws, check=0).stdout)
    assert {s["id"]: s["action"] for s in plan["steps"]} == {"a": "cached", "b": "cached", "c": "cached", "plain": "run"}
    # one dep changed: exactly that step and its dependents rerun
    (ws / "counter").write_text("")
    (ws / "a.txt").write_text("two\n")
    run_cli("run", "s.yaml", cwd=ws, check=0)
    assert sorted(_counter(ws)) == ["a", "b", "plain"]
    # a glob dep: a new file under data/ reruns c only
    (ws / "counter").write_text("")
    (ws / "data" / "y.txt").write_text("y\n")
    run_cli("run", "s.yaml", cwd=ws, check=0)
    assert sorted(_counter(ws)) == ["c", "plain"]
    # an edited or deleted output reruns its step (and, edited, its dependents see new content)
    (ws / "counter").write_text("")
    (ws / "out_c.txt").write_text("tampered")
    run_cli("run", "s.yaml", cwd=ws, check=0)
    assert sorted(_counter(ws)) == ["c", "plain"]
    (ws / "counter").write_text("")
    (ws / "out_b.txt").unlink()
    run_cli("run", "s.yaml", cwd=ws, check=0)
    assert sorted(_counter(ws)) == ["b", "plain"]
    # --force=ID reruns that step; --force reruns all
    (ws / "counter").write_text("")
    run_cli("run", "s.yaml", "--force=c", cwd=ws, check=0)
    assert sorted(_counter(ws)) == ["c", "plain"]
    (ws / "counter").write_text("")
    run_cli("run", "s.yaml", "--force", cwd=ws, check=0)
    assert sorted(_counter(ws)) == ["a", "b", "c", "plain"]
    # cache ls / clear
    assert "out" not in run_cli("cache", "ls", cwd=ws, check=0).stderr
    assert "removed" in run_cli("cache", "clear", cwd=ws, check=0).stdout
    (ws / "counter").write_text("")
    run_cli("run", "s.yaml", cwd=ws, check=0)
    assert sorted(_counter(ws)) == ["a", "b", "c", "plain"]


RESUME = textwrap.dedent("""\
    title: resume
    phases:
      - id: p
        steps:
          - id: one
            commands: ['echo one >> counter']
          - id: two
            commands: ['echo two >> counter', 'test -f fixed']
          - id: three
            commands: ['echo three >> counter']
    """)


def test_resume_after_failure(tmp_path: Path, prefect_url: str) -> None:
    ws = tmp_path
    (ws / "s.yaml").write_text(RESUME)
    run_cli("run", "s.yaml", cwd=ws, check=1)
    first_dir, summary = _latest(ws)
    assert _counter(ws) == ["one", "two"]
    (ws / "fixed").write_text("")
    (ws / "counter").write_text("")
    proc = run_cli("run", "s.yaml", "--resume", cwd=ws, check=0)
    assert "=" in proc.stdout or "kept" in proc.stdout
    assert _counter(ws) == ["two", "three"]
    run_dir, summary = _latest(ws)
    assert run_dir == first_dir and summary["run_id"] == first_dir.name
    assert summary["attempt"] == 2 and summary["status"] == "succeeded"
    events = [json.loads(x) for x in (run_dir / "events.ndjson").read_text().splitlines()]
    assert any(e["type"] == "run.resumed" for e in events)
    # nothing left to resume
    assert run_cli("run", "s.yaml", "--resume", cwd=ws).returncode == 2


def _wait_for(pred, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.1)


def _started(ws: Path, step: str) -> bool:
    runs = ws / ".codex" / "runs"
    if not runs.is_dir():
        return False
    for d in runs.iterdir():
        ev = d / "events.ndjson"
        if ev.exists() and f'"step.started", "run_id": "{d.name}", "step_id": "{step}"' in ev.read_text():
            return True
    return False


LONG = textwrap.dedent("""\
    title: long
    phases:
      - id: p
        steps:
          - id: first
            commands: ['echo first >> counter']
          - id: long
            commands:
              - 'echo long >> counter'
              - 'for i in $(seq 600); do test -f go && break; sleep 0.1; done'
              - 'test -f go'
          - id: last
            commands: ['echo last >> counter']
    """)


def test_sigkill_then_resume(tmp_path: Path, prefect_url: str) -> None:
    ws = tmp_path
    (ws / "s.yaml").write_text(LONG)
    proc = subprocess.Popen([CODEX, "run", "s.yaml"], cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _started(ws, "long"))
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    (ws / "go").write_text("")  # also lets the orphaned step script end
    run_dir = sorted((ws / ".codex" / "runs").iterdir())[-1]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["status"] == "running" and state["steps"]["first"]["status"] == "succeeded"
    (ws / "counter").write_text("")
    run_cli("run", "s.yaml", "--resume", cwd=ws, check=0)
    assert _counter(ws) == ["long", "last"]
    run_dir2, summary = _latest(ws)
    assert run_dir2 == run_dir and summary["status"] == "succeeded"
    # Prefect: the killed attempt's flow run is Crashed, the resumed one is tagged resume-1
    runs = _api(prefect_url, "/flow_runs/filter",
                {"flow_runs": {"name": {"any_": [run_dir.name, f"{run_dir.name} resume 1"]}}})
    by_tag = {("resume-1" in r["tags"]): r for r in runs}
    assert by_tag[False]["state_type"] == "CRASHED" and by_tag[False]["name"] == run_dir.name
    assert by_tag[True]["state_type"] == "COMPLETED" and by_tag[True]["name"] == f"{run_dir.name} resume 1"
    assert len({r["name"] for r in runs}) == len(runs) == 2  # no two flow runs share a name


def test_cancel_from_another_terminal(tmp_path: Path, prefect_url: str) -> None:
    ws = tmp_path
    (ws / "s.yaml").write_text(LONG)
    proc = subprocess.Popen([CODEX, "run", "s.yaml"], cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _started(ws, "long"))
        out = run_cli("cancel", cwd=ws, check=0).stdout
        assert "cancelled" in out
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    _, summary = _latest(ws)
    assert summary["status"] == "cancelled"
    assert {s["id"]: s["status"] for s in summary["steps"]} == {"first": "succeeded", "long": "not_run", "last": "not_run"}
    run_dir, _ = _latest(ws)
    cancelled = _api(prefect_url, "/flow_runs/filter", {"flow_runs": {"name": {"any_": [run_dir.name]}}})
    assert [r["state_type"] for r in cancelled] == ["CANCELLED"]  # not FAILED
    (ws / "go").write_text("")
    (ws / "counter").write_text("")
    run_cli("run", "s.yaml", "--resume", cwd=ws, check=0)
    assert _counter(ws) == ["long", "last"]
    names = [r["name"] for r in _api(prefect_url, "/flow_runs/filter",
                                     {"flow_runs": {"name": {"like_": run_dir.name}}})]
    assert sorted(names) == [run_dir.name, f"{run_dir.name} resume 1"]


PARALLEL = textwrap.dedent("""\
    title: parallel
    phases:
      - id: p
        steps:
          - id: x
            commands: ['sleep 2']
          - id: y
            needs: []
            commands: ['sleep 2']
    """)


def _windows(ws: Path) -> dict[str, tuple[float, float]]:
    run_dir, _ = _latest(ws)
    events = [json.loads(x) for x in (run_dir / "events.ndjson").read_text().splitlines()]
    start = {e["step_id"]: e["time"] for e in events if e["type"] == "step.started"}
    end = {e["step_id"]: e["time"] for e in events if e["type"] == "step.succeeded"}
    return {k: (start[k], end[k]) for k in start}


def test_parallel_steps_overlap(tmp_path: Path, prefect_url: str) -> None:
    (tmp_path / "s.yaml").write_text(PARALLEL)
    run_cli("run", "s.yaml", cwd=tmp_path, check=0)
    w = _windows(tmp_path)
    first, second = sorted(w.values())
    assert second[0] < first[1], "the second step started before the first finished"
    run_cli("run", "s.yaml", "--max-parallel", "1", cwd=tmp_path, check=0)
    w = _windows(tmp_path)
    first, second = sorted(w.values())
    assert second[0] >= first[1]


def test_runs_list_show_errors_prune(tmp_path: Path, prefect_url: str) -> None:
    ws = tmp_path
    (ws / "s.yaml").write_text(RESUME)
    for _ in range(3):
        run_cli("run", "s.yaml", "-q", cwd=ws, check=1)
    (ws / "fixed").write_text("")
    run_cli("run", "s.yaml", "-q", cwd=ws, check=0)
    listing = run_cli("runs", cwd=ws, check=0).stdout.splitlines()
    assert len(listing) == 4
    shown = run_cli("show", cwd=ws, check=0).stdout
    assert "succeeded" in shown and "three" in shown
    errs = run_cli("errors", listing[2].split()[0], cwd=ws, check=0).stdout
    assert "Question for ChatGPT" in errs and "[two:" in errs
    out = run_cli("runs", "prune", "--keep", "1", cwd=ws, check=0).stdout
    assert "removed 2" in out
    left = [d.name for d in (ws / ".codex" / "runs").iterdir()]
    assert len(left) == 2  # the newest, and the newest failed one


def test_errors_reads_legacy_text_file(tmp_path: Path) -> None:
    legacy = tmp_path / "errors.txt"
    legacy.write_text(
        "Question for ChatGPT 2025-01-02T03:04:05Z:\n"
        "While performing [1.1:Validate the environment], encountered the following error:\n"
        "ModuleNotFoundError: no module named torch\n"
        "Context: pip list shows no torch\n"
        "What are the possible causes, and how can this be resolved while preserving intended functionality?\n\n"
        "Question for ChatGPT 2025-01-02T03:05:00Z:\n"
        "While performing [2.1:Prune], encountered the following error:\n"
        "permission denied\n"
        "Context: rm -rf build\n"
        "What are the possible causes, and how can this be resolved while preserving intended functionality?\n")
    out = json.loads(run_cli("errors", str(legacy), "--json", cwd=tmp_path, check=0).stdout)
    assert [r["step_id"] for r in out] == ["1.1", "2.1"]
    assert out[0]["error_message"].startswith("ModuleNotFoundError")
    assert out[1]["context"] == "rm -rf build"
    assert os.path.exists(legacy)


def test_ctrl_c_saves_state_and_exits_130(tmp_path: Path, prefect_url: str) -> None:
    ws = tmp_path
    (ws / "s.yaml").write_text(LONG)
    proc = subprocess.Popen([CODEX, "run", "s.yaml"], cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _started(ws, "long"))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    run_dir, summary = _latest(ws)
    assert summary["status"] == "interrupted"
    state = json.loads((run_dir / "state.json").read_text())
    assert state["steps"]["first"]["status"] == "succeeded" and state["steps"]["long"]["status"] == "not_run"
    (ws / "go").write_text("")
    (ws / "counter").write_text("")
    run_cli("run", "s.yaml", "--resume", cwd=ws, check=0)
    assert _counter(ws) == ["long", "last"]
