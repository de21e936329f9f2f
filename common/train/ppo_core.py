"""The math of PPO and ReMax on plain tensors: KL penalty, GAE, clipped losses, KL controllers, reward statistics.

Shapes: B = sequences in a batch, T = response tokens (right-padded). Every per-token tensor comes with a
``mask`` (B, T) that is 1 on the response tokens up to and including the first end-of-sequence token and 0 after.
Nothing here touches a model, so each piece is tested against hand-computed values (tests/common/test_ppo.py).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_whiten(x: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """(x - mean) / std over the masked entries (unbiased variance); padding positions come back as 0."""
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    n = mask.sum()
    if n > 1:
        var = var * n / (n - 1)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask


def logprobs_from_logits(logits: Tensor, tokens: Tensor) -> Tensor:
    """log p(tokens) under softmax(logits). (B, T, V), (B, T) -> (B, T)."""
    return torch.gather(logits.log_softmax(-1), 2, tokens.unsqueeze(-1)).squeeze(-1)


def entropy_from_logits(logits: Tensor) -> Tensor:
    """H = logsumexp(z) - sum softmax(z) z, per token. (B, T, V) -> (B, T)."""
    probs = logits.softmax(-1)
    return torch.logsumexp(logits, -1) - (probs * logits).sum(-1)


def last_token_index(mask: Tensor) -> Tensor:
    """Index of the last 1 in each row of a prefix mask. (B, T) -> (B,); an empty row gives 0."""
    return (mask.sum(-1).long() - 1).clamp(min=0)


def kl_penalised_rewards(scores: Tensor, logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor,
                         kl_coef: float) -> tuple[Tensor, Tensor]:
    """Per-token rewards r_t = -β (log π(y_t) - log π_ref(y_t)), plus the sequence score at its last token.

    This is the KL-shaped reward of Ziegler et al. 2019 (eq. 2) and Ouyang et al. 2022 (eq. 2), with the k1
    estimator of the KL. scores (B,), logprobs/ref_logprobs/mask (B, T) -> rewards (B, T), kl (B, T).
    """
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    rows = torch.arange(scores.shape[0], device=scores.device)
    rewards[rows, last_token_index(mask)] += scores.to(rewards.dtype)
    return rewards * mask, kl


def gae_advantages(rewards: Tensor, values: Tensor, mask: Tensor, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016, eq. 16), right to left over the response:

        δ_t = r_t + γ V_{t+1} - V_t              (V after the last response token is 0)
        A_t = δ_t + γ λ A_{t+1}
        returns_t = A_t + V_t                    (the value targets)

    rewards, values, mask (B, T) -> advantages (B, T), returns (B, T); both 0 where mask is 0.
    """
    values = values * mask
    T = rewards.shape[1]
    advantages = torch.zeros_like(rewards)
    next_adv = torch.zeros_like(rewards[:, 0])
    next_value = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(T)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        next_adv = (delta + gamma * lam * next_adv) * mask[:, t]
        advantages[:, t] = next_adv
        next_value = values[:, t]
    return advantages, (advantages + values) * mask


def ppo_policy_loss(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor,
                    cliprange: float) -> tuple[Tensor, dict[str, float]]:
    """Clipped surrogate (Schulman et al. 2017, eq. 7), as a loss to minimise, averaged over response tokens:

        ρ_t = π(y_t) / π_old(y_t);   L = mean_t max(-A_t ρ_t, -A_t clip(ρ_t, 1-ε, 1+ε))

    (B, T) each -> (), plus the fraction of clipped tokens and the approximate KL(π_old || π).
    """
    log_ratio = (logprobs - old_logprobs) * mask
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    stats = {
        "clipfrac": masked_mean((clipped > unclipped).float(), mask).item(),
        "approx_kl": masked_mean(0.5 * log_ratio**2, mask).item(),
    }
    return loss, stats


def ppo_value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor,
                   cliprange_value: float) -> Tensor:
    """Clipped value loss: 0.5 · mean_t max((V_t - R_t)², (V_old,t + clip(V_t - V_old,t, ±ε_v) - R_t)²).

    (B, T) each -> (). Clipping the step of the value, as PPO2 / TRL do, keeps the critic close to its old self.
    """
    clipped_values = old_values + (values - old_values).clamp(-cliprange_value, cliprange_value)
    loss = torch.maximum((values - returns) ** 2, (clipped_values - returns) ** 2)
    return 0.5 * masked_mean(loss, mask)


def remax_returns(scores: Tensor, logprobs: Tensor, ref_logprobs: Tensor, mask: Tensor, kl_coef: float) -> Tensor:
    """Sequence return R(x, y) = score - β Σ_t (log π(y_t) - log π_ref(y_t)). (B,), (B, T) x3 -> (B,)."""
    return scores - kl_coef * ((logprobs - ref_logprobs) * mask).sum(-1)


def remax_loss(logprobs: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """ReMax (Li et al. 2023, Alg. 1): REINFORCE with the greedy response's return as baseline,

        A = R(x, y) - R(x, ŷ),   ŷ = greedy decode;   L = -mean_b A_b Σ_t log π(y_t | x, y_<t)

    logprobs, mask (B, T), advantages (B,) -> ().
    """
    return -(advantages * (logprobs * mask).sum(-1)).mean()


class AdaptiveKLController:
    """Ziegler et al. 2019, sec. 2.2: β ← β (1 + clip(KL/target - 1, -0.2, 0.2) · n / horizon).

    ``KL`` is the batch mean of the summed per-sequence KL; ``n`` the number of sequences since the last update.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: int):
        self.value = init_kl_coef
        self.target = target
        self.horizon = horizon

    def update(self, current_kl: float, n_steps: int) -> None:
        proportional_error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + proportional_error * n_steps / self.horizon

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])


class FixedKLController:
    """β stays at its initial value (RLDF's and PCRM's recipes)."""

    def __init__(self, kl_coef: float):
        self.value = kl_coef

    def update(self, current_kl: float, n_steps: int) -> None:
        pass

    def state_dict(self) -> dict:
        return {"value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.value = float(state["value"])


class RunningMoments:
    """Running mean and std of every score seen so far (Chan et al. parallel update), for reward normalisation."""

    def __init__(self):
        self.mean = 0.0
        self.var = 1.0
        self.count = 0

    def update(self, x: Tensor) -> None:
        x = x.detach().double().flatten()
        n = x.numel()
        if n == 0:
            return
        batch_mean = x.mean().item()
        batch_var = x.var(unbiased=False).item()
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.mean += delta * n / total
        self.var = m2 / total
        self.count = total

    @property
    def std(self) -> float:
        return math.sqrt(max(self.var, 0.0))

    def normalise(self, x: Tensor, eps: float = 1e-8) -> Tensor:
        return (x - self.mean) / (self.std + eps)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "var": self.var, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.var, self.count = float(state["mean"]), float(state["var"]), int(state["count"])
