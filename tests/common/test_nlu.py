"""NLU label parsing rules on textbook outputs; accuracy, macro-F1 and Spearman against hand-computed values."""

import json

import pytest

from common.eval.nlu import (
    NLUEvalConfig,
    classification_scores,
    evaluate_nlu,
    parse_label,
    parse_number,
    regression_scores,
)

SENTIMENT = ["positive", "negative"]
NLI = ["entailment", "not_entailment"]


@pytest.mark.parametrize("text, expected", [
    ("The plot is thin but the acting is great.\nLabel: positive", "positive"),
    ("It mentions negative reviews, yet overall...\nlabel: Positive", "positive"),  # final label line wins
    ("Some say positive. I say negative", "negative"),  # no label line: last line with a label decides
    ("positive\nThe film drags; negative overall", "negative"),
    ("Label: positive or negative", None),  # ambiguous final line
    ("Could be positive, could be negative", None),  # ambiguous deciding line
    ("No idea.", None),
    ("postive", None),  # misspelling is not a label
])
def test_parse_label_prefers_final_label_line_then_last_mention(text, expected):
    assert parse_label(text, SENTIMENT) == expected


def test_longest_label_wins_where_labels_overlap():
    assert parse_label("Answer: not entailment", NLI) == "not_entailment"
    assert parse_label("so the relation is entailment", NLI) == "entailment"
    assert parse_label("Label: not-entailment", NLI) == "not_entailment"


def test_verbaliser_maps_words_to_labels():
    verbaliser = {"0": ["negative", "bad"], "1": ["positive", "good"]}
    assert parse_label("Overall a good film.", ["0", "1"], verbaliser) == "1"
    assert parse_label("Sentiment: bad", ["0", "1"], verbaliser) == "0"


def test_accuracy_and_macro_f1_by_hand():
    golds = ["a", "a", "a", "b", "b", "c"]
    preds = ["a", "a", "b", "b", None, "a"]
    s = classification_scores(golds, preds, ["a", "b", "c"])
    # a: tp 2 fp 1 fn 1 -> F1 4/6; b: tp 1 fp 1 fn 1 -> 2/4; c: tp 0 fn 1 -> 0. Macro = (2/3 + 1/2 + 0) / 3
    assert s["accuracy"] == pytest.approx(3 / 6)
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 3)
    assert s["n_unparseable"] == 1


def test_regression_spearman_skips_and_counts_unparseable():
    golds = [1.0, 2.0, 3.0, 4.0, 5.0]
    texts = ["score: 0.5", "I'd say 2.5", "nothing", "4.9 or so, final: 4", "5"]
    preds = [parse_number(t) for t in texts]
    assert preds == [0.5, 2.5, None, 4.0, 5.0]
    s = regression_scores(golds, preds)
    assert s["spearman"] == pytest.approx(1.0) and s["n_unparseable"] == 1


def test_cli_writes_metrics(tmp_path):
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in [
        {"gold": "positive", "output": "Great!\nLabel: positive"},
        {"gold": "negative", "output": "Label: positive"},
        {"gold": "negative", "output": "hmm"},
    ]))
    out = evaluate_nlu(NLUEvalConfig(predictions=str(preds), labels=SENTIMENT, output_dir=str(tmp_path / "run")))
    assert out["accuracy"] == pytest.approx(1 / 3) and out["n_unparseable"] == 1 and out["key_metric"] == "accuracy"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["n"] == 3
