"""CLI wiring of the tool commands: mlflow, rollback, verify, schema, steps, --version."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CODEX, run_cli


def test_version_schema_steps(tmp_path: Path) -> None:
    assert run_cli("--version", cwd=tmp_path, check=0).stdout.startswith("codex-tasks ")
    schema = json.loads(run_cli("schema", cwd=tmp_path, check=0).stdout)
    assert schema["title"] == "codex-tasks task sequence"
    kinds = schema["$defs"]["Step"]["properties"]["uses"]["anyOf"][0]["enum"]
    assert {"shell", "train", "audit", "patch"} <= set(kinds)
    steps = json.loads(run_cli("steps", "--json", cwd=tmp_path, check=0).stdout)
    train = next(k for k in steps if k["name"] == "train")
    assert any(f["name"] == "lr" and f["description"] for f in train["fields"])


def test_unknown_command_and_optional_value_flags(tmp_path: Path) -> None:
    proc = run_cli("frobnicate", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # --resume / --force take a value only after '=', so FILE is never swallowed
    (tmp_path / "s.yaml").write_text("title: t\nphases: []\n")
    proc = run_cli("validate", "s.yaml", "--resume", cwd=tmp_path)
    assert proc.returncode == 2 and "only applies to 'run'" in proc.stderr


def test_verify_cli(tmp_path: Path) -> None:
    import zipfile

    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("x.txt", "hello")
    proc = run_cli("verify", str(z), cwd=tmp_path)
    assert proc.returncode == 1 and "MANIFEST" in proc.stderr.upper()
    assert run_cli("verify", "missing.zip", cwd=tmp_path).returncode == 2


def test_rollback_cli_unknown_run(tmp_path: Path) -> None:
    proc = run_cli("rollback", "nope", "apply", cwd=tmp_path)
    assert proc.returncode == 2 and "no run" in proc.stderr


@pytest.mark.slow
def test_mlflow_ui_serves_the_store_and_stops(tmp_path: Path) -> None:
    import mlflow

    store = f"sqlite:///{tmp_path / '.codex' / 'mlflow.db'}"
    (tmp_path / ".codex").mkdir()
    mlflow.set_tracking_uri(store)
    exp = mlflow.create_experiment("codex-test", artifact_location=str(tmp_path / ".codex" / "mlartifacts"))
    with mlflow.start_run(experiment_id=exp):
        mlflow.log_param("lr", 0.01)
        mlflow.log_metric("train_loss", 1.5)
    port = 0
    proc = subprocess.Popen([CODEX, "mlflow"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        line = ""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "MLflow UI at" in line or not line:
                break
        assert "MLflow UI at http://127.0.0.1:" in line, line
        url = line.split("MLflow UI at ")[1].split()[0]
        port = int(url.rsplit(":", 1)[1])
        req = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search", data=b'{"max_results": 10}',
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            names = [e["name"] for e in json.loads(resp.read())["experiments"]]
        assert "codex-test" in names
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    # nothing is left listening
    time.sleep(0.5)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
    assert os.path.exists(tmp_path / ".codex" / "mlflow.db")
