"""The `checkpoint_prune` step: keeps exactly keep_last + keep_best; dry run removes nothing."""

from __future__ import annotations

import json

from test_train import tokenized, train_with

from codex_tasks.steps import load_kind


def test_prune_a_train_out_folder(make_ctx, tmp_path):
    ws = tokenized(make_ctx, tmp_path)
    load_kind("train").run(train_with(max_steps=10), make_ctx("train", workspace=ws))
    ckpts = ws / "art" / "model" / "checkpoints"
    assert len(list(ckpts.iterdir())) == 5
    kind = load_kind("checkpoint_prune")
    assert kind.CACHE == "never"

    dry_ctx = make_ctx("prune", workspace=ws, dry_run=True)
    dry = kind.run(kind.With(dir="art/model", keep_last=2, keep_best=1), dry_ctx)
    assert len(list(ckpts.iterdir())) == 5 and len(dry.summary["removed"]) == 2 and dry.summary["dry_run"]

    ctx = make_ctx("prune", workspace=ws)
    result = kind.run(kind.With(dir="art/model/checkpoints", keep_last=2, keep_best=1), ctx)
    kept = sorted(p.name for p in ckpts.iterdir())
    assert len(kept) == 3 and kept == result.summary["kept"]
    assert "step-00000010" in kept  # the newest is never removed
    assert json.loads((ctx.step_dir / "prune.json").read_text())["kept"] == kept
