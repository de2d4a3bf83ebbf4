"""engine/model.py: the device a `device:` setting picks (training and evaluation share it)."""

from __future__ import annotations

import pytest
import torch

from codex_tasks.engine.model import pick_device
from codex_tasks.errors import StepFailed


def test_cpu_is_the_cpu_and_auto_takes_cuda_only_when_there_is_one():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_cuda_without_a_gpu_is_an_error_with_a_fix():
    if torch.cuda.is_available():
        assert pick_device("cuda").type == "cuda"
        return
    with pytest.raises(StepFailed) as err:
        pick_device("cuda")
    assert "no CUDA GPU" in err.value.message and "device: auto or cpu" in (err.value.hint or "")
