"""Label parsing of generated answers and the per-task accuracy table (rllr.predict, rllr.tasks)."""

from __future__ import annotations

from common.eval.nlu import parse_label
from rllr.predict import score_predictions
from rllr.tasks import get_task, stsb_bin


def test_label_line_wins_over_labels_named_in_the_rationale():
    rte = get_task("rte")
    assert parse_label("It is not entailment? No: the facts match.\nLabel: entailment", rte.labels) == "entailment"
    assert parse_label("Label: not entailment", rte.labels) == "not_entailment"
    ag = get_task("ag_news")
    assert parse_label("The article covers chips.\nLabel: Sci/Tech", ag.labels, ag.verbaliser) == "technology"
    assert parse_label("positive or negative, hard to say", get_task("sst2").labels) is None


def test_stsb_scores_bin_to_the_nearest_integer_label():
    assert [stsb_bin(s) for s in (0.0, 0.49, 0.5, 2.6, 4.8, 5.0)] == ["0", "0", "1", "3", "5", "5"]


def test_accuracy_is_per_task_and_unparseable_answers_count_as_wrong():
    records = [{"task": "sst2", "label": "positive"}, {"task": "sst2", "label": "negative"},
               {"task": "rte", "label": "entailment"}, {"task": "stsb", "label": "3", "score": 3.2},
               {"task": "stsb", "label": "1", "score": 0.8}]
    outputs = ["Warm.\nLabel: positive", "I cannot tell.", "Label: not_entailment", "Label: 3", "Label: 2"]
    metrics, rows = score_predictions(records, outputs)
    assert metrics["accuracy_sst2"] == 0.5 and metrics["tasks"]["sst2"]["n_unparseable"] == 1
    assert metrics["accuracy_rte"] == 0.0 and metrics["accuracy_stsb"] == 0.5
    assert metrics["accuracy"] == (0.5 + 0.0 + 0.5) / 3
    assert abs(metrics["tasks"]["stsb"]["spearman"] - 1.0) < 1e-9
    assert rows[1]["pred"] is None
