"""Issue 4's acceptance: exact resume after SIGKILL (and issue 14's: after SIGTERM) of the
`codex-tasks run` process mid-training.

A tiny tokenize + train sequence runs once straight through; a second copy is killed with
SIGKILL (the whole process group: the runner and its step) once a checkpoint exists, then
`codex-tasks run --resume` finishes it. Final weights and the training losses are bitwise equal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import CODEX, run_cli

SEQ = textwrap.dedent("""\
    title: tiny train
    phases:
      - id: ml
        steps:
          - id: tok
            uses: tokenize
            with: {corpus: ["src/*.py"], kind: sentencepiece, vocab_size: 300, block_size: 32,
                   eval_fraction: 0.1, seed: 3, out: data}
          - id: train
            uses: train
            with:
              model: {config: {type: gpt2, n_layer: 1, n_head: 2, n_embd: 32, n_positions: 32}}
              data: data
              batch_size: 4
              max_steps: 40
              lr: 0.003
              seed: 5
              threads: 1
              checkpoint: {every: 5, keep_last: 2}
              mlflow: {enabled: false}
              out: model
    """)

CODE = "def f{i}(x):\n    # a comment {i}\n    return x * {i} + {j}\n\n\nclass C{i}:\n    value = '{i}-{j}'\n\n"


def _workspace(root: Path) -> Path:
    root.mkdir()
    (root / "src").mkdir()
    for k in range(8):
        (root / "src" / f"m{k}.py").write_text("".join(CODE.format(i=i, j=k) for i in range(30)))
    (root / "s.yaml").write_text(SEQ)
    return root


def _losses(ws: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (ws / "model" / "metrics.ndjson").read_text().splitlines()]
    return [(r["step"], r["value"]) for r in rows if r["split"] == "train" and r["metric"] == "loss"]


def _stop_mid_training(ws: Path, how: str) -> str:
    """Start the run, and once checkpoint 10 exists stop it: `sigkill` (the whole process group,
    as a closed terminal would) or `sigterm` (the run's process only, as `kill PID` or a service
    manager does). Returns what the run printed."""
    proc = subprocess.Popen([CODEX, "run", "s.yaml"], cwd=ws, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        ckpts = ws / "model" / "checkpoints"
        while time.monotonic() < deadline:
            done = [p for p in ckpts.glob("step-*") if p.is_dir()] if ckpts.is_dir() else []
            if any(p.name >= "step-00000010" for p in done):
                break
            assert proc.poll() is None, "the run ended before it could be stopped"
            time.sleep(0.05)
        if how == "sigkill":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if how == "sigterm":  # as Ctrl-C: interrupted (exit 130), resumable, not "failed"
        assert proc.returncode == 130, out
        assert "Traceback" not in out and "TerminationSignal" not in out, out
        state = json.loads(next((ws / ".codex" / "runs").glob("*/state.json")).read_text())
        assert state["status"] == "interrupted", state
        assert state["steps"]["train"]["status"] != "failed", state["steps"]["train"]
        assert "TerminationSignal" not in json.dumps(state)
    return out


@pytest.mark.slow
def test_sigkill_or_sigterm_of_the_run_then_resume_is_bitwise_exact(tmp_path: Path, prefect_url: str) -> None:
    """SIGTERM of a lone train step used to be recorded "failed: TerminationSignal" (issue 14.4)."""
    from safetensors.torch import load_file

    straight = _workspace(tmp_path / "straight")
    run_cli("run", "s.yaml", cwd=straight, check=0, timeout=600)
    a = load_file(str(straight / "model" / "final" / "model.safetensors"))

    for how in ("sigkill", "sigterm"):
        stopped = _workspace(tmp_path / how)
        _stop_mid_training(stopped, how)
        assert not (stopped / "model" / "final").exists(), "stopped before the end"
        run_cli("run", "s.yaml", "--resume", cwd=stopped, check=0, timeout=600)

        run_dir = sorted((stopped / ".codex" / "runs").iterdir())[-1]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["attempt"] == 2 and summary["status"] == "succeeded", (how, summary)
        b = load_file(str(stopped / "model" / "final" / "model.safetensors"))
        assert a.keys() == b.keys()
        for k in a:
            assert bool((a[k] == b[k]).all()), f"{how}: {k} differs"
        assert _losses(straight) == _losses(stopped), how
