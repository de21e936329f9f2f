"""SFT, RM and DPO trainers on the same in-memory model, data and batch: ours (common.train) and TRL's stock ones.

Ours are built by the stage modules' own builders (``build_sft_trainer``, ``rm_trainer_from_rows``,
``dpo_trainer_from_rows``) from a stage config, exactly as a recipe would run them; only the model and the
pre-tokenised rows come from the bench instead of a hub id and a dataset file.

TRL (the installed 1.16) runs its stock ``SFTTrainer``, ``RewardTrainer`` and ``DPOTrainer``:
- ``default``: TRL's config defaults (gradient checkpointing on, padded batches) with only the settings every
  implementation shares (batch, max length, steps, precision, completion-only loss).
- ``best``: no gradient checkpointing, padding-free batches where TRL supports them (SFT; TRL 1.16 disables DPO's
  ``padding_free`` and RewardTrainer has none), and Liger kernels for SFT and DPO when ``liger_kernel``
  is importable.
The one change to TRL's DPOTrainer: ``_prepare_dataset`` passes our rows through, since the synthetic data is
already {prompt_ids, chosen_ids, rejected_ids} (the layout TRL's own tokenisation produces); the step is stock.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from bench.shapes import build_model
from bench.spec import BenchSpec
from bench.synthetic import pair_rows, sft_rows


def _common_args(spec: BenchSpec) -> dict[str, Any]:
    """Settings every implementation shares; logging and saving pushed out of the timed loop."""
    return {"output_dir": spec.work_dir, "max_steps": spec.warmup + spec.steps, "seed": spec.seed,
            "per_device_train_batch_size": spec.batch, "gradient_accumulation_steps": 1, "report_to": "none",
            "logging_steps": 10**6, "save_strategy": "no", "bf16": spec.on_cuda, "learning_rate": 1e-5,
            "dataloader_num_workers": 0, "disable_tqdm": True}


def _trl_mode_args(spec: BenchSpec) -> dict[str, Any]:
    if spec.trl_mode == "default":
        return {}
    best: dict[str, Any] = {"gradient_checkpointing": False}
    # Liger's fused forward for Llama calls lm_head, which a sequence-classification RM has not (liger-kernel 0.8.5
    # on the H200 run of 2026-12-04: AttributeError), so the RM runs without it.
    if spec.stage != "rm" and importlib.util.find_spec("liger_kernel") is not None:
        best["use_liger_kernel"] = True
    return best


def _n_rows(spec: BenchSpec) -> int:
    return spec.batch * (spec.warmup + spec.steps)


# ---------------------------------------------------------------------------------------------------------------
# SFT


def ours_sft(spec: BenchSpec, tokenizer):
    from common.train.sft import SFTConfig, build_sft_trainer

    cfg = SFTConfig(model_name_or_path="bench", dataset="bench", output_dir=spec.work_dir, seed=spec.seed,
                    max_steps=spec.warmup + spec.steps, per_device_train_batch_size=spec.batch,
                    max_length=spec.max_len, report_to="none", logging_steps=10**6, save_steps=10**9,
                    learning_rate=1e-5, dtype=spec.dtype_name, padding_free=spec.ours_padding_free)
    rows = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in sft_rows(_n_rows(spec), spec.size,
                                                                                      spec.lengths)]
    model = build_model(spec.size, "causal", spec.dtype, spec.device, spec.seed)
    trainer = build_sft_trainer(cfg, model, tokenizer, rows, [])
    trainer.args.disable_tqdm = True
    return trainer


def trl_sft(spec: BenchSpec, tokenizer):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    extra = _trl_mode_args(spec)
    if spec.trl_mode == "best":  # rows are within max_len already; TRL refuses max_length with padding_free
        extra.update(padding_free=True, max_length=None)
    args = SFTConfig(**{"max_length": spec.max_len, **_common_args(spec), **extra}, completion_only_loss=True)
    rows = [{"input_ids": r["input_ids"], "completion_mask": r["completion_mask"]}
            for r in sft_rows(_n_rows(spec), spec.size, spec.lengths)]
    model = build_model(spec.size, "causal", spec.dtype, spec.device, spec.seed)
    return SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)


# ---------------------------------------------------------------------------------------------------------------
# RM


def _rm_rows(spec: BenchSpec) -> list[dict]:
    return [{"chosen_ids": r["prompt_ids"] + r["chosen_ids"], "rejected_ids": r["prompt_ids"] + r["rejected_ids"]}
            for r in pair_rows(_n_rows(spec), spec.size, spec.lengths)]


def ours_rm(spec: BenchSpec, tokenizer):
    from common.train.rm import RMConfig, rm_trainer_from_rows

    cfg = RMConfig(model_name_or_path="bench", dataset="bench", output_dir=spec.work_dir, seed=spec.seed,
                   max_steps=spec.warmup + spec.steps, per_device_train_batch_size=spec.batch,
                   max_length=spec.max_len, report_to="none", logging_steps=10**6, save_steps=10**9,
                   dtype=spec.dtype_name, padding_free=spec.ours_padding_free)
    model = build_model(spec.size, "seq_cls", spec.dtype, spec.device, spec.seed)
    trainer = rm_trainer_from_rows(cfg, model, tokenizer, _rm_rows(spec), [])
    trainer.args.disable_tqdm = True
    return trainer


def trl_rm(spec: BenchSpec, tokenizer):
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    args = RewardConfig(**_common_args(spec), max_length=spec.max_len, **_trl_mode_args(spec))
    model = build_model(spec.size, "seq_cls", spec.dtype, spec.device, spec.seed)
    return RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(_rm_rows(spec)),
                         processing_class=tokenizer)


# ---------------------------------------------------------------------------------------------------------------
# DPO


def ours_dpo(spec: BenchSpec, tokenizer):
    from common.train.dpo import DPOCollator, DPOConfig, dpo_trainer_from_rows

    cfg = DPOConfig(model_name_or_path="bench", dataset="bench", output_dir=spec.work_dir, seed=spec.seed,
                    max_steps=spec.warmup + spec.steps, per_device_train_batch_size=spec.batch,
                    max_length=spec.max_len, report_to="none", logging_steps=10**6, save_steps=10**9,
                    dtype=spec.dtype_name, padding_free=spec.ours_padding_free)
    rows = []
    for r in pair_rows(_n_rows(spec), spec.size, spec.lengths):
        masked = [-100] * len(r["prompt_ids"])
        rows.append({side: {"input_ids": r["prompt_ids"] + r[f"{side}_ids"], "labels": masked + r[f"{side}_ids"]}
                     for side in ("chosen", "rejected")})
    model = build_model(spec.size, "causal", spec.dtype, spec.device, spec.seed)
    ref = build_model(spec.size, "causal", spec.dtype, spec.device, spec.seed)
    trainer = dpo_trainer_from_rows(cfg, model, ref, tokenizer, rows, DPOCollator(tokenizer.pad_token_id, (), cfg.padding_free))
    trainer.args.disable_tqdm = True
    return trainer


def trl_dpo(spec: BenchSpec, tokenizer):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    class PretokenizedDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset  # already {prompt_ids, chosen_ids, rejected_ids}, EOS included

    args = DPOConfig(**_common_args(spec), max_length=spec.max_len, **_trl_mode_args(spec))
    model = build_model(spec.size, "causal", spec.dtype, spec.device, spec.seed)
    ref = build_model(spec.size, "causal", spec.dtype, spec.device, spec.seed)
    rows = pair_rows(_n_rows(spec), spec.size, spec.lengths)
    return PretokenizedDPOTrainer(model=model, ref_model=ref, args=args, train_dataset=Dataset.from_list(rows),
                                  processing_class=tokenizer)


BUILDERS = {("sft", "ours"): ours_sft, ("sft", "trl"): trl_sft, ("rm", "ours"): ours_rm, ("rm", "trl"): trl_rm,
            ("dpo", "ours"): ours_dpo, ("dpo", "trl"): trl_dpo}
