"""The training configuration: Pydantic models shared by the `train` step and the engine.

Every field has a description (they become the docs and the JSON Schema); bad values fail at
validation, not in the middle of a run. Paths are relative to the workspace in a task file; the
step resolves them before handing the settings to the engine.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    """A model built from a transformers config (random initialisation)."""

    type: Literal["gpt2"] = Field(description="Architecture: `gpt2` (a transformers `GPT2Config`).")
    n_layer: int = Field(2, ge=1, le=96, description="Transformer blocks.")
    n_head: int = Field(4, ge=1, le=128, description="Attention heads (must divide `n_embd`).")
    n_embd: int = Field(128, ge=8, le=16384, description="Hidden size.")
    n_positions: int = Field(128, ge=8, le=65_536, description="Maximum sequence length (at least `block_size`).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on embeddings, residuals and attention.")

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelConfig:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        return self


class ModelSpec(_Strict):
    """Exactly one of `config` (build from scratch) or `path` (a local model folder)."""

    config: ModelConfig | None = Field(None, description="Build a new model from this config.")
    path: str | None = Field(
        None,
        description="A local model folder (`save_pretrained` layout) or a `train` step's `out` folder (its `final/`).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelSpec:
        if (self.config is None) == (self.path is None):
            raise ValueError("give exactly one of `config` or `path`")
        return self


class LoraSpec(_Strict):
    """LoRA adapters (peft): only the adapter parameters train."""

    r: int = Field(8, ge=1, le=1024, description="Adapter rank.")
    alpha: float = Field(16.0, gt=0, le=10_000, description="Scaling numerator (`lora_alpha`): updates are scaled by alpha / r.")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the adapter input.")
    target_modules: list[str] | None = Field(
        None, description="Module names to adapt (default: peft's choice for the architecture, `c_attn` for GPT-2)."
    )
    merge: bool = Field(
        True,
        description="Also write the merged model to `final/` (the adapter alone always goes to `adapter/`).",
    )


class CheckpointSpec(_Strict):
    """When to write checkpoints and which to keep."""

    every: int = Field(100, ge=1, le=1_000_000_000, description="Write a checkpoint every this many optimizer steps (and at the end).")
    keep_last: int = Field(3, ge=1, le=10_000, description="Keep the newest N checkpoints.")
    keep_best: int = Field(1, ge=0, le=10_000, description="Also keep the best K of the older ones by `metric`.")
    metric: str = Field(
        "eval_loss",
        pattern=r"^(train|eval)_[a-z_]+$",
        description="Metric ranking checkpoints, named `<split>_<metric>` (e.g. `eval_loss`, `train_loss`).",
    )
    mode: Literal["min", "max"] = Field("min", description="Whether a lower (`min`) or higher (`max`) metric is better.")


class MlflowSpec(_Strict):
    """Tracking in MLflow (a local SQLite store by default)."""

    enabled: bool = Field(True, description="Log params, metrics and the final model to MLflow.")
    tracking_uri: str | None = Field(
        None, description="Tracking URI (default: `sqlite:///<workspace>/.codex/mlflow.db`)."
    )
    experiment: str = Field("codex-tasks", min_length=1, description="Experiment name (created if missing).")
    run_name: str | None = Field(None, description="Run name (default: `<run id>-<step id>`).")
    log_model: bool = Field(True, description="Upload the final model folder as an artifact.")
    tags: dict[str, str] = Field(
        default_factory=dict,
        description="Tags on the MLflow run. The `train` step adds `sequence`, `step_id`, `run_id` and "
                    "`mlflow.source.git.commit` (where the workspace is a git repository).",
    )


class DistributedSpec(_Strict):
    """Data-parallel training under `torchrun` (DDP): gloo on CPU, NCCL on GPUs."""

    nproc_per_node: int = Field(1, ge=1, le=1024, description="Worker processes on this node (one per GPU on CUDA).")
    nnodes: int = Field(1, ge=1, le=4096, description="Nodes taking part; every node runs the same step with its own `node_rank`.")
    node_rank: int = Field(0, ge=0, le=4095, description="This node's rank (0 on the node whose rank 0 writes checkpoints and metrics).")
    master_addr: str = Field("127.0.0.1", min_length=1, description="Address of the node with global rank 0.")
    master_port: int | None = Field(
        None, ge=1, le=65535, description="Rendezvous port on `master_addr` (default: a free port; required when `nnodes` > 1)."
    )
    backend: Literal["auto", "gloo", "nccl"] = Field(
        "auto", description="Process-group backend: `auto` is NCCL when training on CUDA, else gloo."
    )
    cancel_grace: float = Field(
        60.0, gt=0, le=3600, description="Seconds a cancelled run gets to checkpoint and exit before torchrun is terminated."
    )

    @property
    def active(self) -> bool:
        """Whether this needs more than one process (else the loop runs in-process as usual)."""
        return self.nproc_per_node > 1 or self.nnodes > 1

    @model_validator(mode="after")
    def _ranks(self) -> DistributedSpec:
        if self.node_rank >= self.nnodes:
            raise ValueError(f"node_rank ({self.node_rank}) must be below nnodes ({self.nnodes})")
        if self.nnodes > 1 and self.master_port is None:
            raise ValueError("master_port is required when nnodes > 1 (every node must use the same one)")
        return self


class TrainSettings(_Strict):
    """Everything the training loop needs (the `with:` of `train`)."""

    model: ModelSpec = Field(description="The model: `{config: {...}}` from scratch or `{path: ...}` to fine-tune.")
    data: str = Field(description="A data folder written by `tokenize` (`train.bin`, `eval.bin`, `meta.json`).")
    tokenizer: str | None = Field(
        None, description="The tokenizer folder (default: `data`, where `tokenize` writes it); copied into `final/`."
    )
    block_size: int | None = Field(None, ge=8, le=65_536, description="Tokens per sequence (default: the data's `block_size`).")
    batch_size: int = Field(16, ge=1, le=65_536, description="Sequences per micro-batch.")
    grad_accum: int = Field(1, ge=1, le=65_536, description="Micro-batches per optimizer step (the loss is divided by it).")
    max_steps: int | None = Field(None, ge=1, le=1_000_000_000, description="Optimizer steps to run (default 200 unless `epochs` is given).")
    epochs: float | None = Field(None, gt=0, le=1_000_000, description="Passes over the training blocks (instead of `max_steps`).")
    lr: float = Field(3e-4, gt=0, le=10, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.1, ge=0, le=10, description="AdamW weight decay (matrices only; not biases or norms).")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas.")
    warmup_steps: int = Field(0, ge=0, le=1_000_000_000, description="Linear warm-up steps from 0 to `lr`.")
    scheduler: Literal["linear", "cosine", "constant"] = Field(
        "cosine", description="Learning-rate decay after warm-up: `linear` / `cosine` to 0, or `constant`."
    )
    grad_clip: float = Field(1.0, ge=0, le=1_000_000, description="Clip the global gradient norm to this (0: no clipping).")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="`fp32`; `bf16` autocast (CPU or a bf16-capable GPU); `fp16` autocast + loss scaling (CUDA only)."
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of model initialisation, data order and dropout.")
    deterministic: bool = Field(False, description="Use deterministic algorithms only (`torch.use_deterministic_algorithms`).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="`auto` picks CUDA when available.")
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads for torch (default: torch's choice).")
    lora: LoraSpec | None = Field(None, description="Train LoRA adapters instead of all weights.")
    checkpoint: CheckpointSpec = Field(default_factory=lambda: CheckpointSpec.model_validate({}), description="Checkpoint cadence and retention.")
    eval_every: int | None = Field(
        None, ge=1, le=1_000_000_000, description="Evaluate on `eval.bin` every this many steps (default: at each checkpoint)."
    )
    eval_batches: int = Field(20, ge=1, le=1_000_000_000, description="Batches per evaluation during training.")
    log_every: int = Field(10, ge=1, le=1_000_000_000, description="Write the averaged train loss to the metrics every this many steps.")
    resume: str = Field(
        "auto",
        min_length=1,
        description="`auto`: continue from the newest valid checkpoint in `out/checkpoints` made with the same "
        "settings; `never`: start over (old checkpoints are removed); or the path of one checkpoint folder.",
    )
    mlflow: MlflowSpec = Field(default_factory=lambda: MlflowSpec.model_validate({}), description="MLflow tracking.")
    distributed: DistributedSpec | None = Field(
        None,
        description="Run the loop under torchrun (DDP) with this many processes; the global batch is "
        "`batch_size` x `grad_accum` x world size. Absent (or one process on one node): in-process training.",
    )
    system_metrics_every: float = Field(
        10.0, ge=0, le=86_400, description="Seconds between CPU/RAM (and GPU via pynvml) samples; 0 turns them off."
    )
    out: str = Field(
        ".codex/artifacts/model",
        description="Output folder: `checkpoints/`, `final/` (save_pretrained), `adapter/` (LoRA), metrics files.",
    )

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= b < 1 for b in v):
            raise ValueError("betas must be in [0, 1)")
        return v

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> TrainSettings:
        if self.max_steps is not None and self.epochs is not None:
            raise ValueError("give `max_steps` or `epochs`, not both")
        if self.model.config is not None and self.block_size and self.block_size > self.model.config.n_positions:
            raise ValueError(f"block_size ({self.block_size}) exceeds model.config.n_positions ({self.model.config.n_positions})")
        return self
