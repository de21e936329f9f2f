"""SER's PPO reward: the RM's pointwise probability minus a baseline, optionally stretched to [−1, 1] [CODE].

    r = σ(RM(q, y)) − b                      (upstream default b = 0)
    r = 2 (σ(RM(q, y)) − b) / (1 − b) − 1    (normalise: true)

Registered as the reward combiner ``ser_sigmoid`` of ``common.rewards``; a PPO recipe names it as
``reward_combine: ser.ppo_reward:ser_sigmoid`` (importing this module registers it) with
``reward_combine_kwargs: {baseline: 0.0, normalise: false}``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.config import ConfigError
from common.rewards import register_reward_combiner


@register_reward_combiner("ser_sigmoid")
def ser_sigmoid(scores: dict[str, Tensor], baseline: float = 0.0, normalise: bool = False) -> Tensor:
    """{name: (B,) raw RM scores} with exactly one RM -> (B,) σ(r) − b, or 2(σ(r) − b)/(1 − b) − 1."""
    if len(scores) != 1:
        raise ConfigError(f"reward_combine ser_sigmoid takes one reward model; got sources {sorted(scores)}")
    if not 0.0 <= baseline < 1.0:
        raise ConfigError(f"reward_combine_kwargs.baseline: {baseline} must lie in [0, 1)")
    p = torch.sigmoid(next(iter(scores.values())).float())
    return 2.0 * (p - baseline) / (1.0 - baseline) - 1.0 if normalise else p - baseline
