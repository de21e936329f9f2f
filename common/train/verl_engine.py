"""``engine: verl``: the RL stage on verl (FSDP + vLLM rollouts on Ray), for runs that outgrow one GPU.

    python -m common.train.ppo --config ser/configs/llama2-70b.yaml --section rl engine=verl gpus_per_node=8 ...

Same entry point, same config section and same outputs as ``engine: ours`` (``log.jsonl``, ``metrics.json`` with
``reward_first``/``reward_last``/``kl_last``, the final ``policy/``), so the paper scripts after the RL stage do not
care which engine ran. Steps, all inside ``output_dir``:

1. ``verl/train.parquet``: the prompts, rendered by our template and filtered by ``max_prompt_length`` exactly as
   ours does (common.train.ppo.encode_prompts); each row carries its record for the reward.
2. ``verl/reward_spec.json`` and ``verl/rlhf_repro.yaml`` (common.verl_bridge.translate; ``verl/translation.json``
   maps every verl key back to our key and lists what differs from ours).
3. ``common.verl_check`` in verl's environment: verl's own config files and validation. A bad key or batch size
   stops here, before a GPU is asked for. ``verl_dry_run: true`` stops after this step.
4. ``common.reward_server`` (this environment, ``reward_device``) serves the reward; verl's reward workers call it
   through ``common/verl_reward.py``.
5. ``python -m verl.trainer.main_ppo`` in verl's environment (a Ray cluster must already span ``num_nodes`` nodes
   when there are several: ``ray start --head`` on one, ``ray start --address HEAD:6379`` on the others).
6. The last checkpoint's Hugging Face weights become ``policy/``; verl's file log becomes ``log.jsonl``.

verl needs its own environment (it pins its own transformers range): ``make install-verl`` makes ``.venv-verl``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from common.artifacts import RunDir, atomic_write_json, atomic_write_text, write_jsonl
from common.config import ConfigError, UserError, config_to_dict
from common.data import data_metrics
from common.models import load_tokenizer
from common.reward_server import spec_from_config
from common.serve import spawn_server, stop_server
from common.verl_bridge import VERL_VERSION, hydra_document, translate

ROOT = Path(__file__).resolve().parents[2]
CONFIG_NAME = "rlhf_repro"
# verl's file-logger keys -> ours (common.train.ppo's log.jsonl)
LOG_KEYS = {"critic/score/mean": "reward", "actor/reward_kl_penalty": "kl", "actor/reward_kl_penalty_coeff":
            "kl_coef", "response_length/mean": "response_length", "actor/entropy": "entropy",
            "actor/pg_loss": "policy_loss", "critic/vf_loss": "value_loss"}


def verl_python(cfg: Any) -> str:
    """The interpreter of verl's environment: rl.verl_python, else $VERL_PYTHON, else .venv-verl/bin/python."""
    candidate = cfg.verl_python or os.environ.get("VERL_PYTHON") or str(ROOT / ".venv-verl" / "bin" / "python")
    if not Path(candidate).is_file() and not shutil.which(candidate):
        raise UserError(f"rl.engine: verl runs in its own environment and {candidate} does not exist; run `make "
                        "install-verl` (GPU machines: `make install-verl-gpu`), or set VERL_PYTHON / rl.verl_python")
    return candidate


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def export_prompts(cfg: Any, path: Path, stats: dict | None = None) -> tuple[int, int, bool]:
    """Write verl's prompt parquet; returns (prompts kept, prompts dropped as too long, BOS prepended). ``stats``
    receives the rows read and skipped (common.data.load_records)."""
    import pandas as pd

    from common.templates import render_prompt
    from common.train.ppo import load_prompts

    tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code, padding_side="left")
    records, prompt_ids, dropped = load_prompts(cfg, tokenizer, stats if stats is not None else {})
    texts = [render_prompt(rec["prompt"], cfg.template, tokenizer, cfg.system) for rec in records]
    # ours prepends BOS when the tokenizer adds one and the template did not write it; the chat template says so
    first = tokenizer(texts[0], add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id is not None and prompt_ids[0][:1] == [tokenizer.bos_token_id] \
        and first[:1] != [tokenizer.bos_token_id]
    rows = [{"data_source": "rlhf-repro", "prompt": [{"role": "user", "content": text}],
             "reward_model": {"style": "model", "ground_truth": ""},
             "extra_info": {"index": i, "record": json.dumps(rec, ensure_ascii=False, default=str)}}
            for i, (rec, text) in enumerate(zip(records, texts))]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.parquet")
    pd.DataFrame(rows).to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return len(records), dropped, bos


def check_with_verl(python: str, config_file: Path, overrides: list[str], origin: dict[str, str],
                    model_standin: str | None = None) -> dict[str, Any]:
    """Run common.verl_check in verl's environment; a failure is one ConfigError naming verl's and our key."""
    cmd = [python, "-m", "common.verl_check", "--config", str(config_file)]
    for override in overrides:
        cmd += ["--override", override]
    if model_standin:
        cmd += ["--model-standin", model_standin]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"common.verl_check did not run in {python} (exit {proc.returncode}): {tail}")
    result = json.loads(lines[-1])
    if not result["ok"]:
        error = result["error"]
        match = re.search(r"no key '([^']+)'", error) or re.search(r"override '([^']+)'", error)
        ours = origin.get(match.group(1)) if match else None
        hint = f" (from {ours})" if ours else ""
        raise ConfigError(f"verl {VERL_VERSION} rejects {config_file}{hint}: {error}")
    return result


def _latest_step_dir(checkpoints: Path) -> Path | None:
    steps = sorted(checkpoints.glob("global_step_*"), key=lambda p: int(p.name.rsplit("_", 1)[1]))
    return steps[-1] if steps else None


def _final_policy(python: str, checkpoints: Path, out: Path) -> Path:
    step = _latest_step_dir(checkpoints)
    if step is None:
        raise UserError(f"verl finished but wrote no checkpoint under {checkpoints}")
    target = out / "policy"
    tmp = out / "policy.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    hf = step / "actor" / "huggingface"
    if (hf / "config.json").is_file() and any(hf.glob("*.safetensors")):
        shutil.copytree(hf, tmp)
    else:  # weights saved as FSDP shards only: verl's own merger writes the Hugging Face folder
        subprocess.run([python, "-m", "verl.model_merger", "merge", "--backend", "fsdp", "--local_dir",
                        str(step / "actor"), "--target_dir", str(tmp)], check=True, cwd=ROOT)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def collect_log(work: Path, out: Path) -> dict[str, Any]:
    """verl's file logs (one per launch) -> our log.jsonl (our names beside verl's) and the metrics ours reports.
    A step logged by two launches (a resumed run repeats the steps after its last checkpoint) keeps the later."""
    by_step: dict[int, dict] = {}
    for launch_log in sorted(work.glob("log-*.jsonl")):
        for line in launch_log.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                data = entry.get("data") or {}
                row = {"step": entry.get("step")}
                row.update({ours: data[key] for key, ours in LOG_KEYS.items() if key in data})
                row.update({f"verl/{k}": v for k, v in data.items() if isinstance(v, (int, float))})
                by_step[int(row["step"] or 0)] = row
    rows = [by_step[k] for k in sorted(by_step)]
    write_jsonl(out / "log.jsonl", rows)
    with_reward = [r for r in rows if "reward" in r]
    metrics: dict[str, Any] = {"steps": len(rows)}
    if with_reward:
        metrics.update(reward_first=with_reward[0]["reward"], reward_last=with_reward[-1]["reward"])
    for ours in ("kl", "kl_coef"):
        values = [r[ours] for r in rows if ours in r]
        if values:
            metrics[f"{ours}_last"] = values[-1]
    return metrics


def train_verl(cfg: Any) -> dict[str, Any]:
    out = Path(cfg.output_dir)
    run = RunDir.start(out, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    python = verl_python(cfg)
    work = out / "verl"
    checkpoints = work / "checkpoints"
    if cfg.overwrite or not cfg.resume:
        (work / "reward_stats.json").unlink(missing_ok=True)
    if cfg.overwrite:
        shutil.rmtree(checkpoints, ignore_errors=True)
    elif checkpoints.exists() and any(checkpoints.glob("global_step_*")) and not cfg.resume:
        raise UserError(f"{checkpoints} holds an earlier run's checkpoints; pass --resume true to continue it or "
                        "--overwrite true to start again")

    from common.rewards import get_reward_combiner, import_callable
    from common.train.ppo import _total_steps

    # the reward server would fail on these only after verl had started: check them first, without loading models
    get_reward_combiner(cfg.reward_combine)
    if cfg.reward_function:
        import_callable(cfg.reward_function, "rl.reward_function")

    train_file = work / "train.parquet"
    data_stats: dict[str, Any] = {}
    n_prompts, dropped, bos = export_prompts(cfg, train_file, data_stats)
    spec_file = work / "reward_spec.json"
    atomic_write_json(spec_file, spec_from_config(cfg))
    port = free_port(cfg.reward_host)
    plan = translate(cfg, train_file=str(train_file.resolve()), n_prompts=n_prompts,
                     total_steps=_total_steps(cfg, n_prompts), reward_url=f"http://{cfg.reward_host}:{port}",
                     checkpoint_dir=str(checkpoints.resolve()), experiment=out.name, bos_token=bos)
    config_file = work / f"{CONFIG_NAME}.yaml"
    atomic_write_text(config_file, yaml.safe_dump(hydra_document(plan), sort_keys=False, allow_unicode=True))
    atomic_write_json(work / "translation.json", {"verl_version": VERL_VERSION, "notes": plan.notes,
                                                  "overrides": cfg.verl_overrides, "origin": plan.origin,
                                                  "config": plan.flat(), "ours": config_to_dict(cfg)})
    check = check_with_verl(python, config_file, cfg.verl_overrides, plan.origin)
    print(f"verl {VERL_VERSION} accepts {config_file} ({check['adv_estimator']}, {check['n_gpus']} GPUs, "
          f"{plan.total_steps} steps, {n_prompts} prompts, {dropped} dropped as too long)", flush=True)
    base = {"engine": "verl", "verl_version": VERL_VERSION, "prompts": n_prompts, "dropped_long_prompts": dropped,
            "total_steps": plan.total_steps, "verl_notes": plan.notes, "verl_check": check,
            **data_metrics(data_stats)}
    if cfg.verl_dry_run:
        return run.finish({**base, "dry_run": True})

    device, server_env = cfg.reward_device, {}
    if device.startswith("gpus:"):  # a reward model sharded over these cards (accelerate's device_map="auto")
        device, server_env = "shard", {"CUDA_VISIBLE_DEVICES": device.split(":", 1)[1]}
    server, url = spawn_server(
        [sys.executable, "-m", "common.reward_server", "--spec", str(spec_file), "--host", cfg.reward_host,
         "--port", str(port), "--device", device, "--state", str(work / "reward_stats.json")], server_env,
        1800.0, "common.reward_server")
    try:
        # verl's file logger truncates its file; one file per launch keeps a resumed run's earlier steps
        launch_log = work / f"log-{len(list(work.glob('log-*.jsonl'))):03d}.jsonl"
        env = dict(os.environ, PYTHONPATH=str(ROOT), VERL_FILE_LOGGER_PATH=str(launch_log.resolve()))
        env.setdefault("WANDB_MODE", "offline")
        cmd = [python, "-m", "verl.trainer.main_ppo", "--config-path", str(work.resolve()), "--config-name",
               CONFIG_NAME, *cfg.verl_overrides]
        print(f"reward server at {url}; starting verl: {' '.join(cmd)}", flush=True)
        status = subprocess.run(cmd, cwd=ROOT, env=env, check=False).returncode
    finally:
        stop_server(server)
    if status != 0:
        raise UserError(f"verl exited with status {status} (its log is above); resume with --resume true")
    _final_policy(python, checkpoints, out)
    metrics = collect_log(work, out)
    return run.finish({**base, **metrics}, key_metric="reward_last" if "reward_last" in metrics else None)
