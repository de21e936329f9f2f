"""Human answers -> rlchf's ballot files and win/tie/loss records; human vs persona-judge comparison.

``export`` writes, into a run folder:

- ``candidates.jsonl`` and ``rankings.jsonl``: rank tasks and their answers in exactly the files of
  ``rlchf.rank`` (``{prompt_id, judge_id, ranking, abstained, mode, shown_order, attempts, error, raw}``, tiers of
  candidate ids best first, a tier of several ids = "equally good"), so ``python -m rlchf.aggregate
  candidates=<out>/candidates.jsonl rankings=<out>/rankings.jsonl`` runs unchanged. ``judge_id`` is the annotator id
  (``h01``...), which never collides with the persona panel's ``j00``...; ``source: "human"`` is added.
  ``--synthetic rankings.jsonl`` also writes ``rankings_combined.jsonl`` (persona ballots + human ballots).
- ``pairwise.jsonl``: one record per (pairwise task, annotator): ``{prompt_id, annotator_id, system_1, system_2,
  shown_as_a, answer, verdict, outcome, winner}``. system_1 is the task's ``a``; ``verdict`` is in
  common.eval.judge's vocabulary with system_1 as "A" ("A" | "B" | "tie"); ``outcome`` is system_1's win/tie/loss.
- ``win_rates.json``: per system pair, common.eval.judge.pairwise_outcomes' wins / ties / losses / win_rate
  ((wins + ties / 2) / n) over the human verdicts, plus ``first_position_rate`` from the side each human saw.

``compare`` reads human and persona ballots on shared prompts (those with a counted ballot from both panels) and
reports, per SWF, how often the two panels' winners agree (with the list of prompts whose winner changes), the
pairwise-majority agreement (share of candidate pairs both panels' majorities order the same way, pairs tied in
either excluded) and Kendall's W within each panel and of the pooled panel.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from common.artifacts import RunDir, atomic_write_json, atomic_write_text, read_jsonl, write_jsonl
from common.config import UserError
from rlchf.aggregate import aggregate_prompts, profile_of
from rlchf.annotate import store
from rlchf.voting import kendalls_w

OUTCOME = {"A": "win", "tie": "tie", "B": "loss"}


def ballot_records(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rank answers as rlchf.rank ballots (one per prompt and annotator)."""
    return [{"prompt_id": a["payload"]["prompt_id"], "judge_id": a["annotator_id"], "ranking": a["answer"]["ranking"],
             "abstained": False, "mode": "ranking", "shown_order": a["answer"]["shown_order"], "attempts": 1,
             "error": None, "raw": None, "source": "human", "revisions": a["revisions"]}
            for a in answers if a["kind"] == "rank"]


def pairwise_records(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for a in answers:
        if a["kind"] != "pairwise":
            continue
        task, ans = a["payload"], a["answer"]
        system_1, system_2 = task["a"]["system"], task["b"]["system"]
        verdict = "tie" if ans["winner"] is None else "A" if ans["winner"] == system_1 else "B"
        out.append({"prompt_id": task["prompt_id"], "annotator_id": a["annotator_id"], "system_1": system_1,
                    "system_2": system_2, "shown_as_a": ans["shown_order"][0], "answer": ans["answer"],
                    "verdict": verdict, "outcome": OUTCOME[verdict], "winner": ans["winner"]})
    return out


def win_rates(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``"<system_1> vs <system_2>"`` -> judge.pairwise_outcomes counts over the human verdicts.

    A human sees each prompt in one order only, so each verdict is passed in both of judge's frames (the mirror of
    "A" is "B"); wins / ties / losses / win_rate then count each human verdict once. Position bias is measured from
    the side the human actually saw instead.
    """
    from common.eval.judge import pairwise_outcomes

    mirror = {"A": "B", "B": "A", "tie": "tie"}
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        groups[f"{r['system_1']} vs {r['system_2']}"].append(r)
    out = {}
    for name, recs in sorted(groups.items()):
        verdicts = [r["verdict"] for r in recs]
        stats = pairwise_outcomes(verdicts, [mirror[v] for v in verdicts])
        decided = [r for r in recs if r["answer"] != "C"]
        out[name] = {k: stats[k] for k in ("n_judged", "wins", "ties", "losses", "win_rate")}
        out[name]["first_position_rate"] = sum(r["answer"] == "A" for r in decided) / len(decided) if decided else None
        out[name]["n_prompts"] = len({r["prompt_id"] for r in recs})
        out[name]["n_annotators"] = len({r["annotator_id"] for r in recs})
    return out


def export_answers(conn: sqlite3.Connection, output_dir: str | Path, synthetic: str | None = None,
                   overwrite: bool = False) -> dict[str, Any]:
    """Write the export files (module docstring) into ``output_dir`` through RunDir; returns the metrics."""
    cfg = {"db": str(conn.execute("PRAGMA database_list").fetchone()["file"]), "synthetic": synthetic,
           "output_dir": str(output_dir)}
    run = RunDir.start(output_dir, cfg, overwrite=overwrite)
    answers = store.all_answers(conn)
    rank_tasks = [r for r in conn.execute("SELECT payload FROM tasks WHERE kind = 'rank' ORDER BY id")]
    rows = [json.loads(r["payload"]) for r in rank_tasks]
    ballots = ballot_records(answers)
    write_jsonl(run.path / "candidates.jsonl", rows)
    write_jsonl(run.path / "rankings.jsonl", ballots)
    metrics: dict[str, Any] = {"n_rank_tasks": len(rows), "n_ballots": len(ballots),
                               "n_annotators": len({a["annotator_id"] for a in answers})}
    if rows and any("chosen_id" not in r or "rejected_id" not in r for r in rows):
        metrics["warning"] = ("some rank tasks have no chosen_id / rejected_id: rlchf.aggregate's gold row and gold "
                              "agreement need them")
    if synthetic:
        persona = read_jsonl(synthetic)
        clash = sorted({b["judge_id"] for b in persona} & {b["judge_id"] for b in ballots})
        if clash:
            raise UserError(f"{synthetic}: judge ids {clash[:5]} are also annotator ids; rename one panel's ids")
        write_jsonl(run.path / "rankings_combined.jsonl", persona + ballots)
        metrics["n_ballots_combined"] = len(persona) + len(ballots)
    pairs = pairwise_records(answers)
    write_jsonl(run.path / "pairwise.jsonl", pairs)
    rates = win_rates(pairs)
    atomic_write_json(run.path / "win_rates.json", rates)
    metrics["n_pairwise_verdicts"] = len(pairs)
    for name, stats in rates.items():
        metrics[f"win_rate[{name}]"] = stats["win_rate"]
    return run.finish(metrics, key_metric="n_ballots")


# --- human vs persona judges ------------------------------------------------------------------------------------


def majority_agreement(margins_1: np.ndarray, margins_2: np.ndarray) -> tuple[int, int]:
    """(agreeing, compared) candidate pairs a < b whose majority direction is strict in both margin matrices."""
    agree = total = 0
    for a, b in itertools.combinations(range(len(margins_1)), 2):
        s1, s2 = np.sign(margins_1[a, b]), np.sign(margins_2[a, b])
        if s1 != 0 and s2 != 0:
            total += 1
            agree += int(s1 == s2)
    return agree, total


def compare_panels(rows: list[dict], human: list[dict], persona: list[dict], rules: list[str],
                   seed: int = 0) -> dict[str, Any]:
    """Statistics of the module docstring over the prompts both panels ranked."""
    counted = defaultdict(lambda: [set(), set()])
    for i, panel in enumerate((human, persona)):
        for b in panel:
            if not b["abstained"] and b["ranking"]:
                counted[b["prompt_id"]][i].add(b["judge_id"])
    shared = [r for r in rows if all(counted[r["prompt_id"]])]
    if not shared:
        raise UserError("compare: no prompt has a counted ballot from both the human and the persona panel")
    keep = {r["prompt_id"] for r in shared}
    human = [b for b in human if b["prompt_id"] in keep]
    persona = [b for b in persona if b["prompt_id"] in keep]
    aggs = {name: aggregate_prompts(shared, ballots, rules, seed)
            for name, ballots in (("human", human), ("persona", persona), ("pooled", human + persona))}
    winner = {name: {(a["prompt_id"], a["rule"]): a["ranking"][0] for a in agg} for name, agg in aggs.items()}
    per_rule = {}
    for rule in rules:
        changed = [r["prompt_id"] for r in shared
                   if winner["human"][r["prompt_id"], rule] != winner["persona"][r["prompt_id"], rule]]
        per_rule[rule] = {"winner_agreement": 1 - len(changed) / len(shared), "changed_prompts": changed,
                          "pooled_vs_persona_changed": sum(winner["pooled"][r["prompt_id"], rule]
                                                           != winner["persona"][r["prompt_id"], rule] for r in shared)}
    agree = total = 0
    ws: dict[str, list[float]] = {"human": [], "persona": [], "pooled": []}
    for r in shared:
        ids = [c["id"] for c in r["candidates"]]
        mine = {name: [b for b in ballots if b["prompt_id"] == r["prompt_id"]]
                for name, ballots in (("human", human), ("persona", persona))}
        mine["pooled"] = mine["human"] + mine["persona"]
        profiles = {name: profile_of(ballots, ids) for name, ballots in mine.items()}
        a, t = majority_agreement(profiles["human"].margins(), profiles["persona"].margins())
        agree, total = agree + a, total + t
        for name, prof in profiles.items():
            ws[name].append(kendalls_w(prof))

    def mean_w(values: list[float]) -> float | None:
        finite = [w for w in values if not np.isnan(w)]
        return float(np.mean(finite)) if finite else None

    return {"n_shared_prompts": len(shared), "n_human_ballots": len(human), "n_persona_ballots": len(persona),
            "pairwise_majority_agreement": agree / total if total else None, "n_pairs_compared": total,
            "kendalls_w_human": mean_w(ws["human"]), "kendalls_w_persona": mean_w(ws["persona"]),
            "kendalls_w_pooled": mean_w(ws["pooled"]), "rules": per_rule}


def compare_markdown(report: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    lines = ["# Human annotators vs persona judges", "",
             (f"{report['n_shared_prompts']} shared prompts; {report['n_human_ballots']} human and "
              f"{report['n_persona_ballots']} persona ballots on them."), "",
             "| statistic | value |", "|---|---|",
             (f"| pairwise-majority agreement ({report['n_pairs_compared']} candidate pairs) | "
              f"{fmt(report['pairwise_majority_agreement'])} |"),
             f"| Kendall's W, humans (mean over prompts) | {fmt(report['kendalls_w_human'])} |",
             f"| Kendall's W, personas | {fmt(report['kendalls_w_persona'])} |",
             f"| Kendall's W, pooled | {fmt(report['kendalls_w_pooled'])} |", "",
             "| SWF | winner agreement | prompts whose winner changes (human vs persona) | pooled vs persona changes |",
             "|---|---|---|---|"]
    for rule, r in report["rules"].items():
        changed = ", ".join(r["changed_prompts"][:20]) + (" …" if len(r["changed_prompts"]) > 20 else "")
        lines.append(f"| {rule} | {r['winner_agreement']:.3f} | {changed or '–'} | {r['pooled_vs_persona_changed']} |")
    return "\n".join(lines) + "\n"


def run_compare(candidates: str, human: str, persona: str, output_dir: str, rules: list[str], seed: int = 0,
                overwrite: bool = False) -> dict[str, Any]:
    cfg = {"candidates": candidates, "human": human, "persona": persona, "rules": rules, "seed": seed,
           "output_dir": output_dir}
    for path in (candidates, human, persona):
        if not Path(path).is_file():
            raise UserError(f"compare: {path} does not exist")
    run = RunDir.start(output_dir, cfg, seed=seed, overwrite=overwrite)
    report = compare_panels(read_jsonl(candidates), read_jsonl(human), read_jsonl(persona), rules, seed)
    atomic_write_json(run.path / "compare.json", report)
    text = compare_markdown(report)
    atomic_write_text(run.path / "compare.md", text)
    print(text)
    flat = {k: v for k, v in report.items() if isinstance(v, (int, float)) or v is None}
    flat.update({f"{rule}_winner_agreement": r["winner_agreement"] for rule, r in report["rules"].items()})
    return run.finish(flat, key_metric="pairwise_majority_agreement")
