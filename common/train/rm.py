"""Reward-model stage: a one-output sequence classifier trained on preference pairs with the Bradley-Terry loss.

    python -m common.train.rm --config pcrm/configs/llama2.yaml [--section rm] [--key value ...]

Engine: TRL's ``RewardTrainer`` (PEFT wrapping, pad-token setup, logging, checkpoints, accelerate/DeepSpeed). We feed
it pre-tokenised pairs (so TRL adds no EOS and applies no template of its own) and override only ``compute_loss``:
TRL's loss knows a ``margin`` column but nothing else, while PCRM needs a per-pair δ* next to its pair. Our collator
carries every numeric extra column of the data as ``extras`` (rows are shuffled whole, so extras stay aligned), and the
loss is ``bt_loss + PAIR_TERMS[pair_term](d, extras) + c·centering`` from ``common.losses``.

Score position: a decoder RM reads its score at the rightmost token that is not ``pad_token_id`` (transformers'
``*ForSequenceClassification`` rule). When pad == eos (SmolLM2, Llama-2), a trailing EOS is skipped and the score sits
on the last content token; this is the same position with or without padding, and the same in training and in
``score_texts``, which every scorer (``common.rewards``, PPO, eval) calls. Encoders (BERT/MiniLM) pool [CLS].
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from common.artifacts import RunDir, write_jsonl
from common.config import ConfigError, stage_cli
from common.config import help_meta as _help
from common.data import ON_BAD_ROW_HELP, check_on_bad_row_setting, data_metrics
from common.losses import PAIR_TERMS, bt_loss, get_pair_term, reward_centering_term
from common.models import load_reward_model, load_tokenizer
from common.templates import render_prompt, render_response
from common.train import (  # shared with sft.py (and dpo.py through this module)
    check_schedule,
    log_at_checkpoints_callback,
    prepare_checkpoints,
    record_batch,
    resolve_accumulation,
    resolve_report_to,
    save_final,
    train_loss_metrics,
)

TEXT_FIELDS = ("prompt", "chosen", "rejected")
# Decoders whose attention keeps packed sequences apart when position_ids restart at 0 (transformers >= 5 masks).
PACKABLE_FAMILIES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text"})


@dataclass
class PairStageConfig:
    """Settings shared by the stages that train on preference pairs (RM here, DPO in common.train.dpo)."""

    SECTION: ClassVar[str] = "pairs"

    model_name_or_path: str = field(metadata=_help("hub id, local folder or embedded:<name> (usually the SFT model)"))
    dataset: str = field(metadata=_help("preference data: hub id or local jsonl/json/parquet/csv (common.data)"))
    output_dir: str = field(metadata=_help("run folder: model, tokenizer, metrics.json, eval_scores.jsonl"))
    template: str = field(default="tokenizer", metadata=_help("template (common.templates); 'plain' for encoders"))
    system: str | None = field(default=None, metadata=_help("system message rendered before each prompt"))
    split: str = field(default="train", metadata=_help("split of `dataset` to train on"))
    subset: str | None = field(default=None, metadata=_help("hub dataset config name"))
    columns: dict | None = field(default=None, metadata=_help("column mapping {canonical: source column}"))
    source_format: str = field(default="canonical", metadata=_help("canonical or hh_rlhf (common.data)"))
    on_bad_row: str = field(default="skip", metadata=_help(ON_BAD_ROW_HELP))
    limit: int | None = field(default=None, metadata=_help("use at most this many training pairs (shuffled by seed)"))
    eval_dataset: str | None = field(default=None, metadata=_help("held-out pairs; None: split eval_fraction off"))
    eval_split: str = field(default="test", metadata=_help("split of `eval_dataset`"))
    eval_limit: int | None = field(default=None, metadata=_help("use at most this many eval pairs"))
    eval_fraction: float = field(default=0.05, metadata=_help("share of training pairs held out when no eval_dataset"))
    seed: int = field(default=42, metadata=_help("seed for data split, head init and shuffling"))
    learning_rate: float = field(default=1e-5, metadata=_help("peak learning rate"))
    num_train_epochs: float = field(default=1.0, metadata=_help("epochs over the training pairs"))
    max_steps: int = field(default=-1, metadata=_help("optimizer steps; > 0 overrides num_train_epochs"))
    per_device_train_batch_size: int = field(default=4, metadata=_help("pairs per device per micro-batch"))
    per_device_eval_batch_size: int = field(default=8, metadata=_help("texts per forward when scoring eval pairs"))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("micro-batches per optimizer step"))
    global_batch_size: int | None = field(default=None, metadata=_help(
        "pairs per optimizer step over all processes: sets gradient_accumulation_steps = global_batch_size / "
        "(per_device_train_batch_size x WORLD_SIZE); None: gradient_accumulation_steps as given"))
    max_length: int = field(default=512, metadata=_help("pairs with a side longer than this (tokens) are dropped"))
    lr_scheduler_type: str = field(default="linear", metadata=_help("transformers scheduler name (linear, cosine...)"))
    warmup_steps: int = field(default=0, metadata=_help("linear warmup steps"))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    use_lora: bool = field(default=False, metadata=_help("train a LoRA adapter (+ score head), not all weights"))
    lora_r: int = field(default=8, metadata=_help("LoRA rank"))
    lora_alpha: int = field(default=16, metadata=_help("LoRA alpha"))
    lora_dropout: float = field(default=0.05, metadata=_help("LoRA dropout"))
    lora_target_modules: list[str] = field(default_factory=lambda: ["auto"],
                                           metadata=_help("module names, or 'auto' = PEFT's default for the family"))
    dtype: str = field(default="float32", metadata=_help("weight dtype: float32, bfloat16, float16"))
    gradient_checkpointing: bool = field(default=False, metadata=_help("trade compute for memory (large models)"))
    trust_remote_code: bool = field(default=False, metadata=_help("allow hub model code (ChatGLM3, Baichuan2)"))
    deepspeed: str | None = field(default=None, metadata=_help("DeepSpeed json (common/configs/deepspeed/zero2.json)"))
    report_to: str = field(default="wandb", metadata=_help("wandb (offline; 'none' when wandb is absent) or none"))
    logging_steps: int = field(default=10, metadata=_help("log every N optimizer steps"))
    save_steps: int = field(default=500, metadata=_help("checkpoint every N optimizer steps"))
    save_total_limit: int | None = field(default=2, metadata=_help("keep at most this many checkpoints"))
    resume: bool = field(default=False, metadata=_help("continue from the last checkpoint in output_dir"))
    overwrite: bool = field(default=False, metadata=_help("replace a finished run in output_dir"))
    pair_term: str = field(default="none", metadata=_help(f"extra per-pair loss term: {sorted(PAIR_TERMS)}"))
    padding_free: bool = field(default=False, metadata=_help(
        "pack each batch's sequences into one row with position ids: no pad tokens, same loss (DPO: logits only at "
        f"response positions). Decoder families {sorted(PACKABLE_FAMILIES)} on transformers >= 5 (sdpa/eager build "
        "the block mask from position ids; flash_attention_2/3 run varlen)"))

    def __post_init__(self) -> None:
        sec = self.SECTION
        if self.pair_term not in PAIR_TERMS:
            raise ConfigError(f"{sec}.pair_term: {self.pair_term!r} is not registered; known: {sorted(PAIR_TERMS)}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(f"{sec}.eval_fraction: {self.eval_fraction} must be in [0, 1)")
        check_on_bad_row_setting(self.on_bad_row, f"{sec}.on_bad_row")
        for key in ("max_length", "per_device_train_batch_size", "per_device_eval_batch_size",
                    "gradient_accumulation_steps", "lora_r"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{sec}.{key}: {getattr(self, key)} must be >= 1")
        if self.learning_rate <= 0:
            raise ConfigError(f"{sec}.learning_rate: {self.learning_rate} must be > 0")
        check_schedule(self, sec)
        if self.report_to not in ("wandb", "none", "tensorboard"):
            raise ConfigError(f"{sec}.report_to: {self.report_to!r} is not one of ['wandb', 'none', 'tensorboard']")
        self.gradient_accumulation_steps = resolve_accumulation(
            self.global_batch_size, self.per_device_train_batch_size, self.gradient_accumulation_steps, sec)


@dataclass
class RMConfig(PairStageConfig):
    """Settings of the reward-model stage (section ``rm`` of a recipe)."""

    SECTION: ClassVar[str] = "rm"
    center_rewards_coefficient: float | None = field(default=None, metadata=_help("weight of mean((r_c+r_r)^2)"))
    eval_each_epoch: bool = field(default=False, metadata=_help("score the eval pairs after every epoch too"))


# ---------------------------------------------------------------------------------------------------------------
# Text -> score: shared by training, evaluation and every scorer (common.rewards imports these).


def format_rm_input(prompt: Any, response: str, template: str, tokenizer=None, system: str | None = None) -> str:
    """The text a reward model scores: the rendered prompt up to the assistant header, then the response turn.

    Template 'plain' with an encoder tokenizer (no EOS, e.g. BERT/MiniLM) is prompt + response: the tokenizer's own
    [SEP] closes the text."""
    if template == "plain" and tokenizer is not None and not getattr(tokenizer, "eos_token", None):
        return render_prompt(prompt, template, tokenizer, system=system) + response
    return render_prompt(prompt, template, tokenizer, system=system) + render_response(response, template, tokenizer)


def encode_rm_text(tokenizer, text: str) -> list[int]:
    """Token ids of one RM input. Special tokens (BERT's [CLS]/[SEP], a BOS) are added unless the rendered text
    already starts with the BOS token (chat templates such as Llama-2's write ``<s>`` themselves)."""
    bos = tokenizer.bos_token
    add_special = not (bos and text.startswith(bos))
    return tokenizer(text, add_special_tokens=add_special)["input_ids"]


def pad_right(seqs: list[list[int]], pad_token_id: int) -> tuple[Tensor, Tensor]:
    """Right-pad token lists -> input_ids (N, T) and attention_mask (N, T)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


@torch.no_grad()
def score_texts(model, tokenizer, texts: list[str], batch_size: int = 8, max_length: int | None = None) -> Tensor:
    """Reward of each text, (N,) float32 on CPU. Texts over ``max_length`` tokens keep their last ``max_length``
    tokens (the score is read at the end)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores = []
    for start in range(0, len(texts), batch_size):
        seqs = [encode_rm_text(tokenizer, t) for t in texts[start: start + batch_size]]
        if max_length is not None:
            seqs = [s[-max_length:] for s in seqs]
        ids, mask = pad_right(seqs, tokenizer.pad_token_id)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits  # (b, 1)
        scores.append(logits[:, 0].float().cpu())
    model.train(was_training)
    return torch.cat(scores) if scores else torch.zeros(0)


# ---------------------------------------------------------------------------------------------------------------
# Pairs -> batches.


def numeric_extra_columns(records: list[dict]) -> list[str]:
    """Extra columns holding a number in every record (``margin``, ``delta_star``...): they travel with the pair."""
    if not records:
        return []
    keys = [k for k in records[0] if k not in TEXT_FIELDS]
    return sorted(k for k in keys if all(isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)
                                         for r in records))


def check_padding_free(cfg: PairStageConfig, model) -> None:
    """Packing needs a decoder whose attention reads packed position ids; encoders would attend across pairs."""
    model_type = getattr(getattr(model, "config", None), "model_type", "?")
    if cfg.padding_free and model_type not in PACKABLE_FAMILIES:
        raise ConfigError(f"{cfg.SECTION}.padding_free: model_type {model_type!r} is not one of "
                          f"{sorted(PACKABLE_FAMILIES)}; set padding_free: false")


def check_pair_term_columns(cfg: PairStageConfig, extras: list[str]) -> None:
    """Fail before any training when the pair term needs a per-pair column the data lacks."""
    needed = [c for c in get_pair_term(cfg.pair_term).columns if c not in extras]
    if needed:
        raise ConfigError(f"{cfg.SECTION}.pair_term: {cfg.pair_term!r} needs numeric per-pair column(s) {needed} in "
                          f"{cfg.dataset}; its numeric extra columns are {extras}")


def tokenize_pairs(records: list[dict], tokenizer, cfg: RMConfig, extras: list[str]) -> tuple[list[dict], list[int]]:
    """Rows {chosen_ids, rejected_ids, **extras} of the pairs that fit ``max_length``, and their record indices."""
    rows, kept = [], []
    for i, rec in enumerate(records):
        chosen = encode_rm_text(tokenizer, format_rm_input(rec["prompt"], rec["chosen"], cfg.template, tokenizer,
                                                           cfg.system))
        rejected = encode_rm_text(tokenizer, format_rm_input(rec["prompt"], rec["rejected"], cfg.template,
                                                             tokenizer, cfg.system))
        if max(len(chosen), len(rejected)) > cfg.max_length:
            continue
        rows.append({"chosen_ids": chosen, "rejected_ids": rejected, **{k: float(rec[k]) for k in extras}})
        kept.append(i)
    return rows, kept


def pack_for_scores(seqs: list[list[int]], pad_token_id: int) -> dict[str, Tensor]:
    """Sequences back to back in one row: input_ids, position_ids (1, S), and score_index (N,), each sequence's
    score position under the padded rule (its rightmost token that is not pad_token_id; its last token if none)."""
    ids, pos, score_index = [], [], []
    for s in seqs:
        content = [i for i, t in enumerate(s) if t != pad_token_id]
        score_index.append(len(ids) + (content[-1] if content else len(s) - 1))
        ids += s
        pos += range(len(s))
    return {"input_ids": torch.tensor([ids]), "position_ids": torch.tensor([pos]),
            "score_index": torch.tensor(score_index)}


@dataclass
class PairCollator:
    """Stacks B pairs as input_ids (2B, T): chosen rows first, then rejected (packed: one row, same order);
    extras -> {name: (B,) float32}."""

    pad_token_id: int
    extra_columns: tuple[str, ...] = ()
    padding_free: bool = False

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        seqs = [r["chosen_ids"] for r in rows] + [r["rejected_ids"] for r in rows]
        extras = {k: torch.tensor([r[k] for r in rows], dtype=torch.float32) for k in self.extra_columns}
        if self.padding_free:
            return {**pack_for_scores(seqs, self.pad_token_id), "extras": extras}
        ids, mask = pad_right(seqs, self.pad_token_id)
        return {"input_ids": ids, "attention_mask": mask, "extras": extras}


def packed_scores(model, input_ids: Tensor, position_ids: Tensor, score_index: Tensor) -> Tensor:
    """Rewards (N,) of N sequences packed into one row (1, S). The forward goes through ``model`` itself (so DDP,
    DeepSpeed and PEFT wrappers see it); a hook reads the score head's per-position output (1, S, 1) there, since
    the model's own pooling picks one position per row."""
    inner = getattr(model, "module", model)
    inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner
    captured: list[Tensor] = []
    handle = inner.score.register_forward_hook(lambda module, args, out: captured.append(out))
    try:
        model(input_ids=input_ids, position_ids=position_ids, use_cache=False)
    finally:
        handle.remove()
    return captured[-1][0, score_index, 0]  # (N,)


def pairwise_reward_trainer_class():
    """The trainer class (built lazily so importing this module does not import TRL); papers subclass it."""
    from trl import RewardTrainer

    class PairwiseRewardTrainer(RewardTrainer):
        """RewardTrainer whose loss is BT (+ data margin) + a registered per-pair term (+ reward centering)."""

        # compute_loss returns the mean over the micro-batch's pairs: the Trainer divides it by the accumulation
        # steps, so a global batch split into micro-batches, processes or both gives the same gradient
        loss_is_scaled_for_ga = False

        def __init__(self, *args, pair_term: str = "none", center_coef: float | None = None, **kwargs):
            super().__init__(*args, **kwargs)
            self.pair_term = get_pair_term(pair_term)
            self.center_coef = center_coef

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            extras = inputs["extras"]
            if "score_index" in inputs:
                rewards = packed_scores(model, inputs["input_ids"], inputs["position_ids"], inputs["score_index"])
                outputs = {"logits": rewards[:, None]}
            else:
                outputs = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                use_cache=False)
                rewards = outputs.logits.squeeze(-1)
            chosen, rejected = rewards.chunk(2)  # (2B,) -> (B,), (B,)
            per_pair = bt_loss(chosen, rejected, extras.get("margin"), reduction="none")
            per_pair = per_pair + self.pair_term(chosen - rejected, extras)
            loss = per_pair.mean()
            if self.center_coef:
                loss = loss + self.center_coef * reward_centering_term(chosen, rejected)
            mode = "train" if model.training else "eval"
            with torch.no_grad():
                self._metrics[mode]["accuracy"].append((chosen > rejected).float().mean().item())
                self._metrics[mode]["margin"].append((chosen - rejected).mean().item())
            return (loss, outputs) if return_outputs else loss

    return PairwiseRewardTrainer


_make_trainer_class = pairwise_reward_trainer_class  # older name, used by pcrm.rm

# ---------------------------------------------------------------------------------------------------------------
# Evaluation.


def evaluate_pairs(model, tokenizer, records: list[dict], cfg: RMConfig) -> tuple[dict[str, float], list[dict]]:
    """Pairwise accuracy (ties apart), margin stats, and one row per pair (scores + the pair's extra fields)."""
    texts = [format_rm_input(r["prompt"], r[side], cfg.template, tokenizer, cfg.system)
             for r in records for side in ("chosen", "rejected")]
    scores = score_texts(model, tokenizer, texts, cfg.per_device_eval_batch_size).view(-1, 2)  # (N, 2)
    chosen, rejected = scores[:, 0], scores[:, 1]
    margin = (chosen - rejected).numpy()
    metrics = {
        "eval_accuracy": float((chosen > rejected).float().mean()),
        "eval_tie_rate": float((chosen == rejected).float().mean()),
        "eval_margin_mean": float(margin.mean()),
        "eval_margin_p50": float(np.percentile(margin, 50)),
        "eval_margin_p95": float(np.percentile(margin, 95)),
        "eval_margin_max": float(margin.max()),
        "eval_pairs": len(records),
    }
    rows = [{"index": i, "chosen_score": float(c), "rejected_score": float(r),
             **{k: v for k, v in rec.items() if k not in TEXT_FIELDS}}
            for i, (c, r, rec) in enumerate(zip(chosen.tolist(), rejected.tolist(), records))]
    return metrics, rows


# ---------------------------------------------------------------------------------------------------------------
# The stage.


def load_pairs(cfg: PairStageConfig, stats: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Training and eval preference records; without an eval_dataset, ``eval_fraction`` of train is held out.
    ``stats`` receives the rows read and skipped of both loads (common.data.load_records)."""
    from common.data import DataSpec

    train = DataSpec.from_fields(cfg.dataset, cfg.split, cfg.subset, cfg.columns, cfg.limit, cfg.source_format,
                                 cfg.on_bad_row).load("preference", seed=cfg.seed, stats=stats)
    if cfg.eval_dataset:
        evals = DataSpec.from_fields(cfg.eval_dataset, cfg.eval_split, cfg.subset, cfg.columns, cfg.eval_limit,
                                     cfg.source_format, cfg.on_bad_row).load("preference", seed=cfg.seed,
                                                                             stats=stats)
        return train, evals
    n_eval = round(len(train) * cfg.eval_fraction)
    if n_eval == 0:
        return train, []
    order = np.random.default_rng(cfg.seed).permutation(len(train))
    return [train[i] for i in order[n_eval:]], [train[i] for i in order[:n_eval]]


def lora_config(cfg: PairStageConfig, task_type: Literal["SEQ_CLS", "CAUSAL_LM"]):
    """PEFT LoRA settings; for SEQ_CLS, PEFT also trains and saves the score head (modules_to_save)."""
    from peft import LoraConfig

    targets = None if list(cfg.lora_target_modules) in ([], ["auto"]) else list(cfg.lora_target_modules)
    return LoraConfig(task_type=task_type, r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets)


def build_rm_trainer(cfg: RMConfig, train_records: list[dict], trainer_class: type | None = None):
    """The trainer on the tokenised training pairs, plus how many pairs were dropped for length.

    ``trainer_class`` replaces the default (a subclass of ``pairwise_reward_trainer_class()`` taking the same
    ``pair_term``/``center_coef`` keywords), for papers that change how the pair's score difference is read."""
    tokenizer = load_tokenizer(cfg.model_name_or_path, trust_remote_code=cfg.trust_remote_code)
    extras = numeric_extra_columns(train_records)
    check_pair_term_columns(cfg, extras)
    rows, _ = tokenize_pairs(train_records, tokenizer, cfg, extras)
    if not rows:
        raise ConfigError(f"rm.max_length: all {len(train_records)} training pairs are longer than {cfg.max_length} "
                          "tokens; raise max_length")
    model = load_reward_model(cfg.model_name_or_path, dtype=trained_weights_dtype(cfg),
                              trust_remote_code=cfg.trust_remote_code, pad_token_id=tokenizer.pad_token_id)
    trainer = rm_trainer_from_rows(cfg, model, tokenizer, rows, extras, trainer_class)
    return trainer, len(train_records) - len(rows)


def trained_weights_dtype(cfg: PairStageConfig) -> str:
    """Load dtype of the model a pair stage trains. The optimiser must step float32 weights (AdamW on bf16 weights
    rounds every update below 2^-8 relative away), with the Trainer's bf16 flag running forwards under autocast on
    GPU. So cfg.dtype only where the weights are frozen (a LoRA base; PEFT keeps the adapters in float32) or
    DeepSpeed keeps fp32 master weights itself; full fine-tuning otherwise loads float32."""
    return cfg.dtype if (cfg.use_lora or cfg.deepspeed) else "float32"


def upcast_trained_half_params(model) -> int:
    """Trainable bf16/fp16 parameters -> float32, for a LoRA model over a half-precision base: the LoRA matrices
    are float32 already, but PEFT's modules_to_save copy (an RM's score head) keeps the base's dtype, and AdamW on it
    would lose its small updates. Its input is cast to float32 to match (under the Trainer's autocast the matmul
    still runs in bf16). Returns how many tensors were upcast."""
    def to_fp32(module, args):
        return tuple(a.float() if isinstance(a, Tensor) and a.is_floating_point() else a for a in args)

    n = 0
    for module in model.modules():
        half = [p for p in module.parameters(recurse=False)
                if p.requires_grad and p.dtype in (torch.bfloat16, torch.float16)]
        for p in half:
            p.data = p.data.float()
        if half:
            module.register_forward_pre_hook(to_fp32)
            n += len(half)
    return n


def rm_trainer_from_rows(cfg: RMConfig, model, tokenizer, rows: list[dict], extras: list[str],
                         trainer_class: type | None = None):
    """The trainer on tokenised rows {chosen_ids, rejected_ids, **extras} (also used by bench/ on in-memory models)."""
    check_padding_free(cfg, model)
    from datasets import Dataset
    from trl import RewardConfig

    args = RewardConfig(
        output_dir=cfg.output_dir, seed=cfg.seed, learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay, logging_steps=cfg.logging_steps,
        save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit, deepspeed=cfg.deepspeed,
        report_to=resolve_report_to(cfg.report_to, cfg.output_dir), gradient_checkpointing=cfg.gradient_checkpointing,
        bf16=cfg.dtype in ("bfloat16", "bf16") and torch.cuda.is_available(),
        # we tokenise and length-filter ourselves (to count drops) and keep the extra columns for the loss
        max_length=None, remove_unused_columns=False,
    )
    trainer = (trainer_class or pairwise_reward_trainer_class())(
        model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
        data_collator=PairCollator(tokenizer.pad_token_id, tuple(extras), cfg.padding_free),
        peft_config=lora_config(cfg, "SEQ_CLS") if cfg.use_lora else None,
        pair_term=cfg.pair_term, center_coef=cfg.center_rewards_coefficient,
    )
    if cfg.use_lora and not cfg.deepspeed:  # DeepSpeed keeps fp32 masters (and ZeRO-3 wants one dtype)
        upcast_trained_half_params(trainer.model)
    return trainer


def _epoch_eval_callback(tokenizer, records: list[dict], cfg: RMConfig, log: list[dict]):
    from transformers import TrainerCallback

    class EpochEval(TrainerCallback):
        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            metrics, _ = evaluate_pairs(model, tokenizer, records, cfg)
            log.append({"epoch": round(state.epoch or 0.0, 3), **metrics})
            print(f"epoch {state.epoch:.2f}: eval_accuracy {metrics['eval_accuracy']:.4f}", flush=True)

    return EpochEval()


def fit_eval_records(records: list[dict], tokenizer, cfg: RMConfig) -> tuple[list[dict], int]:
    _, kept = tokenize_pairs(records, tokenizer, cfg, [])
    return [records[i] for i in kept], len(records) - len(kept)


def train_rm(cfg: RMConfig, trainer_class: type | None = None) -> dict[str, Any]:
    """Train; save the model (full, or LoRA adapter + score head) and tokenizer; score the eval pairs; metrics."""
    resume_from = prepare_checkpoints(cfg.output_dir, cfg.resume, cfg.overwrite, cfg.SECTION)
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    data_stats: dict[str, Any] = {}
    train_records, eval_records = load_pairs(cfg, data_stats)
    trainer, dropped = build_rm_trainer(cfg, train_records, trainer_class)
    loss_log = log_at_checkpoints_callback()
    trainer.add_callback(loss_log)
    record_batch(run, trainer, cfg.SECTION)
    tokenizer = trainer.processing_class
    eval_records, eval_dropped = fit_eval_records(eval_records, tokenizer, cfg)
    epochs: list[dict] = []
    if cfg.eval_each_epoch and eval_records:
        trainer.add_callback(_epoch_eval_callback(tokenizer, eval_records, cfg, epochs))
    result = trainer.train(resume_from_checkpoint=resume_from)
    save_final(trainer, tokenizer, cfg.output_dir)
    metrics: dict[str, Any] = {
        **train_loss_metrics(trainer, result, loss_log.start_step), "train_pairs": len(train_records) - dropped,
        "train_dropped_too_long": dropped, "eval_dropped_too_long": eval_dropped, "global_step": result.global_step,
        **data_metrics(data_stats),  # rows read, and HH-RLHF rows skipped per reason
        "resumed_from": resume_from,
    }
    key = "train_loss"
    if eval_records:
        eval_metrics, rows = evaluate_pairs(trainer.model, tokenizer, eval_records, cfg)
        write_jsonl(os.path.join(cfg.output_dir, "eval_scores.jsonl"), rows)
        metrics.update(eval_metrics)
        key = "eval_accuracy"
    if epochs:
        metrics["epochs"] = epochs
    return run.finish(metrics, key_metric=key)


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(RMConfig, train_rm, "rm", "Train a reward model (Bradley-Terry + optional per-pair term).", argv)


if __name__ == "__main__":
    main()
