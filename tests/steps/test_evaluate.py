"""The `evaluate` step: eval.json with loss, perplexity, token accuracy, tokens."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError
from test_train import tokenized, train_with

from codex_tasks.steps import load_kind


def test_evaluate_a_train_out_folder(make_ctx, tmp_path):
    ws = tokenized(make_ctx, tmp_path)
    load_kind("train").run(train_with(max_steps=4), make_ctx("train", workspace=ws))
    kind = load_kind("evaluate")
    ctx = make_ctx("eval", workspace=ws)
    cfg = kind.With(model="art/model", data="art/tok", tokenizer="art/tok", batch_size=4, max_batches=3, threads=2)
    result = kind.run(cfg, ctx)
    report = json.loads((ctx.step_dir / "eval.json").read_text())
    assert {"loss", "perplexity", "token_accuracy", "tokens"} <= set(report)
    assert math.isclose(report["perplexity"], math.exp(report["loss"]), rel_tol=1e-9)
    assert 0 <= report["token_accuracy"] <= 1 and 0 < report["tokens"] <= 3 * 4 * 32
    assert result.summary["loss"] == report["loss"]
    assert (ctx.step_dir / "metrics.csv").read_text().count("\n") == 4


def test_missing_model_fails(make_ctx, tmp_path):
    from codex_tasks.errors import StepFailed

    ws = tokenized(make_ctx, tmp_path)
    kind = load_kind("evaluate")
    with pytest.raises(StepFailed, match="no model"):
        kind.run(kind.With(model="nowhere", data="art/tok"), make_ctx("eval", workspace=ws))


def test_bad_values_fail_validation():
    with pytest.raises(ValidationError):
        load_kind("evaluate").With(model="m", data="d", batch_size=0)
