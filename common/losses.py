"""Every training loss of the shared core, as pure functions on tensors.

Shapes: ``B`` pairs per batch. Rewards and log-probs are per sequence, ``(B,)``. Summed log-probs are named
``*_logps``; length-averaged ones ``*_logps_avg``. Each function returns the batch mean unless ``reduction="none"``.

Extra per-pair terms (PCRM's prior upper bound, and whatever a paper registers later) live in ``PAIR_TERMS``: a term
maps the pair's score difference ``d`` (B,) and the pair's extra data columns to a per-pair loss (B,), which the RM and
DPO stages add to their base loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

DPO_LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust", "conservative")


def _reduce(per_pair: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_pair.mean()
    if reduction == "none":
        return per_pair
    raise ValueError(f"reduction {reduction!r} is not one of ['mean', 'none']")


def bt_loss(chosen_rewards: Tensor, rejected_rewards: Tensor, margin: Tensor | float | None = None,
            reduction: str = "mean") -> Tensor:
    """Bradley-Terry pairwise reward-model loss, optionally with a margin.

    L = -log σ(r_c - r_r - m);   (B,), (B,), m: (B,) or scalar or None -> () (or (B,) with reduction="none").
    Source: Bradley & Terry 1952; as an RM loss Ouyang et al. 2022 (InstructGPT) eq. 1; the margin m is
    Touvron et al. 2023 (Llama 2) eq. 2.
    """
    diff = chosen_rewards - rejected_rewards
    if margin is not None:
        diff = diff - margin
    return _reduce(-F.logsigmoid(diff), reduction)


def reward_centering_term(chosen_rewards: Tensor, rejected_rewards: Tensor) -> Tensor:
    """Auxiliary penalty that pulls rewards towards zero mean.

    mean((r_c + r_r)^2);   (B,), (B,) -> ().  Source: Eisenstein et al. 2023, "Helping or Herding?", §3
    (TRL's ``center_rewards_coefficient`` multiplies this term).
    """
    return ((chosen_rewards + rejected_rewards) ** 2).mean()


def dpo_loss(policy_chosen_logps: Tensor, policy_rejected_logps: Tensor, ref_chosen_logps: Tensor,
             ref_rejected_logps: Tensor, beta: float, loss_type: str = "sigmoid", label_smoothing: float = 0.0,
             reduction: str = "mean") -> tuple[Tensor, Tensor, Tensor]:
    """The DPO family on sequence log-probs. Inputs (B,) -> (loss (), chosen_rewards (B,), rejected_rewards (B,)).

    With h = (log π(y_c) - log π_ref(y_c)) - (log π(y_r) - log π_ref(y_r)) and ε = label_smoothing:

    - sigmoid       -log σ(βh)                                   Rafailov et al. 2023, eq. 7
    - conservative  -(1-ε) log σ(βh) - ε log σ(-βh)              cDPO, Mitchell 2023 ("A note on DPO with noisy
                    preferences"): the label is flipped with probability ε; needs 0 < ε < 0.5
    - robust        [-(1-ε) log σ(βh) + ε log σ(-βh)] / (1-2ε)   rDPO, Chowdhury et al. 2024: an unbiased
                    estimate of the clean loss under flip rate ε; 0 <= ε < 0.5
    - ipo           (h - 1/(2β))^2                               Azar et al. 2023 (IPO), eq. 17, τ = β. Pass
                    length-averaged log-probs to get TRL's normalised form (what the IPO authors ran)
    - hinge         max(0, 1 - βh)                               SLiC-HF, Zhao et al. 2023 (calibration loss, δ = 1/β)

    Implicit rewards β(log π - log π_ref) of each side are returned detached, for metrics.
    """
    if loss_type not in DPO_LOSS_TYPES:
        raise ValueError(f"loss_type {loss_type!r} is not one of {list(DPO_LOSS_TYPES)}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    if label_smoothing > 0 and loss_type in ("sigmoid", "ipo", "hinge"):
        raise ValueError(f"label_smoothing={label_smoothing} has no meaning for loss_type {loss_type!r}; "
                         "use loss_type 'conservative' (cDPO) or 'robust' (rDPO)")
    if loss_type == "conservative" and label_smoothing == 0.0:
        raise ValueError("loss_type 'conservative' needs label_smoothing > 0 (with 0 it is plain 'sigmoid')")
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    h = chosen_logratios - rejected_logratios
    eps = label_smoothing
    if loss_type == "sigmoid":
        per_pair = -F.logsigmoid(beta * h)
    elif loss_type == "conservative":
        per_pair = -(1 - eps) * F.logsigmoid(beta * h) - eps * F.logsigmoid(-beta * h)
    elif loss_type == "robust":
        per_pair = (-(1 - eps) * F.logsigmoid(beta * h) + eps * F.logsigmoid(-beta * h)) / (1 - 2 * eps)
    elif loss_type == "ipo":
        per_pair = (h - 1 / (2 * beta)) ** 2
    else:  # hinge
        per_pair = torch.relu(1 - beta * h)
    return _reduce(per_pair, reduction), beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def simpo_loss(chosen_logps_avg: Tensor, rejected_logps_avg: Tensor, beta: float, gamma: float,
               label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """SimPO: reference-free, length-normalised preference loss, with optional label smoothing ε.

    With Δ = avg log π(y_c) - avg log π(y_r) (per-token means over each response) and z = β·Δ - γ:
    L = -(1-ε) log σ(z) - ε log σ(-z);   (B,), (B,) -> ().  γ is the absolute target margin.
    Source: Meng et al. 2024 (SimPO, arXiv 2405.14734), eq. 6 (ε = 0); the smoothing is TRL's: CPOTrainer.cpo_loss
    with loss_type="simpo" (trl/experimental/cpo/cpo_trainer.py, TRL 1.16) computes logits = Δ - simpo_gamma/β and
    -logσ(β·logits)(1-ε) - logσ(-β·logits)ε, i.e. the same z. (TRL's CPO also adds an NLL term, cpo_alpha; SimPO
    proper, and this function, have none.) 0 <= ε < 0.5: ε flips the preference with that probability.
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    z = beta * (chosen_logps_avg - rejected_logps_avg) - gamma
    if label_smoothing == 0.0:
        return _reduce(-F.logsigmoid(z), reduction)
    return _reduce(-(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z), reduction)


def upper_bound_term(d: Tensor, delta_star: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """PCRM's soft upper bound on a pair's score difference (prior constraint), per pair.

    -log σ(δ* - d);   d (B,), δ* (B,) -> (B,).  δ* is a constant per pair: it is detached, no gradient reaches it.
    With label smoothing ε (PCRM-DPO applies it to both terms): -(1-ε) log σ(δ* - d) - ε log σ(d - δ*).
    Source: Zhou et al. 2024 (PCRM, arXiv 2404.00978); [CODE] wangclnlp/DeepSpeed-Chat-Extension, branch PCRM.
    """
    gap = delta_star.detach().to(d.dtype) - d
    if label_smoothing == 0.0:
        return -F.logsigmoid(gap)
    return -(1 - label_smoothing) * F.logsigmoid(gap) - label_smoothing * F.logsigmoid(-gap)


# ---------------------------------------------------------------------------------------------------------------
# Per-pair extra terms: f(d, extras, label_smoothing) -> (B,), added to the base loss of the RM and DPO stages.


@dataclass(frozen=True)
class PairTerm:
    """A registered per-pair term and the data columns (per-pair numbers) it reads from ``extras``."""

    name: str
    fn: Callable[..., Tensor]
    columns: tuple[str, ...] = ()

    def __call__(self, d: Tensor, extras: dict[str, Tensor], label_smoothing: float = 0.0) -> Tensor:
        missing = [c for c in self.columns if c not in extras]
        if missing:
            raise KeyError(f"pair term {self.name!r} needs per-pair column(s) {missing} in the batch; "
                           f"got {sorted(extras)}. Add them to the preference data.")
        out = self.fn(d, extras, label_smoothing)
        assert out.shape == d.shape, f"pair term {self.name!r} returned {tuple(out.shape)}, expected {tuple(d.shape)}"
        return out


PAIR_TERMS: dict[str, PairTerm] = {}


def register_pair_term(name: str, columns: tuple[str, ...] = ()) -> Callable:
    """Decorator: register ``fn(d, extras, label_smoothing) -> (B,)`` under ``name``; duplicates are refused."""

    def wrap(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
        if name in PAIR_TERMS:
            raise KeyError(f"pair term {name!r} is already registered")
        PAIR_TERMS[name] = PairTerm(name, fn, tuple(columns))
        return fn

    return wrap


def get_pair_term(name: str) -> PairTerm:
    if name not in PAIR_TERMS:
        raise KeyError(f"pair term {name!r} is not registered; known: {sorted(PAIR_TERMS)}. "
                       "Register it with common.losses.register_pair_term.")
    return PAIR_TERMS[name]


@register_pair_term("none")
def _no_term(d: Tensor, extras: dict[str, Tensor], label_smoothing: float = 0.0) -> Tensor:
    return torch.zeros_like(d)


@register_pair_term("upper_bound", columns=("delta_star",))
def _upper_bound(d: Tensor, extras: dict[str, Tensor], label_smoothing: float = 0.0) -> Tensor:
    return upper_bound_term(d, extras["delta_star"], label_smoothing)
