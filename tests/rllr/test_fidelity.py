"""rllr.fidelity: macro-average weights, claims from a constructed pipeline folder; build_data's eval/pair subsets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from common.artifacts import write_jsonl
from common.config import UserError
from common.stats import read_claims
from rllr.build_data import build_records
from rllr.fidelity import macro_weights, rm_backbone, run


def test_macro_weights_make_the_item_mean_the_mean_of_task_accuracies():
    tasks = ["sst2", "sst2", "sst2", "rte"]
    correct = np.array([1.0, 0.0, 0.0, 1.0])
    # sst2 accuracy 1/3, rte 1/1: the paper's average is (1/3 + 1) / 2 = 2/3 (a plain item mean would say 1/2)
    assert (correct * macro_weights(tasks)).mean() == pytest.approx(2 / 3)


def _folder(tmp_path, rllr_correct, sft_correct):
    root = tmp_path / "sst2+rte"
    n = len(rllr_correct)
    tasks = ["sst2"] * (n - 2) + ["rte"] * 2
    gold = ["positive" if t == "sst2" else "entailment" for t in tasks]
    wrong = {"positive": "negative", "entailment": "not_entailment"}
    write_jsonl(root / "data" / "eval.jsonl", [{"id": f"x{i}", "task": t, "label": g, "prompt": f"p{i}"}
                                                for i, (t, g) in enumerate(zip(tasks, gold))])

    def rows(correct, text):
        return [{"id": f"x{i}", "task": t, "gold": g, "pred": g if c else wrong[g], "output": f"{text}{i}"}
                for i, (t, g, c) in enumerate(zip(tasks, gold, correct))]

    for name, correct, text in (("sft_wrat", sft_correct, "a"), ("ppo_rllr", rllr_correct, "b")):
        write_jsonl(root / "predict" / name / "predictions.jsonl", rows(correct, text))
    write_jsonl(root / "rm_label" / "eval_scores.jsonl",
                [{"index": i, "chosen_score": 1.0, "rejected_score": 0.0 if i < 3 else 2.0} for i in range(4)])
    write_jsonl(root / "rm_rat" / "eval_scores.jsonl",
                [{"index": i, "chosen_score": 0.0, "rejected_score": 1.0 if i else 0.0} for i in range(4)])
    (root / "rm_label" / "metrics.json").write_text(json.dumps({"global_step": 75}))
    (root / "ppo_rllr").mkdir()
    (root / "ppo_rllr" / "metrics.json").write_text(json.dumps({"steps": 6}))
    return root


def test_claims_from_a_constructed_run_match_hand_computed_differences(tmp_path):
    # 6 sst2 + 2 rte items; RLLR right on every item, SFT right on 3 of 6 sst2 and 1 of 2 rte:
    # macro difference = ((1 - 0.5) + (1 - 0.5)) / 2 = 0.5
    root = _folder(tmp_path, [1] * 8, [1, 1, 1, 0, 0, 0, 1, 0])
    run(root, shift_items=0, template="tokenizer")
    claims = {c.metric: c for c in read_claims(root / "claims.json")}
    acc = claims["mean-over-tasks accuracy, RLLR (RM_label) − SFT (with rationales)"]
    assert acc.ours.estimate == pytest.approx(0.5) and acc.ours.n == 8
    assert acc.paper_value == pytest.approx(0.0154) and acc.verdict == "reproduced"
    # 4 held-out pairs cannot put RM_label above chance, so the policy rows are flagged as not carried
    assert acc.setting.startswith("NOT CARRIED (RM_label +25.0")
    # the setting names the steps each stage took, read from its metrics ("?" where a stage left none)
    assert acc.setting.endswith("(SFT ? / ? steps, RM_rat ?, RM_label 75, PPO 6)")
    # RM_label right on 3 of 4 pairs; RM_rat wrong on 3, a tie (½) on 1: accuracy 0.125
    assert claims["pairwise accuracy − 0.5"].ours.estimate == pytest.approx(0.25)
    assert claims["pairwise accuracy, RM_label − RM_rat"].ours.estimate == pytest.approx(0.75 - 0.125)
    # every RLLR answer text differs from the start model's
    assert claims["share of dev items with a different greedy answer"].ours.estimate == pytest.approx(1.0)
    items = [json.loads(line) for line in (root / "fidelity_items.jsonl").read_text().splitlines()]
    assert len(items) == 8 and items[3]["sft_wrat_pred"] == "negative"
    assert (root / "fidelity.png").is_file()


def test_predictions_on_other_items_are_refused(tmp_path):
    root = _folder(tmp_path, [1] * 4, [0] * 4)
    rows = (root / "predict" / "ppo_rllr" / "predictions.jsonl").read_text().splitlines()
    (root / "predict" / "ppo_rllr" / "predictions.jsonl").write_text("\n".join(reversed(rows)) + "\n")
    with pytest.raises(UserError, match="other dev items"):
        run(root, shift_items=0, template="tokenizer")


class _AnyLabelWriter:
    def write(self, requests, n):
        return [[f"Reason {k}.\nLabel: {label}" for k in range(n)] for _, label in requests]


class _FirstBetter:
    def better_first(self, items):
        return [True for _ in items]


def test_eval_limit_is_per_task_and_test_pair_limit_over_all_tasks():
    def ex(task, i, label):
        return {"id": f"{task}-test-{i}", "task": task, "label": label, "fields": (
            {"sentence": f"s{i}"} if task == "sst2" else {"sentence1": f"a{i}", "sentence2": f"b{i}"})}

    test = [ex("sst2", i, "positive") for i in range(10)] + [ex("rte", i, "entailment") for i in range(3)]
    train = [ex("sst2", 99, "negative")]
    built = build_records(train, test, _AnyLabelWriter(), _FirstBetter(), n_gold=2, seed=0,
                          test_pair_limit=5, eval_limit=4)["records"]
    evals = [r["id"] for r in built["eval"]]
    assert sum(i.startswith("sst2") for i in evals) == 4 and sum(i.startswith("rte") for i in evals) == 3
    assert len(built["label_pairs_test"]) == 5
    everything = build_records(train, test, _AnyLabelWriter(), _FirstBetter(), n_gold=2, seed=0)["records"]
    assert len(everything["eval"]) == 13 and len(everything["label_pairs_test"]) == 13


def test_setting_names_an_rm_backbone_only_when_it_is_not_the_sft_model(tmp_path):
    for stage, start, lora in (("rm_rat", tmp_path / "sft_wrat_merged", True),
                               ("rm_label", "embedded:all-minilm-l6-v2", False)):
        (tmp_path / stage).mkdir()
        (tmp_path / stage / "config.yaml").write_text(f"model_name_or_path: {start}\nuse_lora: {str(lora).lower()}\n")
    assert rm_backbone(tmp_path) == " policy; rm_label from all-minilm-l6-v2 (full fine-tune)"
    (tmp_path / "rm_label" / "config.yaml").write_text(f"model_name_or_path: {tmp_path / 'sft_wrat_merged'}\n")
    assert rm_backbone(tmp_path) == ""
