"""rllr.greedy_reuse: a teacher-forced pass says exactly when greedy decoding would repeat a given answer."""

from __future__ import annotations

import torch

from common.generation.hf import stop_token_ids
from common.models import load_causal_lm, load_tokenizer
from rllr.greedy_reuse import greedy_repeats


def test_greedy_repeats_accepts_the_models_own_greedy_answer_and_nothing_else(tiny_llama):
    tok = load_tokenizer(tiny_llama)
    model = load_causal_lm(tiny_llama)
    prompts = [tok("Review: a charming film.", add_special_tokens=False)["input_ids"],
               tok("Premise and hypothesis", add_special_tokens=False)["input_ids"]]
    greedy = []
    for p in prompts:
        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor([p]), max_new_tokens=5, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        greedy.append(out[0, len(p):].tolist())  # (5,) tokens: the random model never stops, so the length does
    stops = set(stop_token_ids(tok))
    assert greedy_repeats(model, tok, prompts, greedy, stops, max_new_tokens=5, batch_size=2) == [True, True]
    # one token changed, or the answer cut short (greedy would go on, not stop): both must be generated
    changed = [greedy[0][:2] + [(greedy[0][2] + 1) % len(tok)] + greedy[0][3:], greedy[1][:3]]
    assert greedy_repeats(model, tok, prompts, changed, stops, max_new_tokens=5, batch_size=2) == [False, False]
    # the same answers are a full greedy answer only when max_new_tokens says they had to end there
    assert greedy_repeats(model, tok, prompts, [greedy[0][:3], greedy[1][:3]], stops, max_new_tokens=3,
                          batch_size=1) == [True, True]
