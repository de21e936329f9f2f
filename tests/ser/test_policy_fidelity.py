"""The policy experiment end to end on the embedded models: three PPO runs on one loop's RMs, graded by another RM."""

import json

import pytest

from ser.loop import SERConfig, run_ser
from ser.policy_fidelity import PolicyFidelityConfig, run_policy_fidelity

pytestmark = pytest.mark.slow


def test_three_policies_are_trained_on_their_own_rm_and_graded_by_the_gold_rm(tmp_path, tiny_llama, minilm):
    loop = SERConfig(output_dir=str(tmp_path / "loop"), dataset="sst2", data_path="common/tiny_data", limit=80,
                     heldout_size=20, selection_size=10, seed_fraction=0.2, max_loops=1, min_selected=2,
                     backend="frozen_encoder", rm={"model_name_or_path": minilm, "max_length": 32})
    run_ser(loop)
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(json.dumps({"rl": {
        "model": tiny_llama, "dataset": "unused", "template": "plain", "reward_combine": "ser.ppo_reward:ser_sigmoid",
        "use_lora": True, "rollout_batch_size": 2, "mini_batch_size": 2, "ppo_epochs": 1, "max_new_tokens": 4,
        "total_steps": 1, "save_steps": 0, "device": "cpu"}}))
    out = run_policy_fidelity(PolicyFidelityConfig(output_dir=str(tmp_path / "pf"), ser_loop=str(tmp_path / "loop"),
                                                   gold_loop=str(tmp_path / "loop"), rl_config=str(recipe),
                                                   samples=3, max_new_tokens=6))
    assert [r["policy"] for r in out["rows"]] == ["start", "seed", "ser", "full"]
    for name in ("seed", "ser", "full"):
        cfg = (tmp_path / "pf" / f"ppo_{name}" / "config.yaml").read_text()
        want = {"seed": "loop_0", "ser": "loop_", "full": "baseline_full"}[name]
        assert want in cfg and "reward_from: " + name in cfg
    assert all(0.0 < r["gold_mean"] < 1.0 for r in out["rows"])
    assert "| PPO, SER RM |" in (tmp_path / "pf" / "results.md").read_text()
