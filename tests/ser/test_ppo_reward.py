import math

import pytest
import torch

from common.config import ConfigError
from common.rewards import get_reward_combiner


def test_ser_sigmoid_is_probability_minus_baseline_and_maps_to_unit_interval():
    fn = get_reward_combiner("ser.ppo_reward:ser_sigmoid")
    r = torch.tensor([0.0, math.log(3.0)])  # σ = 0.5, 0.75
    assert torch.allclose(fn({"rm": r}), torch.tensor([0.5, 0.75]))
    assert torch.allclose(fn({"rm": r}, baseline=0.5), torch.tensor([0.0, 0.25]))
    # 2(p − b)/(1 − b) − 1 with b = 0.5: p = 0.5 -> −1, p = 0.75 -> 0
    assert torch.allclose(fn({"rm": r}, baseline=0.5, normalise=True), torch.tensor([-1.0, 0.0]), atol=1e-6)
    assert get_reward_combiner("ser_sigmoid") is fn


def test_ser_sigmoid_refuses_two_sources():
    fn = get_reward_combiner("ser.ppo_reward:ser_sigmoid")
    with pytest.raises(ConfigError, match="one reward model"):
        fn({"a": torch.zeros(1), "b": torch.zeros(1)})
