"""Option log-likelihoods: batched, padded scoring equals one unpadded forward pass per option."""

import pytest
import torch

from common.eval.option_scoring import option_logprobs, pick_option
from common.models import load_causal_lm, load_tokenizer
from common.templates import encode_prompt_response


def test_batched_scores_equal_single_sequence_log_likelihood(tiny_llama):
    tok, model = load_tokenizer(tiny_llama), load_causal_lm(tiny_llama)
    prompts = ["Who was late?", "Pick one of the three answers please."]
    options = [["The grandfather", "Unknown", "The grandson who arrived"], ["A", "Cannot be determined", "B"]]
    scores = option_logprobs(model, tok, prompts, options, "qwen", batch_size=4, desc=None)
    enc = encode_prompt_response(tok, prompts[1], options[1][1], "qwen", 2048)
    ids = torch.tensor([enc["input_ids"]])
    with torch.no_grad():
        logps = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    n_prompt = enc["labels"].count(-100)
    expected = sum(logps[t - 1, enc["input_ids"][t]].item() for t in range(n_prompt, len(enc["input_ids"])))
    assert scores[1][1][0] == pytest.approx(expected, abs=1e-4)
    assert scores[1][1][1] == len(enc["input_ids"]) - n_prompt


def test_pick_option_sum_vs_length_normalised():
    scores = [(-6.0, 6), (-4.0, 2), (-9.0, 9)]
    assert pick_option(scores) == 1  # highest sum
    assert pick_option(scores, length_normalise=True) == 0  # -1.0 per token ties with option 2; first wins
