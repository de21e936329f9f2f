"""Pair construction, rationale checks and task loading (rllr.build_data, rllr.rationales, rllr.tasks)."""

from __future__ import annotations

from rllr.build_data import build_records, wrong_label
from rllr.rationales import LexiconRationaleWriter, LLMRationaleJudge, LLMRationaleWriter, check_rationale
from rllr.tasks import get_task, load_examples, task_prompt

EXAMPLE = {"id": "sst2-train-7", "task": "sst2", "label": "positive",
           "fields": {"sentence": "a charming and often affecting journey"}}
TEST_EXAMPLE = {"id": "sst2-test-0", "task": "sst2", "label": "negative", "fields": {"sentence": "bleak and dull"}}


class ScriptedWriter:
    """Returns fixed raw rationales per (example id, asked label), as an LLM writer would."""

    def __init__(self, texts: dict[tuple[str, str], list[str]]):
        self.texts = texts

    def write(self, requests, n):
        return [self.texts[(ex["id"], label)][:n] for ex, label in requests]


class ScriptedJudge:
    def __init__(self, verdict):
        self.verdict, self.seen = verdict, []

    def better_first(self, items):
        self.seen += items
        return [self.verdict for _ in items]


def test_pairs_from_a_fixed_example_follow_the_judge_and_the_wrong_label():
    wrong = wrong_label(EXAMPLE, seed=0)
    assert wrong == "negative"  # the only other label
    writer = ScriptedWriter({
        ("sst2-train-7", "positive"): ["It is charming.\nLabel: positive", "Affecting and warm.\nLabel: positive"],
        ("sst2-train-7", "negative"): ["The journey drags.\nLabel: negative"],
        ("sst2-test-0", "negative"): ["Bleak, dull.\nLabel: negative"],
        ("sst2-test-0", "positive"): ["Calm and quiet.\nlabel: Positive."],
    })
    judge = ScriptedJudge(verdict=False)  # the second gold rationale is the better one
    built = build_records([EXAMPLE], [TEST_EXAMPLE], writer, judge, n_gold=2, seed=0)
    rec = built["records"]
    prompt = task_prompt(get_task("sst2"), EXAMPLE["fields"])
    assert rec["rationale_pairs"] == [{"prompt": prompt, "task": "sst2", "label": "positive", "id": "sst2-train-7",
                                       "chosen": "Affecting and warm.\nLabel: positive",
                                       "rejected": "It is charming.\nLabel: positive"}]
    assert rec["label_pairs"][0]["chosen"] == "Affecting and warm.\nLabel: positive"
    assert rec["label_pairs"][0]["rejected"] == "The journey drags.\nLabel: negative"
    assert rec["sft_rationale"][0]["response"] == "Affecting and warm.\nLabel: positive"
    assert rec["sft_label"][0]["response"] == "Label: positive"
    # the test-side wrong rationale is normalised to the canonical label line
    assert rec["label_pairs_test"][0]["rejected"] == "Calm and quiet.\nLabel: positive"
    assert built["counts"]["rationales_rejected"] == 0


def test_a_rationale_without_the_asked_label_line_is_rejected_and_counted():
    writer = ScriptedWriter({
        ("sst2-train-7", "positive"): ["Charming.\nLabel: positive", "Charming, so negative.\nLabel: negative"],
        ("sst2-train-7", "negative"): ["It is a journey."],
        ("sst2-test-0", "negative"): ["Label: negative"],
        ("sst2-test-0", "positive"): ["Quiet.\nLabel: positive"],
    })
    built = build_records([EXAMPLE], [TEST_EXAMPLE], writer, ScriptedJudge(True), n_gold=2, seed=0)
    c = built["counts"]
    assert (c["rejected_wrong_label"], c["rejected_missing_label_line"], c["rejected_empty_rationale"]) == (1, 1, 1)
    assert c["n_rationale_pairs"] == 0 and c["n_label_pairs"] == 0 and c["n_label_pairs_test"] == 0
    assert c["n_sft_rationale"] == 1 and c["n_sft_label"] == 1
    assert {r["reason"] for r in built["rejects"]} == {"wrong_label", "missing_label_line", "empty_rationale"}


def test_check_rationale_reads_only_the_final_line():
    task = get_task("rte")
    assert check_rationale("Not entailment is wrong here.\n**Label: entailment**", task, "entailment") == (
        "Not entailment is wrong here.\nLabel: entailment", None)
    assert check_rationale("Label: not_entailment\nbecause...", task, "not_entailment") == (None, "missing_label_line")
    assert check_rationale("Sure.\nLabel: not entailment", task, "entailment") == (None, "wrong_label")


class ScriptedGenerator:
    def __init__(self, answer: str):
        self.answer, self.asked = answer, []

    def chat(self, conversations, n=1, desc=None, **kw):
        self.asked += conversations
        return [[self.answer] * n for _ in conversations]


def test_llm_writer_asks_for_the_label_and_judge_undoes_its_position_swap():
    gen = ScriptedGenerator("Warm.\nLabel: positive")
    assert LLMRationaleWriter(gen).write([(EXAMPLE, "negative")], 2) == [["Warm.\nLabel: positive"] * 2]
    assert 'why the answer is "negative"' in gen.asked[0][0]["content"]
    assert "Label: negative" in gen.asked[0][0]["content"]
    judge_gen = ScriptedGenerator("A")
    items = [({**EXAMPLE, "id": f"x{i}"}, "positive", "r1", "r2") for i in range(8)]
    verdicts = LLMRationaleJudge(judge_gen, seed=0).better_first(items)
    shown_first = [conv[0]["content"].split("Rationale A:\n")[1].split("\n")[0] for conv in judge_gen.asked]
    assert verdicts == [s == "r1" for s in shown_first] and len(set(verdicts)) == 2


def test_lexicon_writer_cites_label_words_and_its_judge_prefers_them():
    train = [{"id": f"t{i}", "task": "sst2", "label": lab, "fields": {"sentence": s}}
             for i, (s, lab) in enumerate([("charming film", "positive"), ("charming cast", "positive"),
                                           ("dull film", "negative"), ("dull plot", "negative")])]
    lex = LexiconRationaleWriter(train)
    ex = {"id": "e", "task": "sst2", "label": "positive", "fields": {"sentence": "a charming but dull film"}}
    best = lex.rationale(ex, "positive", 0)
    assert best.endswith("\nLabel: positive") and '"charming"' in best.split("\n")[0].split(",")[0] + best
    assert check_rationale(best, get_task("sst2"), "positive")[1] is None
    assert lex.support(ex, "positive", best) > lex.support(ex, "positive", 'The text mentions "dull".')


def test_local_glue_loaders_map_labels(shared_data):
    sst2 = load_examples("sst2", "test", "local", str(shared_data / "glue"))
    rte = load_examples("rte", "test", "local", str(shared_data / "glue"), limit=50, seed=1)
    assert len(sst2) == 872 and sst2[0]["label"] == "positive"  # "it 's a charming ... journey . \t1"
    assert sst2[0]["fields"]["sentence"].startswith("it 's a charming")
    full_rte = load_examples("rte", "test", "local", str(shared_data / "glue"))
    assert sum(e["label"] == "entailment" for e in full_rte) == 146  # label 0 = entailment (PROVENANCE.md)
    assert len(rte) == 50 and set(rte[0]["fields"]) == {"sentence1", "sentence2"}
