"""Supervised fine-tuning stage: next-token loss on the response only, end-of-turn token included.

    python -m common.train.sft --config rldf/configs/llama2.yaml [--section sft] [--key value ...]

Engine: TRL's ``SFTTrainer`` (PEFT, logging, checkpoints, accelerate/DeepSpeed). We hand it pre-tokenised examples
with our own labels (``common.templates.encode_prompt_response``): the prompt rendered by the named chat template is
masked to -100, the response plus its end-of-turn text is trained. TRL then adds no EOS and applies no template of its
own, and its collator pads labels with -100 by length, so an EOS that doubles as the pad token (SmolLM2, Llama-2 with
pad = eos) stays trained. A ``{"messages": [...]}`` record trains its last assistant turn (earlier turns are context,
LLaMA-Factory's ``mask_history``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from common.artifacts import RunDir
from common.config import ConfigError, stage_cli
from common.config import help_meta as _help
from common.data import ON_BAD_ROW_HELP, DataSpec, check_on_bad_row_setting, data_metrics, split_records
from common.models import load_causal_lm, load_tokenizer, torch_dtype
from common.templates import encode_prompt_response, template_names
from common.train import (
    check_4bit,
    check_deepspeed_config,
    check_schedule,
    log_at_checkpoints_callback,
    logged_losses,
    prepare_checkpoints,
    quantization_config_4bit,
    record_batch,
    resolve_accumulation,
    resolve_lora_targets,
    resolve_report_to,
    save_final,
    train_loss_metrics,
)


@dataclass
class SFTConfig:
    """Settings of the SFT stage (section ``sft`` of a recipe)."""

    model_name_or_path: str = field(metadata=_help("hub id, local folder or embedded:<name>"))
    dataset: str = field(metadata=_help("sft data {prompt, response} or {messages}: hub id or local file/folder"))
    output_dir: str = field(metadata=_help("run folder: final model (or adapter), tokenizer, checkpoints, metrics"))
    template: str = field(default="tokenizer", metadata=_help("chat template name (common.templates)"))
    system: str | None = field(default=None, metadata=_help("system message; None: the template's default"))
    split: str = field(default="train", metadata=_help("split of `dataset` (hub) or file stem in a folder"))
    subset: str | None = field(default=None, metadata=_help("hub dataset config name"))
    columns: dict | None = field(default=None, metadata=_help("column mapping {canonical: source column}"))
    source_format: str = field(default="canonical", metadata=_help("canonical, or hh_rlhf (chosen replies)"))
    on_bad_row: str = field(default="skip", metadata=_help(ON_BAD_ROW_HELP))
    limit: int | None = field(default=None, metadata=_help("train on a seeded subset of this many records"))
    eval_split: str | None = field(default=None, metadata=_help("split of `dataset` for eval_loss; None: use "
                                                                "eval_fraction of the training records"))
    eval_fraction: float = field(default=0.0, metadata=_help("share of training records held out for eval_loss"))
    seed: int = field(default=42, metadata=_help("seed for data subset/split, init and shuffling"))
    learning_rate: float = field(default=2e-5, metadata=_help("peak learning rate"))
    num_train_epochs: float = field(default=1.0, metadata=_help("epochs over the training records"))
    max_steps: int = field(default=-1, metadata=_help("optimizer steps; > 0 overrides num_train_epochs"))
    per_device_train_batch_size: int = field(default=4, metadata=_help("examples per device per micro-batch"))
    per_device_eval_batch_size: int = field(default=8, metadata=_help("examples per device when evaluating"))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("micro-batches per optimizer step"))
    global_batch_size: int | None = field(default=None, metadata=_help(
        "examples per optimizer step over all processes: sets gradient_accumulation_steps = global_batch_size / "
        "(per_device_train_batch_size x WORLD_SIZE), so the launch's GPU count keeps upstream's batch; None: "
        "gradient_accumulation_steps as given"))
    max_length: int = field(default=1024, metadata=_help("tokens per example; longer ones are cut (prompt start "
                                                         "and response start kept, see encode_prompt_response)"))
    lr_scheduler_type: str = field(default="cosine", metadata=_help("transformers scheduler (linear, cosine...)"))
    warmup_steps: int = field(default=0, metadata=_help("linear warmup steps"))
    weight_decay: float = field(default=0.0, metadata=_help("AdamW weight decay"))
    use_lora: bool = field(default=False, metadata=_help("train a LoRA adapter instead of all weights"))
    lora_r: int = field(default=8, metadata=_help("LoRA rank"))
    lora_alpha: int = field(default=16, metadata=_help("LoRA alpha (scale = alpha / r)"))
    lora_dropout: float = field(default=0.05, metadata=_help("LoRA dropout"))
    lora_target_modules: list[str] = field(default_factory=lambda: ["auto"], metadata=_help(
        "module names, or auto = the family's attention projections (common.train.LORA_TARGETS_BY_FAMILY)"))
    load_in_4bit: bool = field(default=False, metadata=_help("QLoRA: 4-bit NF4 base (CUDA + bitsandbytes only)"))
    dtype: str = field(default="float32", metadata=_help("weight dtype: float32, bfloat16, float16"))
    gradient_checkpointing: bool = field(default=False, metadata=_help("trade compute for memory (large models)"))
    padding_free: bool = field(default=False, metadata=_help(
        "flatten each batch into one row with position ids (no pad tokens; same loss). Needs an attention that reads "
        "packed position ids: flash_attention_2/3, or sdpa/eager on transformers >= 5 (block mask from position ids)"))
    trust_remote_code: bool = field(default=False, metadata=_help("allow hub model code (ChatGLM3, Baichuan2)"))
    deepspeed: str | None = field(default=None, metadata=_help("DeepSpeed json, e.g. common/configs/deepspeed/zero3.json"))
    report_to: str = field(default="wandb", metadata=_help("wandb (offline unless WANDB_MODE is set), tensorboard "
                                                           "or none; falls back to none when wandb is absent"))
    logging_steps: int = field(default=10, metadata=_help("log the loss every N optimizer steps"))
    save_steps: int = field(default=500, metadata=_help("checkpoint every N optimizer steps"))
    save_total_limit: int | None = field(default=2, metadata=_help("keep at most this many checkpoints"))
    resume: bool = field(default=False, metadata=_help("continue from the last checkpoint in output_dir"))
    overwrite: bool = field(default=False, metadata=_help("replace a finished run / its checkpoints in output_dir"))

    def __post_init__(self) -> None:
        if self.template not in template_names():
            raise ConfigError(f"sft.template: {self.template!r} is not registered; known: {template_names()}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(f"sft.eval_fraction: {self.eval_fraction} must be in [0, 1)")
        check_on_bad_row_setting(self.on_bad_row, "sft.on_bad_row")
        for key in ("max_length", "per_device_train_batch_size", "per_device_eval_batch_size",
                    "gradient_accumulation_steps", "lora_r", "logging_steps", "save_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"sft.{key}: {getattr(self, key)} must be >= 1")
        if self.learning_rate <= 0:
            raise ConfigError(f"sft.learning_rate: {self.learning_rate} must be > 0")
        check_schedule(self, "sft")
        if self.report_to not in ("wandb", "none", "tensorboard"):
            raise ConfigError(f"sft.report_to: {self.report_to!r} is not one of ['wandb', 'none', 'tensorboard']")
        self.gradient_accumulation_steps = resolve_accumulation(
            self.global_batch_size, self.per_device_train_batch_size, self.gradient_accumulation_steps, "sft")
        torch_dtype(self.dtype)
        check_4bit(self.load_in_4bit, self.use_lora, "sft")
        check_deepspeed_config(self.deepspeed, "sft")

    def data_spec(self, split: str | None = None) -> DataSpec:
        return DataSpec.from_fields(self.dataset, split or self.split, self.subset, self.columns,
                                    None if split else self.limit, self.source_format, self.on_bad_row)


def sft_examples(records: list[dict], tokenizer: Any, cfg: SFTConfig) -> list[dict]:
    """Canonical sft records -> {input_ids, labels} with the prompt masked (see module docstring)."""
    out = []
    for rec in records:
        if "messages" in rec and "prompt" not in rec:
            prompt, response = rec["messages"][:-1], rec["messages"][-1]["content"]
        else:
            prompt, response = rec["prompt"], rec["response"]
        enc = encode_prompt_response(tokenizer, prompt, response, cfg.template, cfg.max_length, cfg.system)
        out.append({"input_ids": enc["input_ids"], "labels": enc["labels"]})
    return out


def load_sft_data(cfg: SFTConfig, stats: dict | None = None) -> tuple[list[dict], list[dict]]:
    """Training and eval records; ``stats`` receives the rows read and skipped of both loads (common.data)."""
    train = cfg.data_spec().load("sft", seed=cfg.seed, stats=stats)
    if cfg.eval_split:
        return train, cfg.data_spec(cfg.eval_split).load("sft", seed=cfg.seed, stats=stats)
    if cfg.eval_fraction > 0:
        parts = split_records(train, {"eval": cfg.eval_fraction, "train": 1 - cfg.eval_fraction}, seed=cfg.seed)
        return parts["train"], parts["eval"]
    return train, []


def build_model(cfg: SFTConfig) -> Any:
    import torch

    kwargs: dict[str, Any] = {}
    if cfg.load_in_4bit:
        kwargs["quantization_config"] = quantization_config_4bit(torch_dtype(cfg.dtype))
    # Half-precision training is a GPU feature: the Trainer's bf16/fp16 flag runs forwards under autocast, and the
    # optimiser must step float32 weights (AdamW on bf16 weights rounds every update below 2^-8 relative away). So
    # the weights load in cfg.dtype only where they are frozen (the LoRA / 4-bit base; PEFT keeps the adapters in
    # float32) or DeepSpeed keeps fp32 master weights itself; else in float32. On CPU we train in float32.
    half_ok = torch.cuda.is_available() and (cfg.use_lora or cfg.load_in_4bit or bool(cfg.deepspeed))
    dtype = cfg.dtype if half_ok else "float32"
    model = load_causal_lm(cfg.model_name_or_path, dtype=dtype, trust_remote_code=cfg.trust_remote_code, **kwargs)
    if not cfg.use_lora:
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    targets = resolve_lora_targets(model, cfg.lora_target_modules, "sft.lora_target_modules")
    lora = LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets)
    return get_peft_model(model, lora)


def build_sft_trainer(cfg: SFTConfig, model: Any, tokenizer: Any, train_rows: list[dict], eval_rows: list[dict]):
    """TRL's SFTTrainer on pre-tokenised {input_ids, labels} rows (also used by bench/ on in-memory models)."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig as TRLSFTConfig
    from trl import SFTTrainer

    half = cfg.dtype in ("bfloat16", "bf16", "float16", "fp16") and torch.cuda.is_available()
    args = TRLSFTConfig(
        output_dir=cfg.output_dir, seed=cfg.seed, data_seed=cfg.seed, learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_train_epochs, max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps, lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_steps, weight_decay=cfg.weight_decay, logging_steps=cfg.logging_steps,
        save_strategy="steps", save_steps=cfg.save_steps, save_total_limit=cfg.save_total_limit,
        deepspeed=cfg.deepspeed, report_to=resolve_report_to(cfg.report_to, cfg.output_dir),
        gradient_checkpointing=cfg.gradient_checkpointing,
        bf16=half and cfg.dtype in ("bfloat16", "bf16"), fp16=half and cfg.dtype in ("float16", "fp16"),
        # padding-free: rows are already cut to max_length by encode_prompt_response, and TRL refuses a max_length there
        max_length=None if cfg.padding_free else cfg.max_length, packing=False, padding_free=cfg.padding_free,
        eval_strategy="no",
    )
    return SFTTrainer(
        model=model, args=args, train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None, processing_class=tokenizer,
    )


def train_sft(cfg: SFTConfig) -> dict[str, Any]:
    """Train; save the final model (or adapter) and tokenizer into output_dir; return the metrics."""
    resume_from = prepare_checkpoints(cfg.output_dir, cfg.resume, cfg.overwrite, "sft")
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    tokenizer = load_tokenizer(cfg.model_name_or_path, trust_remote_code=cfg.trust_remote_code)
    data_stats: dict[str, Any] = {}
    train_records, eval_records = load_sft_data(cfg, data_stats)
    train_rows = sft_examples(train_records, tokenizer, cfg)
    eval_rows = sft_examples(eval_records, tokenizer, cfg)
    n_trained_tokens = sum(sum(lab != -100 for lab in r["labels"]) for r in train_rows)
    print(f"sft: {len(train_rows)} training examples ({n_trained_tokens} trained tokens), {len(eval_rows)} eval; "
          f"template {cfg.template!r}; resume from {resume_from}", flush=True)

    trainer = build_sft_trainer(cfg, build_model(cfg), tokenizer, train_rows, eval_rows)
    loss_log = log_at_checkpoints_callback()
    trainer.add_callback(loss_log)
    record_batch(run, trainer, "sft")
    result = trainer.train(resume_from_checkpoint=resume_from)
    save_final(trainer, tokenizer, cfg.output_dir)

    losses = logged_losses(trainer.state.log_history)
    metrics: dict[str, Any] = {
        **train_loss_metrics(trainer, result, loss_log.start_step),  # the whole run's mean, across resumes
        "train_loss_first": losses[0] if losses else None,
        "train_loss_last": losses[-1] if losses else None,
        "global_step": int(trainer.state.global_step),
        "n_train": len(train_rows),
        "n_eval": len(eval_rows),
        **data_metrics(data_stats),  # rows read, and HH-RLHF rows skipped per reason
        "trained_tokens": int(n_trained_tokens),
        "resumed_from": resume_from,
    }
    if eval_rows:
        metrics["eval_loss"] = float(trainer.evaluate()["eval_loss"])
    if not trainer.is_world_process_zero():
        return metrics
    return run.finish(metrics, key_metric="eval_loss" if eval_rows else "train_loss_last")


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(SFTConfig, train_sft, "sft", "Supervised fine-tuning (response-only loss) of a causal LM.",
                     argv)


if __name__ == "__main__":
    main()
