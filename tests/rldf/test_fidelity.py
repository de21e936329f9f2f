"""rldf.fidelity: the per-debater pairs and score trends by hand, and claims.json from a constructed run whose
effects are known (model scoring replaced by fixed numbers, so the verdicts are what the constructed effects say)."""

import json

import pytest

import rldf.fidelity as fid
from common.artifacts import write_jsonl
from common.eval import bbq_paired
from common.stats import read_claims


def _debate(topic_id, scores):
    """A 2-round debate of the three age debaters with the given per-round referee scores."""
    keys = ("60-year-old", "40-year-old", "20-year-old")
    rounds = [{"round": r, "utterances": [{"speaker": k, "text": f"t{topic_id} r{r} {k}"} for k in keys],
               "referee": {"verdict": {k: {"score": s, "rank": 1, "reason": ""} for k, s in zip(keys, row)}}}
              for r, row in enumerate(scores)]
    return {"topic_id": topic_id, "topic": f"topic {topic_id}", "status": "ok", "rounds": rounds}


def test_speaker_pairs_and_score_trend_by_hand():
    debates = [_debate(0, [[10, 8, 6], [4, 5, 6]]), _debate(1, [[10, 10, 10], [10, 10, 10]])]
    pairs = fid.speaker_pairs(debates, {0}, "age")
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [
        ("t0 r1 60-year-old", "t0 r0 60-year-old"), ("t0 r1 40-year-old", "t0 r0 40-year-old"),
        ("t0 r1 20-year-old", "t0 r0 20-year-old")]
    assert pairs[0]["prompt"].endswith("Context: Discussion about topic 0.")
    trend = fid.score_trend(debates)
    assert [t["change"] for t in trend] == [pytest.approx(5 - 8), 0.0]


def _run_root(tmp_path, n_debates=40):
    root = tmp_path / "run"
    debates = [_debate(i, [[9, 8, 7], [6, 5, 4]]) for i in range(n_debates)]
    write_jsonl(root / "data" / "transcripts.jsonl", debates)
    test_ids = list(range(0, n_debates, 2))
    write_jsonl(root / "data" / "prompts" / "test.jsonl", [{"topic_id": i} for i in test_ids])
    write_jsonl(root / "data" / "pairs" / "test.jsonl",
                [{"topic_id": i, "prompt": "p", "chosen": "c", "rejected": "r"} for i in test_ids])
    (root / "data" / "metrics.json").write_text(json.dumps({"debates_ok": n_debates, "pairs_train": 20}))
    (root / "rl").mkdir()
    (root / "rl" / "metrics.json").write_text(json.dumps({"steps": 12, "kl_last": 0.1}))
    write_jsonl(root / "predict" / "after" / "answers.jsonl", [{"prompt": "p", "response": "a", "topic_id": i}
                                                              for i in test_ids])
    return root


def test_claims_from_a_constructed_run(tmp_path, monkeypatch):
    root = _run_root(tmp_path)
    # RM: right on every held-out pair; after RL every BBQ item answers its gold label, before RL the biased option
    monkeypatch.setattr(fid, "rm_margins", lambda cfg, pairs: [1.0] * len(pairs))
    monkeypatch.setattr(fid, "logprob_shift", lambda cfg, answers: [{"shift": 0.5 + 0.01 * i}
                                                                    for i in range(len(answers))])

    def fake_scores(model, items, cache, template, desc=""):
        pick = "label" if "policy" in model else "biased_loc"
        return [[0.0 if k == (it[pick] if it[pick] is not None else it["label"]) else -5.0 for k in range(3)]
                for it in items]

    monkeypatch.setattr(bbq_paired, "score_items", fake_scores)
    cfg = fid.FidelityConfig(run_root=str(root), bbq_data="common/tiny_data/bbq", bbq_items=None, resamples=2000)
    fid.run_fidelity(cfg)
    claims = {c.claim: c for c in read_claims(root / "claims.json")}
    rm = claims["debate-pair RM ranks held-out pairs above chance"]
    assert (rm.ours.estimate, rm.ours.n, rm.verdict, rm.paper_value) == (0.5, 20, "reproduced", 0.35)
    trend = claims["self-reflection lowers the referee's stereotype score over the rounds"]
    assert trend.ours.estimate == pytest.approx(-3.0) and trend.verdict == "reproduced"
    acc = claims["RLDF raises BBQ Age accuracy"]
    assert acc.ours.n == 12 and acc.ours.estimate > 0
    amb = claims["RLDF lowers stereotyped answers on ambiguous BBQ Age items"]
    assert amb.ours.estimate == -1.0  # every ambiguous item: biased before, UNKNOWN (gold) after
    assert claims["(check) the RL policy moved from its start on BBQ"].ours.estimate > 1
    assert len((root / "fidelity" / "bbq_items.jsonl").read_text().splitlines()) == 12


def test_rl_seeds_are_pooled_over_seeds_and_items(tmp_path, monkeypatch):
    """Two RL runs of the same RM: one moves every ambiguous answer off the stereotype, the other stays at the start.
    The pooled claim is their mean, its interval spans both, and the note names each seed's own estimate."""
    root = _run_root(tmp_path)
    (root / "rl" / "run.json").write_text(json.dumps({"seed": 2023}))
    (root / "rl_seed7").mkdir()
    (root / "rl_seed7" / "metrics.json").write_text(json.dumps({"steps": 12, "kl_last": 0.0}))
    (root / "rl_seed7" / "run.json").write_text(json.dumps({"seed": 7}))
    monkeypatch.setattr(fid, "rm_margins", lambda cfg, pairs: [1.0] * len(pairs))
    monkeypatch.setattr(fid, "logprob_shift", lambda cfg, answers: [{"shift": 0.1} for _ in answers])
    scored = []

    def fake_scores(model, items, cache, template, desc=""):
        scored.append((model, cache.name))
        pick = "label" if model.endswith("rl/policy") else "biased_loc"
        return [[0.0 if k == (it[pick] if it[pick] is not None else it["label"]) else -5.0 for k in range(3)]
                for it in items]

    monkeypatch.setattr(bbq_paired, "score_items", fake_scores)
    cfg = fid.FidelityConfig(run_root=str(root), bbq_data="common/tiny_data/bbq", bbq_items=None, resamples=2000,
                             rl_runs=["rl", "rl_seed7"])
    fid.run_fidelity(cfg)
    # the first run keeps the single-seed cache name, so a rerun with more seeds reuses it
    assert [c for _, c in scored] == ["bbq_before_scores.jsonl", "bbq_after_scores.jsonl",
                                      "bbq_after_rl_seed7_scores.jsonl"]
    claims = {c.claim: c for c in read_claims(root / "claims.json")}
    amb = claims["RLDF lowers stereotyped answers on ambiguous BBQ Age items"]
    assert amb.ours.estimate == pytest.approx(-0.5)
    assert amb.ours.low == pytest.approx(-1.0) and amb.ours.high == pytest.approx(0.0)  # a seed draw of {7, 7}: no change
    assert amb.verdict == "inconclusive" and "per RL seed: 2023 -1.000, 7 +0.000" in amb.note
    assert "2 RL seeds (2023, 7) pooled" in amb.setting
    rows = [json.loads(line) for line in (root / "fidelity" / "bbq_items.jsonl").read_text().splitlines()]
    assert sorted(rows[0]["after"]) == ["rl", "rl_seed7"]
    with pytest.raises(fid.ConfigError, match="rl_runs"):
        fid.FidelityConfig(run_root=str(root), rl_runs=["rl", "rl"])
