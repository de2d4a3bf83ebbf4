"""`evaluate`: loss, perplexity and token accuracy of a model on a held-out split."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from codex_tasks.core.files import write_json_atomic
from codex_tasks.engine.data import TokenData, n_blocks
from codex_tasks.engine.evaluation import evaluate_model
from codex_tasks.engine.metrics import MetricsLog
from codex_tasks.engine.model import load_model, pick_device, resolve_model_folder
from codex_tasks.engine.tokenizer import load_tokenizer
from codex_tasks.errors import StepFailed
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "evaluate"
CACHE = "default"


class With(WithModel):
    """Evaluates a causal LM on token data; writes `eval.json`, `metrics.ndjson` and `metrics.csv`."""

    model: str = Field(description="A model folder (save_pretrained layout) or a `train` step's `out` folder.")
    data: str = Field(description="A data folder written by `tokenize`.")
    tokenizer: str | None = Field(
        None, description="The tokenizer folder, to check it fits the model (default: none checked)."
    )
    split: Literal["eval", "train"] = Field("eval", description="Which token file to evaluate on.")
    block_size: int | None = Field(None, ge=8, le=65_536, description="Tokens per sequence (default: the data's `block_size`).")
    batch_size: int = Field(16, ge=1, le=65_536, description="Sequences per batch.")
    max_batches: int | None = Field(None, ge=1, le=1_000_000_000, description="Stop after this many batches (default: the whole split).")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="`fp32`, or `bf16` autocast.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto` picks CUDA when available.")
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads for torch (default: torch's choice).")


def deps(cfg: With, ctx: StepContext) -> list[str]:
    return [cfg.model, cfg.data] + ([cfg.tokenizer] if cfg.tokenizer else [])


def run(cfg: With, ctx: StepContext) -> StepResult:
    import torch

    data = TokenData.open(ctx.resolve(cfg.data))
    tokens = data.tokens(cfg.split)
    block_size = int(cfg.block_size or data.meta.get("block_size") or 128)
    if n_blocks(tokens, block_size) == 0:
        raise StepFailed(f"{data.path(cfg.split)} holds {len(tokens)} tokens, fewer than one block of {block_size + 1}")
    device = pick_device(cfg.device)
    folder = resolve_model_folder(ctx.resolve(cfg.model))
    model = load_model(folder).to(device)
    vocab = int(model.config.vocab_size)
    if data.vocab_size > vocab:
        raise StepFailed(f"the data's vocabulary ({data.vocab_size}) is larger than the model's ({vocab})")
    if cfg.tokenizer:
        tok = load_tokenizer(ctx.resolve(cfg.tokenizer))
        if tok.vocab_size > vocab:
            raise StepFailed(f"the tokenizer's vocabulary ({tok.vocab_size}) is larger than the model's ({vocab})")
    previous_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else None
        ctx.log(f"evaluating {folder} on {cfg.split}.bin ({len(tokens)} tokens, block {block_size})")
        result = evaluate_model(model, tokens, block_size, cfg.batch_size, device, cfg.max_batches, autocast)
    finally:
        torch.set_num_threads(previous_threads)
    report = {**result, "model": str(folder), "split": cfg.split, "block_size": block_size}
    ctx.step_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(ctx.step_dir / "eval.json", report, redacted=False, sort_keys=True)
    metrics = MetricsLog(ctx.step_dir, ctx.run_id)
    for key in ("loss", "perplexity", "token_accuracy"):
        metrics.write(key, result[key], step=None, split=cfg.split)
        ctx.metric(key, result[key], split=cfg.split)
    return StepResult(
        outputs=[],
        summary={k: result[k] for k in ("loss", "perplexity", "token_accuracy", "tokens")},
        note=f"loss {result['loss']:.4f}, perplexity {result['perplexity']:.2f}, "
        f"accuracy {result['token_accuracy']:.3f} over {result['tokens']} tokens",
    )
