"""`codex-tasks doctor` and `codex-tasks completion`: real checks on this machine, faults made for real."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from codex_tasks.core.process import sandbox_available
from codex_tasks.orchestrate.doctor import check_agent, check_mlflow, render
from tests.conftest import run_cli


def test_doctor_json_names_every_check_and_fails_on_an_unreachable_prefect(tmp_path: Path) -> None:
    proc = run_cli("doctor", "--json", cwd=tmp_path, env={"PREFECT_API_URL": "http://127.0.0.1:9/api"})
    assert "Traceback" not in proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert {"python", "codex-tasks", "torch", "torch device", "pynvml", "prefect server", "mlflow store",
            "codex cli", "sandbox", "disk", "git"} <= set(checks)
    prefect = checks["prefect server"]
    assert prefect["status"] == "fail" and "127.0.0.1:9" in prefect["detail"] and "PREFECT_API_URL" in prefect["hint"]
    assert proc.returncode == 1 and report["ok"] is False
    assert checks["mlflow store"]["status"] == "ok" and "none yet" in checks["mlflow store"]["detail"]
    assert "not a git repository" in checks["git"]["detail"]


def test_doctor_reads_a_real_mlflow_store_and_flags_a_broken_one(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    (tmp_path / ".codex").mkdir()
    MlflowClient(tracking_uri=f"sqlite:///{tmp_path / '.codex' / 'mlflow.db'}").create_experiment("x")
    check = check_mlflow(tmp_path)
    assert check.status == "ok" and "2 experiment(s), 0 run(s)" in check.detail  # Default and x
    (tmp_path / ".codex" / "mlflow.db").write_bytes(b"not sqlite" * 100)
    broken = check_mlflow(tmp_path)
    assert broken.status == "fail" and "not a readable MLflow store" in broken.detail and broken.hint


@pytest.mark.skipif(not sandbox_available(), reason="the CODEX_HOME pitfall exists only where bubblewrap works")
def test_codex_home_under_tmp_is_a_warning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEX_HOME", "/tmp/codex-home-doctor-test")
    home = {c.name: c for c in check_agent()}["CODEX_HOME"]
    assert home.status == "warn" and "outside /tmp" in (home.hint or "")
    text = render(check_agent())
    assert "! CODEX_HOME" in text and "→ point CODEX_HOME outside /tmp" in text


def test_completion_scripts_are_valid_shell(tmp_path: Path) -> None:
    bash = run_cli("completion", "bash", cwd=tmp_path, check=0).stdout
    assert "doctor" in bash and "--force" in bash and "--resume" in bash
    (tmp_path / "codex-tasks.bash").write_text(bash)
    assert subprocess.run(["bash", "-n", str(tmp_path / "codex-tasks.bash")]).returncode == 0
    zsh = run_cli("completion", "zsh", cwd=tmp_path, check=0).stdout
    assert zsh.startswith("#compdef codex-tasks") and "mlflow" in zsh
    if shutil.which("zsh"):
        (tmp_path / "_codex-tasks").write_text(zsh)
        assert subprocess.run(["zsh", "-n", str(tmp_path / "_codex-tasks")]).returncode == 0
    bad = run_cli("completion", "fish", cwd=tmp_path)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr and "Traceback" not in bad.stderr
