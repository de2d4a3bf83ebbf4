"""`checkpoint_prune`: keep the newest N and the best K checkpoints (the code `train` uses)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from codex_tasks.core.files import write_json_atomic
from codex_tasks.engine.checkpoint import prune_checkpoints
from codex_tasks.errors import StepFailed
from codex_tasks.steps.base import StepContext, StepResult, WithModel

NAME = "checkpoint_prune"
CACHE = "never"


class With(WithModel):
    """Prunes a checkpoint folder; never removes the newest valid checkpoint or the best one."""

    dir: str = Field(description="A checkpoints folder, or a `train` step's `out` folder (its `checkpoints/`).")
    keep_last: int = Field(3, ge=1, le=10_000, description="Keep the newest N valid checkpoints.")
    keep_best: int = Field(1, ge=0, le=10_000, description="Also keep the best K of the older ones by `metric`.")
    metric: str = Field(
        "eval_loss", pattern=r"^(train|eval)_[a-z_]+$", description="Metric ranking checkpoints (`<split>_<metric>`)."
    )
    mode: Literal["min", "max"] = Field("min", description="Whether lower (`min`) or higher (`max`) is better.")
    dry_run: bool = Field(False, description="Only report what would be removed (also implied by `--dry-run`).")


def run(cfg: With, ctx: StepContext) -> StepResult:
    root = ctx.resolve(cfg.dir)
    if (root / "checkpoints").is_dir():
        root = root / "checkpoints"
    if not root.is_dir():
        raise StepFailed(f"no checkpoint folder at {root}", hint="point `dir` at a `train` step's `out` folder")
    dry = cfg.dry_run or ctx.dry_run
    result = prune_checkpoints(root, cfg.keep_last, cfg.keep_best, cfg.metric, cfg.mode, dry_run=dry)
    verb = "would remove" if dry else "removed"
    for name, reason in result["corrupt"].items():
        ctx.log(f"{name} is corrupt: {reason}")
    ctx.log(f"kept {', '.join(result['kept']) or 'nothing'}; {verb} {', '.join(result['removed']) or 'nothing'}")
    ctx.step_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(ctx.step_dir / "prune.json", result)
    return StepResult(
        outputs=[],
        summary=result,
        note=f"kept {len(result['kept'])}, {verb} {len(result['removed'])}",
    )
