"""The shared ML engine: tokenizers, token files, models, the training loop, evaluation,
checkpoints and tracking.

It never imports Prefect, the CLI or the TUI. Its top level imports nothing heavy: torch,
transformers, peft, sentencepiece, tokenizers and mlflow load inside the functions that use them,
so `codex-tasks validate` stays fast. Progress leaves the engine only through a `Hooks` object
(`codex_tasks.engine.hooks`), which step kinds adapt to run events.
"""
