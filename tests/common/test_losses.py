"""Every loss against numbers computed by hand (σ(x) = 1 / (1 + e^-x))."""

from __future__ import annotations

import math

import pytest
import torch

from common.losses import (
    PAIR_TERMS,
    bt_loss,
    dpo_loss,
    get_pair_term,
    register_pair_term,
    reward_centering_term,
    simpo_loss,
    upper_bound_term,
)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def close(a: torch.Tensor, b: float, tol: float = 1e-6) -> bool:
    return abs(float(a) - b) < tol


def test_bt_loss_is_log2_when_rewards_tie():
    r = torch.zeros(4)
    assert torch.isclose(bt_loss(r, r), torch.tensor(math.log(2.0)))


def test_bt_loss_matches_hand_values_and_margin_shifts_the_difference():
    chosen, rejected = torch.tensor([2.0, 0.5]), torch.tensor([1.0, 1.5])
    expected = (-math.log(sig(1.0)) - math.log(sig(-1.0))) / 2
    assert close(bt_loss(chosen, rejected), expected)
    # margin 1 on the first pair makes its difference 0 -> log 2
    got = bt_loss(chosen, rejected, margin=torch.tensor([1.0, 0.0]), reduction="none")
    assert close(got[0], math.log(2.0)) and close(got[1], -math.log(sig(-1.0)))


def test_reward_centering_term_is_mean_squared_sum():
    assert close(reward_centering_term(torch.tensor([1.0, -1.0]), torch.tensor([2.0, 0.0])), (9 + 1) / 2)


# Two pairs with h = (logratio_c - logratio_r): pair 0 h = (-1 - -2) - (-3 - -2) = 1 - (-1) = 2; pair 1 h = 0.
PC, PR = torch.tensor([-1.0, -5.0]), torch.tensor([-3.0, -4.0])
RC, RR = torch.tensor([-2.0, -5.0]), torch.tensor([-2.0, -4.0])
BETA = 0.5  # βh = 1.0 and 0.0


def test_dpo_sigmoid_matches_hand_value_and_returns_implicit_rewards():
    loss, chosen_r, rejected_r = dpo_loss(PC, PR, RC, RR, beta=BETA)
    assert close(loss, (-math.log(sig(1.0)) + math.log(2.0)) / 2)
    assert torch.allclose(chosen_r, torch.tensor([0.5, 0.0])) and torch.allclose(rejected_r, torch.tensor([-0.5, 0.0]))


def test_dpo_ipo_is_squared_distance_to_half_inverse_beta():
    loss, _, _ = dpo_loss(PC, PR, RC, RR, beta=BETA, loss_type="ipo")
    assert close(loss, ((2 - 1) ** 2 + (0 - 1) ** 2) / 2)  # 1/(2β) = 1


def test_dpo_hinge_is_relu_of_one_minus_beta_h():
    loss, _, _ = dpo_loss(PC, PR, RC, RR, beta=BETA, loss_type="hinge")
    assert close(loss, (0.0 + 1.0) / 2)
    loss_big_beta, _, _ = dpo_loss(PC, PR, RC, RR, beta=2.0, loss_type="hinge")  # βh = 4 and 0
    assert close(loss_big_beta, 0.5)


def test_conservative_dpo_mixes_flipped_label_with_weight_eps():
    eps = 0.1
    loss, _, _ = dpo_loss(PC, PR, RC, RR, beta=BETA, loss_type="conservative", label_smoothing=eps)
    pair0 = -(1 - eps) * math.log(sig(1.0)) - eps * math.log(sig(-1.0))
    assert close(loss, (pair0 + math.log(2.0)) / 2)


def test_robust_dpo_is_debiased_and_reduces_to_dpo_at_eps_zero():
    eps = 0.2
    loss, _, _ = dpo_loss(PC, PR, RC, RR, beta=BETA, loss_type="robust", label_smoothing=eps)
    pair0 = (-(1 - eps) * math.log(sig(1.0)) + eps * math.log(sig(-1.0))) / (1 - 2 * eps)
    pair1 = (-(1 - eps) * math.log(0.5) + eps * math.log(0.5)) / (1 - 2 * eps)  # = log 2 at a tie
    assert close(loss, (pair0 + pair1) / 2)
    plain, _, _ = dpo_loss(PC, PR, RC, RR, beta=BETA)
    robust0, _, _ = dpo_loss(PC, PR, RC, RR, beta=BETA, loss_type="robust")
    assert torch.isclose(plain, robust0)


def test_dpo_rejects_meaningless_settings():
    with pytest.raises(ValueError, match="loss_type"):
        dpo_loss(PC, PR, RC, RR, beta=BETA, loss_type="kto")
    with pytest.raises(ValueError, match="conservative"):
        dpo_loss(PC, PR, RC, RR, beta=BETA, loss_type="sigmoid", label_smoothing=0.1)
    with pytest.raises(ValueError, match="label_smoothing"):
        dpo_loss(PC, PR, RC, RR, beta=BETA, loss_type="robust", label_smoothing=0.5)


def test_simpo_subtracts_gamma_from_scaled_average_difference():
    loss = simpo_loss(torch.tensor([-1.0]), torch.tensor([-2.0]), beta=2.0, gamma=0.5)  # 2*1 - 0.5 = 1.5
    assert close(loss, -math.log(sig(1.5)))


def test_simpo_label_smoothing_mixes_in_the_flipped_preference():
    """TRL CPOTrainer (loss_type="simpo"): -(1-ε) log σ(βΔ - γ) - ε log σ(-(βΔ - γ)). Pair 0: Δ = 1, z = 2·1 - 0.5
    = 1.5; pair 1: Δ = -0.5, z = -1 - 0.5 = -1.5; ε = 0.1."""
    chosen, rejected = torch.tensor([-1.0, -3.0]), torch.tensor([-2.0, -2.5])
    per_pair = simpo_loss(chosen, rejected, beta=2.0, gamma=0.5, label_smoothing=0.1, reduction="none")
    pair0 = -0.9 * math.log(sig(1.5)) - 0.1 * math.log(sig(-1.5))  # 0.9 · 0.20141 + 0.1 · 1.70141 = 0.35141
    pair1 = -0.9 * math.log(sig(-1.5)) - 0.1 * math.log(sig(1.5))
    assert close(per_pair[0], pair0) and close(per_pair[1], pair1)
    assert close(per_pair[0], 0.351413, tol=1e-5)
    assert close(simpo_loss(chosen, rejected, beta=2.0, gamma=0.5, label_smoothing=0.1), (pair0 + pair1) / 2)
    unsmoothed = simpo_loss(chosen, rejected, beta=2.0, gamma=0.5, reduction="none")
    assert per_pair[0] > unsmoothed[0] and per_pair[1] < unsmoothed[1]  # smoothing pulls both towards log 2
    with pytest.raises(ValueError, match="label_smoothing"):
        simpo_loss(chosen, rejected, beta=2.0, gamma=0.5, label_smoothing=0.5)


def test_upper_bound_term_hand_values_and_label_smoothing():
    d, delta = torch.tensor([1.0, 5.0]), torch.tensor([3.0, 5.0])
    assert torch.allclose(upper_bound_term(d, delta), torch.tensor([-math.log(sig(2.0)), math.log(2.0)]))
    smoothed = upper_bound_term(d, delta, label_smoothing=0.25)
    assert close(smoothed[0], -0.75 * math.log(sig(2.0)) - 0.25 * math.log(sig(-2.0)))


def test_upper_bound_term_sends_no_gradient_to_delta_star_and_pushes_d_down():
    d = torch.tensor([4.0], requires_grad=True)
    delta = torch.tensor([3.0], requires_grad=True)
    upper_bound_term(d, delta).sum().backward()
    assert delta.grad is None
    assert close(d.grad[0], sig(1.0))  # d/dd of -log σ(δ* - d) = σ(d - δ*)


def test_pair_term_registry_none_upper_bound_and_errors():
    d, extras = torch.tensor([1.0, 2.0]), {"delta_star": torch.tensor([1.0, 0.0])}
    assert torch.equal(get_pair_term("none")(d, extras), torch.zeros(2))
    assert torch.allclose(get_pair_term("upper_bound")(d, extras), torch.tensor([math.log(2.0), -math.log(sig(-2.0))]))
    with pytest.raises(KeyError, match="delta_star"):
        get_pair_term("upper_bound")(d, {})
    with pytest.raises(KeyError, match="not registered"):
        get_pair_term("nope")
    with pytest.raises(KeyError, match="already registered"):
        register_pair_term("none")(lambda d, e, ls=0.0: d)
    assert {"none", "upper_bound"} <= set(PAIR_TERMS)
