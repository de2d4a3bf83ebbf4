"""Tokens/s of the `train` step's loop vs a minimal hand-written PyTorch loop vs HF `Trainer`.

Same model (GPT-2 from a config), data (random token blocks), batch, precision and threads.
Each measurement runs in a fresh subprocess (clean peak memory), interleaved round-robin so load
from other processes hits all three alike; figures are medians of per-step rates, then of rounds.

    .venv/bin/python bench/train_throughput.py [--steps 30] [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IMPLS = ["engine", "handwritten", "hf_trainer"]
MODEL = {"type": "gpt2", "n_layer": 2, "n_head": 4, "n_embd": 128, "n_positions": 128}
VOCAB, BLOCK, BATCH, LR = 8000, 128, 16, 3e-4


def make_data(folder: Path) -> None:
    import numpy as np

    from codex_tasks.core.files import write_json_atomic
    from codex_tasks.engine.data import TokenWriter

    folder.mkdir(parents=True, exist_ok=True)
    w = TokenWriter(folder / "train.bin", "uint16")
    w.write(np.random.default_rng(0).integers(0, VOCAB, 2_000_000, dtype=np.uint16))
    w.close()
    meta = {"vocab_size": VOCAB, "dtype": "uint16", "block_size": BLOCK,
            "special": {"pad": 0, "bos": 1, "eos": 2}, "train_sha256": w.sha256}
    write_json_atomic(folder / "meta.json", meta, redacted=False, sort_keys=True)


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def run_engine(data: Path, steps: int, precision: str, threads: int) -> list[float]:
    from codex_tasks.engine.config import TrainSettings
    from codex_tasks.engine.hooks import Hooks
    from codex_tasks.engine.trainer import Trainer

    rates: list[float] = []

    class Rate(Hooks):
        def progress(self, done, total, unit, **extra):
            rates.append(extra["tokens_per_s"])

        def log(self, line):
            pass

    with tempfile.TemporaryDirectory() as out:
        s = TrainSettings(model={"config": MODEL}, data=str(data), batch_size=BATCH, max_steps=steps, lr=LR,
                          precision=precision, threads=threads, checkpoint={"every": 10**6}, resume="never",
                          mlflow={"enabled": False}, system_metrics_every=0, out=out)
        Trainer(s, Rate()).run()
    return rates


def run_handwritten(data: Path, steps: int, precision: str, threads: int) -> list[float]:
    """What a user would write by hand: same optimizer, schedule, clipping; nothing else."""
    import contextlib
    import math

    import numpy as np
    import torch
    import torch.nn.functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = {k: v for k, v in MODEL.items() if k != "type"}
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, **cfg))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    tokens = np.memmap(data / "train.bin", dtype=np.uint16, mode="r")
    rng = np.random.default_rng(0)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    rates = []
    for _ in range(steps):
        t0 = time.perf_counter()
        starts = rng.integers(0, len(tokens) - BLOCK - 1, BATCH)
        batch = torch.from_numpy(np.stack([tokens[s : s + BLOCK + 1].astype(np.int64) for s in starts]))
        x, y = batch[:, :-1], batch[:, 1:]
        with amp:
            logits = model(input_ids=x, use_cache=False).logits
        loss = F.cross_entropy(logits.float().reshape(-1, VOCAB), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        loss.item()
        rates.append(BATCH * BLOCK / (time.perf_counter() - t0))
    return rates


def run_hf_trainer(data: Path, steps: int, precision: str, threads: int) -> list[float]:
    import numpy as np
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = {k: v for k, v in MODEL.items() if k != "type"}
    model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0, **cfg))
    tokens = np.memmap(data / "train.bin", dtype=np.uint16, mode="r")
    n = (len(tokens) - 1) // BLOCK

    class Blocks(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            ids = torch.from_numpy(tokens[i * BLOCK : (i + 1) * BLOCK].astype(np.int64))
            return {"input_ids": ids, "labels": ids}

    rates: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            rates.append(BATCH * BLOCK / (time.perf_counter() - self.t0))

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=BATCH, max_steps=steps, learning_rate=LR,
            weight_decay=0.1, adam_beta2=0.95, lr_scheduler_type="cosine", max_grad_norm=1.0,
            logging_strategy="no", save_strategy="no", report_to=[], use_cpu=True, bf16=precision == "bf16",
            dataloader_num_workers=0, disable_tqdm=True,
        )
        Trainer(model=model, args=args, train_dataset=Blocks(), callbacks=[Timer()]).train()
    return rates


def worker(impl: str, precision: str, data: Path, steps: int, threads: int) -> None:
    base = rss_mb()
    fn = {"engine": run_engine, "handwritten": run_handwritten, "hf_trainer": run_hf_trainer}[impl]
    rates = fn(data, steps, precision, threads)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    warm = rates[3:] if len(rates) > 6 else rates  # the first steps warm up allocators and kernels
    print(json.dumps({"tok_s": statistics.median(warm), "peak_delta_mb": peak - base}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--worker", nargs=2, metavar=("IMPL", "PRECISION"), help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a.worker[0], a.worker[1], Path(a.data), a.steps, a.threads)
        return
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        make_data(data)
        results: dict[tuple[str, str], list[dict]] = {}
        for r in range(a.rounds):
            for precision in a.precisions.split(","):
                order = IMPLS[r % 3 :] + IMPLS[: r % 3]  # rotate who goes first
                for impl in order:
                    out = subprocess.run(
                        [sys.executable, __file__, "--worker", impl, precision, "--data", str(data),
                         "--steps", str(a.steps), "--threads", str(a.threads)],
                        env=env, capture_output=True, text=True, check=True,
                    )
                    results.setdefault((impl, precision), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"GPT-2 {MODEL['n_layer']}x{MODEL['n_embd']}, vocab {VOCAB}, block {BLOCK}, batch {BATCH}, "
          f"{a.threads} threads, {a.steps} steps x {a.rounds} rounds (medians)")
    for precision in a.precisions.split(","):
        med = {i: statistics.median(x["tok_s"] for x in results[(i, precision)]) for i in IMPLS}
        mem = {i: statistics.median(x["peak_delta_mb"] for x in results[(i, precision)]) for i in IMPLS}
        print(f"{precision}: engine {med['engine']:.0f} tok/s | hand-written {med['handwritten']:.0f} | "
              f"HF Trainer {med['hf_trainer']:.0f}")
        print(f"  engine / hand-written = {med['engine'] / med['handwritten']:.3f}x   "
              f"engine / HF Trainer = {med['engine'] / med['hf_trainer']:.3f}x")
        print(f"  peak memory (MB over start): engine {mem['engine']:.0f}, hand-written {mem['handwritten']:.0f}, "
              f"HF Trainer {mem['hf_trainer']:.0f}; engine / hand-written = {mem['engine'] / mem['handwritten']:.2f}x")


if __name__ == "__main__":
    main()
