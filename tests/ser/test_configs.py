"""Every SER recipe's sections load into their stage dataclasses (unknown keys or bad values would fail here)."""

from pathlib import Path

import pytest

from common.config import build_dataclass, load_config, read_yaml
from ser.loop import SERConfig

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / "ser" / "configs").glob("*.yaml")
                 if p.stem != "policy_fidelity")  # the policy experiment's PPO settings only (checked below)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_recipe_sections_build_their_configs(path):
    from common.eval.judge import JudgeEvalConfig
    from common.respond import RespondConfig
    from common.train.rm import RMConfig
    from common.train.sft import SFTConfig
    from ser.encoder_head import EncoderHeadSettings
    from ser.ppo import SERPPOConfig

    classes = {"ser": SERConfig, "sft": SFTConfig, "rl": SERPPOConfig, "respond": RespondConfig,
               "judge_eval": JudgeEvalConfig}
    recipe = read_yaml(path)
    assert {"ser", "sft", "rl", "respond", "judge_eval"} <= set(recipe), "every stage script needs its section"
    # what the stage scripts pass on the command line (ser/scripts/*.sh)
    filled_by_scripts = {"sft": {"dataset": "sft.jsonl", "output_dir": "sft"},
                         "respond": {"model": "sft", "prompts": "eval_prompts.jsonl"},
                         "judge_eval": {"a": "ser.jsonl", "b": "sft.jsonl"}}
    for section, cls in classes.items():
        load_config(cls, path, section, filled_by_scripts.get(section))
    ser = load_config(SERConfig, path, "ser")
    if ser.backend == "common_rm":  # every loop's RM: the backend fills dataset and output_dir
        build_dataclass(RMConfig, {**ser.rm, "dataset": "pairs.jsonl", "output_dir": "loop_0/model"}, "ser.rm")
    else:
        build_dataclass(EncoderHeadSettings, ser.rm, "ser.rm")


def test_real_recipes_follow_the_upstream_settings():
    from ser.ppo import SERPPOConfig

    cfg = load_config(SERConfig, CONFIGS[0].parent / "llama3.yaml", "ser")
    assert (cfg.t_low, cfg.t_high, cfg.margin, cfg.seed_fraction) == (0.45, 0.55, 0.3, 0.15)
    assert cfg.rm["lora_r"] == 8 and cfg.rm["lora_alpha"] == 32 and cfg.rm["num_train_epochs"] == 2
    assert cfg.heldout_size == 1500 and cfg.sft_data == "seed" and cfg.pool_source == "pairs"
    assert load_config(SERConfig, CONFIGS[0].parent / "llama2-70b.yaml", "ser").rm["lora_r"] == 2
    rl = load_config(SERPPOConfig, CONFIGS[0].parent / "llama3.yaml", "rl")
    # batch 8 per process x 8 processes; TRL's adaptive target stays at its default 6 (0.1 is early stopping's)
    assert (rl.lora_r, rl.learning_rate, rl.rollout_batch_size, rl.mini_batch_size, rl.ppo_epochs) == \
        (16, 1.4e-5, 64, 1, 4)
    assert (rl.kl_coef, rl.kl_target, rl.response_length_range) == (0.2, 6.0, [32, 128])


def test_policy_fidelity_recipe_builds():
    from ser.ppo import SERPPOConfig

    rl = load_config(SERPPOConfig, CONFIGS[0].parent / "policy_fidelity.yaml", "rl")
    assert rl.reward_combine == "ser.ppo_reward:ser_sigmoid" and rl.use_lora and rl.lora_r == 16
