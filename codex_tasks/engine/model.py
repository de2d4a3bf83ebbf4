"""Models: a GPT-2 built from a config, a local folder, LoRA adapters, and the final save."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from codex_tasks.engine.config import LoraSpec, ModelSpec
from codex_tasks.errors import StepFailed

ADAPTER_CONFIG = "adapter_config.json"


def quiet_transformers() -> None:
    """No tqdm bars from save/load: step logs and the TUI carry progress instead."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def pick_device(requested: str) -> Any:
    """The torch device for a `device:` setting: `auto` is CUDA when available, else the CPU;
    `cuda` without a CUDA GPU is an error (training and evaluation choose alike)."""
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise StepFailed("device is cuda but no CUDA GPU is available", hint="use device: auto or cpu")
    return torch.device("cuda" if requested != "cpu" and torch.cuda.is_available() else "cpu")


def resolve_model_folder(path: Path) -> Path:
    """A model folder, or a `train` step's `out` folder (its `final/`, else its `adapter/`)."""
    for candidate in (path, path / "final", path / "adapter"):
        if (candidate / "config.json").is_file() or (candidate / ADAPTER_CONFIG).is_file():
            return candidate
    raise StepFailed(
        f"no model at {path} (no config.json or {ADAPTER_CONFIG})",
        hint="point `model` at a save_pretrained folder or a `train` step's `out` folder",
    )


def build_model(spec: ModelSpec, vocab_size: int, special: dict[str, int], model_path: Path | None) -> Any:
    """A new model from `spec.config` (vocabulary from the tokenizer) or one loaded from a folder."""
    if spec.config is not None:
        from transformers import GPT2Config, GPT2LMHeadModel

        c = spec.config
        config = GPT2Config(
            vocab_size=vocab_size,
            n_layer=c.n_layer,
            n_head=c.n_head,
            n_embd=c.n_embd,
            n_positions=c.n_positions,
            resid_pdrop=c.dropout,
            embd_pdrop=c.dropout,
            attn_pdrop=c.dropout,
            bos_token_id=special.get("bos"),
            eos_token_id=special.get("eos"),
            pad_token_id=special.get("pad"),
        )
        return GPT2LMHeadModel(config)
    assert model_path is not None
    model = load_model(model_path)
    if model.config.vocab_size < vocab_size:
        raise StepFailed(
            f"the model's vocabulary ({model.config.vocab_size}) is smaller than the tokenizer's ({vocab_size})",
            hint="fine-tune with the tokenizer the model was trained with",
        )
    return model


def load_model(path: Path) -> Any:
    """Load a causal LM from a folder; an adapter folder is loaded onto its base and merged."""
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    folder = resolve_model_folder(path)
    if (folder / ADAPTER_CONFIG).is_file() and not (folder / "config.json").is_file():
        from peft import PeftConfig, PeftModel

        base_path = PeftConfig.from_pretrained(str(folder)).base_model_name_or_path
        if not base_path or not Path(base_path).is_dir():
            raise StepFailed(f"the adapter at {folder} names a base model that is not a local folder: {base_path!r}")
        base = AutoModelForCausalLM.from_pretrained(base_path)
        return PeftModel.from_pretrained(base, str(folder)).merge_and_unload()
    return AutoModelForCausalLM.from_pretrained(str(folder))


def apply_lora(model: Any, spec: LoraSpec) -> Any:
    """Wrap `model` with LoRA adapters; only their parameters require gradients."""
    from peft import LoraConfig, get_peft_model

    is_gpt2 = getattr(model.config, "model_type", "") == "gpt2"
    config = LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,  # type: ignore[arg-type]  # peft accepts floats
        lora_dropout=spec.dropout,
        target_modules=spec.target_modules,
        fan_in_fan_out=is_gpt2,  # GPT-2's Conv1D stores weights transposed
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as e:
        raise StepFailed(f"LoRA: {str(e).splitlines()[0]}", hint="check lora.target_modules") from e


def save_final(model: Any, out: Path, lora: LoraSpec | None, tokenizer_file: Path | None) -> dict[str, str]:
    """Write `out/final/` (save_pretrained, safetensors) and, with LoRA, `out/adapter/`; atomically."""
    quiet_transformers()
    written: dict[str, str] = {}

    def _swap(tmp: Path, dest: Path) -> None:
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)

    if lora is not None:
        tmp = out / ".adapter.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp))
        _swap(tmp, out / "adapter")
        written["adapter"] = str(out / "adapter")
        if not lora.merge:
            return written
        model = model.merge_and_unload()
    tmp = out / ".final.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    # save_pretrained handles GPT-2's tied embeddings (plain safetensors.save_file refuses them)
    model.save_pretrained(str(tmp))
    if tokenizer_file is not None and tokenizer_file.is_file():
        shutil.copyfile(tokenizer_file, tmp / tokenizer_file.name)
    _swap(tmp, out / "final")
    written["final"] = str(out / "final")
    return written
