"""DPO stage on the tiny model: training separates chosen from rejected, the PCRM term adds exactly −log σ(δ* − h),
and the implicit reward is β·log π/π_ref."""

from __future__ import annotations

import math

import pytest
import torch

from common.artifacts import write_jsonl
from common.config import ConfigError
from common.models import load_causal_lm, load_tokenizer
from common.train.dpo import (
    DPOCollator,
    DPOConfig,
    encode_pairs,
    implicit_reward,
    pair_losses,
    sequence_logps,
    train_dpo,
)


def pairs(n: int) -> list[dict]:
    return [{"prompt": f"Item {i}:", "chosen": "good", "rejected": "bad", "delta_star": 0.5 + (i % 3)}
            for i in range(n)]


def test_dpo_separates_chosen_from_rejected_on_held_out_pairs(tiny_llama, tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", pairs(40))
    cfg = DPOConfig(model_name_or_path=tiny_llama, dataset=str(tmp_path / "pairs.jsonl"),
                    output_dir=str(tmp_path / "dpo"), template="plain", learning_rate=1e-3, max_steps=6,
                    per_device_train_batch_size=4, eval_fraction=0.2, beta=0.1, report_to="none", save_steps=1000)
    metrics = train_dpo(cfg)
    # at step 0 the policy is the reference: every reward is 0, the loss log 2, the accuracy 0 (ties)
    assert metrics["eval_reward_accuracy"] > 0.9
    assert metrics["eval_loss"] < math.log(2) - 0.01
    assert metrics["eval_reward_margin_mean"] > 0
    assert (tmp_path / "dpo" / "model.safetensors").exists() and metrics["key_metric"] == "eval_reward_accuracy"


def test_pcrm_term_adds_minus_log_sigmoid_of_delta_star_minus_h(tiny_llama):
    tok = load_tokenizer(tiny_llama)
    policy = load_causal_lm(tiny_llama)
    ref = load_causal_lm(tiny_llama)
    torch.manual_seed(0)
    with torch.no_grad():  # move the policy away from the reference so h != 0
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    records = pairs(4)
    base = DPOConfig(model_name_or_path=tiny_llama, dataset="unused", output_dir="unused", template="plain", beta=0.5)
    rows, _ = encode_pairs(records, tok, base, ["delta_star"])
    batch = DPOCollator(tok.pad_token_id, ("delta_star",))(rows)
    with torch.no_grad():
        plain, _, _ = pair_losses(policy, ref, batch, base)
        base.pair_term = "upper_bound"
        pcrm, _, _ = pair_losses(policy, ref, batch, base)
    prompts = [r["prompt"] for r in records]
    h = (implicit_reward(policy, ref, tok, prompts, [r["chosen"] for r in records], "plain", beta=0.5)
         - implicit_reward(policy, ref, tok, prompts, [r["rejected"] for r in records], "plain", beta=0.5))
    assert h.abs().min() > 1e-3
    delta = torch.tensor([r["delta_star"] for r in records])
    assert torch.allclose(plain, -torch.nn.functional.logsigmoid(h), atol=1e-5)
    assert torch.allclose(pcrm - plain, -torch.nn.functional.logsigmoid(delta - h), atol=1e-5)


def test_implicit_reward_is_zero_for_a_fresh_lora_policy_against_its_disabled_adapter(tiny_llama):
    from peft import LoraConfig, get_peft_model

    tok = load_tokenizer(tiny_llama)
    policy = get_peft_model(load_causal_lm(tiny_llama), LoraConfig(task_type="CAUSAL_LM", r=4))
    r = implicit_reward(policy, None, tok, ["Hi", "Why?"], ["Hello there.", "Because."], "tokenizer", beta=0.1)
    assert r.shape == (2,) and torch.allclose(r, torch.zeros(2))
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.fill_(0.01)
    assert implicit_reward(policy, None, tok, ["Hi"], ["Hello there."], "tokenizer", beta=0.1).abs().item() > 0


def test_dpo_config_rejects_meaningless_loss_settings(tmp_path):
    with pytest.raises(ConfigError, match="conservative"):
        DPOConfig(model_name_or_path="m", dataset="d", output_dir=str(tmp_path), label_smoothing=0.1)
    with pytest.raises(ConfigError, match="dpo.loss_type"):
        DPOConfig(model_name_or_path="m", dataset="d", output_dir=str(tmp_path), loss_type="kto")
    DPOConfig(model_name_or_path="m", dataset="d", output_dir=str(tmp_path), loss_type="robust", label_smoothing=0.1)


def test_simpo_stage_loss_is_the_smoothed_formula_on_mean_logprobs_without_a_reference(tiny_llama):
    tok = load_tokenizer(tiny_llama)
    policy = load_causal_lm(tiny_llama)
    cfg = DPOConfig(model_name_or_path=tiny_llama, dataset="unused", output_dir="unused", template="plain",
                    loss_type="simpo", beta=2.0, simpo_gamma=0.5, label_smoothing=0.1)
    rows, _ = encode_pairs([{"prompt": "Item:", "chosen": "good and kind", "rejected": "bad"}] * 2, tok, cfg, [])
    batch = DPOCollator(tok.pad_token_id)(rows)
    with torch.no_grad():
        # ref=None with a plain (non-LoRA) policy: any reference call would raise
        per_pair, chosen_r, rejected_r = pair_losses(policy, None, batch, cfg)
        logps, n_tokens = sequence_logps(policy, batch["input_ids"], batch["attention_mask"], batch["labels"])
    mean_c, mean_r = (logps / n_tokens).chunk(2)
    assert n_tokens[0] != n_tokens[2]  # different lengths: the per-token mean matters
    z = 2.0 * (mean_c - mean_r) - 0.5
    expected = -0.9 * torch.nn.functional.logsigmoid(z) - 0.1 * torch.nn.functional.logsigmoid(-z)
    assert torch.allclose(per_pair, expected, atol=1e-5)
    assert torch.allclose(chosen_r, 2.0 * mean_c) and torch.allclose(rejected_r, 2.0 * mean_r)


def test_simpo_stage_trains_without_loading_a_reference(tiny_llama, tmp_path, monkeypatch):
    from common.train import dpo

    loaded = []
    monkeypatch.setattr(dpo, "load_causal_lm", lambda *a, **k: loaded.append(a[0]) or load_causal_lm(*a, **k))
    write_jsonl(tmp_path / "pairs.jsonl", pairs(40))
    cfg = DPOConfig(model_name_or_path=tiny_llama, dataset=str(tmp_path / "pairs.jsonl"),
                    output_dir=str(tmp_path / "simpo"), template="plain", learning_rate=1e-3, max_steps=6,
                    per_device_train_batch_size=4, eval_fraction=0.2, loss_type="simpo", beta=2.0, simpo_gamma=0.5,
                    label_smoothing=0.1, report_to="none", save_steps=1000)
    metrics = train_dpo(cfg)
    assert loaded == [tiny_llama]  # the policy only: no reference copy
    assert metrics["global_step"] == 6 and math.isfinite(metrics["train_loss"])
    # untrained (lr 1e-9) this split reads eval loss 0.88, margin 0.09, accuracy 0.75; six steps: 0.33, 2.5, 1.0
    assert metrics["eval_loss"] < 0.6 and metrics["eval_reward_margin_mean"] > 1.0
    assert metrics["eval_reward_accuracy"] > 0.9


def test_simpo_config_refuses_a_reference_and_bad_smoothing(tmp_path):
    base = {"model_name_or_path": "m", "dataset": "d", "output_dir": str(tmp_path), "loss_type": "simpo"}
    with pytest.raises(ConfigError, match="dpo.ref_model_name_or_path: loss_type simpo is reference-free"):
        DPOConfig(**base, ref_model_name_or_path="ref")
    with pytest.raises(ConfigError, match="dpo.precompute_ref_log_probs"):
        DPOConfig(**base, precompute_ref_log_probs=True)
    with pytest.raises(ConfigError, match="label_smoothing"):
        DPOConfig(**base, label_smoothing=0.5)
    with pytest.raises(ConfigError, match="dpo.simpo_gamma"):
        DPOConfig(**base, simpo_gamma=-1.0)
    assert DPOConfig(**base, label_smoothing=0.1).simpo_gamma == 0.5
