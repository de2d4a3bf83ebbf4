"""`codex-tasks mlflow` on a store a real `train` step wrote: one line, a stable port, REST read-back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from codex_tasks.engine.mlflow_ui import DEFAULT_PORT, choose_port
from codex_tasks.steps import load_kind

CODEX = str(Path(sys.executable).parent / "codex-tasks")


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def test_choose_port_is_the_first_free_one_from_5000() -> None:
    port = choose_port()
    assert DEFAULT_PORT <= port < DEFAULT_PORT + 100
    import socket

    with socket.socket() as held:  # hold it: the next choice moves on
        held.bind(("127.0.0.1", port))
        assert choose_port(port) > port


@pytest.mark.slow
def test_mlflow_ui_shows_system_metrics_and_tags_of_a_train_step(token_data: Path, make_ctx, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(ws)]
    subprocess.run([*git, "init", "-q"], check=True)
    (ws / "README.md").write_text("x\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    ctx = make_ctx("train", workspace=ws)
    (ctx.run_dir / "state.json").write_text(json.dumps({"title": "tiny sequence"}))
    kind = load_kind("train")
    cfg = kind.With(model={"config": {"type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 32}},
                    data=str(token_data), batch_size=4, max_steps=6, threads=2, log_every=2,
                    checkpoint={"every": 6, "keep_last": 1, "keep_best": 0}, mlflow={"log_model": False},
                    system_metrics_every=0.05, out="art/model")
    run_id = kind.run(cfg, ctx).summary["mlflow_run_id"]

    proc = subprocess.Popen([CODEX, "mlflow"], cwd=ws, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server answers (or the command fails)
        assert line.startswith("MLflow UI at http://127.0.0.1:"), line + (proc.stderr.read() if proc.poll() else "")
        url = line.split()[3]
        assert int(url.rsplit(":", 1)[1]) >= DEFAULT_PORT
        run = _get(f"{url}/api/2.0/mlflow/runs/get?run_id={run_id}")["run"]
        metrics = {m["key"] for m in run["data"]["metrics"]}
        assert {"system/cpu_utilization_percentage", "system/system_memory_usage_percentage", "train_loss"} <= metrics
        tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
        assert tags["sequence"] == "tiny sequence" and tags["step_id"] == "train" and tags["run_id"] == "test-run"
        assert tags["mlflow.source.git.commit"] == commit
        exp = _get(f"{url}/api/2.0/mlflow/experiments/get?experiment_id={run['info']['experiment_id']}")["experiment"]
        assert {"key": "mlflow.experimentKind", "value": "custom_model_development"} in exp["tags"]
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=30)
    assert rest == "" and err == ""  # one line, the URL; the server's own output went to its log file
    log = ws / ".codex" / "logs" / "mlflow-server.log"
    assert log.is_file() and log.stat().st_size > 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the port is released once every worker is gone
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
        except OSError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the MLflow server still answers after SIGTERM")
    assert os.path.exists(ws / ".codex" / "mlflow.db")
