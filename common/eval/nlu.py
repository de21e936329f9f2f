"""NLU tasks cast as generation (RLLR): parse the label out of generated text, then accuracy, macro-F1, Spearman.

Parsing rule [GUESS: RLLR's parser is not released]. The response is a rationale followed by a label, so:
1. the last line of the form ``label: <value>`` (also ``answer:``, ``sentiment:`` ... any ``<word>: <value>`` whose
   value names exactly one label) wins;
2. otherwise the last sentence (or line) that mentions any label decides, provided it names exactly one label;
3. otherwise, or when the deciding sentence names two different labels, the output is unparseable (``None``).
Matching is case-insensitive on whole words; ``_``/``-``/space are interchangeable, and the longest surface form wins
where two overlap ("not_entailment" is not read as "entailment"). A verbaliser maps each label to the words that
stand for it (``{"0": ["negative"], "1": ["positive"]}``).

Unparseable outputs count as wrong in accuracy and macro-F1 and are reported separately, never dropped.

CLI: ``python -m common.eval.nlu --predictions preds.jsonl --labels positive,negative --output_dir runs/x/nlu``
over records ``{"gold": ..., "output": "..."}`` (regression tasks: ``--task_type regression``, Spearman).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common.artifacts import RunDir, read_jsonl
from common.config import UserError, stage_cli

FINAL_LINE = re.compile(r"^\s*[*#>\-\s]*([a-z][a-z _-]{0,30})\s*[:：=]\s*(.+?)\s*$", re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def _surface_pattern(surface: str) -> str:
    parts = [re.escape(p) for p in re.split(r"[\s_-]+", surface.strip().lower()) if p]
    return r"[\s_-]+".join(parts)


def _label_matcher(labels: Sequence[str], verbaliser: dict[str, Any] | None) -> tuple[re.Pattern, dict[str, str]]:
    surface_to_label: dict[str, str] = {}
    for label in labels:
        words = (verbaliser or {}).get(label, [label])
        for word in [words] if isinstance(words, str) else list(words):
            key = re.sub(r"[\s_-]+", " ", str(word).strip().lower())
            if key in surface_to_label and surface_to_label[key] != label:
                raise UserError(f"verbaliser: surface {word!r} stands for both {surface_to_label[key]!r} and "
                                f"{label!r}")
            surface_to_label[key] = label
    if not surface_to_label:
        raise UserError("parse_label: the label set is empty; pass the task's labels")
    alternatives = sorted(surface_to_label, key=len, reverse=True)  # longest first: regex alternation is ordered
    pattern = re.compile(r"(?<![\w])(" + "|".join(_surface_pattern(s) for s in alternatives) + r")(?![\w])",
                         re.IGNORECASE)
    return pattern, surface_to_label


def _labels_in(line: str, pattern: re.Pattern, surface_to_label: dict[str, str]) -> list[str]:
    return [surface_to_label[re.sub(r"[\s_-]+", " ", m.group(1).lower())] for m in pattern.finditer(line)]


def parse_label(text: str, labels: Sequence[str], verbaliser: dict[str, Any] | None = None) -> str | None:
    """The label named by ``text`` (rule in the module docstring), or None when it is missing or ambiguous."""
    pattern, surface_to_label = _label_matcher(labels, verbaliser)
    lines = [line for line in (text or "").splitlines() if line.strip()]
    for line in reversed(lines):
        m = FINAL_LINE.match(line)
        if m:
            found = set(_labels_in(m.group(2), pattern, surface_to_label))
            if len(found) == 1:
                return found.pop()
            if len(found) > 1:
                return None
    sentences = [p for line in lines for p in SENTENCE_END.split(line) if p.strip()]
    for sentence in reversed(sentences):
        found = set(_labels_in(sentence, pattern, surface_to_label))
        if found:
            return found.pop() if len(found) == 1 else None
    return None


def parse_number(text: str) -> float | None:
    """Regression outputs (STS-B): the number on the final ``label:``-style line, else the last number in the text."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    for line in reversed(lines):
        m = FINAL_LINE.match(line)
        if m and NUMBER.search(m.group(2)):
            return float(NUMBER.search(m.group(2)).group(0))
    found = NUMBER.findall(text or "")
    return float(found[-1]) if found else None


def classification_scores(golds: Sequence[str], preds: Sequence[str | None], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy and macro-F1 over the gold label set; a None prediction is wrong for every class."""
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} gold labels but {len(preds)} predictions")
    n = len(golds)
    correct = sum(g == p for g, p in zip(golds, preds))
    f1s = []
    for label in labels:
        tp = sum(g == label and p == label for g, p in zip(golds, preds))
        fp = sum(g != label and p == label for g, p in zip(golds, preds))
        fn = sum(g == label and p != label for g, p in zip(golds, preds))
        # A class with no gold and no predicted example has F1 = 0/0; it is left out of the macro average.
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return {
        "n": n,
        "accuracy": correct / n if n else None,
        "macro_f1": sum(f1s) / len(f1s) if f1s else None,
        "n_unparseable": sum(p is None for p in preds),
    }


def regression_scores(golds: Sequence[float], preds: Sequence[float | None]) -> dict[str, Any]:
    """Spearman ρ on the parseable outputs (STS-B [SECONDARY]); unparseable ones are counted, not imputed."""
    from scipy.stats import spearmanr

    pairs = [(float(g), float(p)) for g, p in zip(golds, preds) if p is not None]
    rho = None
    if len(pairs) >= 2 and len({g for g, _ in pairs}) > 1 and len({p for _, p in pairs}) > 1:
        rho = float(spearmanr([g for g, _ in pairs], [p for _, p in pairs]).statistic)
    return {"n": len(golds), "spearman": rho, "n_unparseable": len(golds) - len(pairs)}


@dataclass
class NLUEvalConfig:
    """Score generated NLU outputs against gold labels."""

    predictions: str = field(default="", metadata={"help": "jsonl of {gold, output} records (keys below)"})
    labels: list[str] = field(default_factory=list, metadata={"help": "the task's label set (classification)"})
    verbaliser: dict = field(default_factory=dict, metadata={"help": "label -> surface words, YAML/JSON mapping"})
    task_type: str = field(default="classification", metadata={"help": "classification | regression"})
    gold_key: str = field(default="gold", metadata={"help": "record key of the gold label"})
    output_key: str = field(default="output", metadata={"help": "record key of the generated text"})
    output_dir: str = field(default="runs/nlu_eval", metadata={"help": "run folder for metrics.json"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished run in output_dir"})

    def __post_init__(self) -> None:
        if self.task_type not in ("classification", "regression"):
            raise UserError(f"task_type: {self.task_type!r} is not one of ['classification', 'regression']")
        if not self.predictions:
            raise UserError("predictions: pass the jsonl of generated outputs (--predictions FILE)")
        if self.task_type == "classification" and not self.labels:
            raise UserError("labels: a classification task needs its label set (--labels a,b,c)")


def evaluate_nlu(cfg: NLUEvalConfig) -> dict[str, Any]:
    records = read_jsonl(cfg.predictions)
    for i, rec in enumerate(records):
        for key in (cfg.gold_key, cfg.output_key):
            if key not in rec:
                raise UserError(f"{cfg.predictions}:{i + 1}: no {key!r} field (set --gold_key/--output_key)")
    run = RunDir.start(cfg.output_dir, cfg, overwrite=cfg.overwrite)
    texts = [str(r[cfg.output_key]) for r in records]
    if cfg.task_type == "regression":
        metrics = regression_scores([float(r[cfg.gold_key]) for r in records], [parse_number(t) for t in texts])
        key = "spearman"
    else:
        labels = [str(x) for x in cfg.labels]
        preds = [parse_label(t, labels, cfg.verbaliser or None) for t in texts]
        metrics = classification_scores([str(r[cfg.gold_key]) for r in records], preds, labels)
        key = "accuracy"
    out = run.finish(metrics, key_metric=key)
    print({k: out[k] for k in metrics})
    return out


def main(argv: list[str] | None = None) -> None:
    stage_cli(NLUEvalConfig, evaluate_nlu, "nlu_eval", __doc__.split("\n")[0], argv)


if __name__ == "__main__":
    main()
