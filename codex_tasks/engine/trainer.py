"""The training loop: a plain, readable causal-LM loop (not HF `Trainer`) with exact resume.

`Trainer(settings, hooks).run()` does `setup` (device, data, model, optimizer, resume, tracking),
`train` (the loop), and `cleanup`. Resume is exact: a checkpoint holds the model, optimizer,
scheduler, grad-scaler, the Python/NumPy/torch RNG states and the data position, so N straight
steps and N steps with a kill and a resume in between give bitwise-equal weights on CPU.

Under `torchrun` (see `distributed.py`, `rank_worker.py`) the same loop runs in every rank with a `DistInfo`: the model
is wrapped in DDP, each rank takes its slice of the global batch, rank 0 alone writes checkpoints
(holding every rank's RNG state), metrics, MLflow and progress; all ranks agree on when to stop.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import shutil
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from codex_tasks.core.files import write_json_atomic
from codex_tasks.core.redact import redact_obj
from codex_tasks.engine.checkpoint import (
    current_training,
    list_checkpoints,
    newest_valid,
    of_training,
    prune_checkpoints,
    save_checkpoint,
    start_training,
    verify_checkpoint,
)
from codex_tasks.engine.collectives import DistInfo, any_rank, broadcast_object, gather_to_main
from codex_tasks.engine.config import TrainSettings
from codex_tasks.engine.data import BlockSampler, TokenData, n_blocks
from codex_tasks.engine.evaluation import evaluate_model
from codex_tasks.engine.hooks import Hooks
from codex_tasks.engine.metrics import MetricsLog
from codex_tasks.engine.model import apply_lora, build_model, pick_device, save_final
from codex_tasks.engine.system import SystemSampler
from codex_tasks.engine.tokenizer import find_tokenizer_file
from codex_tasks.engine.tracking import MlflowTracker, mlflow_key
from codex_tasks.errors import RunInterrupted, StepFailed

DEFAULT_MAX_STEPS = 200
# Settings that change what training computes: a checkpoint made under others is not resumed.
FINGERPRINT_FIELDS = (
    "model", "block_size", "batch_size", "grad_accum", "max_steps", "epochs", "lr", "weight_decay", "betas",
    "warmup_steps", "scheduler", "grad_clip", "precision", "seed", "lora",
)


def lr_factor(step: int, warmup: int, total: int, scheduler: str) -> float:
    """Multiplier of the peak lr before optimizer step `step` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if scheduler == "constant":
        return 1.0
    progress = min(1.0, max(0.0, (step - warmup) / max(1, total - warmup)))
    if scheduler == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _python_rng() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _numpy_rng() -> list[Any]:
    import numpy as np

    state: Any = np.random.get_state()
    name, keys, pos, has_gauss, cached = state
    return [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]


def _set_python_rng(state: list[Any]) -> None:
    version, internal, gauss = state
    random.setstate((version, tuple(internal), gauss))


def _set_numpy_rng(state: list[Any]) -> None:
    import numpy as np

    name, keys, pos, has_gauss, cached = state
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def rng_snapshot() -> dict[str, Any]:
    """This process's Python, NumPy, torch CPU (and CUDA) RNG states, in `weights_only`-loadable types."""
    import torch

    snap: dict[str, Any] = {"python": _python_rng(), "numpy": _numpy_rng(), "torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        snap["cuda_rng"] = torch.cuda.get_rng_state_all()
    return snap


def restore_rng(snap: dict[str, Any]) -> None:
    import torch

    _set_python_rng(snap["python"])
    _set_numpy_rng(snap["numpy"])
    torch.set_rng_state(snap["torch_rng"])
    if torch.cuda.is_available() and "cuda_rng" in snap:
        torch.cuda.set_rng_state_all(snap["cuda_rng"])


class Trainer:
    """One training run of `settings` (paths already absolute), reporting through `hooks`."""

    def __init__(
        self,
        settings: TrainSettings,
        hooks: Hooks | None = None,
        *,
        run_id: str = "local",
        run_name: str | None = None,
        tracking_uri: str | None = None,
        artifact_location: Path | None = None,
        dist: DistInfo | None = None,
    ) -> None:
        self.s = settings
        self.dist = dist or DistInfo()
        self.is_main = self.dist.rank == 0
        self.hooks = hooks or Hooks()
        self.run_id = run_id
        self.run_name = run_name or run_id
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location
        self.out = Path(settings.out)
        self.ckpt_root = self.out / "checkpoints"
        self.metrics = MetricsLog(self.out, run_id)
        self.step = 0
        self.position = 0
        self.loss_window: list[float] = []
        self.resumed_from: str | None = None
        self.training_id: str | None = None  # set when the checkpoints are chosen (see checkpoint.start_training)
        self.tracker: Any = None
        self.sampler_thread: Any = None
        self.net: Any = None  # what the forward pass calls: the model, or its DDP wrapper
        self._restore: dict[str, Any] = {}

    # ---- setup -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Set up, train, clean up; returns a summary."""
        status = "FAILED"
        try:
            self.setup()
            summary = self.train()
            status = "FINISHED"
            return summary
        except RunInterrupted:
            status = "KILLED"
            raise
        finally:
            self.cleanup(status)

    def setup(self) -> None:
        """Everything that can fail before the first step fails here, with a one-line reason.
        Each `_setup_*` returns what it builds (in this order, each from what came before)."""
        self.device, self.autocast, self.scaler = self._setup_device()
        (self.data, self.block_size, self.train_tokens, self.eval_tokens, self.sampler, self.tokenizer_file,
         self.max_steps) = self._setup_data()
        self.model = self._setup_model()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.n_params = sum(p.numel() for p in self.model.parameters())
        self.n_trainable = sum(p.numel() for p in self.params)
        self.optimizer, self.scheduler = self._setup_optimizer()
        self._setup_resume()  # loads a checkpoint into what was built above
        self.net = self._setup_ddp()
        self.tracker, self.sampler_thread = self._setup_tracking()

    def _setup_device(self) -> tuple[Any, AbstractContextManager[Any], Any]:
        """(device, the autocast context, the gradient scaler). Built once, as nanoGPT does: a null
        context under fp32, and a scaler that is a no-op unless the run is fp16."""
        import torch

        s = self.s
        device = pick_device(s.device)
        if device.type == "cuda" and self.dist.world_size > 1:
            device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(device)
        if s.precision == "fp16" and device.type != "cuda":
            raise StepFailed("precision fp16 needs a CUDA GPU; this run is on CPU", hint="use precision: fp32 or bf16")
        if s.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise StepFailed("this GPU does not support bf16", hint="use precision: fp16 or fp32")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(s.precision)
        autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        scaler = torch.amp.GradScaler("cuda", enabled=s.precision == "fp16")
        if s.threads:
            self._restore["threads"] = torch.get_num_threads()
            torch.set_num_threads(s.threads)
        if s.deterministic:
            self._restore["deterministic"] = torch.are_deterministic_algorithms_enabled()
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        return device, autocast, scaler

    def _setup_data(self) -> tuple[TokenData, int, Any, Any, BlockSampler, Path | None, int]:
        """(data, block size, train tokens, eval tokens or None, the batch sampler, the tokenizer
        file, the number of steps)."""
        s = self.s
        data = TokenData.open(Path(s.data))
        block_size = int(s.block_size or data.meta.get("block_size") or 128)
        train_tokens = data.tokens("train")
        if len(train_tokens) == 0:
            raise StepFailed(f"{data.path('train')} is empty", hint="check the tokenize step's corpus")
        sampler = BlockSampler(train_tokens, block_size, s.seed)  # fails if < 1 block
        eval_tokens = data.tokens("eval") if data.path("eval").is_file() else None
        if eval_tokens is not None and n_blocks(eval_tokens, block_size) == 0:
            self.hooks.log("eval.bin holds less than one block: no evaluation during training")
            eval_tokens = None
        tokenizer_file = find_tokenizer_file(Path(s.tokenizer or s.data))
        if s.tokenizer and tokenizer_file is None:
            raise StepFailed(f"no tokenizer at {s.tokenizer}")
        per_step = s.batch_size * s.grad_accum * self.dist.world_size  # the global batch
        if s.epochs is not None:
            max_steps = max(1, math.ceil(s.epochs * sampler.n_blocks / per_step))
        else:
            max_steps = s.max_steps or DEFAULT_MAX_STEPS
        return data, block_size, train_tokens, eval_tokens, sampler, tokenizer_file, max_steps

    def _setup_model(self) -> Any:
        """The model (a LoRA-wrapped one with `lora:`), on the device, in training mode."""
        s = self.s
        seed_everything(s.seed)
        path = Path(s.model.path) if s.model.path else None
        model = build_model(s.model, self.data.vocab_size, self.data.special, path)
        n_positions = getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", 0)
        if n_positions and self.block_size > n_positions:
            raise StepFailed(f"block_size {self.block_size} exceeds the model's {n_positions} positions")
        if s.lora is not None:
            model = apply_lora(model, s.lora)
        model = model.to(self.device)
        model.train()
        if self.dist.rank > 0:
            # the same initial weights everywhere, then a stream of its own per rank (dropout)
            seed_everything(s.seed + 100_003 * self.dist.rank)
        return model

    def _setup_optimizer(self) -> tuple[Any, Any]:
        """(AdamW with decay on matrices only, its learning-rate schedule)."""
        import torch

        s = self.s
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        groups = [
            {"params": [p for _, p in named if p.dim() >= 2], "weight_decay": s.weight_decay},
            {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=s.lr, betas=s.betas)
        total = self.max_steps
        # built before any optimizer state is loaded, then its own state loaded (exact resume)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, s.warmup_steps, total, s.scheduler)
        )
        return optimizer, scheduler

    def fingerprint(self) -> str:
        s = self.s.model_dump(mode="json")
        facts = {k: s[k] for k in FINGERPRINT_FIELDS}
        facts["data"] = self.data.meta.get("train_sha256")
        facts["vocab"] = self.data.vocab_size
        if self.dist.world_size > 1:  # another world size is another global batch and other RNG streams
            facts["world_size"] = self.dist.world_size
        return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]

    def _setup_resume(self) -> None:
        if self.dist.world_size == 1:
            self._choose_and_load()
            return
        # rank 0 chooses (and may clear the folder); every rank then loads the same checkpoint
        decision: dict[str, Any] = {}
        if self.is_main:
            try:
                self._choose_and_load()
                decision = {"path": self.resumed_from and str(self.ckpt_root / self.resumed_from)}
                if self.resumed_from and self.s.resume not in ("auto", "never", "fresh"):
                    decision["path"] = str(Path(self.s.resume))
            except StepFailed as e:
                decision = {"error": e.message, "hint": e.hint}
        decision = broadcast_object(decision, self.device)
        if "error" in decision:
            raise StepFailed(decision["error"], hint=decision.get("hint"))
        if not self.is_main and decision["path"]:
            path = Path(decision["path"])
            self._load_checkpoint(path, json.loads((path / "state.json").read_text(encoding="utf-8")))
            self.resumed_from = path.name

    def _choose_and_load(self) -> None:
        s = self.s
        fp = self.fingerprint()
        ckpt = None
        current = current_training(self.ckpt_root)
        if s.resume == "auto":
            ckpt = newest_valid(self.ckpt_root, self.hooks.log,
                                accept=lambda c: c.state.get("fingerprint") == fp and of_training(c, current))
            if ckpt is None and self.ckpt_root.is_dir() and any(self.ckpt_root.iterdir()):
                self.hooks.log("no valid checkpoint made with these settings: starting over")
        elif s.resume == "fresh":
            if self.ckpt_root.is_dir() and any(self.ckpt_root.iterdir()):
                self.hooks.log("starting from scratch: earlier checkpoints are kept but ignored")
        elif s.resume != "never":
            path = Path(s.resume)
            reason = verify_checkpoint(path) if path.is_dir() else "not a folder"
            if reason:
                raise StepFailed(f"cannot resume from {path}: {reason}")

            ckpt = next((c for c in list_checkpoints(path.parent) if c.path == path), None)
        if ckpt is None:
            if s.resume != "fresh":
                shutil.rmtree(self.ckpt_root, ignore_errors=True)
            self.training_id = f"{self.run_id}-{os.urandom(3).hex()}"
            start_training(self.ckpt_root, self.training_id)
            self.metrics.clear()
            return
        self._load_checkpoint(ckpt.path, ckpt.state)
        self.training_id = str(ckpt.state.get("training") or f"{self.run_id}-{os.urandom(3).hex()}")
        if self.training_id != current and ckpt.path.parent == self.ckpt_root:
            start_training(self.ckpt_root, self.training_id)
        self.resumed_from = ckpt.path.name
        self.hooks.log(f"resumed from {ckpt.path.name} (step {self.step} of {self.max_steps})")

    def _load_checkpoint(self, path: Path, state: dict[str, Any]) -> None:
        import torch
        from safetensors.torch import load_file

        weights = load_file(str(path / "model.safetensors"), device=str(self.device))
        missing, unexpected = self.model.load_state_dict(weights, strict=False)
        trainable = {n for n, p in self.model.named_parameters() if p.requires_grad}
        if unexpected or trainable & set(missing):
            raise StepFailed(f"checkpoint {path.name} does not match the model ({len(unexpected)} unexpected keys)")
        if self.s.lora is None:
            self.model.tie_weights()
        blob = torch.load(path / "trainer.pt", map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(blob["optimizer"])
        self.scheduler.load_state_dict(blob["scheduler"])
        if "scaler" in blob:  # an fp16 run's
            self.scaler.load_state_dict(blob["scaler"])
        ranks = blob.get("ranks")
        if self.dist.world_size > 1 and ranks:
            if len(ranks) != self.dist.world_size:
                raise StepFailed(f"checkpoint {path.name} holds {len(ranks)} ranks' RNG states, this run has {self.dist.world_size}")
            restore_rng(ranks[self.dist.rank])  # each rank continues its own streams
        else:
            restore_rng({**state["rng"], **{k: blob[k] for k in ("torch_rng", "cuda_rng") if k in blob}})
        self.step = int(state["step"])
        self.position = self.sampler.position = int(state["position"])
        self.loss_window = [float(x) for x in state.get("loss_window", [])]
        self.mlflow_run_id = state.get("mlflow_run_id")
        if self.is_main:
            self.metrics.truncate_after(self.step)  # later rows belong to steps about to be redone

    def _setup_ddp(self) -> Any:
        """What the forward pass calls: the model, or its DistributedDataParallel wrapper."""
        if self.dist.world_size == 1:
            return self.model
        import inspect

        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        # GPT-2's buffers are constants: no need to sync them before each forward
        names = inspect.signature(DistributedDataParallel.__init__).parameters
        no_sync: dict[str, Any] = {"forward_sync_buffers": False} if "forward_sync_buffers" in names else {"broadcast_buffers": False}
        return DistributedDataParallel(self.model, device_ids=ids, **no_sync)

    def _setup_tracking(self) -> tuple[Any, Any]:
        """(the MLflow tracker or None, the system-metrics sampler or None): rank 0 alone tracks,
        samples and writes metrics."""
        s = self.s
        if not self.is_main:
            return None, None
        tracker = None
        if s.mlflow.enabled and self.tracking_uri:
            # also on self at once: `cleanup` ends a started MLflow run even if what follows fails
            tracker = self.tracker = MlflowTracker(self.tracking_uri, s.mlflow.experiment, self.artifact_location)
            params = {
                **s.model_dump(mode="json", exclude={"mlflow"}),
                "derived": {"max_steps": self.max_steps, "block_size": self.block_size, "vocab_size": self.data.vocab_size,
                            "n_params": self.n_params, "n_trainable": self.n_trainable, "device": self.device.type,
                            "world_size": self.dist.world_size},
            }
            tracker.start(s.mlflow.run_name or self.run_name, params, getattr(self, "mlflow_run_id", None),
                          tags=s.mlflow.tags)
            self.hooks.log(f"MLflow run {tracker.run_id} at {self.tracking_uri}")

        def report(values: dict[str, float]) -> None:
            for k, v in values.items():
                self.record(k, v, "system")

        sampler = SystemSampler(s.system_metrics_every, report)
        sampler.start()
        return tracker, sampler

    # ---- the loop ----------------------------------------------------------------------------

    def record(self, name: str, value: float, split: str, step: int | None = None) -> None:
        if not self.is_main:
            return
        step = self.step if step is None else step
        self.metrics.write(name, value, step=step, split=split)
        self.hooks.metric(name, value, step=step, split=split)
        if self.tracker is not None:
            self.tracker.metric(mlflow_key(split, name), value, step)

    def evaluate(self) -> dict[str, float]:
        assert self.eval_tokens is not None
        result = evaluate_model(self.model, self.eval_tokens, self.block_size, self.s.batch_size, self.device,
                                self.s.eval_batches, self.autocast)
        for k in ("loss", "perplexity", "token_accuracy"):
            self.record(k, result[k], "eval")
        return result

    def train(self) -> dict[str, Any]:
        import torch
        import torch.nn.functional as F

        s, net, opt = self.s, self.net, self.optimizer
        world, rank = self.dist.world_size, self.dist.rank
        tokens_per_step = s.batch_size * s.grad_accum * world * self.block_size  # the global batch
        eval_every = s.eval_every or s.checkpoint.every
        where = f"{self.device.type} ({s.precision})"
        if world > 1:
            where += f", {world} ranks ({self.dist.backend})"
        self.hooks.log(
            f"training {self.n_trainable:,} of {self.n_params:,} parameters on {where}, "
            f"{self.max_steps} steps of {tokens_per_step} tokens"
        )
        last_eval: dict[str, float] = {}
        rates: list[float] = []
        train_start = time.perf_counter()
        start_step = self.step
        while self.step < self.max_steps:
            if self._stop_requested():
                self.save_checkpoint({})
                raise RunInterrupted(f"training interrupted at step {self.step}; checkpoint saved")
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), device=self.device)
            for k in range(s.grad_accum):
                batch = self.sampler.next_batch(s.batch_size, world, rank)
                x_y = torch.from_numpy(batch).to(self.device, non_blocking=True)
                x, y = x_y[:, :-1], x_y[:, 1:]
                # DDP: gradients are all-reduced (averaged over ranks) on the last micro-batch only
                sync = net.no_sync() if world > 1 and k < s.grad_accum - 1 else contextlib.nullcontext()
                with sync:
                    with self.autocast:
                        logits = net(input_ids=x, use_cache=False).logits
                    # divide by grad_accum so the summed gradients equal those of one big batch
                    loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1)) / s.grad_accum
                    self.scaler.scale(loss).backward()
                loss_sum += loss.detach()
            if world > 1:  # the global batch's loss, the same number on every rank
                import torch.distributed as tdist

                tdist.all_reduce(loss_sum)
                loss_sum /= world
            self.scaler.unscale_(opt)  # (a disabled scaler, outside fp16, passes everything through)
            if s.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(self.params, s.grad_clip)
            self.scaler.step(opt)
            self.scaler.update()
            opt.zero_grad(set_to_none=True)
            self.scheduler.step()
            self.step += 1
            self.position = self.sampler.position
            loss_val = loss_sum.item()
            dt = max(time.perf_counter() - t0, 1e-9)
            rates.append(tokens_per_step / dt)
            self.hooks.progress(self.step, self.max_steps, "step", rate=1 / dt, tokens_per_s=tokens_per_step / dt,
                                loss=loss_val, lr=self.scheduler.get_last_lr()[0])
            if not math.isfinite(loss_val):
                raise StepFailed(f"the loss is {loss_val} at step {self.step}", hint="lower lr or use fp32")
            self.loss_window.append(loss_val)
            if self.step % s.log_every == 0 or self.step == self.max_steps:
                self.record("loss", sum(self.loss_window) / len(self.loss_window), "train")
                self.record("lr", float(self.scheduler.get_last_lr()[0]), "train")
                self.record("tokens_per_s", tokens_per_step / dt, "train")
                self.loss_window = []
            is_ckpt = self.step % s.checkpoint.every == 0 or self.step == self.max_steps
            if self.is_main and self.eval_tokens is not None and (self.step % eval_every == 0 or is_ckpt):
                last_eval = self.evaluate()
            if is_ckpt:
                metrics = {f"eval_{k}": v for k, v in last_eval.items() if k != "tokens"}
                metrics["train_loss"] = loss_val
                self.save_checkpoint(metrics)
        return self._finish(last_eval, rates, time.perf_counter() - train_start, start_step)

    def _stop_requested(self) -> bool:
        """Cancelled? Under DDP every rank gets the same answer (any rank's request stops all)."""
        flag = self.hooks.cancelled
        if self.dist.world_size > 1:
                flag = any_rank(flag, self.device)
        return flag

    def save_checkpoint(self, metrics: dict[str, float]) -> Path | None:
        """Write a checkpoint (rank 0; under DDP every rank must call it: RNG states are gathered)."""
        import torch
        from safetensors.torch import save_file

        ranks: list[Any] | None = None
        if self.dist.world_size > 1:
                ranks = gather_to_main(rng_snapshot(), self.device)
        if not self.is_main:
            return None

        def write(folder: Path) -> None:
            # only what trains: all weights, or just the adapters (the frozen base comes from `model`)
            weights = {n: p.detach().contiguous() for n, p in self.model.named_parameters() if p.requires_grad}
            save_file(weights, str(folder / "model.safetensors"))
            blob: dict[str, Any] = {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
            }
            if self.scaler.is_enabled():
                blob["scaler"] = self.scaler.state_dict()
            if torch.cuda.is_available():
                blob["cuda_rng"] = torch.cuda.get_rng_state_all()
            if ranks is not None:
                blob["ranks"] = ranks  # rank r's Python/NumPy/torch(/CUDA) RNG states, r = 0..world-1
            torch.save(blob, folder / "trainer.pt")

        state = {
            "format": 1,
            "step": self.step,
            "position": self.position,
            "epoch": self.position / self.sampler.n_blocks,
            "max_steps": self.max_steps,
            "metrics": metrics,
            "loss_window": self.loss_window,
            "fingerprint": self.fingerprint(),
            "training": self.training_id,
            # through the redaction hook, and only the settings: a secret a parameter put in a
            # `with:` field is masked there, while what resume matches (fingerprint, training,
            # MLflow run id, RNG states) stays exact. Resume never reads these settings back: it
            # trains with the step's own, whose secrets come again from the run's parameters.
            "settings": redact_obj(self.s.model_dump(mode="json")),
            "rng": {"python": _python_rng(), "numpy": _numpy_rng()},
            "mlflow_run_id": self.tracker.run_id if self.tracker is not None else None,
            "world_size": self.dist.world_size,
            "time": time.time(),
        }
        path = save_checkpoint(self.ckpt_root, self.step, write, state)
        c = self.s.checkpoint
        pruned = prune_checkpoints(self.ckpt_root, c.keep_last, c.keep_best, c.metric, c.mode, training=self.training_id)
        self.hooks.log(f"checkpoint {path.name}" + (f"; pruned {', '.join(pruned['removed'])}" if pruned["removed"] else ""))
        return path

    def _finish(self, last_eval: dict[str, float], rates: list[float], seconds: float, start_step: int) -> dict[str, Any]:
        import numpy as np

        if not self.is_main:
            return {"steps": self.step, "rank": self.dist.rank, "resumed_from": self.resumed_from}
        written = save_final(self.model, self.out, self.s.lora, self.tokenizer_file)
        if self.tracker is not None and self.s.mlflow.log_model and "final" in written:
            self.tracker.log_artifacts(Path(written["final"]), "model")
        summary = {
            "steps": self.step,
            "steps_this_attempt": self.step - start_step,
            "resumed_from": self.resumed_from,
            "n_params": self.n_params,
            "n_trainable": self.n_trainable,
            "tokens_per_s": float(np.median(rates)) if rates else None,
            "train_seconds": round(seconds, 3),
            "eval": last_eval,
            "final": written.get("final"),
            "adapter": written.get("adapter"),
            "mlflow_run_id": self.tracker.run_id if self.tracker is not None else None,
            "world_size": self.dist.world_size,
        }
        # redacted: the step copies it into the run folder as is (its paths come from `with:` fields)
        write_json_atomic(self.out / "train_summary.json", summary, sort_keys=True)
        return summary

    def cleanup(self, status: str = "FINISHED") -> None:
        import torch

        if self.sampler_thread is not None:
            self.sampler_thread.stop()
        if self.tracker is not None:
            try:
                self.tracker.end(status)
            except Exception as e:  # tracking must not hide the real outcome
                self.hooks.log(f"MLflow: could not close the run: {e}")
        if "threads" in self._restore:
            torch.set_num_threads(self._restore["threads"])
        if "deterministic" in self._restore:
            torch.use_deterministic_algorithms(self._restore["deterministic"])
