"""The NLU tasks RLLR casts as generation: label sets, verbalisers, prompts, and loaders (hub or local GLUE tsv).

A response is a rationale followed by a final line ``Label: <label>`` (label-only SFT answers with that line alone).
Labels are the task's own words (``positive``, ``not_entailment``...); the verbaliser lists other surface forms the
label parser (``common.eval.nlu.parse_label``) accepts for them.

Hub ids are the public copies of the paper's eight tasks [SECONDARY: the paper names the tasks, not the copies].
GLUE test labels are hidden, so every GLUE task is evaluated on its validation split (MNLI: validation_matched).
STS-B is regression (0-5); it is cast to labels by rounding the score to the nearest integer, giving six classes
"0".."5" [GUESS: the paper does not say how it generated STS-B answers]; the gold score is kept for Spearman.
App Reviews labels are its 1-5 star ratings.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import UserError
from common.data import read_table
from common.hub_data import hub_id, load_hub_rows, local_source

LABEL_LINE = "Label: {label}"


@dataclass(frozen=True)
class Task:
    """One NLU task: where its rows come from and how a row becomes (input fields, label)."""

    name: str
    description: str  # what the label says, for prompts ("the sentiment of a movie review")
    labels: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]  # (source column, name shown in the prompt)
    label_column: str
    hub_id: str
    hub_subset: str | None = None
    train_split: str = "train"
    test_split: str = "validation"
    raw_to_label: Callable[[Any], str | None] | None = None  # raw label value -> label (None: drop the row)
    verbaliser: dict[str, list[str]] = field(default_factory=dict)
    local_files: dict[str, str] = field(default_factory=dict)  # split -> path under the local GLUE folder
    score_column: str | None = None  # regression tasks: the gold score, kept for Spearman


def _index_labels(labels: tuple[str, ...]) -> Callable[[Any], str | None]:
    def to_label(raw: Any) -> str | None:
        i = int(raw)
        return labels[i] if 0 <= i < len(labels) else None  # GLUE's hidden test labels are -1

    return to_label


def stsb_bin(score: Any) -> str:
    """STS-B similarity 0.0-5.0 -> "0".."5" by rounding half up [GUESS]."""
    return str(min(5, max(0, int(float(score) + 0.5))))


def _stars(raw: Any) -> str | None:
    star = int(raw)
    return str(star) if 1 <= star <= 5 else None


SENTIMENT = ("negative", "positive")
TASKS: dict[str, Task] = {t.name: t for t in [
    Task("sst2", "the sentiment of a movie-review sentence", SENTIMENT, (("sentence", "Sentence"),), "label",
         hub_id("glue"), "sst2", raw_to_label=_index_labels(SENTIMENT),
         local_files={"train": "sst2/alps_train.tsv.gz", "validation": "sst2/dev.tsv"}),
    Task("mr", "the sentiment of a movie review", SENTIMENT, (("text", "Review"),), "label",
         hub_id("rotten_tomatoes"), test_split="test", raw_to_label=_index_labels(SENTIMENT)),
    Task("ag_news", "the topic of a news article", ("world", "sports", "business", "technology"),
         (("text", "Article"),), "label", hub_id("ag_news"), test_split="test",
         raw_to_label=_index_labels(("world", "sports", "business", "technology")),
         verbaliser={"technology": ["technology", "sci/tech", "science"]}),
    Task("app_reviews", "the star rating (1 to 5) of an app review", ("1", "2", "3", "4", "5"),
         (("review", "Review"),), "star", hub_id("app_reviews"), test_split="train", raw_to_label=_stars),
    Task("mrpc", "whether two sentences are paraphrases", ("not_equivalent", "equivalent"),
         (("sentence1", "Sentence 1"), ("sentence2", "Sentence 2")), "label", hub_id("glue"), "mrpc",
         raw_to_label=_index_labels(("not_equivalent", "equivalent"))),
    Task("qqp", "whether two questions ask the same thing", ("not_duplicate", "duplicate"),
         (("question1", "Question 1"), ("question2", "Question 2")), "label", hub_id("glue"), "qqp",
         raw_to_label=_index_labels(("not_duplicate", "duplicate"))),
    Task("mnli", "whether a premise entails, contradicts or is neutral to a hypothesis",
         ("entailment", "neutral", "contradiction"), (("premise", "Premise"), ("hypothesis", "Hypothesis")),
         "label", hub_id("glue"), "mnli", test_split="validation_matched",
         raw_to_label=_index_labels(("entailment", "neutral", "contradiction"))),
    Task("stsb", "how similar two sentences are in meaning, from 0 (unrelated) to 5 (equivalent)",
         ("0", "1", "2", "3", "4", "5"), (("sentence1", "Sentence 1"), ("sentence2", "Sentence 2")), "label",
         hub_id("glue"), "stsb", raw_to_label=stsb_bin, score_column="label"),
    # RTE is not one of the paper's eight; it is our local fidelity task (GLUE RTE from the shared data folder).
    Task("rte", "whether the first sentence entails the second", ("entailment", "not_entailment"),
         (("sentence1", "Sentence 1"), ("sentence2", "Sentence 2")), "label", hub_id("glue"), "rte",
         raw_to_label=_index_labels(("entailment", "not_entailment")),
         local_files={"train": "rte/train.tsv.gz", "validation": "rte/dev.tsv"}),
]}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"unknown RLLR task {name!r}; known: {sorted(TASKS)}. Add it to rllr/tasks.py")
    return TASKS[name]


def task_prompt(task: Task, fields: dict[str, str]) -> str:
    """The user turn every model sees (SFT, PPO, predict): the fields, the options and the answer format [GUESS]."""
    shown = "\n".join(f"{name}: {fields[col]}" for col, name in task.fields)
    return (f"Decide {task.description}.\n\n{shown}\n\nOptions: {', '.join(task.labels)}.\n"
            f"Answer with a final line \"Label: <option>\".")


def label_line(label: str) -> str:
    return LABEL_LINE.format(label=label)


def response_text(rationale: str | None, label: str) -> str:
    """The response format: rationale, newline, ``Label: <label>``; label-only when there is no rationale."""
    return f"{rationale.strip()}\n{label_line(label)}" if rationale else label_line(label)


def _raw_rows(task: Task, split: str, source: str, local_dir: str | None) -> list[dict]:
    if source == "local":
        if split not in task.local_files:
            raise UserError(f"task {task.name}: no local copy of split {split!r} (local splits: "
                            f"{sorted(task.local_files) or 'none'}); set data.source: hub")
        path = Path(local_source(local_dir or "")) / task.local_files[split]
        if not path.is_file():
            raise UserError(f"task {task.name}: {path} does not exist; set data.local_dir to a GLUE folder "
                            "(mirror:glue for the shared mirror, common/tiny_data/glue for the shipped tiny copy)")
        return read_table(path)
    try:
        return load_hub_rows(task.hub_id, task.hub_subset, split)
    except UserError as exc:
        raise UserError(f"task {task.name}: {exc}") from None


def load_examples(task_name: str, split: str, source: str = "hub", local_dir: str | None = None,
                  limit: int | None = None, seed: int = 0) -> list[dict]:
    """Examples ``{id, task, fields, label[, score]}`` of one split; ``limit`` keeps a seeded subset in file order.

    ``split`` is ``train`` or ``test`` (mapped to the task's own split names)."""
    task = get_task(task_name)
    real_split = {"train": task.train_split, "test": task.test_split}.get(split, split)
    rows = _raw_rows(task, real_split, source, local_dir)
    out = []
    for i, row in enumerate(rows):
        missing = [c for c, _ in task.fields if c not in row] + ([task.label_column] if task.label_column not in row
                                                                 else [])
        if missing:
            raise UserError(f"task {task.name} ({real_split}) row {i + 1}: columns {missing} are missing; "
                            f"columns there: {sorted(row)}")
        label = task.raw_to_label(row[task.label_column]) if task.raw_to_label else str(row[task.label_column])
        if label is None:
            continue
        ex = {"id": f"{task.name}-{split}-{i}", "task": task.name, "label": label,
              "fields": {c: str(row[c]).strip() for c, _ in task.fields}}
        if task.score_column:
            ex["score"] = float(row[task.score_column])
        out.append(ex)
    if not out:
        raise UserError(f"task {task.name} ({real_split}): no labelled rows")
    if limit is not None and limit < len(out):
        keep = sorted(random.Random(seed).sample(range(len(out)), limit))
        out = [out[i] for i in keep]
    return out
