import subprocess
import sys

import pytest
import torch

from common.config import UserError
from common.models import load_causal_lm, load_tokenizer, resolve_model


def test_unknown_embedded_name_is_a_clear_error():
    with pytest.raises(UserError, match="unknown embedded model"):
        resolve_model("embedded:gpt5")


def test_hub_ids_pass_through_unchanged():
    assert resolve_model("meta-llama/Llama-2-7b-chat-hf") == "meta-llama/Llama-2-7b-chat-hf"


def test_smollm2_answers_a_question_offline(smollm2):
    tok = load_tokenizer(smollm2, padding_side="left")
    model = load_causal_lm(smollm2)
    enc = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer


def test_tiny_llama_is_small_and_shares_the_chat_template(tiny_llama):
    model = load_causal_lm(tiny_llama)
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    assert "<|im_start|>" in load_tokenizer(tiny_llama).chat_template


def test_minilm_encodes_offline(minilm):
    from sentence_transformers import SentenceTransformer

    enc = SentenceTransformer(resolve_model(minilm), device="cpu")
    a, b, c = enc.encode(["a happy dog", "a joyful puppy", "quarterly tax filing"], normalize_embeddings=True)
    assert float(a @ b) > float(a @ c)


def test_models_cli_prints_paths(embedded_models):
    out = subprocess.run([sys.executable, "-m", "common.models", "path", "embedded:tiny-llama"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("tiny-llama")
