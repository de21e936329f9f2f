"""Aggregated rankings -> training pairs; SWF statistics over ballots."""

from __future__ import annotations

import numpy as np

from rlchf.aggregate import (
    AggregateConfig,
    aggregate_prompts,
    disagreement_matrix,
    gold_agreement,
    pairs_from_tiers,
    training_rows,
)

ROWS = [{"prompt_id": "p1", "prompt": "Q1", "chosen_id": "chosen", "rejected_id": "rejected",
         "candidates": [{"id": "chosen", "text": "good"}, {"id": "rejected", "text": "bad"},
                        {"id": "s0", "text": "ok"}]}]


def ballot(judge: str, ranking):
    return {"prompt_id": "p1", "judge_id": judge, "ranking": ranking, "abstained": ranking is None,
            "mode": "ranking", "shown_order": ["chosen", "rejected", "s0"]}


def test_best_vs_worst_pairs_the_top_with_the_bottom_tier():
    assert pairs_from_tiers([["a"], ["b"], ["c", "d"]], "best_vs_worst") == [("a", "c"), ("a", "d")]


def test_top_vs_each_pairs_the_top_with_every_lower_candidate():
    assert pairs_from_tiers([["a"], ["b", "c"], ["d"]], "top_vs_each") == [("a", "b"), ("a", "c"), ("a", "d")]


def test_a_tied_top_or_a_full_tie_yields_no_pair():
    assert pairs_from_tiers([["a", "b"], ["c"]], "top_vs_each") == []
    assert pairs_from_tiers([["a"], ["b"]], "top_vs_each", n_winners=2) == []
    assert pairs_from_tiers([["a", "b", "c"]], "best_vs_worst") == []


def test_gold_agreement_is_one_half_for_a_tie():
    assert gold_agreement([["chosen"], ["rejected"]], "chosen", "rejected") == 1.0
    assert gold_agreement([["s0"], ["rejected", "chosen"]], "chosen", "rejected") == 0.5
    assert gold_agreement([["rejected"], ["chosen"]], "chosen", "rejected") == 0.0


def test_training_rows_follow_the_aggregate_and_keep_gold_and_single_judges():
    ballots = [ballot("j0", [["s0"], ["chosen"], ["rejected"]]), ballot("j1", [["s0"], ["rejected"], ["chosen"]]),
               ballot("j2", [["chosen"], ["s0"], ["rejected"]]), ballot("j3", None)]
    aggs = aggregate_prompts(ROWS, ballots, ["borda", "plurality"], seed=0)
    borda = next(a for a in aggs if a["rule"] == "borda")
    assert borda["ranking"] == ["s0", "chosen", "rejected"] and borda["n_abstain"] == 1
    cfg = AggregateConfig(candidates="c", rankings="r", rules=["borda", "plurality"], judge_baselines=["j1"])
    rows = training_rows(ROWS, ballots, aggs, cfg)
    pairs, sft = rows["swf_borda"]
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("ok", "bad")]
    assert sft == [{"prompt": "Q1", "response": "ok", "prompt_id": "p1", "response_id": "s0"}]
    assert [(p["chosen_id"], p["rejected_id"]) for p in rows["gold"][0]] == [("chosen", "rejected")]
    assert [(p["chosen_id"], p["rejected_id"]) for p in rows["judge_j1"][0]] == [("s0", "chosen")]
    assert "judge_j0" not in rows


def test_disagreement_matrix_is_zero_on_the_diagonal_and_symmetric():
    ballots = [ballot("j0", [["s0"], ["chosen"], ["rejected"]]), ballot("j1", [["chosen"], ["rejected"], ["s0"]]),
               ballot("j2", [["rejected"], ["chosen"], ["s0"]])]
    rules = ["plurality", "borda", "schulze"]
    mat = disagreement_matrix(aggregate_prompts(ROWS, ballots, rules, seed=0), rules)
    assert np.allclose(np.diag(mat), 0) and np.allclose(mat, mat.T)
    assert mat[1, 2] == 0.0  # borda and schulze both pick "chosen" (the Condorcet winner)
