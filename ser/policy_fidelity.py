"""The policy half of SER's claim at CPU scale: PPO against the seed-only, SER and 100%-label RMs of one loop run,
each policy then graded by an independent gold RM.

    python -m ser.policy_fidelity --config ser/configs/policy_fidelity.yaml [--key value ...]

The paper's claim [PAPER]: the policy trained with the SER RM is on par with (or better than) the one trained with
the full-label RM. The paper grades policies with GPT-4o; here the grader is a *different* reward model trained on
all the labels (``gold_loop``'s 100%-label RM, e.g. MiniLM fine-tuned end to end, while the policies' rewards come
from frozen-encoder heads), so no policy is graded by the RM it optimised. Every policy, and the untrained start,
draws ``samples`` answers to each prompt; the table gives the gold reward σ(r) (mean ± standard error) and the share
of answers the gold RM prefers to the untrained policy's answer with the same sample index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.artifacts import RunDir, atomic_write_text, read_jsonl, write_jsonl
from common.config import UserError, build_dataclass, load_config, read_yaml, stage_cli
from ser.config import SERConfig
from ser.loop import backend_settings
from ser.reward_backends import build_backend, question_header, question_of

POLICIES = ("seed", "ser", "full")


@dataclass
class PolicyFidelityConfig:
    output_dir: str = field(default="runs/ser/policy_fidelity", metadata={"help": "run folder"})
    ser_loop: str = field(default="", metadata={"help": "SER run whose seed / SER / 100% RMs give the PPO rewards"})
    gold_loop: str = field(default="", metadata={"help": "SER run whose 100%-label RM grades the policies"})
    rl_config: str = field(default="", metadata={"help": "recipe with the rl section (policy, PPO settings); the "
                                                         "prompts are the loop's training prompts"})
    rl_section: str = field(default="rl", metadata={"help": "section of rl_config"})
    samples: int = field(default=64, metadata={"help": "answers per prompt and policy for the grading"})
    max_new_tokens: int = field(default=32, metadata={"help": "answer length when grading"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature when grading"})
    seed: int = field(default=0, metadata={"help": "seed of the grading samples"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished run"})

    def __post_init__(self) -> None:
        for key in ("ser_loop", "gold_loop", "rl_config"):
            if not getattr(self, key):
                raise UserError(f"policy_fidelity.{key} is required")


def loop_backend(loop_dir: Path):
    """The backend a finished SER run trained with, rebuilt from its logged config."""
    values = read_yaml(loop_dir / "config.yaml")
    cfg = build_dataclass(SERConfig, values, f"{loop_dir}/config.yaml")
    return build_backend(cfg.backend, backend_settings(cfg, loop_dir))


def run_policy_fidelity(cfg: PolicyFidelityConfig) -> dict:
    from common.generation import GenerationConfig, build_generator
    from common.train.ppo import train_ppo
    from ser.ppo import SERPPOConfig

    out = Path(cfg.output_dir)
    run = RunDir.start(out, cfg, seed=cfg.seed, overwrite=cfg.overwrite)
    gold_metrics = json.loads((Path(cfg.gold_loop) / "metrics.json").read_text())
    gold_dir = Path(gold_metrics["reward_models"]["full"]["model_dir"])
    gold = loop_backend(Path(cfg.gold_loop))
    loop_metrics = json.loads((Path(cfg.ser_loop) / "metrics.json").read_text())
    # the PPO prompts: the loop's own training prompts, in the SER frame
    data = Path(cfg.ser_loop) / "data"
    questions = [r["prompt"] for r in read_jsonl(data / "seed.jsonl") + read_jsonl(data / "pool.jsonl")]
    prompts = [question_header(q) for q in dict.fromkeys(questions)]
    write_jsonl(out / "prompts.jsonl", [{"prompt": p} for p in prompts])
    policies = {}
    for name in POLICIES:
        ppo_out = out / f"ppo_{name}"
        rl = load_config(SERPPOConfig, cfg.rl_config, cfg.rl_section, {
            "ser_loop": cfg.ser_loop, "reward_from": name, "output_dir": str(ppo_out), "overwrite": True,
            "dataset": str(out / "prompts.jsonl")})
        if not (ppo_out / "metrics.json").is_file():
            train_ppo(rl)
        policies[name] = str(ppo_out / "policy")
    policies = {"start": rl.model, **policies}

    scores: dict[str, np.ndarray] = {}
    for name, model in policies.items():
        gen = build_generator(GenerationConfig(
            backend="hf", model=model, template=rl.template, temperature=cfg.temperature,
            max_new_tokens=cfg.max_new_tokens, seed=cfg.seed, cache_path=str(out / f"answers_{name}.jsonl")))
        answers = gen.chat([[{"role": "user", "content": p}] for p in prompts], n=cfg.samples, desc=f"{name} answers")
        flat_prompts = [question_of(p) for p, row in zip(prompts, answers) for _ in row]
        flat_answers = [a for row in answers for a in row]
        scores[name] = 1.0 / (1.0 + np.exp(-gold.score(gold_dir, flat_prompts, flat_answers)))

    rm_accuracy = {"seed": loop_metrics["seed_only_accuracy"], "ser": loop_metrics["ser_accuracy"],
                   "full": loop_metrics["full_label_accuracy"], "start": None}
    rows = []
    for name, s in scores.items():
        beats_start = None if name == "start" else float(np.mean((s > scores["start"]) + 0.5 * (s == scores["start"])))
        rows.append({"policy": name, "training_rm_heldout_accuracy": rm_accuracy[name],
                     "gold_mean": float(s.mean()), "gold_se": float(s.std(ddof=1) / np.sqrt(len(s))),
                     "gold_positive_share": float(np.mean(s > 0.5)), "beats_start": beats_start})
    table = _table(rows, len(prompts), cfg.samples)
    atomic_write_text(out / "results.md", "# SER policy fidelity\n\n" + table + "\n")
    print(table, flush=True)
    by = {r["policy"]: r for r in rows}
    return run.finish({"rows": rows, "ser_minus_full_gold": by["ser"]["gold_mean"] - by["full"]["gold_mean"],
                       "ser_minus_seed_gold": by["ser"]["gold_mean"] - by["seed"]["gold_mean"]},
                      key_metric="ser_minus_full_gold")


def _table(rows: list[dict], n_prompts: int, samples: int) -> str:
    names = {"start": "untrained policy", "seed": "PPO, seed-only RM", "ser": "PPO, SER RM",
             "full": "PPO, 100%-label RM"}
    caption = f"Gold RM grade of {n_prompts * samples} sampled answers per policy ({n_prompts} prompt(s) x {samples}):"
    header = ("| policy | its RM's held-out acc % | gold σ(r), mean ± se | gold σ(r) > 0.5 | beats the untrained "
              "answer |")
    lines = [caption, "", header, "|---|---:|---:|---:|---:|"]
    for r in rows:
        acc = "-" if r["training_rm_heldout_accuracy"] is None else f"{100 * r['training_rm_heldout_accuracy']:.1f}"
        beats = "-" if r["beats_start"] is None else f"{100 * r['beats_start']:.0f}%"
        lines.append(f"| {names[r['policy']]} | {acc} | {r['gold_mean']:.3f} ± {r['gold_se']:.3f} | "
                     f"{100 * r['gold_positive_share']:.0f}% | {beats} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    stage_cli(PolicyFidelityConfig, run_policy_fidelity, "policy_fidelity", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
