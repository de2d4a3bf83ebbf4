"""LoRA via peft: only adapter parameters train; the merged model gives base+adapter's logits."""

from __future__ import annotations

import pytest
import torch
from engine_fixtures import tiny_settings
from safetensors.torch import load_file

from codex_tasks.engine.hooks import Hooks
from codex_tasks.engine.trainer import Trainer


@pytest.fixture(scope="module")
def base_model(token_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "model"
    Trainer(tiny_settings(token_data, out, max_steps=10, checkpoint={"every": 10}), Hooks()).run()
    return out


def test_lora_trains_only_adapters_and_merges_exactly(base_model, token_data, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    settings = tiny_settings(
        token_data, out, model={"path": str(base_model)}, lr=1e-2, max_steps=6,
        lora={"r": 4, "alpha": 8, "target_modules": ["c_attn"]}, checkpoint={"every": 3},
    )
    trainer = Trainer(settings, Hooks())
    trainer.setup()
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    summary = trainer.train()
    trainer.cleanup()
    assert summary["n_trainable"] == 2 * (32 * 4 + 4 * 96)  # 2 layers x (A: 32x4 + B: 4x96)
    # checkpoints hold only the adapters
    ckpt = load_file(str(out / "checkpoints" / "step-00000006" / "model.safetensors"))
    assert set(ckpt) == set(trainable)

    base = AutoModelForCausalLM.from_pretrained(str(base_model / "final"))
    base_sd = {k: v.clone() for k, v in base.state_dict().items()}
    adapted = PeftModel.from_pretrained(base, str(out / "adapter")).eval()
    merged = AutoModelForCausalLM.from_pretrained(str(out / "final")).eval()
    x = torch.randint(0, base.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, m = adapted(input_ids=x).logits, merged(input_ids=x).logits
        plain = adapted.get_base_model()
        with adapted.disable_adapter():
            b = plain(input_ids=x).logits
    assert torch.allclose(a, m, atol=1e-5)
    assert not torch.allclose(a, b, atol=1e-4)  # the adapters learned something
    # the frozen base did not move
    for k, v in adapted.get_base_model().state_dict().items():
        name = k.replace("base_model.model.", "").replace(".base_layer", "")
        if "lora_" not in k and name in base_sd:
            assert torch.equal(v, base_sd[name]), k


def test_lora_resume_is_exact(base_model, token_data, tmp_path):
    from engine_fixtures import tiny_settings as ts

    kw = {"model": {"path": str(base_model)}, "max_steps": 6, "lora": {"r": 4}, "checkpoint": {"every": 3}}
    Trainer(ts(token_data, tmp_path / "a", **kw), Hooks()).run()

    class StopAt4(Hooks):
        def progress(self, done, total, unit, **extra):
            if done >= 4:
                self.cancel_event.set()

    from codex_tasks.errors import RunInterrupted

    with pytest.raises(RunInterrupted):
        Trainer(ts(token_data, tmp_path / "b", **kw), StopAt4()).run()
    Trainer(ts(token_data, tmp_path / "b", **kw), Hooks()).run()
    wa = load_file(str(tmp_path / "a" / "adapter" / "adapter_model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "adapter" / "adapter_model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
