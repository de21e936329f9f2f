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


def test_prompts_opening_alike_reuse_the_shared_opening_and_score_the_same(tiny_llama):
    """RLDF's referee: one question per debater after the same transcript. The second and third prompts read only
    their own ending (fewer tokens through the model), and every option scores as in the one-pass-per-option path."""
    from common.eval import option_scoring

    tok, model = load_tokenizer(tiny_llama), load_causal_lm(tiny_llama)
    transcript = " ".join(f"argument {i} says age does not decide skill." for i in range(12))
    convs = [[{"role": "user", "content": f"{transcript}\nScore the {who}'s argument, 0 to 10."}]
             for who in ("60-year-old", "40-year-old", "20-year-old")]
    convs.append([{"role": "user", "content": "An unrelated short question?"}])
    options = [[str(k) for k in range(11)]] * len(convs)
    read = []
    forward = model.forward

    def counting_forward(*args, **kwargs):
        if kwargs.get("logits_to_keep") == 1:  # a prompt pass (option passes keep every logit)
            read.append(kwargs["input_ids"].shape[1])
        return forward(*args, **kwargs)

    model.forward = counting_forward
    shared = option_logprobs(model, tok, convs, options, "tokenizer", batch_size=11, desc=None, share_prompt=True)
    model.forward = forward
    plain = option_logprobs(model, tok, convs, options, "tokenizer", batch_size=11, desc=None)
    heads = [encode_prompt_response(tok, c, "0", "tokenizer", 2048)["labels"].count(-100) for c in convs]
    assert read[0] == heads[0] and all(r < heads[0] - option_scoring.MIN_SHARED_PREFIX for r in read[1:3])
    assert read[3] == heads[3]  # nothing in common with the transcript: read whole
    for got, want in zip(shared, plain):
        assert [n for _, n in got] == [n for _, n in want]
        assert [s for s, _ in got] == pytest.approx([s for s, _ in want], abs=1e-3)
