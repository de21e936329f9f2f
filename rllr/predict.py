"""Greedy predictions on the test prompts, label parsing, accuracy per task.

    python -m rllr.predict --config rllr/configs/llama2.yaml --section predict model=runs/.../sft_merged \
        data=runs/.../data/eval.jsonl output_dir=runs/.../predict

Decoding is greedy with the model's chat template [PAPER: "the model's template"]; answers are cached in the run
folder (``--resume true`` continues). Labels are parsed with ``common.eval.nlu.parse_label`` (the final
``Label:`` line, else the last sentence naming exactly one label [GUESS]); an unparseable answer counts as wrong.
STS-B also gets Spearman between the predicted bin and the gold score [SECONDARY: the paper reports Spearman].
``accuracy`` is the mean of the per-task accuracies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.artifacts import RunDir, read_jsonl, write_jsonl
from common.config import ConfigError, stage_cli
from common.config import help_meta as _h
from common.eval.nlu import classification_scores, parse_label, regression_scores
from rllr.tasks import get_task


@dataclass
class PredictConfig:
    model: str = field(default="", metadata=_h("model folder (merged) or hub id"))
    data: str = field(default="", metadata=_h("eval.jsonl from rllr.build_data"))
    output_dir: str = field(default="runs/rllr/predict", metadata=_h("run folder: predictions.jsonl, metrics.json"))
    template: str = field(default="tokenizer", metadata=_h("chat template (common.templates)"))
    max_new_tokens: int = field(default=256, metadata=_h("answer length limit [CODE: 256 in PPO]"))
    batch_size: int = field(default=8, metadata=_h("prompts per generate call"))
    limit: int | None = field(default=None, metadata=_h("score only the first N prompts"))
    dtype: str = field(default="float32", metadata=_h("float32 | bfloat16 | float16"))
    trust_remote_code: bool = field(default=False, metadata=_h("allow model code (chatglm3, baichuan2)"))
    backend: str = field(default="hf", metadata=_h("hf | vllm (common.generation)"))
    overwrite: bool = field(default=False, metadata=_h("replace a finished run"))
    resume: bool = field(default=False, metadata=_h("continue from the answer cache"))

    def __post_init__(self) -> None:
        if not self.model or not self.data:
            raise ConfigError("predict: model and data are required (model=<folder> data=<eval.jsonl>)")


def score_predictions(records: list[dict], outputs: list[str]) -> tuple[dict[str, Any], list[dict]]:
    """Per-task classification scores (+ Spearman for tasks with a gold score) and one row per prediction."""
    rows, by_task = [], {}
    for rec, text in zip(records, outputs):
        task = get_task(rec["task"])
        pred = parse_label(text, task.labels, task.verbaliser or None)
        rows.append({"id": rec.get("id"), "task": rec["task"], "gold": rec["label"], "pred": pred, "output": text,
                     **({"score": rec["score"]} if "score" in rec else {})})
        by_task.setdefault(rec["task"], []).append(rows[-1])
    metrics: dict[str, Any] = {"tasks": {}}
    for name, task_rows in sorted(by_task.items()):
        m = classification_scores([r["gold"] for r in task_rows], [r["pred"] for r in task_rows],
                                  get_task(name).labels)
        if "score" in task_rows[0]:
            m["spearman"] = regression_scores([r["score"] for r in task_rows],
                                              [None if r["pred"] is None else float(r["pred"]) for r in task_rows]
                                              )["spearman"]
        metrics["tasks"][name] = m
        metrics[f"accuracy_{name}"] = m["accuracy"]
    accs = [m["accuracy"] for m in metrics["tasks"].values()]
    metrics["accuracy"] = sum(accs) / len(accs)
    metrics["n_unparseable"] = sum(r["pred"] is None for r in rows)
    return metrics, rows


def predict(cfg: PredictConfig) -> dict[str, Any]:
    from common.generation import GenerationConfig, build_generator

    records = read_jsonl(cfg.data)[: cfg.limit]
    if not records:
        raise ConfigError(f"predict.data: {cfg.data} holds no records")
    run = RunDir.start(cfg.output_dir, cfg, overwrite=cfg.overwrite, resume=cfg.resume)
    cache = Path(cfg.output_dir) / "answers_cache.jsonl"
    if cfg.overwrite and not cfg.resume:
        cache.unlink(missing_ok=True)
    gen = build_generator(GenerationConfig(
        backend=cfg.backend, model=cfg.model, template=cfg.template, temperature=0.0, max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size, dtype=cfg.dtype, trust_remote_code=cfg.trust_remote_code, cache_path=str(cache)))
    outputs = [o[0] for o in gen.chat([[{"role": "user", "content": r["prompt"]}] for r in records], desc="predict")]
    metrics, rows = score_predictions(records, outputs)
    write_jsonl(Path(cfg.output_dir) / "predictions.jsonl", rows)
    print({k: v for k, v in metrics.items() if k != "tasks"}, flush=True)
    return run.finish(metrics, key_metric="accuracy")


def main(argv: list[str] | None = None) -> Any:
    return stage_cli(PredictConfig, predict, "predict", "Greedy predictions -> label accuracy per task.", argv)


if __name__ == "__main__":
    main()
