"""The `tokenize` step: a workspace's code -> tokenizer + token files, events, validation."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from codex_tasks.runs.events import read_events
from codex_tasks.steps import load_kind

CODE = "def add(a, b):\n\treturn a + b\n\n\nclass K:\n    '''ünïcode ✓'''\n    x = [1,  2]\n" * 30


def make_workspace(root):
    (root / "src").mkdir(parents=True, exist_ok=True)
    for i in range(4):
        (root / "src" / f"m{i}.py").write_text(CODE.replace("add", f"add{i}"), encoding="utf-8")
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "readme.md").write_text("# Title\n\n  indented  text\n" * 10, encoding="utf-8")
    return root


def test_tokenize_step_writes_data_and_events(make_ctx, tmp_path):
    kind = load_kind("tokenize")
    assert kind.NAME == "tokenize" and kind.CACHE == "default"
    ctx = make_ctx("tok", workspace=make_workspace(tmp_path / "ws"))
    cfg = kind.With(vocab_size=320, block_size=32, out="art/tok", threads=2)
    assert kind.deps(cfg, ctx) == ["**/*.py", "docs/**/*.md"] and kind.outputs(cfg, ctx) == ["art/tok"]
    result = kind.run(cfg, ctx)
    out = ctx.workspace / "art" / "tok"
    assert {p.name for p in out.iterdir()} == {"tokenizer.model", "train.bin", "eval.bin", "meta.json"}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["files"] == 5 and result.summary["train_tokens"] == meta["train_tokens"] > 0
    events = list(read_events(ctx.run_dir / "events.ndjson"))
    assert any(e["type"] == "progress" and e["unit"] == "B" for e in events)
    assert {e["split"] for e in events if e["type"] == "metric"} == {"train", "eval"}


def test_tokenize_reuses_a_tokenizer(make_ctx, tmp_path):
    kind = load_kind("tokenize")
    ctx = make_ctx("tok", workspace=make_workspace(tmp_path / "ws"))
    kind.run(kind.With(vocab_size=320, out="a", kind="bpe"), ctx)
    kind.run(kind.With(tokenizer="a", out="b", corpus=["src/*.py"]), ctx)
    assert (ctx.workspace / "b" / "tokenizer.json").read_bytes() == (ctx.workspace / "a" / "tokenizer.json").read_bytes()
    assert json.loads((ctx.workspace / "b" / "meta.json").read_text())["files"] == 4


def test_empty_corpus_fails_with_a_reason(make_ctx, tmp_path):
    from codex_tasks.errors import StepFailed

    kind = load_kind("tokenize")
    with pytest.raises(StepFailed, match="corpus is empty"):
        kind.run(kind.With(corpus=["nothing/**/*.py"]), make_ctx("tok"))


@pytest.mark.parametrize("bad", [{"kind": "wordpiece"}, {"vocab_size": 10}, {"eval_fraction": 1.5}, {"colour": 1}])
def test_bad_values_fail_validation(bad):
    with pytest.raises(ValidationError):
        load_kind("tokenize").With(**bad)


def test_rendered_strings_coerce():
    cfg = load_kind("tokenize").With(vocab_size="512", block_size="64")
    assert cfg.vocab_size == 512 and cfg.block_size == 64
