"""What a Prefect user sees of a run, read back over the server's REST API."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.conftest import run_cli
from tests.orchestrate.test_runner import _api, _flow_run, _task_runs

SEQ = textwrap.dedent("""\
    title: Codex tasks history
    params:
      seed: {type: int, default: 7}
      label: {type: str, default: tiny}
      token: {type: secret, env: HISTORY_TOKEN}
    phases:
      - id: a
        steps:
          - id: hello
            commands: ['echo "seed {seed}"']
    """)


def test_parameters_are_the_flow_runs_parameters(tmp_path: Path, prefect_url: str) -> None:
    (tmp_path / "s.yaml").write_text(SEQ)
    run_cli("run", "s.yaml", "-p", "seed=9", cwd=tmp_path, env={"HISTORY_TOKEN": "hush-123456"}, check=0)
    run_id = sorted((tmp_path / ".codex" / "runs").iterdir())[-1].name
    fr = _flow_run(prefect_url, run_id)
    assert fr["parameters"]["seed"] == 9 and fr["parameters"]["label"] == "tiny"
    assert fr["parameters"]["token"] == "***"
    assert "hush-123456" not in str(fr)
    assert not [t for t in fr["tags"] if t.startswith("param:")]
    assert "sequence:Codex tasks history" in fr["tags"]
    keys = {a["key"] for a in _api(prefect_url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [fr["id"]]}}})}
    assert keys == {"codex-tasks-history", "codex-tasks-history-steps"}  # one prefix, no pickled result


def test_a_failed_task_runs_log_shows_the_error_block_and_output_not_a_traceback(tmp_path: Path, prefect_url: str) -> None:
    import time

    (tmp_path / "s.yaml").write_text(textwrap.dedent("""\
        title: Codex tasks failing
        phases:
          - id: p
            steps:
              - id: broken
                commands: ["echo preparing the widget", "echo the widget is missing >&2", "exit 3"]
        """))
    run_cli("run", "s.yaml", cwd=tmp_path, check=1)
    run_id = sorted((tmp_path / ".codex" / "runs").iterdir())[-1].name
    fr = _flow_run(prefect_url, run_id)
    task_run = next(t for t in _task_runs(prefect_url, fr["id"], expect=1) if t["name"] == "broken")
    assert task_run["state_type"] == "FAILED"
    deadline, text = time.monotonic() + 30, ""
    while time.monotonic() < deadline:  # logs reach the server asynchronously
        logs = _api(prefect_url, "/logs/filter", {"logs": {"task_run_id": {"any_": [task_run["id"]]}}})
        text = "\n".join(entry["message"] for entry in logs)
        if "the widget is missing" in text:
            break
        time.sleep(0.5)
    assert "Question for ChatGPT" in text and "While performing [broken" in text  # the error block
    assert "preparing the widget" in text and "the widget is missing" in text  # the output tail
    assert "Traceback" not in text


def test_no_run_leaves_a_pickled_result(tmp_path: Path, prefect_url: str) -> None:
    """A failed run (with a retried step), then its resume: Prefect keeps no result of either, no
    file in its result storage and no result artifact (issue 15.4; `serve`'s scheduled runs are
    checked the same in test_prefect_integration.py)."""
    (tmp_path / "s.yaml").write_text(textwrap.dedent("""\
        title: Codex tasks pickles
        phases:
          - id: p
            steps:
              - id: flaky
                retries: 1
                retry_delay: 0
                commands: ['test -f once || { touch once; exit 1; }']
              - id: broken
                commands: ['test -f fixed || exit 3']
        """))
    storage = tmp_path / "prefect-storage"  # where Prefect pickles a result or a raised exception
    env = {"PREFECT_LOCAL_STORAGE_PATH": str(storage)}
    run_cli("run", "s.yaml", cwd=tmp_path, env=env, check=1)
    (tmp_path / "fixed").touch()
    run_cli("run", "s.yaml", "--resume", cwd=tmp_path, env=env, check=0)
    run_id = sorted((tmp_path / ".codex" / "runs").iterdir())[-1].name
    runs = _api(prefect_url, "/flow_runs/filter", {"flow_runs": {"name": {"like_": run_id}}})
    assert {r["state_type"] for r in runs} == {"FAILED", "COMPLETED"}
    arts = _api(prefect_url, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [r["id"] for r in runs]}}})
    assert arts and not [a for a in arts if a["type"] == "result"]
    assert not storage.exists() or not any(storage.iterdir()), sorted(storage.iterdir())
