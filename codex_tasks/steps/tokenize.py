"""`tokenize`: train (or reuse) a tokenizer and encode a corpus into `train.bin` / `eval.bin`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from codex_tasks.core.resources import tasks_dir
from codex_tasks.engine.corpus import DEFAULT_CORPUS, DEFAULT_EXCLUDE, find_files
from codex_tasks.engine.prepare import PrepareSpec, prepare_token_data
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "tokenize"
FALLBACK_GLOBS = ["**/*.py", "**/*.md", "**/*.txt"]
CACHE = "default"


class With(WithModel):
    """Trains or loads a tokenizer and writes token blocks for `train` and `evaluate`."""

    corpus: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CORPUS),
        min_length=1,
        description="Glob patterns (relative to the workspace; `**` spans folders) of the text files to encode.",
    )
    exclude: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDE),
        description="Glob patterns never read (folders matching them are not even walked).",
    )
    kind: Literal["sentencepiece", "bpe"] = Field(
        "sentencepiece",
        description="`sentencepiece` (unigram, byte fallback; deterministic) or `bpe` (HF tokenizers byte-level BPE).",
    )
    vocab_size: int = Field(
        2048, ge=300, le=1 << 20,
        description="Target vocabulary size (a soft limit: a tiny corpus may yield fewer pieces).",
    )
    tokenizer: str | None = Field(
        None, description="Path of an existing tokenizer (file or folder) to reuse instead of training one."
    )
    block_size: int = Field(128, ge=8, le=65_536, description="Tokens per training block (recorded in meta.json; a warning if the corpus is smaller).")
    eval_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="Fraction of documents held out for `eval.bin` (split by document, seeded)."
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of the train/eval split and of tokenizer training.")
    threads: int | None = Field(
        None, ge=1, le=1024, description="Encoder threads (default: the machine's cores, at most 8)."
    )
    fallback: str | None = Field(
        None,
        description="Read this folder's `*.py`, `*.md` and `*.txt` files when `corpus` matches no file in the "
        "workspace; `builtin` is the small corpus shipped with codex-tasks (default: none, the step fails).",
    )
    out: str = Field(
        ".codex/artifacts/tokenizer",
        description="Folder written: the tokenizer file, `train.bin`, `eval.bin` and `meta.json`.",
    )


def fallback_root(cfg: With, ctx: StepContext) -> Path | None:
    """The folder read when the corpus globs match nothing (`builtin`: the shipped corpus)."""
    if not cfg.fallback:
        return None
    if cfg.fallback == "builtin":
        return tasks_dir() / "corpus"
    return ctx.resolve(cfg.fallback)


def deps(cfg: With, ctx: StepContext) -> list[str]:
    deps = list(cfg.corpus)
    if cfg.tokenizer:
        deps.append(cfg.tokenizer)
    fallback = fallback_root(cfg, ctx)
    if fallback is not None:
        deps.append(str(fallback))
    return deps


def outputs(cfg: With, ctx: StepContext) -> list[str]:
    return [cfg.out]


def run(cfg: With, ctx: StepContext) -> StepResult:
    out = ctx.resolve(cfg.out)
    root, corpus = ctx.workspace, cfg.corpus
    fallback = fallback_root(cfg, ctx)
    if fallback is not None and not find_files(ctx.workspace, cfg.corpus, cfg.exclude):
        ctx.log(f"no file in the workspace matches {cfg.corpus}: reading the fallback corpus {fallback}")
        root, corpus = fallback, FALLBACK_GLOBS
    spec = PrepareSpec(
        root=root,
        corpus=corpus,
        exclude=cfg.exclude,
        kind=cfg.kind,
        vocab_size=cfg.vocab_size,
        tokenizer=ctx.resolve(cfg.tokenizer) if cfg.tokenizer else None,
        block_size=cfg.block_size,
        eval_fraction=cfg.eval_fraction,
        seed=cfg.seed,
        out=out,
        threads=cfg.threads,
    )
    meta = prepare_token_data(spec, log=ctx.log, progress=ctx.progress)
    for split in ("train", "eval"):
        ctx.metric("tokens", meta[f"{split}_tokens"], split=split)
    summary = {k: meta[k] for k in ("kind", "vocab_size", "train_tokens", "eval_tokens", "files", "corpus_bytes", "encode_seconds")}
    return StepResult(
        outputs=[cfg.out],
        summary=summary,
        note=f"{meta['kind']} vocab {meta['vocab_size']}: {meta['train_tokens']} train / {meta['eval_tokens']} eval tokens",
    )
