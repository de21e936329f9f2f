"""RM -> RL -> BBQ wiring on the embedded tiny Llama: debate pairs train a LoRA RM, the merged RM drives one ReMax
step, and the predict stage scores BBQ Age and held-out answers before and after."""

from pathlib import Path

import torch
from scripted_debate import ScriptedGenerator

from common.merge_lora import merge_lora
from common.models import load_causal_lm
from common.train.ppo import PPOConfig, train_ppo
from common.train.rm import RMConfig, train_rm
from rldf.debate import DebateConfig, build_dataset
from rldf.predict import PredictConfig, predict


def test_debate_pairs_to_rm_to_remax_to_bbq_before_and_after(tmp_path, tiny_llama, shared_data):
    data = tmp_path / "data"
    cfg = DebateConfig(output_dir=str(data), mode="self", model="scripted", n_topics=3, eval_fraction=0.34)
    build_dataset(cfg, generator=ScriptedGenerator(cfg.generation()))

    rm = train_rm(RMConfig(model_name_or_path=tiny_llama, dataset=str(data / "pairs"),
                           eval_dataset=str(data / "pairs"), output_dir=str(tmp_path / "rm"), use_lora=True,
                           lora_target_modules=["q_proj", "v_proj"], max_steps=2, per_device_train_batch_size=2,
                           learning_rate=3e-4, report_to="none", save_steps=1000, seed=0))
    assert rm["eval_pairs"] == 1 and rm["global_step"] == 2
    merge_lora(tmp_path / "rm", tmp_path / "rm-merged")

    rl = train_ppo(PPOConfig(model=tiny_llama, dataset=str(data / "prompts"), output_dir=str(tmp_path / "rl"),
                             algorithm="remax", reward_models=[{"path": str(tmp_path / "rm-merged")}],
                             learning_rate=1e-3, kl_coef=0.05, adaptive_kl=False, reward_clip=5.0, total_steps=1,
                             rollout_batch_size=2, mini_batch_size=2, ppo_epochs=1, max_new_tokens=4, save_steps=0,
                             seed=0))
    assert rl["algorithm"] == "remax" and rl["steps"] == 1
    before = load_causal_lm(tiny_llama).state_dict()
    after = load_causal_lm(str(tmp_path / "rl" / "policy")).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "ReMax did not move the policy"

    out = predict(PredictConfig(output_dir=str(tmp_path / "predict"), before_model=tiny_llama,
                                after_model=str(tmp_path / "rl" / "policy"), reward_model=str(tmp_path / "rm-merged"),
                                prompts=str(data / "prompts"), max_new_tokens=4, bbq_data=str(shared_data / "bbq"),
                                bbq_categories=["Nationality", "Age"], bbq_n_per_category=3))
    assert out["key_metric"] == "after_mc_Age_s_amb"
    for which in ("before", "after"):
        assert out[f"{which}_n_prompts"] == 1 and isinstance(out[f"{which}_reward_mean"], float)
        assert f"{which}_mc_Age_acc_amb" in out and f"{which}_mc_Nationality_s_dis" in out
        assert (Path(out_dir := tmp_path / "predict" / which) / "bbq" / "metrics.json").exists(), out_dir
