"""Every full-scale recipe, as its paper's stage reads it, against the upstream code's hyperparameters.

UPSTREAM below is the table of upstream values, each group cited by the script it comes from (paths inside the
upstream repository named in the group's comment). A recipe may keep a different value only if the difference is
listed in EXCEPTIONS (ours, upstream) and its key is named in the paper README's "Differences from upstream" list,
so a recipe that drifts from upstream, or an exception that is not documented, fails here.

Stages are loaded with the real loaders: ``load_config`` into the stage's dataclass (SFTConfig, RMConfig, DPOConfig,
the papers' PPO subclasses, ...), with the inputs the stage scripts fill in given placeholders; the RM of PCRM and
SER is built the way their drivers build it (``pcrm.variants``, ``ser.reward_backends``). Global batches are read
as the trainer resolves them on one process (WORLD_SIZE=1).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from common.config import build_dataclass, load_config, read_yaml

ROOT = Path(__file__).resolve().parents[1]

# --- upstream values --------------------------------------------------------------------------------------------

RLDF_MODELS = ("llama2", "chatglm3", "qwen1.5", "baichuan2")
RLDF = {  # Hunter-Wrynn/RLDF; the scripts run Llama-2-7b, the other models reuse them [GUESS]
    # RL/reward-model-training/train_rm_multi_role.sh: 1 per device x GA 8 x 4 GPUs (deepspeed --include 0,1,2,3)
    "rm": {"learning_rate": 3e-4, "lr_scheduler_type": "linear", "warmup_steps": 200, "num_train_epochs": 1,
           "max_length": 512, "per_device_train_batch_size": 1, "global_batch_size": 32, "lora_r": 8,
           "lora_alpha": 16, "lora_dropout": 0.05, "template": "default_v0.6", "dtype": "float16"},
    # RL/reward-model-training/train_sft_multi_role.sh: 1 x GA 4 x 4 GPUs, --max_samples 1000
    "sft": {"learning_rate": 5e-5, "lr_scheduler_type": "linear", "warmup_steps": 200, "num_train_epochs": 3,
            "max_length": 1024, "per_device_train_batch_size": 1, "global_batch_size": 16, "lora_r": 8,
            "lora_alpha": 16, "lora_dropout": 0.05, "template": "default_v0.6", "limit": 1000, "dtype": "float16"},
    # SFT test file 346 of 3,451 utterances; train_rm_multi_role.sh --val_size 0.05
    "data_self": {"eval_fraction": 0.1, "pair_eval_fraction": 0.05},
    "data_teacher": {"eval_fraction": 0.1, "pair_eval_fraction": 0.05},
    # RL/rl-finetuning/src/run_llama2_7b_multi_role.sh: ReMax, 1 prompt per GPU x 4 GPUs, GA 1; the prompt is the
    # bare " " + instruction + input (utils/data/raw_datasets.py LocalAgeBiasJsonFileDataset.get_prompt)
    "rl": {"algorithm": "remax", "learning_rate": 5e-6, "lr_scheduler": "cosine", "warmup_steps": 0,
           "weight_decay": 0.1, "kl_coef": 0.05, "adaptive_kl": False, "reward_clip": 5.0,
           "max_prompt_length": 1024, "max_new_tokens": 512, "ppo_epochs": 1, "rollout_batch_size": 4,
           "update_size": 4, "seed": 2023, "template": "none"},
    # RL/reward-model-training/do_predict_RLDF_multi_role.sh --template default
    "predict": {"template": "default_v0.6"},
}

RLLR_MODELS = ("llama2", "llama2-13b", "baichuan2", "baichuan2-13b", "chatglm3", "mistral", "bloom3b", "bloom7b")
# MagiaSN/ACL2024_RLLR scripts/<stage>_<model>.sh: (per-device batch, `# global_batch_size=`), None: no script.
RLLR_BATCH = {
    "llama2": {"sft_label": (4, 128), "sft_wrat": (2, 128), "rm_rat": (1, 128), "rm_label": (1, 64)},
    "llama2-13b": {"sft_label": (2, 128), "sft_wrat": (2, 128), "rm_rat": (1, 128), "rm_label": (1, 128)},
    "baichuan2": {"sft_label": (8, 128), "sft_wrat": (2, 128), "rm_rat": (4, 128), "rm_label": (4, 64)},
    "baichuan2-13b": {"sft_label": (1, 128), "sft_wrat": (1, 128), "rm_rat": (2, 128), "rm_label": None},
    "chatglm3": {"sft_label": (4, 128), "sft_wrat": (2, 128), "rm_rat": (4, 128), "rm_label": (4, 64)},
    "mistral": {"sft_label": (2, 128), "sft_wrat": (1, 128), "rm_rat": (8, 128), "rm_label": (8, 64)},
    "bloom3b": {"sft_label": None, "sft_wrat": None, "rm_rat": (4, 128), "rm_label": (4, 128)},
    "bloom7b": {"sft_label": None, "sft_wrat": (2, 128), "rm_rat": (4, 128), "rm_label": (4, 64)},
}
# scripts/{rlhf,rllr,rllrmix}_ppo_<model>.sh: (rollouts per step, ppo_mini_batch_size). The scripts' `# global_batch_size=`
# is per device x accumulation x GPUs, as in their SFT/RM scripts; TRL 0.7.2 samples the per-device batch and splits
# it into accumulation steps, so a step samples per device x GPUs: Llama-2-7b 2 x 4 GPUs (16 / accumulation 2), the
# others (accumulation 1) their global_batch_size.
RLLR_PPO_BATCH = {"llama2": (8, 1), "llama2-13b": (16, 8), "baichuan2": (32, 4), "baichuan2-13b": (32, 4),
                  "chatglm3": (32, 4), "mistral": (32, 4), "bloom3b": (32, 8), "bloom7b": (32, 4)}
RLLR_TAU = {"llama2": 3.9, "llama2-13b": 6.2, "baichuan2": 3.1, "chatglm3": 3.7, "mistral": 4.4, "bloom3b": 1.0,
            "bloom7b": 4.4}  # scripts/rllrmix_ppo_<model>.sh --label_reward_threshold


def rllr_upstream(model: str, stage: str) -> dict[str, Any]:
    big = model in ("llama2-13b", "baichuan2-13b")
    # every script: LoRA r 16, alpha 32, cosine, cutoff 1536 (sft*_baichuan2-13b.sh: 512), --fp16 (13B PPO --bf16);
    # LoRA dropout: src/llmtuner/hparams/finetuning_args.py default 0.1 (no script sets it)
    lora = {"lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "lr_scheduler_type": "cosine",
            "dtype": "float16"}
    if stage in RLLR_BATCH[model] and RLLR_BATCH[model][stage] is not None:
        lora["per_device_train_batch_size"], lora["global_batch_size"] = RLLR_BATCH[model][stage]
    if stage == "sft_label":
        return {**lora, "learning_rate": 2e-5, "num_train_epochs": 10 if big else 20,
                "max_length": 512 if model == "baichuan2-13b" else 1536}
    if stage == "sft_wrat":
        lr = 1e-3 if big or model == "bloom7b" else 1e-4 if model == "mistral" else 2e-4
        return {**lora, "learning_rate": lr, "num_train_epochs": 10,
                "max_length": 512 if model == "baichuan2-13b" else 1536}
    if stage == "rm_rat":
        lr = 5e-4 if model in ("bloom3b", "bloom7b", "chatglm3") else 2e-4
        return {**lora, "learning_rate": lr, "num_train_epochs": 1 if model == "bloom7b" else 5, "max_length": 1536}
    if stage == "rm_label":
        return {**lora, "learning_rate": 1e-4, "num_train_epochs": 1, "max_length": 1536}
    # PPO, per mode: src/llmtuner/tuner/ppo/workflow.py (TRL 0.7.2 PPOConfig: ppo_epochs=1, adaptive KL target
    # ppo_target 6.0, init KL 0.2; value model = the reward model; cosine over the run, no warmup)
    rollout, mini = RLLR_PPO_BATCH[model]
    up = {"learning_rate": 5e-6, "lr_scheduler": "cosine", "warmup_steps": 0, "ppo_epochs": 1, "kl_coef": 0.2,
          "adaptive_kl": True, "kl_target": 6.0, "value_model": "reward_model", "reward_normalization": True,
          "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 256, "rollout_batch_size": rollout,
          "mini_batch_size": mini, "update_size": rollout, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.1}
    if stage == "rl:rllr" and model == "bloom7b":
        up["learning_rate"] = 1e-5  # scripts/rllr_ppo_bloom7b.sh
    if stage == "rl:rllr_mixed" and model in RLLR_TAU:
        up["tau"] = RLLR_TAU[model]
    return up


PCRM = {  # wangclnlp/DeepSpeed-Chat-Extension, branch PCRM, training/<step>/training_scripts/llama2/
    # step1_supervised_finetuning/.../run_llama2_7b.sh and run_llama2_7b_tldr.sh (deepspeed --include 0-7)
    "sft_dialogue": {"learning_rate": 2e-5, "num_train_epochs": 3, "per_device_train_batch_size": 16,
                     "global_batch_size": 128, "max_length": 512, "lr_scheduler_type": "cosine", "warmup_steps": 0,
                     "weight_decay": 0.0, "seed": 42},
    "sft_tldr": {"learning_rate": 1e-5, "num_train_epochs": 3, "per_device_train_batch_size": 8,
                 "global_batch_size": 64, "max_length": 1024, "lr_scheduler_type": "cosine", "warmup_steps": 0,
                 "weight_decay": 0.0, "seed": 42},
    # step2_reward_model_finetuning/.../run_llama2_7b_{alpaca,tldr}*.sh (deepspeed --include 4,5,6,7), from the SFT
    "rm_dialogue": {"learning_rate": 3e-6, "num_train_epochs": 1, "per_device_train_batch_size": 4,
                    "global_batch_size": 16, "max_length": 512, "lr_scheduler_type": "cosine", "warmup_steps": 0,
                    "weight_decay": 0.1, "seed": 42, "model_name_or_path": "SFT"},
    "rm_tldr": {"learning_rate": 1e-6, "num_train_epochs": 1, "per_device_train_batch_size": 16,
                "global_batch_size": 64, "max_length": 1024, "lr_scheduler_type": "cosine", "warmup_steps": 0,
                "weight_decay": 0.1, "seed": 42, "model_name_or_path": "SFT"},
    # step2_dpo_finetuning/.../run_llama2_7b{,_PCRM_len_rat,_PCRM_cos_sim}.sh (every visible GPU: no global batch)
    "dpo_dialogue": {"beta": 0.1, "learning_rate": 1e-6, "per_device_train_batch_size": 4, "num_train_epochs": 1,
                     "lr_scheduler_type": "cosine", "warmup_steps": 0, "weight_decay": 0.0, "max_length": 512,
                     "seed": 42},
    # step3_rlhf_finetuning/.../run_llama2_7b_{alpaca,tldr}*.sh: 4 per GPU, GA 4 (over generation steps), 4 GPUs
    "rl_dialogue": {"learning_rate": 1e-5, "critic_learning_rate": 5e-6, "weight_decay": 0.1, "lr_scheduler": "cosine",
                    "warmup_steps": 100, "kl_coef": 0.1, "adaptive_kl": False, "reward_clip": 5.0, "cliprange": 0.2,
                    "gamma": 1.0, "lam": 0.95, "ppo_epochs": 1, "value_model": "reward_model",
                    "rollout_batch_size": 64, "update_size": 64, "max_prompt_length": 256, "max_new_tokens": 384,
                    "total_episodes": 3200, "lr_schedule_horizon": "one pass over the prompts", "seed": 42},
    "rl_tldr": {"learning_rate": 1e-5, "critic_learning_rate": 5e-6, "weight_decay": 0.1, "lr_scheduler": "cosine",
                "warmup_steps": 100, "kl_coef": 0.1, "adaptive_kl": False, "reward_clip": 5.0, "ppo_epochs": 1,
                "value_model": "reward_model", "rollout_batch_size": 64, "update_size": 64,
                "max_prompt_length": 768, "max_new_tokens": 256, "total_episodes": 16000,
                "lr_schedule_horizon": "one pass over the prompts", "seed": 42},
}

SER_MODELS = ("llama3", "mistral", "llama2-13b", "llama2-70b")
SER = {  # microsoft/DKI_LLM SER/
    # sft/sft.sh (deepspeed --num_gpus 8, sft/deepspeed_config.json: ZeRO stage 3); seed: transformers' default
    "sft": {"learning_rate": 2e-5, "lr_scheduler_type": "cosine", "warmup_steps": 2, "num_train_epochs": 8,
            "max_length": 512, "per_device_train_batch_size": 64, "global_batch_size": 512, "zero_stage": 3,
            "seed": 42},
    # rm_training/rm_training.sh (accelerate --num_processes 8) and rm_training.py's LoraConfig (r 2 for 70B)
    "rm": {"learning_rate": 2e-5, "lr_scheduler_type": "linear", "weight_decay": 0.0, "num_train_epochs": 2,
           "max_length": 512, "per_device_train_batch_size": 5, "global_batch_size": 40, "lora_r": 8,
           "lora_alpha": 32, "lora_dropout": 0.1, "seed": 42},
    # ppo/ppo.sh + ppo/ppo.py (TRL 0.11, accelerate --num_processes 8): Adafactor, linear schedule, 4 passes
    # (--epochs default), LoraConfig r 16 / alpha 32 / dropout 0.05; --target_kl 0.1 is TRL's early stopping
    # threshold (early_stopping False), the adaptive target is TRL's default 6
    "rl": {"learning_rate": 1.4e-5, "optimizer": "adafactor", "lr_scheduler": "linear", "warmup_steps": 0,
           "prompt_epochs": 4, "rollout_batch_size": 64, "mini_batch_size": 1, "update_size": 64, "ppo_epochs": 4,
           "kl_coef": 0.2, "adaptive_kl": True, "kl_target": 6.0, "top_k": 0, "top_p": 1.0, "seed": 0,
           "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.05},
}

RLCHF_MODELS = ("llama3", "qwen2.5")
RLCHF = {  # QuentinFitteRey/RLCHF; the training scripts take no arguments: their hard-coded values are what ran
    # training/train_persona_dpo.py (DPOConfig) and its LoraConfig
    "dpo": {"learning_rate": 1e-5, "num_train_epochs": 1, "per_device_train_batch_size": 3,
            "gradient_accumulation_steps": 8, "beta": 0.1, "lora_r": 128, "lora_alpha": 256, "lora_dropout": 0.1,
            "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
    # training/train_sft.py
    "sft": {"learning_rate": 5e-5, "num_train_epochs": 3, "per_device_train_batch_size": 16, "lora_r": 128,
            "lora_alpha": 256, "lora_dropout": 0.1},
    # scripts/generate_personas.py defaults (--sample-size 1000, --model-name, --temperature 0.7, --random-seed 1);
    # 20 judges: README's dataset_generation.py --num_personas 20
    "personas": {"n_seed": 1000, "n_judges": 20, "seed": 1, "generator.model": "meta-llama/Llama-3.3-70B-Instruct",
                 "generator.temperature": 0.7},
    # README's dataset_generation.py command: --model google/gemma-3-27b-it --temperature 0.7
    "rank": {"judge.model": "google/gemma-3-27b-it", "judge.temperature": 0.7},
}

# --- documented exceptions: (paper, model or "*", stage, key) -> (ours, upstream) --------------------------------
# Each key is named (`stage.key`) in the paper README's "Differences from upstream" list with its reason.
EXCEPTIONS: dict[tuple[str, str, str, str], tuple[Any, Any]] = {
    ("rldf", "*", "sft", "limit"): (None, 1000),  # the logged run trained on all 3,105 utterances
    ("rldf", "*", "rl", "template"): ("default_v0.6", "none"),  # one format for policy and RM in every stage
    ("rldf", "*", "rm", "dtype"): ("bfloat16", "float16"),
    ("rldf", "*", "sft", "dtype"): ("bfloat16", "float16"),
    **{("rllr", "*", stage, "dtype"): ("bfloat16", "float16")
       for stage in ("sft_label", "sft_wrat", "rm_rat", "rm_label")},
    # dropout is off in every RL model (common/train/ppo_models.py): with it, π_old and π differ before an update
    **{("rllr", "*", f"rl:{mode}", "lora_dropout"): (0.0, 0.1) for mode in ("rlhf", "rllr", "rllr_mixed")},
    ("ser", "*", "rl", "lora_dropout"): (0.0, 0.05),
    # verl splits the rollouts over 4 GPUs: 4 per GPU, so the forward micro-batch is 4, not 8 (same update size)
    **{("rllr", "llama2-13b", f"rl:{mode}", "mini_batch_size"): (4, 8) for mode in ("rlhf", "rllr", "rllr_mixed")},
    # verl has only constant / cosine schedules
    ("ser", "llama2-13b", "rl", "lr_scheduler"): ("cosine", "linear"),
    ("ser", "llama2-70b", "rl", "lr_scheduler"): ("cosine", "linear"),
    # a 70B full fine-tune does not fit 8 GPUs: upstream's 512 as 8 per device x 64 GPUs
    ("ser", "llama2-70b", "sft", "per_device_train_batch_size"): (8, 64),
    # ours schedules over the run (verl cannot do otherwise); DeepSpeed-Chat over one pass of the prompts
    ("pcrm", "*", "rl_dialogue", "lr_schedule_horizon"): ("the run", "one pass over the prompts"),
    ("pcrm", "*", "rl_tldr", "lr_schedule_horizon"): ("the run", "one pass over the prompts"),
}
README_OF = {"rldf": "rldf/README.md", "rllr": "rllr/README.md", "pcrm": "pcrm/README.md", "ser": "ser/README.md"}


# --- the recipes as their stages read them -----------------------------------------------------------------------


def _stage(paper: str, model: str, stage: str):
    from common.train.dpo import DPOConfig
    from common.train.ppo import PPOConfig
    from common.train.rm import RMConfig
    from common.train.sft import SFTConfig

    path = ROOT / paper / "configs" / f"{model}.yaml"
    files = {"dataset": "data.jsonl", "output_dir": "runs/x"}
    if paper == "rldf":
        from rldf.debate import DebateConfig
        from rldf.predict import PredictConfig

        if stage in ("sft", "rm"):
            return load_config(SFTConfig if stage == "sft" else RMConfig, path, stage, files)
        if stage.startswith("data_"):
            return load_config(DebateConfig, path, stage, {"output_dir": "runs/x"})
        if stage == "predict":
            return load_config(PredictConfig, path, stage, {"before_model": "runs/x", "output_dir": "runs/x"})
        return load_config(PPOConfig, path, stage, {"model": "m", "dataset": "p.jsonl",
                                                     "reward_models": [{"path": "rm"}]})
    if paper == "rllr":
        from rllr.ppo import RLLRPPOConfig
        from rllr.rm import RLLRRMConfig

        if stage.startswith("sft"):
            return load_config(SFTConfig, path, stage, files)
        if stage.startswith("rm"):
            return load_config(RLLRRMConfig, path, stage, {**files, "model_name_or_path": "runs/sft"})
        mode = stage.split(":")[1]
        filled = {"model": "m", "dataset": "p.jsonl", "mode": mode, "label_rm": {"path": "l"}, "rat_rm": {"path": "r"}}
        if read_yaml(path)["rl"].get("tau") is None:  # no upstream τ: the stage reads rllr.tau's file; any τ here
            filled["tau"] = 1.0
        return load_config(RLLRPPOConfig, path, "rl", filled)
    if paper == "pcrm":
        from pcrm.ppo import PCRMPPOConfig
        from pcrm.rm import PCRMRMConfig
        from pcrm.variants import VariantsConfig

        task = stage.split("_", 1)[1]
        if stage.startswith("sft"):
            return load_config(SFTConfig, path, stage, files)
        if stage.startswith("rm"):  # as pcrm/scripts/02_rm.sh and pcrm.variants build every variant's RM
            variants = load_config(VariantsConfig, path, f"variants_{task}", {"sft_model": "SFT"})
            return build_dataclass(PCRMRMConfig, {**variants.rm, **files}, "rm")
        if stage.startswith("dpo"):
            return load_config(DPOConfig, path, stage, {**files, "model_name_or_path": "SFT"})
        return load_config(PCRMPPOConfig, path, stage, {"model": "m", "dataset": "p.jsonl", "reward_model": "rm"})
    if paper == "ser":
        from ser.loop import SERConfig
        from ser.ppo import SERPPOConfig

        if stage == "sft":
            return load_config(SFTConfig, path, stage, files)
        if stage == "rm":  # as ser.reward_backends builds every loop's RM
            return build_dataclass(RMConfig, {**load_config(SERConfig, path, "ser").rm, **files}, "ser.rm")
        return load_config(SERPPOConfig, path, stage)
    from rlchf.personas import PersonaConfig
    from rlchf.rank import RankConfig

    if stage == "dpo":
        return load_config(DPOConfig, path, stage, {**files, "model_name_or_path": "m"})
    if stage == "sft":
        return load_config(SFTConfig, path, stage, files)
    if stage == "personas":
        return load_config(PersonaConfig, path, stage)
    return load_config(RankConfig, path, stage, {"candidates": "c.jsonl", "judges": "j.jsonl"})


def _value(cfg: Any, key: str, paper: str) -> Any:
    """A setting as the stage uses it; a few keys are derived (named in UPSTREAM's comments)."""
    if key == "update_size":  # sequences per optimiser step
        return cfg.mini_batch_size * cfg.gradient_accumulation_steps
    if key == "global_batch_size":  # what the trainer resolves on one process
        return cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps
    if key == "zero_stage":
        return int(re.search(r"zero(\d)", Path(cfg.deepspeed).stem).group(1))
    if key == "lora_dropout" and hasattr(cfg, "ppo_epochs"):  # RL: fixed in the model builder
        from common.train.ppo_models import lora_config

        return lora_config("CAUSAL_LM", 8, 16, ["q_proj"]).lora_dropout
    if key == "lr_schedule_horizon":  # ours always schedules over the steps the run takes
        return "the run"
    if "." in key:
        outer, inner = key.split(".", 1)
        return getattr(cfg, outer)[inner]
    return getattr(cfg, key)


def _rows() -> list[tuple[str, str, str, dict]]:
    rows = [("rldf", m, stage, up) for m in RLDF_MODELS for stage, up in RLDF.items()]
    rllr_stages = ("sft_label", "sft_wrat", "rm_rat", "rm_label", "rl:rlhf", "rl:rllr", "rl:rllr_mixed")
    rows += [("rllr", m, s, rllr_upstream(m, s)) for m in RLLR_MODELS for s in rllr_stages]
    rows += [("pcrm", "llama2", stage, up) for stage, up in PCRM.items()]
    rows += [("ser", m, stage, {**up, "lora_r": 2} if (m, stage) == ("llama2-70b", "rm") else up)  # r 2 for 70B
             for m in SER_MODELS for stage, up in SER.items()]
    rows += [("rlchf", m, stage, up) for m in RLCHF_MODELS for stage, up in RLCHF.items()]
    return rows


def _exception(paper: str, model: str, stage: str, key: str) -> tuple[Any, Any] | None:
    return EXCEPTIONS.get((paper, model, stage, key)) or EXCEPTIONS.get((paper, "*", stage, key))


@pytest.mark.parametrize("paper, model, stage, upstream", _rows(), ids=lambda v: v if isinstance(v, str) else "")
def test_full_scale_recipe_has_upstreams_hyperparameters(paper, model, stage, upstream, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    cfg = _stage(paper, model, stage)
    wrong = {}
    for key, up in upstream.items():
        exc = _exception(paper, model, stage, key)
        ours = _value(cfg, key, paper)
        if exc is not None:
            assert exc[1] == up, f"{paper}/{model} {stage}.{key}: EXCEPTIONS says upstream {exc[1]!r}, table {up!r}"
            expected = exc[0]
        else:
            expected = up
        if ours != expected and not (isinstance(up, float) and ours == pytest.approx(expected)):
            wrong[key] = (ours, expected)
    assert not wrong, f"{paper}/configs/{model}.yaml {stage}: (ours, expected) {wrong}"


def test_every_exception_is_used_and_documented_in_the_papers_readme():
    rows = {(p, m, s, k) for p, m, s, up in _rows() for k in up}
    for paper, model, stage, key in EXCEPTIONS:
        assert any(p == paper and (model in ("*", m)) and s == stage and k == key for p, m, s, k in rows), \
            f"exception {paper}/{model} {stage}.{key} matches no upstream row"
        readme = (ROOT / README_OF[paper]).read_text()
        assert "## Differences from upstream" in readme, f"{README_OF[paper]}: no 'Differences from upstream' list"
        section = readme.split("## Differences from upstream", 1)[1].split("\n## ", 1)[0]
        assert f"`{stage.split(':')[0]}.{key}`" in section, \
            f"{README_OF[paper]}: 'Differences from upstream' does not name `{stage.split(':')[0]}.{key}`"


def test_rlchf_readme_states_the_released_code_beside_upstreams_readme():
    # upstream's README commands (DPO lr 5e-6 / 3 epochs, SFT lr 1e-5, Llama-3.1-70B personas, 500 of them) differ
    # from the hard-coded values its scripts ran; rlchf/README.md must say which ones the recipes follow
    section = (ROOT / "rlchf" / "README.md").read_text().split("## Differences from upstream", 1)[1]
    for text in ("5e-6", "1e-5", "5e-5", "Llama-3.1-70B", "Llama-3.3-70B", "500", "1,000"):
        assert text in section, text
