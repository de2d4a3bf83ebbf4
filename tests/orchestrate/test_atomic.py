"""Atomic-patch tasks with an agent: only patchset files may change, the `validation` commands gate
the applied change, and a failing validation rolls it back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli

AGENT = Path(__file__).resolve().parents[1] / "fixtures" / "agents" / "atomic_agent.py"

SEQ = """\
title: "Atomic"
execution_phases:
  - name: "One"
    steps: [T1, T2]
  - name: "Two"
    steps: [T3]
tasks:
  - id: T1
    objective: "GOOD: add the settings module."
    atomic_diff:
      description: "One new file."
      patchset: [{file: "pkg/settings.py", actions: ["define VALUE"]}]
    validation: ["python -c 'import pkg.settings'"]
  - id: T2
    objective: "BREAK: rewrite the app."
    atomic_diff:
      patchset: [{file: "pkg/app.py", actions: ["rewrite"]}]
    validation: ["python -c 'import pkg.app'"]
    rollback: "Restore pkg/app.py."
  - id: T3
    objective: "STRAY: touch more than allowed."
    atomic_diff:
      patchset: [{file: "pkg/settings.py", actions: ["change VALUE"]}]
    validation: ["true"]
"""


def steps(ws: Path) -> dict[str, dict]:
    runs = sorted((ws / ".codex" / "runs").iterdir())
    return {s["id"]: s for s in json.loads((runs[-1] / "summary.json").read_text())["steps"]}


@pytest.mark.slow
def test_patchset_validation_and_rollback(tmp_path):
    ws = tmp_path
    (ws / "pkg").mkdir()
    (ws / "pkg" / "__init__.py").write_text("")
    (ws / "pkg" / "app.py").write_text("VALUE = 0\n")
    (ws / "seq.yaml").write_text(SEQ)
    agent = f"{sys.executable} {AGENT}"
    proc = run_cli("run", "seq.yaml", "--agent", agent, cwd=ws)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    got = steps(ws)
    assert got["T1"]["status"] == "succeeded" and (ws / "pkg" / "settings.py").read_text() == "VALUE = 1\n"
    assert got["T2"]["status"] == "failed" and "rolled back" in got["T2"]["error"]
    assert (ws / "pkg" / "app.py").read_text() == "VALUE = 0\n"  # restored
    assert got["T3"]["status"] == "not_run"
    proc = run_cli("run", "seq.yaml", "--agent", agent, "--only", "T3", cwd=ws)
    assert proc.returncode == 1
    got = steps(ws)
    assert got["T3"]["status"] == "failed" and "outside the task's patchset: stray.py" in got["T3"]["error"]
    assert not (ws / "stray.py").exists() and (ws / "pkg" / "settings.py").read_text() == "VALUE = 1\n"
