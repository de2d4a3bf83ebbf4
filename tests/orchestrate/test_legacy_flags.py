"""Legacy parameters and metadata at run time: `root` is the workspace, honor_env_flags
(CODEX_FORCE_CPU, CODEX_ABORT_ON_GPU_PULL from the step's config), `max_errors` stops the run,
`series` and the manual steps in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codex_tasks.orchestrate.legacy_params import gpu_request, honored_flags, max_errors_reached
from tests.conftest import run_cli

SEQ = """\
version: "1.0"
title: "Flags"
metadata:
  honor_env_flags: [CODEX_FORCE_CPU, CODEX_ABORT_ON_GPU_PULL]
phases:
  - id: A
    steps:
      - id: cpu
        needs: []
        on_error: continue
        commands: ['test "${CUDA_VISIBLE_DEVICES-unset}" = "" && touch cpu.ok']
      - id: gpu
        needs: []
        on_error: continue
        uses: evaluate
        with: {model: m, data: d, device: cuda}
      - id: e1
        needs: []
        on_error: continue
        commands: ["false"]
      - id: after
        needs: []
        commands: ["touch after.ran"]
      - id: ask
        needs: []
        description: "Ask someone."
cli_parameters:
  root: {default: ".", description: "The repository to work on."}
  max_errors: {default: 2, description: "Stop after this many captured errors."}
series:
  - {name: S1, patches: [p1.md], applied: false}
"""


def test_helpers(tmp_path):
    assert honored_flags({"honor_env_flags": ["A", "B", "C"]}, {"A": "1", "B": "0", "D": "1"}) == {"A"}
    assert honored_flags({}, {"A": "1"}) == set()
    errors = tmp_path / "e.ndjson"
    errors.write_text("{}\n{}\n")
    assert max_errors_reached({"max_errors": 2}, errors) == 2
    assert max_errors_reached({"max_errors": 3}, errors) is None
    assert max_errors_reached({}, errors) is None

    class Step:
        with_raw = {"device": "cuda"}
        env: dict[str, str] = {}

    assert gpu_request(Step()) == "device: cuda"
    Step.with_raw = {"device": "cpu"}
    assert gpu_request(Step()) is None


@pytest.mark.slow
def test_flags_root_and_max_errors(tmp_path: Path):
    (tmp_path / "seq.yaml").write_text(SEQ)
    (tmp_path / "repo").mkdir()
    env = {"CODEX_FORCE_CPU": "1", "CODEX_ABORT_ON_GPU_PULL": "1"}
    proc = run_cli("run", str(tmp_path / "seq.yaml"), "--param", "root=repo", "--max-parallel", "1",
                   cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    ws = tmp_path / "repo"
    assert (ws / "cpu.ok").exists()  # the workspace is `root`, and CUDA is hidden from the steps
    (run,) = list((ws / ".codex" / "runs").iterdir())
    steps = {s["id"]: s for s in json.loads((run / "summary.json").read_text())["steps"]}
    assert steps["gpu"]["status"] == "failed" and "CODEX_ABORT_ON_GPU_PULL" in steps["gpu"]["error"]
    assert steps["e1"]["status"] == "failed"
    assert steps["after"]["status"] == "not_run" and "max_errors=2" in steps["after"]["note"]
    assert not (ws / "after.ran").exists()
    report = (run / "report.md").read_text()
    assert "## Series" in report and '"S1"' in report


@pytest.mark.slow
def test_with_related_runs_the_related_sequences_after(tmp_path: Path):
    (tmp_path / "main.yaml").write_text("""\
title: "Main"
phases:
  - id: A
    steps:
      - {id: a, commands: ["touch main.ran"]}
related_sequences:
  - {name: weekly, path: weekly.yaml}
  - {name: gone, path: gone.yaml}
""")
    (tmp_path / "weekly.yaml").write_text("""\
title: "Weekly"
phases:
  - id: W
    steps:
      - {id: w, commands: ["test -f main.ran && touch weekly.ran"]}
""")
    proc = run_cli("run", "main.yaml", "--with-related", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "weekly.ran").exists()
    assert "== related sequence weekly" in proc.stdout and "gone.yaml not found" in proc.stderr
    assert len(list((tmp_path / ".codex" / "runs").iterdir())) == 2
