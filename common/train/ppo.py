"""RL from a reward: PPO (Ouyang et al. 2022 / Ziegler et al. 2019) or ReMax (Li et al. 2023), one stage.

    python -m common.train.ppo --config rllr/configs/llama2.yaml [--section rl] [--key value ...]

Each step: take ``rollout_batch_size`` prompts, sample a response for each with the policy, score the responses with
the reward source (common/rewards.py), then

- PPO: per-token rewards r_t = -β (log π - log π_ref) with the (normalised, clipped) score added at the last token;
  GAE advantages from the critic's values; ``ppo_epochs`` passes of clipped policy + value losses over minibatches;
  β follows the adaptive KL controller (or stays fixed).
- ReMax: also decode the greedy response ŷ; A = R(x, y) - R(x, ŷ) with R = score - β Σ_t (log π - log π_ref);
  loss -A Σ_t log π(y_t). No critic.

The math is in ppo_core.py, the models and checkpoints in ppo_models.py. Logs: ``log.jsonl`` (one record per step),
``metrics.json`` (first/last reward and KL), checkpoints every ``save_steps`` (resume with ``resume: true``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from common.artifacts import RunDir, atomic_write_text, read_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.config import help_meta as _h
from common.data import SOURCE_FORMATS, check_on_bad_row_setting, data_metrics
from common.models import load_tokenizer
from common.train import ppo_core as core
from common.train import ppo_models as pm

OPTIMIZERS = ("adamw", "adafactor")


@dataclass
class PPOConfig:
    """Settings of the ``rl`` stage. Defaults marked [CODE] are TRL 0.7's PPOConfig defaults (RLLR's and SER's stack)."""

    # --- engine
    engine: str = field(default="ours", metadata=_h(
        "ours (this module: one process, CPU / one GPU) | verl (FSDP + vLLM rollouts on Ray, several GPUs and "
        "nodes; common/train/verl_engine.py)"))
    # --- model and data
    model: str = field(default="", metadata=_h("policy init (hub id, folder, embedded:<name>); also the reference"))
    template: str = field(default="tokenizer", metadata=_h("chat template (common/templates.py) for prompts"))
    system: str | None = field(default=None, metadata=_h("system message replacing the template's default"))
    trust_remote_code: bool = field(default=False, metadata=_h("allow custom model code (chatglm3, baichuan2)"))
    dataset: str = field(default="", metadata=_h("prompt records: local file/folder or hub id (common/data.py)"))
    dataset_split: str = field(default="train", metadata=_h("split (hub) or file stem (folder)"))
    dataset_subset: str | None = field(default=None, metadata=_h("hub config name"))
    dataset_columns: dict[str, str] | None = field(default=None, metadata=_h("canonical name -> source column"))
    dataset_limit: int | None = field(default=None, metadata=_h("seeded random subset of this many prompts"))
    dataset_source_format: str = field(default="canonical", metadata=_h(
        "canonical | hh_rlhf (HH-RLHF transcript pairs; the prompt is the dialogue before the final reply)"))
    dataset_on_bad_row: str = field(default="skip", metadata=_h(
        "dataset_source_format hh_rlhf: skip a malformed row (counted per reason in metrics.json: data_rows, "
        "data_skipped) or error (stop at the first, naming file:row)"))
    output_dir: str = field(default="runs/rl", metadata=_h("run folder (log.jsonl, checkpoints/, policy/)"))
    seed: int = field(default=42, metadata=_h("seed for sampling, prompt order and init"))
    algorithm: str = field(default="ppo", metadata=_h("ppo | remax (RLDF's code runs ReMax)"))
    # --- reward
    reward_models: list[dict] = field(default_factory=list, metadata=_h(
        "reward models: [{name, path, adapter?, template?, max_length?, batch_size?}]"))
    reward_function: str | None = field(default=None, metadata=_h("'package.module:function' reward (source "
                                                                  "named 'function')"))
    reward_function_kwargs: dict = field(default_factory=dict, metadata=_h("keyword arguments for reward_function"))
    reward_combine: str = field(default="sum", metadata=_h("combiner of several sources (common.rewards registry "
                                                           "name or 'module:function')"))
    reward_combine_kwargs: dict = field(default_factory=dict, metadata=_h("keyword arguments for the combiner "
                                                                          "(e.g. tau for rllr_mixed)"))
    reward_normalization: bool = field(default=False, metadata=_h("score <- (score - running mean) / running std"))
    reward_clip: float | None = field(default=None, metadata=_h("clip the score to [-c, c] after normalising"))
    # --- optimisation
    learning_rate: float = field(default=1.41e-5, metadata=_h("actor learning rate [CODE]"))
    critic_learning_rate: float | None = field(default=None, metadata=_h("critic learning rate (None: "
                                                                         "learning_rate)"))
    weight_decay: float = field(default=0.0, metadata=_h("weight decay (actor and critic)"))
    optimizer: str = field(default="adamw", metadata=_h(
        "adamw | adafactor (transformers' Adafactor at a fixed lr: relative_step, scale_parameter and warmup_init "
        "off, as SER's upstream ppo.py builds it; factored second moments, no first moment)"))
    lr_scheduler: str = field(default="constant", metadata=_h("transformers scheduler name: constant, linear, "
                                                              "cosine..."))
    warmup_steps: int = field(default=0, metadata=_h("scheduler warmup, in optimiser steps"))
    max_grad_norm: float = field(default=1.0, metadata=_h("gradient clipping per model"))
    value_model: str = field(default="policy", metadata=_h("critic init: policy (new head) | reward_model (first "
                                                           "RM, as RLLR) | a path"))
    # --- KL penalty
    kl_coef: float = field(default=0.2, metadata=_h("initial β of the per-token KL penalty [CODE]"))
    adaptive_kl: bool = field(default=True, metadata=_h("adapt β towards kl_target (Ziegler et al.); false = "
                                                        "fixed"))
    kl_target: float = field(default=6.0, metadata=_h("target of the summed per-sequence KL [CODE]"))
    kl_horizon: int = field(default=10000, metadata=_h("adaptive controller horizon, in sequences [CODE]"))
    # --- PPO
    whiten_advantages: bool = field(default=True, metadata=_h("normalise advantages over the rollout batch"))
    gamma: float = field(default=1.0, metadata=_h("discount [CODE]"))
    lam: float = field(default=0.95, metadata=_h("GAE λ [CODE]"))
    cliprange: float = field(default=0.2, metadata=_h("policy ratio clip ε [CODE]"))
    cliprange_value: float = field(default=0.2, metadata=_h("value clip ε_v [CODE]"))
    vf_coef: float = field(default=0.1, metadata=_h("weight of the value loss [CODE]"))
    entropy_coef: float = field(default=0.0, metadata=_h("entropy bonus weight (0 = none, as TRL)"))
    ppo_epochs: int = field(default=4, metadata=_h("passes over each rollout batch [CODE]; ReMax: use 1"))
    rollout_batch_size: int = field(default=8, metadata=_h("prompts sampled per step"))
    mini_batch_size: int = field(default=1, metadata=_h("sequences per forward/backward"))
    gradient_accumulation_steps: int = field(default=1, metadata=_h("minibatches per optimiser step"))
    # --- generation
    max_prompt_length: int = field(default=512, metadata=_h("longer prompts (in tokens) are dropped and counted"))
    max_new_tokens: int = field(default=128, metadata=_h("response length limit"))
    response_length_range: list[int] | None = field(default=None, metadata=_h(
        "[min, max]: draw max_new_tokens uniformly per step (SER's LengthSampler); overrides max_new_tokens"))
    temperature: float = field(default=1.0, metadata=_h("sampling temperature (also scales the trained logits)"))
    top_p: float = field(default=1.0, metadata=_h("nucleus sampling"))
    top_k: int = field(default=0, metadata=_h("top-k sampling (0 = off)"))
    generation_backend: str = field(default="hf", metadata=_h("hf (vllm inside RL is not implemented yet)"))
    # --- length of the run
    total_steps: int | None = field(default=None, metadata=_h("RL steps; None: total_episodes, else one pass over "
                                                              "the prompts"))
    total_episodes: int | None = field(default=None, metadata=_h("prompts to sample in all (steps = episodes / "
                                                                 "rollout_batch_size)"))
    prompt_epochs: int = field(default=1, metadata=_h("passes over the prompts when neither total_steps nor "
                                                      "total_episodes is set (SER's upstream: 4)"))
    # --- model form
    use_lora: bool = field(default=False, metadata=_h("LoRA policy (reference = adapter disabled) and LoRA critic"))
    lora_r: int = field(default=16, metadata=_h("LoRA rank"))
    lora_alpha: int = field(default=32, metadata=_h("LoRA alpha"))
    lora_target_modules: list[str] = field(default_factory=lambda: ["q_proj", "v_proj"], metadata=_h(
        "modules to adapt, or [all-linear]"))
    gradient_checkpointing: bool = field(default=False, metadata=_h("trade compute for memory"))
    dtype: str = field(default="float32", metadata=_h("float32 | bfloat16 | float16"))
    device: str = field(default="auto", metadata=_h("auto (cuda if present) | cpu | cuda:N"))
    # --- bookkeeping
    save_steps: int = field(default=100, metadata=_h("checkpoint every N steps (0 = only at the end)"))
    save_total_limit: int = field(default=2, metadata=_h("checkpoints kept"))
    resume: bool = field(default=False, metadata=_h("continue from the latest checkpoint in output_dir"))
    overwrite: bool = field(default=False, metadata=_h("replace a previous run in output_dir"))
    report_to: str = field(default="none", metadata=_h("none | wandb (offline unless WANDB_MODE says otherwise)"))
    logging_steps: int = field(default=1, metadata=_h("console/wandb every N steps (log.jsonl gets every step)"))
    # --- verl engine only (engine: verl); everything above is translated to verl's keys by common.verl_bridge
    gpus_per_node: int = field(default=1, metadata=_h("verl: GPUs per node (NUM_GPUS)"))
    num_nodes: int = field(default=1, metadata=_h("verl: nodes of the Ray cluster (start Ray on each node first)"))
    rollout_tensor_parallel: int = field(default=1, metadata=_h("verl: vLLM tensor-parallel size of the rollouts"))
    rollout_gpu_memory_utilization: float = field(default=0.5, metadata=_h(
        "verl: share of each GPU vLLM may take for rollouts"))
    fsdp_offload: bool = field(default=False, metadata=_h("verl: offload FSDP parameters and optimizer state to CPU"))
    reward_device: str = field(default="auto", metadata=_h(
        "verl: device of the reward server: auto (cuda:0 if present, else cpu) | cpu | cuda:N | gpus:0,1,... (an RM "
        "too big for one card, sharded over those cards)"))
    reward_host: str = field(default="127.0.0.1", metadata=_h(
        "verl: address the reward server listens on and verl's reward workers call (a node IP for several nodes)"))
    verl_python: str | None = field(default=None, metadata=_h(
        "verl: interpreter of the verl environment (default $VERL_PYTHON, else .venv-verl/bin/python)"))
    verl_dry_run: bool = field(default=False, metadata=_h(
        "verl: write the data, reward spec and verl config, check them with verl, then stop"))
    verl_overrides: list[str] = field(default_factory=list, metadata=_h(
        "verl: extra hydra overrides ('section.key=value'), applied last and validated like the rest"))

    def __post_init__(self):
        def bad(key: str, msg: str):
            raise ConfigError(f"rl.{key}: {msg}")

        if not self.model:
            bad("model", "required: the policy to train (hub id, folder or embedded:<name>)")
        if not self.dataset:
            bad("dataset", "required: the prompt records (local file or hub id)")
        if self.dataset_source_format not in SOURCE_FORMATS:
            bad("dataset_source_format", f"{self.dataset_source_format!r} is not one of {list(SOURCE_FORMATS)}")
        check_on_bad_row_setting(self.dataset_on_bad_row, "rl.dataset_on_bad_row")
        if self.engine not in ("ours", "verl"):
            bad("engine", f"{self.engine!r} is not one of ['ours', 'verl']")
        if self.algorithm not in ("ppo", "remax"):
            bad("algorithm", f"{self.algorithm!r} is not one of ['ppo', 'remax']")
        if self.value_model == "reward_model" and not self.reward_models and self.algorithm == "ppo":
            bad("value_model", "'reward_model' needs at least one entry in reward_models")
        if self.response_length_range is not None:
            lo_hi = self.response_length_range
            if len(lo_hi) != 2 or not 1 <= lo_hi[0] <= lo_hi[1]:
                bad("response_length_range", f"expected [min, max] with 1 <= min <= max, got {lo_hi}")
        if self.optimizer not in OPTIMIZERS:
            bad("optimizer", f"{self.optimizer!r} is not one of {list(OPTIMIZERS)}")
        for key in ("rollout_batch_size", "mini_batch_size", "gradient_accumulation_steps", "ppo_epochs",
                    "max_new_tokens", "max_prompt_length", "logging_steps", "kl_horizon", "prompt_epochs"):
            if getattr(self, key) < 1:
                bad(key, f"must be >= 1, got {getattr(self, key)}")
        if self.rollout_batch_size % self.mini_batch_size:
            bad("mini_batch_size", f"{self.mini_batch_size} does not divide rollout_batch_size "
                                   f"{self.rollout_batch_size}")
        if self.total_steps is not None and self.total_episodes is not None:
            bad("total_steps", "set total_steps or total_episodes, not both")
        for key in ("total_steps", "total_episodes"):  # 0 would save the untrained policy as a finished run
            if getattr(self, key) is not None and getattr(self, key) < 1:
                bad(key, f"must be >= 1, or null, got {getattr(self, key)}")
        if self.temperature <= 0:
            bad("temperature", f"must be > 0 for sampling, got {self.temperature}")
        if self.kl_target <= 0:
            bad("kl_target", f"must be > 0, got {self.kl_target}")
        if self.generation_backend != "hf":
            bad("generation_backend", f"{self.generation_backend!r}: only 'hf' generates inside RL for now")
        if self.report_to not in ("none", "wandb"):
            bad("report_to", f"{self.report_to!r} is not one of ['none', 'wandb']")
        if self.resume and self.overwrite:
            bad("resume", "resume and overwrite contradict each other; pick one")


# ---------------------------------------------------------------------------------------------------------------
# Prompts


def encode_prompts(records: list[dict], tokenizer, cfg: PPOConfig) -> tuple[list[dict], list[list[int]]]:
    """Rendered, tokenised prompts no longer than max_prompt_length (the rest are dropped). BOS follows the
    same rule as common.templates: prepended when the tokenizer adds one and the template did not write it."""
    from common.templates import render_prompt

    bos = tokenizer.bos_token_id
    adds_bos = bos is not None and tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [bos]
    kept, ids = [], []
    for rec in records:
        tokens = tokenizer(render_prompt(rec["prompt"], cfg.template, tokenizer, cfg.system),
                           add_special_tokens=False)["input_ids"]
        if adds_bos and tokens[:1] != [bos]:
            tokens = [bos, *tokens]
        if len(tokens) <= cfg.max_prompt_length:
            kept.append(rec)
            ids.append(tokens)
    if not kept:
        raise UserError(f"rl.max_prompt_length: all {len(records)} prompts of {cfg.dataset} are longer than "
                        f"{cfg.max_prompt_length} tokens; raise it")
    return kept, ids


def load_prompts(cfg: PPOConfig, tokenizer, stats: dict) -> tuple[list[dict], list[list[int]], int]:
    """The RL prompt records (both engines): loaded, rendered, tokenised and length-filtered; also how many were
    dropped as too long. ``stats`` receives the loader's row counts (common.data.load_records)."""
    from common.data import load_records

    records = load_records(cfg.dataset, "prompt", split=cfg.dataset_split, subset=cfg.dataset_subset,
                           columns=cfg.dataset_columns, limit=cfg.dataset_limit, seed=cfg.seed,
                           source_format=cfg.dataset_source_format, on_bad_row=cfg.dataset_on_bad_row,
                           stats=stats)
    n_loaded = len(records)
    records, prompt_ids = encode_prompts(records, tokenizer, cfg)
    return records, prompt_ids, n_loaded - len(records)


def left_pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in seqs])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    return ids, mask  # (B, P) each


def batch_indices(n: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Prompts of ``step``: a fresh seeded permutation per pass over the data, so resuming needs no sampler state."""
    out = []
    for pos in range(step * batch_size, (step + 1) * batch_size):
        epoch, i = divmod(pos, n)
        out.append(torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))[i].item())
    return out


# ---------------------------------------------------------------------------------------------------------------
# One step


@dataclass
class Rollout:
    query_ids: torch.Tensor  # (B, P) left-padded prompt tokens
    query_mask: torch.Tensor  # (B, P)
    response_ids: torch.Tensor  # (B, T) sampled response; pad (= EOS) after its end
    response_mask: torch.Tensor  # (B, T) 1 up to and including the first EOS
    logprobs: torch.Tensor  # (B, T) log π_old(y_t | x, y_<t)
    advantages: torch.Tensor  # PPO: (B, T) GAE; ReMax: (B,) R(x, y) - R(x, ŷ)
    values: torch.Tensor | None = None  # (B, T) V_old(x, y_<t), PPO only
    returns: torch.Tensor | None = None  # (B, T) value targets, PPO only

    def rows(self, idx: list[int]) -> Rollout:
        return Rollout(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[idx]
                          for f in dataclasses.fields(self)})


def build_optimizer(params: list[torch.Tensor], lr: float, cfg: PPOConfig) -> torch.optim.Optimizer:
    """AdamW, or Adafactor (Shazeer & Stern 2018) at a fixed ``lr``: relative_step, scale_parameter and warmup_init
    off so the scheduler alone sets the step size, as SER's upstream builds it ([CODE] microsoft/DKI_LLM
    SER/ppo/ppo.py)."""
    if cfg.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(params, lr=lr, weight_decay=cfg.weight_decay, scale_parameter=False, relative_step=False,
                         warmup_init=False)
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


class MasterWeights:
    """fp32 master copies of a model's trainable bf16/fp16 parameters: the optimiser steps these, never the
    half-precision weights themselves (AdamW on bf16 loses every update below bf16's resolution, 2^-8 relative:
    lr · update ≈ 1e-5 on a weight of 0.02 rounds straight back to the old value, and its moments are bf16 too).

    Why master copies rather than fp32 weights + torch.autocast: the models stay in cfg.dtype, so sampling, π_old,
    π_ref and the training forward all run the same half-precision network (π = π_ref exactly at step 0, generation
    at half-precision speed, the reference needs no fp32 copy) and only the optimiser changes; memory per trainable
    parameter is about the same either way (2 model + 4 master + 4 grad + 8 Adam bytes, vs 4 + 4 + 8).

    Each backward's half-precision gradient is added into the master's fp32 ``.grad`` by a hook the moment it is
    accumulated, and the half gradient freed, so gradient accumulation and clipping happen in fp32. After the
    optimiser step ``copy_to_model`` rounds the masters back into the model. Trainable parameters already in fp32
    (LoRA adapters: PEFT keeps them in float32 over a half-precision base) are stepped directly, without a copy.
    float16 has no loss scaling here: prefer bfloat16.
    """

    HALF = (torch.bfloat16, torch.float16)

    def __init__(self, model: torch.nn.Module):
        self.params: list[torch.Tensor] = []  # what the optimiser steps, in model.parameters() order
        self.pairs: list[tuple[torch.nn.Parameter, torch.Tensor]] = []  # (half-precision param, its fp32 master)
        for p in model.parameters():
            if not p.requires_grad:
                continue
            if p.dtype in self.HALF:
                master = p.detach().float().requires_grad_(True)
                p.register_post_accumulate_grad_hook(self._accumulate_into(master))
                self.pairs.append((p, master))
                self.params.append(master)
            else:
                self.params.append(p)

    @staticmethod
    def _accumulate_into(master: torch.Tensor):
        def hook(p: torch.Tensor) -> None:
            if master.grad is None:
                master.grad = p.grad.float()
            else:
                master.grad.add_(p.grad)
            p.grad = None

        return hook

    @torch.no_grad()
    def copy_to_model(self) -> None:
        for p, master in self.pairs:
            p.copy_(master)

    def state_dict(self) -> list[torch.Tensor]:
        return [master for _, master in self.pairs]

    @torch.no_grad()
    def load_state_dict(self, masters: list[torch.Tensor]) -> None:
        if len(masters) != len(self.pairs):
            raise UserError(f"checkpoint holds {len(masters)} master weights, the model has {len(self.pairs)} "
                            "half-precision trainable parameters: it was written by a different model or dtype")
        for (_, master), saved in zip(self.pairs, masters):
            master.copy_(saved)
        self.copy_to_model()


class PPOTrainer:
    def __init__(self, cfg: PPOConfig, tokenizer, policy, ref, critic, reward_source, device: torch.device):
        self.cfg, self.tok, self.policy, self.ref, self.critic = cfg, tokenizer, policy, ref, critic
        self.reward_source, self.device = reward_source, device
        eos = {tokenizer.eos_token_id}
        gen_eos = pm.unwrap(policy).generation_config.eos_token_id
        eos.update(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
        self.eos_ids = sorted(eos)  # Llama-3 ends a turn with <|eot_id|>, not its EOS
        if cfg.adaptive_kl:
            self.kl_ctl = core.AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
        else:
            self.kl_ctl = core.FixedKLController(cfg.kl_coef)
        self.score_stats = core.RunningMoments()

    def generate(self, query_ids, query_mask, max_new_tokens: int, greedy: bool = False):
        cfg = self.cfg
        resp = pm.hf_generate(self.policy, query_ids, query_mask, max_new_tokens=max_new_tokens, greedy=greedy,
                              temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                              pad_token_id=self.tok.pad_token_id, eos_ids=self.eos_ids)
        return resp, pm.response_mask_from_eos(resp, self.eos_ids)

    @torch.no_grad()
    def logprobs(self, q, qm, r, rm, reference: bool = False) -> torch.Tensor:
        """log π (or log π_ref) of each response token, in minibatches. -> (B, T)"""
        out = []
        for i in range(0, q.shape[0], self.cfg.mini_batch_size):
            s = slice(i, i + self.cfg.mini_batch_size)
            model = self.ref if (reference and self.ref is not None) else self.policy
            with pm.reference_context(self.policy, self.ref) if reference else contextlib.nullcontext():
                logits = pm.response_logits(model, q[s], qm[s], r[s], rm[s], self.cfg.temperature)
            out.append(core.logprobs_from_logits(logits, r[s]))
        return torch.cat(out)

    def decode(self, r, rm) -> list[str]:
        return [self.tok.decode(row[: int(n)], skip_special_tokens=True) for row, n in zip(r, rm.sum(-1))]

    def score(self, records: list[dict], texts: list[str], update_stats: bool = True):
        """Raw scores (B,), processed scores (normalised, clipped) (B,), and per-source means."""
        raw = self.reward_source.score([r["prompt"] for r in records], texts, records).float()
        parts = {f"reward/{k}": v.mean().item() for k, v in getattr(self.reward_source, "last_components", {}).items()}
        scores = raw
        if self.cfg.reward_normalization:
            if update_stats:
                self.score_stats.update(raw)
            scores = self.score_stats.normalise(raw)
        if self.cfg.reward_clip is not None:
            scores = scores.clamp(-self.cfg.reward_clip, self.cfg.reward_clip)
        return raw, scores.to(self.device), parts

    def step(self, records: list[dict], prompt_ids: list[list[int]], max_new_tokens: int) -> dict[str, float]:
        cfg = self.cfg
        q, qm = (t.to(self.device) for t in left_pad(prompt_ids, self.tok.pad_token_id))
        r, rm = self.generate(q, qm, max_new_tokens)
        logprobs = self.logprobs(q, qm, r, rm)
        ref_logprobs = self.logprobs(q, qm, r, rm, reference=True)
        raw, scores, stats = self.score(records, self.decode(r, rm))
        beta = self.kl_ctl.value
        kl = ((logprobs - ref_logprobs) * rm).sum(-1)  # (B,)
        stats.update({"reward": raw.mean().item(), "reward_std": raw.std().item() if len(raw) > 1 else 0.0,
                      "score": scores.mean().item(), "kl": kl.mean().item(), "kl_coef": beta,
                      "response_length": rm.sum(-1).float().mean().item(), "max_new_tokens": max_new_tokens})
        if cfg.algorithm == "ppo":
            with torch.no_grad():
                values = torch.cat([pm.response_values(self.critic, q[s], qm[s], r[s], rm[s]) for s in
                                    _slices(q.shape[0], cfg.mini_batch_size)])
            rewards, _ = core.kl_penalised_rewards(scores, logprobs, ref_logprobs, rm, beta)
            advantages, returns = core.gae_advantages(rewards, values, rm, cfg.gamma, cfg.lam)
            if cfg.whiten_advantages:
                advantages = core.masked_whiten(advantages, rm)
            stats["non_score_reward"] = (-beta * kl).mean().item()
            stats["value_mean"] = core.masked_mean(values, rm).item()
            rollout = Rollout(q, qm, r, rm, logprobs, advantages, values, returns)
        else:
            g, gm = self.generate(q, qm, max_new_tokens, greedy=True)
            greedy_raw, greedy_scores, _ = self.score(records, self.decode(g, gm), update_stats=False)
            g_kl_terms = (self.logprobs(q, qm, g, gm), self.logprobs(q, qm, g, gm, reference=True), gm)
            ret_sample = core.remax_returns(scores, logprobs, ref_logprobs, rm, beta)
            ret_greedy = core.remax_returns(greedy_scores, *g_kl_terms, beta)
            stats.update({"reward_greedy": greedy_raw.mean().item(), "return_sample": ret_sample.mean().item(),
                          "return_greedy": ret_greedy.mean().item()})
            rollout = Rollout(q, qm, r, rm, logprobs, ret_sample - ret_greedy)
        stats.update(self.update(rollout))
        self.kl_ctl.update(stats["kl"], cfg.rollout_batch_size)
        return stats

    def update(self, ro: Rollout) -> dict[str, float]:
        """ppo_epochs passes of shuffled minibatches; an optimiser step every gradient_accumulation_steps."""
        cfg, acc = self.cfg, []
        n_micro = 0
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(ro.query_ids.shape[0]).tolist()
            for s in _slices(len(order), cfg.mini_batch_size):
                mb = ro.rows(order[s])
                logits = pm.response_logits(self.policy, mb.query_ids, mb.query_mask, mb.response_ids,
                                            mb.response_mask, cfg.temperature)  # (b, T, V)
                logprobs = core.logprobs_from_logits(logits, mb.response_ids)
                entropy = core.masked_mean(core.entropy_from_logits(logits), mb.response_mask)
                st = {"entropy": entropy.item()}
                if cfg.algorithm == "ppo":
                    pg_loss, pst = core.ppo_policy_loss(logprobs, mb.logprobs, mb.advantages, mb.response_mask,
                                                        cfg.cliprange)
                    values = pm.response_values(self.critic, mb.query_ids, mb.query_mask, mb.response_ids,
                                                mb.response_mask)
                    vf_loss = core.ppo_value_loss(values, mb.values, mb.returns, mb.response_mask,
                                                  cfg.cliprange_value)
                    loss = pg_loss + cfg.vf_coef * vf_loss
                    st.update(pst, value_loss=vf_loss.item())
                else:
                    pg_loss = core.remax_loss(logprobs, mb.advantages, mb.response_mask)
                    loss = pg_loss
                loss = loss - cfg.entropy_coef * entropy
                (loss / cfg.gradient_accumulation_steps).backward()
                st["policy_loss"] = pg_loss.item()
                acc.append(st)
                n_micro += 1
                if n_micro % cfg.gradient_accumulation_steps == 0:
                    self.optimizer_step()
        if n_micro % cfg.gradient_accumulation_steps:
            self.optimizer_step()
        out = {k: sum(d[k] for d in acc) / len(acc) for k in acc[0]}
        out["lr"] = self.schedulers[0].get_last_lr()[0]
        return out

    def setup_optimizers(self, total_steps: int) -> None:
        from transformers import get_scheduler

        cfg = self.cfg
        micro = cfg.ppo_epochs * math.ceil(cfg.rollout_batch_size / cfg.mini_batch_size)
        n_opt = total_steps * math.ceil(micro / cfg.gradient_accumulation_steps)
        groups = [(self.policy, cfg.learning_rate)]
        if self.critic is not None:
            groups.append((self.critic, cfg.critic_learning_rate or cfg.learning_rate))
        self.masters = [MasterWeights(m) for m, _ in groups]  # fp32 copies of bf16/fp16 weights (see the class)
        self.optimizers = [build_optimizer(mw.params, lr, cfg) for mw, (_, lr) in zip(self.masters, groups)]
        self.schedulers = [get_scheduler(cfg.lr_scheduler, o, num_warmup_steps=cfg.warmup_steps,
                                         num_training_steps=n_opt) for o in self.optimizers]

    def optimizer_step(self) -> None:
        for mw, opt, sched in zip(self.masters, self.optimizers, self.schedulers):
            torch.nn.utils.clip_grad_norm_(mw.params, self.cfg.max_grad_norm)  # fp32 grads
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            mw.copy_to_model()

    def state_dict(self, step: int) -> dict[str, Any]:
        # master_weights: the checkpointed models are the rounded half-precision copies; resuming from them alone
        # would drop the masters' low bits, so the fp32 masters travel with the optimiser state.
        return {"step": step, "kl_ctl": self.kl_ctl.state_dict(), "score_stats": self.score_stats.state_dict(),
                "optimizers": [o.state_dict() for o in self.optimizers],
                "schedulers": [s.state_dict() for s in self.schedulers],
                "master_weights": [mw.state_dict() for mw in self.masters],
                "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}

    def load_state_dict(self, state: dict[str, Any]) -> int:
        self.kl_ctl.load_state_dict(state["kl_ctl"])
        self.score_stats.load_state_dict(state["score_stats"])
        for obj, sd in zip(self.optimizers + self.schedulers, state["optimizers"] + state["schedulers"]):
            obj.load_state_dict(sd)  # an older checkpoint's bf16 Adam moments are cast to the fp32 masters' dtype
        # older checkpoints have no master weights: the masters keep the values read from the checkpoint's models
        for mw, masters in zip(self.masters, state.get("master_weights") or []):
            mw.load_state_dict(masters)
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return int(state["step"])


def _slices(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


# ---------------------------------------------------------------------------------------------------------------
# The run


def _prepare_output(cfg: PPOConfig, out: Path, total_steps: int) -> Path | None:
    """The checkpoint to resume from (or None); refuse to mix a new run into an unfinished one. Called before
    ``RunDir.start``, so a refusal leaves the run folder as it was.

    A finished run (metrics.json) is resumed only to train it further (``total_steps`` above the steps it ran); its
    metrics.json is then kept as ``metrics-step-N.json``. Resuming it to the steps it already ran is a one-line error
    (it would only rewrite its results). Half-written checkpoints are skipped, named, and set aside."""
    from common.train import finished_run_error, set_aside

    complete, incomplete = pm.scan_checkpoints(out)
    if cfg.overwrite:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        (out / "log.jsonl").unlink(missing_ok=True)
        (out / "metrics.json").unlink(missing_ok=True)  # a kill during the new run must not look finished
        return None
    metrics_path = out / "metrics.json"
    if metrics_path.is_file():
        if not cfg.resume:
            raise finished_run_error(out, resume=False)
        try:
            ran = int(json.loads(metrics_path.read_text()).get("steps", 0))
        except (ValueError, TypeError, AttributeError):
            ran = 0
        if total_steps <= ran:
            raise UserError(f"{out} holds a finished run ({ran} steps, metrics.json) and total_steps is {total_steps}:"
                            " there is nothing to resume. Raise total_steps to train it further, pass --overwrite true "
                            "to train it again from the start, or choose another output_dir")
        kept = out / f"metrics-step-{ran}.json"
        atomic_write_text(kept, metrics_path.read_text())
        print(f"note: rl: extending the finished run {out} from step {ran} to {total_steps}; its metrics.json is "
              f"kept as {kept.name}", flush=True)
    if (complete or incomplete) and not cfg.resume:
        name = (complete or [p for p, _ in incomplete])[-1].name
        raise UserError(f"{out} holds checkpoints of an earlier run ({name}); pass --resume true to "
                        "continue it or --overwrite true to start again")
    if not cfg.resume:
        return None
    for path, why in incomplete:
        moved = set_aside(path)
        print(f"note: rl: skipping the incomplete checkpoint {path.name} ({why}); kept as {moved.name}", flush=True)
    return complete[-1] if complete else None


def _total_steps(cfg: PPOConfig, n_prompts: int) -> int:
    if cfg.total_steps is not None:
        return cfg.total_steps
    episodes = cfg.total_episodes if cfg.total_episodes is not None else n_prompts * cfg.prompt_epochs
    return max(1, math.ceil(episodes / cfg.rollout_batch_size))


def train_ppo(cfg: PPOConfig, reward_source: Any = None) -> dict[str, Any]:
    """Run the stage; ``reward_source`` (a common.rewards.RewardSource) replaces the config's reward fields."""
    from tqdm.auto import tqdm

    from common.rewards import build_reward_source

    if reward_source is None and not cfg.reward_models and not cfg.reward_function:
        raise ConfigError("rl.reward_models: no reward source; set reward_models and/or reward_function")
    if cfg.engine == "verl":
        if reward_source is not None:
            raise ConfigError("rl.engine: verl scores through the reward server, which builds the reward from the "
                              "config; an in-process reward_source needs engine: ours")
        from common.train.verl_engine import train_verl

        return train_verl(cfg)
    out = Path(cfg.output_dir)
    if out.exists() and not out.is_dir():
        raise UserError(f"output_dir {out} is a file, not a folder; choose another output_dir")
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.device == "auto" else cfg.device)

    tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code, padding_side="left")
    data_stats: dict[str, Any] = {}
    records, prompt_ids, dropped = load_prompts(cfg, tokenizer, data_stats)
    total_steps = _total_steps(cfg, len(records))
    pm.check_critic_vocabulary(cfg, tokenizer)
    resume_dir = _prepare_output(cfg, out, total_steps)  # before RunDir.start: a refusal changes nothing
    run = RunDir.start(out, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)

    policy, ref = pm.build_policy(cfg, resume_dir)
    critic = pm.build_critic(cfg, tokenizer.pad_token_id, resume_dir) if cfg.algorithm == "ppo" else None
    for m in (policy, ref, critic):
        if m is not None:
            m.to(device)
    reward_source = reward_source or build_reward_source(
        {"reward_models": cfg.reward_models, "reward_function": cfg.reward_function,
         "reward_function_kwargs": cfg.reward_function_kwargs, "combine": cfg.reward_combine,
         "combine_kwargs": cfg.reward_combine_kwargs},
        device=device, dtype=cfg.dtype, default_template=cfg.template, trust_remote_code=cfg.trust_remote_code)
    trainer = PPOTrainer(cfg, tokenizer, policy.train(), ref, critic.train() if critic else None, reward_source,
                         device)
    trainer.setup_optimizers(total_steps)

    start = 0
    log_path = out / "log.jsonl"
    if resume_dir is not None:
        start = trainer.load_state_dict(torch.load(resume_dir / "trainer_state.pt", weights_only=False))
        kept = [r for r in read_jsonl(log_path, tolerate_torn_tail=True) if r["step"] <= start] \
            if log_path.exists() else []
        atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in kept))
        print(f"resuming from {resume_dir} at step {start}/{total_steps}", flush=True)

    wandb_run = _init_wandb(cfg) if cfg.report_to == "wandb" else None
    models = {"policy": policy, **({"critic": critic} if critic is not None else {})}
    bar = tqdm(range(start, total_steps), desc=f"{cfg.algorithm}", initial=start, total=total_steps)
    for step in bar:
        idx = batch_indices(len(records), cfg.rollout_batch_size, step, cfg.seed)
        max_new = cfg.max_new_tokens
        if cfg.response_length_range:
            max_new = random.Random(cfg.seed * 1_000_003 + step).randint(*cfg.response_length_range)
        stats = trainer.step([records[i] for i in idx], [prompt_ids[i] for i in idx], max_new)
        stats = {"step": step + 1, **stats}
        with log_path.open("a") as fh:
            fh.write(json.dumps(stats) + "\n")
        if (step + 1) % cfg.logging_steps == 0:
            bar.set_postfix(reward=f"{stats['reward']:.3f}", kl=f"{stats['kl']:.3f}", beta=f"{stats['kl_coef']:.3g}")
            if wandb_run is not None:
                wandb_run.log(stats, step=step + 1)
        if (cfg.save_steps and (step + 1) % cfg.save_steps == 0) or step + 1 == total_steps:
            pm.save_checkpoint(out, step + 1, models, trainer.state_dict(step + 1), cfg.save_total_limit)

    _save_final(out, policy, tokenizer)
    log = read_jsonl(log_path)
    metrics = {
        "algorithm": cfg.algorithm, "steps": len(log), "num_prompts": len(records), "dropped_prompts": dropped,
        "reward_first": log[0]["reward"], "reward_last": log[-1]["reward"],
        "kl_last": log[-1]["kl"], "kl_coef_first": log[0]["kl_coef"], "kl_coef_last": trainer.kl_ctl.value,
        "response_length_last": log[-1]["response_length"],
        **data_metrics(data_stats),  # prompt rows read, and HH-RLHF rows skipped per reason
    }
    if wandb_run is not None:
        wandb_run.finish()
    return run.finish(metrics, key_metric="reward_last")


def _save_final(out: Path, policy, tokenizer) -> None:
    """The trained policy (adapter with LoRA: merge it with common.merge_lora) in output_dir/policy, atomically."""
    tmp, final = out / ".policy.tmp", out / "policy"
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)


def _init_wandb(cfg: PPOConfig):
    import os

    try:
        import wandb
    except ImportError:
        raise UserError("rl.report_to: wandb is not installed (pip install wandb) or set report_to: none") from None
    os.environ.setdefault("WANDB_MODE", "offline")
    return wandb.init(project="rlhf-repro", dir=cfg.output_dir, config=dataclasses.asdict(cfg))


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(PPOConfig, train_ppo, "rl", "PPO or ReMax from a reward model or reward function.", argv)


if __name__ == "__main__":
    main()
