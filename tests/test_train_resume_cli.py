"""Issue 4's acceptance: exact resume after SIGKILL of the `codex-tasks run` process mid-training.

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


@pytest.mark.slow
def test_sigkill_of_the_run_then_resume_is_bitwise_exact(tmp_path: Path, prefect_url: str) -> None:
    from safetensors.torch import load_file

    straight = _workspace(tmp_path / "straight")
    run_cli("run", "s.yaml", cwd=straight, check=0, timeout=600)

    killed = _workspace(tmp_path / "killed")
    proc = subprocess.Popen([CODEX, "run", "s.yaml"], cwd=killed, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        ckpts = killed / "model" / "checkpoints"
        while time.monotonic() < deadline:
            done = [p for p in ckpts.glob("step-*") if p.is_dir()] if ckpts.is_dir() else []
            if any(p.name >= "step-00000010" for p in done):
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not (killed / "model" / "final").exists(), "killed before the end"
    run_cli("run", "s.yaml", "--resume", cwd=killed, check=0, timeout=600)

    run_dir = sorted((killed / ".codex" / "runs").iterdir())[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["attempt"] == 2 and summary["status"] == "succeeded"
    a = load_file(str(straight / "model" / "final" / "model.safetensors"))
    b = load_file(str(killed / "model" / "final" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert bool((a[k] == b[k]).all()), f"{k} differs"
    assert _losses(straight) == _losses(killed)
