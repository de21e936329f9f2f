"""Each PPO mode gets the reward it names: the formula, the config wiring, and a PPO step with two fake RMs."""

from __future__ import annotations

import json

import pytest
import torch

from common.artifacts import read_jsonl, write_jsonl
from common.config import ConfigError, load_config
from common.rewards import FunctionReward, get_reward_combiner
from rllr.ppo import RLLRPPOConfig, train_rllr_ppo
from rllr.reward import TAU_BY_MODEL, combine_rllr, rllr_reward
from rllr.tau import propose_tau


def test_mixed_reward_caps_the_label_reward_at_tau_then_adds_the_rationale_reward():
    label = torch.tensor([5.0, 3.9, -2.0])
    rat = torch.tensor([1.0, -1.0, 0.5])
    assert torch.equal(rllr_reward("rllr_mixed", label, rat, tau=3.9), torch.tensor([4.9, 2.9, -1.5]))
    assert torch.equal(rllr_reward("rllr", label, rat), label)
    assert torch.equal(rllr_reward("rlhf", label, rat), rat)
    with pytest.raises(ConfigError, match="tau"):
        rllr_reward("rllr_mixed", label, rat)


def test_a_mode_refuses_reward_sources_it_does_not_read():
    scores = {"label": torch.ones(2), "rat": torch.zeros(2)}
    with pytest.raises(ConfigError, match="reads reward sources"):
        combine_rllr(scores, mode="rllr")
    assert get_reward_combiner("rllr.reward:combine_rllr") is combine_rllr


def test_each_mode_loads_its_reward_models_first_the_one_the_critic_starts_from(tmp_path):
    rms = {"label_rm": {"path": "sft", "adapter": "rm_label"}, "rat_rm": {"path": "sft", "adapter": "rm_rat"}}
    names = {}
    for mode in ("rlhf", "rllr", "rllr_mixed"):
        cfg = RLLRPPOConfig(model="m", dataset="d", mode=mode, tau=3.9, **rms)
        names[mode] = [rm["name"] for rm in cfg.reward_models]
        assert cfg.reward_combine_kwargs == {"mode": mode, "tau": 3.9}
    assert names == {"rlhf": ["rat"], "rllr": ["label"], "rllr_mixed": ["label", "rat"]}
    (tmp_path / "tau.json").write_text(json.dumps({"tau": 1.25}))
    cfg = RLLRPPOConfig(model="m", dataset="d", mode="rllr_mixed", tau_file=str(tmp_path / "tau.json"), **rms)
    assert cfg.tau == 1.25
    bloom = RLLRPPOConfig(model="m", dataset="d", mode="rllr", learning_rate_by_mode={"rllr": 1e-5}, **rms)
    assert bloom.learning_rate == 1e-5


@pytest.mark.parametrize("mode,expected", [("rlhf", 1.0), ("rllr", 5.0), ("rllr_mixed", 4.9)])
def test_ppo_step_logs_the_reward_of_its_mode(tiny_llama, tmp_path, mode, expected):
    prompts = tmp_path / "prompts.jsonl"
    write_jsonl(prompts, [{"prompt": "Decide the sentiment.\nSentence: fine\nLabel?", "label": "positive"}] * 2)
    cfg = RLLRPPOConfig(model=tiny_llama, dataset=str(prompts), mode=mode, tau=3.9, output_dir=str(tmp_path / mode),
                        template="tokenizer", value_model="policy", total_steps=1, rollout_batch_size=2,
                        mini_batch_size=2, ppo_epochs=1, max_new_tokens=3, device="cpu", save_steps=0)
    fakes = {"label": FunctionReward(lambda p, r: [5.0] * len(r)), "rat": FunctionReward(lambda p, r: [1.0] * len(r))}
    train_rllr_ppo(cfg, sources=fakes)
    step = read_jsonl(tmp_path / mode / "log.jsonl")[0]
    assert step["reward"] == pytest.approx(expected)


def test_tau_is_the_median_correct_label_score_and_configs_use_upstream_values():
    assert propose_tau(torch.tensor([1.0, 2.0, 3.0, 10.0]).numpy()) == 2.5
    for name, model in (("llama2", "meta-llama/Llama-2-7b-chat-hf"), ("bloom3b", "bigscience/bloom-3b"),
                        ("mistral", "mistralai/Mistral-7B-Instruct-v0.2")):
        cfg = load_config(RLLRPPOConfig, f"rllr/configs/{name}.yaml", "rl",
                          {"model": "x", "dataset": "y", "mode": "rllr_mixed", "label_rm": {"path": "a"},
                           "rat_rm": {"path": "b"}})
        assert cfg.tau == TAU_BY_MODEL[model]


def test_the_token_rm_loss_refuses_padding_free_batches():
    """The divergent-span loss lines chosen and rejected up position by position; a packed row has no such rows (it
    used to fail mid-training with KeyError 'attention_mask')."""
    from rllr.rm import RLLRRMConfig

    base = {"model_name_or_path": "m", "dataset": "d.jsonl", "output_dir": "o", "loss": "token"}
    assert not RLLRRMConfig(**base).padding_free
    with pytest.raises(ConfigError, match="padding_free: false with loss: token"):
        RLLRRMConfig(**base, padding_free=True)
