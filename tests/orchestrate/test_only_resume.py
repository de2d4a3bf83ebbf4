"""--only: unselected steps are `skipped` even after a failure; --resume resumes that selection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

SEQ = """\
version: "1.0"
title: "Only and resume"
phases:
  - id: A
    steps:
      - id: a1
        commands: ["test -f ok.marker"]
      - id: a2
        commands: ["touch a2.ran"]
      - id: a3
        commands: ["touch a3.ran"]
"""


def statuses(ws: Path) -> dict[str, str]:
    (run,) = list((ws / ".codex" / "runs").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    return {s["id"]: s["status"] for s in summary["steps"]}


@pytest.mark.slow
def test_only_then_resume_keeps_the_selection(tmp_path):
    (tmp_path / "seq.yaml").write_text(SEQ)
    first = run_cli("run", "seq.yaml", "--only", "a1,a3", cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    assert statuses(tmp_path) == {"a1": "failed", "a2": "skipped", "a3": "not_run"}
    (tmp_path / "ok.marker").write_text("")
    second = run_cli("run", "seq.yaml", "--resume", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert statuses(tmp_path) == {"a1": "succeeded", "a2": "skipped", "a3": "succeeded"}
    assert not (tmp_path / "a2.ran").exists() and (tmp_path / "a3.ran").exists()
