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


# --- checkpoints: which count, resume / overwrite / refuse ----------------------------------------------------------
#
# A kill during a save leaves a checkpoint folder half written (HF writes the weights, optimizer, scheduler and RNG
# files, then trainer_state.json last; none of them atomically). Such a folder is not a checkpoint: resuming from it
# dies in safetensors or torch.load. A folder counts only when every file HF wrote is whole (checked below, cheaply:
# headers and sizes, not contents), so checkpoints written before this check existed still count.

WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "adapter_model.bin", "pytorch_model.bin.index.json")
INCOMPLETE_PREFIX = "incomplete-"


def _safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file is not whole: header length, JSON header, and the data size the header promises."""
    import json
    import struct

    size = path.stat().st_size
    if size < 8:
        return f"{path.name} is {size} bytes (truncated)"
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if 8 + n > size:
            return f"{path.name} is truncated (its header alone needs {8 + n} bytes, the file has {size})"
        try:
            header = json.loads(fh.read(n))
        except (ValueError, UnicodeDecodeError):
            header = None
    if not isinstance(header, dict):
        return f"{path.name} has no valid header (truncated or not safetensors)"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)
               and "data_offsets" in v), default=0)
    if size != 8 + n + end:
        return f"{path.name} is {size} bytes, its header describes {8 + n + end} (truncated)"
    return None


def _torch_file_problem(path: Path) -> str | None:
    """torch.save writes a zip archive: one whose end (the central directory) is missing was cut short."""
    import zipfile

    with path.open("rb") as fh:
        magic = fh.read(4)
    if not magic:
        return f"{path.name} is empty"
    if magic.startswith(b"PK") and not zipfile.is_zipfile(path):
        return f"{path.name} is truncated (its zip archive has no end)"
    return None


def checkpoint_problem(path: str | Path, state_file: str = "trainer_state.json",
                       weight_dirs: tuple[str, ...] = (".",)) -> str | None:
    """Why ``path`` is not a complete checkpoint, or None when it is: ``state_file`` (written last) present and whole,
    model weights in each of ``weight_dirs``, every .safetensors / .pt / .pth / .bin file whole, every shard an index
    names present. HF Trainer checkpoints use the defaults; PPO's use trainer_state.pt and policy/ (critic/)."""
    import json

    path = Path(path)
    state = path / state_file
    if not state.is_file():
        return f"no {state_file} (the save was cut short)"
    if state.suffix == ".json":
        try:
            json.loads(state.read_text())
        except (ValueError, UnicodeDecodeError):
            return f"{state_file} is not valid JSON (cut short)"
    for sub in weight_dirs:
        folder = path / sub
        if not any((folder / f).is_file() for f in WEIGHT_FILES) and not any(folder.glob("global_step*")):
            return f"no model weights in {folder.relative_to(path.parent)}"
        for index in folder.glob("*.index.json"):
            try:
                shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
            except (ValueError, UnicodeDecodeError, AttributeError):
                return f"{index.name} is not valid JSON (cut short)"
            missing = sorted(s for s in shards if not (folder / s).is_file())
            if missing:
                return f"{index.name} names shards that are missing: {missing[:3]}"
    for f in sorted(path.rglob("*")):
        if not f.is_file():
            continue
        problem = _safetensors_problem(f) if f.suffix == ".safetensors" else \
            _torch_file_problem(f) if f.suffix in (".pt", ".pth", ".bin") else None
        if problem:
            where = f.parent.relative_to(path)
            return problem if where == Path(".") else f"{where}/{problem}"
    return None


def _step_of(path: Path, prefix: str) -> int | None:
    rest = path.name[len(prefix):] if path.name.startswith(prefix) else ""
    return int(rest) if rest.isdigit() else None


def scan_checkpoints(root: str | Path, prefix: str = "checkpoint-", **checks: Any) -> tuple[list[Path],
                                                                                          list[tuple[Path, str]]]:
    """Checkpoint folders ``<root>/<prefix>N``: (complete ones by step, [(incomplete one, why)])."""
    root = Path(root)
    if not root.is_dir():
        return [], []
    found = sorted((step, p) for p in root.iterdir() if p.is_dir() and (step := _step_of(p, prefix)) is not None)
    complete: list[Path] = []
    incomplete: list[tuple[Path, str]] = []
    for _, p in found:
        try:
            why = checkpoint_problem(p, **checks)
        except OSError as exc:  # another rank set it aside while this one read it (it was incomplete there too)
            why = f"unreadable ({exc.strerror or exc})"
        if why:
            incomplete.append((p, why))
        else:
            complete.append(p)
    return complete, incomplete


def set_aside(path: Path) -> Path:
    """Rename an incomplete checkpoint to ``incomplete-<name>`` beside it: out of the checkpoint glob (HF's rotation
    would otherwise count a stale higher-numbered folder as the newest and delete the good ones), but not deleted."""
    dest = path.with_name(INCOMPLETE_PREFIX + path.name)
    n = 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{INCOMPLETE_PREFIX}{path.name}.{n}")
    os.replace(path, dest)
    return dest


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest complete ``checkpoint-N`` in ``output_dir`` (half-written ones skipped), or None."""
    complete, _ = scan_checkpoints(output_dir)
    return str(complete[-1]) if complete else None


def finished_run_error(output_dir: str | Path, resume: bool) -> UserError:
    """The one line for a rerun into a finished run (metrics.json) without --overwrite."""
    import json

    out = Path(output_dir)
    if not resume:
        return UserError(f"{out} already holds a finished run (metrics.json); pass --overwrite true to replace it or "
                         "choose another output_dir")
    try:
        steps = json.loads((out / "metrics.json").read_text()).get("global_step")
    except (ValueError, OSError, AttributeError):
        steps = None
    done = f", global_step {steps}" if steps is not None else ""
    return UserError(f"{out} holds a finished run (metrics.json{done}): --resume true continues only a run that "
                     "stopped before it finished, and would retrain this one and rewrite its results. Pass --overwrite "
                     "true to train it again from the start, or choose another output_dir (to train it further, start "
                     f"a new run with model_name_or_path: {out})")


def prepare_checkpoints(output_dir: str | Path, resume: bool, overwrite: bool, where: str) -> str | None:
    """The checkpoint to resume from, or None; call it before ``RunDir.start`` (which rewrites run.json).

    - A finished run (metrics.json) is never resumed: without ``overwrite`` that is a one-line error (resuming it
      would train past its end and rewrite its metrics); with ``overwrite`` its checkpoints and metrics.json go and
      it trains from the start (so a kill during that retraining leaves a run that ``resume`` continues).
    - Checkpoints of an unfinished run are never silently discarded: without ``resume`` or ``overwrite`` they are an
      error; ``overwrite`` deletes them; ``resume`` takes the newest *complete* one. Half-written ones (a kill during
      a save) are renamed ``incomplete-checkpoint-N`` and named in a note.
    """
    out = Path(output_dir)
    finished = (out / "metrics.json").is_file()
    if finished and not overwrite:
        raise finished_run_error(out, resume)
    complete, incomplete = scan_checkpoints(out)
    if overwrite and (finished or not resume):
        # one process deletes: under a launcher every rank runs this at once, and two rmtree's of one folder race
        # (the rank that loses finds files already gone); the Trainer saves checkpoints from rank 0 only, too
        if is_main_process() and out.is_dir():
            for ckpt in [*out.glob("checkpoint-*"), *out.glob(f"{INCOMPLETE_PREFIX}checkpoint-*")]:
                shutil.rmtree(ckpt)
            (out / "metrics.json").unlink(missing_ok=True)
        return None
    if not resume:
        if complete or incomplete:
            name = (complete or [p for p, _ in incomplete])[-1].name
            raise UserError(f"{out} holds checkpoints of an earlier run ({name}); pass --resume true to continue it "
                            "or --overwrite true to start over")
        return None
    for path, why in incomplete:
        if is_main_process():
            moved = set_aside(path)
            print(f"note: {where}: skipping the incomplete {path.name} ({why}); kept as {moved.name}", flush=True)
    if not complete:
        if is_main_process():
            print(f"note: {where}.resume is set but {out} holds no complete checkpoint; starting from scratch",
                  flush=True)
        return None
    if is_main_process():
        print(f"{where}: resuming from {complete[-1]}", flush=True)
    return str(complete[-1])


def log_at_checkpoints_callback() -> Any:
    """A TrainerCallback that logs the training loss at every checkpoint step, so each checkpoint's log_history
    (trainer_state.json, restored on resume) covers every step up to it, and that records the step this ``train()``
    call started from (``start_step``, after a resume the checkpoint's): ``train_loss_metrics`` needs both."""
    from transformers import TrainerCallback

    class LogAtCheckpoints(TrainerCallback):
        start_step = 0

        def on_train_begin(self, args, state, control, **kwargs):  # the checkpoint's state is loaded by now
            self.start_step = int(state.global_step)

        def on_step_end(self, args, state, control, **kwargs):  # after DefaultFlowCallback decided should_save
            if control.should_save:
                control.should_log = True
            return control

    return LogAtCheckpoints()


def run_train_loss(log_history: list[dict], segment_loss: float, start_step: int, end_step: int) -> float:
    """Mean training loss per optimizer step over the whole run, across resumes.

    HF's ``TrainOutput.training_loss`` averages only the steps of the last ``train()`` call (start_step..end_step].
    The steps before it come from the logged window means in ``log_history`` (restored from the checkpoint), each
    weighted by its window's length; with ``log_at_checkpoints_callback`` a checkpoint step is always a logged step,
    so the windows cover 1..start_step exactly. (A checkpoint written without it may end with unlogged steps: those
    are then left out of the mean rather than guessed.)"""
    if start_step <= 0:
        return float(segment_loss)
    total, prev = 0.0, 0
    for entry in log_history:
        step = entry.get("step")
        if "loss" in entry and step is not None and prev < step <= start_step:
            total += float(entry["loss"]) * (step - prev)
            prev = step
    segment_steps = max(end_step - start_step, 0)
    counted = prev + segment_steps
    return (total + float(segment_loss) * segment_steps) / counted if counted else float(segment_loss)


def train_loss_metrics(trainer: Any, result: Any, start_step: int) -> dict[str, Any]:
    """``train_loss`` over the whole run (``run_train_loss``) and, when resumed, HF's figure for the last segment.
    ``start_step``: the step this train() call started from (``log_at_checkpoints_callback().start_step``)."""
    loss = run_train_loss(trainer.state.log_history, float(result.training_loss), start_step,
                          int(trainer.state.global_step))
    out: dict[str, Any] = {"train_loss": loss}
    if start_step:
        out["train_loss_last_segment"] = float(result.training_loss)
    return out


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
