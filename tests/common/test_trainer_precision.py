"""bf16 in the Trainer stages (SFT, RM, DPO): the optimiser steps float32 weights, never bf16 ones (AdamW on a bf16
weight rounds every update below its resolution, 2^-8 relative, away). Full fine-tuning loads float32 (the Trainer's
bf16 flag autocasts on GPU); a LoRA base stays bf16 with float32 adapters, and an RM's LoRA score head is upcast."""

from __future__ import annotations

import math

import torch

from common.artifacts import write_jsonl
from common.models import load_reward_model
from common.train.dpo import DPOConfig, build_dpo_trainer
from common.train.rm import (
    RMConfig,
    build_rm_trainer,
    evaluate_pairs,
    load_pairs,
    score_texts,
    trained_weights_dtype,
)
from common.train.sft import SFTConfig, build_model


def _pairs(n: int) -> list[dict]:
    return [{"prompt": f"What do you think of item {i}?", "chosen": "It is good.", "rejected": "It is bad."}
            for i in range(n)]


def test_only_frozen_or_deepspeed_weights_load_in_half_precision():
    base = {"model_name_or_path": "m", "dataset": "d", "output_dir": "o", "dtype": "bfloat16"}
    assert trained_weights_dtype(RMConfig(**base)) == "float32"  # full fine-tuning: float32 + autocast
    assert trained_weights_dtype(RMConfig(**base, use_lora=True)) == "bfloat16"  # frozen base, fp32 adapters
    assert trained_weights_dtype(DPOConfig(**base, deepspeed="common/configs/deepspeed/zero2.json")) == "bfloat16"


def test_sft_full_fine_tuning_loads_float32_on_gpu_and_a_lora_base_stays_bf16(tiny_llama, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # build_model's GPU branch; nothing moves to cuda
    cfg = {"model_name_or_path": tiny_llama, "dataset": "d", "output_dir": str(tmp_path), "dtype": "bfloat16"}
    assert next(build_model(SFTConfig(**cfg)).parameters()).dtype == torch.float32
    lora = build_model(SFTConfig(**cfg, use_lora=True, lora_target_modules=["q_proj", "v_proj"]))
    dtypes = {n.split(".")[-2] if "lora" in n else "base": p.dtype for n, p in lora.named_parameters()}
    assert dtypes == {"default": torch.float32, "base": torch.bfloat16}


def test_bf16_lora_rm_keeps_small_score_head_updates(tiny_llama, tmp_path):
    from peft import PeftModel

    write_jsonl(tmp_path / "pairs.jsonl", _pairs(16))
    cfg = RMConfig(model_name_or_path=tiny_llama, dataset=str(tmp_path / "pairs.jsonl"), output_dir=str(tmp_path / "rm"),
                   template="plain", dtype="bfloat16", use_lora=True, lora_target_modules=["q_proj", "v_proj"],
                   learning_rate=1e-5, max_steps=2, per_device_train_batch_size=4, eval_fraction=0.25,
                   report_to="none", save_steps=1000)
    train, held_out = load_pairs(cfg)
    trainer, _ = build_rm_trainer(cfg, train)
    trained = {n: p for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert all(p.dtype == torch.float32 for p in trained.values())
    assert next(trainer.model.parameters()).dtype == torch.bfloat16  # the frozen base
    (head,) = [p for n, p in trained.items() if "modules_to_save" in n]
    before = head.detach().clone()
    trainer.train()
    # Adam moves each entry by ~lr = 1e-5; in bf16 only entries below ~0.004 in size (about 1 in 6) could move at all
    assert (head.detach() != before).float().mean() > 0.9
    metrics, _ = evaluate_pairs(trainer.model, trainer.processing_class, held_out, cfg)  # bf16 body, fp32 head
    assert math.isfinite(metrics["eval_accuracy"])
    trainer.save_model(str(tmp_path / "rm"))
    tok = trainer.processing_class
    reloaded = PeftModel.from_pretrained(load_reward_model(tiny_llama, "bfloat16", pad_token_id=tok.pad_token_id),
                                         str(tmp_path / "rm")).eval()
    with torch.no_grad():
        assert torch.allclose(score_texts(reloaded, tok, ["Hi"]).float(),
                              score_texts(trainer.model.eval(), tok, ["Hi"]).float(), atol=0.05)


def test_bf16_full_dpo_trains_a_float32_policy_against_a_bf16_reference(tiny_llama, tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", _pairs(8))
    cfg = DPOConfig(model_name_or_path=tiny_llama, dataset=str(tmp_path / "pairs.jsonl"),
                    output_dir=str(tmp_path / "dpo"), template="plain", dtype="bfloat16", learning_rate=1e-4,
                    max_steps=2, per_device_train_batch_size=4, report_to="none", save_steps=1000)
    trainer, *_ = build_dpo_trainer(cfg, load_pairs(cfg)[0])
    assert next(trainer.model.parameters()).dtype == torch.float32
    assert next(trainer.ref_model.parameters()).dtype == torch.bfloat16
    assert math.isfinite(trainer.train().training_loss)
