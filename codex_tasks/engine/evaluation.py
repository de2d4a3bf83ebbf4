"""Held-out evaluation: token-weighted loss, perplexity and next-token accuracy."""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

from codex_tasks.engine.data import sequential_batches

if TYPE_CHECKING:  # numpy loads with the first array, not on import: validate imports the step kinds
    import numpy as np


def evaluate_model(
    model: Any,
    tokens: np.ndarray,
    block_size: int,
    batch_size: int,
    device: Any,
    max_batches: int | None = None,
    autocast: Any = None,
) -> dict[str, float]:
    """Loss, perplexity and token accuracy over non-overlapping blocks, under `torch.no_grad()`.

    Uses no random numbers, so evaluating during training never changes what training does next.
    """
    import torch
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    loss_sum = 0.0
    correct = 0
    count = 0
    try:
        with torch.no_grad():
            for arr in sequential_batches(tokens, block_size, batch_size, max_batches):
                batch = torch.from_numpy(arr).to(device)
                x, y = batch[:, :-1], batch[:, 1:]
                with autocast if autocast is not None else contextlib.nullcontext():
                    logits = model(input_ids=x).logits
                logits = logits.float()
                loss_sum += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
                correct += int((logits.argmax(-1) == y).sum().item())
                count += y.numel()
    finally:
        model.train(was_training)
    if count == 0:
        return {"loss": float("nan"), "perplexity": float("nan"), "token_accuracy": float("nan"), "tokens": 0}
    loss = loss_sum / count
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 700.0)),
        "token_accuracy": correct / count,
        "tokens": count,
    }
