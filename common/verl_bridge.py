"""Our RL settings (``common.train.ppo.PPOConfig``) as a verl trainer config: one translation, checked by verl.

verl (https://github.com/volcengine/verl, pinned to ``VERL_VERSION``) runs PPO / ReMax across GPUs and nodes: FSDP
shards the actor, reference and critic, vLLM samples the rollouts, Ray places the workers. We do not fork its
trainer; we write a hydra config that starts from verl's own ``ppo_trainer.yaml`` and sets only the keys below, then
let verl check it (``common.verl_check``, run in verl's environment) before any GPU is asked for.

What carries over, key by key, is ``translate``; what cannot carry over raises a ``ConfigError`` naming our key:

- prompts are rendered by ``common.templates`` exactly as ``engine: ours`` renders them and reach verl as one
  pre-rendered user turn behind a pass-through chat template, so both engines feed the policy the same tokens;
- the reward is ours: verl's reward workers call ``common/verl_reward.py``, which asks our reward server
  (``common.reward_server``) to score with the same ``common.rewards`` source ``engine: ours`` builds;
- the KL penalty sits in the reward (``algorithm.use_kl_in_reward``) with verl's adaptive controller, which is the
  Ziegler et al. rule ours uses (β ← β(1 + clip(KL/target − 1, ±0.2)·B/horizon));
- ``mini_batch_size × gradient_accumulation_steps`` sequences per optimiser step is verl's global
  ``ppo_mini_batch_size``; ``mini_batch_size`` is the per-GPU micro batch.

Known differences, recorded in the run's ``verl_notes``: verl's critic has its own optimiser, so ``vf_coef`` has
no counterpart (Adam is invariant to the loss scale); verl's ReMax baseline is the greedy answer's score without its
KL term; ``response_length_range`` (SER's LengthSampler) becomes its maximum, a fixed response length; running reward
normalisation advances per batch the reward server scores, not per rollout batch.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import ConfigError
from common.models import resolve_model, split_revision

VERL_VERSION = "0.9.1"
# Files verl loads by path; they import nothing from this repository (verl's workers run in verl's environment).
REWARD_FUNCTION_FILE = Path(__file__).with_name("verl_reward.py")
# Keys whose mapping is one value, set whole: reward_kwargs, which verl's ppo_trainer.yaml does not declare (verl
# reads it with .get), and the optimiser kwargs, declared null; every other key must exist in verl's config.
NEW_KEYS = ("reward.custom_reward_function.reward_kwargs", "actor_rollout_ref.actor.optim.override_optimizer_config",
            "critic.optim.override_optimizer_config")
VERL_SCHEDULERS = ("constant", "cosine")


def passthrough_chat_template(bos_token: bool) -> str:
    """A Jinja chat template that writes each message's content as is (our prompts arrive pre-rendered).

    With ``bos_token`` it starts with the tokenizer's BOS, because ``engine: ours`` prepends BOS when the tokenizer
    adds one (common.train.ppo.encode_prompts) and verl tokenises the template's text without special tokens."""
    bos = "{{ bos_token }}" if bos_token else ""
    return bos + "{% for message in messages %}{{ message['content'] }}{% endfor %}"


@dataclass
class VerlPlan:
    """The verl config (nested, ready for YAML) plus where each key came from and what differs from ours."""

    config: dict[str, Any]
    origin: dict[str, str] = field(default_factory=dict)  # "verl.dotted.key" -> "rl.our_key"
    notes: list[str] = field(default_factory=list)
    total_steps: int = 0
    use_v1_trainer: bool = True

    def flat(self) -> dict[str, Any]:
        return flatten(self.config)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in NEW_KEYS:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = tree
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def critic_path(cfg: Any) -> str:
    if cfg.value_model == "policy":
        return cfg.model
    if cfg.value_model == "reward_model":
        rm = cfg.reward_models[0]
        path = rm["path"] if isinstance(rm, dict) else rm
        if isinstance(rm, dict) and rm.get("adapter"):
            raise ConfigError("rl.value_model: verl loads the critic from a full model folder; merge the reward "
                              "model's LoRA adapter first (python -m common.merge_lora --reward-model)")
        return path
    return cfg.value_model


def translate(cfg: Any, *, train_file: str, n_prompts: int, total_steps: int, reward_url: str, checkpoint_dir: str,
              experiment: str, bos_token: bool) -> VerlPlan:
    """``cfg`` (a PPOConfig or a paper's subclass) -> the verl config that runs the same RL stage."""
    rl: dict[str, Any] = {}
    origin: dict[str, str] = {}
    notes: list[str] = []

    def put(key: str, value: Any, ours: str) -> None:
        rl[key] = value
        origin[key] = f"rl.{ours}"

    def refuse(ours: str, why: str) -> None:
        raise ConfigError(f"rl.{ours}: {why} (engine verl {VERL_VERSION}); set engine: ours for this run")

    if cfg.reward_normalization:
        notes.append("reward_normalization: the reward server keeps the running statistics and advances them per "
                     "batch it scores (concurrent rollouts it gathered), not per rollout batch")
    if not cfg.whiten_advantages:
        refuse("whiten_advantages", "verl always whitens GAE advantages over the batch")
    if cfg.lr_scheduler not in VERL_SCHEDULERS:
        refuse("lr_scheduler", f"{cfg.lr_scheduler!r} is not one of verl's schedulers {list(VERL_SCHEDULERS)}")
    n_gpus = cfg.gpus_per_node * cfg.num_nodes
    per_update = cfg.mini_batch_size * cfg.gradient_accumulation_steps
    for name, value in (("rollout_batch_size", cfg.rollout_batch_size),
                        ("mini_batch_size × gradient_accumulation_steps", per_update)):
        if value % n_gpus:
            refuse(name.split(" ")[0], f"verl splits the {name} = {value} sequences evenly over the {n_gpus} "
                                       "GPUs (gpus_per_node × num_nodes); make it a multiple")
    if (per_update // n_gpus) % cfg.mini_batch_size:
        refuse("mini_batch_size", f"each GPU's share of an update ({per_update // n_gpus} sequences) must be a "
                                  f"multiple of the micro batch mini_batch_size = {cfg.mini_batch_size}")
    if cfg.rollout_gpu_memory_utilization <= 0 or cfg.rollout_gpu_memory_utilization > 1:
        refuse("rollout_gpu_memory_utilization", f"must be in (0, 1], got {cfg.rollout_gpu_memory_utilization}")

    model_keys = ["actor_rollout_ref.model"] + (["critic.model"] if cfg.algorithm == "ppo" else [])

    # --- data: one pre-rendered user turn per prompt (common.verl_engine writes the parquet file)
    put("data.train_files", train_file, "dataset")
    put("data.val_files", train_file, "dataset")  # validation is off; verl still wants a file
    put("data.prompt_key", "prompt", "dataset")
    put("data.max_prompt_length", cfg.max_prompt_length, "max_prompt_length")
    max_new = cfg.max_new_tokens
    if cfg.response_length_range is not None:
        max_new = cfg.response_length_range[1]
        notes.append(f"response_length_range {cfg.response_length_range}: verl samples every step up to "
                     f"{max_new} tokens (ours draws the limit per step)")
    put("data.max_response_length", max_new, "max_new_tokens")
    put("data.train_batch_size", cfg.rollout_batch_size, "rollout_batch_size")
    put("data.seed", cfg.seed, "seed")
    put("data.shuffle", True, "seed")
    put("data.trust_remote_code", cfg.trust_remote_code, "trust_remote_code")

    # --- models
    for key in model_keys:
        # verl loads by hub id or folder: embedded:<name> becomes its prepared folder
        name = cfg.model if key.startswith("actor") else critic_path(cfg)
        hub_id, revision = split_revision(name)
        if revision:  # verl's model.path has no revision: it would load the hub's latest commit, unpinned
            raise ConfigError(f"rl.model {name!r}: engine verl cannot pin a hub revision; download that commit "
                              f"(huggingface-cli download {hub_id} --revision {revision} --local-dir DIR) and set "
                              "the model to DIR, or use engine: ours")
        path = resolve_model(name)
        put(f"{key}.path", path, "model" if key.startswith("actor") else "value_model")
        put(f"{key}.trust_remote_code", cfg.trust_remote_code, "trust_remote_code")
        put(f"{key}.enable_gradient_checkpointing", cfg.gradient_checkpointing, "gradient_checkpointing")
        if cfg.use_lora:
            put(f"{key}.lora_rank", cfg.lora_r, "lora_r")
            put(f"{key}.lora_alpha", cfg.lora_alpha, "lora_alpha")
            targets = cfg.lora_target_modules
            put(f"{key}.target_modules", "all-linear" if targets == ["all-linear"] else list(targets),
                "lora_target_modules")
    put("actor_rollout_ref.model.custom_chat_template", passthrough_chat_template(bos_token), "template")

    # --- optimisation
    def optimiser(section: str, lr: float, lr_key: str) -> None:
        """The actor's and the critic's optimiser settings: one set of our keys for both, as ours uses."""
        if cfg.optimizer == "adafactor":  # verl imports optimizer_impl.optimizer and passes lr, weight_decay + these
            put(f"{section}.optimizer_impl", "transformers.optimization", "optimizer")
            put(f"{section}.optimizer", "Adafactor", "optimizer")
            put(f"{section}.override_optimizer_config",
                {"scale_parameter": False, "relative_step": False, "warmup_init": False}, "optimizer")
        put(f"{section}.lr", lr, lr_key)
        put(f"{section}.weight_decay", cfg.weight_decay, "weight_decay")
        put(f"{section}.lr_scheduler_type", cfg.lr_scheduler, "lr_scheduler")
        put(f"{section}.lr_warmup_steps", cfg.warmup_steps if cfg.warmup_steps else -1, "warmup_steps")
        put(f"{section}.clip_grad", cfg.max_grad_norm, "max_grad_norm")

    optimiser("actor_rollout_ref.actor.optim", cfg.learning_rate, "learning_rate")
    put("actor_rollout_ref.actor.clip_ratio", cfg.cliprange, "cliprange")
    put("actor_rollout_ref.actor.clip_ratio_low", cfg.cliprange, "cliprange")
    put("actor_rollout_ref.actor.clip_ratio_high", cfg.cliprange, "cliprange")
    put("actor_rollout_ref.actor.entropy_coeff", cfg.entropy_coef, "entropy_coef")
    put("actor_rollout_ref.actor.ppo_epochs", cfg.ppo_epochs, "ppo_epochs")
    put("actor_rollout_ref.actor.ppo_mini_batch_size", per_update, "mini_batch_size")
    put("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", cfg.mini_batch_size, "mini_batch_size")
    put("actor_rollout_ref.actor.use_kl_loss", False, "kl_coef")
    put("actor_rollout_ref.actor.shuffle", True, "seed")
    put("actor_rollout_ref.actor.data_loader_seed", cfg.seed, "seed")
    put("actor_rollout_ref.actor.checkpoint.save_contents", ["model", "optimizer", "extra", "hf_model"],
        "save_steps")
    put("actor_rollout_ref.actor.checkpoint.load_contents", ["model", "optimizer", "extra"], "resume")
    put("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", cfg.mini_batch_size, "mini_batch_size")
    put("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", cfg.mini_batch_size, "mini_batch_size")
    for section in ("actor_rollout_ref.actor.fsdp_config", "actor_rollout_ref.ref.fsdp_config"):
        put(f"{section}.seed", cfg.seed, "seed")
        put(f"{section}.param_offload", cfg.fsdp_offload, "fsdp_offload")
    put("actor_rollout_ref.actor.fsdp_config.optimizer_offload", cfg.fsdp_offload, "fsdp_offload")
    if cfg.algorithm == "ppo":
        optimiser("critic.optim", cfg.critic_learning_rate or cfg.learning_rate, "critic_learning_rate")
        put("critic.cliprange_value", cfg.cliprange_value, "cliprange_value")
        put("critic.ppo_micro_batch_size_per_gpu", cfg.mini_batch_size, "mini_batch_size")
        put("critic.data_loader_seed", cfg.seed, "seed")
        put("critic.fsdp.param_offload", cfg.fsdp_offload, "fsdp_offload")
        put("critic.fsdp.optimizer_offload", cfg.fsdp_offload, "fsdp_offload")
        put("critic.fsdp.seed", cfg.seed, "seed")
        notes.append(f"vf_coef {cfg.vf_coef}: verl's critic has its own optimiser, so the value loss is not "
                     "weighted (Adam is invariant to its scale)")

    # --- advantage estimator and the KL penalty in the reward
    put("algorithm.adv_estimator", "gae" if cfg.algorithm == "ppo" else "remax", "algorithm")
    put("algorithm.gamma", cfg.gamma, "gamma")
    put("algorithm.lam", cfg.lam, "lam")
    put("algorithm.use_kl_in_reward", True, "kl_coef")
    put("algorithm.kl_penalty", "kl", "kl_coef")  # log π - log π_ref per token, as ours
    put("algorithm.kl_ctrl.type", "adaptive" if cfg.adaptive_kl else "fixed", "adaptive_kl")
    put("algorithm.kl_ctrl.kl_coef", cfg.kl_coef, "kl_coef")
    put("algorithm.kl_ctrl.target_kl", cfg.kl_target, "kl_target")
    put("algorithm.kl_ctrl.horizon", cfg.kl_horizon, "kl_horizon")
    if cfg.algorithm == "remax":
        notes.append("remax: verl's baseline is the greedy answer's score without its KL term (ours subtracts "
                     "β·KL of the greedy answer too)")

    # --- rollouts (vLLM)
    put("actor_rollout_ref.rollout.name", "vllm", "generation_backend")
    put("actor_rollout_ref.rollout.n", 1, "rollout_batch_size")
    put("actor_rollout_ref.rollout.temperature", cfg.temperature, "temperature")
    put("actor_rollout_ref.rollout.top_p", cfg.top_p, "top_p")
    put("actor_rollout_ref.rollout.top_k", cfg.top_k if cfg.top_k > 0 else -1, "top_k")
    put("actor_rollout_ref.rollout.seed", cfg.seed, "seed")
    put("actor_rollout_ref.rollout.dtype", cfg.dtype, "dtype")
    put("actor_rollout_ref.rollout.tensor_model_parallel_size", cfg.rollout_tensor_parallel,
        "rollout_tensor_parallel")
    put("actor_rollout_ref.rollout.gpu_memory_utilization", cfg.rollout_gpu_memory_utilization,
        "rollout_gpu_memory_utilization")

    # --- our reward through verl's reward workers
    put("reward.reward_manager.name", "naive", "reward_models")
    put("reward.custom_reward_function.path", str(REWARD_FUNCTION_FILE), "reward_models")
    put("reward.custom_reward_function.name", "compute_score", "reward_models")
    put("reward.custom_reward_function.reward_kwargs", {"url": reward_url}, "reward_models")

    # --- trainer: length, checkpoints, logging, cluster
    put("trainer.total_training_steps", total_steps, "total_steps")
    put("trainer.total_epochs", max(1, math.ceil(total_steps * cfg.rollout_batch_size / max(1, n_prompts))),
        "total_steps")
    put("trainer.n_gpus_per_node", cfg.gpus_per_node, "gpus_per_node")
    put("trainer.nnodes", cfg.num_nodes, "num_nodes")
    put("trainer.save_freq", cfg.save_steps if cfg.save_steps > 0 else total_steps, "save_steps")
    put("trainer.max_actor_ckpt_to_keep", cfg.save_total_limit, "save_total_limit")
    put("trainer.max_critic_ckpt_to_keep", cfg.save_total_limit, "save_total_limit")
    put("trainer.resume_mode", "auto" if cfg.resume else "disable", "resume")
    put("trainer.default_local_dir", checkpoint_dir, "output_dir")
    put("trainer.project_name", "rlhf-repro", "output_dir")
    put("trainer.experiment_name", experiment, "output_dir")
    put("trainer.logger", ["console", "file"] + (["wandb"] if cfg.report_to == "wandb" else []), "report_to")
    put("trainer.val_before_train", False, "output_dir")
    put("trainer.test_freq", -1, "output_dir")
    # verl's v1 trainer has no ReMax (the greedy baseline lives in the legacy ray_trainer only)
    use_v1 = cfg.algorithm == "ppo"
    put("trainer.use_v1", use_v1, "algorithm")
    return VerlPlan(config=_nest(rl), origin=origin, notes=notes, total_steps=total_steps, use_v1_trainer=use_v1)


def hydra_document(plan: VerlPlan) -> dict[str, Any]:
    """The YAML verl's ``main_ppo`` reads with ``--config-path DIR --config-name NAME``: verl's own
    ``ppo_trainer`` first, our keys on top."""
    return {"hydra": {"searchpath": ["pkg://verl.trainer.config"]}, "defaults": ["ppo_trainer", "_self_"],
            **copy.deepcopy(plan.config)}
