"""RLLR fidelity claims from a finished pipeline folder: bootstrap intervals over the dev items and held-out pairs.

    python -m rllr.fidelity --root runs/rllr/fidelity/sst2+rte [--shift-items 150] [--threads 1]

Reads what ``rllr.pipeline`` left in ``<root>`` and writes ``<root>/claims.json`` (``common.stats``), with:

- **system vs baseline, accuracy points** (the paper's headline [PAPER] arXiv 2405.19763, abstract: on average RLLR
  beats SFT by +1.54 and RLHF by +0.69 accuracy points): RLLR − SFT with rationales (the PPO start; our reading of
  the paper's "SFT"), RLLR − label-only SFT (the other reading), RLLR − RLHF, and RLLR-mixed − each (no confirmed
  paper figure). The metric is the paper's: the mean over tasks of per-task accuracy. Each dev item carries
  ``correct · N / (T · n_task)`` (N items, T tasks, n_task items of its task), so the mean over items is exactly
  that macro average, and the paired bootstrap runs over the dev items (``common.stats.paired_bootstrap``);
- **reward models on held-out label pairs** (the paper's RM check [CODE: held-out accuracy on label pairs]):
  RM_label accuracy above chance, and RM_label − RM_rat on the same pairs (the paper's premise: a rationale RM does
  not tell the right label from a wrong one, a label-sensitive RM does). When RM_label is not above chance, the
  policy rows say ``NOT CARRIED`` in their setting: PPO against it optimises noise, whatever the verdict;
- **did PPO move the policy?** (setting checks, not paper claims): per PPO mode, the share of dev items whose greedy
  answer differs from the start model's (SFT with rationales), and the log-prob shift
  log π_PPO(y|x) − log π_start(y|x) of the policy's own greedy answer y on a seeded subset of dev items (nats per
  answer; a one-sample estimate of the KL direction it moved in, positive when PPO made its answers likelier).

Per-unit values stay in ``<root>/fidelity_items.jsonl`` (per dev item: each system's prediction and correctness),
``fidelity_pairs.jsonl`` (per held-out pair: both RMs' margins) and ``fidelity_shift.jsonl`` (per scored item: the
log-probs); ``fidelity.png`` plots the accuracy differences with their intervals and the paper's figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
from pathlib import Path

import numpy as np

from common.artifacts import atomic_write_text, read_jsonl
from common.config import UserError, read_yaml, run_cli
from common.stats import Claim, bootstrap_mean, paired_bootstrap, write_claims
from rllr.compare import PAPER_GAIN, SYSTEMS

PAPER = "rllr"
SOURCE = "arXiv 2405.19763, abstract (average over tasks and models)"
START = "sft_wrat"  # every PPO policy starts from the merged SFT-with-rationales model
PPO_MODES = ("ppo_rlhf", "ppo_rllr", "ppo_rllr_mixed")
# (treated, baseline, paper's figure as a fraction or None, note)
COMPARISONS = (
    ("ppo_rllr", "sft_wrat", PAPER_GAIN["rllr_vs_sft"] / 100, "SFT read as the PPO start (SFT with rationales)"),
    ("ppo_rllr", "sft_label", PAPER_GAIN["rllr_vs_sft"] / 100, "SFT read as label-only SFT"),
    ("ppo_rllr", "ppo_rlhf", PAPER_GAIN["rllr_vs_rlhf"] / 100, ""),
    ("ppo_rllr_mixed", "sft_wrat", None, "RLLR-mixed: no confirmed paper average"),
    ("ppo_rllr_mixed", "ppo_rlhf", None, "RLLR-mixed: no confirmed paper average"),
)


def load_predictions(root: Path) -> dict[str, list[dict]]:
    """Per system, its prediction rows in the order of ``data/eval.jsonl`` (checked to be the same items)."""
    out: dict[str, list[dict]] = {}
    for name in SYSTEMS:
        path = root / "predict" / name / "predictions.jsonl"
        if path.is_file():
            out[name] = read_jsonl(path)
    if START not in out:
        raise UserError(f"{root}: no predict/{START}/predictions.jsonl (run the rllr pipeline first)")
    ids = [r["id"] for r in out[START]]
    for name, rows in out.items():
        if [r["id"] for r in rows] != ids:
            raise UserError(f"{root}: predict/{name} scored other dev items than predict/{START}; rerun it")
    return out


def macro_weights(tasks: list[str]) -> np.ndarray:
    """Per-item weights whose weighted mean of correctness is the mean over tasks of per-task accuracy."""
    counts = {t: tasks.count(t) for t in set(tasks)}
    return np.array([len(tasks) / (len(counts) * counts[t]) for t in tasks])


def correctness(rows: list[dict]) -> np.ndarray:
    return np.array([float(r["pred"] is not None and str(r["pred"]) == str(r["gold"])) for r in rows])


def accuracy_claims(preds: dict[str, list[dict]], setting: str) -> list[Claim]:
    tasks = [r["task"] for r in preds[START]]
    w = macro_weights(tasks)
    out = []
    for treated, baseline, paper_value, note in COMPARISONS:
        if treated not in preds or baseline not in preds:
            continue
        a, b = correctness(preds[treated]) * w, correctness(preds[baseline]) * w
        per_task = ", ".join(
            f"{t} {100 * (correctness(preds[treated])[m].mean() - correctness(preds[baseline])[m].mean()):+.1f}"
            for t in sorted(set(tasks)) for m in [np.array([x == t for x in tasks])])
        out.append(Claim(PAPER, f"{SYSTEMS[treated]} beats {SYSTEMS[baseline]} in accuracy",
                         f"mean-over-tasks accuracy, {SYSTEMS[treated]} − {SYSTEMS[baseline]}", +1,
                         paired_bootstrap(a, b), "dev items", paper_value, SOURCE if paper_value is not None else "",
                         setting, note=f"{note + '; ' if note else ''}per task (points): {per_task}", scale=100))
    return out


def rm_claims(root: Path, setting: str) -> tuple[list[Claim], list[dict]]:
    scores = {k: read_jsonl(root / k / "eval_scores.jsonl") for k in ("rm_rat", "rm_label")
              if (root / k / "eval_scores.jsonl").is_file()}
    if "rm_label" not in scores:
        return [], []
    idx = [r["index"] for r in scores["rm_label"]]
    margins = {k: np.array([r["chosen_score"] - r["rejected_score"] for r in rows]) for k, rows in scores.items()}
    if "rm_rat" in scores and [r["index"] for r in scores["rm_rat"]] != idx:
        raise UserError(f"{root}: rm_rat and rm_label scored different held-out pairs")
    correct = {k: (m > 0) + 0.5 * (m == 0) for k, m in margins.items()}
    out = [Claim(PAPER, "RM_label (label-sensitive pairs) prefers the right label's response on held-out pairs",
                 "pairwise accuracy − 0.5", +1, bootstrap_mean(correct["rm_label"], reference=0.5), "held-out pairs",
                 None, "RM check [CODE: held-out accuracy on label pairs]; no paper number", setting, scale=100,
                 note=f"mean margin {margins['rm_label'].mean():+.3f}")]
    if "rm_rat" in correct:
        out.append(Claim(PAPER, "RM_label tells right from wrong labels better than RM_rat (rationale pairs)",
                         "pairwise accuracy, RM_label − RM_rat", +1,
                         paired_bootstrap(correct["rm_label"], correct["rm_rat"]), "held-out pairs", None,
                         "arXiv 2405.19763 (premise: rationale pairs are label-insensitive); no paper number",
                         setting, scale=100,
                         note=f"RM_rat accuracy {correct['rm_rat'].mean():.3f}, mean margin "
                              f"{margins['rm_rat'].mean():+.3f}"))
    rows = [{"index": i, **{f"{k}_margin": float(m[j]) for k, m in margins.items()}} for j, i in enumerate(idx)]
    return out, rows


def logprob_shift(root: Path, preds: dict[str, list[dict]], n_items: int, template: str,
                  seed: int = 0) -> dict[str, list[dict]]:
    """Per PPO mode: log π_PPO and log π_start of the policy's greedy answer on a seeded subset of dev items."""
    from common.eval.option_scoring import option_logprobs
    from common.models import load_causal_lm, load_tokenizer

    prompts = {r["id"]: r["prompt"] for r in read_jsonl(root / "data" / "eval.jsonl")}
    modes = [m for m in PPO_MODES if m in preds and (root / m / "policy_merged").is_dir()]
    ids = [r["id"] for r in preds[START]]
    pick = sorted(random.Random(seed).sample(range(len(ids)), min(n_items, len(ids))))

    def score(model_dir: Path, answers: dict[str, list[str]]) -> dict[str, list[float]]:
        tok = load_tokenizer(str(model_dir))
        model = load_causal_lm(str(model_dir))
        out = {}
        for key, texts in answers.items():
            lp = option_logprobs(model, tok, [prompts[ids[j]] for j in pick], [[t] for t in texts], template,
                                 max_length=1024, desc=f"log-probs {key} under {model_dir.parent.name}")
            out[key] = [x[0][0] for x in lp]
        del model
        gc.collect()
        return out

    answers = {m: [preds[m][j]["output"] for j in pick] for m in modes}
    under_start = score(root / "sft_wrat_merged", answers)
    result = {}
    for m in modes:
        own = score(root / m / "policy_merged", {m: answers[m]})[m]
        result[m] = [{"id": ids[j], "logp_policy": p, "logp_start": s, "same_as_start":
                      preds[m][j]["output"] == preds[START][j]["output"]}
                     for j, p, s in zip(pick, own, under_start[m])]
    return result


def shift_claims(root: Path, preds: dict[str, list[dict]], shift: dict[str, list[dict]], setting: str) -> list[Claim]:
    out = []
    for m in PPO_MODES:
        if m not in preds:
            continue
        changed = [float(a["output"] != b["output"]) for a, b in zip(preds[m], preds[START])]
        flipped = sum(a["pred"] != b["pred"] for a, b in zip(preds[m], preds[START]))
        kl = ""
        metrics = root / m / "metrics.json"
        if metrics.is_file():
            met = json.loads(metrics.read_text())
            kl = f"; PPO's own summed KL to the reference, last step {met.get('kl_last', float('nan')):+.3f}"
        out.append(Claim(PAPER, f"{SYSTEMS[m]}: PPO changed the start model's greedy answers (setting check)",
                         "share of dev items with a different greedy answer", +1, bootstrap_mean(changed),
                         "dev items", None, "setting check (not a paper number)", setting,
                         note=f"{flipped} predicted labels differ{kl}", scale=100))
        if m in shift:
            d = [r["logp_policy"] - r["logp_start"] for r in shift[m]]
            out.append(Claim(PAPER, f"{SYSTEMS[m]}: PPO made its own greedy answers likelier than the start model "
                                    "did (setting check)", "log π_PPO(y|x) − log π_start(y|x), nats per answer", +1,
                             bootstrap_mean(d), "dev items (seeded subset)", None,
                             "setting check (not a paper number)", setting))
    return out


def plot(claims: list[Claim], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [c for c in claims if c.metric.startswith("mean-over-tasks") or c.metric.startswith("pairwise accuracy, ")]
    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(rows) + 1.3))
    for i, c in enumerate(rows):
        ax.plot([100 * c.ours.low, 100 * c.ours.high], [i, i], color="C0")
        ax.plot([100 * c.ours.estimate], [i], "o", color="C0")
        if c.paper_value is not None:
            ax.plot([100 * c.paper_value], [i], "x", color="C3", markersize=8)
    ax.axvline(0, ls="--", color="grey")
    ax.set_yticks(range(len(rows)), [c.metric.split(", ")[-1] for c in rows], fontsize=7)
    ax.set_xlabel("points (dot: ours, 95% paired bootstrap; x: paper)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def training_steps(root: Path) -> str:
    """The optimizer steps each stage of the run took, read from its metrics (the setting names them)."""
    def steps(stage: str, key: str) -> str:
        path = root / stage / "metrics.json"
        return str(json.loads(path.read_text()).get(key, "?")) if path.is_file() else "?"

    ppo = sorted({steps(p.name, "steps") for p in root.glob("ppo_*") if p.is_dir()}) or ["?"]
    return (f"SFT {steps('sft_wrat', 'global_step')} / {steps('sft_label', 'global_step')} steps, RM_rat "
            f"{steps('rm_rat', 'global_step')}, RM_label {steps('rm_label', 'global_step')}, PPO {'/'.join(ppo)}")


def rm_backbone(root: Path) -> str:
    """'' when the RMs start from the SFT model (the paper's setting), else which model they fine-tune and how."""
    parts = []
    for stage in ("rm_rat", "rm_label"):
        path = root / stage / "config.yaml"
        trained = read_yaml(str(path)) if path.is_file() else {}
        start = str(trained.get("model_name_or_path") or "")
        if start and Path(start) != root / "sft_wrat_merged":
            how = "LoRA" if trained.get("use_lora") else "full fine-tune"
            parts.append(f"{stage} from {start.removeprefix('embedded:')} ({how})")
    return f" policy; {', '.join(parts)}" if parts else ""


def run(root: Path, shift_items: int, template: str) -> list[Claim]:
    preds = load_predictions(root)
    n_items = len(preds[START])
    tasks = sorted({r["task"] for r in preds[START]})
    setting = (f"SmolLM2-135M LoRA{rm_backbone(root)}, {'+'.join(tasks)}, {n_items} dev items, CPU-sized "
               f"training ({training_steps(root)})")
    rm_rows, pair_rows = rm_claims(root, setting.replace(f"{n_items} dev items", "held-out label pairs"))
    chance = next((c.ours for c in rm_rows if c.metric == "pairwise accuracy − 0.5"), None)
    policy_setting = setting
    if chance is not None and not chance.low > 0:  # PPO against an RM that cannot tell labels apart optimises noise
        policy_setting = (f"NOT CARRIED (RM_label {100 * chance.estimate:+.1f} [{100 * chance.low:+.1f}, "
                          f"{100 * chance.high:+.1f}] points over chance on held-out label pairs): {setting}")
    claims = accuracy_claims(preds, policy_setting) + rm_rows
    shift = logprob_shift(root, preds, shift_items, template) if shift_items > 0 else {}
    claims += shift_claims(root, preds, shift, setting)
    path = write_claims(root, claims)
    items = [{"id": r["id"], "task": r["task"], "gold": r["gold"],
              **{f"{k}_pred": preds[k][j]["pred"] for k in preds}} for j, r in enumerate(preds[START])]
    atomic_write_text(root / "fidelity_items.jsonl", "".join(json.dumps(r) + "\n" for r in items))
    atomic_write_text(root / "fidelity_pairs.jsonl", "".join(json.dumps(r) + "\n" for r in pair_rows))
    atomic_write_text(root / "fidelity_shift.jsonl",
                      "".join(json.dumps({"mode": m, **r}) + "\n" for m, rows in shift.items() for r in rows))
    plot(claims, root / "fidelity.png")
    print(f"wrote {path}", flush=True)
    for c in claims:
        print(f"{c.verdict:<13} {c.ours_text():<44} {c.claim}", flush=True)
    return claims


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--root", required=True, help="the pipeline's task folder (runs/rllr/fidelity/sst2+rte)")
    parser.add_argument("--shift-items", type=int, default=150,
                        help="dev items for the log-prob shift of each PPO policy (0: skip; needs the models)")
    parser.add_argument("--template", default="tokenizer", help="chat template the predictions used")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)

    def go() -> int:
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        root = Path(args.root)
        if not root.is_dir():
            raise UserError(f"--root {root}: no such folder (run make rllr-fidelity first)")
        run(root, args.shift_items, args.template)
        return 0

    return run_cli(go)


if __name__ == "__main__":
    raise SystemExit(main())
