"""Training under torchrun (DDP, gloo, CPU): matches one process with the same global batch, and
resumes exactly after the whole process tree is SIGKILLed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from engine_fixtures import tiny_settings
from safetensors.torch import load_file

from codex_tasks.core import redact as redaction
from codex_tasks.engine.distributed import failure_reason, kill_tree, launch, prepare
from codex_tasks.engine.hooks import Hooks
from codex_tasks.engine.rank_worker import SPEC_ENV
from codex_tasks.engine.trainer import Trainer

pytestmark = pytest.mark.slow  # each torchrun start imports torch + transformers in every rank (~10 s)

MODEL = {"config": {"type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32, "dropout": 0.0}}
STEPS = 10


class Recorder(Hooks):
    def __init__(self) -> None:
        super().__init__()
        self.losses: dict[int, float] = {}
        self.lines: list[str] = []

    def progress(self, done, total, unit, **extra):
        self.losses[int(done)] = extra["loss"]

    def log(self, line):
        self.lines.append(line)


def settings(data: Path, out: Path, **kw):
    base = {"model": MODEL, "max_steps": STEPS, "threads": 1, "checkpoint": {"every": 2, "keep_last": 10, "keep_best": 0}}
    return tiny_settings(data, out, **{**base, **kw})


def ddp_settings(data: Path, out: Path):
    """2 ranks x batch 2: the same global batch (4) as `single`."""
    return settings(data, out, batch_size=2, distributed={"nproc_per_node": 2})


def weights(out: Path) -> dict:
    return load_file(str(out / "final" / "model.safetensors"))


def train_rows(out: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (out / "metrics.ndjson").read_text().splitlines()]
    return [(r["step"], r["split"], r["metric"], r["value"]) for r in rows if r["metric"] != "tokens_per_s" and r["split"] != "system"]


@pytest.fixture(scope="module")
def single(token_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "model"
    hooks = Recorder()
    Trainer(settings(token_data, out, batch_size=4), hooks).run()
    return out, hooks


@pytest.fixture(scope="module")
def ddp(token_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "model"
    hooks = Recorder()
    summary = launch(ddp_settings(token_data, out), hooks, run_id="ddp")
    return out, hooks, summary


def test_ddp_matches_single_process_per_step(single, ddp):
    (s_out, s_hooks), (d_out, d_hooks, summary) = single, ddp
    assert summary["steps"] == STEPS and summary["world_size"] == 2
    assert sorted(d_hooks.losses) == list(range(1, STEPS + 1))  # progress from rank 0 only, once per step
    for step in range(1, STEPS + 1):
        assert abs(d_hooks.losses[step] - s_hooks.losses[step]) < 1e-4, step
    ws, wd = weights(s_out), weights(d_out)
    assert ws.keys() == wd.keys()
    assert max((ws[k] - wd[k]).abs().max().item() for k in ws) < 1e-4
    assert any("2 ranks (gloo)" in line for line in d_hooks.lines)
    # rank 0 alone wrote the checkpoints, each holding every rank's RNG state
    import torch

    ckpts = sorted((d_out / "checkpoints").iterdir())
    assert [p.name for p in ckpts] == [f"step-{s:08d}" for s in range(2, STEPS + 1, 2)]
    blob = torch.load(ckpts[-1] / "trainer.pt", weights_only=True)
    assert len(blob["ranks"]) == 2
    assert not torch.equal(blob["ranks"][0]["torch_rng"], blob["ranks"][1]["torch_rng"])  # own streams per rank
    assert not (d_out / ".torchrun").exists()


SLOW_WORKER = """
import sys, time
from codex_tasks.engine.rank_worker import WorkerHooks, worker_main

class Slow(WorkerHooks):
    def progress(self, done, total, unit, **extra):
        super().progress(done, total, unit, **extra)
        time.sleep(0.15)  # so the test can kill mid-training

sys.exit(worker_main(sys.argv[1:], hooks_class=Slow))
"""


def test_sigkill_the_process_tree_then_resume_is_bitwise_exact(ddp, token_data, tmp_path):
    ref_out = ddp[0]
    out = tmp_path / "model"
    script = tmp_path / "slow_worker.py"
    script.write_text(SLOW_WORKER)
    job = prepare(ddp_settings(token_data, out), run_id="killed", entry=[str(script)])
    proc = subprocess.Popen(job.cmd, env=job.env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "step-00000004").is_dir():
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.1)  # somewhere after that checkpoint
    # torchrun starts each worker in a session of its own: kill every process group of the tree
    kill_tree(proc.pid)
    proc.wait()
    assert proc.returncode == -9
    assert not (out / "final").exists()
    hooks = Recorder()
    summary = launch(ddp_settings(token_data, out), hooks, run_id="resumed")
    assert summary["resumed_from"] in {f"step-{s:08d}" for s in (4, 6, 8)}
    assert summary["steps_this_attempt"] < STEPS
    ref, got = weights(ref_out), weights(out)
    assert ref.keys() == got.keys()
    for k in ref:
        assert ref[k].numpy().tobytes() == got[k].numpy().tobytes(), k  # bitwise
    assert train_rows(out) == train_rows(ref_out)


def test_failure_reason_names_the_first_failing_rank(tmp_path):
    errors = tmp_path / "errors"
    errors.mkdir()
    (errors / "rank-0.json").write_text(json.dumps({"rank": 0, "time": 2.0, "message": "RuntimeError: Connection closed by peer"}))
    (errors / "rank-1.json").write_text(json.dumps({"rank": 1, "time": 1.0, "message": "the loss is nan", "hint": "lower lr"}))
    assert failure_reason(errors, [], 1) == ("rank 1: the loss is nan", "lower lr")
    tail = ["stuff", "torch.distributed.DistNetworkError: The server socket has failed to listen", "  more"]
    message, _ = failure_reason(tmp_path / "none", tail, 1)
    assert message == "torchrun exited with code 1: torch.distributed.DistNetworkError: The server socket has failed to listen"


SECRET = "s3cret-Handed-To-Ranks-5521"  # no provider format: only the registered value masks it

SPEC_PROBE = """
import os, subprocess, sys
from codex_tasks.core.redact import redact
from codex_tasks.engine.rank_worker import take_spec

spec = take_spec(sys.argv[1:])
inherited = subprocess.run([sys.executable, "-c", "import os; print(os.environ.get({env!r}))"],
                           capture_output=True, text=True).stdout.strip()
if os.environ.get("RANK") == "0":
    print("PROBE", spec["run_id"], redact("x {secret} y"), "child sees", inherited, flush=True)
"""


def test_the_spec_reaches_the_ranks_in_memory_with_the_secret_values(token_data, tmp_path):
    """The spec, with the run's registered values, is no file; each rank takes it out of its
    environment (a process it starts does not see it) and masks with those values."""
    redaction.register_values([SECRET])
    try:
        s = ddp_settings(token_data, tmp_path / "model")
        job = prepare(s, run_id="probe", workdir=tmp_path / "job")
        assert SECRET in job.env[SPEC_ENV]
        assert not any(SECRET.encode() in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
        script = tmp_path / "probe.py"
        script.write_text(SPEC_PROBE.format(env=SPEC_ENV, secret=SECRET))
        hooks = Recorder()
        launch(s, hooks, run_id="probe", workdir=tmp_path / "job", entry=[str(script)])
    finally:
        redaction.clear_values()
    assert "PROBE probe x [REDACTED] y child sees None" in hooks.lines


def test_ranks_write_checkpoints_through_the_hook(token_data, tmp_path):
    """A real DDP training with a secret in a setting: rank 0's checkpoint state masks it, and no
    byte the job wrote holds it."""
    out = tmp_path / "model"
    s = settings(token_data, out, batch_size=2, max_steps=2, distributed={"nproc_per_node": 2},
                 mlflow={"enabled": False, "run_name": f"run-{SECRET}"})
    redaction.register_values([SECRET])
    try:
        summary = launch(s, Recorder(), run_id="secret")
    finally:
        redaction.clear_values()
    assert summary["steps"] == 2
    state = json.loads((out / "checkpoints" / "step-00000002" / "state.json").read_text())
    assert state["settings"]["mlflow"]["run_name"] == "run-[REDACTED]"
    assert not any(SECRET.encode() in p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
