"""The `train` step with `distributed:` runs torchrun (DDP, gloo, CPU): events from rank 0, cancel
checkpoints and resumes, the losses match one process with the same global batch, failures are one line."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from test_train import tokenized, train_with

from codex_tasks.errors import RunInterrupted, StepFailed
from codex_tasks.runs.events import read_events
from codex_tasks.steps import load_kind

STEPS = 12


def train_losses(path) -> dict[int, float]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return {r["step"]: r["value"] for r in rows if r["split"] == "train" and r["metric"] == "loss"}


@pytest.mark.slow
def test_ddp_step_cancel_resume_matches_single_process(make_ctx, tmp_path):
    ws = tokenized(make_ctx, tmp_path)
    kind = load_kind("train")
    single_ctx = make_ctx("single", workspace=ws)
    kind.run(train_with(out="art/single", max_steps=STEPS, threads=1), single_ctx)

    cfg = train_with(batch_size=2, max_steps=STEPS, threads=1, distributed={"nproc_per_node": 2})
    ctx = make_ctx("train", workspace=ws)

    def cancel_after_two(event):
        if event["type"] == "progress" and event.get("step_id") == "train" and event["done"] >= 2:
            ctx.cancel_event.set()

    ctx.events.listeners.append(cancel_after_two)
    with pytest.raises(RunInterrupted, match="checkpoint saved"):
        kind.run(cfg, ctx)
    ckpts = sorted(p.name for p in (ws / "art" / "model" / "checkpoints").iterdir())
    stopped_at = int(ckpts[-1].split("-")[1])
    assert 2 <= stopped_at < STEPS and not (ws / "art" / "model" / "final").exists()
    state = json.loads((ws / "art" / "model" / "checkpoints" / ckpts[-1] / "state.json").read_text())
    assert state["world_size"] == 2 and state["step"] == stopped_at

    ctx2 = make_ctx("train", workspace=ws, resuming=True)
    result = kind.run(cfg, ctx2)
    assert result.summary["resumed_from"] == ckpts[-1] and result.summary["steps"] == STEPS
    assert result.summary["world_size"] == 2 and f"resumed from {ckpts[-1]}" in result.note
    assert (ws / "art" / "model" / "final" / "model.safetensors").is_file()

    # progress events came from rank 0 only: one per step and attempt, each with the loss
    progress = [e for e in read_events(ctx.run_dir / "events.ndjson") if e["type"] == "progress" and e["step_id"] == "train"]
    assert [e["done"] for e in progress] == list(range(1, STEPS + 1))  # 1..stopped_at, then the rest
    assert all("loss" in e and e["total"] == STEPS for e in progress)
    log = ctx2.log_path.read_text()
    assert "torchrun: 2 process(es)" in log and "2 ranks (gloo)" in log

    # the same global batch as one process: per-step losses within 1e-4
    single, ddp = train_losses(single_ctx.step_dir / "metrics.ndjson"), train_losses(ctx2.step_dir / "metrics.ndjson")
    assert sorted(ddp) == sorted(single) == list(range(2, STEPS + 1, 2))
    assert all(abs(ddp[s] - single[s]) < 1e-4 for s in single), (single, ddp)
    assert (ctx2.step_dir / "metrics.csv").is_file() and (ctx2.step_dir / "train_summary.json").is_file()


@pytest.mark.slow
def test_a_failing_rank_fails_the_step_with_one_line(make_ctx, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    ws = tokenized(make_ctx, tmp_path)
    ctx = make_ctx("train", workspace=ws)
    with pytest.raises(StepFailed) as err:
        load_kind("train").run(train_with(precision="fp16", distributed={"nproc_per_node": 2}), ctx)
    message = err.value.message
    assert "\n" not in message
    assert message.startswith("distributed training failed: rank ") and "precision fp16 needs a CUDA GPU" in message
    assert not any(e["type"] == "progress" and e["step_id"] == "train" for e in read_events(ctx.run_dir / "events.ndjson"))
    assert "error: precision fp16" in ctx.log_path.read_text()  # the ranks' output is in the step log


@pytest.mark.parametrize(
    "bad",
    [
        {"nproc_per_node": 0},
        {"nnodes": 2, "node_rank": 0},  # no master_port: the other nodes could not find rank 0
        {"nnodes": 2, "node_rank": 2, "master_port": 29500},
        {"backend": "mpi"},
        {"nproc": 2},
    ],
)
def test_bad_distributed_settings_fail_validation(bad):
    with pytest.raises(ValidationError):
        train_with(distributed=bad)


def test_one_process_trains_in_process():
    cfg = train_with(distributed={"nproc_per_node": 1})
    assert cfg.distributed is not None and not cfg.distributed.active
    assert train_with(distributed={"nproc_per_node": 2}).distributed.active
