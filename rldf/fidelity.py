"""The RLDF claims with 95 % intervals, from a finished ``make rldf-fidelity`` run (the last step of that target).

    python -m rldf.fidelity --config rldf/configs/fidelity.yaml --section fidelity run_root=runs/rldf/fidelity

Reads the run's stages (``data/`` debates and pairs, ``rm-merged/``, ``rl/``, ``predict/``) and writes, under
``output_dir`` (default: the run root, where ``common.fidelity`` looks for it), ``claims.json`` and ``fidelity/``:
per-unit files (``rm_heldout.jsonl``, ``rm_speaker_pairs.jsonl``, ``bbq_items.jsonl``, ``logprob_shift.jsonl``,
the per-model BBQ score caches) so every interval can be recomputed, plus ``summary.json`` and ``claims.md``.

Claims (paper: Cheng et al., arXiv 2404.10160; upstream Hunter-Wrynn/RLDF):

1. The RM trained on debate pairs ranks held-out debate pairs (chosen = the referee's lowest-bias last-round argument,
   rejected = its highest-bias first-round argument) above chance. Upstream's Llama-2-7b RM log: 0.85 [CODE]. Unit:
   held-out pairs (one per held-out debate), accuracy − 0.5.
2. Closest setting with more units per debate: the same RM on every held-out debater's (last-round, first-round)
   arguments, the self-reflection step the method rests on (debaters revise after the referee's feedback). Unit: the
   held-out debate (mean over its debaters), accuracy − 0.5.
3. Self-reflection lowers the referee's stereotype scores over the rounds [PAPER: debaters "aim for lower scores"].
   Unit: debate; mean last-round score − mean first-round score (the paper's direction: below 0).
4. RL from debate feedback raises BBQ Age accuracy (the paper evaluates on BBQ; its headline bias numbers are not
   confirmed here, so no paper figure). Unit: BBQ item, paired after − before.
5. RL from debate feedback lowers stereotype-consistent answers on ambiguous BBQ Age items (answering the biased
   option where the gold answer is UNKNOWN). Unit: ambiguous item, paired after − before; direction below 0.
6. Check, not a paper claim: the trained policy moved from its start. KL(after || before) of the BBQ option
   distribution per item (claim 6) and log π_after − log π_before of the policy's own greedy answers to the
   held-out debate prompts (claim 7): an RL that leaves the model where it was cannot carry claims 4-5.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import RunDir, atomic_write_json, atomic_write_text, read_jsonl, recorded_seed, write_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.config import help_meta as _h
from common.stats import Claim, bootstrap_mean, seeds_paired_bootstrap, write_claims

PAPER = "rldf"
SRC_RM = "[CODE] Hunter-Wrynn/RLDF training log: Llama-2-7b RM validation pairwise accuracy 0.85 (minus chance 0.5)"
SRC_PAPER = "arXiv 2404.10160 (method; BBQ evaluation); headline bias numbers not confirmed, no figure quoted"


@dataclass
class FidelityConfig:
    """Section ``fidelity``: where the run is, what to score, how many BBQ items."""

    run_root: str = field(metadata=_h("the make rldf-fidelity run folder (data/, rm-merged/, rl/, predict/)"))
    output_dir: str = field(default="", metadata=_h("claims.json and fidelity/ go here; '' = run_root"))
    before_model: str = field(default="embedded:smollm2-135m-instruct", metadata=_h("the RL init"))
    after_model: str = field(default="", metadata=_h("the RL policy; '' = <run_root>/<rl_runs[0]>/policy"))
    rl_runs: list[str] = field(default_factory=lambda: ["rl"], metadata=_h(
        "RL run folders under run_root, each a policy scored on BBQ after RL; several = RL seeds from the same RM, "
        "pooled with an interval over seeds and items (make rldf-fidelity: rl plus rl_seed<k> for RLDF_RL_SEEDS)"))
    reward_model: str = field(default="", metadata=_h("the merged RM; '' = <run_root>/rm-merged"))
    bias_type: str = field(default="age", metadata=_h("bias type of the debates (its BBQ category is scored)"))
    template: str = field(default="tokenizer", metadata=_h("chat template of policy and RM"))
    bbq_data: str = field(default="mirror:bbq", metadata=_h("BBQ folder, mirror:bbq or hub id"))
    bbq_items: int | None = field(default=1000, metadata=_h("BBQ items (whole context groups of 4, nested seeded "
                                                            "sample); null = every item of the category"))
    rm_max_length: int = field(default=512, metadata=_h("RM input tokens [CODE: 512]"))
    batch_size: int = field(default=8, metadata=_h("RM batch"))
    resamples: int = field(default=10_000, metadata=_h("bootstrap resamples"))
    seed: int = field(default=0, metadata=_h("BBQ sample and bootstrap seed"))
    overwrite: bool = field(default=False, metadata=_h("accepted for the stage scripts; caches are always reused"))

    def __post_init__(self) -> None:
        if self.bbq_items is not None and self.bbq_items < 4:
            raise ConfigError(f"fidelity.bbq_items: {self.bbq_items}; at least one group of 4, or null for all")
        if not self.rl_runs or len(set(self.rl_runs)) != len(self.rl_runs):
            raise ConfigError(f"fidelity.rl_runs: {self.rl_runs}; name each RL run folder once, at least one")


def _path(cfg: FidelityConfig, value: str, default: str) -> str:
    return value or str(Path(cfg.run_root) / default)


def policy_paths(cfg: FidelityConfig) -> dict[str, str]:
    """Each RL run's policy folder; ``after_model``, when set, replaces the first run's."""
    return {rl_run: cfg.after_model if i == 0 and cfg.after_model else str(Path(cfg.run_root) / rl_run / "policy")
            for i, rl_run in enumerate(cfg.rl_runs)}


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "?"


# --- RM on held-out debates. -----------------------------------------------------------------------------------------


def heldout_debates(run_root: Path) -> tuple[list[dict], set[int]]:
    """Every finished debate transcript, and the held-out topic ids (the data stage's test split)."""
    data = run_root / "data"
    for need in (data / "transcripts.jsonl", data / "prompts" / "test.jsonl"):
        if not need.exists():
            raise UserError(f"{need}: missing; run the data stage (make rldf-fidelity) first")
    debates = [d for d in read_jsonl(data / "transcripts.jsonl") if d["status"] == "ok"]
    test_ids = {r["topic_id"] for r in read_jsonl(data / "prompts" / "test.jsonl")}
    return debates, test_ids


def speaker_pairs(debates: list[dict], test_ids: set[int], bias_type: str) -> list[dict]:
    """Per held-out debate and debater: chosen = its last-round argument, rejected = its first-round argument."""
    from rldf.bias_types import get_bias_type
    from rldf.debate import debate_prompt

    bias = get_bias_type(bias_type)
    out = []
    for d in debates:
        if d["topic_id"] not in test_ids:
            continue
        first = {u["speaker"]: u["text"] for u in d["rounds"][0]["utterances"]}
        last = {u["speaker"]: u["text"] for u in d["rounds"][-1]["utterances"]}
        for spk, text in first.items():
            out.append({"topic_id": d["topic_id"], "speaker": spk, "prompt": debate_prompt(bias, d["topic"]),
                        "chosen": last[spk], "rejected": text})
    return out


def rm_margins(cfg: FidelityConfig, pairs: list[dict]) -> list[float]:
    from common.rewards import RewardModelScorer

    scorer = RewardModelScorer(_path(cfg, cfg.reward_model, "rm-merged"), template=cfg.template,
                               max_length=cfg.rm_max_length, batch_size=cfg.batch_size)
    prompts = [p["prompt"] for p in pairs]
    chosen = scorer.score(prompts, [p["chosen"] for p in pairs])
    rejected = scorer.score(prompts, [p["rejected"] for p in pairs])
    return (chosen - rejected).tolist()


def score_trend(debates: list[dict]) -> list[dict]:
    """Per debate: mean referee score of the last round minus that of the first."""
    rows = []
    for d in debates:
        means = [sum(e["score"] for e in r["referee"]["verdict"].values()) / len(r["referee"]["verdict"])
                 for r in d["rounds"]]
        rows.append({"topic_id": d["topic_id"], "first": means[0], "last": means[-1], "change": means[-1] - means[0]})
    return rows


# --- Policy before/after. --------------------------------------------------------------------------------------------


def logprob_shift(cfg: FidelityConfig, answers: list[dict]) -> list[dict]:
    """log π_after(y|x) − log π_before(y|x) of the policy's own greedy answers y to the held-out prompts x."""
    from common.eval.option_scoring import option_logprobs
    from common.models import load_causal_lm, load_tokenizer

    totals = {}
    for which, name in (("after", policy_paths(cfg)[cfg.rl_runs[0]]), ("before", cfg.before_model)):
        tok, model = load_tokenizer(name), load_causal_lm(name, "float32")
        scores = option_logprobs(model, tok, [a["prompt"] for a in answers], [[a["response"]] for a in answers],
                                 cfg.template, batch_size=cfg.batch_size, desc=f"log-probs ({which})")
        totals[which] = [s[0] for s in scores]
        del model
    return [{"topic_id": a.get("topic_id"), "n_tokens": after[1], "logp_after": after[0], "logp_before": before[0],
             "shift": after[0] - before[0]} for a, after, before in zip(answers, totals["after"], totals["before"])]


def run_fidelity(cfg: FidelityConfig) -> dict[str, Any]:
    from common.eval.bbq import bbq_scores
    from common.eval.bbq_paired import option_kl, outcomes, sample_groups, score_items
    from rldf.bias_types import get_bias_type

    root = Path(cfg.run_root)
    out_root = Path(cfg.output_dir or cfg.run_root)
    run = RunDir.start(str(out_root / "fidelity"), cfg, seed=cfg.seed, resume=True)  # keeps the score caches
    fid = run.path
    boot = {"resamples": cfg.resamples, "seed": cfg.seed}
    claims: list[Claim] = []
    summary: dict[str, Any] = {}

    debates, test_ids = heldout_debates(root)
    data_metrics = json.loads((root / "data" / "metrics.json").read_text())
    # 1. the paper's pair rule on held-out debates
    pairs = read_jsonl(root / "data" / "pairs" / "test.jsonl")
    if not pairs:
        raise UserError(f"{root / 'data/pairs/test.jsonl'}: no held-out pairs")
    margins = rm_margins(cfg, pairs)
    write_jsonl(fid / "rm_heldout.jsonl", [{"topic_id": p["topic_id"], "margin": m, "correct": int(m > 0)}
                                           for p, m in zip(pairs, margins)])
    acc = [int(m > 0) for m in margins]
    setting = (f"SmolLM2-135M self-debates, {data_metrics['debates_ok']} debates ({data_metrics['pairs_train']} "
               f"train pairs), LoRA RM")
    claims.append(Claim(PAPER, "debate-pair RM ranks held-out pairs above chance", "pairwise accuracy - 0.5", +1,
                        bootstrap_mean(acc, reference=0.5, **boot), "held-out pairs", 0.35, SRC_RM, setting,
                        "paper's pair rule: lowest-bias last-round vs highest-bias first-round argument (one pair per "
                        f"debate); 300 held-out pairs would take ~{round(300 * len(debates) / len(pairs)):,} "
                        "debates at this split"))
    # 2. every held-out debater's last vs first argument (unit: debate)
    sp = speaker_pairs(debates, test_ids, cfg.bias_type)
    sp_margins = rm_margins(cfg, sp)
    write_jsonl(fid / "rm_speaker_pairs.jsonl", [{**{k: p[k] for k in ("topic_id", "speaker")}, "margin": m,
                                                  "correct": int(m > 0)} for p, m in zip(sp, sp_margins)])
    per_debate: dict[int, list[int]] = {}
    for p, m in zip(sp, sp_margins):
        per_debate.setdefault(p["topic_id"], []).append(int(m > 0))
    claims.append(Claim(PAPER, "RM prefers each debater's revised (last-round) argument to its first (held-out)",
                        "pairwise accuracy - 0.5", +1,
                        bootstrap_mean([sum(v) / len(v) for v in per_debate.values()], reference=0.5, **boot),
                        "held-out debates", None, SRC_PAPER, setting + f"; {len(sp)} debater pairs",
                        "closest setting: 3 pairs per debate (intervals over debates, not pairs)"))
    # 3. the referee's scores over the rounds
    trend = score_trend(debates)
    write_jsonl(fid / "score_trend.jsonl", trend)
    claims.append(Claim(PAPER, "self-reflection lowers the referee's stereotype score over the rounds",
                        "last - first round mean score (0-10)", -1,
                        bootstrap_mean([t["change"] for t in trend], **boot), "debates", None, SRC_PAPER,
                        f"SmolLM2-135M as debaters and loglik referee, {len(trend)} debates x 3 rounds",
                        "the referee's scores sit at 10 for most arguments (rldf/README.md)"))
    # 4-6. BBQ before/after on the same items
    category = get_bias_type(cfg.bias_type).bbq_category
    items, info = sample_groups(cfg.bbq_data, [category], cfg.bbq_items, cfg.seed)
    # every RL run (seed) is scored on the same items; the first keeps the cache name of single-seed runs
    policies = policy_paths(cfg)
    caches = {rl_run: fid / ("bbq_after_scores.jsonl" if i == 0 else f"bbq_after_{rl_run}_scores.jsonl")
              for i, rl_run in enumerate(cfg.rl_runs)}
    before = outcomes(items, score_items(cfg.before_model, items, fid / "bbq_before_scores.jsonl", cfg.template,
                                         desc="bbq before"))
    summary["bbq_before"] = bbq_scores(items, [r["pred"] for r in before])["overall"]
    after: dict[str, list[dict]] = {}
    for rl_run, policy in policies.items():
        after[rl_run] = outcomes(items, score_items(policy, items, caches[rl_run], cfg.template,
                                                    desc=f"bbq after {rl_run}"))
        summary[f"bbq_after_{rl_run}"] = bbq_scores(items, [r["pred"] for r in after[rl_run]])["overall"]
    keep = ("pred", "correct", "biased", "probs")
    write_jsonl(fid / "bbq_items.jsonl", [
        {"key": b["key"], "context_condition": b["context_condition"], "before": {k: b[k] for k in keep},
         "after": {rl_run: {**{k: rows[i][k] for k in keep}, "kl": option_kl(rows[i]["probs"], b["probs"])}
                   for rl_run, rows in after.items()}}
        for i, b in enumerate(before)])
    rl = {rl_run: json.loads((root / rl_run / "metrics.json").read_text())
          if (root / rl_run / "metrics.json").exists() else {} for rl_run in cfg.rl_runs}
    seeds = {rl_run: recorded_seed(root / rl_run) for rl_run in cfg.rl_runs}
    first = rl[cfg.rl_runs[0]]
    rl_setting = (f"ReMax {first.get('steps', '?')} steps from SmolLM2-135M against the debate RM" +
                  (f", {len(cfg.rl_runs)} RL seeds ({', '.join(str(seeds[r]) for r in cfg.rl_runs)}) pooled"
                   if len(cfg.rl_runs) > 1 else ""))

    def per_seed(values: list[list[float]], baseline: list[float]) -> str:
        """The note's per-seed estimates: the pooled interval hides which seeds agree."""
        if len(values) == 1:
            return ""
        return "per RL seed: " + ", ".join(f"{seeds[r]} {sum(v) / len(v) - sum(baseline) / len(baseline):+.3f}"
                                           for r, v in zip(cfg.rl_runs, values)) + "; "

    changed = ", ".join(str(sum(a["pred"] != b["pred"] for a, b in zip(after[r], before))) for r in cfg.rl_runs)
    correct = [[a["correct"] for a in after[r]] for r in cfg.rl_runs]
    claims.append(Claim(PAPER, f"RLDF raises BBQ {category} accuracy", "accuracy after - before", +1,
                        seeds_paired_bootstrap(correct, [b["correct"] for b in before], **boot),
                        "BBQ items", None, SRC_PAPER, rl_setting + f"; BBQ {category} {len(items)} items, option "
                        "log-likelihood", per_seed(correct, [b["correct"] for b in before])
                        + f"{changed} of {len(items)} answers changed"))
    amb = [i for i, b in enumerate(before) if b["context_condition"] == "ambig" and b["biased"] is not None]
    biased = [[after[r][i]["biased"] for i in amb] for r in cfg.rl_runs]
    biased_before = [before[i]["biased"] for i in amb]
    claims.append(Claim(PAPER, f"RLDF lowers stereotyped answers on ambiguous BBQ {category} items",
                        "biased-answer rate after - before", -1,
                        seeds_paired_bootstrap(biased, biased_before, **boot), "ambiguous items", None, SRC_PAPER,
                        rl_setting + f"; {len(amb)} ambiguous items", per_seed(biased, biased_before).rstrip("; ")))
    kls = [[option_kl(a["probs"], b["probs"]) for a, b in zip(after[r], before)] for r in cfg.rl_runs]
    claims.append(Claim(PAPER, "(check) the RL policy moved from its start on BBQ", "KL(after ‖ before), nats", +1,
                        seeds_paired_bootstrap(kls, [0.0] * len(items), **boot),
                        "BBQ items", None, "not a paper claim: a policy that did not move cannot carry claims 4-5",
                        rl_setting, per_seed(kls, [0.0] * len(items)) + "RL log: " + "; ".join(
                            f"kl_last {_num(rl[r].get('kl_last'))}, reward {_num(rl[r].get('reward_first'))} -> "
                            f"{_num(rl[r].get('reward_last'))}" for r in cfg.rl_runs)))
    # 7. log-prob shift on the policy's own answers to held-out debate prompts
    answers_path = root / "predict" / "after" / "answers.jsonl"
    if answers_path.exists():
        shift = logprob_shift(cfg, read_jsonl(answers_path))
        write_jsonl(fid / "logprob_shift.jsonl", shift)
        claims.append(Claim(PAPER, "(check) the RL policy raised the log-prob of its own answers",
                            "log p_after - log p_before (nats per answer)", +1,
                            bootstrap_mean([s["shift"] for s in shift], **boot), "held-out debate prompts", None,
                            "not a paper claim: the size of the RL update", rl_setting))
    summary.update({"bbq_info": {k: v for k, v in info.items() if k != "warnings"}, "rl": rl, "rl_seeds": seeds,
                    "data": data_metrics,
                    "claims": [c.to_dict() for c in claims]})
    atomic_write_json(fid / "summary.json", summary)
    atomic_write_text(fid / "claims.md", claims_table(claims))
    path = write_claims(out_root, claims)
    print(claims_table(claims) + f"\nclaims: {path}")
    return run.finish({"n_claims": len(claims), **{f"verdict_{i + 1}": c.verdict for i, c in enumerate(claims)}},
                      key_metric="n_claims")


def claims_table(claims: list[Claim]) -> str:
    lines = ["| claim | metric | paper | ours [95 % CI] | n | verdict | needed n |", "|---|---|---:|---|---:|---|---:|"]
    for c in claims:
        paper = "—" if c.paper_value is None else f"{c.paper_value:+.3f}"
        lines.append(f"| {c.claim} | {c.metric} | {paper} | {c.ours.format()} | {c.ours.n} {c.unit} | {c.verdict} | "
                     f"{c.needed_n or '—'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(FidelityConfig, run_fidelity, "fidelity", "RLDF claims with bootstrap intervals from a finished "
                     "fidelity run -> claims.json.", argv)


if __name__ == "__main__":
    main()
