"""Reward-model stage on the embedded models: it learns a separable preference, carries per-pair columns to the loss,
and reads the score at the same token whatever the padding."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from common.artifacts import read_jsonl, write_jsonl
from common.config import ConfigError
from common.losses import PAIR_TERMS, register_pair_term
from common.models import load_reward_model, load_tokenizer
from common.train.rm import RMConfig, build_rm_trainer, format_rm_input, main, score_texts, train_rm

NOUNS = ["movie", "book", "song", "meal", "hotel", "phone", "game", "car", "show", "park"]


def separable_pairs(n: int, seed: int = 0) -> list[dict]:
    """Chosen says the thing is good, rejected that it is bad; δ* and an id travel with each pair."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        noun = rng.choice(NOUNS)
        rows.append({"prompt": f"What do you think of the {noun} #{i}?", "chosen": f"The {noun} is good.",
                     "rejected": f"The {noun} is bad.", "pair_id": i, "delta_star": float(i % 5)})
    return rows


def test_rm_learns_separable_pairs_drops_long_ones_and_writes_eval_scores(tiny_llama, tmp_path):
    rows = separable_pairs(100)
    rows += [{"prompt": "Tell me everything.", "chosen": "good " * 300, "rejected": "bad", "pair_id": 100 + k,
              "delta_star": 1.0} for k in range(2)]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    cfg = RMConfig(model_name_or_path=tiny_llama, dataset=str(tmp_path / "pairs.jsonl"),
                   output_dir=str(tmp_path / "rm"), template="tokenizer", system="", learning_rate=1e-3, max_steps=12,
                   per_device_train_batch_size=8, eval_fraction=0.2, max_length=128, report_to="none",
                   logging_steps=4, save_steps=1000, eval_each_epoch=True, pair_term="upper_bound")
    metrics = train_rm(cfg)
    assert metrics["eval_accuracy"] > 0.9
    assert metrics["train_dropped_too_long"] + metrics["eval_dropped_too_long"] == 2
    assert metrics["eval_pairs"] + metrics["eval_dropped_too_long"] == 20
    assert metrics["epochs"] and "eval_accuracy" in metrics["epochs"][0]
    assert metrics["eval_margin_max"] >= metrics["eval_margin_p95"] >= metrics["eval_margin_p50"]
    scores = read_jsonl(tmp_path / "rm" / "eval_scores.jsonl")
    assert len(scores) == metrics["eval_pairs"]
    assert {"chosen_score", "rejected_score", "pair_id", "delta_star"} <= set(scores[0])
    assert json.loads((tmp_path / "rm" / "metrics.json").read_text())["key_metric"] == "eval_accuracy"
    # the saved folder is a loadable RM that scores like the trained one
    tok = load_tokenizer(str(tmp_path / "rm"))
    reloaded = load_reward_model(str(tmp_path / "rm"), pad_token_id=tok.pad_token_id)
    first = next(r for r in rows if r["pair_id"] == scores[0]["pair_id"])
    text = format_rm_input(first["prompt"], first["chosen"], "tokenizer", tok, system="")
    assert math.isclose(float(score_texts(reloaded, tok, [text])[0]), scores[0]["chosen_score"], abs_tol=1e-4)


SEEN_EXTRAS: list[torch.Tensor] = []

if "test_record_extras" not in PAIR_TERMS:
    @register_pair_term("test_record_extras", columns=("pair_id",))
    def _record_extras(d, extras, label_smoothing=0.0):
        SEEN_EXTRAS.append(extras["pair_id"].detach().cpu())
        return torch.zeros_like(d)


def test_extra_column_reaches_the_loss_aligned_with_its_pair_after_shuffling(tiny_llama, tmp_path):
    rows = separable_pairs(24)
    cfg = RMConfig(model_name_or_path=tiny_llama, dataset="unused.jsonl", output_dir=str(tmp_path / "rm"),
                   template="plain", learning_rate=1e-5, max_steps=3, per_device_train_batch_size=4,
                   report_to="none", save_steps=1000, pair_term="test_record_extras")
    trainer, _ = build_rm_trainer(cfg, rows)
    batches: list[torch.Tensor] = []
    original = trainer.compute_loss

    def spy(model, inputs, *args, **kwargs):
        batches.append(inputs["input_ids"].detach().cpu())
        return original(model, inputs, *args, **kwargs)

    trainer.compute_loss = spy
    SEEN_EXTRAS.clear()
    trainer.train()
    tok = trainer.processing_class
    assert len(SEEN_EXTRAS) == len(batches) == 3
    order = torch.cat(SEEN_EXTRAS).long().tolist()
    assert order != sorted(order), "the sampler should have shuffled the pairs"
    for ids, pair_ids in zip(batches, SEEN_EXTRAS):
        for row, pid in zip(ids[: len(pair_ids)], pair_ids.long().tolist()):  # chosen rows come first
            assert f"#{pid}?" in tok.decode(row, skip_special_tokens=True)


def test_score_is_read_at_the_last_real_token_whatever_the_padding(tiny_llama):
    tok = load_tokenizer(tiny_llama)
    torch.manual_seed(0)
    model = load_reward_model(tiny_llama, pad_token_id=tok.pad_token_id)
    prompts = ["Hi", "Tell me a long story about a dragon and a castle", "Why?"]
    texts = [format_rm_input(p, "Sure, here it is.", "tokenizer", tok) for p in prompts]
    batched = score_texts(model, tok, texts, batch_size=3)
    alone = torch.cat([score_texts(model, tok, [t]) for t in texts])
    assert torch.allclose(batched, alone, atol=1e-5)
    assert len({round(float(s), 5) for s in alone}) == 3  # different texts, different scores
    # pad == eos here: a trailing EOS (template 'plain') is skipped, so the score sits on the last content token
    plain = format_rm_input("Hi", "Sure.", "plain", tok)
    assert plain.endswith(tok.eos_token)
    assert torch.allclose(score_texts(model, tok, [plain]), score_texts(model, tok, [plain[: -len(tok.eos_token)]]))


def test_minilm_rm_with_lora_trains_the_adapter_and_head(minilm, tmp_path):
    from safetensors.torch import load_file

    write_jsonl(tmp_path / "pairs.jsonl", separable_pairs(8))
    cfg = RMConfig(model_name_or_path=minilm, dataset=str(tmp_path / "pairs.jsonl"), output_dir=str(tmp_path / "rm"),
                   template="plain", use_lora=True, lora_target_modules=["query", "value"], learning_rate=1e-3,
                   max_steps=2, per_device_train_batch_size=2, eval_fraction=0.25, report_to="none", save_steps=1000)
    metrics = train_rm(cfg)
    assert metrics["eval_pairs"] == 2 and math.isfinite(metrics["train_loss"])
    adapter = load_file(tmp_path / "rm" / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # lora_B starts at zero: non-zero means trained
    assert any("classifier" in k for k in adapter)  # the score head is saved with the adapter


def test_rm_config_errors_name_the_key(tiny_llama, tmp_path):
    with pytest.raises(ConfigError, match="rm.pair_term"):
        RMConfig(model_name_or_path=tiny_llama, dataset="x.jsonl", output_dir=str(tmp_path), pair_term="nope")
    cfg = RMConfig(model_name_or_path=tiny_llama, dataset="pairs.jsonl", output_dir=str(tmp_path / "rm"),
                   pair_term="upper_bound", report_to="none")
    without_delta = [{k: v for k, v in r.items() if k != "delta_star"} for r in separable_pairs(4)]
    with pytest.raises(ConfigError, match="delta_star"):
        build_rm_trainer(cfg, without_delta)


def test_rm_cli_help_lists_the_settings(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "--pair_term" in capsys.readouterr().out
