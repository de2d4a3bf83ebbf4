"""The `train` step: runs the engine in a workspace, emits events, validates its `with:`."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from test_tokenize import make_workspace

from codex_tasks.runs.events import read_events
from codex_tasks.steps import load_kind

TINY = {"config": {"type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 32}}


def tokenized(make_ctx, tmp_path):
    ws = make_workspace(tmp_path / "ws")
    tok = load_kind("tokenize")
    tok.run(tok.With(vocab_size=320, block_size=32, out="art/tok", threads=2), make_ctx("tok", workspace=ws))
    return ws


def train_with(**kw):
    base = {"model": TINY, "data": "art/tok", "batch_size": 4, "max_steps": 8, "lr": 3e-3, "threads": 2,
            "checkpoint": {"every": 2, "keep_last": 10, "keep_best": 0}, "mlflow": {"enabled": False},
            "system_metrics_every": 0, "log_every": 2, "out": "art/model"}
    return load_kind("train").With(**{**base, **kw})


def test_train_step_runs_and_reports(make_ctx, tmp_path):
    ws = tokenized(make_ctx, tmp_path)
    kind = load_kind("train")
    assert kind.CACHE == "default"
    ctx = make_ctx("train", workspace=ws)
    cfg = train_with()
    assert kind.deps(cfg, ctx) == ["art/tok"]
    result = kind.run(cfg, ctx)
    assert result.summary["steps"] == 8 and "eval loss" in result.note
    assert (ws / "art" / "model" / "final" / "model.safetensors").is_file()
    assert len(list((ws / "art" / "model" / "checkpoints").iterdir())) == 4
    events = [e for e in read_events(ctx.run_dir / "events.ndjson") if e.get("step_id") == "train"]
    progress = [e for e in events if e["type"] == "progress"]
    assert [e["done"] for e in progress] == list(range(1, 9)) and all("loss" in e and "tokens_per_s" in e for e in progress)
    assert {("train", "loss"), ("eval", "loss")} <= {(e["split"], e["name"]) for e in events if e["type"] == "metric"}
    rows = [json.loads(line) for line in (ctx.step_dir / "metrics.ndjson").read_text().splitlines()]
    assert set(rows[0]) == {"timestamp", "run_id", "step", "split", "metric", "value"} and rows[0]["run_id"] == "test-run"
    assert (ctx.step_dir / "metrics.csv").is_file()


def test_resume_after_cancel(make_ctx, tmp_path):
    from codex_tasks.errors import RunInterrupted

    ws = tokenized(make_ctx, tmp_path)
    kind = load_kind("train")
    ctx = make_ctx("train", workspace=ws)
    ctx.cancel_event.set()
    with pytest.raises(RunInterrupted):
        kind.run(train_with(), ctx)
    result = kind.run(train_with(), make_ctx("train", workspace=ws, resuming=True))
    assert result.summary["resumed_from"] == "step-00000000" and result.summary["steps"] == 8


def test_default_mlflow_store_is_under_codex(make_ctx, tmp_path):
    ctx = make_ctx("train")
    uri, artifacts = load_kind("train").tracking_location(train_with(mlflow={"enabled": True}), ctx)
    assert uri == f"sqlite:///{(ctx.workspace / '.codex' / 'mlflow.db').resolve()}"
    assert artifacts == ctx.workspace / ".codex" / "mlartifacts"


def test_fp16_on_cpu_fails_with_one_line(make_ctx, tmp_path):
    import torch

    from codex_tasks.errors import StepFailed

    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    ws = tokenized(make_ctx, tmp_path)
    ctx = make_ctx("train", workspace=ws)
    with pytest.raises(StepFailed) as err:
        load_kind("train").run(train_with(precision="fp16"), ctx)
    assert "\n" not in err.value.message
    events = read_events(ctx.run_dir / "events.ndjson")
    assert not any(e["type"] == "progress" and e["step_id"] == "train" for e in events)


@pytest.mark.parametrize(
    "bad",
    [
        {"lr": -1e-3},
        {"scheduler": "exponential"},
        {"model": {"config": {"type": "llama-9000"}}},
        {"model": {"config": {"type": "gpt2", "n_embd": 30, "n_head": 4}}},
        {"model": {}},
        {"precision": "fp8"},
        {"max_steps": 10, "epochs": 1},
        {"checkpoint": {"metric": "loss"}},
        {"lora": {"r": 0}},
        {"learning_rate": 1e-3},
    ],
)
def test_bad_values_fail_validation(bad):
    with pytest.raises(ValidationError):
        train_with(**bad)


def test_schema_has_descriptions():
    schema = load_kind("train").With.model_json_schema()
    missing = [k for k, v in schema["properties"].items() if "description" not in v]
    assert not missing


def test_forced_train_starts_from_scratch_and_keeps_old_checkpoints(make_ctx, tmp_path):
    """--force=train (also with --resume): no resuming into the old training, which is never deleted."""
    from codex_tasks.errors import RunInterrupted

    ws = tokenized(make_ctx, tmp_path)
    kind = load_kind("train")
    ckpts = ws / "art" / "model" / "checkpoints"
    cfg = train_with(checkpoint={"every": 2, "keep_last": 2, "keep_best": 0})
    first = kind.run(cfg, make_ctx("train", workspace=ws))
    assert first.summary["steps"] == 8 and sorted(p.name for p in ckpts.glob("step-*")) == ["step-00000006", "step-00000008"]
    old = json.loads((ckpts / "step-00000008" / "state.json").read_text())["training"]

    # forced, in a resumed run: from scratch; cancelled at once, so its only checkpoint is step 0
    ctx = make_ctx("train", workspace=ws, resuming=True, forced=True)
    ctx.cancel_event.set()
    with pytest.raises(RunInterrupted):
        kind.run(cfg, ctx)
    names = sorted(p.name for p in ckpts.glob("step-*"))
    assert names == ["step-00000000", "step-00000006", "step-00000008"]  # the old training's are still there
    new = json.loads((ckpts / "step-00000000" / "state.json").read_text())["training"]
    assert new != old and json.loads((ckpts.parent / "training.json").read_text())["training"] == new

    # resuming continues the new training from its step 0, not the old one's step 8
    again = kind.run(cfg, make_ctx("train", workspace=ws, resuming=True))
    assert again.summary["resumed_from"] == "step-00000000" and again.summary["steps"] == 8
    states = {p.name: json.loads((p / "state.json").read_text())["training"] for p in ckpts.glob("step-*")}
    assert states == {"step-00000006": new, "step-00000008": new}  # overwritten by the new training, then pruned


def test_default_resume_ignores_a_finished_old_training(make_ctx, tmp_path):
    """Without --force the same settings resume: 0 new steps (what --force is for)."""
    ws = tokenized(make_ctx, tmp_path)
    kind = load_kind("train")
    kind.run(train_with(), make_ctx("train", workspace=ws))
    second = kind.run(train_with(), make_ctx("train", workspace=ws))
    assert second.summary["resumed_from"] == "step-00000008"
    forced = kind.run(train_with(), make_ctx("train", workspace=ws, forced=True))
    assert not forced.summary.get("resumed_from") and forced.summary["steps"] == 8
