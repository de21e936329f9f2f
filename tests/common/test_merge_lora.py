"""merge_lora: the merged folder computes what base + adapter computes, for a causal LM and for a reward model whose
trained score head lives in the adapter (PEFT modules_to_save)."""

from __future__ import annotations

import json

import pytest
import torch

from common.merge_lora import main
from common.models import load_causal_lm, load_reward_model, load_tokenizer

IDS = torch.tensor([[1, 520, 9531, 198, 11527, 2, 198], [1, 4093, 198, 6004, 2, 2, 2]])
MASK = torch.tensor([[1] * 7, [1, 1, 1, 1, 1, 0, 0]])



def _randomise_trainables(model) -> None:
    """Stand-in for training: LoRA B starts at zero (a no-op adapter), so give every trainable tensor random values."""
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.requires_grad:
                p.copy_(torch.randn_like(p) * 0.05)


def test_causal_lm_merge_equals_adapter(tiny_llama, tmp_path):
    from peft import LoraConfig, get_peft_model

    peft_model = get_peft_model(load_causal_lm(tiny_llama), LoraConfig(
        task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    _randomise_trainables(peft_model)
    peft_model.save_pretrained(tmp_path / "adapter")
    with torch.no_grad():
        expected = peft_model(IDS, attention_mask=MASK).logits
        base = load_causal_lm(tiny_llama)(IDS, attention_mask=MASK).logits
    main(["--base", tiny_llama, "--adapter", str(tmp_path / "adapter"), "--out", str(tmp_path / "merged")])
    with torch.no_grad():
        merged = load_causal_lm(str(tmp_path / "merged"))(IDS, attention_mask=MASK).logits
    assert not torch.allclose(base, expected, atol=1e-3)
    torch.testing.assert_close(merged, expected, atol=1e-4, rtol=1e-4)
    assert json.loads((tmp_path / "merged" / "merge_info.json").read_text())["reward_model"] is False


def test_reward_model_merge_keeps_trained_score_head(tiny_llama, tmp_path):
    from peft import LoraConfig, get_peft_model

    tok = load_tokenizer(tiny_llama)
    rm = load_reward_model(tiny_llama, pad_token_id=tok.pad_token_id)
    peft_model = get_peft_model(rm, LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8,
                                               target_modules=["q_proj", "v_proj"]))
    assert any("score" in n for n, p in peft_model.named_parameters() if p.requires_grad)  # head is trained
    _randomise_trainables(peft_model)
    peft_model.save_pretrained(tmp_path / "rm_adapter")
    with torch.no_grad():
        expected = peft_model(IDS, attention_mask=MASK).logits
    # --base omitted: read from adapter_config.json; the SEQ_CLS task makes it a reward-model merge
    main(["--adapter", str(tmp_path / "rm_adapter"), "--out", str(tmp_path / "rm_merged"), "--reward-model"])
    merged_rm = load_reward_model(str(tmp_path / "rm_merged"))
    with torch.no_grad():
        merged = merged_rm(IDS, attention_mask=MASK).logits
    assert merged.shape == (2, 1)
    torch.testing.assert_close(merged, expected, atol=1e-4, rtol=1e-4)


def test_merge_refuses_to_clobber_and_wrong_kind(tiny_llama, tmp_path, capsys):
    from peft import LoraConfig, get_peft_model

    get_peft_model(load_causal_lm(tiny_llama), LoraConfig(task_type="CAUSAL_LM", r=2, target_modules=["q_proj"])
                   ).save_pretrained(tmp_path / "a")
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit) as exc:
        main(["--adapter", str(tmp_path / "a"), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2 and "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--adapter", str(tmp_path / "a"), "--out", str(tmp_path / "o2"), "--reward-model"])
    assert "task_type is 'CAUSAL_LM'" in capsys.readouterr().err
