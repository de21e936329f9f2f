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


def test_the_head_reward_scores_ppo_samples_exactly_as_the_loop_scored_pairs(tmp_path, minilm):
    from ser.encoder_head import FrozenEncoderHead, ppo_reward
    from ser.reward_backends import ppo_reward_fields, question_header

    head = FrozenEncoderHead({"model_name_or_path": minilm, "max_length": 32, "steps": 50})
    pairs = [{"prompt": "Review a film.", "chosen": "A warm, funny and moving film.", "rejected": "Dull and far too long."},
             {"prompt": "Review a film.", "chosen": "Brilliant acting throughout.", "rejected": "A tedious mess."}]
    head.train(pairs, tmp_path / "head", None)
    fields = ppo_reward_fields("frozen_encoder", {"model_name_or_path": minilm, "max_length": 32},
                               str(tmp_path / "head"))
    assert fields["reward_function"] == "ser.encoder_head:ppo_reward" and fields["reward_models"] == []
    answers = ["Lovely and funny.", "Boring."]
    loop_scores = head.score(tmp_path / "head", ["Review a film."] * 2, answers)
    # PPO prompts carry the SER header; a bare question is wrapped the same way
    for prompt in (question_header("Review a film."), "Review a film."):
        got = ppo_reward([prompt] * 2, answers, **fields["reward_function_kwargs"])
        assert got == pytest.approx(loop_scores.tolist(), abs=1e-5)
    assert got[0] > got[1]
    from ser.reward_backends import question_of

    assert question_of(question_header("Review a film.")) == "Review a film." and question_of("bare") == "bare"


def test_lm_reward_fields_point_at_the_adapter_or_the_full_rm():
    from ser.reward_backends import ppo_reward_fields

    lora = ppo_reward_fields("common_rm", {"model_name_or_path": "runs/sft", "use_lora": True, "max_length": 512},
                             "runs/loop_2/model")
    assert lora["reward_models"] == [{"name": "ser_rm", "template": "plain", "max_length": 512, "path": "runs/sft",
                                      "adapter": "runs/loop_2/model"}]
    full = ppo_reward_fields("common_rm", {"model_name_or_path": "runs/sft"}, "runs/loop_2/model")
    assert full["reward_models"][0]["path"] == "runs/loop_2/model" and "adapter" not in full["reward_models"][0]


def test_ser_ppo_refuses_a_missing_loop_or_an_unknown_rm(tmp_path):
    from common.config import UserError
    from ser.ppo import loop_reward_fields

    with pytest.raises(UserError, match="run the SER loop"):
        loop_reward_fields(str(tmp_path), "ser")
    with pytest.raises(UserError, match="reward_from"):
        loop_reward_fields(str(tmp_path), "best")
    (tmp_path / "metrics.json").write_text('{"reward_models": {"seed": {}, "ser": {}}}')
    with pytest.raises(UserError, match="full_label_baseline"):
        loop_reward_fields(str(tmp_path), "full")
