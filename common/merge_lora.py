"""Fold a LoRA adapter into its base model: W' = W + (alpha / r) · B A, saved as a plain model folder.

    python -m common.merge_lora --base B --adapter A --out O [--reward-model]

Works for causal LMs and for sequence-classification reward models. For a reward model PEFT trains the score head in
full (``modules_to_save``; TRL's RewardTrainer and our RM stage set it for task type SEQ_CLS) and stores it in the
adapter file; ``merge_and_unload`` swaps that trained copy back in place of the base's freshly initialised head, so
the merged folder scores exactly as base + adapter did. ``--base`` defaults to the adapter's own
``base_model_name_or_path``; the task is read from ``adapter_config.json`` (``SEQ_CLS`` means reward model).

The merged model is written to ``<out>.tmp`` and renamed to ``<out>``, so ``<out>`` never holds a half-written model;
an existing ``<out>`` is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from common.artifacts import atomic_write_json
from common.config import UserError, run_cli
from common.models import load_causal_lm, load_reward_model, load_tokenizer, model_source


def read_adapter_config(adapter: str | Path) -> dict[str, Any]:
    path = Path(adapter) / "adapter_config.json"
    if not path.is_file():
        raise UserError(f"{adapter}: not a PEFT adapter folder (no adapter_config.json); pass the folder a LoRA run "
                        "saved (its output_dir)")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise UserError(f"{path}: expected a JSON object of adapter settings, got {type(info).__name__}")
    return info


def merge_lora(adapter: str | Path, out: str | Path, base: str | None = None, reward_model: bool | None = None,
               dtype: str = "float32", trust_remote_code: bool = False, overwrite: bool = False) -> Path:
    """Merge ``adapter`` into ``base`` and save model + tokenizer to ``out``; returns ``out``."""
    adapter, out = Path(adapter), Path(out)
    info = read_adapter_config(adapter)
    base = base or info.get("base_model_name_or_path")
    if not base:
        raise UserError(f"{adapter}/adapter_config.json names no base model; pass --base")
    is_seq_cls = info.get("task_type") == "SEQ_CLS"
    if reward_model is None:
        reward_model = is_seq_cls
    if reward_model != is_seq_cls:
        raise UserError(f"{adapter}: adapter task_type is {info.get('task_type')!r}, but "
                        f"{'--reward-model was' if reward_model else 'no --reward-model was'} given; "
                        "drop or add --reward-model")
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; pass --overwrite to replace it or choose another --out")
    model_source(base)  # a missing base folder or a file fails here, before peft and torch load
    from peft import PeftModel

    tok_source = str(adapter) if (adapter / "tokenizer_config.json").exists() else base
    tokenizer = load_tokenizer(tok_source, trust_remote_code=trust_remote_code)
    if reward_model:
        model = load_reward_model(base, dtype=dtype, trust_remote_code=trust_remote_code,
                                  pad_token_id=tokenizer.pad_token_id)
    else:
        model = load_causal_lm(base, dtype=dtype, trust_remote_code=trust_remote_code)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    atomic_write_json(tmp / "merge_info.json", {"base": base, "adapter": str(adapter), "reward_model": reward_model,
                                                "lora_r": info.get("r"), "lora_alpha": info.get("lora_alpha")})
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Merge a LoRA adapter into its base model (causal LM or reward "
                                                 "model) and save the result as a plain model folder.")
    parser.add_argument("--adapter", required=True, help="folder holding adapter_config.json (a LoRA run's output)")
    parser.add_argument("--out", required=True, help="folder to write the merged model to")
    parser.add_argument("--base", default=None, help="base model (hub id, folder, embedded:<name>); default: the "
                                                     "adapter's base_model_name_or_path")
    parser.add_argument("--reward-model", action="store_true", default=None,
                        help="the adapter is a sequence-classification reward model (detected from the adapter)")
    parser.add_argument("--dtype", default="float32", help="dtype to load and save in (float32, bfloat16, float16)")
    parser.add_argument("--trust-remote-code", action="store_true", help="allow hub model code (ChatGLM3...)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    args = parser.parse_args(argv)

    def go() -> None:
        path = merge_lora(args.adapter, args.out, base=args.base, reward_model=args.reward_model, dtype=args.dtype,
                          trust_remote_code=args.trust_remote_code, overwrite=args.overwrite)
        print(f"merged {args.adapter} into {path}")

    run_cli(go)


if __name__ == "__main__":
    main()
