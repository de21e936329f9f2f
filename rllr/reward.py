"""The PPO reward of each RLLR mode, one function with explicit modes [CODE, minus upstream's quirks].

    rlhf:        r = RM_rat(x, y)                          (RM on rationale-sensitive pairs: the RLHF baseline)
    rllr:        r = RM_label(x, y)                        (RM on label-sensitive pairs)
    rllr_mixed:  r = min(RM_label(x, y), τ) + RM_rat(x, y)

In the mixed reward the label reward is capped at τ: once a response is confidently on the right label, only the
rationale RM separates responses. Upstream returns from the mixed branch only (its other branches leave the return
variable undefined) and keeps a commented-out 0.5·RM_label + 0.5·RM_rat; neither is reproduced. Scores are the RMs'
raw outputs; common.train.ppo then applies running normalisation and the KL penalty.

Registered in ``common.rewards.REWARD_COMBINERS`` as ``rllr`` (config: ``reward_combine: rllr.reward:combine_rllr``,
``reward_combine_kwargs: {mode: ..., tau: ...}``); the sources must be named ``label`` and ``rat``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.config import ConfigError
from common.rewards import REWARD_COMBINERS, register_reward_combiner

MODES = ("rlhf", "rllr", "rllr_mixed")
SOURCES_BY_MODE = {"rlhf": ("rat",), "rllr": ("label",), "rllr_mixed": ("label", "rat")}

# τ of the mixed reward per model, from the upstream run scripts [CODE]. A new model: `python -m rllr.tau`.
TAU_BY_MODEL = {
    "meta-llama/Llama-2-7b-chat-hf": 3.9,
    "meta-llama/Llama-2-13b-chat-hf": 6.2,
    "mistralai/Mistral-7B-Instruct-v0.2": 4.4,
    "baichuan-inc/Baichuan2-7B-Chat": 3.1,
    "THUDM/chatglm3-6b": 3.7,
    "bigscience/bloom-7b1": 4.4,
    "bigscience/bloom-3b": 1.0,
}


def rllr_reward(mode: str, label: Tensor | None, rat: Tensor | None, tau: float | None = None) -> Tensor:
    """The reward of ``mode`` from the label-RM and rationale-RM scores, (B,), (B,) -> (B,) (formulas above)."""
    if mode == "rlhf":
        return rat
    if mode == "rllr":
        return label
    if mode == "rllr_mixed":
        if tau is None:
            raise ConfigError("rllr_mixed needs tau (the cap on the label reward); set it or run python -m rllr.tau")
        return torch.clamp(label, max=float(tau)) + rat
    raise ConfigError(f"RLLR mode {mode!r} is not one of {list(MODES)}")


def check_sources(mode: str, names: list[str]) -> None:
    """The sources a mode reads must be there, and no other: an extra RM would be scored for nothing."""
    if mode not in MODES:
        raise ConfigError(f"rl.mode: {mode!r} is not one of {list(MODES)}")
    want = sorted(SOURCES_BY_MODE[mode])
    if sorted(names) != want:
        raise ConfigError(f"RLLR mode {mode!r} reads reward sources {want}, got {sorted(names)}")


def combine_rllr(scores: dict[str, Tensor], mode: str, tau: float | None = None) -> Tensor:
    """``common.rewards`` combiner: {"label": (B,), "rat": (B,)} (those the mode reads) -> (B,)."""
    check_sources(mode, list(scores))
    return rllr_reward(mode, scores.get("label"), scores.get("rat"), tau)


if "rllr" not in REWARD_COMBINERS:
    register_reward_combiner("rllr")(combine_rllr)
