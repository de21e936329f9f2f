"""Ballots -> one collective ranking per prompt and SWF -> training pairs; agreement and position-bias statistics.

Training rows (each becomes ``pairs/<row>.jsonl`` for DPO and ``sft/<row>.jsonl`` for SFT on the top response):

- ``swf_<rule>``: the SWF's collective ranking of the K candidates (Conitzer et al.).
- ``gold``: the dataset's own human label (chosen vs rejected), upstream's "DPO gold".
- ``judge_<id>``: one persona's ballot alone (a dictatorship), the single-persona baseline.

Pairs from a ranking (``pair_rule``): ``best_vs_worst`` (the default of our method notes, §3 step 5) pairs the top
with each candidate of the bottom tier; ``top_vs_each`` pairs the top with every lower candidate. A prompt whose top
is tied (the rule names several winners) yields no pair: there is no collective preference to learn.

Statistics: Kendall's W per prompt (mean over prompts), display-position win rates, each rule's agreement with the
human label (chosen above rejected = 1, tied = ½), and the SWF disagreement matrix: the share of prompts on which
two rules' winners differ. Every rule breaks ties with the same seeded priority per prompt, so two rules that tie
the same candidates do not count as disagreeing.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.artifacts import RunDir, atomic_write_json, atomic_write_text, read_jsonl, write_jsonl
from common.config import ConfigError, UserError, stage_cli
from common.config import help_meta as _help
from rlchf.rank import position_stats
from rlchf.voting import SWFS, Profile, aggregate, kendalls_w

PAIR_RULES = ("best_vs_worst", "top_vs_each")


@dataclass
class AggregateConfig:
    """Stage ``aggregate``: SWFs over the ballots, statistics, and the pairs/SFT files of every training row."""

    candidates: str = field(default="", metadata=_help("candidates.jsonl of the candidates stage"))
    rankings: str = field(default="", metadata=_help("rankings.jsonl of the rank stage (or of human annotators)"))
    rules: list[str] = field(default_factory=lambda: ["plurality", "borda", "copeland", "maximin", "kemeny_young",
                                                      "schulze", "ranked_pairs"], metadata=_help("SWFs to apply"))
    pair_rule: str = field(default="best_vs_worst", metadata=_help(f"one of {list(PAIR_RULES)}"))
    judge_baselines: list[str] = field(default_factory=list, metadata=_help(
        "judge ids whose single ballots become baseline rows; ['all'] = every judge"))
    seed: int = field(default=0, metadata=_help("seed of the per-prompt tie-break"))
    output_dir: str = field(default="runs/rlchf/aggregate", metadata=_help("run folder"))
    overwrite: bool = field(default=False, metadata=_help("replace a finished run"))

    def __post_init__(self) -> None:
        if not self.candidates or not self.rankings:
            raise ConfigError("aggregate.candidates and aggregate.rankings: both paths are required")
        unknown = sorted(set(self.rules) - set(SWFS))
        if unknown:
            raise ConfigError(f"aggregate.rules: {unknown[0]!r} is not one of {sorted(SWFS)}")
        if self.pair_rule not in PAIR_RULES:
            raise ConfigError(f"aggregate.pair_rule = {self.pair_rule!r}: must be one of {list(PAIR_RULES)}")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def read_candidates(path: str) -> list[dict]:
    """candidates.jsonl rows, each checked for what aggregation reads; a bad one is named as file:row:field."""
    rows = read_jsonl(path)
    for i, row in enumerate(rows, start=1):
        for key in ("prompt_id", "chosen_id", "rejected_id"):
            if not isinstance(row.get(key), str):
                raise UserError(f"{path}:{i}:{key}: expected a string, got {_kind(row.get(key))}")
        cands = row.get("candidates")
        if not isinstance(cands, list) or not cands or not all(
                isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("text"), str) for c in cands):
            raise UserError(f"{path}:{i}:candidates: expected a non-empty list of {{id: str, text: str}}")
        ids = [c["id"] for c in cands]
        for key in ("chosen_id", "rejected_id"):
            if row[key] not in ids:
                raise UserError(f"{path}:{i}:{key}: {row[key]!r} is not among the row's candidate ids {ids}")
    return rows


def read_ballots(path: str, prompt_ids: set[str]) -> list[dict]:
    """rankings.jsonl ballots ``{prompt_id, judge_id, ranking: [[id, ...], ...] | null, abstained}``, each checked;
    a bad one is named as file:row:field (a ranking stored as a JSON string, say, instead of a list of tiers)."""
    ballots = read_jsonl(path)
    for i, b in enumerate(ballots, start=1):
        if not isinstance(b.get("prompt_id"), str):
            raise UserError(f"{path}:{i}:prompt_id: expected a string, got {_kind(b.get('prompt_id'))}")
        if b["prompt_id"] not in prompt_ids:
            raise UserError(f"{path}:{i}:prompt_id: {b['prompt_id']!r} is not a prompt of the candidates file")
        if not isinstance(b.get("judge_id"), (str, int)) or isinstance(b.get("judge_id"), bool):
            raise UserError(f"{path}:{i}:judge_id: expected a string or an integer, got {_kind(b.get('judge_id'))}")
        if not isinstance(b.get("abstained"), bool):
            raise UserError(f"{path}:{i}:abstained: expected true or false, got {_kind(b.get('abstained'))}")
        ranking = b.get("ranking")
        if b["abstained"]:  # an abstention's ranking is not read
            continue
        if not (isinstance(ranking, list) and ranking and all(
                isinstance(t, list) and t and all(isinstance(c, str) for c in t) for t in ranking)):
            hint = " (a JSON-encoded string: store the list itself)" if isinstance(ranking, str) else ""
            raise UserError(f"{path}:{i}:ranking: expected a list of tiers (non-empty lists of candidate ids) on a "
                            f"ballot that did not abstain, got {_kind(ranking)}{hint}")
    return ballots


def prompt_seed(seed: int, prompt_id: str) -> int:
    return int(hashlib.sha1(f"{seed}|{prompt_id}".encode()).hexdigest()[:8], 16)


def pairs_from_tiers(tiers: list[list[str]], pair_rule: str, n_winners: int = 1) -> list[tuple[str, str]]:
    """(chosen id, rejected id) pairs of one ranking; none when its top is tied or everything ties."""
    if n_winners > 1 or len(tiers[0]) > 1 or len(tiers) < 2:
        return []
    top = tiers[0][0]
    lower = tiers[-1] if pair_rule == "best_vs_worst" else [c for tier in tiers[1:] for c in tier]
    return [(top, other) for other in lower]


def profile_of(ballots: list[dict], ids: list[str]) -> Profile:
    index = {cid: i for i, cid in enumerate(ids)}
    for b in ballots:
        for tier in [] if b["abstained"] else b["ranking"] or []:
            for cid in tier:
                if cid not in index:
                    raise UserError(f"ranking of prompt {b['prompt_id']} by {b['judge_id']} names candidate {cid!r}, "
                                    f"which is not among {ids}")
    return Profile.from_ballots([None if b["abstained"] or not b["ranking"] else
                                 [[index[c] for c in tier] for tier in b["ranking"]] for b in ballots], len(ids))


def gold_agreement(tiers: list[list[str]], chosen: str, rejected: str) -> float:
    level = {cid: t for t, tier in enumerate(tiers) for cid in tier}
    return 1.0 if level[chosen] < level[rejected] else 0.5 if level[chosen] == level[rejected] else 0.0


def aggregate_prompts(rows: list[dict], ballots: list[dict], rules: list[str], seed: int) -> list[dict]:
    """One record per (prompt, rule): ``{prompt_id, rule, ranking, tiers, winners, n_voters, n_abstain}`` in ids."""
    by_prompt: dict[str, list[dict]] = defaultdict(list)
    for b in ballots:
        by_prompt[b["prompt_id"]].append(b)
    out = []
    for row in rows:
        ids = [c["id"] for c in row["candidates"]]
        prof = profile_of(by_prompt.get(row["prompt_id"], []), ids)
        w = kendalls_w(prof)
        for rule in rules:
            res = aggregate(prof, rule, prompt_seed(seed, row["prompt_id"]))
            out.append({"prompt_id": row["prompt_id"], "rule": rule, "ranking": [ids[a] for a in res.ranking],
                        "tiers": [[ids[a] for a in t] for t in res.tiers], "winners": [ids[a] for a in res.winners],
                        "n_voters": res.n_voters, "n_abstain": res.n_abstain,
                        "kendalls_w": None if np.isnan(w) else w})  # None: fewer than two ballots
    return out


def disagreement_matrix(aggregates: list[dict], rules: list[str]) -> np.ndarray:
    """(R, R): share of prompts on which rule i's winner (after the shared tie-break) differs from rule j's."""
    winner = {(a["prompt_id"], a["rule"]): a["ranking"][0] for a in aggregates}
    prompts = sorted({a["prompt_id"] for a in aggregates})
    mat = np.zeros((len(rules), len(rules)))
    for (i, r1), (j, r2) in itertools.product(enumerate(rules), repeat=2):
        mat[i, j] = np.mean([winner[p, r1] != winner[p, r2] for p in prompts]) if prompts else 0.0
    return mat


def matrix_markdown(mat: np.ndarray, rules: list[str]) -> str:
    lines = ["| | " + " | ".join(rules) + " |", "|---" * (len(rules) + 1) + "|"]
    lines += [f"| {r} | " + " | ".join(f"{v:.2f}" for v in mat[i]) + " |" for i, r in enumerate(rules)]
    return "\n".join(lines) + "\n"


def training_rows(rows: list[dict], ballots: list[dict], aggregates: list[dict], cfg: AggregateConfig
                  ) -> dict[str, tuple[list[dict], list[dict]]]:
    """row name -> (DPO pairs, SFT records), both canonical records with ``prompt_id`` kept."""
    by_id = {r["prompt_id"]: r for r in rows}
    text = {(r["prompt_id"], c["id"]): c["text"] for r in rows for c in r["candidates"]}
    rankings: dict[str, list[tuple[str, list[list[str]], int]]] = defaultdict(list)
    for a in aggregates:
        rankings[f"swf_{a['rule']}"].append((a["prompt_id"], a["tiers"], len(a["winners"])))
    rankings["gold"] = [(r["prompt_id"], [[r["chosen_id"]], [r["rejected_id"]]], 1) for r in rows]
    wanted = {b["judge_id"] for b in ballots} if cfg.judge_baselines == ["all"] else set(cfg.judge_baselines)
    for b in ballots:
        if b["judge_id"] in wanted and not b["abstained"]:
            rankings[f"judge_{b['judge_id']}"].append((b["prompt_id"], b["ranking"], 1))
    out = {}
    for name, items in rankings.items():
        pairs, sft = [], []
        for pid, tiers, n_win in items:
            prompt = by_id[pid]["prompt"]
            for chosen, rejected in pairs_from_tiers(tiers, cfg.pair_rule, n_win):
                if text[pid, chosen].strip() and text[pid, chosen] != text[pid, rejected]:
                    pairs.append({"prompt": prompt, "chosen": text[pid, chosen], "rejected": text[pid, rejected],
                                  "prompt_id": pid, "chosen_id": chosen, "rejected_id": rejected})
            if n_win == 1 and len(tiers[0]) == 1 and text[pid, tiers[0][0]].strip():
                sft.append({"prompt": prompt, "response": text[pid, tiers[0][0]], "prompt_id": pid,
                            "response_id": tiers[0][0]})
        out[name] = (pairs, sft)
    return out


def run_aggregate(cfg: AggregateConfig) -> dict:
    rows = read_candidates(cfg.candidates)
    ballots = read_ballots(cfg.rankings, {r["prompt_id"] for r in rows})
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite)
    aggregates = aggregate_prompts(rows, ballots, cfg.rules, cfg.seed)
    write_jsonl(run.path / "aggregates.jsonl", aggregates)
    counts = {}
    for name, (pairs, sft) in training_rows(rows, ballots, aggregates, cfg).items():
        write_jsonl(run.path / "pairs" / f"{name}.jsonl", pairs)
        write_jsonl(run.path / "sft" / f"{name}.jsonl", sft)
        counts[name] = {"pairs": len(pairs), "sft": len(sft)}
    by_id = {r["prompt_id"]: r for r in rows}
    stats: dict[str, Any] = {"n_prompts": len(rows), "n_ballots": len(ballots),
                             "abstain_rate": float(np.mean([b["abstained"] for b in ballots])) if ballots else 0.0}
    ws = [a["kendalls_w"] for a in aggregates if a["rule"] == cfg.rules[0] and a["kendalls_w"] is not None]
    stats["kendalls_w_mean"] = float(np.mean(ws)) if ws else None
    stats["n_prompts_with_w"] = len(ws)
    stats.update(position_stats(ballots))
    for rule in cfg.rules:
        mine = [a for a in aggregates if a["rule"] == rule]
        stats[f"{rule}_tied_top_rate"] = float(np.mean([len(a["winners"]) > 1 for a in mine]))
        stats[f"{rule}_gold_agreement"] = float(np.mean([
            gold_agreement(a["tiers"], by_id[a["prompt_id"]]["chosen_id"], by_id[a["prompt_id"]]["rejected_id"])
            for a in mine]))
    per_judge: dict[str, list[float]] = defaultdict(list)
    for b in ballots:
        if not b["abstained"]:
            row = by_id[b["prompt_id"]]
            per_judge[b["judge_id"]].append(gold_agreement(b["ranking"], row["chosen_id"], row["rejected_id"]))
    stats["judge_gold_agreement"] = {j: float(np.mean(v)) for j, v in sorted(per_judge.items())}
    mat = disagreement_matrix(aggregates, cfg.rules)
    stats["swf_disagreement"] = {"rules": cfg.rules, "matrix": mat.round(4).tolist()}
    stats["training_rows"] = counts
    atomic_write_json(run.path / "stats.json", stats)
    atomic_write_text(run.path / "swf_disagreement.md", "# Share of prompts where two SWFs pick different winners\n\n"
                      + matrix_markdown(mat, cfg.rules))
    print(matrix_markdown(mat, cfg.rules))
    flat = {k: v for k, v in stats.items() if isinstance(v, (int, float)) or v is None}
    return run.finish(flat, key_metric="kendalls_w_mean")


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(AggregateConfig, run_aggregate, "aggregate", "Aggregate ballots with social welfare functions "
                     "and build training pairs (RLCHF).", argv)


if __name__ == "__main__":
    main()
