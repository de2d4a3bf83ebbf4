"""`codex-tasks run` end to end on a real Prefect server (the session's managed one)."""

from __future__ import annotations

import json
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import run_cli

LEGACY = textwrap.dedent("""\
    version: "1.0"
    title: "Three phases"
    metadata:
      seed: 11
      default_logs_dir: "logs"
    phases:
      - name: Prepare
        id: P1
        steps:
          - id: P1.1
            description: "Make the log folder."
            actions:
              - "mkdir -p {logs_dir}"
              - "export X={seed}"
              - "echo \\"x=$X\\" > {logs_dir}/x.txt"
            outputs:
              - path: "{logs_dir}/x.txt"
                description: "X as seen by the next action."
          - id: P1.2
            description: "Review by hand."
      - name: Build
        id: P2
        steps:
          - id: P2.1
            description: "Build."
            commands: ["echo built > {logs_dir}/built.txt"]
            outputs: [{path: "{logs_dir}/built.txt"}]
      - name: Gate
        id: P3
        steps:
          - id: P3.1
            description: "There must be a README."
            assertions: ["test -f README.md"]
            template: |
              Question for the on-call engineer {timestamp}:
              While performing [{step_number}:{step_description}], encountered the following error:
              {error_message}
              Context: {context}
          - id: P3.2
            description: "After the gate."
            actions: ["touch {logs_dir}/after.txt"]
    cli_parameters:
      seed: {default: 11, description: "Global seed."}
    """)


def _api(url: str, path: str, body: dict) -> list[dict]:
    req = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _flow_run(url: str, run_id: str) -> dict:
    runs = _api(url, "/flow_runs/filter", {"flow_runs": {"name": {"any_": [run_id]}}})
    assert runs, f"no flow run named {run_id}"
    return runs[-1]


def _task_runs(url: str, flow_run_id: str, expect: int) -> list[dict]:
    deadline = time.monotonic() + 20  # task-run events reach the server asynchronously
    while True:
        trs = _api(url, "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
        if len(trs) >= expect or time.monotonic() > deadline:
            return trs
        time.sleep(0.5)


def _summary(ws: Path) -> tuple[Path, dict]:
    run_dir = sorted((ws / ".codex" / "runs").iterdir())[-1]
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def test_failing_assertion_in_phase_three(tmp_path: Path, prefect_url: str) -> None:
    ws = tmp_path
    (ws / "seq.yaml").write_text(LEGACY)
    proc = run_cli("run", "seq.yaml", cwd=ws, check=1)
    assert "Traceback" not in proc.stderr
    run_dir, summary = _summary(ws)
    status = {s["id"]: s["status"] for s in summary["steps"]}
    assert status == {"P1.1": "succeeded", "P1.2": "manual", "P2.1": "succeeded", "P3.1": "failed", "P3.2": "not_run"}
    # earlier phases' outputs exist; the step after the failed one did not run
    assert (ws / "logs" / "built.txt").is_file()
    assert not (ws / "logs" / "after.txt").exists()
    # export in one action is visible to the next action of the same step
    assert (ws / "logs" / "x.txt").read_text().strip() == "x=11"
    # the failed step's error block uses its own template
    lines = (run_dir / "error_captures.ndjson").read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["step_id"] == "P3.1" and "test -f README.md" in rec["error_message"]
    assert rec["rendered"].startswith("Question for the on-call engineer ")
    assert "While performing [P3.1:There must be a README.]" in rec["rendered"]
    for name in ("sequence.yaml", "events.ndjson", "summary.json", "report.md", "report.html"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "steps" / "P1.1" / "step.log").is_file()
    assert summary["exit_code"] == 1
    # outputs carry their SHA-256
    p11 = next(s for s in summary["steps"] if s["id"] == "P1.1")
    assert p11["outputs"][0]["path"] == "logs/x.txt" and len(p11["outputs"][0]["sha256"]) == 64
    # the flow run is Failed on the server and has a task run for every executed step
    fr = _flow_run(prefect_url, run_dir.name)
    assert fr["state_type"] == "FAILED"
    trs = _task_runs(prefect_url, fr["id"], expect=4)
    names = {t["name"] for t in trs}
    assert {"P1.1", "P2.1", "P3.1"} <= names
    assert "P3.2" not in names
    states = {t["name"]: t["state_type"] for t in trs}
    assert states["P3.1"] == "FAILED" and states["P2.1"] == "COMPLETED"
    # .codex/ keeps itself out of git
    assert (ws / ".codex" / ".gitignore").read_text().strip().endswith("*")


def test_success_strict_dry_run_only_from(tmp_path: Path, prefect_url: str) -> None:
    ws = tmp_path
    (ws / "README.md").write_text("hi\n")
    (ws / "seq.yaml").write_text(LEGACY)
    run_cli("run", "seq.yaml", cwd=ws, check=0)
    _, summary = _summary(ws)
    assert {s["status"] for s in summary["steps"]} == {"succeeded", "manual"}
    # --strict: a description-only step is a failure
    run_cli("run", "seq.yaml", "--strict", cwd=ws, check=1)
    _, summary = _summary(ws)
    assert next(s for s in summary["steps"] if s["id"] == "P1.2")["status"] == "failed"
    # --dry-run executes nothing and writes nothing outside the run folder
    ws2 = tmp_path / "dry"
    ws2.mkdir()
    (ws2 / "seq.yaml").write_text(LEGACY)
    proc = run_cli("run", "seq.yaml", "--dry-run", cwd=ws2, check=0)
    assert sorted(p.name for p in ws2.iterdir()) == [".codex", "seq.yaml"]
    run_dir, summary = _summary(ws2)
    log = (run_dir / "steps" / "P1.1" / "step.log").read_text()
    assert "[dry-run] actions: mkdir -p logs" in log
    assert "run " in proc.stdout
    # the legacy dry_run parameter does the same
    (ws2 / "seq2.yaml").write_text(LEGACY + "  dry_run: {default: true}\n")
    run_cli("run", "seq2.yaml", cwd=ws2, check=0)
    assert not (ws2 / "logs").exists()
    # --only and --from
    ws3 = tmp_path / "sel"
    ws3.mkdir()
    (ws3 / "seq.yaml").write_text(LEGACY)
    (ws3 / "logs").mkdir()
    run_cli("run", "seq.yaml", "--only", "P2.1", cwd=ws3, check=0)
    _, summary = _summary(ws3)
    assert {s["id"]: s["status"] for s in summary["steps"]}["P2.1"] == "succeeded"
    assert [s["id"] for s in summary["steps"] if s["status"] != "skipped"] == ["P2.1"]
    (ws3 / "README.md").write_text("x")
    run_cli("run", "seq.yaml", "--from", "P3.1", cwd=ws3, check=0)
    _, summary = _summary(ws3)
    ran = [s["id"] for s in summary["steps"] if s["status"] == "succeeded"]
    assert ran == ["P3.1", "P3.2"]


def test_param_override_and_env(tmp_path: Path, prefect_url: str) -> None:
    seq = textwrap.dedent("""\
        title: params
        params:
          name: {type: str, default: world}
          n: {type: int, default: 2}
        phases:
          - id: a
            steps:
              - id: greet
                commands:
                  - 'printf "%s" "{name}" > out.txt'
                  - 'printf "%s" "$CODEX_PARAM_N" > n.txt'
                  - 'printf "%s" "{{ n * 2 }}" > n2.txt'
        """)
    (tmp_path / "s.yaml").write_text(seq)
    evil = 'a"b $(touch PWNED) `id` \'c\' ; d'
    run_cli("run", "s.yaml", "--param", f"name={evil}", "--param", "n=5", cwd=tmp_path, check=0)
    assert (tmp_path / "out.txt").read_text() == evil
    assert (tmp_path / "n.txt").read_text() == "5"
    assert (tmp_path / "n2.txt").read_text() == "10"
    assert not (tmp_path / "PWNED").exists()
    proc = run_cli("run", "s.yaml", "--param", "n=abc", cwd=tmp_path, check=2)
    assert "n=abc" in proc.stderr and "Traceback" not in proc.stderr


def test_secret_param_is_redacted(tmp_path: Path, prefect_url: str) -> None:
    seq = textwrap.dedent("""\
        title: secret
        params:
          token: {type: secret, env: MY_TOKEN}
        phases:
          - id: a
            steps:
              - id: leak
                commands: ['echo "token is {token}"', 'echo "env $CODEX_PARAM_TOKEN"', 'false']
        """)
    (tmp_path / "s.yaml").write_text(seq)
    secret = "s3cr3t-value-abcdef"
    run_cli("run", "s.yaml", cwd=tmp_path, env={"MY_TOKEN": secret}, check=1)
    run_dir = sorted((tmp_path / ".codex" / "runs").iterdir())[-1]
    for f in run_dir.rglob("*"):
        if f.is_file():
            assert secret not in f.read_text(errors="replace"), f
    assert "[REDACTED]" in (run_dir / "steps" / "leak" / "step.log").read_text()


def test_on_error_continue_and_retries(tmp_path: Path, prefect_url: str) -> None:
    seq = textwrap.dedent("""\
        title: continue
        phases:
          - id: a
            steps:
              - id: flaky
                retries: 2
                retry_delay: 0
                commands:
                  - 'n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; test $((n+1)) -ge 3'
              - id: bad
                needs: []
                on_error: continue
                commands: ['exit 3']
              - id: after_bad
                needs: [bad]
                commands: ['touch after_bad']
              - id: independent
                needs: [flaky]
                commands: ['touch independent']
        """)
    (tmp_path / "s.yaml").write_text(seq)
    run_cli("run", "s.yaml", cwd=tmp_path, check=1)
    _, summary = _summary(tmp_path)
    st = {s["id"]: s["status"] for s in summary["steps"]}
    assert st == {"flaky": "succeeded", "bad": "failed", "after_bad": "not_run", "independent": "succeeded"}
    assert (tmp_path / "count").read_text().strip() == "3"
    assert (tmp_path / "independent").exists() and not (tmp_path / "after_bad").exists()


def test_timeout_kills_the_step(tmp_path: Path, prefect_url: str) -> None:
    # Without the kill, `sleep 600` outlives run_cli's own 300 s limit and the test fails there.
    seq = ("title: t\nphases:\n  - id: a\n    steps:\n      - id: slow\n        timeout: 1\n"
           "        commands: ['sleep 600 & wait; touch finished']\n")
    (tmp_path / "s.yaml").write_text(seq)
    run_cli("run", "s.yaml", cwd=tmp_path, check=1)
    _, summary = _summary(tmp_path)
    assert "timed out" in summary["steps"][0]["error"]
    assert not (tmp_path / "finished").exists()
    from codex_tasks.core.process import processes_with_env

    # every process of the step carries the run id in its environment (the pid in sleeper.pid is
    # the one inside the step's PID namespace, so /proc is searched by environment instead)
    state = json.loads(next((tmp_path / ".codex" / "runs").glob("*/state.json")).read_text())
    assert not processes_with_env("CODEX_RUN_ID", state["run_id"]), "the step's child outlived its timeout"


@pytest.mark.parametrize("args", [["--max-parallel", "0"], ["--runner", "bogus"]])
def test_bad_options_exit_2(tmp_path: Path, args: list[str]) -> None:
    (tmp_path / "s.yaml").write_text("title: t\nphases: []\n")
    proc = run_cli("run", "s.yaml", *args, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
