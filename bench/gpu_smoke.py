"""GPU smoke check of the scale paths, one table: verl PPO and ReMax, our PPO, a 2-process SFT, ours vs TRL.

    python -m bench.gpu_smoke [--out runs/gpu_smoke] [--dry-run]        # = make gpu-smoke; < 10 min on one H100

Rows (each a subprocess with its own time limit; a failed or skipped row never stops the others):

1. ``verl-ppo``: 2 PPO steps of SmolLM2-135M-Instruct on verl (``engine: verl``, 1 GPU, vLLM rollouts, GAE critic,
   adaptive KL) against a tiny reward model (the 2-layer embedded Llama with a seeded score head).
2. ``verl-remax``: the same with ``algorithm: remax`` (greedy baseline, no critic).
3. ``ours-ppo``: the same 2 PPO steps on ``engine: ours`` (one process), for the time beside verl's.
4. ``sft-2proc``: one SFT step under ``accelerate launch --num_processes 2`` when the machine has 2 GPUs.
5. ``bench-sweep``: the ours-vs-TRL throughput sweep (bench.sweep, tiny model, cuda) when TRL is importable.

Needs ``make models`` (embedded models) and, for the verl rows, ``.venv-verl`` from ``make install-verl-gpu``
(verl[vllm], vLLM, Ray: too large to carry to an offline machine, so there those rows say "skipped").
``--dry-run`` prints the commands and the table skeleton without running anything (what the CPU test checks).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ["Name a color.", "What is 2+2?", "Say something kind.", "Name an animal.", "Give me a fruit.",
           "What is the capital of France?", "Tell me a joke.", "Name a country."]


def gpu_count() -> int:
    if not shutil.which("nvidia-smi"):
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout
    return sum(line.startswith("GPU") for line in out.splitlines())


def card_name() -> str:
    if not shutil.which("nvidia-smi"):
        return "no GPU"
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True, check=False).stdout.strip().splitlines()
    return out[0] if out else "unknown"


def prepare_inputs(work: Path) -> tuple[Path, Path, Path]:
    """The prompt file, a tiny reward model (seeded score head) and a tiny SFT file."""
    import torch

    from common.models import load_reward_model, load_tokenizer

    work.mkdir(parents=True, exist_ok=True)
    prompts = work / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    sft = work / "sft.jsonl"
    sft.write_text("".join(json.dumps({"prompt": p, "response": "A short answer."}) + "\n" for p in PROMPTS))
    rm = work / "tiny_rm"
    if not (rm / "config.json").is_file():
        torch.manual_seed(0)
        model = load_reward_model("embedded:tiny-llama")
        torch.nn.init.normal_(model.score.weight, std=0.5)
        model.save_pretrained(rm)
        load_tokenizer("embedded:tiny-llama").save_pretrained(rm)
    return prompts, rm, sft


def rl_command(engine: str, algorithm: str, prompts: Path, rm: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "common.train.ppo", "model=embedded:smollm2-135m-instruct", "template=tokenizer",
            f"dataset={prompts}", f"reward_models=[{{path: {rm}}}]", f"engine={engine}", f"algorithm={algorithm}",
            "total_steps=2", "rollout_batch_size=8", "mini_batch_size=4", "ppo_epochs=1", "max_new_tokens=32",
            "max_prompt_length=128", "dtype=bfloat16", "save_steps=0", "seed=0", "rollout_gpu_memory_utilization=0.3",
            f"output_dir={out}", "overwrite=true"]


def sft_command(sft: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "-m", "common.train.sft",
            "model_name_or_path=embedded:smollm2-135m-instruct", f"dataset={sft}", "max_steps=1",
            "per_device_train_batch_size=2", f"output_dir={out}", "overwrite=true", "dtype=bfloat16",
            "report_to=none"]


def rows(work: Path, n_gpus: int, prompts: Path, rm: Path, sft: Path) -> list[dict]:
    verl_python = os.environ.get("VERL_PYTHON") or str(ROOT / ".venv-verl" / "bin" / "python")
    have_verl = Path(verl_python).is_file()
    import importlib.util

    have_trl = importlib.util.find_spec("trl") is not None
    return [
        {"row": "verl-ppo", "cmd": rl_command("verl", "ppo", prompts, rm, work / "verl_ppo"), "limit": 240,
         "skip": None if have_verl else f"no verl environment ({verl_python}): make install-verl-gpu"},
        {"row": "verl-remax", "cmd": rl_command("verl", "remax", prompts, rm, work / "verl_remax"), "limit": 180,
         "skip": None if have_verl else f"no verl environment ({verl_python}): make install-verl-gpu"},
        {"row": "ours-ppo", "cmd": rl_command("ours", "ppo", prompts, rm, work / "ours_ppo"), "limit": 120,
         "skip": None},
        {"row": "sft-2proc", "cmd": sft_command(sft, work / "sft_2proc"), "limit": 120,
         "skip": None if n_gpus >= 2 else f"{n_gpus} GPU(s): needs 2"},
        {"row": "bench-sweep", "cmd": [sys.executable, "-m", "bench.sweep", "--out", str(work / "bench.jsonl"),
                                       "--", "--model-size", "tiny", "--device", "cuda", "--steps", "3", "--warmup",
                                       "1", "--batch", "8", "--min-len", "64", "--max-len", "512", "--gen-len", "32"],
         "limit": 180, "skip": None if have_trl else "trl is not installed (bench/fetch_wheels.sh carries it)"},
    ]


def run_row(row: dict, log_dir: Path) -> dict:
    if row["skip"]:
        return {"row": row["row"], "status": "skipped", "seconds": None, "note": row["skip"]}
    start = time.time()
    log = log_dir / f"{row['row']}.log"
    with log.open("w") as fh:
        try:
            code = subprocess.run(row["cmd"], cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, timeout=row["limit"],
                                  check=False).returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    result = {"row": row["row"], "status": "ok" if code == 0 else f"failed ({code})",
              "seconds": round(time.time() - start, 1), "note": ""}
    out = next((a.split("=", 1)[1] for a in row["cmd"] if a.startswith("output_dir=")), None)
    metrics = Path(out) / "metrics.json" if out else None
    if code == 0 and metrics is not None and metrics.is_file():
        m = json.loads(metrics.read_text())
        if "reward_first" in m:
            result["note"] = f"reward {m['reward_first']:.3f} -> {m['reward_last']:.3f}"
    elif code != 0:
        tail = log.read_text().strip().splitlines()[-1:] or [""]
        result["note"] = tail[0][:160]
    return result


def table(results: list[dict], card: str) -> str:
    lines = [f"card: {card}", "", "| row | status | wall s | note |", "|---|---|---:|---|"]
    for r in results:
        lines.append(f"| {r['row']} | {r['status']} | {r['seconds'] if r['seconds'] is not None else '-'} | "
                     f"{r['note']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_smoke", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/gpu_smoke", help="work folder (logs, runs, results.json, table.md)")
    p.add_argument("--dry-run", action="store_true", help="print the commands and an empty table, run nothing")
    a = p.parse_args(argv)
    work = Path(a.out).resolve()
    n_gpus = gpu_count()
    if a.dry_run:
        prompts, rm, sft = work / "prompts.jsonl", work / "tiny_rm", work / "sft.jsonl"
    else:
        if n_gpus == 0:
            print("error: bench.gpu_smoke needs a CUDA GPU (nvidia-smi lists none); --dry-run shows the plan",
                  file=sys.stderr)
            return 2
        prompts, rm, sft = prepare_inputs(work)
    plan = rows(work, n_gpus, prompts, rm, sft)
    if a.dry_run:
        for row in plan:
            print("+", " ".join(row["cmd"][1:]), f"(limit {row['limit']} s)")
        print(table([{"row": r["row"], "status": "planned", "seconds": None, "note": r["skip"] or ""}
                     for r in plan], card_name()))
        return 0
    (work / "logs").mkdir(parents=True, exist_ok=True)
    results = []
    for row in plan:
        results.append(run_row(row, work / "logs"))
        print(f"{results[-1]['row']}: {results[-1]['status']} {results[-1]['seconds']} s", flush=True)
    text = table(results, card_name())
    (work / "results.json").write_text(json.dumps({"card": card_name(), "results": results}, indent=1))
    (work / "table.md").write_text(text + "\n")
    print(text)
    bench = work / "bench.jsonl"
    if bench.is_file():
        from bench.table import load, markdown

        print("\n" + markdown(load(str(bench))))
    return 0 if all(r["status"] in ("ok", "skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
