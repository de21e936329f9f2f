"""Every RLLR stage in one Python process, in the order of ``scripts/run_all.sh``.

    python -m rllr.pipeline --config rllr/configs/tiny.yaml --tasks sst2 [--model tiny] [--runs runs]
                            [--modes rlhf rllr rllr_mixed] [--overwrite] [--threads N] [--set SECTION.KEY=VALUE ...]

The stage scripts start one interpreter per stage (about 19 for three PPO modes); importing torch, transformers and
TRL costs several CPU seconds each time, which dominated the tiny run on two shared cores. This driver imports once
and calls the same stage functions with the same overrides, into the same folders (``$RUNS/rllr/$MODEL/<task>/``),
skipping a stage whose ``metrics.json`` exists (a merge whose folder exists) unless ``--overwrite``. The per-stage
scripts stay the way to run real models (one stage per job, on a GPU node).

``--set rm_rat.max_steps=4`` overrides one recipe key of a section (repeatable; ``rl`` keys apply to every mode).
A comma-joined task group (``sst2,rte``) trains one model on all of its tasks, as in the scripts.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.config import ConfigError, UserError, load_config, read_yaml, run_cli
from rllr.reward import MODES


def _stage(name: str, run_dir: Path, overwrite: bool, log: list[dict], fn: Callable[..., Any], cfg: Any) -> None:
    """Run ``fn(cfg)`` unless ``run_dir`` already finished; record its wall time."""
    if (run_dir / "metrics.json").is_file() and not overwrite:
        print(f"skip (finished): {run_dir}", flush=True)
        return
    print(f"=== rllr: {name} ===", flush=True)
    start = time.time()
    fn(cfg())
    gc.collect()  # the previous stage's model must not stay resident next to the next one
    log.append({"stage": name, "wall_s": round(time.time() - start, 1)})


def _merge(name: str, adapter: Path, out: Path, overwrite: bool, base: Path | None, trust_remote_code: bool,
           log: list[dict]) -> None:
    from common.merge_lora import merge_lora

    if out.is_dir() and not overwrite:
        print(f"skip (merged): {out}", flush=True)
        return
    start = time.time()
    merge_lora(adapter, out, base=str(base) if base else None, trust_remote_code=trust_remote_code,
               overwrite=overwrite)
    gc.collect()
    log.append({"stage": f"merge {name}", "wall_s": round(time.time() - start, 1)})


def split_sets(items: list[str]) -> dict[str, dict[str, str]]:
    """``["rl.total_steps=8", "sft_wrat.max_steps=4"]`` -> {"rl": {"total_steps": "8"}, "sft_wrat": {...}}."""
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise UserError(f"--set {item!r}: write SECTION.KEY=VALUE, e.g. rl.total_steps=8")
        out.setdefault(section, {})[name] = value
    return out


def run_task(config: str, task: str, root: Path, modes: list[str], overwrite: bool,
             sets: dict[str, dict[str, str]], reuse_start: bool = False) -> list[dict]:
    """All stages for one task (or comma-joined task group) into ``root``; returns per-stage wall times."""
    from common.eval.rewardbench import RewardBenchConfig, evaluate_rewardbench
    from common.train.sft import SFTConfig, train_sft
    from rllr.build_data import BuildDataConfig, build_data
    from rllr.compare import compare_and_write
    from rllr.ppo import RLLRPPOConfig, train_rllr_ppo
    from rllr.predict import PredictConfig, predict
    from rllr.rm import RLLRRMConfig, start_model, train_rllr_rm
    from rllr.tau import TauConfig, run_tau

    recipe = read_yaml(config)
    ow = {"overwrite": True} if overwrite else {}
    log: list[dict] = []

    def cfg(cls, section: str, **values):
        return load_config(cls, config, section, {**values, **ow, **sets.get(section, {})})

    def sft(section: str, dataset: str, out: Path) -> None:
        _stage(section, out, overwrite, log, train_sft,
               lambda: cfg(SFTConfig, section, dataset=str(root / "data" / dataset), output_dir=str(out)))

    def rm(section: str, dataset: str) -> None:
        _stage(section, root / section, overwrite, log, train_rllr_rm, lambda: cfg(
            RLLRRMConfig, section, model_name_or_path=start_model(recipe, section, str(base)),
            dataset=str(root / "data" / dataset), eval_dataset=str(root / "data" / "label_pairs_test.jsonl"),
            output_dir=str(root / section)))

    def ppo(mode: str, out: Path) -> None:  # RM run folders: rllr.ppo reads each the way it was trained
        rms = {"label_rm": {"path": str(root / "rm_label")}, "rat_rm": {"path": str(root / "rm_rat")}}
        _stage(f"ppo {mode}", out, overwrite, log, train_rllr_ppo, lambda: cfg(
            RLLRPPOConfig, "rl", mode=mode, model=str(base), dataset=str(root / "data" / "prompts.jsonl"),
            output_dir=str(out), tau_file=str(tau_json), **rms))

    def predict_with(name: str, model: Path) -> None:
        out = root / "predict" / name
        if reuse_start and name.startswith("ppo_"):  # exact greedy answers, generating only where they change
            from rllr.greedy_reuse import ReuseConfig, predict_reusing

            _stage(f"predict {name} (reusing sft_wrat)", out, overwrite, log, predict_reusing, lambda: cfg(
                ReuseConfig, "predict", model=str(model), data=str(root / "data" / "eval.jsonl"),
                output_dir=str(out), start=str(root / "predict" / "sft_wrat")))
            return
        _stage(f"predict {name}", out, overwrite, log, predict, lambda: cfg(
            PredictConfig, "predict", model=str(model), data=str(root / "data" / "eval.jsonl"), output_dir=str(out)))

    def rewardbench(rm_name: str) -> None:  # section rewardbench: hub set / tiny sample; data '' = off
        out = root / "rewardbench" / rm_name
        _stage(f"rewardbench {rm_name}", out, overwrite, log, evaluate_rewardbench, lambda: cfg(
            RewardBenchConfig, "rewardbench", model=str(root / rm_name), output_dir=str(out)))

    sft_wrat = recipe.get("sft_wrat") or {}
    if not isinstance(sft_wrat, dict):
        raise ConfigError(f"{config}: section 'sft_wrat' must be a mapping of settings (key: value), not a "
                          f"{type(sft_wrat).__name__}")
    trc = bool(sft_wrat.get("trust_remote_code"))
    base = root / "sft_wrat_merged"
    tau_json = root / "rm_label" / "tau.json"
    _stage("data", root / "data", overwrite, log, build_data,
           lambda: cfg(BuildDataConfig, "data", tasks=task.split(","), output_dir=str(root / "data")))
    sft("sft_wrat", "sft_rationale.jsonl", root / "sft_wrat")
    _merge("sft_wrat_merged", root / "sft_wrat", base, overwrite, None, trc, log)
    rm("rm_rat", "rationale_pairs.jsonl")
    rm("rm_label", "label_pairs.jsonl")
    if overwrite or not tau_json.is_file():
        run_tau(TauConfig(scores=str(root / "rm_label" / "eval_scores.jsonl"), output=str(tau_json)))
    sft("sft_label", "sft_label.jsonl", root / "sft_label")
    _merge("sft_label_merged", root / "sft_label", root / "sft_label_merged", overwrite, None, trc, log)
    systems = {"sft_wrat": base, "sft_label": root / "sft_label_merged"}  # sft_wrat first: PPO may reuse its answers
    for mode in modes:
        out = root / f"ppo_{mode}"
        ppo(mode, out)
        _merge(f"ppo_{mode}/policy_merged", out / "policy", out / "policy_merged", overwrite, base, trc, log)
        systems[f"ppo_{mode}"] = out / "policy_merged"
    for name, model in systems.items():
        predict_with(name, model)
    for name in ("rm_rat", "rm_label"):
        rewardbench(name)
    print(compare_and_write(root), flush=True)
    return log


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--config", required=True, help="RLLR recipe (rllr/configs/<model>.yaml)")
    parser.add_argument("--tasks", nargs="+", required=True, help="tasks, each a name or a comma-joined group")
    parser.add_argument("--model", default=None, help="run-folder name (default: the recipe's file stem)")
    parser.add_argument("--runs", default="runs", help="runs root")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="PPO modes to run")
    parser.add_argument("--overwrite", action="store_true", help="rerun finished stages, replacing their folders")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--reuse-start-answers", action="store_true",
                        help="PPO policies' greedy answers via rllr.greedy_reuse: the SFT-with-rationales answers "
                             "wherever greedy decoding would repeat them (exact; generates only the rest)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one recipe key of one section (repeatable)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    def go() -> int:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        sets = split_sets(args.sets)
        model = args.model or Path(args.config).stem
        start = time.time()
        for task in args.tasks:
            root = Path(args.runs) / "rllr" / model / task.replace(",", "+")
            for row in run_task(args.config, task, root, args.modes, args.overwrite, sets, args.reuse_start_answers):
                print(f"  {row['stage']:<36} {row['wall_s']:>8.1f} s")
        print(f"rllr pipeline: {time.time() - start:.0f} s wall, {time.process_time():.0f} s CPU", flush=True)
        return 0

    return run_cli(go)


if __name__ == "__main__":
    raise SystemExit(main())
