"""Every fast path in our stages gives the plain path's loss: padding-free SFT batches, response-only logits in DPO,
one forward for chosen + rejected in the RM, reference log-probs precomputed once."""

from __future__ import annotations

import pytest
import torch

from bench.shapes import PAD_ID, build_model, build_tokenizer
from bench.synthetic import LengthSpec, pair_rows, sft_rows

SPEC = LengthSpec(min_len=8, max_len=40, seed=3)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer("tiny")


def _sft_loss(padding_free: bool, tokenizer, rows, tmp_path) -> torch.Tensor:
    from common.train.sft import SFTConfig, build_sft_trainer

    cfg = SFTConfig(model_name_or_path="bench", dataset="bench", output_dir=str(tmp_path / str(padding_free)),
                    report_to="none", max_length=64, padding_free=padding_free)
    model = build_model("tiny", "causal", torch.float32, "cpu", seed=0).eval()
    trainer = build_sft_trainer(cfg, model, tokenizer, rows, [])
    batch = trainer.data_collator([dict(r) for r in rows])
    assert ("attention_mask" in batch) != padding_free, "padding-free batches carry position ids, no mask"
    with torch.no_grad():
        return trainer.compute_loss(model, batch)


def test_padding_free_sft_loss_equals_padded_loss(tokenizer, tmp_path):
    rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in sft_rows(3, "tiny", SPEC)]
    assert len({len(r["input_ids"]) for r in rows}) > 1, "rows of one length would not test padding"
    padded = _sft_loss(False, tokenizer, rows, tmp_path)
    flat = _sft_loss(True, tokenizer, rows, tmp_path)
    assert torch.isfinite(padded)
    torch.testing.assert_close(flat, padded, rtol=1e-5, atol=1e-5)


def _dpo_batch():
    from common.train.dpo import DPOCollator

    rows = []
    for r in pair_rows(3, "tiny", SPEC):
        masked = [-100] * len(r["prompt_ids"])
        rows.append({side: {"input_ids": r["prompt_ids"] + r[f"{side}_ids"], "labels": masked + r[f"{side}_ids"]}
                     for side in ("chosen", "rejected")})
    return DPOCollator(PAD_ID)(rows), rows


def test_dpo_response_only_logits_equal_full_logits():
    from common.train.dpo import sequence_logps

    batch, _ = _dpo_batch()
    model = build_model("tiny", "causal", torch.float32, "cpu", seed=0).eval()
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    with torch.no_grad():
        fast, n_fast = sequence_logps(model, ids, mask, labels)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()  # (N, T-1, V), every position
    targets = labels[:, 1:]
    token_logps = logits.log_softmax(-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    plain = (token_logps * (targets != -100)).sum(-1)
    assert labels[:, 0].eq(-100).all() and (labels != -100).sum() < labels.numel() // 1.2, "prompts are masked"
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-4)
    assert n_fast.tolist() == (targets != -100).sum(-1).tolist()


def test_dpo_packed_batch_gives_padded_batch_losses():
    from common.train.dpo import DPOCollator, DPOConfig, pair_losses

    padded, rows = _dpo_batch()
    packed = DPOCollator(PAD_ID, (), padding_free=True)(rows)
    assert packed["input_ids"].shape[0] == 1 and "attention_mask" not in packed
    assert packed["input_ids"].shape[1] == padded["attention_mask"].sum() < padded["input_ids"].numel(), "no pads"
    policy = build_model("tiny", "causal", torch.float32, "cpu", seed=0).eval()
    ref = build_model("tiny", "causal", torch.float32, "cpu", seed=1).eval()
    cfg = DPOConfig(model_name_or_path="bench", dataset="bench", output_dir="unused", report_to="none")
    with torch.no_grad():
        want, want_c, want_r = pair_losses(policy, ref, {**padded, "extras": {}}, cfg)
        got, got_c, got_r = pair_losses(policy, ref, {**packed, "extras": {}}, cfg)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.stack([got_c, got_r]), torch.stack([want_c, want_r]), rtol=1e-4, atol=1e-5)


def test_dpo_precomputed_reference_gives_live_reference_loss():
    from common.train.dpo import DPOCollator, DPOConfig, pair_losses, precompute_reference

    batch, rows = _dpo_batch()
    policy = build_model("tiny", "causal", torch.float32, "cpu", seed=0).eval()
    ref = build_model("tiny", "causal", torch.float32, "cpu", seed=1).eval()  # differs from the policy
    cfg = DPOConfig(model_name_or_path="bench", dataset="bench", output_dir="unused", report_to="none")
    batch["extras"] = {}
    with torch.no_grad():
        live, _, _ = pair_losses(policy, ref, batch, cfg)
        precompute_reference(ref, rows, DPOCollator(PAD_ID), batch_size=2)
        cached = DPOCollator(PAD_ID)(rows)
        stored, _, _ = pair_losses(policy, None, cached, cfg)
    assert not torch.allclose(live, torch.full_like(live, live[0])), "policy != ref gives pair-specific losses"
    torch.testing.assert_close(stored, live, rtol=1e-5, atol=1e-5)


def test_rm_one_forward_for_chosen_and_rejected_equals_separate_forwards():
    from common.train.rm import PairCollator

    rows = [{"chosen_ids": r["prompt_ids"] + r["chosen_ids"], "rejected_ids": r["prompt_ids"] + r["rejected_ids"]}
            for r in pair_rows(3, "tiny", SPEC)]
    model = build_model("tiny", "seq_cls", torch.float32, "cpu", seed=0).eval()
    batch = PairCollator(PAD_ID)(rows)
    with torch.no_grad():
        joint = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
        alone = torch.stack([model(input_ids=torch.tensor([r[k]])).logits[0, 0]
                             for k in ("chosen_ids", "rejected_ids") for r in rows])
    torch.testing.assert_close(joint, alone, rtol=1e-4, atol=1e-5)


def test_rm_packed_batch_gives_padded_batch_rewards_and_pad_eos_rule():
    from common.train.rm import PairCollator, packed_scores

    rows = [{"chosen_ids": r["prompt_ids"] + r["chosen_ids"], "rejected_ids": r["prompt_ids"] + r["rejected_ids"]}
            for r in pair_rows(3, "tiny", SPEC)]
    rows[0]["chosen_ids"] = rows[0]["chosen_ids"] + [PAD_ID]  # pad == eos models end on a pad-id token
    model = build_model("tiny", "seq_cls", torch.float32, "cpu", seed=0).eval()
    padded = PairCollator(PAD_ID)(rows)
    packed = PairCollator(PAD_ID, (), padding_free=True)(rows)
    with torch.no_grad():
        want = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits[:, 0]
        got = packed_scores(model, packed["input_ids"], packed["position_ids"], packed["score_index"])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
