"""`train`: train a causal LM (optionally LoRA) with the engine's loop; checkpoints, exact resume.

With `distributed: {nproc_per_node: N, ...}` (N > 1 or nnodes > 1) the loop runs under torchrun
(`engine/distributed.py`); otherwise in this process.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from codex_tasks.core.files import read_json
from codex_tasks.engine.config import TrainSettings
from codex_tasks.engine.distributed import launch
from codex_tasks.engine.hooks import CallbackHooks
from codex_tasks.engine.trainer import Trainer
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "train"
CACHE = "default"


class With(TrainSettings, WithModel):
    """Trains a GPT-2 from a config (or fine-tunes a local model) on a `tokenize` step's data."""


def deps(cfg: With, ctx: StepContext) -> list[str]:
    paths = [cfg.data]
    if cfg.tokenizer and cfg.tokenizer != cfg.data:
        paths.append(cfg.tokenizer)
    if cfg.model.path:
        paths.append(cfg.model.path)
    return paths


def outputs(cfg: With, ctx: StepContext) -> list[str]:
    return [f"{cfg.out}/final", f"{cfg.out}/metrics.ndjson", f"{cfg.out}/metrics.csv"] + (
        [f"{cfg.out}/adapter"] if cfg.lora else []
    )


def resolve_paths(cfg: TrainSettings, ctx: StepContext) -> TrainSettings:
    """The same settings with every path made absolute against the workspace."""
    update: dict[str, object] = {"data": str(ctx.resolve(cfg.data)), "out": str(ctx.resolve(cfg.out))}
    if cfg.tokenizer:
        update["tokenizer"] = str(ctx.resolve(cfg.tokenizer))
    if cfg.model.path:
        update["model"] = cfg.model.model_copy(update={"path": str(ctx.resolve(cfg.model.path))})
    if cfg.resume not in ("auto", "never", "fresh"):
        update["resume"] = str(ctx.resolve(cfg.resume))
    return cfg.model_copy(update=update)


def tracking_location(cfg: TrainSettings, ctx: StepContext) -> tuple[str | None, Path | None]:
    """MLflow tracking URI and artifact folder: by default a SQLite file and a folder under `.codex/`."""
    if not cfg.mlflow.enabled:
        return None, None
    codex = ctx.workspace / ".codex"
    codex.mkdir(parents=True, exist_ok=True)
    uri = cfg.mlflow.tracking_uri or f"sqlite:///{(codex / 'mlflow.db').resolve()}"
    return uri, codex / "mlartifacts"


def run_tags(ctx: StepContext) -> dict[str, str]:
    """MLflow run tags naming where a training came from: sequence, step id, run id, git commit."""
    tags = {"step_id": ctx.step_id, "run_id": ctx.run_id}
    state_file = ctx.run_dir / "state.json"
    state = read_json(state_file) if state_file.is_file() else {}
    if isinstance(state, dict) and (state.get("title") or state.get("sequence_file")):
        tags["sequence"] = str(state.get("title") or Path(str(state["sequence_file"])).name)
    try:
        git = subprocess.run(["git", "-C", str(ctx.workspace), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):  # no git: the tag is simply absent
        return tags
    if git.returncode == 0 and git.stdout.strip():
        tags["mlflow.source.git.commit"] = git.stdout.strip()
    return tags


def run(cfg: With, ctx: StepContext) -> StepResult:
    settings = resolve_paths(cfg, ctx)
    if ctx.forced and settings.resume != "never":
        # --force=ID (also with --resume): from scratch; the old checkpoints stay on disk, ignored
        settings = settings.model_copy(update={"resume": "fresh"})
    if settings.mlflow.enabled:
        tags = {**run_tags(ctx), **settings.mlflow.tags}  # the user's own tags win
        settings = settings.model_copy(update={"mlflow": settings.mlflow.model_copy(update={"tags": tags})})
    uri, artifacts = tracking_location(cfg, ctx)
    hooks = CallbackHooks(ctx.progress, ctx.metric, ctx.log, ctx.cancel_event)
    run_name = f"{ctx.run_id}-{ctx.step_id}"
    # the first training step comes after imports, data and model setup: say what is going on
    ctx.log(f"setting up: data {settings.data}, model, optimizer" + (", MLflow" if settings.mlflow.enabled else ""))
    if settings.distributed is not None and settings.distributed.active:
        # torchrun (DDP) in a subprocess: its output streams to the step log, rank 0's events to ctx
        summary = launch(settings, hooks, run_id=ctx.run_id, run_name=run_name, tracking_uri=uri,
                         artifact_location=artifacts, env=ctx.env)
        if summary.get("steps") is None:  # a node without rank 0: rank 0's node reports the training
            return StepResult(summary=summary, note=f"node {summary.get('node_rank')} of a distributed run")
    else:
        trainer = Trainer(settings, hooks, run_id=ctx.run_id, run_name=run_name, tracking_uri=uri,
                          artifact_location=artifacts)
        summary = trainer.run()
    out = Path(settings.out)
    for name in ("metrics.ndjson", "metrics.csv", "train_summary.json"):
        if (out / name).is_file():
            shutil.copyfile(out / name, ctx.step_dir / name)
    ev = summary.get("eval") or {}
    note = f"{summary['steps']} steps"
    if summary.get("resumed_from"):
        note += f" (resumed from {summary['resumed_from']})"
    if ev:
        note += f"; eval loss {ev['loss']:.3f}, ppl {ev['perplexity']:.1f}"
    return StepResult(outputs=outputs(cfg, ctx), summary=summary, note=note)
