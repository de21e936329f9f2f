"""One table for RLCHF: every trained row (SWF, gold label, single persona) and the untouched base, on BBQ and on
held-out human preferences.

Columns: BBQ by option log-likelihood (common.eval.bbq) – acc_amb, acc_dis, s_DIS, s_AMB and the share of
"unknown" answers over all items, so a model that simply answers "unknown" more often shows it (upstream's persona
DPO raised acc_amb from 0.07 to 0.60 while acc_dis fell, §3 of our method notes) – and held-out preference
accuracy: the share of held-out gold pairs whose chosen response gets the strictly higher DPO implicit reward
β·log π/π_ref (Rafailov et al. §5) with the base as reference (ties count as wrong, as in common.train.dpo). DPO runs
given ``eval_dataset`` = heldout.jsonl already report it (``eval_reward_accuracy``) and it is read from there; other
rows (SFT, PPO) are scored here. The base has no implicit reward (π = π_ref), so its cell is empty.

A row is a trained model folder: ``<train_root>/<kind>/<row>/`` holding a model or a LoRA adapter (``kind`` = dpo,
sft or ppo; a PPO run keeps its policy in ``policy/``). Each model's BBQ run lands in ``<output_dir>/bbq_<kind>_<row>``
with its own metrics.json. A PPO row also shows its reward model (``<train_root>/rm/<row>/``, trained on the same SWF
pairs as DPO): ``n_pairs`` is the RM's training pairs and ``rm_heldout_acc`` its accuracy on the held-out gold pairs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import RunDir, atomic_write_text, read_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.config import help_meta as _help

COLUMNS = ("acc_amb", "acc_dis", "s_dis", "s_amb", "unknown_rate", "heldout_pref_acc", "n_pairs", "rm_heldout_acc")
KINDS = ("dpo", "sft", "ppo")  # trained policies; rm/<row>/ is the PPO row's reward model, not a policy


@dataclass
class EvaluateConfig:
    """Stage ``evaluate``: BBQ + held-out preference accuracy for the base model and every trained row."""

    base_model: str = field(default="", metadata=_help("the policy before training (also the reference)"))
    train_root: str = field(default="", metadata=_help("folder holding dpo/<row>/, sft/<row>/ and ppo/<row>/ runs"))
    rows: list[str] = field(default_factory=list, metadata=_help("<kind>/<row> to evaluate, e.g. dpo/swf_borda or "
                                                                 "ppo/swf_borda; empty = every finished run under "
                                                                 "train_root"))
    heldout: str = field(default="", metadata=_help("heldout.jsonl of the candidates stage (gold pairs)"))
    heldout_limit: int | None = field(default=None, metadata=_help("score at most this many held-out pairs"))
    beta: float = field(default=0.1, metadata=_help("β of the implicit reward (the DPO β) [CODE: TRL default]"))
    template: str = field(default="tokenizer", metadata=_help("chat template (common.templates)"))
    max_length: int = field(default=1024, metadata=_help("tokens per held-out prompt + response"))
    bbq_data: str = field(default="", metadata=_help("BBQ folder or hub id (common.eval.bbq)"))
    bbq_categories: list[str] = field(default_factory=list, metadata=_help("BBQ categories; empty = all found"))
    bbq_n_per_category: int | None = field(default=None, metadata=_help("seeded BBQ subsample per category (>= 1); "
                                                                        "None = all"))
    batch_size: int = field(default=8, metadata=_help("sequences per forward pass"))
    dtype: str = field(default="float32", metadata=_help("float32 | bfloat16 | float16"))
    seed: int = field(default=0, metadata=_help("BBQ subsample seed"))
    output_dir: str = field(default="runs/rlchf/eval", metadata=_help("run folder: results.md, metrics.json"))
    overwrite: bool = field(default=False, metadata=_help("replace finished runs"))

    def __post_init__(self) -> None:
        if not self.base_model or not self.bbq_data:
            raise ConfigError("evaluate.base_model and evaluate.bbq_data are required")
        if self.bbq_n_per_category is not None and self.bbq_n_per_category < 1:
            raise ConfigError(f"evaluate.bbq_n_per_category: {self.bbq_n_per_category} must be >= 1, or null for "
                              "every item")


def find_rows(train_root: str, rows: list[str]) -> list[str]:
    root = Path(train_root)
    if rows:
        missing = [r for r in rows if not (root / r / "metrics.json").exists()]
        if missing:
            raise UserError(f"evaluate.rows: no finished run at {[str(root / r) for r in missing]}; train them first")
        return rows
    found = sorted(f"{p.parent.parent.name}/{p.parent.name}" for p in root.glob("*/*/metrics.json")
                   if p.parent.parent.name in KINDS)
    if not found:
        raise UserError(f"{root}: no dpo/<row>/, sft/<row>/ or ppo/<row>/ runs with metrics.json; train them first")
    return found


def model_dir(run_dir: Path) -> str:
    """The trained weights inside a run folder: the folder itself, its ``model/`` or (PPO) its ``policy/``."""
    for cand in (run_dir / "model", run_dir / "policy", run_dir):
        if (cand / "config.json").exists() or (cand / "adapter_config.json").exists():
            return str(cand)
    raise UserError(f"{run_dir}: no model (config.json) or LoRA adapter (adapter_config.json) in it, in model/ or "
                    "in policy/")


def load_policy(path: str, base: str, dtype: str):
    """A causal LM; a LoRA adapter folder is loaded on top of ``base`` (adapter enabled = policy, disabled = ref)."""
    from common.models import load_causal_lm

    if (Path(path) / "adapter_config.json").exists():
        from peft import PeftModel

        return PeftModel.from_pretrained(load_causal_lm(base, dtype), path)
    return load_causal_lm(path, dtype)


def heldout_accuracy(cfg: EvaluateConfig, path: str, pairs: list[dict]) -> float:
    """Share of gold pairs with r(chosen) > r(rejected), r = β·log π/π_ref (ties count as wrong)."""
    from common.models import load_causal_lm, load_tokenizer
    from common.train.dpo import implicit_reward

    tok = load_tokenizer(cfg.base_model)
    policy = load_policy(path, cfg.base_model, cfg.dtype)
    # An adapter's reference is its own base with the adapter disabled (ref=None); a full model needs the base.
    ref = None if (Path(path) / "adapter_config.json").exists() else load_causal_lm(cfg.base_model, cfg.dtype)
    prompts = [p["prompt"] for p in pairs]
    kw = {"template": cfg.template, "beta": cfg.beta, "batch_size": cfg.batch_size, "max_length": cfg.max_length}
    chosen = implicit_reward(policy, ref, tok, prompts, [p["chosen"] for p in pairs], **kw)
    rejected = implicit_reward(policy, ref, tok, prompts, [p["rejected"] for p in pairs], **kw)
    return float((chosen > rejected).float().mean())


def bbq_row(cfg: EvaluateConfig, model: str, out: Path) -> dict[str, Any]:
    from common.eval.bbq import BBQEvalConfig, evaluate_bbq

    done = out / "metrics.json"
    if done.exists() and not cfg.overwrite:
        metrics = json.loads(done.read_text())
    else:
        metrics = evaluate_bbq(BBQEvalConfig(
            model=model, data=cfg.bbq_data, categories=cfg.bbq_categories, n_per_category=cfg.bbq_n_per_category,
            seed=cfg.seed, modes=["mc"], template=cfg.template, batch_size=cfg.batch_size, dtype=cfg.dtype,
            output_dir=str(out), overwrite=cfg.overwrite))
    n = metrics.get("mc_n") or 0
    return {"acc_amb": metrics.get("mc_acc_amb"), "acc_dis": metrics.get("mc_acc_dis"),
            "s_dis": metrics.get("mc_s_dis"), "s_amb": metrics.get("mc_s_amb"),
            "unknown_rate": metrics.get("mc_n_unknown_answers", 0) / n if n else None}


def results_table(table: dict[str, dict[str, Any]]) -> str:
    def fmt(v: Any) -> str:
        return "—" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| row | " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * len(COLUMNS)]
    lines += [f"| {name} | " + " | ".join(fmt(row.get(c)) for c in COLUMNS) + " |" for name, row in table.items()]
    return "\n".join(lines) + "\n"


def run_evaluate(cfg: EvaluateConfig) -> dict:
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=True)
    rows = find_rows(cfg.train_root, cfg.rows) if cfg.train_root else []
    pairs = read_jsonl(cfg.heldout)[: cfg.heldout_limit] if cfg.heldout else []
    table: dict[str, dict[str, Any]] = {"base": bbq_row(cfg, cfg.base_model, run.path / "bbq_base")}
    for row in rows:
        run_dir = Path(cfg.train_root) / row
        path = model_dir(run_dir)
        name = row.replace("/", "_")
        result = bbq_row(cfg, path, run.path / f"bbq_{name}")
        train_metrics = json.loads((run_dir / "metrics.json").read_text())
        result["heldout_pref_acc"] = train_metrics.get("eval_reward_accuracy")
        if result["heldout_pref_acc"] is None and pairs:
            result["heldout_pref_acc"] = heldout_accuracy(cfg, path, pairs)
        result["n_pairs"] = train_metrics.get("train_pairs", train_metrics.get("n_train"))
        rm_metrics = Path(cfg.train_root) / "rm" / row.split("/", 1)[1] / "metrics.json"
        if row.startswith("ppo/") and rm_metrics.is_file():  # the PPO row learnt its pairs through this RM
            rm = json.loads(rm_metrics.read_text())
            result["n_pairs"], result["rm_heldout_acc"] = rm.get("train_pairs"), rm.get("eval_accuracy")
        table[name] = result
    text = results_table(table)
    atomic_write_text(run.path / "results.md", "# RLCHF: BBQ and held-out preference accuracy\n\n" + text)
    print(text)
    flat = {f"{name}/{col}": v for name, row in table.items() for col, v in row.items() if v is not None}
    return run.finish({**flat, "rows": list(table)}, key_metric="base/acc_amb")


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(EvaluateConfig, run_evaluate, "evaluate", "BBQ and held-out preference accuracy of every "
                     "RLCHF row (one table).", argv)


if __name__ == "__main__":
    main()
