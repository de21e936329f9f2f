"""rldf.predict's BLEU/ROUGE on the held-out debate utterances: one greedy answer per debate prompt, one score per
utterance, the mean of those scores in metrics.json (predict_bleu-4, predict_rouge-1/2/l)."""

import json
from pathlib import Path

import pytest
from scripted_debate import ScriptedGenerator

from common.artifacts import read_jsonl
from common.eval.text_overlap import METRIC_KEYS, example_scores
from rldf.debate import DebateConfig, build_dataset
from rldf.predict import PredictConfig, predict


def test_predict_scores_every_heldout_utterance_against_its_prompts_answer(tmp_path, tiny_llama):
    data = tmp_path / "data"
    cfg = DebateConfig(output_dir=str(data), mode="self", model="scripted", n_topics=3, eval_fraction=0.34)
    build_dataset(cfg, generator=ScriptedGenerator(cfg.generation()))
    heldout = read_jsonl(data / "sft" / "test.jsonl")
    assert len(heldout) > len({r["prompt"] for r in heldout}) >= 1  # several utterances share one debate prompt

    out = predict(PredictConfig(output_dir=str(tmp_path / "predict"), before_model=tiny_llama,
                                references=str(data / "sft"), max_new_tokens=4, bbq_data=""))
    rows = read_jsonl(tmp_path / "predict" / "before" / "text_overlap.jsonl")
    assert [r["reference"] for r in rows] == [r["response"] for r in heldout]
    answers = {r["prompt"]: r["prediction"] for r in rows}
    assert len(answers) == len({r["prompt"] for r in heldout})  # one greedy answer per prompt
    assert len(read_jsonl(tmp_path / "predict" / "before" / "generation_cache.jsonl")) == len(answers)
    assert out["before_predict_n"] == len(heldout)
    for key in METRIC_KEYS:
        expected = [example_scores(answers[r["prompt"]], r["response"])[key] for r in heldout]
        assert [r[key] for r in rows] == expected
        assert out[f"before_predict_{key}"] == pytest.approx(sum(expected) / len(expected))
    saved = json.loads(Path(tmp_path / "predict" / "metrics.json").read_text())
    assert saved["before_predict_bleu-4"] == out["before_predict_bleu-4"]
    assert "before_n_prompts" not in saved  # no prompts folder given: no RM answers


def test_reference_limit_must_be_positive():
    with pytest.raises(ValueError, match="predict.reference_limit"):
        PredictConfig(output_dir="o", before_model="m", reference_limit=0)
