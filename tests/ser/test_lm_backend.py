"""The configuration the paper-scale recipes run: LM reward models through common.train.rm with LoRA (backend
common_rm), the loop scoring with the adapter on the base model, then ser.ppo scoring with that same adapter."""

import json

import pytest

from common.artifacts import write_jsonl
from common.config import UserError, load_config
from ser.loop import SERConfig, run_ser

pytestmark = pytest.mark.slow


def test_lora_lm_rm_loop_then_ppo_with_the_kept_adapter(tmp_path, tiny_llama):
    from common.rewards import build_reward_source
    from common.train.ppo import train_ppo
    from ser.ppo import SERPPOConfig

    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, [{"prompt": f"Is {i} even?", "chosen": "yes" if i % 2 == 0 else "no",
                         "rejected": "no" if i % 2 == 0 else "yes"} for i in range(40)])
    rm = {"model_name_or_path": tiny_llama, "use_lora": True, "lora_r": 8, "lora_alpha": 32, "lora_dropout": 0.1,
          "learning_rate": 1e-3, "num_train_epochs": 1, "per_device_train_batch_size": 8, "max_length": 48,
          "report_to": "none", "save_steps": 100000}
    cfg = SERConfig(output_dir=str(tmp_path / "loop"), dataset="jsonl", data_path=str(pairs), heldout_size=8,
                    selection_size=8, seed_fraction=0.3, max_loops=1, min_selected=1, backend="common_rm", rm=rm)
    metrics = run_ser(cfg)
    loop0 = tmp_path / "loop" / "loop_0" / "model"
    assert (loop0 / "adapter_config.json").is_file()  # LoRA adapter (+ score head), not a full copy
    assert 0.0 <= metrics["seed_only_accuracy"] <= 1.0 and metrics["loops"][0]["train_pairs"] == 7
    fields = metrics["reward_models"]["ser"]["ppo_fields"]["reward_models"][0]
    assert fields["path"] == tiny_llama and fields["adapter"] == metrics["final_model"]

    # PPO's reward source gives the loop's own scores: same adapter, same text rendering
    from ser.reward_backends import CommonRMBackend

    prompts, answers = ["Is 4 even?", "Is 7 even?"], ["yes", "yes"]
    loop_scores = CommonRMBackend(rm).score(loop0, prompts, answers)
    seed_fields = metrics["reward_models"]["seed"]["ppo_fields"]
    source = build_reward_source({"reward_models": seed_fields["reward_models"]})
    from ser.reward_backends import question_header

    ppo_scores = source.score([question_header(q) for q in prompts], answers)
    assert ppo_scores.tolist() == pytest.approx(loop_scores.tolist(), abs=1e-4)

    write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": question_header(f"Is {i} even?")} for i in range(8)])
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(json.dumps({"rl": {"template": "plain", "reward_combine": "ser.ppo_reward:ser_sigmoid",
                                         "use_lora": True, "rollout_batch_size": 4, "mini_batch_size": 2,
                                         "ppo_epochs": 1, "max_new_tokens": 4, "total_steps": 1, "save_steps": 0,
                                         "device": "cpu"}}))
    ppo_cfg = load_config(SERPPOConfig, recipe, "rl", {
        "model": tiny_llama, "dataset": str(tmp_path / "prompts.jsonl"), "output_dir": str(tmp_path / "ppo"),
        "ser_loop": str(tmp_path / "loop"), "reward_from": "ser"})
    assert ppo_cfg.reward_models[0]["adapter"] == metrics["final_model"]
    out = train_ppo(ppo_cfg)
    assert 0.0 < out["reward_first"] < 1.0  # σ(r) of the LoRA RM


def test_rm_launcher_trains_each_loop_rm_in_its_own_process(tmp_path, tiny_llama):
    import sys

    pairs = tmp_path / "pairs.jsonl"
    write_jsonl(pairs, [{"prompt": f"Is {i} even?", "chosen": "yes" if i % 2 == 0 else "no",
                         "rejected": "no" if i % 2 == 0 else "yes"} for i in range(30)])
    rm = {"model_name_or_path": tiny_llama, "num_train_epochs": 1, "per_device_train_batch_size": 8,
          "max_length": 48, "report_to": "none", "save_steps": 100000}
    cfg = SERConfig(output_dir=str(tmp_path / "loop"), dataset="jsonl", data_path=str(pairs), heldout_size=6,
                    selection_size=6, seed_fraction=0.4, max_loops=0, backend="common_rm", rm=rm,
                    full_label_baseline=False, rm_launcher=f"{sys.executable} -X utf8")
    metrics = run_ser(cfg)
    run = json.loads((tmp_path / "loop" / "loop_0" / "model" / "run.json").read_text())
    assert run["argv"][0].endswith("common/train/rm.py")  # `python -m common.train.rm`, not this pytest process
    assert (tmp_path / "loop" / "loop_0" / "model_rm.yaml").is_file()
    assert 0.0 <= metrics["seed_only_accuracy"] <= 1.0
    with pytest.raises(UserError, match="exited with"):
        run_ser(SERConfig(**{**cfg.__dict__, "output_dir": str(tmp_path / "bad"), "rm_launcher": "false"}))
