"""rlchf.fidelity: judge and SWF agreement with the human label by hand, and claims.json from a constructed run whose
BBQ effects are known (model scoring replaced by fixed numbers)."""

import json
import shutil

import pytest

import rlchf.fidelity as fid
from common.artifacts import write_jsonl
from common.config import ConfigError
from common.eval import bbq_paired
from common.stats import read_claims


def _candidates(n):
    return [{"prompt_id": f"p{i}", "prompt": "q", "chosen_id": "chosen", "rejected_id": "rejected",
             "candidates": [{"id": c, "text": c} for c in ("chosen", "rejected", "s0")]} for i in range(n)]


def test_judge_agreement_by_hand():
    cands = _candidates(2)
    ballots = [{"prompt_id": "p0", "judge_id": "j0", "abstained": False, "ranking": [["chosen"], ["s0"], ["rejected"]]},
               {"prompt_id": "p0", "judge_id": "j1", "abstained": False, "ranking": [["rejected", "chosen"], ["s0"]]},
               {"prompt_id": "p0", "judge_id": "j2", "abstained": True, "ranking": None},
               {"prompt_id": "p1", "judge_id": "j0", "abstained": False, "ranking": [["s0"], ["rejected"], ["chosen"]]}]
    rows = {r["prompt_id"]: r for r in fid.judge_agreement(cands, ballots)}
    assert rows["p0"] == {"prompt_id": "p0", "n_ballots": 2, "agreement": 0.75}  # 1 and a tie (1/2); abstention out
    assert rows["p1"]["agreement"] == 0.0
    aggs = [{"prompt_id": "p0", "rule": "borda", "tiers": [["chosen"], ["rejected"], ["s0"]]},
            {"prompt_id": "p0", "rule": "plurality", "tiers": [["rejected"], ["chosen", "s0"]]}]
    assert fid.swf_agreement(cands, aggs, "borda") == [{"prompt_id": "p0", "agreement": 1.0}]
    assert fid._per_judge(cands, ballots) == {"j0": 0.5, "j1": 0.5, "j2": None}  # j2 only abstained


def test_claims_from_a_constructed_run(tmp_path, monkeypatch):
    root = tmp_path / "run"
    cands = _candidates(30)
    write_jsonl(root / "candidates" / "candidates.jsonl", cands)
    write_jsonl(root / "rank" / "rankings.jsonl", [  # every persona puts chosen first
        {"prompt_id": c["prompt_id"], "judge_id": j, "abstained": False, "ranking": [["chosen"], ["s0"], ["rejected"]]}
        for c in cands for j in ("j0", "j1")])
    write_jsonl(root / "aggregate" / "aggregates.jsonl", [  # Borda: chosen above rejected on 20 of 30 prompts
        {"prompt_id": c["prompt_id"], "rule": "borda",
         "tiers": [["chosen"], ["rejected"], ["s0"]] if i < 20 else [["rejected"], ["chosen"], ["s0"]]}
        for i, c in enumerate(cands)])
    for row in ("gold", "swf_borda"):
        (root / "dpo" / row).mkdir(parents=True)
        (root / "dpo" / row / "adapter_config.json").write_text("{}")
        (root / "dpo" / row / "metrics.json").write_text(json.dumps({"train_pairs": 30, "global_step": 24}))

    def fake_scores(model, items, cache, template, desc=""):  # base and gold: the biased option; Borda: UNKNOWN
        pick = "unknown_loc" if "swf_borda" in str(model) else "biased_loc"
        return [[0.0 if k == (it[pick] if it[pick] is not None else it["unknown_loc"]) else -4.0 for k in range(3)]
                for it in items]

    monkeypatch.setattr(bbq_paired, "score_items", fake_scores)
    cfg = fid.FidelityConfig(run_root=str(root), bbq_data="common/tiny_data/bbq", bbq_items=None, resamples=2000)
    fid.run_fidelity(cfg)
    claims = {c.claim: c for c in read_claims(root / "claims.json")}
    judge = claims["a persona judge agrees with the HH human label above chance"]
    assert (judge.ours.estimate, judge.ours.n, judge.verdict) == (0.5, 30, "reproduced")
    swf = claims["the borda collective ranking agrees with the HH human label above chance"]
    assert swf.ours.estimate == pytest.approx(20 / 30 - 0.5) and swf.paper_value == pytest.approx(0.413)
    amb = claims["DPO on swf_borda rankings raises BBQ ambiguous accuracy over the base"]
    assert amb.ours.estimate == 1.0 and amb.verdict == "reproduced"  # UNKNOWN is gold on every ambiguous item
    assert claims["DPO on gold pairs raises BBQ ambiguous accuracy a little"].ours.estimate == 0.0
    assert claims["DPO on gold pairs raises BBQ ambiguous accuracy a little"].verdict == "inconclusive"
    assert claims["(check) DPO on gold moved the policy from the base on BBQ"].ours.estimate == 0.0
    items = (root / "fidelity" / "bbq_items.jsonl").read_text().splitlines()
    assert len(items) == 36 and set(json.loads(items[0])) >= {"base", "gold", "swf_borda"}


def test_dpo_seeds_are_pooled_and_disagreeing_seeds_are_inconclusive(tmp_path, monkeypatch):
    """Seed 0 of the Borda row answers UNKNOWN everywhere (+1 on ambiguous items), seed 1 answers like the base (0):
    one seed alone would call the claim reproduced; pooled over both, the estimate is +0.5 and, with the seeds
    resampled, the interval reaches 0."""
    root = tmp_path / "run"
    cands = _candidates(4)
    write_jsonl(root / "candidates" / "candidates.jsonl", cands)
    write_jsonl(root / "rank" / "rankings.jsonl", [
        {"prompt_id": c["prompt_id"], "judge_id": "j0", "abstained": False, "ranking": [["chosen"], ["s0"], ["rejected"]]}
        for c in cands])
    write_jsonl(root / "aggregate" / "aggregates.jsonl", [
        {"prompt_id": c["prompt_id"], "rule": "borda", "tiers": [["chosen"], ["rejected"], ["s0"]]} for c in cands])
    for run, seed in (("gold", 0), ("swf_borda", 0), ("gold_seed1", 1), ("swf_borda_seed1", 1)):
        (root / "dpo" / run).mkdir(parents=True)
        (root / "dpo" / run / "adapter_config.json").write_text("{}")
        (root / "dpo" / run / "run.json").write_text(json.dumps({"seed": seed}))
        (root / "dpo" / run / "metrics.json").write_text(json.dumps({"train_pairs": 4, "global_step": 3,
                                                                     "eval_reward_margin_mean": seed}))

    def fake_scores(model, items, cache, template, desc=""):
        pick = "unknown_loc" if str(model).endswith("swf_borda") else "biased_loc"
        return [[0.0 if k == (it[pick] if it[pick] is not None else it["unknown_loc"]) else -4.0 for k in range(3)]
                for it in items]

    monkeypatch.setattr(bbq_paired, "score_items", fake_scores)
    cfg = fid.FidelityConfig(run_root=str(root), bbq_data="common/tiny_data/bbq", bbq_items=None, resamples=2000,
                             dpo_seeds=[1])
    fid.run_fidelity(cfg)
    claims = {c.claim: c for c in read_claims(root / "claims.json")}
    amb = claims["DPO on swf_borda rankings raises BBQ ambiguous accuracy over the base"]
    assert amb.ours.estimate == pytest.approx(0.5)
    assert amb.ours.low == pytest.approx(0.0) and amb.ours.high == pytest.approx(1.0)
    assert amb.verdict == "inconclusive"
    assert "2 DPO seeds (0, 1) pooled" in amb.setting and "per DPO seed: 0 +1.000, 1 +0.000" in amb.note
    vs_gold = claims["DPO on swf_borda raises BBQ ambiguous accuracy more than DPO on gold pairs"]
    assert vs_gold.ours.estimate == pytest.approx(0.5) and "paired seed by seed" in vs_gold.note
    kl = claims["(check) DPO on swf_borda moved the policy from the base on BBQ"]
    assert "answers changed" in kl.note and "margin 0, 1" in kl.note
    items = json.loads((root / "fidelity" / "bbq_items.jsonl").read_text().splitlines()[0])
    assert {"swf_borda_seed1", "gold_seed1"} <= set(items)
    with pytest.raises(ConfigError, match="dpo_seeds"):
        fid.FidelityConfig(run_root=str(root), dpo_seeds=[1, 1])
    with pytest.raises(ConfigError, match="dpo_seed_rows"):
        fid.FidelityConfig(run_root=str(root), dpo_seeds=[1], dpo_seed_rows=["swf_plurality"])

    # only the Borda row has the extra seed: each Borda seed meets gold's one run, and gold's rows stay single-seed
    shutil.rmtree(root / "dpo" / "gold_seed1")
    cfg = fid.FidelityConfig(run_root=str(root), output_dir=str(tmp_path / "borda_only"),
                             bbq_data="common/tiny_data/bbq", bbq_items=None, resamples=2000, dpo_seeds=[1],
                             dpo_seed_rows=["swf_borda"])
    fid.run_fidelity(cfg)
    claims = {c.claim: c for c in read_claims(tmp_path / "borda_only" / "claims.json")}
    vs_gold = claims["DPO on swf_borda raises BBQ ambiguous accuracy more than DPO on gold pairs"]
    assert vs_gold.ours.estimate == pytest.approx(0.5) and "against gold's one run" in vs_gold.note
    gold = claims["DPO on gold pairs raises BBQ ambiguous accuracy a little"]
    assert "seeds" not in gold.setting and "per DPO seed" not in gold.note
