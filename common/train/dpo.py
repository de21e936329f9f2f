"""DPO stage: direct preference optimisation of a causal LM against a frozen reference, with optional per-pair terms.

    python -m common.train.dpo --config pcrm/configs/llama2.yaml [--section dpo] [--key value ...]

Engine: ``transformers.Trainer`` (accelerate/DeepSpeed, gradient accumulation, schedulers, checkpoints and resume)
with our collator and ``compute_loss`` over ``common.losses.dpo_loss`` + ``PAIR_TERMS``. Why not TRL's DPOTrainer
(1.16): it re-tokenises text itself and appends EOS to every completion, which doubles the end-of-turn of responses our
templates already rendered; its loss is one branch chain inside ``_compute_loss`` (forward, reference, metrics) with no
hook for a per-pair term such as PCRM-DPO's −log σ(δ* − h), and its "sigmoid" no longer takes label smoothing (cDPO).
Subclassing would mean rewriting that whole method; the compact loop here is ~100 lines and reuses our templates'
prompt masking (``encode_prompt_response``), so SFT and DPO train on the same token layout.

``loss_type: simpo`` trains SimPO (Meng et al. 2024) instead: reference-free, on per-token mean log-probs, with
target margin ``simpo_gamma`` and optional ``label_smoothing`` (``common.losses.simpo_loss``; TRL has it only in its
CPOTrainer, which adds an NLL term). No reference model is loaded; its logged rewards are β·mean log π.

Reference model: ``ref_model_name_or_path``, else the LoRA-disabled base when ``use_lora`` (no second copy in memory),
else a frozen copy of the starting policy. ``precompute_ref_log_probs`` scores the pairs with the reference once
before training and frees it. With full fine-tuning under ZeRO-3, use ``precompute_ref_log_probs`` (a live reference
is not sharded).
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from common.artifacts import RunDir
from common.config import ConfigError, stage_cli
from common.data import data_metrics
from common.losses import DPO_LOSS_TYPES, dpo_loss, get_pair_term, simpo_loss
from common.models import load_causal_lm, load_tokenizer
from common.templates import encode_prompt_response
from common.train import log_at_checkpoints_callback, prepare_checkpoints, save_final, train_loss_metrics
from common.train.rm import (
    PairStageConfig,
    _help,
    check_padding_free,
    check_pair_term_columns,
    load_pairs,
    lora_config,
    numeric_extra_columns,
    record_batch,
    resolve_report_to,
    trained_weights_dtype,
)

STAGE_LOSS_TYPES = (*DPO_LOSS_TYPES, "simpo")


@dataclass
class DPOConfig(PairStageConfig):
    """Settings of the DPO stage (section ``dpo`` of a recipe)."""

    SECTION: ClassVar[str] = "dpo"
    max_length: int = field(default=1024, metadata=_help("prompt + response tokens; longer pairs are truncated"))
    beta: float = field(default=0.1, metadata=_help("β: strength of the KL tie to the reference (Rafailov et al.)"))
    loss_type: str = field(default="sigmoid", metadata=_help(f"one of {list(STAGE_LOSS_TYPES)} (simpo: "
                                                             "reference-free SimPO, no reference model)"))
    label_smoothing: float = field(default=0.0, metadata=_help("ε for conservative/robust DPO and SimPO (and the "
                                                               "pair term)"))
    simpo_gamma: float = field(default=0.5, metadata=_help("SimPO target margin γ (loss_type simpo only; 0.5 = "
                                                           "TRL CPOConfig's default)"))
    ref_model_name_or_path: str | None = field(default=None, metadata=_help(
        "reference model; None: the LoRA-disabled base (use_lora) or a frozen copy of the policy"))
    precompute_ref_log_probs: bool = field(default=False, metadata=_help("score pairs with the reference up front"))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss_type not in STAGE_LOSS_TYPES:
            raise ConfigError(f"dpo.loss_type: {self.loss_type!r} is not one of {list(STAGE_LOSS_TYPES)}")
        if self.beta <= 0:
            raise ConfigError(f"dpo.beta: {self.beta} must be > 0")
        if self.loss_type == "simpo":
            if self.ref_model_name_or_path or self.precompute_ref_log_probs:
                key = "ref_model_name_or_path" if self.ref_model_name_or_path else "precompute_ref_log_probs"
                raise ConfigError(f"dpo.{key}: loss_type simpo is reference-free; unset {key}")
            if not self.simpo_gamma >= 0:
                raise ConfigError(f"dpo.simpo_gamma: {self.simpo_gamma} must be >= 0 (a target margin)")
        try:  # the loss itself knows which (loss_type, label_smoothing) combinations mean something
            z = torch.zeros(1)
            if self.loss_type == "simpo":
                simpo_loss(z, z, self.beta, self.simpo_gamma, self.label_smoothing)
            else:
                dpo_loss(z, z, z, z, self.beta, self.loss_type, self.label_smoothing)
        except ValueError as exc:
            raise ConfigError(f"dpo.loss_type/label_smoothing: {exc}") from None


# ---------------------------------------------------------------------------------------------------------------
# Log-probs.


def _accepts_logits_to_keep(model) -> bool:
    base = getattr(model, "module", model)
    base = base.get_base_model() if hasattr(base, "get_base_model") else base
    return "logits_to_keep" in inspect.signature(base.forward).parameters


SEQUENCE_KEYS = ("input_ids", "attention_mask", "labels", "position_ids", "seq_index")


def sequence_logps(model, input_ids: Tensor, attention_mask: Tensor | None = None, labels: Tensor | None = None,
                   position_ids: Tensor | None = None, seq_index: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Summed log π(response tokens) (N,) and the number of response tokens (N,); labels are -100 on the prompt.

    Padded batches (N, T): only positions from the batch's earliest response token on get vocabulary logits
    (``logits_to_keep``, when the model supports it): prompts are most of the sequence and the (T, V) logits most of
    the memory. Packed batches (``seq_index`` given, see ``collate_packed``) go to ``packed_sequence_logps``."""
    if seq_index is not None:
        return packed_sequence_logps(model, input_ids, position_ids, labels, seq_index)
    T = input_ids.shape[1]
    is_response = labels != -100
    first = int(is_response.float().argmax(-1).min()) if bool(is_response.any()) else T - 1
    keep = T - max(first - 1, 0)  # positions first-1 .. T-1: logits at t-1 predict token t
    kwargs = {"logits_to_keep": keep} if keep < T and _accepts_logits_to_keep(model) else {}
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs).logits
    logits = logits[:, :-1]  # (N, k-1, V): position T-k+j predicts token T-k+j+1
    targets = labels[:, T - logits.shape[1]:]  # (N, k-1)
    mask = targets != -100
    picked = logits.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1).float()  # (N, T-1)
    token_logps = picked - torch.logsumexp(logits.float(), dim=-1)
    return (token_logps * mask).sum(-1), mask.sum(-1)


def packed_sequence_logps(model, input_ids: Tensor, position_ids: Tensor, labels: Tensor,
                          seq_index: Tensor) -> tuple[Tensor, Tensor]:
    """Same sums for N sequences packed into one row (1, S): the attention keeps sequences apart through
    ``position_ids`` restarting at 0, and vocabulary logits are computed only at the K positions whose next token
    is a response token (``logits_to_keep`` as an index tensor). seq_index (1, S) names each token's sequence."""
    n_seqs = int(seq_index.max()) + 1
    predicts = (labels[0, 1:] != -100).nonzero().squeeze(-1)  # (K,): position t predicts the label at t+1
    logits = model(input_ids=input_ids, position_ids=position_ids, use_cache=False,
                   logits_to_keep=predicts).logits[0]  # (K, V)
    targets = labels[0, predicts + 1]  # (K,)
    token_logps = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1).float() - torch.logsumexp(logits.float(), -1)
    owner = seq_index[0, predicts + 1]  # (K,)
    sums = torch.zeros(n_seqs, dtype=token_logps.dtype, device=token_logps.device).index_add(0, owner, token_logps)
    counts = torch.zeros(n_seqs, dtype=torch.long, device=owner.device).index_add(0, owner, torch.ones_like(owner))
    return sums, counts


def unwrap_peft(model):
    """The PeftModel inside DDP/accelerate wrappers, or None when the model carries no adapter."""
    inner = getattr(model, "module", model)
    return inner if hasattr(inner, "disable_adapter") and hasattr(inner, "peft_config") else None


@torch.no_grad()
def reference_logps(policy, ref, **seq: Tensor) -> tuple[Tensor, Tensor]:
    """Reference log-probs of ``sequence_logps``'s inputs: ``ref`` when given, else ``policy`` with its LoRA
    adapter disabled."""
    if ref is not None:
        return sequence_logps(ref, **seq)
    peft = unwrap_peft(policy)
    if peft is None:
        raise ValueError("no reference model: pass one, or a LoRA policy whose disabled adapter is the reference")
    with peft.disable_adapter():
        return sequence_logps(policy, **seq)


@torch.no_grad()
def implicit_reward(policy, ref, tokenizer, prompts: list, responses: list[str], template: str, beta: float,
                    system: str | None = None, batch_size: int = 8, max_length: int = 1024) -> Tensor:
    """DPO's implicit reward β·(log π(y|x) − log π_ref(y|x)), summed over response tokens (end-of-turn included).

    (N,) float32 on CPU. ``ref=None`` uses ``policy`` with its LoRA adapter disabled. Rafailov et al. 2023, §5;
    RewardBench scores DPO models this way (Lambert et al. 2024).
    """
    device = next(policy.parameters()).device
    was_training = policy.training
    policy.eval()
    out = []
    for start in range(0, len(prompts), batch_size):
        enc = [encode_prompt_response(tokenizer, p, r, template, max_length, system)
               for p, r in zip(prompts[start: start + batch_size], responses[start: start + batch_size])]
        batch = {k: v.to(device) for k, v in collate_sequences(enc, tokenizer.pad_token_id).items()}
        logps, _ = sequence_logps(policy, **batch)
        ref_logps, _ = reference_logps(policy, ref, **batch)
        out.append((beta * (logps - ref_logps)).float().cpu())
    policy.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


# ---------------------------------------------------------------------------------------------------------------
# Batches.


def collate_sequences(encoded: list[dict], pad_token_id: int) -> dict[str, Tensor]:
    """Right-pad {input_ids, labels} lists -> input_ids, attention_mask, labels (N, T); labels pad with -100."""
    width = max(len(e["input_ids"]) for e in encoded)
    ids = torch.full((len(encoded), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), -100, dtype=torch.long)
    for i, e in enumerate(encoded):
        n = len(e["input_ids"])
        ids[i, :n] = torch.tensor(e["input_ids"])
        mask[i, :n] = 1
        labels[i, :n] = torch.tensor(e["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def collate_packed(encoded: list[dict]) -> dict[str, Tensor]:
    """{input_ids, labels} lists -> one row (1, S) of all sequences back to back: input_ids, labels (the first
    token of each sequence is -100: nothing before it in its own sequence predicts it), position_ids restarting at
    0 per sequence, seq_index (which sequence each token belongs to)."""
    ids, labels, pos, owner = [], [], [], []
    for i, e in enumerate(encoded):
        n = len(e["input_ids"])
        ids += e["input_ids"]
        labels += [-100, *e["labels"][1:]]
        pos += range(n)
        owner += [i] * n
    row = {"input_ids": ids, "labels": labels, "position_ids": pos, "seq_index": owner}
    return {k: torch.tensor([v], dtype=torch.long) for k, v in row.items()}


@dataclass
class DPOCollator:
    """B pairs -> sequences (2B, T), chosen rows first (packed: one row (1, S) in the same order); extras and
    precomputed reference log-probs as (B,)."""

    pad_token_id: int
    extra_columns: tuple[str, ...] = ()
    padding_free: bool = False

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        seqs = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
        batch: dict[str, Any] = collate_packed(seqs) if self.padding_free else collate_sequences(seqs,
                                                                                                  self.pad_token_id)
        batch["extras"] = {k: torch.tensor([r[k] for r in rows], dtype=torch.float32) for k in self.extra_columns}
        if "ref_chosen_logps" in rows[0]:
            batch["ref_logps"] = torch.tensor([r["ref_chosen_logps"] for r in rows]
                                              + [r["ref_rejected_logps"] for r in rows], dtype=torch.float32)
        return batch


def encode_pairs(records: list[dict], tokenizer, cfg: DPOConfig, extras: list[str]) -> tuple[list[dict], int]:
    """Rows {chosen: {input_ids, labels}, rejected: {...}, **extras}; also how many pairs reach max_length (cut)."""
    rows, truncated = [], 0
    for rec in records:
        row: dict[str, Any] = {k: float(rec[k]) for k in extras}
        for side in ("chosen", "rejected"):
            enc = encode_prompt_response(tokenizer, rec["prompt"], rec[side], cfg.template, cfg.max_length, cfg.system)
            row[side] = {"input_ids": enc["input_ids"], "labels": enc["labels"]}
        truncated += int(any(len(row[s]["input_ids"]) >= cfg.max_length for s in ("chosen", "rejected")))
        rows.append(row)
    return rows, truncated


# ---------------------------------------------------------------------------------------------------------------
# Loss on a batch, the trainer, the stage.


def pair_losses(model, ref, inputs: dict[str, Any], cfg: DPOConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Per-pair loss (B,) = DPO loss + pair term on h = β·(logratio_c − logratio_r); implicit rewards (B,), (B,).
    SimPO: its loss on per-token means, h = β·(mean log π(y_c) − mean log π(y_r)), rewards β·mean log π; no ref."""
    seq = {k: inputs[k] for k in SEQUENCE_KEYS if k in inputs}
    logps, n_tokens = sequence_logps(model, **seq)  # (2B,), (2B,)
    if cfg.loss_type == "simpo":
        chosen, rejected = (logps / n_tokens.clamp(min=1)).chunk(2)
        per_pair = simpo_loss(chosen, rejected, cfg.beta, cfg.simpo_gamma, cfg.label_smoothing, reduction="none")
        h = cfg.beta * (chosen - rejected)
        per_pair = per_pair + get_pair_term(cfg.pair_term)(h, inputs["extras"], cfg.label_smoothing)
        return per_pair, cfg.beta * chosen.detach(), cfg.beta * rejected.detach()
    ref_logps = inputs["ref_logps"] if "ref_logps" in inputs else reference_logps(model, ref, **seq)[0]
    # IPO on per-token averages (TRL's normalisation, confirmed by the IPO authors); its logged rewards are per token
    if cfg.loss_type == "ipo":
        logps, ref_logps = logps / n_tokens.clamp(min=1), ref_logps / n_tokens.clamp(min=1)
    chosen, rejected = logps.chunk(2)
    ref_chosen, ref_rejected = ref_logps.to(logps.dtype).chunk(2)
    per_pair, chosen_rewards, rejected_rewards = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, cfg.beta,
                                                          cfg.loss_type, cfg.label_smoothing, reduction="none")
    h = cfg.beta * ((chosen - ref_chosen) - (rejected - ref_rejected))  # with gradient, unlike the rewards
    per_pair = per_pair + get_pair_term(cfg.pair_term)(h, inputs["extras"], cfg.label_smoothing)
    return per_pair, chosen_rewards, rejected_rewards


def _make_trainer_class():
    from transformers import Trainer

    class PairDPOTrainer(Trainer):
        """transformers.Trainer whose loss is ``pair_losses``; logs reward accuracy and margins like TRL."""

        # compute_loss returns the mean over the micro-batch's pairs, so the Trainer must divide it by the
        # accumulation steps (our batches carry `labels`, which would otherwise make it count the loss as already
        # normalised over the accumulated batch and sum the micro-batch means: a gradient accumulation x too large)
        loss_is_scaled_for_ga = False

        def __init__(self, *args, dpo_cfg: DPOConfig, ref_model=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = False  # transformers < 5.19 reads this instead of loss_is_scaled_for_ga
            self.dpo_cfg = dpo_cfg
            self.ref_model = ref_model
            if ref_model is not None:
                self.ref_model = ref_model.to(self.args.device).eval().requires_grad_(False)
            self._stats: dict[str, list[float]] = defaultdict(list)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            per_pair, chosen_r, rejected_r = pair_losses(model, self.ref_model, inputs, self.dpo_cfg)
            self._stats["rewards/chosen"].append(chosen_r.mean().item())
            self._stats["rewards/rejected"].append(rejected_r.mean().item())
            self._stats["rewards/accuracies"].append((chosen_r > rejected_r).float().mean().item())
            self._stats["rewards/margins"].append((chosen_r - rejected_r).mean().item())
            loss = per_pair.mean()
            return (loss, {"chosen_rewards": chosen_r}) if return_outputs else loss

        def log(self, logs: dict[str, float], *args, **kwargs) -> None:
            logs.update({k: sum(v) / len(v) for k, v in self._stats.items() if v})
            self._stats.clear()
            super().log(logs, *args, **kwargs)

    return PairDPOTrainer


@torch.no_grad()
def evaluate_dpo(model, ref, rows: list[dict], collator: DPOCollator, cfg: DPOConfig) -> dict[str, float]:
    """Eval loss, reward accuracy (ties count as wrong) and margin statistics over ``rows``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    losses, chosen, rejected = [], [], []
    for start in range(0, len(rows), cfg.per_device_eval_batch_size):
        batch = collator(rows[start: start + cfg.per_device_eval_batch_size])
        batch = {k: ({n: t.to(device) for n, t in v.items()} if isinstance(v, dict) else v.to(device))
                 for k, v in batch.items()}
        per_pair, c, r = pair_losses(model, ref, batch, cfg)
        losses.append(per_pair.float().cpu())
        chosen.append(c.float().cpu())
        rejected.append(r.float().cpu())
    model.train(was_training)
    loss, c, r = torch.cat(losses), torch.cat(chosen), torch.cat(rejected)
    margins = c - r
    return {"eval_loss": float(loss.mean()), "eval_reward_accuracy": float((c > r).float().mean()),
            "eval_reward_margin_mean": float(margins.mean()), "eval_reward_margin_p50": float(margins.median()),
            "eval_chosen_reward_mean": float(c.mean()), "eval_rejected_reward_mean": float(r.mean()),
            "eval_pairs": len(rows)}


def precompute_reference(ref_or_policy, rows: list[dict], collator: DPOCollator, batch_size: int) -> None:
    """Add ref_chosen_logps / ref_rejected_logps to each row (in place), scoring with the reference once."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = ref_or_policy.to(device).eval()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start: start + batch_size]
        batch = {k: v.to(device) for k, v in collator(chunk).items() if k in SEQUENCE_KEYS}
        logps = reference_logps(model, None if unwrap_peft(model) else model, **batch)[0].float().cpu()
        for row, c, r in zip(chunk, *logps.chunk(2)):
            row["ref_chosen_logps"], row["ref_rejected_logps"] = float(c), float(r)


def build_dpo_trainer(cfg: DPOConfig, train_records: list[dict], eval_records: list[dict] | None = None):
    """Trainer over the encoded training pairs; also the collator, the encoded eval rows and at-max-length counts."""
    tokenizer = load_tokenizer(cfg.model_name_or_path, trust_remote_code=cfg.trust_remote_code)
    extras = numeric_extra_columns(train_records)
    check_pair_term_columns(cfg, extras)
    rows, at_max = encode_pairs(train_records, tokenizer, cfg, extras)
    eval_rows, eval_at_max = encode_pairs(eval_records or [], tokenizer, cfg, extras)
    # full fine-tuning without DeepSpeed trains float32 weights (autocast via the bf16 flag); the reference stays in
    # cfg.dtype (see trained_weights_dtype)
    model = load_causal_lm(cfg.model_name_or_path, dtype=trained_weights_dtype(cfg),
                           trust_remote_code=cfg.trust_remote_code)
    check_padding_free(cfg, model)
    collator = DPOCollator(tokenizer.pad_token_id, tuple(extras), cfg.padding_free)
    if cfg.use_lora:
        from peft import get_peft_model

        model = get_peft_model(model, lora_config(cfg, "CAUSAL_LM"))
    ref = None
    if cfg.loss_type != "simpo" and (cfg.ref_model_name_or_path or not cfg.use_lora):
        ref = load_causal_lm(cfg.ref_model_name_or_path or cfg.model_name_or_path, dtype=cfg.dtype,
                             trust_remote_code=cfg.trust_remote_code)
    if cfg.precompute_ref_log_probs:
        for part in (rows, eval_rows):
            precompute_reference(ref if ref is not None else model, part, collator, cfg.per_device_eval_batch_size)
        ref = None  # freed: the rows carry the reference log-probs now
    trainer = dpo_trainer_from_rows(cfg, model, ref, tokenizer, rows, collator)
    return trainer, collator, eval_rows, {"train_pairs_at_max_length": at_max, "eval_pairs_at_max_length": eval_at_max}


def dpo_trainer_from_rows(cfg: DPOConfig, model, ref, tokenizer, rows: list[dict], collator: DPOCollator):
    """The trainer on encoded pair rows (``encode_pairs``); ``ref`` None with precomputed reference log-probs in the
    rows or a LoRA policy. Also used by bench/ on in-memory models."""
    from datasets import Dataset
    from transformers import TrainingArguments

    args = TrainingArguments(
        output_dir=cfg.output_dir, seed=cfg.seed, learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay, logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, deepspeed=cfg.deepspeed,
        report_to=resolve_report_to(cfg.report_to, cfg.output_dir), gradient_checkpointing=cfg.gradient_checkpointing,
        bf16=cfg.dtype in ("bfloat16", "bf16") and torch.cuda.is_available(), remove_unused_columns=False,
    )
    return _make_trainer_class()(
        model=model, args=args, train_dataset=Dataset.from_list(rows), data_collator=collator,
        processing_class=tokenizer, dpo_cfg=cfg, ref_model=ref,
    )


def train_dpo(cfg: DPOConfig) -> dict[str, Any]:
    """Train; save the policy (full, or LoRA adapter) and tokenizer; evaluate reward accuracy/margins; metrics."""
    resume_from = prepare_checkpoints(cfg.output_dir, cfg.resume, cfg.overwrite, "dpo")
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    data_stats: dict[str, Any] = {}
    train_records, eval_records = load_pairs(cfg, data_stats)
    trainer, collator, eval_rows, counts = build_dpo_trainer(cfg, train_records, eval_records)
    loss_log = log_at_checkpoints_callback()
    trainer.add_callback(loss_log)
    record_batch(run, trainer, "dpo")
    tokenizer = trainer.processing_class
    result = trainer.train(resume_from_checkpoint=resume_from)
    save_final(trainer, tokenizer, cfg.output_dir)
    metrics: dict[str, Any] = {**train_loss_metrics(trainer, result, loss_log.start_step),
                               "train_pairs": len(train_records), "global_step": result.global_step,
                               "resumed_from": resume_from, **counts}
    metrics.update(data_metrics(data_stats))  # rows read, and HH-RLHF rows skipped per reason
    key = "train_loss"
    if eval_rows:
        metrics.update(evaluate_dpo(trainer.model, trainer.ref_model, eval_rows, collator, cfg))
        key = "eval_reward_accuracy"
    return run.finish(metrics, key_metric=key)


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(DPOConfig, train_dpo, "dpo", "Direct preference optimisation (DPO family + per-pair term).", argv)


if __name__ == "__main__":
    main()
