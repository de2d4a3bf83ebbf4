"""The training loop: loss falls, exact resume (also after SIGKILL), failures before step 1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from engine_fixtures import tiny_settings
from safetensors.torch import load_file

from codex_tasks.core import redact as redaction
from codex_tasks.engine.config import TrainSettings
from codex_tasks.engine.hooks import Hooks
from codex_tasks.engine.trainer import Trainer, lr_factor
from codex_tasks.errors import RunInterrupted, StepFailed

REPO = Path(__file__).resolve().parents[2]


class Recorder(Hooks):
    def __init__(self, stop_after: int | None = None) -> None:
        super().__init__()
        self.progress_events: list[dict] = []
        self.metrics: list[tuple] = []
        self.lines: list[str] = []
        self.stop_after = stop_after

    def progress(self, done, total, unit, **extra):
        self.progress_events.append({"done": done, "total": total, **extra})
        if self.stop_after is not None and done >= self.stop_after:
            self.cancel_event.set()

    def metric(self, name, value, *, step=None, split=None):
        self.metrics.append((split, name, step, value))

    def log(self, line):
        self.lines.append(line)


def final_weights(out: Path) -> dict:
    return load_file(str(out / "final" / "model.safetensors"))


def assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
        assert bytes(a[k].numpy().tobytes()) == bytes(b[k].numpy().tobytes()), k


def train_losses(out: Path) -> list[tuple]:
    rows = [json.loads(line) for line in (out / "metrics.ndjson").read_text().splitlines()]
    return [(r["step"], r["split"], r["metric"], r["value"]) for r in rows if r["split"] != "system" and r["metric"] != "tokens_per_s"]


@pytest.fixture(scope="module")
def straight(token_data, tmp_path_factory):
    """20 steps without interruption: the reference for every resume test."""
    out = tmp_path_factory.mktemp("straight") / "model"
    hooks = Recorder()
    summary = Trainer(tiny_settings(token_data, out, resume="never"), hooks).run()
    return out, hooks, summary


def test_loss_falls_and_outputs_exist(straight):
    out, hooks, summary = straight
    losses = [e["loss"] for e in hooks.progress_events]
    assert len(losses) == 20 and [e["done"] for e in hooks.progress_events] == list(range(1, 21))
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.3
    assert all(e["total"] == 20 and e["tokens_per_s"] > 0 for e in hooks.progress_events)
    assert (out / "final" / "config.json").is_file() and (out / "final" / "tokenizer.model").is_file()
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == [f"step-{s:08d}" for s in (5, 10, 15, 20)]
    header = (out / "metrics.csv").read_text().splitlines()[0]
    assert header == "timestamp,run_id,step,split,metric,value"
    assert {("eval", "loss"), ("train", "loss")} <= {(m[0], m[1]) for m in hooks.metrics}
    assert summary["eval"]["tokens"] > 0


def test_resume_in_process_is_bitwise_exact(straight, token_data, tmp_path):
    ref_out = straight[0]
    out = tmp_path / "model"
    with pytest.raises(RunInterrupted):
        Trainer(tiny_settings(token_data, out), Recorder(stop_after=7)).run()
    assert (out / "checkpoints" / "step-00000007").is_dir()  # the cancel saved a checkpoint
    hooks = Recorder()
    summary = Trainer(tiny_settings(token_data, out), hooks).run()
    assert summary["resumed_from"] == "step-00000007" and summary["steps_this_attempt"] == 13
    assert_bitwise_equal(final_weights(out), final_weights(ref_out))
    assert train_losses(out) == train_losses(ref_out)


KILL_SCRIPT = """
import sys, time, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(2)
from engine_fixtures import tiny_settings
from codex_tasks.engine.hooks import Hooks
from codex_tasks.engine.trainer import Trainer

class Slow(Hooks):
    def progress(self, done, total, unit, **extra):
        time.sleep(0.05)  # so the parent can kill mid-training

Trainer(tiny_settings({data!r}, {out!r}), Slow()).run()
"""


def test_sigkill_then_resume_is_bitwise_exact(straight, token_data, tmp_path):
    ref_out = straight[0]
    out = tmp_path / "model"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), data=str(token_data), out=str(out))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / "checkpoints" / "step-00000010").is_dir():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.08)  # somewhere after the checkpoint: mid-step, mid-write, whatever
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "final").exists()
    hooks = Recorder()
    summary = Trainer(tiny_settings(token_data, out), hooks).run()
    assert summary["resumed_from"] in {f"step-{s:08d}" for s in (10, 15)}
    assert_bitwise_equal(final_weights(out), final_weights(ref_out))
    assert train_losses(out) == train_losses(ref_out)


def test_corrupt_newest_checkpoint_falls_back_and_stays_exact(straight, token_data, tmp_path):
    ref_out = straight[0]
    out = tmp_path / "model"
    with pytest.raises(RunInterrupted):
        Trainer(tiny_settings(token_data, out), Recorder(stop_after=12)).run()
    newest = out / "checkpoints" / "step-00000012"
    weights = newest / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    hooks = Recorder()
    summary = Trainer(tiny_settings(token_data, out), hooks).run()
    assert summary["resumed_from"] == "step-00000010"
    assert any("step-00000012 is corrupt" in line for line in hooks.lines)
    assert_bitwise_equal(final_weights(out), final_weights(ref_out))


def test_changed_settings_start_over(straight, token_data, tmp_path):
    out = tmp_path / "model"
    with pytest.raises(RunInterrupted):
        Trainer(tiny_settings(token_data, out), Recorder(stop_after=5)).run()
    hooks = Recorder()
    summary = Trainer(tiny_settings(token_data, out, lr=1e-3, max_steps=6), hooks).run()
    assert summary["resumed_from"] is None and summary["steps"] == 6
    assert any("starting over" in line for line in hooks.lines)


def test_grad_accum_matches_one_big_batch(token_data, tmp_path):
    """batch 8 x accum 1 and batch 4 x accum 2 see the same blocks: the loss is divided correctly."""
    a = Trainer(tiny_settings(token_data, tmp_path / "a", max_steps=3, checkpoint={"every": 3}), Recorder()).run()
    b = Trainer(tiny_settings(token_data, tmp_path / "b", max_steps=3, batch_size=4, grad_accum=2,
                              checkpoint={"every": 3}), Recorder()).run()
    wa, wb = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    for k in wa:
        assert (wa[k] - wb[k]).abs().max().item() < 1e-5, k
    assert a["steps"] == b["steps"] == 3


def test_fp16_without_cuda_fails_before_training(token_data, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    hooks = Recorder()
    with pytest.raises(StepFailed, match="fp16 needs a CUDA GPU"):
        Trainer(tiny_settings(token_data, tmp_path / "m", precision="fp16"), hooks).run()
    assert hooks.progress_events == []


def test_missing_or_empty_data_fails_before_training(token_data, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "meta.json").write_text((token_data / "meta.json").read_text())
    (empty / "train.bin").write_bytes(b"")
    with pytest.raises(StepFailed, match="empty"):
        Trainer(tiny_settings(empty, tmp_path / "m")).run()
    with pytest.raises(StepFailed, match="no meta.json"):
        Trainer(tiny_settings(tmp_path / "nowhere", tmp_path / "m")).run()
    (empty / "train.bin").unlink()
    with pytest.raises(StepFailed, match="missing data file"):
        Trainer(tiny_settings(empty, tmp_path / "m")).run()


def test_bf16_autocast_trains(token_data, tmp_path):
    hooks = Recorder()
    Trainer(tiny_settings(token_data, tmp_path / "m", precision="bf16", max_steps=4, checkpoint={"every": 4}), hooks).run()
    assert len(hooks.progress_events) == 4 and all(e["loss"] == e["loss"] for e in hooks.progress_events)


def test_lr_schedules():
    assert lr_factor(0, 2, 10, "cosine") == 0.5 and lr_factor(1, 2, 10, "linear") == 1.0
    assert lr_factor(10, 2, 10, "linear") == 0.0 and lr_factor(10, 2, 10, "cosine") == pytest.approx(0.0)
    assert lr_factor(7, 0, 10, "constant") == 1.0


def test_checkpoint_state_masks_a_secret_setting_and_resume_still_works(straight, token_data, tmp_path):
    """A secret in a setting (here MLflow's run name and a tag, as a parameter rendered into `with:`
    would put it) is masked in the checkpoint's state.json, only there: the settings read back
    still validate, and a resume with the real settings continues from that checkpoint exactly."""
    secret = "s3cret-Value-in-a-setting-4471"
    out = tmp_path / "model"
    settings = tiny_settings(token_data, out, mlflow={"enabled": False, "run_name": f"run-{secret}",
                                                      "tags": {"owner": secret}})
    redaction.register_values([secret])
    try:
        with pytest.raises(RunInterrupted):
            Trainer(settings, Recorder(stop_after=7)).run()
        state = json.loads((out / "checkpoints" / "step-00000007" / "state.json").read_text())
        written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
        assert secret.encode() not in written
        read_back = TrainSettings.model_validate(state["settings"])
        assert read_back.mlflow.run_name == "run-[REDACTED]" and read_back.mlflow.tags == {"owner": "[REDACTED]"}
        assert read_back.model_dump(exclude={"mlflow"}) == settings.model_dump(exclude={"mlflow"})  # only there
        summary = Trainer(settings, Recorder()).run()
    finally:
        redaction.clear_values()
    assert summary["resumed_from"] == "step-00000007" and summary["steps_this_attempt"] == 13
    assert_bitwise_equal(final_weights(out), final_weights(straight[0]))
    assert secret.encode() not in b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
