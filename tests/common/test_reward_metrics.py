"""Reward-model metrics on hand-made score lists: accuracy with ties, rank correlations, margins, the plot."""

import json

import pytest

from common.config import UserError
from common.eval.reward import (
    RewardEvalConfig,
    evaluate_reward,
    margin_stats,
    pairwise_accuracy,
    rank_correlations,
    reward_metrics,
)


def test_pairwise_accuracy_counts_ties_separately():
    s = pairwise_accuracy([1.0, 2.0, 0.5, 3.0], [0.0, 2.0, 1.0, 1.0])  # win, tie, loss, win
    assert s["accuracy"] == pytest.approx(2 / 4)
    assert s["n_ties"] == 1 and s["tie_rate"] == pytest.approx(1 / 4)
    assert s["accuracy_ties_half"] == pytest.approx(2.5 / 4)


def test_rank_correlations_by_hand():
    # margins ranks 1,2,3,4 vs strength ranks 1,3,2,4: one discordant pair of six -> tau = (5-1)/6
    r = rank_correlations([0.1, 0.2, 0.3, 0.4], [1.0, 3.0, 2.0, 4.0])
    assert r["kendall_tau"] == pytest.approx(4 / 6)
    # Spearman: 1 - 6·Σd²/(n(n²-1)) = 1 - 6·2/60 = 0.8
    assert r["spearman_rho"] == pytest.approx(0.8)
    assert rank_correlations([1.0, 2.0], [3.0, 3.0]) == {"kendall_tau": None, "spearman_rho": None}


def test_margin_stats_by_hand():
    m = margin_stats([1.0, 2.0, 3.0, 4.0, 10.0])
    assert m["margin_mean"] == pytest.approx(4.0) and m["margin_p50"] == pytest.approx(3.0)
    assert m["margin_max"] == 10.0 and m["margin_min"] == 1.0
    # numpy linear interpolation: position 0.95·4 = 3.8 -> 4 + 0.8·(10 − 4)
    assert m["margin_p95"] == pytest.approx(8.8)


def test_reward_metrics_rejects_missing_scores():
    with pytest.raises(UserError, match=r"scores:2: 'rejected_score'"):
        reward_metrics([{"chosen_score": 1, "rejected_score": 0}, {"chosen_score": 1}])


def test_cli_writes_metrics_and_similarity_plot(tmp_path):
    scores = tmp_path / "eval_scores.jsonl"
    recs = [{"chosen_score": c, "rejected_score": r, "strength": s, "similarity": sim}
            for c, r, s, sim in [(2.0, 1.0, 3, 0.9), (0.0, 1.0, 1, 0.2), (5.0, 1.0, 4, 0.5), (1.0, 1.0, 2, 0.7)]]
    scores.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = evaluate_reward(RewardEvalConfig(scores=str(scores), output_dir=str(tmp_path / "run")))
    assert out["accuracy"] == pytest.approx(0.5) and out["n_ties"] == 1
    assert out["kendall_tau"] == pytest.approx(1.0)  # margins -1, 0, 1, 4 rank like strengths 1, 2, 3, 4
    png = tmp_path / "run" / "similarity_vs_margin.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
