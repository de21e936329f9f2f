"""Training stages (``sft``, ``rm``, ``dpo``, ``ppo``) and the plumbing they share around HF/TRL trainers.

What is shared here: which LoRA modules ``lora_target_modules: auto`` means for each model family, the QLoRA guard,
wandb-offline logging, the run-folder rules for checkpoints (resume / overwrite / refuse), and the atomic save of the
final model into the run folder.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

from common.config import ConfigError, UserError

log = logging.getLogger(__name__)

# model_type -> attention projections LoRA adapts under `lora_target_modules: auto`. Query and value projections, as
# in the LoRA paper (Hu et al. 2021, Sec. 7.1) and the RLDF recipe (q/v_proj); fused-QKV families have one module.
LORA_TARGETS_BY_FAMILY: dict[str, list[str]] = {
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "qwen3": ["q_proj", "v_proj"],
    "gemma": ["q_proj", "v_proj"],
    "gemma2": ["q_proj", "v_proj"],
    "gemma3": ["q_proj", "v_proj"],
    "gemma3_text": ["q_proj", "v_proj"],
    "baichuan": ["W_pack"],  # Baichuan2 fuses q, k, v into W_pack
    "chatglm": ["query_key_value"],
    "bloom": ["query_key_value"],
    "gpt_neox": ["query_key_value"],
    "falcon": ["query_key_value"],
    "gpt2": ["c_attn"],
    "bert": ["query", "value"],  # MiniLM and other BERT encoders (reward models)
}


def resolve_lora_targets(model: Any, targets: str | list[str], where: str) -> list[str]:
    """``auto`` -> the family's attention projections (table above); explicit names must exist in the model."""
    names = [targets] if isinstance(targets, str) else list(targets)
    present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    if names in (["auto"], []):
        model_type = getattr(model.config, "model_type", "?")
        if model_type not in LORA_TARGETS_BY_FAMILY:
            raise ConfigError(f"{where}: no default LoRA modules for model_type {model_type!r}; known families: "
                              f"{sorted(LORA_TARGETS_BY_FAMILY)}. Set {where} to module names, e.g. q_proj,v_proj")
        names = LORA_TARGETS_BY_FAMILY[model_type]
    missing = [n for n in names if n not in present and n != "all-linear"]
    if missing:
        raise ConfigError(f"{where}: modules {missing} are not in this model; some module names: "
                          f"{sorted(n for n in present if n)[:20]}")
    return names


# transformers.SchedulerType values (transformers 5.x): a name among them is accepted without importing transformers
# (its trainer_utils pulls in torch); any other name is checked against the installed transformers' own list.
LR_SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
                 "inverse_sqrt", "reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
                 "warmup_stable_decay", "greedy")


def lr_scheduler_names() -> list[str]:
    """The scheduler names the installed transformers knows (``transformers.SchedulerType``)."""
    from transformers.trainer_utils import SchedulerType

    return [s.value for s in SchedulerType]


def check_schedule(cfg: Any, where: str) -> None:
    """Length and schedule of a trainer stage, checked before TRL sees them: ``max_steps`` -1 (epochs decide) or
    >= 1 (transformers would train one step on 0); ``num_train_epochs`` > 0 unless max_steps decides (-1 epochs
    would save an untrained model and mark the run finished); ``lr_scheduler_type`` a transformers scheduler."""
    if cfg.max_steps != -1 and cfg.max_steps < 1:
        raise ConfigError(f"{where}.max_steps: {cfg.max_steps} must be -1 (train num_train_epochs) or >= 1")
    epochs = float(cfg.num_train_epochs)
    if cfg.max_steps == -1 and not (math.isfinite(epochs) and epochs > 0):
        raise ConfigError(f"{where}.num_train_epochs: {cfg.num_train_epochs} must be a finite number > 0 "
                          "(or set max_steps >= 1)")
    name = cfg.lr_scheduler_type
    if name not in LR_SCHEDULERS and name not in (known := lr_scheduler_names()):
        raise ConfigError(f"{where}.lr_scheduler_type: {name!r} is not a transformers scheduler; known: {known}")


def check_deepspeed_config(path: str | None, where: str) -> None:
    """Fail at config time, not after the model loaded, when the DeepSpeed json is missing or not JSON."""
    if path is None:
        return
    import json

    if not Path(path).is_file():
        raise ConfigError(f"{where}.deepspeed: {path!r} does not exist; use one of "
                          "common/configs/deepspeed/{zero2,zero3,zero3_offload}.json")
    try:
        json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}.deepspeed: {path} is not valid JSON ({exc.msg}, line {exc.lineno})") from None


def world_size_from_env() -> int:
    """Processes of the launch this one belongs to: WORLD_SIZE, which torchrun, ``accelerate launch`` and the deepspeed
    launcher set for every process they start; 1 for a plain ``python -m`` run."""
    raw = os.environ.get("WORLD_SIZE", "1")
    try:
        return max(int(raw), 1)
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={raw!r} in the environment is not an integer") from None


def resolve_accumulation(global_batch_size: int | None, per_device: int, accumulation: int, where: str,
                         world_size: int | None = None) -> int:
    """gradient_accumulation_steps that makes per_device x world_size x accumulation = global_batch_size.

    ``global_batch_size`` None keeps ``accumulation`` as given. ``world_size`` defaults to the launcher's
    (``world_size_from_env``), so one recipe gives upstream's global batch on 1 GPU or on 8."""
    if global_batch_size is None:
        return accumulation
    world = world_size_from_env() if world_size is None else world_size
    per_step = per_device * world
    if global_batch_size < 1 or global_batch_size % per_step:
        raise ConfigError(f"{where}.global_batch_size: {global_batch_size} is not a multiple of "
                          f"per_device_train_batch_size {per_device} x {world} process(es) (WORLD_SIZE); change "
                          "one of them, or set global_batch_size: null to use gradient_accumulation_steps as given")
    return global_batch_size // per_step


def batch_layout(args: Any) -> dict[str, int]:
    """The batch of a trainer run as the trainer resolved it (transformers TrainingArguments): recorded in run.json."""
    per_device, world, accumulation = (int(args.per_device_train_batch_size), int(args.world_size),
                                       int(args.gradient_accumulation_steps))
    return {"per_device_train_batch_size": per_device, "world_size": world,
            "gradient_accumulation_steps": accumulation, "global_batch_size": per_device * world * accumulation}


def record_batch(run: Any, trainer: Any, stage: str) -> dict[str, int]:
    """Write the trainer's batch layout into the run's run.json (``batch``) and say it once (main process)."""
    layout = batch_layout(trainer.args)
    run.record(batch=layout)
    if trainer.is_world_process_zero():
        print(f"{stage}: batch {layout['per_device_train_batch_size']} per device x {layout['world_size']} "
              f"process(es) x {layout['gradient_accumulation_steps']} accumulation = {layout['global_batch_size']} "
              "per optimizer step", flush=True)
    return layout


def check_4bit(load_in_4bit: bool, use_lora: bool, where: str) -> None:
    """QLoRA (Dettmers et al. 2023): 4-bit NF4 base + LoRA; bitsandbytes kernels need a CUDA GPU."""
    if not load_in_4bit:
        return
    import torch

    if not use_lora:
        raise ConfigError(f"{where}.load_in_4bit: a 4-bit base can only be trained through LoRA; set use_lora: true")
    if not torch.cuda.is_available():
        raise ConfigError(f"{where}.load_in_4bit: QLoRA needs a CUDA GPU (bitsandbytes); none is visible here. "
                          "Set load_in_4bit: false to train in full precision")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise ConfigError(f"{where}.load_in_4bit: needs the bitsandbytes package (pip install bitsandbytes)") from None


def quantization_config_4bit(dtype: Any) -> Any:
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype)


def resolve_report_to(report_to: str, output_dir: str) -> str:
    """wandb logs offline into the run folder unless WANDB_MODE is set; without wandb we log nowhere, saying so."""
    if report_to != "wandb":
        return report_to
    try:
        import wandb  # noqa: F401
    except ImportError:
        log.warning("wandb is not importable; report_to falls back to 'none'")
        print("note: wandb is not importable; report_to falls back to 'none'", flush=True)
        return "none"
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_DIR", output_dir)
    return "wandb"


def last_checkpoint(output_dir: str | Path) -> str | None:
    if not os.path.isdir(output_dir):  # before the import: transformers.trainer_utils loads torch and peft (~5 s)
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir))


def prepare_checkpoints(output_dir: str | Path, resume: bool, overwrite: bool, where: str) -> str | None:
    """The checkpoint to resume from, or None. Checkpoints of an unfinished run are never silently discarded:
    without ``resume`` or ``overwrite`` they are an error; ``overwrite`` deletes them."""
    found = last_checkpoint(output_dir)
    if found is None:
        if resume:
            print(f"note: {where}.resume is set but {output_dir} holds no checkpoint; starting from scratch", flush=True)
        return None
    if resume:
        return found
    if overwrite:
        # one process deletes: under a launcher every rank runs this at once, and two rmtree's of one folder race
        # (the rank that loses finds files already gone); the Trainer saves checkpoints from rank 0 only, too
        if int(os.environ.get("RANK", "0")) == 0:
            for ckpt in Path(output_dir).glob("checkpoint-*"):
                shutil.rmtree(ckpt)
        return None
    raise UserError(f"{output_dir} holds checkpoints of an earlier run ({Path(found).name}); pass --resume true to "
                    "continue it or --overwrite true to start over")


def save_final(trainer: Any, tokenizer: Any, output_dir: str | Path) -> None:
    """Save the trained model (or LoRA adapter) and tokenizer into the run folder.

    Everything is first written to ``.final.tmp`` inside the run folder, then each file is renamed into place
    (``os.replace`` is atomic per file), so a kill mid-save never leaves a truncated weight file; ``metrics.json``,
    written after this, marks the set complete. ``save_model`` runs on every rank (ZeRO-3 gathers the shards).
    """
    out = Path(output_dir)
    tmp = out / ".final.tmp"
    if trainer.is_world_process_zero():
        shutil.rmtree(tmp, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(tmp))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(tmp))
        for item in tmp.iterdir():
            dest = out / item.name
            if dest.is_dir():
                shutil.rmtree(dest)
            os.replace(item, dest)
        tmp.rmdir()
    trainer.accelerator.wait_for_everyone()


def logged_losses(log_history: list[dict], key: str = "loss") -> list[float]:
    return [float(e[key]) for e in log_history if key in e]
