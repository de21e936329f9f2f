"""PCRM objectives against hand-computed values: the sequence-level RM loss, the token-level (divergent span)
variant, PCRM-DPO, and no gradient reaching δ*."""

from __future__ import annotations

import math

import pytest
import torch

from common.losses import bt_loss, get_pair_term
from common.train.token_rm import divergent_span, divergent_span_loss


def _nls(x: float) -> float:  # −log σ(x)
    return math.log1p(math.exp(-x))


def test_pcrm_rm_loss_is_bt_plus_the_upper_bound():
    chosen, rejected = torch.tensor([2.0, 0.5, 7.0]), torch.tensor([0.0, 1.0, 1.0])
    delta = torch.tensor([1.0, 4.5, 4.5])
    d = chosen - rejected  # [2, −0.5, 6]
    per_pair = bt_loss(chosen, rejected, reduction="none") + get_pair_term("upper_bound")(d, {"delta_star": delta})
    want = [_nls(2) + _nls(-1), _nls(-0.5) + _nls(5.0), _nls(6) + _nls(-1.5)]
    assert torch.allclose(per_pair, torch.tensor(want), atol=1e-6)
    # the term pulls margins above δ* back down: the third pair's loss exceeds plain BT's by −log σ(−1.5) ≈ 1.70
    assert per_pair[2] - bt_loss(chosen[2:], rejected[2:]) == pytest.approx(_nls(-1.5), abs=1e-6)


def test_no_gradient_flows_into_delta_star_and_d_gets_the_hand_gradient():
    d = torch.tensor([2.0, -1.0], requires_grad=True)
    delta = torch.tensor([1.0, 3.0], requires_grad=True)
    loss = (-torch.nn.functional.logsigmoid(d) + get_pair_term("upper_bound")(d, {"delta_star": delta})).sum()
    loss.backward()
    assert delta.grad is None
    sig = torch.sigmoid
    # ∂/∂d [−log σ(d) − log σ(δ* − d)] = −σ(−d) + σ(d − δ*)
    assert torch.allclose(d.grad, -sig(-d.detach()) + sig(d.detach() - delta.detach()))


def test_divergent_span_starts_at_the_first_differing_token_and_ends_at_the_longer_side():
    c = torch.tensor([5, 6, 7, 8, 0, 0])
    r = torch.tensor([5, 6, 9, 0, 0, 0])
    assert divergent_span(c, r, 4, 3) == (2, 4)
    assert divergent_span(c, c.clone(), 4, 4) == (3, 4)  # identical: the last position alone


def test_divergent_span_loss_averages_both_terms_over_the_span():
    ids_c = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 0]])
    ids_r = torch.tensor([[1, 2, 9, 0], [7, 2, 3, 0]])
    mask_c = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    mask_r = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0]])
    v_c = torch.tensor([[0.0, 0.0, 2.0, 1.0], [1.0, 1.0, 3.0, 9.0]])
    v_r = torch.tensor([[0.0, 0.0, 1.0, 4.0], [0.0, 2.0, 0.0, 9.0]])
    delta = torch.tensor([2.0, 1.0])
    got = divergent_span_loss(v_c, v_r, ids_c, ids_r, mask_c, mask_r, get_pair_term("upper_bound"),
                              {"delta_star": delta})
    # pair 0: span [2, 4), Δ = [1, −3], δ* 2;  pair 1: span [0, 3), Δ = [1, −1, 3], δ* 1
    want0 = ((_nls(1) + _nls(1)) + (_nls(-3) + _nls(5))) / 2
    want1 = ((_nls(1) + _nls(0)) + (_nls(-1) + _nls(2)) + (_nls(3) + _nls(-2))) / 3
    assert torch.allclose(got, torch.tensor([want0, want1]), atol=1e-6)
    plain = divergent_span_loss(v_c, v_r, ids_c, ids_r, mask_c, mask_r, get_pair_term("none"), {})
    assert plain[0].item() == pytest.approx((_nls(1) + _nls(-3)) / 2, abs=1e-6)


def test_token_values_read_the_sequence_score_at_the_last_real_token(tiny_llama):
    from common.models import load_reward_model, load_tokenizer
    from common.train.rm import pad_right
    from common.train.token_rm import token_values

    tok = load_tokenizer(tiny_llama)
    model = load_reward_model(tiny_llama, pad_token_id=tok.pad_token_id)
    seqs = [tok("a short one", add_special_tokens=False)["input_ids"],
            tok("a somewhat longer sentence here", add_special_tokens=False)["input_ids"]]
    ids, mask = pad_right(seqs, tok.pad_token_id)
    scores, values = token_values(model, ids, mask)
    assert values.shape == ids.shape
    last = mask.sum(1) - 1
    assert torch.allclose(scores, values[torch.arange(2), last], atol=1e-5)
