"""Helpers for the ML engine tests: a small code corpus, token data, tiny training settings."""

from __future__ import annotations

import shutil
from pathlib import Path

ENGINE_SRC = Path(__file__).resolve().parents[2] / "codex_tasks" / "engine"

# What sentencepiece's defaults would destroy: tabs, runs of spaces, blank lines, unicode, CRLF.
TRICKY = (
    "def f(x):\n"
    "\tif x:\n"
    "\t\treturn 'héllo wörld ✓ 日本語 🚀'\n"
    "\n"
    "\n"
    "    \t  # mixed indentation    with trailing spaces   \n"
    "class A:\n"
    "    '''Doc with   many    spaces.'''\r\n"
    "    x = {'k': [1,  2,   3]}\n"
    "\n"
    "        \n"
    "print(\"end\")"
)


def write_corpus(root: Path, n_files: int = 6) -> Path:
    """A few KB of real Python (this engine's own source) plus the tricky file."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pkg").mkdir(exist_ok=True)
    for src in sorted(ENGINE_SRC.glob("*.py"))[:n_files]:
        shutil.copyfile(src, root / "pkg" / src.name)
    (root / "pkg" / "tricky.py").write_text(TRICKY, encoding="utf-8", newline="")
    (root / "docs").mkdir(exist_ok=True)
    (root / "docs" / "notes.md").write_text("# Notes\n\n- one\n- two\n\n```\n\tcode\n```\n", encoding="utf-8")
    (root / ".venv" / "lib").mkdir(parents=True, exist_ok=True)
    (root / ".venv" / "lib" / "ignored.py").write_text("SHOULD_NOT_BE_READ = 1\n")
    return root


def prepare(root: Path, out: Path, kind: str = "sentencepiece", vocab_size: int = 400, block_size: int = 32, seed: int = 0):
    from codex_tasks.engine.prepare import PrepareSpec, prepare_token_data

    spec = PrepareSpec(
        root=root, corpus=["**/*.py", "docs/**/*.md"], exclude=None, kind=kind, vocab_size=vocab_size,
        tokenizer=None, block_size=block_size, eval_fraction=0.2, seed=seed, out=out, threads=2,
    )
    return prepare_token_data(spec, log=lambda line: None, progress=lambda *a, **k: None)


def tiny_settings(data: Path, out: Path, **overrides):
    """A 2-layer, 32-wide GPT-2 on `data`: a few milliseconds a step."""
    from codex_tasks.engine.config import TrainSettings

    base = {
        "model": {"config": {"type": "gpt2", "n_layer": 2, "n_head": 2, "n_embd": 32, "n_positions": 32}},
        "data": str(data),
        "batch_size": 8,
        "max_steps": 20,
        "lr": 3e-3,
        "warmup_steps": 2,
        "checkpoint": {"every": 5, "keep_last": 10, "keep_best": 0},
        "eval_batches": 2,
        "log_every": 1,
        "mlflow": {"enabled": False},
        "system_metrics_every": 0,
        "threads": 2,
        "out": str(out),
    }
    for key, value in overrides.items():
        if key != "model" and isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return TrainSettings(**base)
