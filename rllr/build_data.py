"""Build every RLLR data file for a set of NLU tasks from their labelled examples.

    python -m rllr.build_data --config rllr/configs/llama2.yaml --section data tasks=sst2 output_dir=runs/...

For each training example x with gold label y+ (``rllr.rationales`` writes and checks the rationales):

- ``sft_label.jsonl``: x -> ``Label: y+`` (label-only SFT);
- ``sft_rationale.jsonl``: x -> the judge's preferred valid rationale for y+ (SFT with rationales);
- ``rationale_pairs.jsonl`` (RLHF RM): two valid rationales for y+, chosen = the judge's preferred one;
- ``label_pairs.jsonl`` (RLLR RM): chosen = that rationale for y+, rejected = a valid rationale for a wrong label
  y− drawn uniformly from the other labels (seeded per example);
- ``prompts.jsonl``: x with its task and label (PPO prompts).

For each test example: ``eval.jsonl`` (greedy prediction -> accuracy) and ``label_pairs_test.jsonl`` (held-out RM
accuracy: does an RM prefer the right label?). ``eval_limit`` (per task) and ``test_pair_limit`` (all tasks) keep
seeded subsets of the test examples for each file, so the CPU fidelity run can size predictions and pair scoring
apart. ``rejected_rationales.jsonl`` keeps every rationale that failed its
check, with the reason; ``metrics.json`` counts them. Every record carries ``task`` and ``label``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import RunDir, write_jsonl
from common.config import ConfigError, stage_cli
from common.config import help_meta as _h
from rllr.rationales import (
    LexiconRationaleWriter,
    LLMRationaleJudge,
    LLMRationaleWriter,
    check_rationale,
)
from rllr.tasks import TASKS, get_task, load_examples, response_text, task_prompt


@dataclass
class BuildDataConfig:
    """Settings of the data stage (section ``data``)."""

    tasks: list[str] = field(default_factory=lambda: ["sst2"], metadata=_h(f"tasks to build: {sorted(TASKS)}"))
    output_dir: str = field(default="runs/rllr/data", metadata=_h("folder for the jsonl files and metrics.json"))
    source: str = field(default="hub", metadata=_h("hub (task hub ids) | local (GLUE tsv under local_dir)"))
    local_dir: str | None = field(default=None, metadata=_h("the shared GLUE folder for source: local"))
    train_limit: int | None = field(default=None, metadata=_h("seeded subset of training examples per task"))
    test_limit: int | None = field(default=None, metadata=_h("seeded subset of test examples per task"))
    test_pair_limit: int | None = field(default=None, metadata=_h(
        "held-out label pairs from a seeded subset of this many test examples (all tasks together); None: all"))
    eval_limit: int | None = field(default=None, metadata=_h(
        "eval.jsonl (prediction prompts) from a seeded subset of this many test examples per task; None: all"))
    seed: int = field(default=42, metadata=_h("seed for subsets, wrong labels and judge order"))
    writer: str = field(default="llm", metadata=_h("llm (common.generation) | lexicon (offline stand-in)"))
    generation: dict = field(default_factory=dict, metadata=_h(
        "writer GenerationConfig fields (backend, model, temperature...); cache_path defaults into output_dir"))
    judge_generation: dict | None = field(default=None, metadata=_h(
        "judge GenerationConfig fields; None: the writer's settings at temperature 0"))
    n_gold_rationales: int = field(default=2, metadata=_h("rationales sampled for the gold label (pair needs 2)"))
    overwrite: bool = field(default=False, metadata=_h("replace a finished build in output_dir"))
    resume: bool = field(default=False, metadata=_h("continue an interrupted build (generation caches are reused)"))

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ConfigError(f"data.tasks: {unknown or self.tasks} not known; choose from {sorted(TASKS)}")
        if self.source not in ("hub", "local"):
            raise ConfigError(f"data.source: {self.source!r} is not one of ['hub', 'local']")
        if self.writer not in ("llm", "lexicon"):
            raise ConfigError(f"data.writer: {self.writer!r} is not one of ['llm', 'lexicon']")
        if self.writer == "llm" and not self.generation.get("model"):
            raise ConfigError("data.generation.model: the llm writer needs a model (and backend) to write rationales")
        if self.n_gold_rationales < 1:
            raise ConfigError(f"data.n_gold_rationales: {self.n_gold_rationales} must be >= 1")
        for key in ("test_pair_limit", "eval_limit"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"data.{key}: {getattr(self, key)} must be >= 1 (or null: every test example)")


def wrong_label(example: dict, seed: int) -> str:
    """A label other than the gold one, uniform over the rest, fixed by (seed, example id)."""
    others = [lab for lab in get_task(example["task"]).labels if lab != example["label"]]
    return random.Random(f"{seed}-wrong-{example['id']}").choice(others)


def _valid(raw: list[str], ex: dict, label: str, rejects: list[dict]) -> list[str]:
    out = []
    for text in raw:
        response, reason = check_rationale(text, get_task(ex["task"]), label)
        if response is None:
            rejects.append({"id": ex["id"], "task": ex["task"], "asked_label": label,
                            "gold": label == ex["label"], "reason": reason, "text": text})
        elif response not in out:
            out.append(response)
    return out


def _subset(items: list[dict], limit: int | None, seed: str) -> list[dict]:
    """A seeded subset of ``limit`` items in their original order (all of them when ``limit`` is None or larger)."""
    if limit is None or limit >= len(items):
        return items
    return [items[i] for i in sorted(random.Random(seed).sample(range(len(items)), limit))]


def build_records(train: list[dict], test: list[dict], writer, judge, n_gold: int, seed: int,
                  test_pair_limit: int | None = None, eval_limit: int | None = None) -> dict[str, Any]:
    """All output record lists plus counts (module docstring); ``writer``/``judge`` follow rllr.rationales.

    ``test_pair_limit``: held-out label pairs only for a seeded subset of that many test examples; ``eval_limit``:
    prediction prompts only for a seeded subset of that many test examples per task (file order kept in both)."""
    rejects: list[dict] = []
    out: dict[str, list[dict]] = {k: [] for k in ("sft_label", "sft_rationale", "rationale_pairs", "label_pairs",
                                                  "prompts", "label_pairs_test", "eval")}

    def base(ex: dict) -> dict:
        rec = {"prompt": task_prompt(get_task(ex["task"]), ex["fields"]), "task": ex["task"], "label": ex["label"],
               "id": ex["id"]}
        return {**rec, "score": ex["score"]} if "score" in ex else rec

    def gold_and_wrong(examples: list[dict], n: int) -> tuple[list[list[str]], list[str], list[list[str]]]:
        wrongs = [wrong_label(ex, seed) for ex in examples]
        gold_raw = writer.write([(ex, ex["label"]) for ex in examples], n)
        wrong_raw = writer.write(list(zip(examples, wrongs)), 1)
        gold = [_valid(raw, ex, ex["label"], rejects) for raw, ex in zip(gold_raw, examples)]
        wrong = [_valid(raw, ex, lab, rejects) for raw, ex, lab in zip(wrong_raw, examples, wrongs)]
        return gold, wrongs, wrong

    gold, wrongs, wrong = gold_and_wrong(train, n_gold)
    to_judge = [i for i, g in enumerate(gold) if len(g) >= 2]
    verdicts = judge.better_first([(train[i], train[i]["label"], gold[i][0], gold[i][1]) for i in to_judge])
    best = {i: (g[0] if g else None) for i, g in enumerate(gold)}
    no_verdict = 0
    for i, first_better in zip(to_judge, verdicts):
        if first_better is None:
            no_verdict += 1
            continue
        chosen, rejected = (gold[i][0], gold[i][1]) if first_better else (gold[i][1], gold[i][0])
        best[i] = chosen
        out["rationale_pairs"].append({**base(train[i]), "chosen": chosen, "rejected": rejected})
    for i, ex in enumerate(train):
        out["sft_label"].append({**base(ex), "response": response_text(None, ex["label"])})
        out["prompts"].append(base(ex))
        if best[i] is not None:
            out["sft_rationale"].append({**base(ex), "response": best[i]})
            if wrong[i]:
                out["label_pairs"].append({**base(ex), "chosen": best[i], "rejected": wrong[i][0],
                                           "wrong_label": wrongs[i]})
    for name in dict.fromkeys(ex["task"] for ex in test):
        for ex in _subset([ex for ex in test if ex["task"] == name], eval_limit, f"{seed}-eval-{name}"):
            out["eval"].append(base(ex))
    pair_test = _subset(test, test_pair_limit, f"{seed}-test-pairs")
    t_gold, t_wrongs, t_wrong = gold_and_wrong(pair_test, 1)
    for ex, g, lab, w in zip(pair_test, t_gold, t_wrongs, t_wrong):
        if g and w:
            out["label_pairs_test"].append({**base(ex), "chosen": g[0], "rejected": w[0], "wrong_label": lab})
    n_asked = len(train) * (n_gold + 1) + len(pair_test) * 2
    counts = {"rationales_requested": n_asked, "rationales_rejected": len(rejects),
              **{f"rejected_{r}": c for r, c in Counter(x["reason"] for x in rejects).items()},
              "judge_no_verdict": no_verdict, "train_examples": len(train), "test_examples": len(test),
              **{f"n_{k}": len(v) for k, v in out.items()}}
    return {"records": out, "rejects": rejects, "counts": counts}


def _generator(settings: dict, cache: Path):
    from common.config import build_dataclass
    from common.generation import GenerationConfig, build_generator

    return build_generator(build_dataclass(GenerationConfig, {"cache_path": str(cache), **settings},
                                           "data.generation"))


def build_data(cfg: BuildDataConfig) -> dict[str, Any]:
    run = RunDir.start(cfg.output_dir, cfg, seed=cfg.seed, overwrite=cfg.overwrite, resume=cfg.resume)
    out_dir = Path(cfg.output_dir)
    train, test = [], []
    for name in cfg.tasks:
        train += load_examples(name, "train", cfg.source, cfg.local_dir, cfg.train_limit, cfg.seed)
        test += load_examples(name, "test", cfg.source, cfg.local_dir, cfg.test_limit, cfg.seed)
    if cfg.writer == "lexicon":
        writer = judge = LexiconRationaleWriter(train)
    else:
        writer = LLMRationaleWriter(_generator(cfg.generation, out_dir / "rationale_cache.jsonl"))
        judge_settings = cfg.judge_generation or {**cfg.generation, "temperature": 0.0}
        judge = LLMRationaleJudge(_generator(judge_settings, out_dir / "judge_cache.jsonl"), seed=cfg.seed)
    built = build_records(train, test, writer, judge, cfg.n_gold_rationales, cfg.seed, cfg.test_pair_limit,
                          cfg.eval_limit)
    for name, records in built["records"].items():
        write_jsonl(out_dir / f"{name}.jsonl", records)
    write_jsonl(out_dir / "rejected_rationales.jsonl", built["rejects"])
    counts = built["counts"]
    for key in ("n_rationale_pairs", "n_label_pairs", "n_label_pairs_test", "n_sft_rationale"):
        if counts[key] == 0:
            raise ConfigError(f"data: no {key[2:]} were built ({counts['rationales_rejected']} of "
                              f"{counts['rationales_requested']} rationales rejected, see "
                              f"{out_dir / 'rejected_rationales.jsonl'}); use a stronger writer model or more "
                              "examples")
    print({k: v for k, v in counts.items()}, flush=True)
    return run.finish(counts, key_metric="n_label_pairs")


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(BuildDataConfig, build_data, "data", "Build RLLR SFT records, rationale pairs and label pairs.",
                     argv)


if __name__ == "__main__":
    main()
